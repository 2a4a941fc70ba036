"""Scoring an experiment: per-run metric, paired differences per seed and pooled over seeds, a table and a plot.

Paired: every arm is compared with the baseline arm on the same test records, trained on the
same subset of the same seed. Pooled: the per-record differences averaged over seeds, with
test records resampled jointly across seeds (bootstrap 95% CI and a two-sided p-value).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from statistics import fmean
from typing import IO, Any

from distil_cli.errors import DistilError
from distil_cli.evaluate.metrics import get_metrics
from distil_cli.evaluate.runs import (
    MIN_N_FOR_CI,
    across_seeds,
    bootstrap_ci,
    load_run,
    paired_stats,
    seeds_to_resolve,
)
from distil_cli.experiment.grid import Cell
from distil_cli.experiment.spec import ExperimentSpec
from distil_cli.run_record import FILE_NAME, RunRecord


def _scores(cells: list[Cell], spec: ExperimentSpec, score_settings) -> tuple[dict, str, list[str]]:
    """(cell -> {id: value}, the metric key, the test ids)."""
    metric = get_metrics([spec.metric], score_settings)[0]
    values: dict[tuple[float, int, str], dict[str, float]] = {}
    ids: list[str] = []
    for cell in cells:
        run = load_run(cell.predictions, None, metrics=[metric], name=cell.arm.name)
        values[(cell.fraction, cell.seed, cell.arm.name)] = {i: s[metric.primary] for i, s in run.scores.items()}
        ids = ids or sorted(run.scores)
    return values, metric.primary, ids


def _run_facts(cells: list[Cell]) -> dict[tuple[float, str], dict[str, Any]]:
    """Per (fraction, arm), from the runs' run.json: epochs and learning rate (as resolved), optimizer steps
    and training seconds (means over seeds), so a results table says how its runs were trained."""
    found: dict[tuple[float, str], list[RunRecord]] = {}
    for cell in cells:
        try:
            record = RunRecord.read(cell.run_dir / FILE_NAME)
        except DistilError:  # a run folder from elsewhere: its facts are left out
            continue
        found.setdefault((cell.fraction, cell.arm.name), []).append(record)
    facts = {}
    for where, records in found.items():
        epochs, lrs = {r.settings.get("epochs") for r in records}, {r.settings.get("lr") for r in records}
        facts[where] = {
            "epochs": epochs.pop() if len(epochs) == 1 else None,
            "lr": lrs.pop() if len(lrs) == 1 else None,
            "steps": round(fmean(r.global_steps for r in records), 1),
            "train_seconds": round(fmean(r.train_seconds for r in records), 1),
            "final_from": _final_from(records),
        }
    return facts


def _final_from(records: list[RunRecord]) -> str:
    """Which checkpoint became final/: "last", or the steps the best checkpoints were saved at (one per seed)."""
    if all(r.selected.get("rule", "last") == "last" for r in records):
        return "last"
    steps = []
    for r in records:
        match = re.search(r"checkpoint-(\d+)", str(r.selected.get("checkpoint") or ""))
        steps.append(match.group(1) if match else "last")
    return f"best: step {', '.join(steps)} of {max(r.global_steps for r in records)}"


def summarise(cells: list[Cell], spec: ExperimentSpec, score_settings) -> dict[str, Any]:

    values, key, ids = _scores(cells, spec, score_settings)
    facts = _run_facts(cells)
    arms = [a.name for a in spec.all_arms()]
    runs, arms_rows, pairs = [], [], []
    for fraction in spec.fractions:
        for arm in arms:
            matrix = _matrix(values, ids, spec, fraction, arm)
            per_seed = [round(float(row.mean()), 4) for row in matrix]
            runs += [{"fraction": fraction, "seed": s, "arm": arm, key: v} for s, v in zip(spec.seeds, per_seed)]
            ci = None  # too few test records for an interval: the rule of `distil score` (MIN_N_FOR_CI)
            if len(ids) >= MIN_N_FOR_CI:
                ci = [round(x, 4) for x in bootstrap_ci(matrix, spec.bootstrap, 0)]
            mean = round(float(matrix.mean()), 4)
            row = {"fraction": fraction, "arm": arm, key: mean, "ci": ci, "seeds": per_seed}
            arms_rows.append({**row, **facts.get((fraction, arm), {})})
            if arm != spec.baseline:
                pairs.append(_pair(values, ids, spec, fraction, arm, spec.baseline))
        default = {(arm, spec.baseline) for arm in arms if arm != spec.baseline}
        extra = [(a, b) for a, b in dict.fromkeys(tuple(c) for c in spec.comparisons) if (a, b) not in default]
        pairs += [_pair(values, ids, spec, fraction, arm, base) for arm, base in extra]  # each pair once
    return {"metric": key, "n_test": len(ids), "seeds": spec.seeds, "runs": runs, "arms": arms_rows, "pairs": pairs}


def _matrix(values, ids, spec: ExperimentSpec, fraction: float, arm: str):
    """An arm's per-record scores at one fraction: [seeds, test records]."""
    import numpy as np

    return np.array([[values[(fraction, s, arm)][i] for i in ids] for s in spec.seeds])


