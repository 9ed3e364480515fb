#!/usr/bin/env bash
# Installs what is missing, builds everything with tests, and runs the whole suite with ctest:
# unit tests, the MUSK1 real-data check (skipped without ../shared), and MPI tests that ctest
# launches through mpiexec with 2 and 3 ranks. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --tests
MIL_BUILD_TESTS=ON scripts/build.sh
source scripts/mpi_env.sh
cd build
status=0
ctest --output-on-failure --parallel "${MIL_TEST_JOBS:-2}" "$@" || status=$?
# The real-data figure, which ctest hides for passing tests.
grep -h "MUSK1 ABMIL" Testing/Temporary/LastTest.log 2>/dev/null || true
exit "$status"
