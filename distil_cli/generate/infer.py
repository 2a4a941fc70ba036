"""``distil infer``: fast batched summaries, resumable, with an optional submission folder.

The prompt (formatter, per-language instruction, input limit) is read from the run's
record (``run.json``) when MODEL is a ``distil train`` run, so training and inference
cannot disagree on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_cli.data.files import done_ids, naming, read_jsonl, write_atomic
from distil_cli.data.guard import OutputLock, check_separate
from distil_cli.data.readers import detect_lang
from distil_cli.data.text import check_lang, normalise_text
from distil_cli.encoding import encode_prompt
from distil_cli.errors import ConfigError, DataError
from distil_cli.generate.submission import Submission
from distil_cli.models import load_causal_lm, load_tokenizer, resolve_model
from distil_cli.plugins.choosing import choose_formatter, detect_family
from distil_cli.prompts import RATIONALE, SUMMARY, instruction_for, stop_token_ids, with_system
from distil_cli.run_record import RunRecord, find_run_record
from distil_cli.settings import InferSettings

log = logging.getLogger(__name__)


@dataclass
class PromptSpec:
    """Everything that decides the prompt; taken from run.json when there is one."""

    formatter: str | None = None
    summary_instructions: dict[str, str] = field(default_factory=dict)
    rationale_instructions: dict[str, str] = field(default_factory=dict)
    system_prompt: str | None = None
    max_input_tokens: int = 2048
    source: str = "defaults"


def prompt_spec(model_arg: str, formatter_flag: str | None) -> PromptSpec:
    path = find_run_record(model_arg)
    spec = PromptSpec()
    if path is not None:
        record = RunRecord.read(path)
        spec = PromptSpec(
            formatter=record.formatter,
            summary_instructions=record.summary_instructions(),
            rationale_instructions=dict(record.instructions.get("rationale", {})),
            system_prompt=record.system_prompt,
            max_input_tokens=int(record.max_input_tokens),
            source=str(path),
        )
        if formatter_flag and formatter_flag != spec.formatter:
            log.warning(
                "--formatter %s differs from the one the model was trained with (%s)", formatter_flag, spec.formatter
            )
    if formatter_flag:
        spec.formatter = formatter_flag
    return spec


def read_inputs(data: Path, split: str, lang: str | None) -> list[dict[str, Any]]:
    """Records from a split .jsonl, a prepared folder (``split``), or a folder of .txt files."""
    data = Path(data)
    if data.is_file():
        return read_jsonl(data)
    if not data.is_dir():
        raise DataError(f"{data} does not exist")
    if (data / f"{split}.jsonl").is_file():
        return read_jsonl(data / f"{split}.jsonl")
    texts = sorted(p for p in data.rglob("*.txt") if not p.name.endswith("_sum.txt"))
    if not texts:
        raise DataError(
            f"{data}: no {split}.jsonl and no .txt files; give a prepared folder, a .jsonl or a .txt folder"
        )
    records, seen = [], {}
    for path in texts:
        if path.stem in seen:
            raise DataError(f"duplicate id '{path.stem}': {seen[path.stem]} and {path}")
        seen[path.stem] = path
        found = detect_lang(path, data) or lang
        if found is None:
            raise DataError(f"{path}: no language in the file or folder name; pass --lang")
        text = normalise_text(path.read_bytes(), "utf-8", str(path))
        if not text:
            raise DataError(f"{path}: empty input text")
        records.append({"id": path.stem, "lang": found, "input": text})
    return records


@dataclass
class InferResult:
    written: int
    skipped: int
    cropped: int
    new_tokens: int
    seconds: float
    out: Path


def check_ids(records: list[dict[str, Any]], submission: Submission | None) -> None:
    """Unique ids, language codes, and unique submission file names: checked before any generation."""
    for record in records:
        if "lang" in record:
            check_lang(record["lang"], f"record {record['id']}")
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"duplicate id '{duplicate}' in the input; ids must be unique")
    if submission is not None:
        submission.check(records)


@dataclass
class Generator:
    """A model ready to generate summaries with the prompt it was trained with."""

    model: Any
    tokenizer: Any
    formatter: Any
    spec: PromptSpec
    source: str  # the resolved model folder or hub id

    @classmethod
    def load(cls, model_arg: str, cfg: InferSettings, cache_dir: Path) -> Generator:
        import torch

        spec = prompt_spec(model_arg, cfg.formatter)
        source = resolve_model(model_arg, cache_dir)
        tokenizer = load_tokenizer(source)
        # a run's formatter (run.json); for a bare model, the tokenizer's template or its family's (Gemma's
        # pulled tokenizer has no template: its family formatter, not ChatML)
        family = detect_family(source, model_arg) if spec.formatter is None else None
        formatter = with_system(choose_formatter(tokenizer, spec.formatter, family), spec.system_prompt)
        model = load_causal_lm(source, torch.bfloat16 if torch.cuda.is_available() else torch.float32)
        if torch.cuda.is_available():
            model = model.to("cuda")
        return cls(model, tokenizer, formatter, spec, source)

    def prompt_limit(self, max_new_tokens: int) -> int:
        context = getattr(self.model.config, "max_position_embeddings", None) or 10**9
        limit = min(self.spec.max_input_tokens, context - max_new_tokens)
        if limit < 16:
            raise ConfigError(f"--max-new-tokens {max_new_tokens} leaves no room in the model's context of {context}")
        return limit

    def generate(self, prompts: list[list[int]], cfg: InferSettings, batch_size: int, on_batch=None) -> list:
        """The prompts' answers with the settings of ``cfg`` (sampling, length, cache), stopping at end-of-turn."""
        from distil_cli.generate.batched import generate_batched

        return generate_batched(
            self.model,
            self.tokenizer,
            prompts,
            stop_token_ids(self.tokenizer, self.formatter),
            cfg.max_new_tokens,
            batch_size=batch_size,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            repetition_penalty=cfg.repetition_penalty,
            on_batch=on_batch,
            cache_implementation=cfg.cache,
        )

    def encode(self, records: list[dict[str, Any]], limit: int) -> tuple[list[list[int]], int]:
        """(prompt token ids per record, how many inputs were cropped to fit ``limit``)."""
        prompts, cropped = [], 0
        for r in records:
            instruction = instruction_for(SUMMARY, r.get("lang", "en"), self.spec.summary_instructions)
            ids, was_cropped = encode_prompt(self.tokenizer, self.formatter, instruction, r["input"], limit, r["id"])
            prompts.append(ids)
            cropped += was_cropped
        return prompts, cropped


