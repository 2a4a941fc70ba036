#!/usr/bin/env bash
# 2026-11-29, fifth session, on nvidia-h200-x2: after the performance parts (perf-done in
# $EXP/perf2.log), the two halves of the 3% seed grid, one per GPU; when both are done, the
# 49k-token checkpointed variants again, alone on the machine.
set -u
cd "$(dirname "$0")/.."
EXP=${EXP:-/root/exp}
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
until grep -q perf-done "$EXP/perf2.log" 2>/dev/null; do sleep 2; done
CUDA_VISIBLE_DEVICES=1 NAMES=cqa_tiny_seeds_b bash benchmarks/run_method_h200.sh > "$EXP/gpu1b.log" 2>&1 &
CUDA_VISIBLE_DEVICES=0 NAMES=cqa_tiny_seeds_a bash benchmarks/run_method_h200.sh > "$EXP/gpu0b.log" 2>&1
wait
CUDA_VISIBLE_DEVICES=0 python3 -m distil_cli -q bench train --shape qwen0.5b --steps 20 --records 96 --no-baseline \
  --variant varlen,49152,0,liger+flce+ckpt+bf16 --variant varlen,49152,0,liger+flce+ckpt --out "$EXP/perf2/ckpt49.json" \
  > "$EXP/perf2/ckpt49.log" 2>&1
echo session-done
