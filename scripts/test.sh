#!/usr/bin/env bash
# Installs what is missing, builds everything with tests, and runs the whole suite with ctest:
# unit tests, the MUSK1 real-data check (skipped without ../shared), and MPI tests that ctest
# launches through mpiexec with 2 and 3 ranks. Extra arguments go to ctest (e.g. -L unit).
#
#   scripts/test.sh --sanitize [ctest args]    (or MIL_SANITIZE=address,undefined scripts/test.sh)
# builds into build-sanitize/ with AddressSanitizer and UndefinedBehaviorSanitizer and runs the
# unit, end-to-end and fuzz-replay labels (not mpi: see docs/security-and-limits.md). Any
# sanitizer report fails the test that triggered it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --tests
sanitize=${MIL_SANITIZE:-}
if [[ ${1:-} == --sanitize ]]; then
  sanitize=${sanitize:-address,undefined}
  shift
fi
labels=()
targets=()
if [[ -n $sanitize ]]; then
  export MIL_BUILD_DIR=${MIL_BUILD_DIR:-build-sanitize}
  # -O1 (the sanitizers' advice) compiles quicker than -O3; -g1 gives reports line numbers.
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
              "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
  for s in ${sanitize//,/ }; do
    case $s in
      address) cmake_args+=(-DMIL_SANITIZE_ADDRESS=ON) ;;
      undefined) cmake_args+=(-DMIL_SANITIZE_UNDEFINED=ON) ;;
      *) echo "test.sh: unknown sanitizer '$s' (MIL_SANITIZE takes address, undefined or both)" >&2; exit 2 ;;
    esac
  done
  if [[ ! -f $MIL_BUILD_DIR/build.ninja ]]; then
    cmake -S . -B "$MIL_BUILD_DIR" -G Ninja -DMIL_BUILD_TESTS=ON "${cmake_args[@]}"
  fi
  # Why each setting and suppression: docs/security-and-limits.md and the .supp files.
  supp=$(pwd)/tests/sanitizers
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_odr_violation=0}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp}"
  labels=(-L 'unit|e2e|fuzz')
  # Only the executables those labels run (tests/CMakeLists.txt): not the MPI and slow ones.
  targets=(mil_sanitize_suite)
fi
build_dir=${MIL_BUILD_DIR:-build}

MIL_BUILD_TESTS=ON scripts/build.sh "${targets[@]}"
source scripts/mpi_env.sh
cd "$build_dir"
status=0
ctest --output-on-failure --parallel "${MIL_TEST_JOBS:-2}" "${labels[@]}" "$@" || status=$?
# The real-data figure, which ctest hides for passing tests.
grep -h "MUSK1 ABMIL" Testing/Temporary/LastTest.log 2>/dev/null || true
exit "$status"
