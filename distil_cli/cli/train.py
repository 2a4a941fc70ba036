"""``distil train``: fine-tune a student, standard or distill."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from distil_cli.cli.common import err_console, out_console, settings_for
from distil_cli.cli.options import settings_flags


@settings_flags("train")
def train(
    ctx: typer.Context,
    data_dir: Annotated[
        Optional[Path],
        typer.Argument(
            help="Prepared folder (train.jsonl, valid.jsonl from `distil prepare`); default: the config file's "
            "train.data."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUN_DIR from its last checkpoint.")] = False,
    inspect: Annotated[
        Optional[int],
        typer.Option(
            "--inspect", help="Print N formatted training examples with the supervised part highlighted; no training."
        ),
    ] = None,
    flags: dict[str, Any] | None = None,
) -> None:
    """Fine-tune a causal LM: standard (summary only) or distill (summary + rationale, alpha-weighted)."""
    flags = dict(flags or {})
    if data_dir is not None:
        flags["data"] = data_dir
    if resume and flags.get("out") is not None:
        flags = {**_run_settings(Path(flags["out"])), **flags}  # resume without retyping: the run's own settings
    loaded = settings_for(ctx, "train", **flags)
    cfg, cache = loaded.settings.train, loaded.settings.models.cache_dir
    if cfg.data is None:
        raise typer.BadParameter("give the prepared folder DATA (or train.data in --config)", param_hint="DATA")
    data_dir, out = cfg.data, cfg.out
    if inspect is not None:
        from distil_cli.reports import print_inspection
        from distil_cli.train.run import load_inputs

        print_inspection(out_console, load_inputs(data_dir, cfg, cache), inspect)
        return
    if out is None:
        raise typer.BadParameter("--out RUN_DIR is required (or use --inspect N)", param_hint="--out")
    from distil_cli.train.run import run_training

    record = run_training(data_dir, out, cfg, cache, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    best = record.best_metric
    err_console.print(
        f"Trained {record.global_steps} steps; best mean ROUGE {best if best is not None else 'n/a'}; final model:",
        highlight=False,
    )
    out_console.print(record.final, highlight=False)


def _run_settings(run_dir: Path) -> dict[str, Any]:
    """The train settings a run recorded (run.json), as the layer under this command's flags when it is
    resumed; flags given on the command line still win, and the resume check compares them."""
    from distil_cli.run_record import FILE_NAME, RunRecord
    from distil_cli.settings import TrainSettings

    path = run_dir / FILE_NAME
    if not path.is_file():
        return {}
    record = RunRecord.read(path)
    found = {k: v for k, v in record.settings.items() if k in TrainSettings.model_fields and v is not None}
    found.setdefault("data", record.data_dir or None)
    found.pop("out", None)
    return {k: v for k, v in found.items() if v is not None}
