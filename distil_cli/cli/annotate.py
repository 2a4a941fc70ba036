"""``distil annotate``: a teacher rationale per record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from distil_cli.cli.common import err_console, flags_of, opt, out_console, settings_for


def annotate(  # one parameter per flag: a flat list, longer than a function should be otherwise
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Argument(help="A prepared split .jsonl, or a prepared folder (its --splits are annotated).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output .jsonl (for a split) or folder (for a prepared folder).")
    ],
    backend: Annotated[Optional[str], opt("annotate", "backend")] = None,
    base_url: Annotated[Optional[str], opt("annotate", "base_url")] = None,
    model: Annotated[Optional[str], opt("annotate", "model")] = None,
    api_key_env: Annotated[Optional[str], opt("annotate", "api_key_env")] = None,
    header: Annotated[
        Optional[list[str]], typer.Option("--header", help="Extra HTTP header 'Name: value' (repeatable).")
    ] = None,
    concurrency: Annotated[Optional[int], opt("annotate", "concurrency")] = None,
    rate_limit: Annotated[Optional[float], opt("annotate", "rate_limit")] = None,
    max_retries: Annotated[Optional[int], opt("annotate", "max_retries")] = None,
    temperature: Annotated[Optional[float], opt("annotate", "temperature")] = None,
    max_tokens: Annotated[Optional[int], opt("annotate", "max_tokens")] = None,
    timeout: Annotated[Optional[float], opt("annotate", "timeout")] = None,
    template: Annotated[Optional[str], opt("annotate", "template")] = None,
    system_prompt: Annotated[Optional[str], opt("annotate", "system_prompt")] = None,
    min_grounding: Annotated[Optional[float], opt("annotate", "min_grounding")] = None,
    batch_size: Annotated[Optional[int], opt("annotate", "batch_size")] = None,
    formatter: Annotated[Optional[str], opt("annotate", "formatter")] = None,
    splits: Annotated[Optional[str], opt("annotate", "splits")] = None,
    max_flagged: Annotated[Optional[float], opt("annotate", "max_flagged")] = None,
    format: Annotated[Optional[str], opt("annotate", "format")] = None,
) -> None:
    """Ask a teacher for a rationale per record: concurrent, retried, resumable (a rerun skips done records)."""
    flags = flags_of(locals(), "data", "out", "header")
    if header:
        flags["headers"] = dict(_parse_header(h) for h in header)
    loaded = settings_for(ctx, "annotate", **flags)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from distil_cli.reports import annotate_summary
    from distil_cli.teach.annotate import annotate as run_annotate
    from distil_cli.teach.annotate import check_failures

    columns = [
        TextColumn("annotate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("annotate", total=None, info="")

        def show(stats) -> None:
            elapsed = max(time.perf_counter() - stats.started, 1e-9)
            info = (
                f"failed {stats.failed} retrying {stats.retrying} | "
                f"tokens {stats.prompt_tokens}+{stats.completion_tokens} | {stats.done / elapsed:.2f} rec/s"
            )
            bar.update(task, total=stats.total, completed=stats.skipped + stats.done + stats.failed, info=info)

        stats = run_annotate(data, out, loaded.settings.annotate, loaded.settings.models.cache_dir, show)
    err_console.print(annotate_summary(stats))
    out_console.print(str(out), highlight=False)
    check_failures(stats, loaded.settings.annotate.max_flagged)


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise typer.BadParameter(f"expected 'Name: value', got {text!r}", param_hint="--header")
    return name.strip(), value.strip()
