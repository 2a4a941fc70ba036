#!/usr/bin/env bash
# The exact commands behind docs/benchmarks.md, run on one H200 through the device tool.
# Before: the SmolLM2 GGUF assembled at /root/m/model.gguf and pydantic/gguf wheels in /root/site
# (see ../shared/device.md). Reports land in $OUT (JSON).
set -euo pipefail
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
python3 -m distil_cli models pull --gguf /root/m/model.gguf
python3 -m pytest -q -p no:cacheprovider tests/test_packing.py tests/test_loss.py 2>&1 | tail -3
python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 64 --tokens-per-batch 16384 --out "$OUT/train_qwen05b.json"
python3 -m distil_cli bench train --shape smollm2 --steps 10 --records 64 --tokens-per-batch 16384 --out "$OUT/train_smollm2.json"
python3 -m distil_cli bench infer --shape smollm2 --seed-prompts 8 --prompts 256 --new-tokens 128 --out "$OUT/infer_smollm2.json"