class PredictionWriter:
    """Appends one prediction line per record as each batch finishes (flushed), and its submission file."""

    def __init__(self, fh, todo: list[dict[str, Any]], submission: Submission | None, progress=None):
        self.fh, self.todo, self.submission, self.progress = fh, todo, submission, progress
        self.written = self.tokens = 0

    def __call__(self, indices: list[int], outputs: list) -> None:
        for i, generated in zip(indices, outputs):
            r = self.todo[i]
            row = {"id": r["id"], "lang": r.get("lang", "en"), "prediction": generated.text}
            if r.get("output"):
                row["reference"] = r["output"]
            row.update({"tokens": generated.new_tokens, "finish_reason": generated.finish_reason})
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            if self.submission is not None:
                self.submission.write(r, generated.text)
            self.written += 1
            self.tokens += generated.new_tokens
        self.fh.flush()
        if self.progress is not None:
            self.progress(len(indices), sum(g.new_tokens for g in outputs))


def meta_path(out: Path) -> Path:
    """The sidecar that records which model and settings wrote ``out`` (``pred.jsonl`` -> ``pred.meta.json``)."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".meta.json")


def model_fingerprint(source: str) -> str:
    """A cheap identity of a model: its config and, per weight file, name, size and first and last MiB."""
    folder = Path(source)
    if not folder.is_dir():
        return source  # a hub id
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name in ("config.json", "adapter_config.json", "generation_config.json"):
            digest.update(path.name.encode() + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            size = path.stat().st_size
            digest.update(f"{path.name}:{size}".encode())
            with open(path, "rb") as fh:
                digest.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]


def output_identity(generator: Generator, cfg: InferSettings, limit: int) -> dict[str, Any]:
    """What decides the predictions: a resume must not mix outputs that differ in any of it."""
    return {
        "model": generator.source,
        "model_fingerprint": model_fingerprint(generator.source),
        "formatter": generator.formatter.name,
        "summary_instructions": generator.spec.summary_instructions,
        **({"system_prompt": generator.spec.system_prompt} if generator.spec.system_prompt is not None else {}),
        "max_prompt_tokens": limit,
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "repetition_penalty": cfg.repetition_penalty,
    }


def check_resume(out: Path, identity: dict[str, Any], resuming: bool) -> None:
    """Refuse to extend ``out`` with predictions of another model or other settings; record them otherwise."""
    meta = meta_path(out)
    if resuming and meta.is_file():
        try:
            before = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = {}
        differ = sorted(k for k in identity if before.get(k) != identity[k])
        if differ:
            raise ConfigError(
                f"{out} holds predictions of another model or other settings (differs: {', '.join(differ)}); "
                "write to another --out, or delete it to start again"
            )
        return
    if resuming:
        log.warning("%s has no %s: cannot check that its predictions come from this model", out, meta.name)
    write_atomic(meta, json.dumps(identity, indent=2, ensure_ascii=False) + "\n")


def run_inference(
    model_arg: str,
    records: list[dict[str, Any]],
    out: Path,
    cfg: InferSettings,
    cache_dir: Path,
    submission: Submission | None = None,
    progress=None,
    data: Path | None = None,
) -> InferResult:
    """Generate for ``records`` (from ``read_inputs``), appending to ``out`` and skipping ids already there.

    One process per output at a time; a resume must come from the same model and settings.
    """
    out = Path(out)
    for target, flag in ((out, "--out"), (submission.root if submission else None, "--submission-dir")):
        if data is not None and target is not None:
            check_separate(data, target, flag)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .jsonl file for the predictions")
    check_ids(records, submission)
    with OutputLock(out):
        return _run_inference(model_arg, records, out, cfg, cache_dir, submission, progress)


def _run_inference(model_arg, records, out: Path, cfg, cache_dir, submission, progress) -> InferResult:
    from distil_cli.generate.batched import auto_batch_size, choose_engine

    finished = done_ids(out)
    todo = [r for r in records if r["id"] not in finished]
    generator = Generator.load(model_arg, cfg, cache_dir)
    limit = generator.prompt_limit(cfg.max_new_tokens)
    prompts, cropped = generator.encode(todo, limit)
    if cropped:
        log.warning("Cropped the input of %d record(s) to fit %d prompt tokens", cropped, limit)
    longest = max((len(p) for p in prompts), default=1)
    engine = choose_engine(generator.model, cfg.cache)
    batch_size = cfg.batch_size or auto_batch_size(generator.model, longest, cfg.max_new_tokens, engine)
    out.parent.mkdir(parents=True, exist_ok=True)  # only now: a bad model or setting creates nothing
    check_resume(out, output_identity(generator, cfg, limit), bool(finished))
    if submission is not None:
        submission.root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with naming(out), open(out, "a", encoding="utf-8") as fh:
        writer = PredictionWriter(fh, todo, submission, progress)
        generator.generate(prompts, cfg, batch_size, on_batch=writer)
    if submission is not None:
        submission.fill(out)
        submission.zip_folders()
    seconds = time.perf_counter() - started
    return InferResult(writer.written, len(finished), cropped, writer.tokens, seconds, out)


def answer(
    model_arg: str, text: str, cfg: InferSettings, cache_dir: Path, lang: str = "en", rationale: bool = False
) -> dict[str, Any]:
    """One input through the model, prompted as it was trained (its run's formatter and instructions):
    {"summary": ..., "rationale": ... (with ``rationale``), "prompt": the summary prompt as text}."""
    if not text.strip():
        raise DataError("--prompt is empty: give the input text")
    lang = check_lang(lang, "--lang")
    generator = Generator.load(model_arg, cfg, cache_dir)
    limit = generator.prompt_limit(cfg.max_new_tokens)
    tasks = [(SUMMARY, generator.spec.summary_instructions)]
    if rationale:
        tasks.append((RATIONALE, generator.spec.rationale_instructions))
    prompts = [
        encode_prompt(generator.tokenizer, generator.formatter, instruction_for(task, lang, overrides), text, limit,
                      "--prompt")[0]
        for task, overrides in tasks
    ]  # fmt: skip
    outputs = generator.generate(prompts, cfg, batch_size=len(prompts))
    found = {task.key: generated.text for (task, _), generated in zip(tasks, outputs, strict=True)}
    found["prompt"] = generator.tokenizer.decode(prompts[0])
    return found
