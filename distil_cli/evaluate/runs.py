"""Runs of predictions: reading them with their references, per-group means, bootstrap CIs, paired comparison.

Per-text metrics come from ``evaluate.metrics``; this module does the statistics over a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from distil_cli.data.files import iter_jsonl, read_jsonl
from distil_cli.errors import DataError
from distil_cli.evaluate.metrics import Metric, rouge_metric

log = logging.getLogger(__name__)
ALL = "all"


@dataclass
class Run:
    name: str
    path: Path
    rows: list[dict[str, Any]]  # id, lang, prediction, reference
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> metric -> value
    empty: int = 0
    missing: list[str] = field(default_factory=list)  # reference ids of the predictions' files without a prediction
    keys: tuple[str, ...] = ()  # the values that get CIs and paired comparisons
    primary: str = "rouge_mean"


def _text_field(row: dict, name: str, where: str, required: bool) -> None:
    value = row.get(name)
    if value is None:
        if required:
            raise DataError(f"{where}: no '{name}' field; every line needs one")
        return
    if not isinstance(value, str):
        raise DataError(f"{where}: '{name}' must be text, not {type(value).__name__} ({str(value)[:40]})")


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Prediction lines: an 'id' and a 'prediction' (text), optionally 'reference' and 'lang' (text)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path} does not exist" + (" (it is a folder; give a predictions .jsonl)" if path.is_dir() else "")
        )
    rows, seen = [], set()
    for number, row in iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise DataError(f"{path}:{number}: a prediction needs an 'id' string")
        if row["id"] in seen:
            raise DataError(f"{path}:{number}: duplicate id '{row['id']}'")
        where = f"{path}:{number} (id {row['id']})"
        _text_field(row, "prediction", where, required=True)
        _text_field(row, "reference", where, required=False)
        _text_field(row, "lang", where, required=False)
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no predictions")
    return rows


def read_references(data: Path) -> dict[str, dict[str, Any]]:
    """id -> record from a .jsonl or every split of a prepared folder."""
    data = Path(data)
    files = [data] if data.is_file() else sorted(data.glob("*.jsonl"))
    if not files:
        raise DataError(f"{data}: no .jsonl references found")
    refs: dict[str, dict[str, Any]] = {}
    for path in files:
        for record in read_jsonl(path):
            where = f"{path} (id {record['id']})"
            _text_field(record, "output", where, required=False)
            _text_field(record, "lang", where, required=False)
            if record.get("output"):
                refs[record["id"]] = {**record, FILE_KEY: str(path)}
    return refs


FILE_KEY = "_reference_file"


def missing_predictions(rows: list[dict[str, Any]], refs: dict[str, dict[str, Any]] | None) -> list[str]:
    """Reference ids without a prediction, in the reference files the predictions come from (a prepared
    folder holds train and valid too: only the split the predictions cover counts)."""
    if refs is None:
        return []
    predicted = {row["id"] for row in rows}
    files = {refs[i][FILE_KEY] for i in predicted if i in refs}
    return sorted(i for i, record in refs.items() if record[FILE_KEY] in files and i not in predicted)


def few(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:5]) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")


def attach_references(path: Path, rows: list[dict[str, Any]], refs: dict[str, dict[str, Any]] | None) -> list[dict]:
    out = []
    missing = []
    for row in rows:
        reference, lang = row.get("reference"), row.get("lang")
        if refs is not None:
            record = refs.get(row["id"])
            if record is None:
                missing.append(row["id"])
                continue
            reference = record["output"]
            if lang and record.get("lang") and lang != record["lang"]:
                raise DataError(f"{path} (id {row['id']}): language '{lang}' but the reference says '{record['lang']}'")
            lang = lang or record.get("lang")
        if not reference:
            missing.append(row["id"])
            continue
        out.append(
            {"id": row["id"], "lang": lang or "en", "prediction": row.get("prediction") or "", "reference": reference}
        )
    if missing:
        where = "in --references" if refs is not None else "(no 'reference' field; pass --references DATA)"
        raise DataError(f"{path}: no reference for {len(missing)} id(s) {where}: {few(missing)}")
    return out


def load_run(
    path: Path,
    refs: dict[str, dict[str, Any]] | None,
    stemmer: str = "porter",
    name: str | None = None,
    metrics: list[Metric] | None = None,
) -> Run:
    """A run scored with ``metrics`` (default: ROUGE with ``stemmer``)."""
    from types import SimpleNamespace

    metrics = metrics or [rouge_metric(SimpleNamespace(stemmer=stemmer))]
    rows = attach_references(path, read_predictions(path), refs)
    keys = tuple(k for m in metrics for k in m.keys)
    run = Run(name or Path(path).stem, Path(path), rows, keys=keys, primary=metrics[0].primary)
    run.missing = missing_predictions(rows, refs)
    run.empty = sum(not row["prediction"].strip() for row in rows)
    run.scores = {row["id"]: {} for row in rows}
    columns = ([r["prediction"] for r in rows], [r["reference"] for r in rows], [r["lang"] for r in rows])
    for metric in metrics:
        for row, values in zip(rows, metric.score_all(*columns), strict=True):
            run.scores[row["id"]].update(values)
    return run


def groups(run: Run) -> dict[str, list[str]]:
    """'all' plus one id list per language."""
    out: dict[str, list[str]] = {ALL: [r["id"] for r in run.rows]}
    for row in run.rows:
        out.setdefault(row["lang"], []).append(row["id"])
    return {k: out[k] for k in [ALL, *sorted(k for k in out if k != ALL)]}


def mean_scores(run: Run, ids: list[str]) -> dict[str, float]:
    """Means over records (the mean of per-record rouge_mean is the mean of the R1, R2, RL means)."""
    keys = list(next(iter(run.scores.values())))
    return {k: fmean(run.scores[i][k] for i in ids) for k in keys}


MIN_N_FOR_CI = 10  # below this many records a group gets no CI or p-value (resampling 3 values says nothing)
FEW_N = 30  # below this a group's CI is shown with a warning


def bootstrap_means(values, resamples: int, seed: int):
    """``resamples`` means of ``values`` resampled with replacement (numpy, vectorised).

    ``values`` may be 2-D [seeds, items]: items are resampled jointly across its rows (the same
    test items for every seed) and the mean is taken over both, for pooled paired statistics.
    """
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    data = data.reshape(1, -1) if data.ndim == 1 else data
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 256):  # bounded memory: 256 resamples x n indices at a time
        count = min(256, resamples - start)
        picks = rng.integers(0, data.shape[1], size=(count, data.shape[1]))
        means[start : start + count] = data[:, picks].mean(axis=(0, 2))
    return means


def bootstrap_ci(values, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of the mean."""
    import numpy as np

    low, high = np.percentile(bootstrap_means(values, resamples, seed), [2.5, 97.5])
    return float(low), float(high)


