#!/usr/bin/env bash
# The performance runs of docs/benchmarks.md (2026-11-29) on one H200, one part after another (started in the
# background by a device call): the CUDA tests, generation, a small job end to end, TRL peer.
set -u
cd "$(dirname "$0")/.."
R=${R:-/root/exp/perf}
mkdir -p "$R"
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
d() { python3 -m distil_cli -q "$@"; }
for part in ${PARTS:-tests infer e2e train05 train15}; do
  start=$(date +%s)
  case $part in
    tests) python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py ;;
    infer) d bench infer --shape smollm2 --seed-prompts 4 --prompts 2048 --new-tokens 128 \
             --variant dynamic,1024 --variant slots-eager,1024 --variant slots,256 --variant slots,1024 --variant slots,2048 --out "$R/infer.json" ;;
    infer2) d bench infer --shape smollm2 --seed-prompts 2 --prompts 2048 --new-tokens 128 \
             --variant slots-eager,1024 --variant slots,1024 --variant slots,2048 --out "$R/infer2.json" ;;
    e2e-ours) DISTIL_TRAIN__EPOCHS=6 DISTIL_TRAIN__MAX_NEW_TOKENS=64 d bench e2e --shape smollm2 --no-minimal \
             --train 280 --valid 100 --test 500 --out "$R/e2e-ours.json" ;;
    e2e) DISTIL_TRAIN__EPOCHS=6 DISTIL_TRAIN__MAX_NEW_TOKENS=64 d bench e2e --shape smollm2 \
             --train 280 --valid 100 --test 500 --out "$R/e2e.json" ;;
    train05) d bench train --shape qwen0.5b --steps 20 --records 96 --variant varlen,49152,0,liger+flce+ckpt \
             --variant varlen,32768,0,liger+flce --variant trl,49152,0,liger+ckpt --variant trl,32768,0,liger \
             --out "$R/train05.json" ;;
    bf16) d bench train --shape qwen0.5b --steps 20 --records 96 --no-baseline --profile 2 \
             --variant varlen,32768,0,liger+flce --variant varlen,32768,0,liger+flce+bf16 \
             --variant varlen,49152,0,liger+flce+ckpt --variant varlen,49152,0,liger+flce+ckpt+bf16 \
             --variant varlen,65536,0,liger+flce+bf16 --variant trl,32768,0,liger --variant trl,32768,0,liger+bf16 \
             --out "$R/bf16.json" ;;
    wide) python3 benchmarks/rms_norm_backward.py "$R/rms_norm_backward.json"
          d bench train --shape qwen0.5b --steps 20 --records 96 --no-baseline --profile 1 \
             --variant varlen,32768,0,liger+flce+bf16 --variant varlen,32768,0,liger+flce \
             --variant varlen,49152,0,liger+flce+ckpt+bf16 --variant trl,32768,0,liger --variant trl,32768,0,liger+bf16 \
             --out "$R/wide.json" ;;
    syncs) D=varlen,32768,0,liger+flce+bf16; O=$D+blocking+ligerce  # today's default, with the old syncs
           d bench train --shape qwen0.5b --steps 30 --records 96 --no-baseline --profile 1 \
             --variant $D --variant $O --variant $D --variant $O --variant $D --variant trl,32768,0,liger \
             --out "$R/syncs.json" ;;
    train15b) d bench train --shape qwen1.5b --steps 10 --records 96 --no-baseline \
             --variant varlen,32768,0,liger+flce+ckpt+bf16 --variant varlen,32768,0,liger+flce+bf16 \
             --variant trl,32768,0,liger+ckpt --variant trl,32768,0,liger+ckpt+bf16 --out "$R/train15b.json" ;;
    e2e-bf16) DISTIL_TRAIN__EPOCHS=6 DISTIL_TRAIN__MAX_NEW_TOKENS=64 DISTIL_TRAIN__PRECISION=bf16 d bench e2e \
             --shape smollm2 --no-minimal --train 280 --valid 100 --test 500 --out "$R/e2e-bf16.json" ;;
    trl05) d bench train --shape qwen0.5b --steps 20 --records 96 --no-baseline \
             --variant varlen,49152,0,liger+flce+ckpt --variant trl,49152,0,liger+ckpt \
             --variant varlen,32768,0,liger+flce --variant trl,32768,0,liger --out "$R/trl05.json" ;;
    train15) d bench train --shape qwen1.5b --steps 10 --records 96 --no-baseline \
             --variant varlen,32768,0,liger+flce+ckpt --variant trl,32768,0,liger+ckpt --out "$R/train15.json" ;;
  esac > "$R/$part.log" 2>&1
  echo "$part exit $? in $(( $(date +%s) - start )) s"
done
echo perf-done
