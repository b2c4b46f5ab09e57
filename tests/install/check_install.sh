#!/bin/sh
# Usage: check_install.sh SOURCE_DIR BUILD_DIR WORK_DIR LIBDIR VERSION CMAKE CC
#
# Installs the Beamline build in BUILD_DIR into WORK_DIR/prefix, then builds
# tests/install/outside/main.c against it as README.md ("Use Beamline in
# your own program") tells users to, and runs each program:
#   1. cc with `pkg-config --cflags --libs beamline`: libbeamline.so.<soversion>
#   2. the same with `pkg-config --static`: libbeamline.a
#   3. a CMake project with find_package(Beamline): the shared and the static
#      imported target
#   4. the same project with add_subdirectory(SOURCE_DIR): Beamline built
#      along with it (a full compile, with two jobs)
# Everything it writes is under WORK_DIR, which it empties first.
set -eu
src=$1 build=$2 work=$3 libdir=$4 version=$5 cmake=$6 cc=$7
# The SONAME's version: the major, or major.minor before 1.0 (CMakeLists.txt).
major=${version%%.*} rest=${version#*.}
if [ "$major" = 0 ]; then sover=0.${rest%%.*}; else sover=$major; fi
outside=$src/tests/install/outside
prefix=$work/prefix

case $work in
/*/outside-check) rm -rf "$work" ;;
*) echo "refusing to empty $work" >&2; exit 2 ;;
esac
mkdir -p "$work"
cd "$work"

step() { echo "=== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# Runs a quiet command; shows its output only when it fails.
quiet() {
    log=$work/last.log
    "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
# Runs a built program (bounded in time) and checks what it prints.
check_run() {
    out=$(timeout 60 "$@") || fail "$* exited with $?: $out"
    want=$(printf 'reply: pong\nbeamline %s' "$version")
    [ "$out" = "$want" ] || fail "$* printed '$out', expected '$want'"
    echo "$out" | sed 's/^/    /'
}
needs_so() { readelf -d "$1" | grep -qF "[libbeamline.so.$sover]"; }

step "cmake --install $build --prefix $prefix"
quiet "$cmake" --install "$build" --prefix "$prefix"
for f in include/beamline.h include/beamline/gen_server.h "$libdir/libbeamline.a" \
    "$libdir/libbeamline.so" "$libdir/libbeamline.so.$sover" "$libdir/libbeamline.so.$version" \
    "$libdir/pkgconfig/beamline.pc" "$libdir/cmake/Beamline/BeamlineConfig.cmake" \
    "$libdir/cmake/Beamline/BeamlineConfigVersion.cmake"; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ "$(readlink "$prefix/$libdir/libbeamline.so.$sover")" = "libbeamline.so.$version" ] ||
    fail "libbeamline.so.$sover does not point at libbeamline.so.$version"

export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
step "pkg-config, shared: cc main.c \$(pkg-config --cflags --libs beamline)"
[ "$(pkg-config --modversion beamline)" = "$version" ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
quiet "$cc" -o app_shared "$outside/main.c" $(pkg-config --cflags --libs beamline)
needs_so app_shared || fail "app_shared does not use libbeamline.so.$sover"
LD_LIBRARY_PATH="$prefix/$libdir" check_run ./app_shared

step "pkg-config, static: cc main.c ... \$(pkg-config --static --libs beamline | sed ...)"
# shellcheck disable=SC2046
quiet "$cc" -o app_static "$outside/main.c" $(pkg-config --cflags beamline) \
    $(pkg-config --static --libs beamline | sed 's/-lbeamline/-l:libbeamline.a/')
needs_so app_static && fail "app_static uses libbeamline.so.$sover"
check_run ./app_static

step "CMake, find_package(Beamline) with CMAKE_PREFIX_PATH=$prefix"
quiet "$cmake" -S "$outside" -B package -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc"
grep -qx "Beamline_DIR:PATH=$prefix/$libdir/cmake/Beamline" package/CMakeCache.txt ||
    fail "find_package found another Beamline: $(grep Beamline_DIR package/CMakeCache.txt)"
quiet "$cmake" --build package -j2
needs_so package/outside || fail "Beamline::beamline is not the shared library"
needs_so package/outside_static && fail "Beamline::beamline_static uses libbeamline.so.$sover"
check_run package/outside # the build tree's RPATH finds the installed .so
check_run package/outside_static

step "CMake, add_subdirectory($src)"
quiet "$cmake" -S "$outside" -B subdir -DBEAMLINE_SOURCE_DIR="$src" -DCMAKE_C_COMPILER="$cc"
quiet "$cmake" --build subdir -j2
if [ -e subdir/beamline/tests ] || [ -e subdir/beamline/examples ]; then
    fail "add_subdirectory built Beamline's tests or examples"
fi
check_run subdir/outside
check_run subdir/outside_static
echo "all ways work"
