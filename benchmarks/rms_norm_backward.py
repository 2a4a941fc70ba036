"""Liger's RMSNorm backward vs the same kernel launched wider (distil_cli.train.kernels), on a GPU.

    python benchmarks/rms_norm_backward.py OUT.json

Times one backward of [rows, hidden] bf16 (CUDA events, median of 50 after 10 warm-up calls) for
Liger's own launch (one program per SM) and for 4-32 programs per SM, at the Qwen2.5-0.5B and
1.5B hidden sizes, and the memory-speed floor (reading dY and X, writing dX).
"""

from __future__ import annotations

import functools
import json
import statistics
import sys

import torch

from distil_cli.train import kernels


def _time(fn, repeats: int = 50) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main(out: str) -> None:
    from liger_kernel.ops.rms_norm import rms_norm_backward, rms_norm_forward

    bandwidth = 4.8e12  # H200 HBM3e, bytes/s
    rows_out = []
    for rows, hidden in [(32768, 896), (49152, 896), (32768, 1536)]:
        x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
        w = torch.ones(hidden, device="cuda", dtype=torch.bfloat16)
        dy = torch.randn_like(x)
        _, x2, rstd, block, warps, mode = rms_norm_forward(x, w, 1e-6, 0.0, "llama", None)
        args = (dy, x2, w, rstd, 0.0, mode, block, warps, False)
        row = {"rows": rows, "hidden": hidden, "floor_ms": round(3 * x.numel() * 2 / bandwidth * 1e3, 4)}
        row["liger_ms"] = round(_time(functools.partial(rms_norm_backward, *args, None)), 4)
        for per_sm in (4, 8, 16, 32):
            timed = functools.partial(kernels.wide_rms_norm_backward, *args, True, programs_per_sm=per_sm)
            row[f"wide{per_sm}_ms"] = round(_time(timed), 4)
        print(row, flush=True)
        rows_out.append(row)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": rows_out}
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
