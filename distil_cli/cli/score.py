"""``distil score``: metrics per language, bootstrap CIs, paired comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from distil_cli.cli.common import err_console, out_console, settings_for
from distil_cli.cli.options import settings_flags


@settings_flags("score")
def score(
    ctx: typer.Context,
    predictions: Annotated[list[Path], typer.Argument(help="Predictions .jsonl (several runs: one table).")],
    references: Annotated[
        Optional[Path],
        typer.Option("--references", "-r", help="Reference .jsonl or prepared folder (else each line's 'reference')."),
    ] = None,
    compare: Annotated[
        Optional[Path], typer.Option("--compare", help="Another run: paired difference vs the first on the same ids.")
    ] = None,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Bar chart of the first metric per language and run (PNG).")
    ] = None,
    flags: dict[str, Any] | None = None,
) -> None:
    """Metrics (ROUGE by default) per language and overall, bootstrap CIs, paired comparison of runs."""
    cfg = settings_for(ctx, "score", **(flags or {})).settings.score
    import distil_cli.reports as reports
    from distil_cli.evaluate import runs as stats

    scored = stats.score_runs(predictions, references, compare, cfg)
    runs, rows, comparison = scored.runs, scored.rows, scored.comparison
    for run in runs:
        if run.empty:
            err_console.print(f"note: {run.path}: {run.empty} empty prediction(s) scored as 0", highlight=False)
        if run.missing:
            message = f"{run.path}: {len(run.missing)} reference(s) without a prediction: {stats.few(run.missing)}"
            err_console.print(f"note: {message} (not scored)", highlight=False)
    for note in stats.small_groups(rows if cfg.bootstrap or compare else []):
        err_console.print(f"note: {note}", highlight=False)
    _emit_scores(cfg.format, rows, comparison, reports, {run.name: run.missing for run in runs if run.missing})
    if plot is not None:
        target = plot_path(plot)
        reports.plot_scores(rows + scored.other_rows, target, runs[0].primary)  # --compare's run drawn too
        err_console.print(f"Wrote {target}", highlight=False)


def plot_path(plot: Path) -> Path:
    """Where the plot goes: a folder gets scores.png inside it, a name without a suffix gets .png."""
    if plot.is_dir():
        return plot / "scores.png"
    return plot if plot.suffix else plot.with_name(plot.name + ".png")


def _emit_scores(fmt: str, rows: list, comparison: list, reports, missing: dict[str, list[str]]) -> None:
    if fmt == "json":
        out_console.print_json(json.dumps({"scores": rows, "comparison": comparison, "missing": missing}))
    elif fmt == "csv":
        import csv

        for block in (reports.flat_rows(rows), reports.flat_rows(comparison)):
            if block:
                writer = csv.DictWriter(sys.stdout, fieldnames=reports.columns_of(block), lineterminator="\n")
                writer.writeheader()
                writer.writerows(block)
    elif fmt == "markdown":
        out_console.print(reports.markdown_table(rows), markup=False, highlight=False)
        if comparison:
            out_console.print("\n" + reports.markdown_table(comparison), markup=False, highlight=False)
    else:
        out_console.print(reports.score_table(rows))
        if comparison:
            out_console.print(reports.compare_table(comparison))
