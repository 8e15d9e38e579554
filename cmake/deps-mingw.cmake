# deps-mingw.cmake - the third-party libraries of the Windows build.
#
# Debian ships no MinGW builds of nng or cmocka, but it ships their
# source packages.  At configure time we fetch each one with
# `apt-get source --download-only` (needs the deb-src lines that
# scripts/install-deps.sh sets up), unpack it with dpkg-source (which applies
# Debian's patches), and build it with the same toolchain into
# <build>/deps/install.  Everything stays inside the build tree; the
# downloaded packages are kept there, so re-configuring neither downloads nor
# rebuilds anything.
#
# The imported targets carry the same names as on Linux (nng::nng,
# PkgConfig::CMOCKA, Threads::Threads), so the components'
# CMake files need no WIN32 branches.

set(MINIVM_DEPS_DIR ${CMAKE_BINARY_DIR}/deps)
set(MINIVM_DEPS_PREFIX ${MINIVM_DEPS_DIR}/install)
file(MAKE_DIRECTORY ${MINIVM_DEPS_DIR}/download ${MINIVM_DEPS_DIR}/src ${MINIVM_DEPS_PREFIX}/include ${MINIVM_DEPS_PREFIX}/lib)

# Unpack Debian source package `pkg` into <deps>/src/<pkg>; its path goes to
# out_var, or "" (with a warning) if the archive does not have it.
function(minivm_debian_source pkg out_var)
  set(download ${MINIVM_DEPS_DIR}/download)
  set(srcdir ${MINIVM_DEPS_DIR}/src/${pkg})
  set(${out_var} "" PARENT_SCOPE)
  if(NOT EXISTS ${srcdir})
    file(GLOB dsc ${download}/${pkg}_*.dsc)
    if(NOT dsc)
      message(STATUS "deps: apt-get source --download-only ${pkg}")
      execute_process(COMMAND apt-get source --download-only ${pkg}
                      WORKING_DIRECTORY ${download}
                      RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
      file(GLOB dsc ${download}/${pkg}_*.dsc)
      if(NOT rc EQUAL 0)
        # A failed fetch may leave the .dsc without its tarballs: drop it so
        # the next configure tries again.
        file(REMOVE ${dsc})
        message(WARNING "deps: could not fetch the Debian source package '${pkg}' "
                        "(are deb-src lines set up? see scripts/install-deps.sh):\n${err}")
        return()
      endif()
    endif()
    execute_process(COMMAND dpkg-source --no-check -x ${dsc} ${srcdir}.tmp
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      file(REMOVE_RECURSE ${srcdir}.tmp)
      message(FATAL_ERROR "deps: dpkg-source -x ${dsc} failed:\n${err}")
    endif()
    file(RENAME ${srcdir}.tmp ${srcdir})
  endif()
  set(${out_var} ${srcdir} PARENT_SCOPE)
endfunction()

# Configure, build and install the CMake project in srcdir with our toolchain
# unless `stamp` (a file it installs) already exists.
function(minivm_build_cmake_dep name srcdir stamp)
  if(EXISTS ${stamp})
    return()
  endif()
  set(bindir ${MINIVM_DEPS_DIR}/build/${name})
  message(STATUS "deps: building ${name} for Windows")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${srcdir} -B ${bindir} -G ${CMAKE_GENERATOR}
            -DCMAKE_TOOLCHAIN_FILE=${CMAKE_CURRENT_FUNCTION_LIST_DIR}/mingw-w64.cmake
            -DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}
            -DCMAKE_BUILD_TYPE=Release
            -DCMAKE_INSTALL_PREFIX=${MINIVM_DEPS_PREFIX}
            -DCMAKE_INSTALL_LIBDIR=lib
            -DBUILD_SHARED_LIBS=OFF
            ${ARGN}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_COMMAND} --build ${bindir}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE err ERROR_VARIABLE err)
  endif()
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_COMMAND} --install ${bindir}
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  endif()
  if(NOT rc EQUAL 0 OR NOT EXISTS ${stamp})
    message(FATAL_ERROR "deps: building ${name} failed (in ${bindir}):\n${err}")
  endif()
