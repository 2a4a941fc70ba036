"""Orchestration of ``distil train``: data, model, trainer, final model, run record."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_cli.data.files import read_jsonl, sha256_file
from distil_cli.data.guard import OutputLock, check_separate
from distil_cli.errors import ConfigError, DataError
from distil_cli.models import load_tokenizer, resolve_model
from distil_cli.plugins.choosing import choose_formatter, detect_family
from distil_cli.prompts import Task, instruction_for, with_system
from distil_cli.run_record import RunRecord
from distil_cli.settings import TrainSettings, public_dump
from distil_cli.train.adapters import base_dtype, quantization, with_lora
from distil_cli.train.card import model_card
from distil_cli.train.config import planned_total, with_epochs, with_precision
from distil_cli.train.examples import Encoder, ExampleSet, build_examples, validation_examples
from distil_cli.train.finish import finish_from, finished_at, full_state_dict, save_final, trim_metrics
from distil_cli.train.kernels import VARLEN
from distil_cli.train.learning_rate import with_lr
from distil_cli.train.phases import CHECKPOINTING, NO_PHASES, Phases
from distil_cli.train.resume import (
    RunDir,
    check_same_run,
    choose_checkpoint,
    clear_for_fresh_start,
    extended_steps,
    extension,
    lr_of_run,
    precision_of_run,
    previous_extensions,
    step_of,
)
from distil_cli.version import __version__

log = logging.getLogger(__name__)
FEW_EVAL_RECORDS = 300  # below this, the best checkpoint by eval ROUGE is mostly noise (docs/method.md)


@dataclass
class TrainInputs:
    records: list[dict[str, Any]]
    eval_records: list[dict[str, Any]]
    tokenizer: Any
    formatter: Any
    examples: ExampleSet
    model_source: str
    family: Any = None


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
    formatter = with_system(choose_formatter(tokenizer, cfg.formatter, family), cfg.system_prompt)
    examples = build_examples(
        records,
        tokenizer,
        formatter,
        cfg.objective,
        cfg.max_input_tokens,
        cfg.max_output_tokens,
        cfg.missing_rationale,
        cfg.instruction_overrides("summary"),
        cfg.instruction_overrides("rationale"),
        cfg.long_rationale,
    )
    if examples.long_rationales:
        verb = {"crop": "Cropped", "skip": "Skipped"}[cfg.long_rationale]
        log.info(
            "%s %d rationale(s) longer than max_output_tokens=%d", verb, examples.long_rationales, cfg.max_output_tokens
        )
    if cfg.select == "best" and eval_records and len(eval_records) < FEW_EVAL_RECORDS:
        log.warning(
            "--select best on %d evaluation records: ROUGE on so few moves by about 2 points between epochs from "
            "noise alone and can pick an undertrained checkpoint (docs/method.md); --select last is the default",
            len(eval_records),
        )
    if examples.skipped_missing_rationale:
        log.warning("Skipped %d record(s) without a rationale", len(examples.skipped_missing_rationale))
    if examples.cropped:
        log.info(
            "Cropped the input of %d example(s) to fit max_input_tokens=%d", examples.cropped, cfg.max_input_tokens
        )
    return TrainInputs(records, eval_records, tokenizer, formatter, examples, model_source, family)


def load_model(source: str, cfg: TrainSettings, tokenizer, family=None):
    """(model, kernels): the model with its attention implementation, and the kernels applied."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from distil_cli.train.kernels import resolve_attention, resolve_kernels

    try:
        config = AutoConfig.from_pretrained(source)
        attention = resolve_attention(cfg.attn_implementation, config, cfg.packing)
        extra = {"attn_implementation": attention} if attention else {}
        extra.update(quantization(cfg))
        model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=base_dtype(cfg), **extra)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load model {source}: {str(exc).splitlines()[0]}") from None
    model.config.pad_token_id = tokenizer.pad_token_id
    # before the adapter: Liger patches the base model (under LoRA and QLoRA at the Qwen2.5-7B shape Liger and
    # the fused loss gave 1.18-1.20x the tokens/s at less memory, one H100: docs/benchmarks.md)
    kernels = resolve_kernels(cfg.kernels, model)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    if cfg.lora:
        model = with_lora(model, cfg, family)
    return model, kernels


def _selected(cfg: TrainSettings, trainer, has_eval: bool) -> dict[str, Any]:
    """Which checkpoint became final/ and why."""
    if trainer is None:
        return {"rule": cfg.select}
    if cfg.select == "best" and has_eval:
        return {
            "rule": "best",
            "checkpoint": trainer.state.best_model_checkpoint,
            "why": f"highest eval {trainer.args.metric_for_best_model} ({trainer.state.best_metric})",
        }
    why = "--select last (default)" if cfg.select == "last" else "--select best without evaluation records"
    return {"rule": "last", "checkpoint": f"step {trainer.state.global_step}", "why": why}


