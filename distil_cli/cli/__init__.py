"""The ``distil`` command line: the composition root.

It builds the app from one module per command group and imports nothing else of distil;
nothing imports it back. Each command module only parses, loads settings and calls one
core function (see docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.logging import RichHandler

from distil_cli.cli import annotate, env, experiment, infer, plot, prepare, push, score, train
from distil_cli.cli.bench import bench_app
from distil_cli.cli.common import err_console, new_app, out_console
from distil_cli.cli.config import config_app
from distil_cli.cli.models import models_app
from distil_cli.cli.plugins import plugins_app
from distil_cli.version import __version__

app = new_app(
    "distil: distil a large teacher LLM into a small causal LM (distilling step-by-step).\n\n"
    "Typical flow: prepare -> annotate -> train -> infer -> score. Settings come from defaults < --config FILE "
    "< DISTIL_<SECTION>__<FIELD> environment variables < flags; see `distil config show`."
)
COMMANDS = (
    prepare.prepare,
    annotate.annotate,
    train.train,
    infer.infer,
    score.score,
    experiment.experiment,
    plot.plot,
    push.push,
    env.env,
)
for command in COMMANDS:
    app.command()(command)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(plugins_app, name="plugins")
app.add_typer(bench_app, name="bench")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("distil_cli").setLevel(level)
    if not verbose:  # transformers' own warnings are noise for users unless they ask for debug output
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        logging.getLogger("transformers").setLevel(logging.ERROR)
        # bitsandbytes (imported by peft for any LoRA run) warns on CPUs with AVX512-BF16 that it could not
        # fetch an optional faster kernel from the hub
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _version(value: bool) -> None:
    if value:
        out_console.print(f"distil {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            "-c",
            help="Settings file (TOML or YAML) with [prepare] [train] ... sections. Env: DISTIL_CONFIG.",
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _setup_logging(verbose, quiet)
    ctx.obj = {"config": config}


def main() -> None:
    try:
        app(prog_name="distil")
    except BrokenPipeError:  # `distil ... | head`
        sys.stderr.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
