# libFuzzer targets (MINIVM_FUZZ=ON, clang only).  Each target compiles its
# own instrumented copies of the sources it feeds, and runs as a ctest test for
# a bounded time: new inputs go to the build tree, committed seeds stay read-only.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "MINIVM_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
endif()

set(MINIVM_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

# minivm_ipc's sources (absolute paths) for a fuzz target: fuzz targets run
# unsandboxed, so the seccomp code stays out (libseccomp is not linked there).
function(minivm_fuzz_ipc_sources out)
  get_target_property(dir minivm_ipc SOURCE_DIR)
  get_target_property(sources minivm_ipc SOURCES)
  list(FILTER sources EXCLUDE REGEX "sandbox_")
  list(TRANSFORM sources PREPEND ${dir}/)
  set(${out} ${sources} PARENT_SCOPE)
endfunction()

# minivm_fuzz_target(NAME SOURCES src... [INCLUDES dir...] [LIBS lib...]
#                    SECONDS n [SEEDS dir] [ARGS libfuzzer-arg...])
function(minivm_fuzz_target name)
  cmake_parse_arguments(F "" "SECONDS;SEEDS" "SOURCES;INCLUDES;LIBS;ARGS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${F_INCLUDES})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_compile_options(${name} PRIVATE ${MINIVM_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE ${MINIVM_FUZZ_FLAGS})
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}-corpus)
  file(MAKE_DIRECTORY ${work})
  add_test(NAME ${name}
           COMMAND ${name} -max_total_time=${F_SECONDS} ${F_ARGS} ${work} ${F_SEEDS})
endfunction()
