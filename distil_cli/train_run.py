"""Orchestration of ``distil train``: data, model, trainer, final model, run.json."""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_cli import __version__
from distil_cli.data import read_jsonl
from distil_cli.errors import ConfigError, DataError
from distil_cli.examples import Collator, ExampleSet, build_examples
from distil_cli.kernels import VARLEN
from distil_cli.models import load_tokenizer, resolve_model, sha256_file
from distil_cli.prompts import RATIONALE, SUMMARY, choose_formatter, instruction_for
from distil_cli.settings import TrainSettings, public_dump

log = logging.getLogger(__name__)
DEFAULT_ROW_TOKENS = 4096  # packed row bound for dense-mask attention kernels (measured on the H200)


@dataclass
class TrainInputs:
    records: list[dict[str, Any]]
    eval_records: list[dict[str, Any]]
    tokenizer: Any
    formatter: Any
    examples: ExampleSet
    model_source: str
    family: Any = None


def detect_family(model_source: str, model_arg: str):
    """The registered family of this checkpoint (by config and name), or None."""
    from transformers import AutoConfig

    from distil_cli.plugins import get_registry

    try:
        config = AutoConfig.from_pretrained(model_source)
    except (OSError, ValueError):
        config = None
    return get_registry().detect_family(config, f"{model_arg} {model_source}")


def load_inputs(data_dir: Path, cfg: TrainSettings, cache_dir: Path) -> TrainInputs:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is not a prepared folder; run `distil prepare SOURCE --out {data_dir}` first")
    records = read_jsonl(data_dir / "train.jsonl")
    if not records:
        raise DataError(f"{data_dir / 'train.jsonl'} has no records")
    eval_records: list[dict[str, Any]] = []
    if (data_dir / "valid.jsonl").is_file():
        eval_records = [r for r in read_jsonl(data_dir / "valid.jsonl") if r.get("output")]
    if cfg.eval_samples is not None and len(eval_records) > cfg.eval_samples:
        eval_records = random.Random(cfg.seed).sample(eval_records, cfg.eval_samples)
    model_source = resolve_model(cfg.model, cache_dir)
    family = detect_family(model_source, cfg.model)
    tokenizer = load_tokenizer(model_source, family.pad_token if family else None)
    formatter = choose_formatter(tokenizer, cfg.formatter, family)
    examples = build_examples(
        records,
        tokenizer,
        formatter,
        cfg.model_type,
        cfg.max_input_tokens,
        cfg.max_output_tokens,
        cfg.missing_rationale,
        cfg.summary_instructions,
        cfg.rationale_instructions,
    )
    if examples.skipped_missing_rationale:
        log.warning("Skipped %d record(s) without a rationale", len(examples.skipped_missing_rationale))
    if examples.cropped:
        log.info(
            "Cropped the input of %d example(s) to fit max_input_tokens=%d", examples.cropped, cfg.max_input_tokens
        )
    return TrainInputs(records, eval_records, tokenizer, formatter, examples, model_source, family)