def paired_stats(diffs, resamples: int, seed: int) -> dict[str, Any]:
    """Mean paired difference with its bootstrap 95% CI and two-sided p-value (``diffs``: 1-D or [seeds, items]).
    Fewer than ``MIN_N_FOR_CI`` items: the difference alone (CI and p-value None), as ``score`` reports it."""
    import numpy as np

    if np.shape(diffs)[-1] < MIN_N_FOR_CI:
        return {"diff": round(float(np.mean(diffs)), 4), "ci": None, "p_value": None}
    means = bootstrap_means(diffs, resamples, seed)
    low, high = np.percentile(means, [2.5, 97.5])
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return {
        "diff": round(float(np.mean(diffs)), 4),
        "ci": [round(float(low), 4), round(float(high), 4)],
        "p_value": round(p, 4),
    }


# Student's t, 97.5% quantile, for 1-30 degrees of freedom (beyond: the Cornish-Fisher expansion)
T975 = tuple(
    float(x)
    for x in (
        "12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 "
        "2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042"
    ).split()
)


def t975(df: int) -> float:
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def across_seeds(per_seed: list[float]) -> dict[str, Any] | None:
    """Mean of per-seed differences with a t interval over seeds (None with fewer than two seeds).

    The pooled bootstrap resamples test records with the seeds fixed: it says whether *these*
    runs differ on new test records. This interval treats the seeds (and their training subsets)
    as the sample: whether new seeds would give the same sign. With three seeds it is wide."""
    from statistics import fmean, stdev

    k = len(per_seed)
    if k < 2:
        return None
    mean, spread = fmean(per_seed), stdev(per_seed)
    half = t975(k - 1) * spread / k**0.5
    return {
        "diff": round(mean, 4),
        "ci": [round(mean - half, 4), round(mean + half, 4)],
        "seeds": k,
        "sd": round(spread, 4),
    }


def seeds_to_resolve(spread: dict[str, Any] | None, most: int = 100) -> int | None:
    """How many seeds would put the across-seeds t interval clear of 0 if the per-seed mean and
    spread stayed as measured (a planning figure, not a promise); None when the interval already
    excludes 0 or nothing is known; ``most + 1`` for "more than ``most``"."""
    if not spread or "sd" not in spread or spread["ci"][0] > 0 or spread["ci"][1] < 0 or not spread["diff"]:
        return None
    mean, sd = abs(spread["diff"]), spread["sd"]
    for n in range(max(spread["seeds"], 2), most + 1):
        if t975(n - 1) * sd / n**0.5 < mean:
            return n
    return most + 1


