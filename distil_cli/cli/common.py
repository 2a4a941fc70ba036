"""What every command module shares: the consoles, the error boundary, settings access, option helpers.

Every flag defaults to ``None`` so that only flags the user typed override the config
file and the environment; the real default lives in the settings and is shown in the
help text.
"""

from __future__ import annotations

import os
import time
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from distil_cli.errors import DistilError, out_of_memory_message
from distil_cli.settings import LoadedSettings, load_settings

# User text (file names, ids, values) is never markup or an emoji code: "data.jsonl:100:" stays as it is.
# soft_wrap: a printed line (a path a script reads, a one-line error or note) is never broken at the
# terminal's or a pipe's 80 columns; tables and progress bars still lay themselves out to the width.
out_console = Console(emoji=False, markup=False, soft_wrap=True)
err_console = Console(stderr=True, emoji=False, markup=False, soft_wrap=True)


def settings_for(ctx: typer.Context, section: str | None = None, **flags: Any) -> LoadedSettings:
    """Effective settings with this command's flags applied to ``section``."""
    root = ctx.find_root()
    config = (root.obj or {}).get("config")
    return load_settings(config, {section: flags} if section else None)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def debug() -> bool:
    """``DISTIL_DEBUG=1`` (or true/yes/on) shows tracebacks; 0, false, no, off or empty do not."""
    return os.environ.get("DISTIL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _os_message(exc: OSError) -> str:
    """An operating-system failure a user can cause (permissions, a folder for a file, a full disk) in one line."""
    where = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or type(exc).__name__
    hints = {
        PermissionError: "check its permissions or choose another path",
        IsADirectoryError: "give a file, not a folder",
        NotADirectoryError: "a part of the path is a file, not a folder",
        FileNotFoundError: "check the path",
        FileExistsError: "a file of that name is in the way",
    }
    hint = next((h for cls, h in hints.items() if isinstance(exc, cls)), "check the path and free space")
    return f"{where}: {what}; {hint}"


class DistilGroup(TyperGroup):
    """The one place that turns core errors into a one-line message and an exit code.

    ``DISTIL_DEBUG=1`` lets the traceback through instead. Typer's own exceptions
    (usage errors, exit, abort) pass unchanged.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except DistilError as exc:
            if debug():
                raise
            raise _fail(str(exc), exc.exit_code) from exc
        except OSError as exc:
            if debug():
                raise
            raise _fail(_os_message(exc), 1) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")) or debug():
                raise
            first = (str(exc).splitlines() or [""])[0]
            if type(exc).__name__ == "OutOfMemoryError":  # torch's, on the GPU: the settings asked too much
                raise _fail(out_of_memory_message(first), 1) from exc
            raise _fail(
                f"internal error {type(exc).__name__}: {first} (DISTIL_DEBUG=1 shows the traceback)", 1
            ) from exc


def new_app(help_text: str, **kwargs: Any) -> typer.Typer:
    """A Typer app (or command group) whose commands go through the error boundary."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(cls=DistilGroup, help=help_text, pretty_exceptions_enable=False, rich_markup_mode=None, **kwargs)


class RateBar:
    """A progress bar on stderr for records (and tokens) per second; ``with RateBar(...) as advance``."""

    def __init__(self, label: str, total: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        self.bar = Progress(*columns, console=err_console, transient=False)
        self.total = total
        self.records = self.tokens = 0

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("work", total=self.total, rate="")
        self.started = time.perf_counter()
        return self.advance

    def advance(self, records: int, tokens: int = 0) -> None:
        self.records += records
        self.tokens += tokens
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = f"{self.records / elapsed:.2f} rec/s" + (f" {self.tokens / elapsed:.0f} tok/s" if self.tokens else "")
        self.bar.update(self.task, advance=records, rate=rate)

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.bar.update(self.task, completed=self.total)
        self.bar.__exit__(*exc)


JSON_FLAG = typer.Option("--json", help="Print JSON instead of a table (for scripts and bug reports).")


def print_json(data) -> None:
    import json

    out_console.print(json.dumps(data, indent=2, ensure_ascii=False, default=str), highlight=False)
