"""``distil plugins``: installed plugins and what they registered."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from distil_cli.cli.common import JSON_FLAG, err_console, new_app, out_console, print_json

plugins_app = new_app(
    "Plugins: model families, prompt formatters, annotate backends (entry-point group 'distil').",
    invoke_without_command=True,
    no_args_is_help=False,
)


@plugins_app.callback(invoke_without_command=True)
def plugins_main(ctx: typer.Context, as_json: Annotated[bool, JSON_FLAG] = False) -> None:
    """List plugins, model families, prompt formatters, annotate backends and metrics with their source."""
    if ctx.invoked_subcommand is None:
        plugins_list(as_json)


@plugins_app.command("list")
def plugins_list(as_json: Annotated[bool, JSON_FLAG] = False) -> None:
    """List plugins, model families, prompt formatters, annotate backends and metrics with their source."""
    from distil_cli.plugins.registry import get_registry
    from distil_cli.reports import plugins_tables

    registry = get_registry()
    if as_json:
        print_json(registry_summary(registry))
    else:
        for table in plugins_tables(registry):
            out_console.print(table)
    for warning in registry.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)


def registry_summary(registry) -> dict:
    """What is installed and which plugin registered each name (also used by `distil env`)."""
    families = []
    for family in registry.families.values():
        row = {k: v for k, v in asdict(family).items() if k != "tiny_config"}
        families.append(
            {**row, "tiny_preset": family.tiny_config is not None, "plugin": registry.source("family", family.name)}
        )
    return {
        "plugins": registry.plugins,
        "families": families,
        "formatters": {n: registry.source("formatter", n) for n in registry.formatters},
        "annotate_backends": {n: registry.source("backend", n) for n in registry.backends},
        "metrics": {n: registry.source("metric", n) for n in registry.metrics},
        "warnings": registry.warnings,
    }
