#!/usr/bin/env bash
# The commands behind docs/benchmarks.md, for one H200 through the device tool (see ../shared/device.md).
#   PART=qwen     CUDA kernel tests + training benchmark, random-init Qwen2.5-0.5B shape (no model files needed;
#                 the wheels pydantic..., liger-kernel in /root/site)
#   PART=smollm2  packed-vs-unpacked tests, generation + training benchmarks on the embedded SmolLM2-135M and a
#                 `distil train/infer/score` run with the defaults (needs /root/m/model.gguf assembled)
#   PART=all      both, in one call
# Reports land in $OUT (JSON); benchmarks/summary.py prints one line per run.
set -uo pipefail
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-bench-out}
PART=${PART:-qwen}
mkdir -p "$OUT"
if [ "$PART" = qwen ] || [ "$PART" = all ]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py 2>&1 | tail -1
  python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 96 --variant varlen,16384,0,liger+flce \
    --variant varlen,32768,0,liger+flce --variant varlen,49152,0,liger+flce+ckpt --profile 1 \
    --out "$OUT/train_qwen05b.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_qwen05b.json"
fi
if [ "$PART" = smollm2 ] || [ "$PART" = all ]; then
  python3 -m distil_cli -q models pull --gguf /root/m/model.gguf
  python3 -m pytest -q -p no:cacheprovider tests/test_packing.py tests/test_kernels.py tests/test_loss.py 2>&1 | tail -1
  python3 -m distil_cli bench infer --shape smollm2 --seed-prompts 4 --prompts 1024 --new-tokens 128 \
    --variant dynamic,1024 --out "$OUT/infer_smollm2.json" > /dev/null
  python3 -m distil_cli bench train --shape smollm2 --steps 10 --records 96 \
    --variant varlen,32768,0,liger+flce --variant varlen,65536,0,liger+flce+ckpt --out "$OUT/train_smollm2.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/infer_smollm2.json" "$OUT/train_smollm2.json"
  # `distil train` itself with its GPU defaults (varlen attention, Liger kernels), then infer and score
  d=$(mktemp -d)
  python3 -m distil_cli -q prepare examples/multiclinsum_sample --out $d/data --tokenizer default > /dev/null
  python3 -m distil_cli -q train $d/data --out $d/run --model default --model-type standard --max-steps 30 \
    --tokens-per-batch 16384 --lr 5e-5 --eval-samples 8 --max-new-tokens 32 2>&1 | tail -1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['speed'], r['global_steps'], r['train_seconds'])" \
    $d/run/run.json
  python3 -m distil_cli -q infer $d/run $d/data --split test --out $d/pred.jsonl --max-new-tokens 64 > /dev/null && \
    python3 -m distil_cli -q score $d/pred.jsonl --bootstrap 100 --format json 2>&1 | tail -3
fi
