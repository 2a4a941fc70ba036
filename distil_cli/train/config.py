"""The one training configuration: ``TrainSettings`` (what the user set) -> ``DistilTrainingArguments``.

``training_arguments`` is the only place that builds the arguments ``distil train`` runs
with; ``distil bench`` calls it too (with its timing-only overrides written out), so the
benchmark cannot drift from the command. Range checks live in ``TrainSettings`` (where an
error can name the flag, file or variable that set the value); this module only
translates, and says why where the translation is not a copy.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from distil_cli.errors import ConfigError
from distil_cli.settings import TrainSettings
from distil_cli.settings.fields import meta
from distil_cli.settings.train import DEFAULT_LR
from distil_cli.train.batching import TokenBudgetBatchSampler, record_groups

log = logging.getLogger(__name__)
DEFAULT_ROW_TOKENS = 4096  # packed row bound for dense-mask attention kernels (measured on the H200)
SMALL_GPU_BUDGET = 16384  # below this many tokens per batch an H200 is mostly idle (docs/benchmarks.md)


@dataclass
class DistilTrainingArguments(TrainingArguments):
    """TrainingArguments plus the recipe's own knobs, named as in ``TrainSettings``.

    Built by ``training_arguments`` from validated settings.
    """

    objective: str = field(default="distill", metadata={"help": "standard (summary only) or distill (+ rationale)."})
    pair_tasks: bool = field(default=True, metadata={"help": "A record's examples share a batch (padded batches)."})
    alpha: float = field(default=0.5, metadata={"help": "Weight of the summary loss; 1 - alpha weighs the rationale."})
    max_new_tokens: int = field(default=256, metadata={"help": "Generation length at evaluation."})
    max_input_tokens: int = field(default=2048, metadata={"help": "Prompt length limit (input side cropped)."})
    packing: bool = field(default=True, metadata={"help": "Padding-free packed batches under a token budget."})
    tokens_per_batch: int = field(default=8192, metadata={"help": "Token budget of one packed batch (resolved)."})
    pack_row_tokens: int | None = field(default=None, metadata={"help": "Longest packed row (None: one row)."})
    kernels: str = field(default="none", metadata={"help": "Kernels in use (resolved): liger or none."})
    master_weights: bool = field(
        default=False, metadata={"help": "bf16 model weights, float32 master weights in the optimizer (MasterAdamW)."}
    )
    fused_ce: bool | None = field(
        default=None,
        metadata={"help": "Liger's fused linear cross-entropy for the loss (default: when kernels is liger)."},
    )
    # The host syncs distil removed, to put back for a benchmark comparison (`distil bench train`'s
    # ligerce and maskcheck flags); training always runs with both True.
    select_metric: str = field(
        default="rouge", metadata={"help": "The registered metric evaluations compute (and --select best reads)."}
    )
    sync_free_ce: bool = field(
        default=True, metadata={"help": "The fused loss without host syncs (False: Liger's own function)."}
    )
    mask_placeholder: bool = field(
        default=True,
        metadata={"help": "Packed varlen batches carry an empty 4D mask (False: transformers checks positions)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.fused_ce is None:
            self.fused_ce = self.kernels == "liger"

    @property
    def n_gpu(self) -> int:
        """GPUs this process drives: at most one. transformers wraps the model in ``nn.DataParallel``
        when one process sees several GPUs, which splits every tensor argument along its first
        dimension: the packed batch's sequence lengths and ``logits_to_keep`` were cut in half and
        training crashed or attended wrongly. Several GPUs are one process each (torchrun: DDP)."""
        return min(super().n_gpu, 1)


# TrainingArguments fields that distil sets itself, from no setting (pass-through would break the run)
SET_BY_DISTIL = ("output_dir", "remove_unused_columns")


def owned() -> dict[str, str | None]:
    """TrainingArguments fields distil sets, each with the train setting it comes from (the fields'
    ``hf`` and ``sets`` declarations): passing them through would make two ways to set one thing."""
    found: dict[str, str | None] = dict.fromkeys(SET_BY_DISTIL)
    for name in TrainSettings.model_fields:
        info = meta(TrainSettings, name)
        for field_name in [*([info["hf"]] if "hf" in info else []), *info.get("sets", [])]:
            found[field_name] = name
    return found


def check_trainer_args(values: dict[str, Any]) -> None:
    """Pass-through TrainingArguments fields must exist and not be ones distil sets from its settings."""
    import dataclasses
    import difflib

    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    taken = owned()
    for name in values:
        if name == "push_to_hub" or name.startswith("hub_"):
            raise ConfigError(
                f"train.trainer_args.{name}: distil uploads a finished run with `distil push RUN_DIR --repo "
                "OWNER/NAME` (final/ and its model card), not from inside training"
            )
        if name in taken:
            own = taken[name]
            raise ConfigError(
                f"train.trainer_args.{name}: distil sets it" + (f" from --{own.replace('_', '-')}" if own else "")
            )
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"train.trainer_args.{name} is not a TrainingArguments field{hint}")


def trackers(report_to: str) -> list[str]:
    """``--report-to`` as transformers' list: comma-separated names, ``none`` for none."""
    return [t.strip() for t in report_to.split(",") if t.strip() not in ("", "none")]


