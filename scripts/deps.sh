#!/usr/bin/env bash
# Installs the Debian 12 packages mhim needs, and only those missing. Idempotent: a second run with
# everything present does nothing and needs no network.
# Usage: scripts/deps.sh           what building and running mhim needs (scripts/quickstart.sh)
#        scripts/deps.sh --tests   that, plus what the test suite needs (scripts/test.sh)
# (as root, or with sudo available)
set -euo pipefail

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "deps: unknown argument '$arg' (only --tests)" >&2; exit 2 ;;
  esac
done

# Build toolchain, LibTorch (CPU) with a fast BLAS, MPI, and the header/libs the components use.
# libopenblas0-openmp: without it LibTorch's libblas.so.3 resolves to netlib BLAS (~40x slower GEMM).
# Do not add libopenblas0-pthread: its threads fight OpenMP's.
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libboost-dev nlohmann-json3-dev libhdf5-dev libyaml-cpp-dev
  # PNG heatmaps (mhim heatmap): written and read through libpng.
  libpng-dev
)
if ((with_tests)); then
  packages+=(
    libgtest-dev
    # Python torch.load reads the state_dicts we write; the reference's fixtures and checkpoints.
    python3-torch
    # A real one-node Slurm for the batch scripts (ctest -L slurm; ~12 s to install).
    slurm-wlm munge
    # Headless Chromium renders the sweep status page (ctest label browser; ~25 s, ~0.5 GB).
    chromium
  )
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Make sure the OpenMP OpenBLAS is the libblas.so.3 that LibTorch resolves (update-alternatives picks
# the highest priority; a pthread variant installed by hand could otherwise win).
if [[ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]]; then
  $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null 2>&1 || true
fi
echo "deps: done"
