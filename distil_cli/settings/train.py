"""The train section: every option of ``distil train``, each declared once (``settings.fields.setting``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from distil_cli.settings.fields import FORMATTERS, MATCH, MAY_CHANGE, Section, comma_list, pairs, setting
from distil_cli.tasks import DEFAULT_INSTRUCTIONS, RATIONALE, SUMMARY

# the built-in instruction pair as --help shows it: the English text, and the other languages it has
_OTHER_LANGUAGES = "/".join(lang for lang in DEFAULT_INSTRUCTIONS[SUMMARY] if lang != "en")


# The learning rate of a run without --lr (distil_cli.train.learning_rate; docs/method.md): chosen on
# SmolLM2-135M; a pulled model whose entry names a rate measured for it gets that rate instead
DEFAULT_LR = 1e-4


class TrainSettings(Section):
    # a recipe file holds everything a run needs: where its data is and where it goes, too
    data: Path | None = setting(
        None,
        description="Prepared folder to train on (the DATA argument; a recipe file's 'data').",
        resume=MAY_CHANGE,  # a moved folder is the same data: the resume check compares its manifest
        cli=False,
    )
    out: Path | None = setting(
        None,
        description="Run folder RUN_DIR (required unless --inspect).",
        resume=MAY_CHANGE,
        flags=("--out", "-o"),
        hf="output_dir",
    )
    model: str = setting(
        "default", description="Student model: 'default' (embedded SmolLM2-135M), a folder or a hub id.", resume=MATCH
    )
    objective: Literal["standard", "distill"] = setting(
        "distill",
        description="standard: summary task only; distill: summary + rationale tasks (alias model_type).",
        resume=MATCH,
        flags=("--objective", "--model-type"),
        aliases=("model_type",),
    )
    alpha: float = setting(
        0.5, ge=0, le=1, description="loss = alpha * summary_loss + (1 - alpha) * rationale_loss.", resume=MATCH
    )
    epochs: float | None = setting(
        None,
        gt=0,
        description="Training epochs (ignored when max_steps is set); default: 6 up to 2,000 training records, "
        "3 above (docs/method.md).",
        resume=MATCH,
        hf="num_train_epochs",
    )
    max_steps: int | None = setting(
        None, ge=1, description="Stop after this many optimizer steps.", resume=MATCH, sets=("max_steps",)
    )
    batch_size: int = setting(
        16,
        ge=1,
        description="Records per device batch, with all their tasks (with packing: the token budget is this many "
        "average records).",
        resume=MATCH,
        hf="per_device_train_batch_size",
    )
    packing: bool = setting(True, description="Padding-free packing of examples into one row per batch.", resume=MATCH)
    tokens_per_batch: int | None = setting(
        None,
        ge=64,
        description="Token budget of a packed batch (default: batch_size x the mean record length).",
        resume=MATCH,
    )
    pair_tasks: bool = setting(
        True, description="Keep a record's summary and rationale examples in the same batch.", resume=MATCH
    )
    reshuffle_batches: bool = setting(
        False,
        description="Draw packed batch membership anew each epoch (else fixed, only the batch order changes).",
        resume=MATCH,
    )
    pack_row_tokens: int | None = setting(
        None,
        ge=64,
        description="Longest packed row (default: one row with varlen attention, else rows of at most 4096 tokens).",
        resume=MAY_CHANGE,
    )
    attn_implementation: str | None = setting(
        None,
        description="Attention kernel: varlen (flash attention over packed examples, CUDA), sdpa, eager, "
        "flex_attention, flash_attention_2 (default: varlen on CUDA where the model allows it, else sdpa).",
        resume=MAY_CHANGE,
    )
    kernels: Literal["auto", "liger", "none"] = setting(
        "auto",
        description="liger: Liger's Triton kernels (RMSNorm, SwiGLU, RoPE, fused linear cross-entropy; CUDA); "
        "auto: liger where installed and supported (with --lora and --load-in-4bit too), else none.",
        resume=MAY_CHANGE,
    )
    grad_accum: int = setting(
        1, ge=1, description="Gradient accumulation steps.", resume=MATCH, hf="gradient_accumulation_steps"
    )
    lr: float | None = setting(
        None,
        gt=0,
        description="Peak learning rate (AdamW, cosine schedule); default: 1e-4, or for full fine-tuning of a "
        "pulled model the rate measured for it (3e-5 for gemma3-270m; docs/method.md), of a distil run's model "
        "the rate that run trained at.",
        resume=MATCH,
        hf="learning_rate",
    )
    warmup_ratio: float = setting(
        0.03,
        ge=0,
        lt=1,
        description="Share of steps spent warming up.",
        resume=MATCH,
        sets=("warmup_ratio", "warmup_steps"),
    )
    weight_decay: float = setting(0.01, ge=0, description="AdamW weight decay.", resume=MATCH, sets=("weight_decay",))
    seed: int = setting(42, description="Random seed.", resume=MATCH, sets=("seed",))
    max_input_tokens: int = setting(
        2048, ge=16, description="Inputs are cropped (input side only) to this many tokens.", resume=MATCH
    )
    max_output_tokens: int = setting(
        1024,
        ge=1,
        description="Longest answer: a longer summary is an error (never cropped); rationales see long_rationale.",
        resume=MATCH,
    )
    long_rationale: Literal["crop", "skip", "error"] = setting(
        "crop",
        description="A rationale longer than max_output_tokens: crop it, skip its example, or fail.",
        resume=MATCH,
    )
    eval_steps: int | None = setting(
        None,
        ge=1,
        description="Evaluate every N steps (default: once per epoch).",
        resume=MAY_CHANGE,
        sets=("eval_steps", "save_steps"),
    )
    select: Literal["last", "best"] = setting(
        "last",
        description="Which checkpoint becomes final/: the last, or the best by --select-metric on the evaluation "
        "records (noisy on a small valid set: docs/method.md).",
        resume=MATCH,
        sets=("load_best_model_at_end",),
    )
    select_metric: str = setting(
        "rouge",
        description="Metric of the evaluations that --select best reads: rouge, exact, equation or one a plugin "
        "registers (`distil plugins`); evaluations log it too.",
        resume=MATCH,
        sets=("metric_for_best_model",),
    )
    save_checkpoints: bool = setting(
        True, description="Save a checkpoint at each evaluation (for --resume, --select best).", resume=MAY_CHANGE
    )
    eval_samples: int | None = setting(
        None,
        ge=0,
        description="Evaluate on a subset of valid.jsonl of this size (0: no evaluation; checkpoints are still "
        "saved every --eval-steps).",
        resume=MAY_CHANGE,
    )
    max_new_tokens: int = setting(256, ge=1, description="Generation length at evaluation.", resume=MAY_CHANGE)
    missing_rationale: Literal["error", "skip"] = setting(
        "error", description="What distill does with records lacking a rationale.", resume=MATCH
    )
    gradient_checkpointing: bool = setting(
        False, description="Trade compute for memory.", resume=MAY_CHANGE, sets=("gradient_checkpointing",)
    )
    precision: Literal["auto", "mixed", "bf16"] = setting(
        "auto",
        description="bf16: bf16 weights with float32 master weights in the optimizer (full fine-tuning; 1.2x "
        "faster on an H200, docs/benchmarks.md); mixed: float32 weights under bf16 autocast where the GPU has "
        "bf16, float32 elsewhere; auto: bf16 on a GPU with bf16 for full fine-tuning, else mixed.",
        resume=MATCH,
    )
    fsdp: bool = setting(
        False,
        description="Shard weights, gradients and optimizer state over the GPUs (FSDP2: full sharding, activation "
        "checkpointing, bf16 compute, sharded checkpoints, a consolidated final/) for students that do not fit "
        "one GPU; with --gpus N (or torchrun) on CUDA GPUs, full fine-tuning, no evaluation during training.",
        resume=MATCH,
        sets=("fsdp", "fsdp_config"),
    )
    lora: bool = setting(False, description="Train LoRA adapters (peft) instead of all weights.", resume=MATCH)
    lora_r: int = setting(16, ge=1, description="LoRA rank.", resume=MATCH)
    lora_alpha: int = setting(32, ge=1, description="LoRA alpha.", resume=MATCH)
    lora_dropout: float = setting(0.05, ge=0, lt=1, description="LoRA dropout.", resume=MATCH)
    lora_target_modules: list[str] | None = setting(
        None, description="Modules to adapt (default: the family's; all-linear: every linear layer).", resume=MATCH
    )
    dora: bool = setting(False, description="DoRA: weight-decomposed LoRA (peft's use_dora).", resume=MATCH)
    rslora: bool = setting(
        False, description="rsLoRA: scale adapters by alpha / sqrt(r) instead of alpha / r.", resume=MATCH
    )
    load_in_4bit: bool = setting(
        False,
        description="QLoRA: the base weights in 4-bit NF4 with double quantization (bitsandbytes), bf16 compute, "
        "LoRA adapters trained; needs --lora, final/ is the adapter (--merge is refused).",
        resume=MATCH,
    )
    merge: bool | None = setting(
        None,
        description="Merge LoRA weights into final/ (default: yes, except with --load-in-4bit).",
        resume=MAY_CHANGE,
    )
    formatter: str | None = setting(
        None,
        description=f"Prompt formatter ({FORMATTERS}; default: the tokenizer's template, else the family's).",
        resume=MATCH,
    )
    system_prompt: str | None = setting(
        None,
        description="System prompt of every training prompt (and of `distil infer` with the run); default: the "
        "chat template's own, if any; '' for none.",
        resume=MATCH,
    )
    report_to: str = setting(
        "none",
        description="Experiment trackers, comma-separated: none, tensorboard, wandb, mlflow, trackio, comet_ml, "
        "clearml, neptune, dvclive, swanlab, ... (any transformers integration; pip install "
        "'distil-cli[NAME]').",
        resume=MAY_CHANGE,
        sets=("report_to",),
    )
    trainer_args: dict[str, Any] = setting(
        default_factory=dict,
        description="Other transformers TrainingArguments fields passed through, e.g. {max_grad_norm = 0.5} "
        "(a [train.trainer_args] table; flag: KEY=VALUE, repeatable, VALUE read as JSON where it can be).",
        resume=MATCH,
        flags=("--trainer-arg",),
    )
    summary_instruction: str | None = setting(
        None,
        description="Summary (output) task instruction for every language (default: "
        f"'{DEFAULT_INSTRUCTIONS[SUMMARY]['en']}' and its {_OTHER_LANGUAGES} translations; docs/method.md).",
        resume=MATCH,
    )
    rationale_instruction: str | None = setting(
        None,
        description="Rationale task instruction for every language (default: "
        f"'{DEFAULT_INSTRUCTIONS[RATIONALE]['en']}' and its {_OTHER_LANGUAGES} translations).",
        resume=MATCH,
    )
    summary_instructions: dict[str, str] = setting(
        default_factory=dict,
        description="Per-language summary instruction overrides, winning over summary_instruction (flag: "
        "LANG=TEXT, repeatable).",
        resume=MATCH,
        flags=("--summary-instruction-for",),
        metavar="LANG=TEXT",
    )
    rationale_instructions: dict[str, str] = setting(
        default_factory=dict,
        description="Per-language rationale instruction overrides (flag: LANG=TEXT, repeatable).",
        resume=MATCH,
        flags=("--rationale-instruction-for",),
        metavar="LANG=TEXT",
    )

    @field_validator("lora_target_modules", mode="before")
    @classmethod
    def _modules(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("trainer_args", mode="before")
    @classmethod
    def _trainer_args(cls, value: Any) -> Any:
        return pairs(value, "=", "KEY=VALUE", parse_json=True)

    @field_validator("summary_instructions", "rationale_instructions", mode="before")
    @classmethod
    def _per_language(cls, value: Any) -> Any:
        return pairs(value, "=", "LANG=TEXT")

    @model_validator(mode="after")
    def _options_fit_together(self) -> TrainSettings:
        if self.load_in_4bit and not self.lora:
            raise ValueError("--load-in-4bit quantizes the frozen base of a LoRA run (QLoRA): add --lora")
        if self.load_in_4bit and self.merge:
            raise ValueError(
                "--merge with --load-in-4bit: the adapter was trained on 4-bit weights, so merging it into them "
                "is not exact; final/ keeps the adapter (drop --merge; `distil infer` applies it to the base)"
            )
        if (self.dora or self.rslora) and not self.lora:
            raise ValueError("--dora and --rslora are LoRA variants: add --lora")
        if self.fsdp and self.lora:
            raise ValueError(
                "--fsdp shards full fine-tuning; LoRA under FSDP is not supported by distil: a LoRA student fits "
                "one GPU per process, so train it data parallel (--gpus N without --fsdp)"
            )
        if self.fsdp and self.select == "best":
            raise ValueError("--fsdp runs no evaluation during training: --select best has nothing to pick, use last")
        if self.fsdp and self.precision == "bf16":
            raise ValueError("--fsdp keeps float32 sharded weights with bf16 compute: use --precision mixed (or auto)")
        if self.precision == "bf16" and self.lora:
            raise ValueError("precision bf16 is for full fine-tuning: LoRA trains adapters, use --precision mixed")
        if self.precision == "bf16" and not self.master_weights_optimizer():
            raise ValueError(
                f"precision bf16 keeps float32 master weights for torch's AdamW only, not optim "
                f"{self.trainer_args['optim']!r}: use --precision mixed"
            )
        return self

    def merges(self) -> bool:
        """Whether final/ holds merged weights: a LoRA run merges unless told not to or 4-bit."""
        return self.lora and (self.merge if self.merge is not None else not self.load_in_4bit)

    def master_weights_optimizer(self) -> bool:
        """Whether the optimizer (torch's AdamW unless ``trainer_args.optim`` says otherwise) keeps master weights."""
        return str(self.trainer_args.get("optim", "adamw_torch")) in ("adamw_torch", "adamw_torch_fused")

    @model_validator(mode="after")
    def _best_needs_checkpoints(self) -> TrainSettings:
        if self.select == "best" and not self.save_checkpoints:
            raise ValueError("select best needs the checkpoints: drop --no-save-checkpoints or use --select last")
        return self

    def instruction_overrides(self, task: str) -> dict[str, str]:
        """Per-language overrides of a task's instruction, ``*`` for the one given for every language."""
        single, per_lang = (
            (self.summary_instruction, self.summary_instructions)
            if task == "summary"
            else (self.rationale_instruction, self.rationale_instructions)
        )
        return {**({"*": single} if single else {}), **per_lang}