endfunction()

# Threads: winpthreads, which the posix variant of MinGW-w64 ships.
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# ---- nng ----
minivm_debian_source(nng NNG_SRC)
if(NOT NNG_SRC)
  message(FATAL_ERROR "deps: nng is required for every process")
endif()
minivm_build_cmake_dep(nng ${NNG_SRC} ${MINIVM_DEPS_PREFIX}/lib/libnng.a
  -DNNG_TESTS=OFF -DNNG_TOOLS=OFF -DNNG_ENABLE_NNGCAT=OFF)
add_library(nng::nng STATIC IMPORTED GLOBAL)
set_target_properties(nng::nng PROPERTIES
  IMPORTED_LOCATION ${MINIVM_DEPS_PREFIX}/lib/libnng.a
  INTERFACE_INCLUDE_DIRECTORIES ${MINIVM_DEPS_PREFIX}/include
  INTERFACE_COMPILE_DEFINITIONS NNG_STATIC_LIB
  INTERFACE_LINK_LIBRARIES "ws2_32;mswsock;advapi32")

# ---- cmocka ----
if(MINIVM_TESTS)
  minivm_debian_source(cmocka CMOCKA_SRC)
  if(NOT CMOCKA_SRC)
    message(FATAL_ERROR "deps: cmocka is required for MINIVM_TESTS (or configure with -DMINIVM_TESTS=OFF)")
  endif()
  minivm_build_cmake_dep(cmocka ${CMOCKA_SRC} ${MINIVM_DEPS_PREFIX}/lib/libcmocka-static.a
    -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF)
  add_library(PkgConfig::CMOCKA STATIC IMPORTED GLOBAL)
  set_target_properties(PkgConfig::CMOCKA PROPERTIES
    IMPORTED_LOCATION ${MINIVM_DEPS_PREFIX}/lib/libcmocka-static.a
    INTERFACE_INCLUDE_DIRECTORIES ${MINIVM_DEPS_PREFIX}/include)
endif()

# ---- liblzma (xz-utils) ----
# The board unpacks the bzImage's xz payload on the host when it has liblzma
# (vmm-core/board, MINIVM_HOST_DECOMPRESS).  Without it the kernel's own
# decompressor runs in the software CPU: about 14 s more per boot natively,
# and more under Wine (docs/PERFORMANCE.md, "Linux boot").  xz-utils 5.4's
# CMake build makes the static liblzma (and xz.exe, unused) but no
# liblzma.pc, which the board looks for with pkg-config: we write one.  If
# the source package cannot be fetched, the build goes on without it.
minivm_debian_source(xz-utils XZ_SRC)
if(XZ_SRC)
  minivm_build_cmake_dep(xz-utils ${XZ_SRC} ${MINIVM_DEPS_PREFIX}/lib/liblzma.a -DBUILD_TESTING=OFF)
  # LZMA_API_STATIC: lzma.h declares its functions dllimport otherwise.
  file(WRITE ${MINIVM_DEPS_PREFIX}/lib/pkgconfig/liblzma.pc
    "prefix=${MINIVM_DEPS_PREFIX}\n"
    "Name: liblzma\nDescription: xz-utils' liblzma, static, for MinGW\nVersion: 5.4\n"
    "Cflags: -I\${prefix}/include -DLZMA_API_STATIC\nLibs: -L\${prefix}/lib -llzma\n")
  set(MINIVM_HOST_DECOMPRESS ON CACHE BOOL "Unpack xz bzImage payloads on the host (liblzma)")
endif()
# pkg-config must see only the Windows libraries built here, never the
# host's .pc files; find_library must look in the deps prefix, which is not
# under the MinGW sysroot.
set(ENV{PKG_CONFIG_LIBDIR} ${MINIVM_DEPS_PREFIX}/lib/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
list(APPEND CMAKE_FIND_ROOT_PATH ${MINIVM_DEPS_PREFIX})
