"""``distil config``: inspect the effective settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from distil_cli.cli.common import JSON_FLAG, new_app, out_console, print_json, settings_for
from distil_cli.settings import effective_rows

config_app = new_app("Inspect the effective settings; export a run as a recipe file.")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    section: Annotated[
        Optional[str], typer.Option("--section", "-s", help="Only this section (prepare, train, ...).")
    ] = None,
    as_json: Annotated[bool, JSON_FLAG] = False,
) -> None:
    """Print every effective setting with its source (default, file, environment); secrets are masked."""
    loaded = settings_for(ctx)
    if as_json:
        print_json([{"key": k, "value": v, "source": src} for k, v, src in effective_rows(loaded, section)])
        return
    table = Table(title="distil settings", show_lines=False)
    for column in ("key", "value", "source"):
        table.add_column(column, overflow="fold")
    for key, value, source in effective_rows(loaded, section):
        table.add_row(key, value, source)
    out_console.print(table)


@config_app.command("export")
def config_export(
    run_dir: Annotated[Path, typer.Argument(help="A `distil train` run folder (its run.json).")],
) -> None:
    """Print a run's settings as a recipe file (YAML): `distil train --config recipe.yaml` trains it again
    (with `--out` for a new run folder)."""
    import yaml

    from distil_cli.run_record import FILE_NAME, RunRecord

    record = RunRecord.read(Path(run_dir) / FILE_NAME)
    recipe = {"train": {**record.recipe(), "out": record.settings.get("out") or str(Path(run_dir))}}
    header = f"# recipe of {run_dir} (distil {record.version}); `distil train --config FILE --out NEW_RUN_DIR`\n"
    out_console.print(
        header + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), markup=False, highlight=False
    )