def summarise(run: Run, resamples: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for group, ids in groups(run).items():
        means = mean_scores(run, ids)
        row: dict[str, Any] = {
            "run": run.name,
            "lang": group,
            "n": len(ids),
            **{k: round(v, 4) for k, v in means.items()},
        }
        if resamples and len(ids) >= MIN_N_FOR_CI:
            for metric in run.keys:
                low, high = bootstrap_ci([run.scores[i][metric] for i in ids], resamples, seed)
                row[f"{metric}_ci"] = [round(low, 4), round(high, 4)]
        rows.append(row)
    return rows


def compare(a: Run, b: Run, resamples: int, seed: int) -> list[dict[str, Any]]:
    """Paired difference b - a per metric on the same ids, with a bootstrap CI and p-value.

    Groups with fewer than ``MIN_N_FOR_CI`` records get the difference only (no CI, no p-value).
    """
    ids_a, ids_b = set(a.scores), set(b.scores)
    if ids_a != ids_b:
        only_a, only_b = ids_a - ids_b, ids_b - ids_a
        raise DataError(
            f"{a.path} and {b.path} cover different ids: only in the first {few(only_a) or '-'}; "
            f"only in the second {few(only_b) or '-'}"
        )
    resamples = resamples or 1000
    out = []
    for group, ids in groups(a).items():
        for metric in a.keys:
            diffs = [b.scores[i][metric] - a.scores[i][metric] for i in ids]
            row = {"base": a.name, "other": b.name, "lang": group, "metric": metric, "n": len(diffs)}
            if len(diffs) >= MIN_N_FOR_CI:
                row.update(paired_stats(diffs, resamples, seed))
            else:
                row.update({"diff": round(fmean(diffs), 4), "ci": None, "p_value": None})
            out.append(row)
    return out


def small_groups(rows: list[dict[str, Any]]) -> list[str]:
    """Warnings for groups too small for their statistics to mean much."""
    notes = []
    for row in rows:
        if row["n"] < MIN_N_FOR_CI:
            notes.append(f"{row['run']} / {row['lang']}: n = {row['n']} < {MIN_N_FOR_CI}, no CI or p-value")
        elif row["n"] < FEW_N:
            notes.append(f"{row['run']} / {row['lang']}: n = {row['n']} < {FEW_N}, a wide CI: read it with care")
    return notes


def run_names(paths: list[Path]) -> list[str]:
    """Short names for runs: the file stem, or more of the path when stems collide."""
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{Path(p).parent.name}/{Path(p).stem}" for p in paths]


@dataclass
class Scored:
    """What ``distil score`` (and ``api.score``) computes: the runs, their rows per language, the comparison."""

    runs: list[Run]
    rows: list[dict[str, Any]]
    comparison: list[dict[str, Any]]
    other_rows: list[dict[str, Any]] = field(default_factory=list)  # the --compare run's rows (for plots)


def score_runs(predictions: list[Path], references: Path | None, compare_with: Path | None, cfg) -> Scored:
    """Score runs with the score settings ``cfg`` (metrics, bootstrap, seed, allow_missing): one path for the
    CLI and the Python API. References without a prediction are an error unless ``cfg.allow_missing``."""
    from distil_cli.evaluate.metrics import get_metrics

    metrics = get_metrics(cfg.metric, cfg)
    refs = read_references(references) if references is not None else None
    names = run_names([*predictions, *([compare_with] if compare_with else [])])
    runs = [load_run(p, refs, name=names[i], metrics=metrics) for i, p in enumerate(predictions)]
    for run in runs:
        if run.missing and not cfg.allow_missing:
            raise DataError(
                f"{run.path}: {len(run.missing)} reference(s) without a prediction: {few(run.missing)}; "
                "finish the predictions (rerun `distil infer`) or pass --allow-missing"
            )
    rows = [row for run in runs for row in summarise(run, cfg.bootstrap, cfg.seed)]
    comparison, other_rows = [], []
    if compare_with is not None:
        other = load_run(compare_with, refs, name=names[-1], metrics=metrics)
        comparison = compare(runs[0], other, cfg.bootstrap, cfg.seed)
        other_rows = summarise(other, 0, cfg.seed)
    return Scored(runs, rows, comparison, other_rows)