def _run_record(data_dir: Path, inputs: TrainInputs, cfg: TrainSettings, trainer, started: float) -> RunRecord:
    """The run record; without a trainer (at the start) the record of a run that is only starting."""
    import peft
    import torch
    import transformers

    manifest = Path(data_dir) / "manifest.json"
    if trainer is None:
        speed, steps, best, best_checkpoint, status = {}, 0, None, None, "running"
    else:
        speed = {
            "attn_implementation": getattr(trainer.model.config, "_attn_implementation", None),
            "kernels": trainer.args.kernels,
            "fused_ce": trainer.args.fused_ce,
            "tokens_per_batch": trainer.args.tokens_per_batch if cfg.packing else None,
            "pack_row_tokens": trainer.args.pack_row_tokens if cfg.packing else None,
            "bf16": trainer.args.bf16,
            "precision": cfg.precision,
        }
        steps, best = trainer.state.global_step, trainer.state.best_metric
        best_checkpoint, status = trainer.state.best_model_checkpoint, "done"
    langs = sorted({r.get("lang", "en") for r in inputs.records} | {r.get("lang", "en") for r in inputs.eval_records})
    overrides = {t: cfg.instruction_overrides(t.key) for t in Task}
    return RunRecord(
        version=__version__,
        versions={"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        settings=public_dump(cfg),
        data_dir=str(Path(data_dir).resolve()),
        data_manifest_sha256=sha256_file(manifest) if manifest.is_file() else None,
        model_source=inputs.model_source,
        formatter=inputs.formatter.name,
        system_prompt=cfg.system_prompt,
        prompt_template=inputs.formatter.format(
            instruction_for(Task.SUMMARY, langs[0] if langs else "en", overrides[Task.SUMMARY]), "{input}"
        ).prompt,
        family=inputs.family.name if inputs.family else None,
        instructions={
            t.key: {**overrides[t], **{lang: instruction_for(t, lang, overrides[t]) for lang in langs}} for t in Task
        },
        selected=_selected(cfg, trainer, bool(inputs.eval_records)),
        max_input_tokens=cfg.max_input_tokens,
        examples=len(inputs.examples.examples),
        cropped_inputs=inputs.examples.cropped,
        skipped_missing_rationale=inputs.examples.skipped_missing_rationale,
        speed=speed,
        global_steps=steps,
        best_metric=best,
        best_checkpoint=best_checkpoint,
        train_seconds=round(time.perf_counter() - started, 1),
        status=status,
    )


def run_training(
    data_dir: Path,
    out: Path,
    cfg: TrainSettings,
    cache_dir: Path,
    resume: bool = False,
    phases: Phases = NO_PHASES,
    extend_steps: int | None = None,
) -> RunRecord:
    """Train and return the run record; RUN_DIR/final holds the best (or last) model.

    One process (one launch) per RUN_DIR at a time: rank 0 holds a lock beside it. ``phases``
    times each phase of the run (``distil bench e2e``; ``train.phases``). ``extend_steps``: a resumed
    run continues N steps past the length it planned (recorded in run.json and the card).
    """
    data_dir, out = Path(data_dir), Path(out)
    check_separate(data_dir, out)
    from distil_cli.train.config import check_fsdp, check_report_to, check_trainer_args, selection_key

    check_report_to(cfg.report_to)
    check_trainer_args(cfg.trainer_args)
    check_fsdp(cfg)
    selection_key(cfg.select_metric)  # an unknown metric is an error before anything is created
    if extend_steps is not None and not resume:
        raise ConfigError(f"--extend-steps {extend_steps} continues a run: pass --resume with --out RUN_DIR")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    with OutputLock(out) if rank0 else contextlib.nullcontext():
        return _run_training(data_dir, out, cfg, cache_dir, resume, phases, extend_steps)


def _start(
    state: RunDir, resume: bool, inputs: TrainInputs, cfg: TrainSettings, record: RunRecord
) -> tuple[Path | None, list[str]]:
    """Resume: the checkpoint to continue from (settings checked) and the length settings that grew;
    fresh: clear what a dead run left."""
    if not resume:
        clear_for_fresh_start(state)
        return None, []
    checkpoint = choose_checkpoint(state)
    facts = {"data_manifest_sha256": record.data_manifest_sha256, "model_source": inputs.model_source}
    grown = check_same_run(state, public_dump(cfg), facts)
    trim_metrics(state.path / "metrics.jsonl", step_of(checkpoint))
    return checkpoint, grown


def _trainer(out: Path, cfg: TrainSettings, inputs: TrainInputs, model, kernels: str, phases: Phases):
    """The DistilTrainer of a run: its arguments, batches, callbacks and evaluation data."""
    from distil_cli.train.batching import Collator
    from distil_cli.train.config import batch_plan, training_arguments
    from distil_cli.train.trainer import DistilTrainer, EvaluateAtEnd, MetricsFile

    varlen = getattr(model.config, "_attn_implementation", None) == VARLEN
    examples = inputs.examples.examples
    sampler, per_epoch = batch_plan(cfg, examples)
    # no evaluation under FSDP: every forward is a collective, and the ranks' shares of the eval records
    # differ in length (generation stops at different steps): score final/ with infer + score instead
    eval_records = [] if cfg.fsdp else inputs.eval_records
    args = training_arguments(out, cfg, examples, per_epoch, bool(eval_records), kernels, varlen)
    total = planned_total(cfg, per_epoch)
    trainer = DistilTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        eval_dataset=eval_records or None,
        data_collator=Collator(inputs.tokenizer.pad_token_id),
        processing_class=inputs.tokenizer,
        callbacks=[MetricsFile(out / "metrics.jsonl"), *([] if cfg.fsdp else [EvaluateAtEnd()])],
        eval_records=eval_records,
        formatter=inputs.formatter,
        summary_instructions=cfg.instruction_overrides("summary"),
        predictions_dir=out / "eval_predictions",
        batch_sampler=sampler,
        validation_examples=validation_examples(
            eval_records,
            Encoder(inputs.tokenizer, inputs.formatter, cfg.max_input_tokens, cfg.max_output_tokens),
            cfg.objective,
            cfg.instruction_overrides("summary"),
            cfg.instruction_overrides("rationale"),
        ),
        phases=phases,
    )
    return trainer, total


