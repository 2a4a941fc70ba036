"""Pool one comparison over the seeds of several `distil experiment` folders (e.g. seeds 1-3 of one
spec and 4-6 of another on the same data, fraction and test split).

    python benchmarks/pool_seeds.py EXP_DIR [EXP_DIR ...] --fraction 0.03 --arm distill-a0.5 \
        --baseline standard [--metric exact] [--baseline-dirs OTHER_DIR ...]

Reads every EXP_DIR/runs/f<fraction>/s<seed>/<arm>.jsonl that has a matching baseline file (the
predictions `distil experiment` writes; no models needed) and prints the paired difference pooled
over all those seeds (bootstrap over test records, as in the experiment tables), the across-seeds
t interval, the per-seed differences and the verdict, with `distil experiment`'s own function.

``--baseline-dirs``: the baseline of each seed is read from these folders instead (the same
fraction and seed number: the same training subset when both specs name the same data and
``valid``), which compares runs of two experiments arm by arm, e.g. the same arm trained with two
instruction pairs kept in separate folders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distil_cli.evaluate.metrics import get_metrics
from distil_cli.evaluate.runs import load_run
from distil_cli.experiment.results import paired_comparison
from distil_cli.settings import ScoreSettings


def _scores(path: Path, metric) -> dict[str, float]:
    run = load_run(path, None, metrics=[metric], name=path.stem)
    return {i: s[metric.primary] for i, s in run.scores.items()}


def _seed_dirs(folder: Path, fraction: str) -> list[Path]:
    """The s<seed> folders of one experiment folder at ``fraction``; a one-line exit when it has none."""
    runs = folder / "runs" / f"f{fraction}"
    if not runs.is_dir():
        raise SystemExit(f"{folder}: no {runs.relative_to(folder)} folder: give `distil experiment --out` folders")
    return sorted(runs.glob("s*"))


def _baselines(folders: list[Path], fraction: str, name: str) -> dict[str, Path]:
    """s<seed> -> the baseline predictions of that seed in the first of ``folders`` that has them."""
    found: dict[str, Path] = {}
    for folder in folders:
        for seed_dir in _seed_dirs(folder, fraction):
            if (seed_dir / f"{name}.jsonl").is_file():
                found.setdefault(seed_dir.name, seed_dir / f"{name}.jsonl")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--fraction", required=True)
    parser.add_argument("--arm", required=True)
    parser.add_argument("--baseline", default="standard")
    parser.add_argument("--metric", default="exact")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument(
        "--baseline-dirs", nargs="+", type=Path, default=None, help="read each seed's baseline from these folders"
    )
    args = parser.parse_args()
    metric = get_metrics([args.metric], ScoreSettings())[0]
    baselines = _baselines(args.baseline_dirs, args.fraction, args.baseline) if args.baseline_dirs else None
    rows, seeds = [], []
    for folder in args.dirs:
        for seed_dir in _seed_dirs(folder, args.fraction):
            arm = seed_dir / f"{args.arm}.jsonl"
            base = seed_dir / f"{args.baseline}.jsonl" if baselines is None else baselines.get(seed_dir.name)
            if base is None or not (arm.is_file() and base.is_file()):
                continue
            a, b = _scores(arm, metric), _scores(base, metric)
            ids = sorted(b)
            if sorted(a) != ids or (rows and ids != rows[0][0]):
                raise SystemExit(f"{seed_dir}: the runs were not scored on the same test records")
            rows.append((ids, np.array([a[i] - b[i] for i in ids])))
            seeds.append(f"{folder.name}/{seed_dir.name}")
    if not rows:
        where = f" (baseline from {', '.join(map(str, args.baseline_dirs))})" if args.baseline_dirs else ""
        raise SystemExit(f"no seed has both {args.arm} and {args.baseline}{where} at fraction {args.fraction}")
    diffs = np.stack([r[1] for r in rows])
    out = {
        "arm": args.arm,
        "baseline": args.baseline,
        "fraction": float(args.fraction),
        "seeds": seeds,
        "n_test": diffs.shape[1],
        **paired_comparison(diffs, seeds, args.resamples),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