# The Python module each tracker needs (where it differs from the tracker's name).
TRACKER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "azure_ml": ("azureml",), "kubeflow": ("kfp",)}


def install_hint(tracker: str) -> str:
    """What to pip install for a tracker: distil's extra where it declares one, else the package itself."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        extras = set(metadata("distil-cli").get_all("Provides-Extra") or [])
    except PackageNotFoundError:
        extras = set()
    if tracker in extras:
        return f"'distil-cli[{tracker}]'"
    return tracker.replace("_", "-")  # the package of its name (comet_ml: comet-ml)


def check_report_to(report_to: str) -> None:
    """Every tracker is a transformers integration whose package is installed: checked before anything is created."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    for name in trackers(report_to):
        if name not in INTEGRATION_TO_CALLBACK:
            known = ", ".join(sorted(INTEGRATION_TO_CALLBACK))
            raise ConfigError(f"--report-to {name}: not a tracker transformers knows; known: none, {known}")
        modules = TRACKER_MODULES.get(name, (name,))
        if not any(importlib.util.find_spec(module) for module in modules):
            raise ConfigError(f"--report-to {name} needs the {modules[0]} package: pip install {install_hint(name)}")


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


_SAID_GPUS: list[int] = []  # said once per process (an experiment trains many runs in one)


