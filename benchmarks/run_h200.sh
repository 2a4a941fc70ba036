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
  python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 96 \
    --variant varlen,16384,0 --variant varlen,16384,0,flce --variant varlen,32768,0,ckpt \
    --variant varlen,16384,0,compile --variant varlen,16384,0,liger --variant varlen,16384,0,liger+flce \
    --variant varlen,32768,0,liger+flce --profile 1 --out "$OUT/train_qwen05b.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_qwen05b.json"
else
  python3 -m distil_cli models pull --gguf /root/m/model.gguf
  python3 -m pytest -q -p no:cacheprovider tests/test_packing.py tests/test_kernels.py tests/test_loss.py 2>&1 | tail -2
  python3 -m distil_cli bench train --shape smollm2 --steps 10 --records 96 \
    --variant sdpa,16384,4096 --variant varlen,16384,0 --variant varlen,32768,0 --variant varlen,32768,0,flce \
    --variant varlen,32768,0,liger --variant varlen,32768,0,liger+flce --out "$OUT/train_smollm2.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_smollm2.json"
  # Qwen2.5-0.5B shape at the seed's memory (peak <= 24.9 GiB)
  python3 -m distil_cli bench train --shape qwen0.5b --steps 10 --records 96 \
    --variant varlen,12288,0,liger+flce --variant varlen,8192,0,liger --variant varlen,32768,0,liger+ckpt \
    --out "$OUT/train_qwen05b_memory.json" > /dev/null
  python3 benchmarks/summary.py "$OUT/train_qwen05b_memory.json"
fi