def _pair(values, ids, spec: ExperimentSpec, fraction: float, arm: str, baseline: str) -> dict[str, Any]:
    """``arm`` - ``baseline`` at one fraction, paired record by record: per seed, pooled, across seeds."""
    diffs = _matrix(values, ids, spec, fraction, arm) - _matrix(values, ids, spec, fraction, baseline)
    return {
        "fraction": fraction,
        "arm": arm,
        "baseline": baseline,
        **paired_comparison(diffs, spec.seeds, spec.bootstrap),
    }


def paired_comparison(diffs, seeds: list, resamples: int) -> dict[str, Any]:
    """Per-record differences [seeds, records] -> per seed, pooled, across seeds and the verdict
    (also what ``benchmarks/pool_seeds.py`` reports for seeds gathered from several experiments)."""
    per_seed_stats = [paired_stats(row, resamples, 0) for row in diffs]
    pair = {
        "pooled": paired_stats(diffs, resamples, 0),
        "per_seed": [{"seed": s, **st} for s, st in zip(seeds, per_seed_stats)],
        "seeds_with_ci_above_0": sum(bool(st["ci"]) and st["ci"][0] > 0 for st in per_seed_stats),
        "across_seeds": across_seeds([st["diff"] for st in per_seed_stats]),
    }
    pair["verdict"] = verdict(pair)
    return pair


def verdict(pair: dict[str, Any]) -> str:
    """One plain sentence from the two intervals: pooled (these runs, new test records) and across
    seeds (new seeds and subsets). "Better" needs both above 0."""
    if pair["pooled"]["ci"] is None:
        return f"no verdict: fewer than {MIN_N_FOR_CI} test records give no interval"
    low, high = pair["pooled"]["ci"]
    spread = pair.get("across_seeds")
    seeds_low, seeds_high = spread["ci"] if spread else (float("-inf"), float("inf"))
    if low > 0 and seeds_low > 0:
        return "better: the pooled and the across-seeds intervals are above 0"
    if high < 0 and seeds_high < 0:
        return "worse: the pooled and the across-seeds intervals are below 0"
    if low > 0 or high < 0:
        word, side = ("better", "above") if low > 0 else ("worse", "below")
        return f"{word} on these runs (pooled interval {side} 0), not yet across seeds: more seeds would tell" + _seeds(
            spread
        )
    if seeds_low > 0 or seeds_high < 0:
        sign = "ahead" if seeds_low > 0 else "behind"
        return f"consistently {sign} across seeds, but the pooled interval includes 0: within noise on these records"
    return "no difference beyond noise: both intervals include 0" + _seeds(spread)


def _seeds(spread: dict[str, Any] | None) -> str:
    """How many seeds the across-seeds interval would need, said after a verdict that lacks them."""
    need = seeds_to_resolve(spread)
    if need is None:
        return ""
    if need > 100:
        return "; at this mean and spread even 100 seeds would not separate it from 0"
    return f"; at this mean and spread about {need} seeds would put the across-seeds interval clear of 0"


