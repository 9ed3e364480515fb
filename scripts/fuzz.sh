#!/usr/bin/env bash
# Fuzzes every reader of other people's files (tests/fuzz/*_fuzz.cpp) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, SECONDS each (default 60), one after another.
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]      e.g. scripts/fuzz.sh 600 torch_save sweep_file
#
# Builds build-fuzz/ with clang (-DMIL_FUZZ=ON; installs clang-14 and libFuzzer's runtime when
# missing). Each target starts from its committed corpus (tests/fuzz/corpus/<target>/) and its
# crash regressions, with its dictionary (tests/fuzz/dict/), and keeps what it finds in
# build-fuzz/fuzz-corpus/<target>/. New inputs that add coverage are merged, minimised, into the
# committed corpus when they are small (MIL_FUZZ_MERGE_MAX_KB per target, default 64; 0 keeps them
# in the build folder only). A crash, leak, UB report or timeout leaves its input in
# build-fuzz/fuzz-artifacts/<target>/ and makes the script exit 1; add it to
# tests/fuzz/regressions/<target>/ with the fix. Prints executions, coverage and CPU time per target.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all=()
for f in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$f" _fuzz.cpp)
  all+=("$name")
done
targets=("$@")
((${#targets[@]} > 0)) || targets=("${all[@]}")

# libFuzzer ships with clang's compiler-rt (libclang-rt-14-dev on Debian 12).
if ! command -v clang++-14 >/dev/null || ! compgen -G "/usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  echo "fuzz: installing clang-14 and libclang-rt-14-dev (libFuzzer)"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get install -y --no-install-recommends clang-14 libclang-rt-14-dev
fi

build=${MIL_FUZZ_BUILD_DIR:-build-fuzz}
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
if [[ ! -f "$build/build.ninja" ]]; then
  # -O1 -gline-tables-only, as OSS-Fuzz builds: quicker to compile than -O3 here, and the
  # sanitizers' reports keep their line numbers.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 \
    -DCMAKE_CXX_COMPILER=clang++-14 "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" -DMIL_FUZZ=ON -DMIL_BUILD_TESTS=OFF
fi
# Only the targets asked for (each compiles just the readers it calls). MIL_FUZZ_NO_BUILD=1 runs
# the binaries already built (e.g. while another build of build-fuzz is under way).
if [[ ${MIL_FUZZ_NO_BUILD:-0} != 1 ]]; then
  cmake --build "$build" --parallel "${MIL_BUILD_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"
fi

# Why each setting: docs/security-and-limits.md.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_odr_violation=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(pwd)/tests/sanitizers/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export OMP_NUM_THREADS=1

dictionary() {
  case $1 in
    torch_save | pt_features | state_dict) echo tests/fuzz/dict/torch_save.dict ;;
    label_csv | split_file) echo tests/fuzz/dict/csv.dict ;;
    specs_json | journal | heartbeat) echo tests/fuzz/dict/json.dict ;;
    sweep_file) echo tests/fuzz/dict/sweep_yaml.dict ;;
    *) [[ -f tests/fuzz/dict/$1.dict ]] && echo "tests/fuzz/dict/$1.dict" ;;
  esac
}

status=0
summary=()
total_cpu=0
for t in "${targets[@]}"; do
  binary="$build/tests/fuzz/fuzz_$t"
  [[ -x $binary ]] || { echo "fuzz: no target '$t' (have: ${all[*]})" >&2; exit 2; }
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  seeds=(tests/fuzz/corpus/"$t")
  [[ -d tests/fuzz/regressions/$t ]] && seeds+=(tests/fuzz/regressions/"$t")
  dict=$(dictionary "$t" || true)
  echo "fuzz: $t for ${seconds}s${dict:+ (dictionary $dict)}"
  # Inputs an earlier run left in $artifacts stay for a person to look at; only this run's count.
  started="$build/fuzz-logs/$t.started"
  touch "$started"
  rc=0
  # New inputs go to the first folder ($work); the committed seeds are read only.
  /usr/bin/time -f "cpu_seconds %U %S" -o "$log.time" \
    "$binary" "$work" "${seeds[@]}" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" ${dict:+-dict="$dict"} \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  cpu=$(awk '/^cpu_seconds/ {printf "%.1f", $2 + $3}' "$log.time")
  total_cpu=$(awk -v a="$total_cpu" -v b="${cpu:-0}" 'BEGIN {printf "%.1f", a + b}')
  corpus=$(find "$work" "${seeds[@]}" -type f | wc -l)
  # slow-unit-* inputs only say that an input took over 10 s of wall time (a loaded machine), not a bug.
  found=$(find "$artifacts" -type f ! -name 'slow-unit-*' -newer "$started" | wc -l)
  result=ok
  if ((rc != 0 || found > 0)); then
    result="FAILED (exit $rc; $found input(s) in $artifacts; see $log)"
    status=1
  fi
  # Merge what adds coverage, minimised, into the committed corpus when it is small.
  merged="$build/fuzz-merged/$t"
  rm -rf "$merged" && mkdir -p "$merged"
  cp -r tests/fuzz/corpus/"$t"/. "$merged"/
  "$binary" -merge=1 "$merged" "$work" >"$log.merge" 2>&1 || true
  added=$(comm -13 <(ls tests/fuzz/corpus/"$t" | sort) <(ls "$merged" | sort))
  added_kb=0
  for f in $added; do added_kb=$((added_kb + $(stat -c %s "$merged/$f") / 1024 + 1)); done
  kept="$build/fuzz-merged/$t"
  if [[ -n $added ]] && ((added_kb <= ${MIL_FUZZ_MERGE_MAX_KB:-64})); then
    for f in $added; do cp "$merged/$f" tests/fuzz/corpus/"$t"/; done
    kept="tests/fuzz/corpus/$t"
  fi
  summary+=("$(printf '%-14s %10s %6s %7s %7s %6s  %s; %d new (%d KB) -> %s' "$t" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$corpus" "${cpu:-?}" "$result" "$(wc -w <<<"$added")" "$added_kb" "$kept")")
done

printf '\n%-14s %10s %6s %7s %7s %6s  %s\n' target execs cov ft corpus cpu_s "result; corpus growth"
printf '%s\n' "${summary[@]}"
echo "total CPU seconds: $total_cpu (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
exit "$status"
