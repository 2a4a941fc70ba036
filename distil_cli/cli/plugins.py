"""``distil plugins``: installed plugins and what they registered."""

from __future__ import annotations

import typer

from distil_cli.cli.common import err_console, new_app, out_console

plugins_app = new_app(
    "Plugins: model families, prompt formatters, annotate backends (entry-point group 'distil').",
    invoke_without_command=True,
    no_args_is_help=False,
)


@plugins_app.callback(invoke_without_command=True)
def plugins_main(ctx: typer.Context) -> None:
    """List plugins, model families, prompt formatters and annotate backends with their source."""
    if ctx.invoked_subcommand is None:
        plugins_list()


@plugins_app.command("list")
def plugins_list() -> None:
    """List plugins, model families, prompt formatters and annotate backends with their source."""
    from distil_cli.plugins.registry import get_registry
    from distil_cli.reports import plugins_tables

    registry = get_registry()
    for table in plugins_tables(registry):
        out_console.print(table)
    for warning in registry.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
