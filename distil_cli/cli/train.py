"""``distil train``: fine-tune a student, standard or distill."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from distil_cli.cli.common import err_console, flags_of, opt, out_console, settings_for


def train(  # one parameter per flag: a flat list, longer than a function should be otherwise
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="Prepared folder (train.jsonl, valid.jsonl from `distil prepare`).")],
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Run folder RUN_DIR (required unless --inspect).")
    ] = None,
    model: Annotated[Optional[str], opt("train", "model")] = None,
    objective: Annotated[Optional[str], opt("train", "objective", "--objective", "--model-type")] = None,
    alpha: Annotated[Optional[float], opt("train", "alpha")] = None,
    epochs: Annotated[Optional[float], opt("train", "epochs")] = None,
    max_steps: Annotated[Optional[int], opt("train", "max_steps")] = None,
    batch_size: Annotated[Optional[int], opt("train", "batch_size")] = None,
    packing: Annotated[Optional[bool], opt("train", "packing", "--packing/--no-packing")] = None,
    tokens_per_batch: Annotated[Optional[int], opt("train", "tokens_per_batch")] = None,
    pack_row_tokens: Annotated[Optional[int], opt("train", "pack_row_tokens")] = None,
    attn_implementation: Annotated[Optional[str], opt("train", "attn_implementation")] = None,
    kernels: Annotated[Optional[str], opt("train", "kernels")] = None,
    grad_accum: Annotated[Optional[int], opt("train", "grad_accum")] = None,
    lr: Annotated[Optional[float], opt("train", "lr")] = None,
    warmup_ratio: Annotated[Optional[float], opt("train", "warmup_ratio")] = None,
    weight_decay: Annotated[Optional[float], opt("train", "weight_decay")] = None,
    seed: Annotated[Optional[int], opt("train", "seed")] = None,
    max_input_tokens: Annotated[Optional[int], opt("train", "max_input_tokens")] = None,
    max_output_tokens: Annotated[Optional[int], opt("train", "max_output_tokens")] = None,
    eval_steps: Annotated[Optional[int], opt("train", "eval_steps")] = None,
    eval_samples: Annotated[Optional[int], opt("train", "eval_samples")] = None,
    max_new_tokens: Annotated[Optional[int], opt("train", "max_new_tokens")] = None,
    missing_rationale: Annotated[Optional[str], opt("train", "missing_rationale")] = None,
    gradient_checkpointing: Annotated[
        Optional[bool], opt("train", "gradient_checkpointing", "--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    precision: Annotated[Optional[str], opt("train", "precision")] = None,
    lora: Annotated[Optional[bool], opt("train", "lora", "--lora/--no-lora")] = None,
    lora_r: Annotated[Optional[int], opt("train", "lora_r")] = None,
    lora_alpha: Annotated[Optional[int], opt("train", "lora_alpha")] = None,
    lora_dropout: Annotated[Optional[float], opt("train", "lora_dropout")] = None,
    lora_target_modules: Annotated[Optional[str], opt("train", "lora_target_modules")] = None,
    merge: Annotated[Optional[bool], opt("train", "merge", "--merge/--no-merge")] = None,
    formatter: Annotated[Optional[str], opt("train", "formatter")] = None,
    summary_instruction: Annotated[Optional[str], opt("train", "summary_instruction")] = None,
    rationale_instruction: Annotated[Optional[str], opt("train", "rationale_instruction")] = None,
    select: Annotated[Optional[str], opt("train", "select")] = None,
    save_checkpoints: Annotated[
        Optional[bool], opt("train", "save_checkpoints", "--save-checkpoints/--no-save-checkpoints")
    ] = None,
    pair_tasks: Annotated[Optional[bool], opt("train", "pair_tasks", "--pair-tasks/--no-pair-tasks")] = None,
    reshuffle_batches: Annotated[
        Optional[bool], opt("train", "reshuffle_batches", "--reshuffle-batches/--no-reshuffle-batches")
    ] = None,
    long_rationale: Annotated[Optional[str], opt("train", "long_rationale")] = None,
    trainer_arg: Annotated[
        Optional[list[str]],
        typer.Option(
            "--trainer-arg",
            help="KEY=VALUE: any other TrainingArguments field (repeatable; VALUE read as JSON if it can be).",
        ),
    ] = None,
    report_to: Annotated[Optional[str], opt("train", "report_to")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUN_DIR from its last checkpoint.")] = False,
    inspect: Annotated[
        Optional[int],
        typer.Option(
            "--inspect", help="Print N formatted training examples with the supervised part highlighted; no training."
        ),
    ] = None,
) -> None:
    """Fine-tune a causal LM: standard (summary only) or distill (summary + rationale, alpha-weighted)."""
    flags = flags_of(locals(), "data_dir", "out", "resume", "inspect", "trainer_arg")
    if trainer_arg:
        flags["trainer_args"] = dict(_key_value(item) for item in trainer_arg)
    if flags["lora_target_modules"] is not None:
        flags["lora_target_modules"] = [m.strip() for m in flags["lora_target_modules"].split(",") if m.strip()]
    loaded = settings_for(ctx, "train", **flags)
    cfg, cache = loaded.settings.train, loaded.settings.models.cache_dir
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


def _key_value(text: str) -> tuple[str, object]:
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--trainer-arg")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value