def _run_training(
    data_dir: Path, out: Path, cfg: TrainSettings, cache_dir: Path, resume: bool, phases: Phases, extend: int | None
) -> RunRecord:
    from transformers.trainer_callback import ProgressCallback

    from distil_cli.train.trainer import LossProgress

    state = RunDir.inspect(out)
    if resume and not state.complete:
        choose_checkpoint(state)  # raises, before anything is loaded: there is nothing to resume
    if not resume and state.holds_a_run:
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    inputs = load_inputs(data_dir, cfg, cache_dir)
    resumed = precision_of_run(state) if resume else None  # auto keeps a resumed run's precision
    cfg = with_epochs(cfg, len(inputs.records))  # these three are recorded in run.json as they became
    cfg = with_precision(with_lr(cfg, inputs.model_source, lr_of_run(state) if resume else None), resumed)
    if extend is not None:
        cfg = cfg.model_copy(update={"max_steps": extended_steps(state, extend)})
    started = time.perf_counter()
    model, kernels = load_model(inputs.model_source, cfg, inputs.tokenizer, inputs.family)  # before RUN_DIR
    record = _run_record(data_dir, inputs, cfg, None, started)
    extensions = previous_extensions(state) if resume else []
    checkpoint, grown = _start(state, resume, inputs, cfg, record)
    trainer, total = _trainer(out, cfg, inputs, model, kernels, phases)
    grown = grown or (["max_steps"] if extend is not None else [])  # a run without run.json still says so
    now = extension(checkpoint, total, grown) if checkpoint is not None else None
    record.extensions = extensions = extensions + ([now] if now else [])
    out.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        record.write(out)  # status "running": what is being trained, for a later --resume to check
    trainer.remove_callback(ProgressCallback)  # replaced by one that shows the losses on the bar
    trainer.add_callback(LossProgress())
    if checkpoint is not None and not now and finished_at(checkpoint) is not None:
        finish_from(trainer, checkpoint)  # the Trainer's resume loop would take one step more
    else:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    record = _run_record(data_dir, inputs, cfg, trainer, started)
    record.final, record.extensions = str(out / "final"), extensions
    weights = full_state_dict(trainer)  # FSDP: gathered from every rank's shard (a collective)
    if trainer.is_world_process_zero():  # only rank 0 writes files
        card = model_card(record, trainer.state.log_history, adapter=cfg.lora and not cfg.merges())
        with phases(CHECKPOINTING):
            save_final(trainer, inputs.tokenizer, out, cfg, card, weights)
        record.write(out)
        from distil_cli.reports import plot_curves

        plot_curves([out], out / "curves.png")
    return record