def warn_several_gpus() -> None:
    """Say so (once) when one process sees several GPUs: it trains on the first (``DistilTrainingArguments.n_gpu``)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1 and world_size_from_env() == 1 and not _SAID_GPUS:
        _SAID_GPUS.append(gpus)
        log.warning(
            "%d GPUs are visible to this one process: it trains on the first only (choose one with "
            "CUDA_VISIBLE_DEVICES; for data parallel launch `torchrun --nproc_per_node %d -m distil_cli train ...`)",
            gpus, gpus,
        )  # fmt: skip


def bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def tasks_per_record(cfg: TrainSettings) -> int:
    return 2 if cfg.objective == "distill" else 1


def token_budget(cfg: TrainSettings, examples: list[dict[str, Any]]) -> int:
    """The packed batch's token budget: set explicitly, or batch_size average records (at least the longest).

    A record counts with all its examples, so standard and distill take the same records per step.
    """
    if cfg.tokens_per_batch:
        return cfg.tokens_per_batch
    sizes = [sum(len(examples[i]["input_ids"]) for i in g) for g in record_groups(examples)]
    return max(max(sizes), round(cfg.batch_size * sum(sizes) / len(sizes)))


def batch_plan(cfg: TrainSettings, examples: list[dict[str, Any]]) -> tuple[TokenBudgetBatchSampler | None, int]:
    """(the packed batch sampler or None, optimizer steps per epoch); the trainer uses this very sampler."""
    world = world_size_from_env()
    if cfg.packing:
        budget = token_budget(cfg, examples)
        sampler = TokenBudgetBatchSampler(examples, budget, cfg.seed, cfg.pair_tasks, cfg.reshuffle_batches)
        return sampler, max(1, math.ceil(len(sampler) / world / cfg.grad_accum))
    batches = math.ceil(len(examples) / (cfg.batch_size * tasks_per_record(cfg) * world))
    return None, max(1, math.ceil(batches / cfg.grad_accum))


# The default number of epochs, by training-set size (docs/method.md): on CommonsenseQA with 292
# and 1,218 records, 6 epochs widened distill's lead over standard (+0.85 -> +1.23 and -0.30 ->
# +0.68 exact match) while distill's own accuracy held; 3 epochs were measured above that.
SMALL_DATA_RECORDS = 2000
SMALL_DATA_EPOCHS = 6.0
DEFAULT_EPOCHS = 3.0


def with_epochs(cfg: TrainSettings, records: int) -> TrainSettings:
    """``cfg`` with its epochs made concrete: as given, else by the size of the training set."""
    if cfg.epochs is not None:
        return cfg
    epochs = SMALL_DATA_EPOCHS if records <= SMALL_DATA_RECORDS else DEFAULT_EPOCHS
    return cfg.model_copy(update={"epochs": epochs})


def with_precision(cfg: TrainSettings, resumed: str | None = None) -> TrainSettings:
    """``cfg`` with ``precision`` made concrete (run.json records it): ``auto`` is bf16 master weights on
    a GPU with bf16 for full fine-tuning (docs/benchmarks.md: 1.2x the tokens/s of mixed precision for the
    Qwen2.5-0.5B shape; docs/method.md: the same accuracy on CQA) with torch's AdamW, else mixed.
    ``resumed``: the precision of the run being resumed, which ``auto`` keeps."""
    if cfg.precision != "auto":
        return cfg
    if resumed is not None:
        return cfg.model_copy(update={"precision": resumed})
    if cfg.fsdp:  # FSDP's own mixed precision: float32 shards, bf16 compute
        return cfg.model_copy(update={"precision": "mixed"})
    bf16 = bf16_supported() and not cfg.lora and cfg.master_weights_optimizer()
    return cfg.model_copy(update={"precision": "bf16" if bf16 else "mixed"})


def selection_key(metric: str) -> str:
    """The evaluation key --select best reads: the metric's headline value (rouge: rouge_mean)."""
    from distil_cli.evaluate.metrics import get_metrics
    from distil_cli.settings import ScoreSettings

    return get_metrics([metric], ScoreSettings())[0].primary


def fsdp_arguments() -> dict[str, Any]:
    """--fsdp as TrainingArguments: FSDP2 through accelerate, every decoder layer its own unit (the model's
    ``_no_split_modules``), FSDP's activation checkpointing, sharded checkpoints (each rank writes its shard:
    no gather to one GPU at every save), and no loss fused with the output layer (its weight is a shard
    outside the model's forward). The string form of ``fsdp`` is the one transformers 5.17-5.25 all read."""
    return {
        "fsdp": "full_shard auto_wrap",
        "fsdp_config": {
            "version": 2,
            "activation_checkpointing": True,
            "state_dict_type": "SHARDED_STATE_DICT",
            "cpu_ram_efficient_loading": False,
            "reshard_after_forward": True,
        },
        "fused_ce": False,
    }


def check_fsdp(cfg: TrainSettings, processes: int | None = None) -> None:
    """--fsdp needs several processes (``processes``, default: this launch's) on CUDA GPUs (accelerate
    shards only there)."""
    if not cfg.fsdp:
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            "--fsdp needs CUDA GPUs (accelerate shards only on GPUs); on CPUs train data parallel: --gpus N "
            "without --fsdp"
        )
    if (processes or world_size_from_env()) < 2:
        raise ConfigError("--fsdp shards over several GPUs: start the run with --gpus N (or torchrun)")


def planned_total(cfg: TrainSettings, steps_per_epoch: int) -> int:
    """The optimizer steps a run plans: max_steps, else its epochs of ``steps_per_epoch`` (as the Trainer counts)."""
    epochs = cfg.epochs if cfg.epochs is not None else DEFAULT_EPOCHS
    return cfg.max_steps or max(1, math.ceil(steps_per_epoch * epochs))