def markdown(results: dict[str, Any]) -> str:
    key = results["metric"]
    lines = [
        f"Metric: {key} (x100) on {results['n_test']} test records; seeds {results['seeds']}.",
        "",
        f"| fraction | arm | {key} (mean over seeds) | 95% CI | per seed | epochs | lr | steps | train s "
        "| final/ from |",
        "|---:|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for row in results["arms"]:
        seeds = ", ".join(f"{v:.2f}" for v in row["seeds"])
        ci = f"[{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]" if row["ci"] else f"n < {MIN_N_FOR_CI}"
        runs = " | ".join(
            "-" if row.get(k) is None else f"{row[k]:g}" for k in ("epochs", "lr", "steps", "train_seconds")
        )
        final = row.get("final_from") or "-"
        lines.append(f"| {row['fraction']:g} | {row['arm']} | {row[key]:.2f} | {ci} | {seeds} | {runs} | {final} |")
    lines += ["", "Paired differences (arm - baseline) on the same test records:", ""]
    lines += [
        "| fraction | arm - baseline | pooled diff [95% CI] | p | across seeds [95% t CI] | per seed diff [95% CI] |",
        "|---:|---|---|---:|---|---|",
    ]
    for pair in results["pairs"]:
        pooled = pair["pooled"]
        seeds = "; ".join(f"{s['diff']:+.2f}{_interval(s['ci'])}" for s in pair["per_seed"])
        spread = pair.get("across_seeds")
        across = "-" if not spread else f"{spread['diff']:+.2f} [{spread['ci'][0]:+.2f}, {spread['ci'][1]:+.2f}]"
        lines.append(
            f"| {pair['fraction']:g} | {pair['arm']} - {pair['baseline']} | {pooled['diff']:+.2f}"
            f"{_interval(pooled['ci'])} | {'-' if pooled['p_value'] is None else format(pooled['p_value'], '.3f')} "
            f"| {across} | {seeds} |"
        )
    lines += ["", "Verdicts:", ""]
    lines += [f"- {p['fraction']:g}, {p['arm']} - {p['baseline']}: {p['verdict']}" for p in results["pairs"]]
    lines += [
        "",
        "Pooled: test records resampled, seeds fixed (would these runs differ on new test records?). "
        "Across seeds: a t interval over the per-seed differences (would new seeds and training subsets "
        "give the same sign?); with few seeds it is wide.",
    ]
    return "\n".join(lines) + "\n"


def _interval(ci: list[float] | None) -> str:
    return f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""


def plot(results: dict[str, Any], path: Path | IO[bytes]) -> None:
    """Metric vs training fraction, one line per arm (mean over seeds), 95% CI bands, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = results["metric"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm in dict.fromkeys(r["arm"] for r in results["arms"]):
        rows = sorted((r for r in results["arms"] if r["arm"] == arm), key=lambda r: r["fraction"])
        xs = [r["fraction"] for r in rows]
        ax.plot(xs, [r[key] for r in rows], marker="o", label=arm)
        if all(r["ci"] for r in rows):
            ax.fill_between(xs, [r["ci"][0] for r in rows], [r["ci"][1] for r in rows], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["fraction"] for r in results["arms"]], [f"{r['fraction']:g}" for r in results["arms"]])
    ax.set_xlabel("share of the training set")
    ax.set_ylabel(f"{key} (mean over seeds, 95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> list[Path]:
    """results.json / .md / .png, each through a temporary file and a rename (shards finishing at the
    same moment both write them: a reader never sees a torn file)."""
    import io

    from distil_cli.data.files import write_atomic

    paths = [out / "results.json", out / "results.md", out / "results.png"]
    write_atomic(paths[0], json.dumps(results, indent=2) + "\n")
    write_atomic(paths[1], markdown(results))
    image = io.BytesIO()
    plot(results, image)
    write_atomic(paths[2], image.getvalue())
    return paths
