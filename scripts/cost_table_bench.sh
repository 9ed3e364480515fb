#!/usr/bin/env bash
# Measures the per-model training cost that the scheduler's cost table (mil/core/model_catalog.cpp)
# holds: `mhim bench train` on random bags at one LibTorch thread, every model of the catalogue and
# the three MHIM aggregators (each beside its mhim_pure baseline). The table takes the "CPU s/T"
# column (process CPU seconds of an epoch per thread), which a loaded machine slows far less than
# the wall-clock column, divided by the epoch's instances. Output: the benches' tables on stdout.
#
#   scripts/cost_table_bench.sh [BUILD_DIR] [PRECISIONS]    e.g. scripts/cost_table_bench.sh build fp32,bf16
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
precision=${2:-fp32}
models=abmil,gabmil,transmil,dsmil,clam_sb,clam_mb,dtfd,meanmil,maxmil
models+=,mhim_pure:attn,mhim:attn,mhim_pure:selfattn,mhim:selfattn,mhim_pure:dsmil,mhim:dsmil
echo "# $(date -u +%FT%TZ) $(uname -n) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) load: $(cut -d' ' -f1-3 /proc/loadavg)"
# 4 bags of 2,000-6,000 instances (mean 4,000, about a TCGA slide), D = 1024, 3 epochs (medians of
# the last 2), fp32 unless told.
"$build/app/mhim" bench train --threads 1 --bags 4 --min-instances 2000 --max-instances 6000 \
  --dim 1024 --epochs 3 --seed 1 --precision "$precision" --models "$models"
# The evaluation (forward-only) cost and the memory of a training step per instance come from
# `mhim bench models` on one bag of 4,000 instances: eval_s = train_s x (fwd ms / f+b ms), and
# bytes_per_instance = (f+b alloc MB + the bag's own N x D x 4 bytes) / N.
"$build/app/mhim" bench models --threads 1 --sizes 4000 --dim 1024 --repeats 3 \
  --models abmil,gabmil,transmil,dsmil,clam_sb,clam_mb,dtfd,meanmil,maxmil
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