def training_arguments(
    out: Path,
    cfg: TrainSettings,
    examples: list[dict[str, Any]],
    steps_per_epoch: int,
    has_eval: bool,
    kernels: str = "none",
    varlen: bool = False,
    **overrides: Any,
) -> DistilTrainingArguments:
    """The arguments of a ``distil train`` run; ``overrides`` (bench only) replace single fields.

    Long only because it is one flat list of fields, each with its reason where it is not a copy.
    """
    budget = token_budget(cfg, examples)
    cuda = torch.cuda.is_available()
    if cfg.packing and cuda and budget < SMALL_GPU_BUDGET:
        log.info(
            "%d tokens per batch leave a GPU mostly idle; --tokens-per-batch 32768 or more (with "
            "--gradient-checkpointing to bound memory) trains several times faster (docs/benchmarks.md)",
            budget,
        )
    warn_several_gpus()
    epochs = cfg.epochs if cfg.epochs is not None else DEFAULT_EPOCHS  # run_training made it concrete
    total = planned_total(cfg, steps_per_epoch)
    eval_steps = cfg.eval_steps or steps_per_epoch
    values: dict[str, Any] = dict(
        output_dir=str(out),
        objective=cfg.objective,
        alpha=cfg.alpha if cfg.objective == "distill" else 1.0,  # standard = the summary loss alone
        max_new_tokens=cfg.max_new_tokens,
        max_input_tokens=cfg.max_input_tokens,
        packing=cfg.packing,
        pair_tasks=cfg.pair_tasks,
        tokens_per_batch=budget,
        # varlen attention has no quadratic mask: one row per batch costs nothing extra
        pack_row_tokens=cfg.pack_row_tokens or (None if varlen else DEFAULT_ROW_TOKENS),
        kernels=kernels,
        per_device_train_batch_size=cfg.batch_size * tasks_per_record(cfg),  # examples: records x their tasks
        per_device_eval_batch_size=max(cfg.batch_size, 8),  # generation batches; 8 keeps CPU evaluation quick
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr if cfg.lr is not None else DEFAULT_LR,  # with_lr makes a run's concrete first
        num_train_epochs=epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # transformers 5: warmup_steps below 1 is a share of the steps
        weight_decay=cfg.weight_decay,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        # --precision bf16: the model's weights are bf16 already, so no autocast; the optimizer keeps float32
        bf16=bf16_supported() and cfg.precision != "bf16",
        master_weights=cfg.precision == "bf16",
        use_cpu=not cuda,
        seed=cfg.seed,
        logging_steps=1 if total <= 50 else max(1, total // 50),  # about 50 log lines a run
        logging_first_step=True,
        logging_nan_inf_filter=False,  # it reads the loss on the host every step (a GPU sync)
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if cfg.save_checkpoints else "no",
        save_steps=eval_steps,  # a checkpoint for every evaluation, so the best one can become final/
        save_total_limit=2,
        load_best_model_at_end=has_eval and cfg.select == "best",
        metric_for_best_model=selection_key(cfg.select_metric) if has_eval else None,
        select_metric=cfg.select_metric,
        greater_is_better=True,
        report_to=trackers(cfg.report_to),
        remove_unused_columns=False,  # the collators need id/task columns the model does not take
        dataloader_num_workers=0,
        # every trainable parameter gets a gradient each step (both tasks run the whole model; LoRA's frozen
        # weights need none): DDP's search for unused ones is a wasted graph walk per step
        ddp_find_unused_parameters=False,
        # batches are pinned and copied to the GPU asynchronously: a blocking copy waits for the GPU
        # to finish the previous step, which then idles while the next batch is collated (profiled)
        accelerator_config={"non_blocking": True},
        disable_tqdm=False,
    )
    if cfg.fsdp:
        values.update(fsdp_arguments())
    elif cfg.gradient_checkpointing:  # only when asked: transformers 5.24 warns on the field's (renamed) name
        values["gradient_checkpointing"] = True
    check_trainer_args(cfg.trainer_args)
    values.update(cfg.trainer_args)
    values.update(overrides)
    try:
        return DistilTrainingArguments(**values)
    except (ValueError, TypeError) as exc:
        if not cfg.trainer_args:
            raise
        raise ConfigError(f"train.trainer_args {cfg.trainer_args}: {str(exc).splitlines()[0]}") from None
