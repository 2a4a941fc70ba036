#!/usr/bin/env bash
# Is Gemma 3 270M's chance-level CQA a fault of distil's training? On one GPU through the device tool:
# `distil train --objective standard` and benchmarks/reference_loop.py (a plain PyTorch loop, none of
# distil's training code) on the same 1,218 CQA records (benchmarks/experiments/data/cqa12_s1: 12.5% of
# the train split, shuffled with random.Random(1), made here when missing; valid = the first 20 test
# records, unused with --eval-samples 0), the same 462 steps of 16 records (6 epochs) at each learning
# rate in LRS, then both folders scored by benchmarks/cqa_choice_loglik.py on the first 300 test records: choice accuracy
# under distil's prompt and the answer tokens' NLL. Gemma is pulled from /root/m/gemma.gguf as in
# run_size_h100.sh (the same carries first). Summary lines go to $OUT/control.txt.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-control-out}
DATA=benchmarks/experiments/data/cqa12_s1
WORK=${WORK:-/root/control}
MODEL=~/.cache/distil/models/gemma-3-270m
mkdir -p "$OUT" "$WORK"
if [ ! -f "$DATA/train.jsonl" ]; then  # made from the CQA split of benchmarks/dss.py
  python3 - "$DATA" <<'PY'
import random, sys
from pathlib import Path
cqa, out = Path("benchmarks/experiments/data/cqa"), Path(sys.argv[1])
lines = (cqa / "train.jsonl").read_text().splitlines()
random.Random(1).shuffle(lines)
out.mkdir(parents=True, exist_ok=True)
(out / "train.jsonl").write_text("\n".join(lines[:1218]) + "\n")
(out / "valid.jsonl").write_text("\n".join((cqa / "test.jsonl").read_text().splitlines()[:20]) + "\n")
PY
fi
if [ ! -f "$MODEL/distil-model.json" ]; then
  python3 -m distil_cli models pull gemma3-270m --gguf /root/m/gemma.gguf 2>&1 | grep -v "it/s" | tail -2
fi
score() {  # folder label
  acc=$(python3 benchmarks/cqa_choice_loglik.py "$1" --name gemma3-270m --records 300 --prompt distil 2>&1 | tail -1)
  nll=$(python3 benchmarks/cqa_choice_loglik.py "$1" --name gemma3-270m --records 300 --target-nll 2>&1 | tail -1)
  echo "$2: $acc | $nll" | tee -a "$OUT/control.txt"
}
for lr in ${LRS:-1e-4 1e-5}; do
  t0=$(date +%s)
  [ -d "$WORK/distil_$lr/final" ] || python3 -m distil_cli -q train "$DATA" --model gemma3-270m --objective standard \
    --epochs 6 --lr "$lr" --out "$WORK/distil_$lr" --eval-samples 0 > "$WORK/distil_$lr.log" 2>&1
  echo "distil train lr $lr: exit $? in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/control.txt"
  tail -2 "$WORK/distil_$lr.log"
  cp "$WORK/distil_$lr/metrics.jsonl" "$OUT/distil_$lr.metrics.jsonl" 2>/dev/null
  t0=$(date +%s)
  [ -f "$WORK/ref_$lr/losses.json" ] || python3 benchmarks/reference_loop.py "$MODEL" "$WORK/ref_$lr" --name gemma3-270m \
    --data "$DATA/train.jsonl" --steps 462 --lr "$lr" 2>&1 | tail -1 | tee -a "$OUT/control.txt"
  echo "reference loop lr $lr: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/control.txt"
  cp "$WORK/ref_$lr/losses.json" "$OUT/ref_$lr.losses.json" 2>/dev/null
  score "$WORK/distil_$lr/final" "distil lr $lr"
  score "$WORK/ref_$lr" "reference lr $lr"
done
[ -n "${BASE:-}" ] && score "$MODEL" "pulled, untrained"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
