"""One experiment, run the same way by ``distil experiment`` and ``api.experiment``: the spec checked
(every arm's settings) before anything runs, the shard or the processes, the lock, the results."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """The results (None while other shards have runs left: ``pending`` of them), and where they went."""

    summary: dict[str, Any] | None
    pending: int = 0
    paths: list[Path] | None = None


def checked_spec(spec: Path, settings):
    """The spec, with its arm names, baseline and every arm's train and infer settings validated."""
    from distil_cli.experiment.spec import load_spec

    plan = load_spec(spec)
    for arm in plan.all_arms():
        plan.train_settings(settings.train, arm, plan.seeds[0])
    plan.infer_settings(settings.infer)
    return plan


def run_experiment(
    spec: Path,
    out: Path,
    settings,
    config: Path | None = None,
    shard: str | None = None,
    jobs: int = 1,
    score_only: bool = False,
    say: Callable[[str], None] = log.info,
) -> Outcome:
    """Run (or resume) the grid of ``spec`` under ``out``, or the shard ``K/N`` of it, or ``jobs`` shard
    processes; the last process to find every run done writes results.json / .md / .png."""
    from distil_cli.data.guard import OutputLock
    from distil_cli.experiment import grid, results
    from distil_cli.experiment import jobs as shards

    spec, out = Path(spec), Path(out)
    plan = checked_spec(spec, settings)
    parts = grid.parse_shard(shard)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} (jobs={jobs}): give 1 or more processes")
    if jobs > 1 and (parts is not None or score_only):
        raise ConfigError("--jobs N (jobs=N) runs the N shards itself: leave out --shard and --score-only")
    grid.check_finished_runs(plan, grid.plan(plan, out), settings.train)  # before anything runs
    with OutputLock(grid.lock_target(out, parts)):
        if score_only:
            cells = grid.plan(plan, out)
        elif jobs > 1:
            cells = shards.run(spec, out, plan, config, jobs, say=say)
        else:
            cells = grid.run_grid(
                plan, out, settings.train, settings.infer, settings.models.cache_dir, say=say, shard=parts
            )
        pending = grid.pending_runs(plan, cells) if parts is not None else 0
        if pending:
            return Outcome(None, pending)
        summary = results.summarise(cells, plan, settings.score)
        return Outcome(summary, 0, results.write(summary, out))
