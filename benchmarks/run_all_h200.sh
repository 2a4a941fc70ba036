#!/usr/bin/env bash
# One device call's runs in order (started in the background by a device call): the CUDA tests and
# generation first, then the method experiments ($NAMES), then the rest of the performance parts.
# If the CUDA tests fail, inference falls back to transformers' generate for everything after.
set -u
cd "$(dirname "$0")/.."
export R=${R:-/root/exp/perf} EXP=${EXP:-/root/exp}
PARTS="tests" bash benchmarks/run_perf_h200.sh
if grep -q -E "[0-9]+ (failed|error)" "$R/tests.log"; then export DISTIL_INFER__CACHE=dynamic; echo "slots off"; fi
PARTS="infer" bash benchmarks/run_perf_h200.sh
NAMES=${NAMES_FIRST:-} bash benchmarks/run_method_h200.sh
PARTS=${PARTS_LATER:-"e2e train05 train15"} bash benchmarks/run_perf_h200.sh
NAMES=${NAMES_LAST:-} bash benchmarks/run_method_h200.sh
echo runs-done
