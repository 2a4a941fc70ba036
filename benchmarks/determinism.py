"""Is a training run bit-identical when repeated? Which part of the step makes it differ?

    python benchmarks/determinism.py MODEL_DIR DATA_DIR OUT_DIR --steps 10 \\
        --variant 'distill=' --variant 'distill-no-liger=--kernels none' \\
        --variant 'distill-sdpa=--attn-implementation sdpa' --variant 'standard=--objective standard' \\
        --variant 'distill-deterministic=--trainer-arg full_determinism=true'

Each variant (NAME=extra `distil train` flags) trains ``--repeats`` times from the same seed on the same
records for ``--steps`` optimizer steps (no evaluation, no checkpoints), the repeats side by side on
one machine (``--parallel``) or one after another. The final weights of the repeats are compared
tensor by tensor. Turning one part of the step off at a time (Liger's kernels and fused loss, varlen
attention, the rationale task) shows which one makes repeats differ; ``full_determinism`` (a
TrainingArguments field: torch.use_deterministic_algorithms, deterministic flash-attention backward,
cuBLAS workspace) shows whether torch's deterministic mode removes the difference and at what cost,
or names the operation that has no deterministic implementation.
Writes OUT_DIR/determinism.json and prints one line per variant.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="student: a model folder (or 'default')")
    parser.add_argument("data", type=Path, help="prepared folder (train.jsonl with rationales)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="run a variant's repeats side by side")
    parser.add_argument("--variant", action="append", default=[], help="NAME=extra distil train flags (repeatable)")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant] or [("distill", [])]
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, flags in variants:
        result = run_variant(args, name, flags)
        results.append(result)
        print(line(result), flush=True)
        (args.out / "determinism.json").write_text(json.dumps(results, indent=1) + "\n")


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"--variant {text!r}: expected NAME=flags (flags may be empty)")
    return name.strip(), shlex.split(flags)


def run_variant(args, name: str, flags: list[str]) -> dict:
    runs = [args.out / name / f"r{k}" for k in range(1, args.repeats + 1)]
    commands = [
        [sys.executable, "-m", "distil_cli", "-q", "train", str(args.data), "--model", args.model, "--out", str(run)]
        + ["--max-steps", str(args.steps), "--eval-samples", "0", "--no-save-checkpoints", "--seed", str(args.seed)]
        + flags
        for run in runs
    ]
    started = time.time()
    logs = [run.with_suffix(".log") for run in runs]  # files, not pipes: a full pipe would stall a run
    runs[0].parent.mkdir(parents=True, exist_ok=True)
    streams = [log.open("w") for log in logs]
    try:
        if args.parallel:
            procs = [subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT) for c, f in zip(commands, streams)]
            codes = [p.wait() for p in procs]
        else:
            codes = [
                subprocess.run(c, stdout=f, stderr=subprocess.STDOUT).returncode for c, f in zip(commands, streams)
            ]
    finally:
        for stream in streams:
            stream.close()
    seconds = round(time.time() - started, 1)
    result = {"variant": name, "flags": " ".join(flags), "steps": args.steps, "seconds": seconds}
    failed = [(code, log) for code, log in zip(codes, logs) if code != 0]
    if failed:
        code, log = failed[0]
        tail = log.read_text().strip().splitlines()[-1:] or [f"exit {code}"]
        return {**result, "error": tail[0][:400]}
    records = [json.loads((run / "run.json").read_text()) for run in runs]  # what ran, how long training took
    result["train_seconds"] = [record["train_seconds"] for record in records]
    return {**result, "speed": records[0].get("speed", {}), **compare([run / "final" for run in runs])}


def compare(folders: list[Path]) -> dict:
    """Tensor-by-tensor comparison of the first folder's weights with each other's."""
    first = load_weights(folders[0])
    differing: dict[str, float] = {}
    for folder in folders[1:]:
        other = load_weights(folder)
        if other.keys() != first.keys():
            return {"identical": False, "error": f"{folder}: other tensors than {folders[0]}"}
        for key, tensor in first.items():
            if not tensor.equal(other[key]):
                diff = (tensor.double() - other[key].double()).abs().max().item()
                differing[key] = max(diff, differing.get(key, 0.0))
    return {
        "identical": not differing,
        "tensors": len(first),
        "tensors_differing": len(differing),
        "max_abs_diff": max(differing.values(), default=0.0),
        "identical_tensors": sorted(set(first) - set(differing))[:20],
    }


def load_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise SystemExit(f"{folder}: no .safetensors weights (did the run finish?)")
    weights = {}
    for file in files:
        weights.update(load_file(file))
    return weights


def line(result: dict) -> str:
    train = ", ".join(f"{t:.1f}" for t in result.get("train_seconds", []))
    head = f"{result['variant']:<24} {result['seconds']:>7.1f} s (training {train or '-'} s)  "
    if "error" in result:
        return head + f"failed: {result['error']}"
    if result["identical"]:
        return head + f"identical ({result['tensors']} tensors)"
    return head + (
        f"DIFFER: {result['tensors_differing']}/{result['tensors']} tensors, max |diff| {result['max_abs_diff']:.3g}"
    )


if __name__ == "__main__":
    main()
