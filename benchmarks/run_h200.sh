#!/usr/bin/env bash
# The exact commands behind docs/benchmarks.md, run on one H200 through the device tool, in two calls:
#   PART=qwen    needs only the pydantic wheels in /root/site (random-init Qwen2.5-0.5B shape)
#   PART=smollm2 needs the SmolLM2 GGUF assembled at /root/m/model.gguf (see ../shared/device.md)
# Reports land in $OUT (JSON).
set -euo pipefail
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
if [ "${PART:-qwen}" = qwen ]; then
  python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 64 \
    --variant sdpa,16384,0 --variant sdpa,16384,4096 --variant sdpa,16384,2048 \
    --variant flex_attention,16384,0 --variant sdpa,8192,2048 --out "$OUT/train_qwen05b.json"
else
  python3 -m distil_cli models pull --gguf /root/m/model.gguf
  python3 -m pytest -q -p no:cacheprovider tests/test_packing.py tests/test_loss.py 2>&1 | tail -2
  python3 -m distil_cli bench infer --shape smollm2 --seed-prompts 4 --prompts 1024 --new-tokens 128 \
    --variant dynamic,1024 --variant dynamic,256 --out "$OUT/infer_smollm2.json"
  python3 -m distil_cli bench train --shape smollm2 --steps 10 --records 64 \
    --variant sdpa,16384,0 --out "$OUT/train_smollm2.json"
fi
