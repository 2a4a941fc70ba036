"""``distil experiment``: a grid of standard vs distill runs on one prepared folder, scored and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distil_cli.cli.common import err_console, out_console, settings_for


def experiment(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Experiment spec (TOML or YAML): data, grid, metric, settings.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Experiment folder (runs, predictions, results).")],
    score_only: Annotated[
        bool, typer.Option("--score-only", help="Only (re)write the results from the predictions already there.")
    ] = False,
) -> None:
    """Does distilling help on this data? Train arms x seeds x data fractions, infer and score each on the
    test split, and write results.md / results.json / results.png with paired differences and 95% CIs.
    Resumable: a rerun skips finished runs."""
    from distil_cli.data.guard import OutputLock
    from distil_cli.experiment import grid, results
    from distil_cli.experiment.spec import load_spec

    loaded = settings_for(ctx).settings
    plan = load_spec(spec)
    plan.all_arms()  # names and baseline checked before anything runs
    with OutputLock(out):
        if score_only:
            cells = grid.plan(plan, out)
        else:
            cells = grid.run_grid(
                plan, out, loaded.train, loaded.infer, loaded.models.cache_dir, say=lambda line: err_console.print(line)
            )
        summary = results.summarise(cells, plan, loaded.score)
        paths = results.write(summary, out)
    out_console.print(results.markdown(summary), highlight=False, soft_wrap=True)
    err_console.print("Wrote " + ", ".join(str(p) for p in paths), highlight=False)
