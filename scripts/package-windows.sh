#!/bin/sh
# The Windows release: the four .exes, README-windows.txt, minivm.conf and
# the default guest (bzImage, initrd.img) in one folder and its zip.
#   scripts/package-windows.sh [BUILD_DIR]     (default: build-mingw)
# Configures and builds BUILD_DIR with the MinGW toolchain if needed, then
# `cmake --install`s it into BUILD_DIR/package/minivm-VERSION-windows and
# zips that folder; the last line names the zip.
set -eu

cd "$(dirname "$0")/.."
BUILD=${1:-build-mingw}

[ -f "$BUILD/CMakeCache.txt" ] ||
	cmake -S . -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DMINIVM_TESTS=OFF
cmake --build "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
name=minivm-$version-windows
stage=$BUILD/package/$name
for exe in launcher vmm-core dev-serial dev-net; do
	[ -f "$BUILD/bin/$exe.exe" ] || { echo "package-windows: no $exe.exe in $BUILD/bin" >&2; exit 1; }
done
rm -rf "$stage" "$stage.zip"
cmake --install "$BUILD" --prefix "$stage" --strip >/dev/null
# The default guest, built for Windows exactly as for Linux (cached debs).
[ -f "$BUILD/guest/bzImage" ] && [ -f "$BUILD/guest/initrd.img" ] || sh guest/build-guest.sh "$BUILD/guest"
cp "$BUILD/guest/bzImage" "$BUILD/guest/initrd.img" "$stage/"
(cd "$BUILD/package" && cmake -E tar cf "$name.zip" --format=zip "$name")
echo "$stage.zip"
