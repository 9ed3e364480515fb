#!/usr/bin/env bash
# Build-time figures of docs/performance.md: clones this repository at each COMMIT into a scratch
# folder and, for each TARGET (default: mhim, then everything), times
#   cold: a fresh build folder and an empty private ccache (every object compiled), then
#   warm: the build folder removed and built again with that ccache (what `rm -rf build` or a CI
#         cache restored at the same path sees).
# The build folder is `build` inside the clone, as scripts/build.sh makes it, so ccache's base
# directory makes every path relative; a folder elsewhere would defeat the cache for sources that
# use a precompiled header.
# Prints one line per (commit, target, kind): wall, user and system seconds (GNU time).
# Usage: scripts/measure_build.sh [--jobs N] COMMIT... [-- TARGET...]   (TARGET "all" = everything)
# Example: scripts/measure_build.sh 59be599 HEAD -- mhim all
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

jobs=$(nproc)
commits=()
targets=()
while (($#)); do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --) shift; targets=("$@"); break ;;
    *) commits+=("$1"); shift ;;
  esac
done
((${#commits[@]})) || { sed -n '2,8p' "$0"; exit 2; }
((${#targets[@]})) || targets=(mhim all)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mil-build-time.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

build_once() {  # build_once SRC BUILD_DIR CCACHE_DIR TARGET LABEL KIND (cold or warm)
  local src=$1 dir=$2 cache=$3 target=$4 label=$5 tests=ON
  rm -rf "$dir"
  [[ "$target" == mhim ]] && tests=OFF  # what the quickstart configures
  CCACHE_DIR="$cache" CCACHE_BASEDIR="$src" cmake -S "$src" -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DMIL_BUILD_TESTS=$tests >/dev/null
  local ninja_target=()
  [[ "$target" == all ]] || ninja_target=("$target")
  CCACHE_DIR="$cache" CCACHE_BASEDIR="$src" /usr/bin/time -f "%e %U %S" -o "$scratch/time" \
    ninja -C "$dir" -j "$jobs" "${ninja_target[@]}" >"$scratch/build.log" 2>&1 ||
    { tail -20 "$scratch/build.log"; exit 1; }
  read -r wall user sys <"$scratch/time"
  printf '%-10s %-6s %-5s wall %7.1f s  user %7.1f s  sys %6.1f s  (%d jobs, load %s)\n' \
    "$label" "$target" "$6" "$wall" "$user" "$sys" "$jobs" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

for commit in "${commits[@]}"; do
  src="$scratch/src-$commit"
  git clone -q --no-checkout "$repo" "$src"
  git -C "$src" checkout -q "$commit"
  label=$(git -C "$src" rev-parse --short HEAD)
  for target in "${targets[@]}"; do
    cache="$scratch/ccache-$label-$target"
    mkdir -p "$cache"
    build_once "$src" "$src/build" "$cache" "$target" "$label" cold
    build_once "$src" "$src/build" "$cache" "$target" "$label" warm
  done
  rm -rf "$src" "$scratch"/ccache-*
done
