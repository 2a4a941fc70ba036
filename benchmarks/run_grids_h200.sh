#!/usr/bin/env bash
# Method grids of docs/method.md on an nvidia-h200-x2, each as six processes (`distil experiment --jobs 6`:
# three per GPU; a 135M student with 16 records a step leaves most of an H200 idle). Started in the
# background by a device call; each grid resumes if started again. Expects the specs and data in $EXP.
# NAMES: the specs to run (benchmarks/experiments/NAME.toml), e.g. NAMES="cqa_low_verbs_more cqa_quarter_verbs".
set -u
cd "$(dirname "$0")/.."
# Run from a copy: every device call re-syncs the working tree, and a process starting while it does
# can fail with "No module named distil_cli.__main__".
rm -rf /root/repo && mkdir -p /root/repo && cp -r distil_cli benchmarks /root/repo/ && cd /root/repo
JOBS=${JOBS:-6} NAMES=${NAMES:-"cqa_low_verbs_more cqa_quarter_verbs svamp_verbs cqa_full_verbs"} bash benchmarks/run_method_h200.sh
echo grids-done
