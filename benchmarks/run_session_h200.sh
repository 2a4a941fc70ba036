#!/usr/bin/env bash
# Method grids on an nvidia-h200-x2, each as six processes (`distil experiment --jobs 6`: three per GPU;
# a 135M student with 16 records a step leaves most of an H200 idle). Started in the background by a
# device call; each grid resumes if started again. Expects the specs and data in $EXP.
# 2026-11-30 ran NAMES="svamp_seeds cqa_low_seeds cqa_full_today" and then
# "cqa_low_seeds_b cqa_quarter_today" as four `--shard K/4` processes by hand (what --jobs 4 does),
# and cqa_tiny_jobs with --jobs 4. The eighth ran NAMES="cqa_tiny_instructions cqa_low_instructions
# cqa_quarter_seeds cqa_tiny_verbs_more cqa_quarter_seeds_b", then "cqa_quarter_verbs", with --jobs 6 (three
# per GPU); its specs pin the instruction pair they ran with. The ninth ran the default NAMES below
# (today's default pair at the sizes where only the previous pair had many seeds; 102 runs with the
# three added after them, NAMES="cqa_low_verbs_c", "cqa_low_verbs_d", "cqa_low_verbs_e"); no grid is
# prepared beyond them.
set -u
cd "$(dirname "$0")/.."
# Run from a copy: every device call re-syncs the working tree, and a process starting while it does
# failed with "No module named distil_cli.__main__" (2026-11-30, one shard lost its first grid).
rm -rf /root/repo && mkdir -p /root/repo && cp -r distil_cli benchmarks /root/repo/ && cd /root/repo
JOBS=${JOBS:-6} NAMES=${NAMES:-"cqa_quarter_verbs_b cqa_low_verbs_more svamp_verbs cqa_full_verbs"} bash benchmarks/run_method_h200.sh
echo session-done
