# Cross build for 64-bit Arm Linux hosts with Debian's cross toolchain
# (gcc-aarch64-linux-gnu) and Debian's arm64 multiarch libraries
# (libnng-dev:arm64, libcmocka-dev:arm64; scripts/install-deps.sh):
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(AARCH64_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${AARCH64_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${AARCH64_TRIPLE}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${AARCH64_TRIPLE})

# Multiarch: the arm64 packages install into the host's /usr, under
# lib/aarch64-linux-gnu; headers are shared.  Only those libraries may be
# found, never the host's x86-64 ones.
set(CMAKE_FIND_ROOT_PATH /usr/${AARCH64_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_PREFIX_PATH /usr/lib/${AARCH64_TRIPLE}/cmake)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${AARCH64_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# Unit tests run on the build host under QEMU's user-mode emulation
# (Debian's qemu-user), which finds the arm64 loader and libraries at their
# multiarch paths.
find_program(AARCH64_QEMU_USER qemu-aarch64)
if(AARCH64_QEMU_USER)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${AARCH64_QEMU_USER})
endif()