def _checkpoints(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _load_model(source: str, cfg: TrainSettings, tokenizer, family=None):
    """(model, kernels): the model with its attention implementation, and the kernels applied."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from distil_cli.kernels import resolve_attention, resolve_kernels

    try:
        config = AutoConfig.from_pretrained(source)
        attention = resolve_attention(cfg.attn_implementation, config, cfg.packing)
        extra = {"attn_implementation": attention} if attention else {}
        model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32, **extra)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load model {source}: {str(exc).splitlines()[0]}") from None
    model.config.pad_token_id = tokenizer.pad_token_id
    kernels = resolve_kernels(cfg.kernels, model) if not cfg.lora else "none"
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        targets = cfg.lora_target_modules or (list(family.lora_target_modules) if family else "all-linear")
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model, kernels


def token_budget(cfg: TrainSettings, examples: list[dict[str, Any]]) -> int:
    """The packed batch's token budget: set explicitly, or batch_size average examples (at least the longest)."""
    if cfg.tokens_per_batch:
        return cfg.tokens_per_batch
    lengths = [len(e["input_ids"]) for e in examples]
    return max(max(lengths), round(cfg.batch_size * sum(lengths) / len(lengths)))


def _training_args(
    out: Path,
    cfg: TrainSettings,
    examples: list[dict[str, Any]],
    has_eval: bool,
    kernels: str = "none",
    varlen: bool = False,
):
    import torch

    from distil_cli.examples import TokenBudgetBatchSampler
    from distil_cli.training import DistilTrainingArguments, bf16_supported, steps_per_epoch, world_size_from_env

    budget = token_budget(cfg, examples)
    if cfg.packing and torch.cuda.is_available() and budget < 16384:
        log.info(
            "%d tokens per batch leave a GPU mostly idle; --tokens-per-batch 32768 or more (with "
            "--gradient-checkpointing to bound memory) trains several times faster (docs/benchmarks.md)",
            budget,
        )
    if cfg.packing:
        batches = len(TokenBudgetBatchSampler(examples, budget, cfg.seed))
        per_epoch = max(1, math.ceil(batches / world_size_from_env() / cfg.grad_accum))
    else:
        per_epoch = steps_per_epoch(len(examples), cfg.batch_size, cfg.grad_accum, world_size_from_env())
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    extra = {"gradient_checkpointing": True} if cfg.gradient_checkpointing else {}
    eval_steps = cfg.eval_steps or per_epoch
    return DistilTrainingArguments(
        output_dir=str(out),
        model_type=cfg.model_type,
        alpha=cfg.alpha,
        eval_max_new_tokens=cfg.max_new_tokens,
        max_input_tokens=cfg.max_input_tokens,
        packing=cfg.packing,
        tokens_per_batch=budget,
        pack_row_tokens=cfg.pack_row_tokens or (None if varlen else DEFAULT_ROW_TOKENS),
        fused_ce=kernels == "liger",
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 8),
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        optim="adamw_torch_fused" if torch.cuda.is_available() else "adamw_torch",
        bf16=bf16_supported(),
        use_cpu=not torch.cuda.is_available(),
        seed=cfg.seed,
        logging_steps=1 if total <= 50 else max(1, total // 50),
        logging_first_step=True,
        logging_nan_inf_filter=False,  # it reads the loss on the host every step (a GPU sync)
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model="rouge_mean" if has_eval else None,
        greater_is_better=True,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        **extra,
    )


def _trim_metrics(path: Path, last_step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= last_step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _save_final(trainer, tokenizer, out: Path, cfg: TrainSettings) -> Path:
    final = out / "final"
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.lora and cfg.merge:
        model = model.merge_and_unload()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _run_json(data_dir: Path, inputs: TrainInputs, cfg: TrainSettings, trainer, started: float) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    manifest = Path(data_dir) / "manifest.json"
    langs = sorted({r.get("lang", "en") for r in inputs.records} | {r.get("lang", "en") for r in inputs.eval_records})
    return {
        "tool": "distil",
        "version": __version__,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "settings": public_dump(cfg),
        "data_dir": str(Path(data_dir).resolve()),
        "data_manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
        "model_source": inputs.model_source,
        "formatter": inputs.formatter.name,
        "family": inputs.family.name if inputs.family else None,
        "instructions": {
            SUMMARY: {lang: instruction_for(SUMMARY, lang, cfg.summary_instructions) for lang in langs},
            RATIONALE: {lang: instruction_for(RATIONALE, lang, cfg.rationale_instructions) for lang in langs},
        },
        "max_input_tokens": cfg.max_input_tokens,
        "examples": len(inputs.examples.examples),
        "cropped_inputs": inputs.examples.cropped,
        "skipped_missing_rationale": inputs.examples.skipped_missing_rationale,
        "speed": {
            "attn_implementation": getattr(trainer.model.config, "_attn_implementation", None),
            "kernels": "liger" if trainer.args.fused_ce else "none",
            "tokens_per_batch": trainer.args.tokens_per_batch if cfg.packing else None,
            "pack_row_tokens": trainer.args.pack_row_tokens if cfg.packing else None,
            "bf16": trainer.args.bf16,
        },
        "global_steps": trainer.state.global_step,
        "best_metric": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_seconds": round(time.perf_counter() - started, 1),
    }


def run_training(
    data_dir: Path, out: Path, cfg: TrainSettings, cache_dir: Path, resume: bool = False
) -> dict[str, Any]:
    """Train and return run.json's content; RUN_DIR/final holds the best (or last) model."""
    from transformers.trainer_callback import ProgressCallback

    from distil_cli.training import DistilTrainer, EvaluateAtEnd, LossProgress, MetricsFile

    out = Path(out)
    checkpoints = _checkpoints(out) if out.is_dir() else []
    if resume and not checkpoints:
        raise ConfigError(f"--resume: {out} has no checkpoint-* to resume from; start without --resume")
    if not resume and out.is_dir() and (checkpoints or (out / "final").exists()):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    inputs = load_inputs(data_dir, cfg, cache_dir)
    started = time.perf_counter()
    model, kernels = _load_model(inputs.model_source, cfg, inputs.tokenizer, inputs.family)  # before RUN_DIR
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        _trim_metrics(out / "metrics.jsonl", int(checkpoints[-1].name.split("-")[-1]))
    varlen = getattr(model.config, "_attn_implementation", None) == VARLEN
    args = _training_args(out, cfg, inputs.examples.examples, bool(inputs.eval_records), kernels, varlen)
    trainer = DistilTrainer(
        model=model,
        args=args,
        train_dataset=inputs.examples.examples,
        eval_dataset=inputs.eval_records or None,
        data_collator=Collator(inputs.tokenizer.pad_token_id),
        processing_class=inputs.tokenizer,
        callbacks=[MetricsFile(out / "metrics.jsonl"), EvaluateAtEnd()],
        eval_records=inputs.eval_records,
        formatter=inputs.formatter,
        summary_instructions=cfg.summary_instructions,
        predictions_dir=out / "eval_predictions",
    )
    trainer.remove_callback(ProgressCallback)  # replaced by one that shows the losses on the bar
    trainer.add_callback(LossProgress())
    trainer.train(resume_from_checkpoint=True if resume else None)
    run = _run_json(data_dir, inputs, cfg, trainer, started)
    run["final"] = str(out / "final")
    if trainer.is_world_process_zero():  # only rank 0 writes files
        _save_final(trainer, inputs.tokenizer, out, cfg)
        (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return run
