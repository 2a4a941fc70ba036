#!/usr/bin/env bash
# 2026-11-30, seventh session, on nvidia-h200-x2: SVAMP with 12 seeds, CQA 12.5% with six new seeds
# and CQA 100% with today's defaults, each grid shared by four processes (--shard K/4), two per GPU
# (a 135M student with 16 records a step leaves most of an H200 idle: two runs side by side).
set -u
cd "$(dirname "$0")/.."
# Run from a copy: every device call re-syncs the working tree, and a process starting while it does
# failed with "No module named distil_cli.__main__" (seventh session, one shard lost its first grid).
rm -rf /root/repo && mkdir -p /root/repo && cp -r distil_cli benchmarks /root/repo/ && cd /root/repo
EXP=${EXP:-/root/exp}
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
NAMES=${NAMES:-"svamp_seeds cqa_low_seeds cqa_full_today"}
for k in 1 2 3 4; do
  CUDA_VISIBLE_DEVICES=$(( (k + 1) % 2 )) SHARD=$k/4 NAMES=$NAMES bash benchmarks/run_method_h200.sh > "$EXP/proc$k.log" 2>&1 &
done
wait
echo session-done
