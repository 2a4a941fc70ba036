#!/usr/bin/env bash
# 2026-11-29, sixth session, on nvidia-h200-x2 (the host-sync benchmark ran before: PARTS=syncs):
# the 3% seed grid and the 10-epoch grid, shared by two processes (--shard), GPU 0 running the
# CUDA tests first.
set -u
cd "$(dirname "$0")/.."
EXP=${EXP:-/root/exp}
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1 R=$EXP/perf
NAMES="cqa_tiny_seeds_c cqa_tiny_e10"
CUDA_VISIBLE_DEVICES=1 SHARD=2/2 NAMES=$NAMES bash benchmarks/run_method_h200.sh > "$EXP/gpu1.log" 2>&1 &
CUDA_VISIBLE_DEVICES=0 PARTS="tests" bash benchmarks/run_perf_h200.sh
CUDA_VISIBLE_DEVICES=0 SHARD=1/2 NAMES=$NAMES bash benchmarks/run_method_h200.sh > "$EXP/gpu0.log" 2>&1
wait
echo session-done
