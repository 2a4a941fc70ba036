#!/usr/bin/env bash
# The exact commands behind docs/benchmarks.md, run on one H200 through the device tool, in two calls:
#   PART=qwen    needs only the wheels in /root/site (pydantic..., liger-kernel; random-init Qwen2.5-0.5B shape)
#   PART=smollm2 needs the SmolLM2 GGUF assembled at /root/m/model.gguf (see ../shared/device.md)
# Reports land in $OUT (JSON); a one-line-per-run summary is printed.
set -uo pipefail
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
if [ "${PART:-qwen}" = qwen ]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py 2>&1 | tail -3
  python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 160 \
    --variant varlen,32768,0,liger --variant varlen,65536,0,liger+flce+ckpt --variant varlen,49152,0,liger+flce+ckpt \
    --variant varlen,32768,0,liger+flce+ckpt --profile 1 --out "$OUT/train_qwen05b_big.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_qwen05b_big.json"
else
  # `distil train` itself on the GPU with its defaults (varlen attention, Liger kernels where available)
  python3 -m distil_cli models pull --gguf /root/m/model.gguf
  python3 -m pytest -q -p no:cacheprovider tests/test_packing.py tests/test_kernels.py tests/test_loss.py 2>&1 | tail -2
  d=$(mktemp -d)
  python3 -m distil_cli -q prepare examples/multiclinsum_sample --out $d/data --tokenizer default
  python3 -m distil_cli -q train $d/data --out $d/run --model default --model-type standard --max-steps 30 \
    --tokens-per-batch 16384 --lr 5e-5 --eval-samples 8 --max-new-tokens 32 2>&1 | tail -1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['speed'], r['global_steps'], r['train_seconds'])" $d/run/run.json
  tail -2 $d/run/metrics.jsonl
  python3 -m distil_cli -q infer $d/run $d/data --split test --out $d/pred.jsonl --max-new-tokens 64 && \
    python3 -m distil_cli -q score $d/pred.jsonl --bootstrap 100 2>&1 | tail -4
  python3 -m distil_cli bench train --shape smollm2 --steps 10 --records 96 \
    --variant varlen,32768,0,liger+flce --variant varlen,65536,0,liger+flce+ckpt --out "$OUT/train_smollm2_big.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_smollm2_big.json"
fi
