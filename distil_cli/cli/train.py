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
    extend_steps: Annotated[
        Optional[int],
        typer.Option(
            "--extend-steps",
            min=1,
            metavar="N",
            help="With --resume: train N steps past the length the run planned (a finished run too); the cosine "
            "schedule is recomputed for the new length.",
        ),
    ] = None,
    inspect: Annotated[
        Optional[int],
        typer.Option(
            "--inspect", help="Print N formatted training examples with the supervised part highlighted; no training."
        ),
    ] = None,
    gpus: Annotated[
        Optional[int],
        typer.Option(
            "--gpus",
            min=1,
            metavar="N",
            help="Train on N GPUs: starts N processes with torchrun (data parallel); on a machine without GPUs, "
            "N CPU processes (gloo).",
        ),
    ] = None,
    flags: dict[str, Any] | None = None,
) -> None:
    """Fine-tune a causal LM: standard (summary only) or distill (summary + rationale, alpha-weighted)."""
    flags = dict(flags or {})
    if extend_steps is not None and not resume:
        from distil_cli.errors import ConfigError

        raise ConfigError(f"--extend-steps {extend_steps} continues a run: pass --resume with --out RUN_DIR")
    if data_dir is not None:
        flags["data"] = data_dir
    if resume and flags.get("out") is not None:
        flags = {**_run_settings(Path(flags["out"])), **flags}  # resume without retyping: the run's own settings
    loaded = settings_for(ctx, "train", **flags)
    cfg, cache = loaded.settings.train, loaded.settings.models.cache_dir
    if cfg.data is None:
        raise typer.BadParameter("give the prepared folder DATA (or train.data in --config)", param_hint="DATA")
    data_dir, out = cfg.data, cfg.out
    if cfg.fsdp and inspect is None and "RANK" not in os.environ:
        from distil_cli.train.config import check_fsdp

        check_fsdp(cfg, gpus or 1)  # before any process starts
    if gpus is not None and gpus > 1 and inspect is None and "RANK" not in os.environ:
        raise typer.Exit(_launch(loaded.settings, gpus, resume, extend_steps))
    if inspect is not None:
        from distil_cli.reports import print_inspection
        from distil_cli.train.run import load_inputs

        print_inspection(out_console, load_inputs(data_dir, cfg, cache), inspect)
        return
    if out is None:
        raise typer.BadParameter("--out RUN_DIR is required (or use --inspect N)", param_hint="--out")
    from distil_cli.train.run import run_training

    record = run_training(data_dir, out, cfg, cache, resume=resume, extend_steps=extend_steps)
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
    recipe = RunRecord.read(path).recipe()
    return {k: v for k, v in recipe.items() if k in TrainSettings.model_fields and k != "out"}


def _launch(settings, processes: int, resume: bool, extend_steps: int | None = None) -> int:
    """Run this training as ``processes`` torchrun processes: the effective settings go to them as a recipe
    file (so every layer the user gave, file, environment and flags, reaches each process unchanged)."""
    import subprocess
    import sys
    import tempfile

    import yaml

    from distil_cli.settings.loader import public_dump

    if settings.train.out is None:
        raise typer.BadParameter("--out RUN_DIR is required", param_hint="--out")
    recipe = {"train": public_dump(settings.train), "models": public_dump(settings.models)}
    with tempfile.TemporaryDirectory(prefix="distil-launch-") as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "distil_cli", "--config", str(path), "train", *(["--resume"] if resume else []),
            *(["--extend-steps", str(extend_steps)] if extend_steps else []),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
        err_console.print(f"Starting {processes} processes with torchrun", highlight=False)
        return subprocess.run(cmd, env=env).returncode
