#!/usr/bin/env bash
# The method experiments of docs/method.md, one after another, on one H200 (started in the background
# by the device call; each experiment resumes if started again). Expects the specs and data in $EXP.
set -u
cd "$(dirname "$0")/.."
EXP=${EXP:-/root/exp}
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
for name in ${NAMES-cqa_low svamp cqa_quarter cqa_full}; do
  start=$(date +%s)
  # SHARD=K/N: this process's share of each grid (one process per GPU, same --out folder);
  # JOBS=N: the grid as N processes dealt over the visible GPUs (distil experiment --jobs)
  python3 -m distil_cli -q experiment "$EXP/$name.toml" --out "$EXP/$name" ${SHARD:+--shard "$SHARD"} ${JOBS:+--jobs "$JOBS"} \
    > "$EXP/$name${SHARD:+.${SHARD%/*}}.log" 2>&1
  echo "$name exit $? in $(( $(date +%s) - start )) s"
done
echo all-done
