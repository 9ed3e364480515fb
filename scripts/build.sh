#!/usr/bin/env bash
# Configures (Release, Ninja, ccache when found) and builds into build/. Extra arguments are build
# targets (default: everything). Used by quickstart.sh and test.sh; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${MIL_BUILD_DIR:-build}
# Paths under the checkout are hashed relative to it, so clones in other folders share cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
# MIL_BUILD_TESTS=OFF (the quickstart) configures without the test suite and GoogleTest; a later
# build with tests (the default) reconfigures the same folder, so both share one build.
tests=${MIL_BUILD_TESTS:-ON}
if [[ ! -f "$build_dir/build.ninja" ]] ||
   ! grep -qx "MIL_BUILD_TESTS:BOOL=$tests" "$build_dir/CMakeCache.txt" 2>/dev/null; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIL_BUILD_TESTS="$tests"
fi
# LibTorch translation units need ~1.5 GB each; two at a time fit any machine this targets.
jobs=${MIL_BUILD_JOBS:-$(nproc)}
if (($# > 0)); then
  cmake --build "$build_dir" --parallel "$jobs" --target "$@"
else
  cmake --build "$build_dir" --parallel "$jobs"
fi
