"""``distil annotate``: a teacher rationale per record, concurrent, resumable and loss-free.

Results are appended and flushed one record per line as they arrive, so a kill loses
at most the requests in flight; a torn last line is dropped on resume. A rerun skips
records already annotated with the same prompt and model. Records that still fail
after the retries go to ``<out>.failed.jsonl`` and the exit code says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_cli.data.files import done_ids, read_jsonl
from distil_cli.errors import ConfigError, DataError, PartialFailure
from distil_cli.prompts import RATIONALE, instruction_for
from distil_cli.settings import AnnotateSettings
from distil_cli.teach.base import (
    AuthError,
    BatchTeacher,
    FatalError,
    RateLimiter,
    RetryableError,
    Teacher,
    backoff_delay,
)
from distil_cli.teach.openai_api import DEFAULT_OPENAI_MODEL

log = logging.getLogger(__name__)
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = set(
    """
    with from that this have were been their there which when what while into also than then they them such over
    under after before about above patient patients case para como pero sobre entre desde hasta este esta estos estas
    tiene tenía fueron había cuando donde dans avec pour sans sous sont était avait cette elle leur leurs plus comme
    entre depuis lors após pelo pela pelos pelas como mais entre esta este estes estas tinha foram quando onde
    """.split()
)


@dataclass
class Stats:
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    retrying: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    flags: Counter = field(default_factory=Counter)
    grounding: list[float] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def merge(self, other: Stats) -> None:
        for name in ("total", "skipped", "done", "failed", "prompt_tokens", "completion_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.flags.update(other.flags)
        self.grounding.extend(other.grounding)
        self.failed_files.extend(other.failed_files)


# --------------------------------------------------------------------------- prompts and quality


def load_template(template: str | None) -> str | None:
    if template is None:
        return None
    if template.startswith("@"):
        path = Path(template[1:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"template file {path} does not exist")
        template = path.read_text(encoding="utf-8")
    if "{input}" not in template:
        raise ConfigError("the annotate template must contain {input}")
    return template


def build_messages(record: dict[str, Any], template: str | None, system: str | None) -> list[dict[str, str]]:
    lang = record.get("lang", "en")
    if template is None:
        user = f"{instruction_for(RATIONALE, lang)}\n\n{record['input']}"
    else:
        if "{output}" in template and not record.get("output"):
            raise DataError(f"record {record['id']}: the template uses {{output}} but the record has no output")
        user = template.replace("{input}", record["input"]).replace("{output}", record.get("output", ""))
        user = user.replace("{lang}", lang)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


def prompt_hash(messages: list[dict[str, str]], backend: str, model: str) -> str:
    blob = json.dumps({"messages": messages, "backend": backend, "model": model}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in WORD_RE.findall(text)}
    return {w for w in words if any(c.isdigit() for c in w) or (len(w) > 3 and w not in STOPWORDS)}


def grounding_score(rationale: str, source: str) -> float:
    """Share of the rationale's content words and numbers that also occur in the input."""
    words = _content_words(rationale)
    if not words:
        return 0.0
    return round(len(words & {w.lower() for w in WORD_RE.findall(source)}) / len(words), 4)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def quality_flags(
    rationale: str, finish_reason: str, record: dict, label_aware: bool, grounding: float, min_grounding: float | None
) -> list[str]:
    flags = []
    if not rationale.strip():
        flags.append("empty")
    if finish_reason == "length":
        flags.append("truncated")
    if label_aware and record.get("output") and _norm(record["output"]) in _norm(rationale):
        flags.append("copies_reference")
    if min_grounding is not None and grounding < min_grounding:
        flags.append("low_grounding")
    return flags


# --------------------------------------------------------------------------- resume bookkeeping


def existing_hashes(out: Path) -> dict[str, str]:
    """id -> prompt hash of the records already in ``out`` (a torn last line is dropped first)."""
    done_ids(out)  # truncates a torn last line, rejects corruption in the middle
    hashes = {}
    if out.is_file():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                hashes[row["id"]] = (row.get("annotation") or {}).get("prompt_hash", "")
    return hashes


