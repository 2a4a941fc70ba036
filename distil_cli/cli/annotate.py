"""``distil annotate``: a teacher rationale per record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from distil_cli.cli.common import err_console, out_console, settings_for
from distil_cli.cli.options import settings_flags


@settings_flags("annotate")
def annotate(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Argument(help="A prepared split .jsonl, or a prepared folder (its --splits are annotated).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output .jsonl (for a split) or folder (for a prepared folder).")
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the first prompts a run would send, its token estimate and (with --price-per-mtok) its "
            "cost; nothing is sent or written. With --limit N: for N records a split.",
        ),
    ] = False,
    push_to_hub: Annotated[
        Optional[str],
        typer.Option(
            "--push-to-hub",
            metavar="OWNER/NAME",
            help="When every record is annotated, upload the splits (parquet) with a dataset card to this Hub "
            "dataset repository (HF_TOKEN or `hf auth login`).",
        ),
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="With --push-to-hub: create the repository private.")
    ] = False,
    flags: dict[str, Any] | None = None,
) -> None:
    """Ask a teacher for a rationale per record: concurrent, retried, resumable (a rerun skips done records)."""
    loaded = settings_for(ctx, "annotate", **(flags or {}))
    if push_to_hub is not None:
        from distil_cli.push import check_repo

        check_repo(push_to_hub, "--push-to-hub")  # before anything is paid for
    if dry_run:
        _print_dry_run(data, out, loaded.settings.annotate)
        if push_to_hub:
            out_console.print(f"Would then push the annotated splits to the Hub dataset {push_to_hub}.")
        return
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
    if push_to_hub:
        _push(out, push_to_hub, private)


def _push(out: Path, repo: str, private: bool) -> None:
    import tempfile

    from distil_cli.errors import ConfigError
    from distil_cli.push import plan_dataset, push

    with tempfile.TemporaryDirectory(prefix="distil-push-") as staging:
        upload = plan_dataset(out, repo, Path(staging))
        try:
            done = push(upload, private=private)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}; the annotations are kept in {out}: rerun the same command to push them (nothing is "
                "sent to the teacher again)"
            ) from None
    err_console.print(f"Pushed the annotated splits ({len(upload.files)} files) to {done.url}", highlight=False)


def _print_dry_run(data: Path, out: Path, cfg) -> None:
    from rich.panel import Panel

    from distil_cli.teach.dry_run import CHARS_PER_TOKEN, dry_run

    plan = dry_run(data, out, cfg)
    for record_id, messages in plan.prompts:
        body = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
        out_console.print(Panel(body, title=f"record {record_id}", expand=False), markup=False, highlight=False)
    line = (
        f"{plan.records} request(s) would be sent: about {plan.prompt_tokens:,} prompt tokens "
        f"(characters / {CHARS_PER_TOKEN}) and at most {plan.completion_tokens:,} completion tokens "
        f"(--max-tokens {cfg.max_tokens} each)"
    )
    if plan.cost_usd is not None:
        line += f"; at most ${plan.cost_usd:,.4f} at ${cfg.price_per_mtok[0]:g} / ${cfg.price_per_mtok[1]:g} per Mtok"
    else:
        line += "; --price-per-mtok IN,OUT gives the cost"
    out_console.print(line + ". Nothing was sent.", highlight=False)
