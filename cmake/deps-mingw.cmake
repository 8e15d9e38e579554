# deps-mingw.cmake - the third-party libraries of the Windows build.
#
# Debian ships no MinGW builds of nng, cmocka, liblzma, glib or libslirp,
# but it ships their source packages.  At configure time we fetch each one with
# `apt-get source --download-only` (needs the deb-src lines that
# scripts/install-deps.sh sets up), unpack it with dpkg-source (which applies
# Debian's patches), and build it with the same toolchain into
# <build>/deps/install.  Everything stays inside the build tree; the
# downloaded packages are kept there, so re-configuring neither downloads nor
# rebuilds anything.
#
# The imported targets carry the same names as on Linux (nng::nng,
# PkgConfig::CMOCKA, PkgConfig::SLIRP, Threads::Threads), so the components'
# CMake files need (almost) no WIN32 branches.

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
      # The newest version first; an older one when the archive lists a
      # version it does not serve (pcre2's security update here: 404).
      execute_process(COMMAND apt-cache showsrc --only-source ${pkg}
                      OUTPUT_VARIABLE showsrc ERROR_QUIET)
      string(REGEX MATCHALL "\nVersion: [^\n]+" versions "\n${showsrc}")
      list(TRANSFORM versions REPLACE "\nVersion: " "${pkg}=")
      list(REMOVE_DUPLICATES versions)
      list(SORT versions COMPARE NATURAL ORDER DESCENDING)
      set(rc 1)
      set(err "apt-cache showsrc lists no version")
      foreach(wanted IN LISTS versions)
        message(STATUS "deps: apt-get source --download-only ${wanted}")
        execute_process(COMMAND apt-get source --download-only ${wanted}
                        WORKING_DIRECTORY ${download}
                        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
        file(GLOB dsc ${download}/${pkg}_*.dsc)
        if(rc EQUAL 0)
          break()
        endif()
        # A failed fetch may leave the .dsc without its tarballs: drop it so
        # that the next try starts clean.
        if(dsc)
          file(REMOVE ${dsc})
        endif()
      endforeach()
      if(NOT rc EQUAL 0)
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

# ---- glib and libslirp (dev-net) ----
# libslirp needs glib; Debian has neither for MinGW.  Both come from Debian's
# source packages and build with meson.  What libslirp uses of glib is
# libglib alone (memory, strings, logging, GRand, spawning for guestfwd
# exec), so only that library is built: not gobject, gio, gmodule nor the
# tools, which are most of glib's build.  glib's meson still looks for the
# dependencies of those parts when it configures: libffi and zlib get
# pkg-config stubs whose libraries do not exist (a use would fail to link),
# libintl is ours (cmake/mingw-libintl: no translations), pcre2 (GRegex is
# in libglib) is built for real.  Costs, measured: see docs/PERFORMANCE.md
# ("Windows build").  libslirp is Debian's 4.7, which passes host sockets as
# int: a Win64 SOCKET is a handle value that Windows keeps small in
# practice, as QEMU relied on before 4.9; 4.9's slirp_os_socket API is used
# whenever the library is 4.9 or later (dev-net/slirp_backend.c), e.g.
# MSYS2's.
find_program(MINIVM_MESON meson)
if(NOT MINIVM_MESON)
  message(WARNING "deps: meson not found (scripts/install-deps.sh): no dev-net.exe")
  return()
endif()
minivm_debian_source(pcre2 PCRE2_SRC)
minivm_debian_source(glib2.0 GLIB_SRC)
minivm_debian_source(libslirp SLIRP_SRC)
if(NOT PCRE2_SRC OR NOT GLIB_SRC OR NOT SLIRP_SRC)
  message(WARNING "deps: no source for pcre2, glib2.0 or libslirp: no dev-net.exe")
  return()
endif()
minivm_build_cmake_dep(pcre2 ${PCRE2_SRC} ${MINIVM_DEPS_PREFIX}/lib/libpcre2-8.a
  -DPCRE2_BUILD_PCRE2GREP=OFF -DPCRE2_BUILD_TESTS=OFF -DPCRE2_SHOW_REPORT=OFF -DPCRE2_SUPPORT_JIT=OFF)

set(intl_dir ${CMAKE_CURRENT_LIST_DIR}/mingw-libintl)
if(NOT EXISTS ${MINIVM_DEPS_PREFIX}/lib/libintl.a)
  execute_process(
    COMMAND ${CMAKE_C_COMPILER} -O2 -c ${intl_dir}/intl.c -o ${MINIVM_DEPS_DIR}/intl.o
    COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND ${CMAKE_AR} rcs ${MINIVM_DEPS_PREFIX}/lib/libintl.a ${MINIVM_DEPS_DIR}/intl.o
                  COMMAND_ERROR_IS_FATAL ANY)
endif()
configure_file(${intl_dir}/libintl.h ${MINIVM_DEPS_PREFIX}/include/libintl.h COPYONLY)
foreach(stub libffi:3.4.4 zlib:1.2.13)
  string(REPLACE ":" ";" stub ${stub})
  list(GET stub 0 name)
  list(GET stub 1 version)
  file(WRITE ${MINIVM_DEPS_PREFIX}/lib/pkgconfig/${name}.pc
    "Name: ${name}\nDescription: not built: only glib's libglib is, which does not use it\n"
    "Version: ${version}\nLibs: -lminivm-${name}-not-built\n")
endforeach()

# meson's cross file: our compiler, our pkg-config directory.  No exe
# wrapper: glib's few run checks take the answers below instead (what
# they gave under Wine), and configure does not start Wine.
get_filename_component(mingw_bin ${CMAKE_C_COMPILER} DIRECTORY)
set(MINIVM_MESON_CROSS ${MINIVM_DEPS_DIR}/meson-cross.ini)
file(WRITE ${MINIVM_MESON_CROSS}
  "[binaries]\n"
  "c = '${CMAKE_C_COMPILER}'\n"
  "ar = '${CMAKE_AR}'\n"
  "strip = '${mingw_bin}/${MINGW_TRIPLE}-strip'\n"
  "windres = '${CMAKE_RC_COMPILER}'\n"
  "pkgconfig = 'pkg-config'\n"
  "[built-in options]\n"
  "c_args = ['-I${MINIVM_DEPS_PREFIX}/include']\n"
  "c_link_args = ['-L${MINIVM_DEPS_PREFIX}/lib']\n"
  "[properties]\n"
  "pkg_config_libdir = '${MINIVM_DEPS_PREFIX}/lib/pkgconfig'\n"
  "needs_exe_wrapper = true\n"
  "have_c99_vsnprintf = true\n"
  "have_c99_snprintf = true\n"
  "have_unix98_printf = false\n"
  "va_val_copy = true\n"
  "growing_stack = false\n"
  "[host_machine]\n"
  "system = 'windows'\ncpu_family = 'x86_64'\ncpu = 'x86_64'\nendian = 'little'\n")

# Configure the meson project in srcdir and build its `target` (a path in
# its build directory) unless that exists.  Only the targets we need:
# `meson install` would build everything.
function(minivm_build_meson_dep name srcdir target)
  set(bindir ${MINIVM_DEPS_DIR}/build/${name})
  if(EXISTS ${bindir}/${target})
    return()
  endif()
  message(STATUS "deps: building ${name} for Windows")
  set(rc 0)
  if(NOT EXISTS ${bindir}/build.ninja)
    execute_process(
      COMMAND ${MINIVM_MESON} setup ${bindir} ${srcdir} --cross-file ${MINIVM_MESON_CROSS}
              --prefix ${MINIVM_DEPS_PREFIX} --libdir lib --default-library static
              --buildtype release --wrap-mode nodownload ${ARGN}
      RESULT_VARIABLE rc OUTPUT_VARIABLE err ERROR_VARIABLE err)
  endif()
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_MAKE_PROGRAM} -C ${bindir} ${target}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE err ERROR_VARIABLE err)
  endif()
  if(NOT rc EQUAL 0 OR NOT EXISTS ${bindir}/${target})
    message(FATAL_ERROR "deps: building ${name} failed (in ${bindir}):\n${err}")
  endif()