def failed_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".failed.jsonl")


@dataclass
class Job:
    """One output file: the records still to annotate and where they go."""

    out: Path
    todo: list[tuple[dict[str, Any], list[dict[str, str]], str]]  # record, messages, hash
    stats: Stats


def plan(src: Path, out: Path, cfg: AnnotateSettings, backend: str, model: str, template: str | None) -> Job:
    records = read_jsonl(src)
    hashes = existing_hashes(out)
    stats = Stats(total=len(records))
    todo = []
    for record in records:
        messages = build_messages(record, template, cfg.system_prompt)
        digest = prompt_hash(messages, backend, model)
        if record["id"] in hashes:
            if hashes[record["id"]] != digest:
                raise ConfigError(
                    f"{out} holds record {record['id']} annotated with another prompt or model; "
                    "write to another --out (nothing is mixed or paid for twice)"
                )
            stats.skipped += 1
            continue
        todo.append((record, messages, digest))
    return Job(out, todo, stats)


# --------------------------------------------------------------------------- writing


class Writer:
    """Appends one JSON line per record and flushes it; failures go beside the output."""

    def __init__(self, job: Job, cfg: AnnotateSettings, backend: str, model: str, label_aware: bool):
        self.job, self.cfg, self.backend, self.model, self.label_aware = job, cfg, backend, model, label_aware
        job.out.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(job.out, "a", encoding="utf-8")
        self.failed = failed_path(job.out)
        self.failed.unlink(missing_ok=True)  # it lists the failures of the latest run only

    def ok(self, record: dict, digest: str, completion, attempts: int) -> None:
        grounding = grounding_score(completion.text, record["input"])
        flags = quality_flags(
            completion.text, completion.finish_reason, record, self.label_aware, grounding, self.cfg.min_grounding
        )
        row = dict(record)
        row["rationale"] = completion.text
        row["annotation"] = {
            "teacher_model": self.model,
            "backend": self.backend,
            "prompt_hash": digest,
            "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_s": completion.latency_s,
            "attempts": attempts,
            "grounding": grounding,
            "flags": flags,
        }
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.fh.flush()
        stats = self.job.stats
        stats.done += 1
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
        stats.flags.update(flags)
        stats.grounding.append(grounding)

    def fail(self, record: dict, error: str, attempts: int) -> None:
        with open(self.failed, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": record["id"], "error": error, "attempts": attempts}, ensure_ascii=False) + "\n")
        self.job.stats.failed += 1
        if str(self.failed) not in self.job.stats.failed_files:
            self.job.stats.failed_files.append(str(self.failed))

    def close(self) -> None:
        self.fh.close()


# --------------------------------------------------------------------------- running


async def _one(teacher, writer: Writer, item, cfg: AnnotateSettings, limiter: RateLimiter, sem, tick) -> None:
    record, messages, digest = item
    stats = writer.job.stats
    quality_retried = False
    attempt = 0
    async with sem:
        while True:
            attempt += 1
            await limiter.wait()
            try:
                completion = await teacher.complete(messages)
            except RetryableError as exc:
                if attempt > cfg.max_retries:
                    writer.fail(record, f"{exc} (after {attempt} attempts)", attempt)
                    break
                stats.retrying += 1
                tick()
                await asyncio.sleep(backoff_delay(attempt - 1, exc.retry_after))
                stats.retrying -= 1
                continue
            except AuthError:
                raise
            except FatalError as exc:
                writer.fail(record, str(exc), attempt)
                break
            if (not completion.text or completion.finish_reason == "length") and not quality_retried:
                quality_retried = True  # one more try, then keep it flagged
                continue
            writer.ok(record, digest, completion, attempt)
            break
    tick()


async def run_openai(jobs: list[Job], teacher: Teacher, cfg: AnnotateSettings, label_aware: bool, tick) -> None:
    sem = asyncio.Semaphore(cfg.concurrency)
    limiter = RateLimiter(cfg.rate_limit)
    for job in jobs:
        writer = Writer(job, cfg, teacher.name, teacher.model, label_aware)
        try:
            await asyncio.gather(*(_one(teacher, writer, item, cfg, limiter, sem, tick) for item in job.todo))
        finally:
            writer.close()


def run_local(jobs: list[Job], teacher: BatchTeacher, cfg: AnnotateSettings, label_aware: bool, tick) -> None:
    for job in jobs:
        writer = Writer(job, cfg, teacher.name, teacher.model, label_aware)
        try:
            for start in range(0, len(job.todo), cfg.batch_size):
                batch = job.todo[start : start + cfg.batch_size]
                completions = teacher.complete_batch([messages for _, messages, _ in batch])
                for (record, _, digest), completion in zip(batch, completions):
                    writer.ok(record, digest, completion, 1)
                tick()
        finally:
            writer.close()


def make_teacher(cfg: AnnotateSettings, cache_dir: Path) -> Teacher | BatchTeacher:
    from distil_cli.plugins.registry import get_registry

    backends = get_registry().backends
    if cfg.backend not in backends:
        raise ConfigError(f"unknown annotate backend '{cfg.backend}'; known: {', '.join(sorted(backends))}")
    return backends[cfg.backend](cfg, cache_dir)


def plan_all(data: Path, out: Path, cfg: AnnotateSettings, backend: str, model: str, template: str | None) -> list[Job]:
    data, out = Path(data), Path(out)
    if data.is_file():
        if out.is_dir():
            raise ConfigError(f"--out {out} is a folder; give a .jsonl file for a single split")
        return [plan(data, out, cfg, backend, model, template)]
    if not data.is_dir():
        raise DataError(f"{data} does not exist")
    splits = [data / f"{name}.jsonl" for name in ("train", "valid", "test") if (data / f"{name}.jsonl").is_file()]
    if not splits:
        raise DataError(f"{data}: no train/valid/test.jsonl; run `distil prepare` first")
    out.mkdir(parents=True, exist_ok=True)
    if (data / "manifest.json").is_file() and not (out / "manifest.json").exists():
        shutil.copyfile(data / "manifest.json", out / "manifest.json")
    return [plan(src, out / src.name, cfg, backend, model, template) for src in splits]


def annotate(
    data: Path, out: Path, cfg: AnnotateSettings, cache_dir: Path, progress: Callable[[Stats], None] | None = None
) -> Stats:
    """Annotate a split file or every split of a prepared folder; ``check_failures`` turns failures into an error."""
    model = cfg.model or ("default" if cfg.backend == "local" else DEFAULT_OPENAI_MODEL)
    template = load_template(cfg.template)  # read once: it decides every prompt and hash
    jobs = plan_all(data, out, cfg, cfg.backend, model, template)
    total = Stats()
    for job in jobs:
        total.total += job.stats.total
        total.skipped += job.stats.skipped
    label_aware = template is not None and "{output}" in template

    def tick() -> None:
        if progress is not None:
            live = Stats(total=total.total, skipped=total.skipped)
            for job in jobs:
                live.done += job.stats.done
                live.failed += job.stats.failed
                live.retrying += job.stats.retrying
                live.prompt_tokens += job.stats.prompt_tokens
                live.completion_tokens += job.stats.completion_tokens
            live.started = total.started
            progress(live)

    if any(job.todo for job in jobs):
        teacher = make_teacher(cfg, cache_dir)
        if isinstance(teacher, BatchTeacher):  # in-process models batch; API clients run concurrently
            run_local(jobs, teacher, cfg, label_aware, tick)
        elif not isinstance(teacher, Teacher):
            raise ConfigError(f"annotate backend '{cfg.backend}' made a {type(teacher).__name__}, not a teacher")
        else:
            try:
                asyncio.run(run_openai(jobs, teacher, cfg, label_aware, tick))
            except AuthError as exc:
                raise ConfigError(str(exc)) from None
    result = Stats(started=total.started)
    for job in jobs:
        result.merge(job.stats)
    return result


def check_failures(stats: Stats) -> None:
    if stats.failed:
        raise PartialFailure(
            f"{stats.failed} record(s) failed after retries; see {', '.join(stats.failed_files)}; "
            "rerun the same command to retry only those"
        )
