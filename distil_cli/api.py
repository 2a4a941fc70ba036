"""The Python API: the main steps for notebooks and scripts, with the CLI's settings and checks.

    from distil_cli import api

    api.prepare("corpus.csv", "data", split="0.8,0.1,0.1")
    api.annotate("data", "annotated", base_url="http://127.0.0.1:8000/v1", model="teacher")
    record = api.train("annotated", "runs/distill", objective="distill", alpha=0.5)
    api.infer("runs/distill", "annotated/test.jsonl", "preds.jsonl")
    scores = api.score("preds.jsonl", metric="rouge", bootstrap=1000)
    results = api.experiment("spec.toml", "experiments/mine")

Keyword arguments are the settings of that command's section (``distil config show`` lists
them); they go through the same layers as flags (defaults < ``config`` file < ``DISTIL_*``
environment < these), the same validation, and raise the same ``DistilError``s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from distil_cli.settings import LoadedSettings, load_settings

log = logging.getLogger(__name__)


def _settings(section: str, config: str | Path | None, options: dict[str, Any]) -> LoadedSettings:
    return load_settings(Path(config) if config else None, {section: options})


def prepare(source: str | Path, out: str | Path, config: str | Path | None = None, **options: Any):
    """Raw corpus -> DATA_DIR with train/valid/test.jsonl and manifest.json; returns a ``PrepareResult``."""
    from distil_cli.data.prepare import prepare as run
    from distil_cli.models import load_tokenizer, resolve_model

    loaded = _settings("prepare", config, options)
    cache = loaded.settings.models.cache_dir
    return run(
        Path(source), Path(out), loaded.settings.prepare, lambda name: load_tokenizer(resolve_model(name, cache))
    )


def annotate(data: str | Path, out: str | Path, config: str | Path | None = None, check: bool = True, **options: Any):
    """A teacher rationale per record; returns the run's ``Stats``.

    ``check``: raise ``PartialFailure`` where the CLI exits 3 (failed records, too many flagged rationales).
    """
    from distil_cli.teach.annotate import annotate as run
    from distil_cli.teach.annotate import check_failures

    loaded = _settings("annotate", config, options)
    stats = run(Path(data), Path(out), loaded.settings.annotate, loaded.settings.models.cache_dir)
    if check:
        check_failures(stats, loaded.settings.annotate.max_flagged)
    return stats


def train(
    data_dir: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    resume: bool = False,
    extend_steps: int | None = None,
    **options: Any,
):
    """Fine-tune a student; returns its ``RunRecord`` (RUN_DIR/run.json); the model is in RUN_DIR/final.
    ``extend_steps`` (with ``resume``): train that many steps past the length the run planned."""
    from distil_cli.train.run import run_training

    loaded = _settings("train", config, options)
    cache = loaded.settings.models.cache_dir
    return run_training(Path(data_dir), Path(out), loaded.settings.train, cache, resume, extend_steps=extend_steps)


def infer(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    submission_dir: str | Path | None = None,
    team: str | None = None,
    run_id: int | None = None,
    lang: str | None = None,
    **options: Any,
):
    """Generate predictions (resumable); returns an ``InferResult``."""
    from distil_cli.generate.infer import read_inputs, run_inference
    from distil_cli.generate.submission import Submission

    loaded = _settings("infer", config, options)
    records = read_inputs(Path(data), loaded.settings.infer.split, lang)
    submission = Submission(Path(submission_dir), team, run_id) if submission_dir else None
    return run_inference(
        str(model),
        records,
        Path(out),
        loaded.settings.infer,
        loaded.settings.models.cache_dir,
        submission,
        None,
        Path(data),
    )


def score(
    predictions: str | Path | list[str | Path],
    references: str | Path | None = None,
    compare: str | Path | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Metrics per language with bootstrap CIs for one run or several, and the paired comparison of the first
    with ``compare``: {"scores", "comparison", "missing"} (as ``distil score --format json``). ``options``
    are score settings (``metric=["rouge", "bertscore"]``, ``bertscore_model=...``, ``allow_missing=True``)."""
    from distil_cli.evaluate import runs as stats

    cfg = _settings("score", config, options).settings.score
    paths = [Path(p) for p in (predictions if isinstance(predictions, list) else [predictions])]
    scored = stats.score_runs(paths, Path(references) if references else None, Path(compare) if compare else None, cfg)
    missing = {run.name: run.missing for run in scored.runs if run.missing}
    return {"scores": scored.rows, "comparison": scored.comparison, "missing": missing}


def experiment(
    spec: str | Path, out: str | Path, config: str | Path | None = None, shard: str | None = None, jobs: int = 1
) -> dict[str, Any]:
    """Run (or resume) an experiment grid and return its results (also written to OUT/results.*).

    ``shard="K/N"``: only that share of the grid (as ``--shard``); until every share is done it
    returns ``{"pending": runs not done}`` and writes no results. ``jobs=N``: the N shards as N
    processes side by side, dealt over the visible GPUs (as ``--jobs``)."""
    from distil_cli.experiment.runner import run_experiment

    settings = load_settings(Path(config) if config else None).settings
    outcome = run_experiment(Path(spec), Path(out), settings, Path(config) if config else None, shard, jobs)
    return outcome.summary if outcome.summary is not None else {"pending": outcome.pending}