endfunction()

set(glib_build ${MINIVM_DEPS_DIR}/build/glib)
minivm_build_meson_dep(glib ${GLIB_SRC} glib/libglib-2.0.a
  -Dtests=false -Dnls=disabled -Dlibmount=disabled -Dselinux=disabled -Dxattr=false
  -Dman=false -Dgtk_doc=false -Dinstalled_tests=false -Dsysprof=disabled -Dlibelf=disabled)
# libglib is used where it was built, as meson's uninstalled .pc describes
# it: headers from the source and build trees.
configure_file(${glib_build}/meson-uninstalled/glib-2.0-uninstalled.pc
               ${MINIVM_DEPS_PREFIX}/lib/pkgconfig/glib-2.0.pc COPYONLY)
# The library alone (its test programs do not link statically on Windows:
# pingtest defines slirp_inet_aton again), installed by hand as
# `meson install` would: the .pc meson wrote for the prefix, the library,
# the two public headers.
set(slirp_build ${MINIVM_DEPS_DIR}/build/libslirp)
minivm_build_meson_dep(libslirp ${SLIRP_SRC} libslirp.a)
file(COPY ${SLIRP_SRC}/src/libslirp.h ${slirp_build}/libslirp-version.h
     DESTINATION ${MINIVM_DEPS_PREFIX}/include/slirp)
file(COPY ${slirp_build}/libslirp.a DESTINATION ${MINIVM_DEPS_PREFIX}/lib)
file(COPY ${slirp_build}/meson-private/slirp.pc DESTINATION ${MINIVM_DEPS_PREFIX}/lib/pkgconfig)

# PkgConfig::SLIRP as on Linux, with the static link line (--static).
set(ENV{PKG_CONFIG_LIBDIR} ${MINIVM_DEPS_PREFIX}/lib/pkgconfig)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SLIRP_WIN REQUIRED slirp)
add_library(PkgConfig::SLIRP INTERFACE IMPORTED GLOBAL)
set_target_properties(PkgConfig::SLIRP PROPERTIES
  INTERFACE_COMPILE_OPTIONS "${SLIRP_WIN_STATIC_CFLAGS}"
  INTERFACE_LINK_LIBRARIES "${SLIRP_WIN_STATIC_LDFLAGS}") # after the objects that need them
set(MINIVM_HAVE_SLIRP ON)
