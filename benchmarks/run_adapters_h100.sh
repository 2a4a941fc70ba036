#!/usr/bin/env bash
# LoRA and QLoRA at the Qwen2.5-7B shape against TRL + peft with the same adapter (r 16, every linear
# layer) and token budget, and Gemma 3 270M full fine-tuning's MFU, on one GPU (docs/benchmarks.md).
# Needs the wheels of run_size_h100.sh (call 1, with trl) and bitsandbytes (.carry/bnb, a call of its
# own: 43 MB) in /root/site, or both at once as .carry/ab (the bench's wheels only); Gemma pulled by
# run_size_h100.sh for the train phase (`distil train --lora` and `--load-in-4bit` on it, with
# the data run_size_h100.sh copied to $EXP). Reports to $OUT.
#   bash benchmarks/run_adapters_h100.sh
# The qlora and lora phases build a random 7.6B model per variant (qlora saves it once as a 15 GB folder and
# loads it back in 4-bit); on an H100 (2026-12-07) the qlora phase took 194 s, lora 157 s, gemma 56 s:
# give the 7B phases a call each (PHASES=qlora LIMIT=300, then PHASES=lora LIMIT=250).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-adapters-out}
STEPS=${STEPS:-10}
mkdir -p "$OUT"
# .carry/ab: the wheels a bench needs with bitsandbytes in one carry (no nltk or rouge-score: 50 MB)
for d in .carry/ab .carry/bnb; do
  [ -d $d ] && python3 -m pip install -q --no-index --no-deps --target /root/site $d/*.whl
done
bench() {  # bench NAME args...: one `distil bench train` report
  local name=$1; shift
  local t0=$(date +%s)
  timeout "${LIMIT:-280}" python3 -m distil_cli bench train --steps "$STEPS" --out "$OUT/$name.json" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name exit $? in $(( $(date +%s) - t0 )) s"
  python3 - "$OUT/$name.json" <<'EOF'
import json, sys
from pathlib import Path
if Path(sys.argv[1]).is_file():
    for r in json.loads(Path(sys.argv[1]).read_text())["results"]:
        print(f"  {r['name']}: {r['useful_tokens_per_s']:,.0f} tokens/s, peak {r.get('peak_gib')} GiB, MFU {r.get('mfu')}")
EOF
}
for phase in ${PHASES:-qlora lora train gemma}; do
  case $phase in
    # +liger+flce: Liger's kernels and the fused loss under the adapter (`distil train --lora` applies them
    # with --kernels liger only): whether they are the lever for distil >= 1.2x TRL + peft
    qlora) bench qwen7b-qlora --shape qwen7b --no-baseline --variant varlen,16384,0,qlora+ckpt \
             --variant varlen,16384,0,qlora+liger+flce+ckpt --variant trl,16384,0,qlora+ckpt ;;
    lora) bench qwen7b-lora --shape qwen7b --no-baseline --variant varlen,16384,0,lora+ckpt \
            --variant varlen,16384,0,lora+liger+flce+ckpt --variant trl,16384,0,lora+ckpt ;;
    # `distil train --lora` / `--load-in-4bit` on the pulled Gemma 3 270M with today's defaults (kernels auto):
    # which kernels and loss the real command applies under an adapter, and that it trains
    train) for mode in lora qlora; do
             t0=$(date +%s)
             timeout "${LIMIT:-280}" python3 -m distil_cli train "${EXP:-/root/exp}/data/cqa" --model gemma3-270m --lora \
               $([ $mode = qlora ] && echo --load-in-4bit) --max-steps 30 -o "/root/train-$mode" > "$OUT/train-$mode.log" 2>&1
             echo "train $mode exit $? in $(( $(date +%s) - t0 )) s"; grep -E "loss|Error|error" "$OUT/train-$mode.log" | tail -3
             python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' ', r['speed'], r['global_steps'], 'steps in', round(r['train_seconds'], 1), 's')" \
               "/root/train-$mode/run.json" 2>&1 | tail -1
           done ;;
    # Gemma 3 270M's shape (random init): varlen with its sliding windows over packed rows, with and without
    # Liger's kernels, and SDPA over rows of at most 2,048 tokens (one 32k-token row under SDPA needs a dense
    # 32k x 32k mask: out of memory); all with the fused loss (`distil train`'s default on a GPU: its 262k-token
    # vocabulary makes a 32k-token batch's logits 17 GB in bf16)
    gemma) bench gemma270m --shape gemma270m --no-baseline --variant varlen,16384,0,liger+flce+bf16 \
             --variant varlen,32768,0,liger+flce+bf16 --variant varlen,32768,0,flce+bf16 \
             --variant sdpa,32768,2048,liger+flce+bf16 ;;
  esac
done
