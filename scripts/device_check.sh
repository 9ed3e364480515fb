#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU, a CUDA toolkit and a Python PyTorch (whose bundled
# CUDA LibTorch we build against) but without our Debian packages: it builds the library, the NCCL
# backend and their tests (MIL_CORE_ONLY), then runs the CUDA tests and the library's CPU suite on
# that LibTorch. Headers Debian would give (nlohmann-json, GoogleTest) may come from DEPS_ROOT
# (default .devdeps/root, made by scripts/device_deps.sh).
#
#   scripts/device_check.sh [OUT_DIR]        (logs land in OUT_DIR, default $OUT or /tmp/device-check)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/device-check}}
mkdir -p "$out"
deps=${DEPS_ROOT:-$PWD/.devdeps/root}
log() { echo "== $*"; }

log "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())'
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
nccl_home=$(python3 -c 'import os, nvidia.nccl as n; print(os.path.dirname(n.__file__) if n.__file__ else list(n.__path__)[0])' 2>/dev/null ||
            python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
[[ -n "$nccl_home" ]] && ls "$nccl_home"/include/nccl.h "$nccl_home"/lib/libnccl.so* 2>/dev/null
export NCCL_HOME=${NCCL_HOME:-$nccl_home}
export PATH=/usr/local/cuda/bin:$PATH

log "configure (CUDA LibTorch from $torch_prefix, NCCL_HOME=$NCCL_HOME)"
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIL_CORE_ONLY=ON -DMIL_WITH_HDF5=AUTO \
  -DMIL_WITH_NCCL=ON -DMIL_USE_CCACHE=OFF "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1
status=$?
tail -25 "$out/configure.log"
((status == 0)) || exit 10

log "build"
start=$(date +%s)
cmake --build build-cuda --parallel "$(nproc)" --target cuda_tests mil_tests -- -k 0 >"$out/build.log" 2>&1
status=$?
grep -E "error|Error" "$out/build.log" | head -40
echo "build took $(( $(date +%s) - start )) s, status $status"
((status == 0)) || { tail -30 "$out/build.log"; exit 11; }

export LD_LIBRARY_PATH=${NCCL_HOME:+$NCCL_HOME/lib:}${LD_LIBRARY_PATH:-}
# PyPI LibTorch wheels export their own copy of libstdc++'s std::filesystem; our calls bound to it and
# fs::remove_all jumped to address 0 (torch 2.11+cu130, g++ 13). Preloading the system libstdc++ puts
# its definitions first for every library.
export LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6)
log "CUDA tests"
timeout 300 build-cuda/tests/cuda_tests 2>&1 | tee "$out/cuda_tests.log" | tail -60
log "library suite on this LibTorch (CPU)"
timeout 150 build-cuda/tests/mil_tests --gtest_brief=1 2>&1 | tee "$out/mil_tests.log" | tail -40
