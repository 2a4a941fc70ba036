"""``distil plot``: training curves of one or more runs, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distil_cli.cli.common import err_console
from distil_cli.errors import DataError


def plot(
    runs: Annotated[list[Path], typer.Argument(help="distil train run folders (their metrics.jsonl).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("curves.png"),
) -> None:
    """Plot task losses, validation losses, validation ROUGE and the learning rate of runs (PNG)."""
    from distil_cli.reports import plot_curves

    missing = [str(r) for r in runs if not (r / "metrics.jsonl").is_file()]
    if missing:
        raise DataError(f"no metrics.jsonl in {', '.join(missing)}; give `distil train` run folders")
    target = out if out.suffix else out.with_name(out.name + ".png")
    names = [r.name for r in runs] if len({r.name for r in runs}) == len(runs) else [str(r) for r in runs]
    plot_curves(runs, target, names)
    err_console.print(f"Wrote {target}", highlight=False)
