"""``distil annotate``: a teacher rationale per record, concurrent, resumable and loss-free.

Results are appended and flushed one record per line as they arrive, so a kill loses
at most the requests in flight; a torn last line is dropped on resume. A rerun skips
records already annotated with the same prompt and model. Records that still fail
after the retries go to ``<out>.failed.jsonl`` and the exit code says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_cli.data.files import naming, read_appended, read_jsonl
from distil_cli.data.guard import OutputLock, check_separate, remove_stale_temporaries, temporary_name
from distil_cli.errors import ConfigError, DataError, PartialFailure
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
from distil_cli.teach.prompts import build_messages, generation_key, load_template, prompt_hash
from distil_cli.teach.quality import grounding_score, quality_flags

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclass
class Stats:
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    retrying: int = 0
    unusable: int = 0  # new rationales flagged empty or truncated
    prompt_tokens: int = 0
    completion_tokens: int = 0
    flags: Counter = field(default_factory=Counter)
    grounding: list[float] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def merge(self, other: Stats) -> None:
        for name in ("total", "skipped", "done", "failed", "unusable", "prompt_tokens", "completion_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.flags.update(other.flags)
        self.grounding.extend(other.grounding)
        self.failed_files.extend(other.failed_files)


# --------------------------------------------------------------------------- resume bookkeeping


def existing_hashes(out: Path) -> dict[str, str]:
    """id -> prompt hash of the records already in ``out`` (what a kill left is repaired first)."""
    return {row["id"]: (row.get("annotation") or {}).get("prompt_hash", "") for row in read_appended(out)}


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
        digest = prompt_hash(messages, backend, model, generation_key(cfg))
        if record["id"] in hashes:
            if hashes[record["id"]] != digest:
                raise ConfigError(
                    f"{out} holds record {record['id']} annotated with another prompt or model (or other "
                    "--max-tokens / --temperature); write to another --out (nothing is mixed or paid for twice)"
                )
            stats.skipped += 1
            continue
        todo.append((record, messages, digest))
    if cfg.limit is not None and len(todo) > cfg.limit:  # a trial: the first N not yet annotated
        stats.total -= len(todo) - cfg.limit
        todo = todo[: cfg.limit]
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
        with naming(self.job.out):
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self.fh.flush()
        stats = self.job.stats
        stats.done += 1
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
        stats.flags.update(flags)
        stats.unusable += bool({"empty", "truncated", "oversized"} & set(flags))
        stats.grounding.append(grounding)

    def fail(self, record: dict, error: str, attempts: int) -> None:
        with naming(self.failed), open(self.failed, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": record["id"], "error": error, "attempts": attempts}, ensure_ascii=False) + "\n")
        self.job.stats.failed += 1
        if str(self.failed) not in self.job.stats.failed_files:
            self.job.stats.failed_files.append(str(self.failed))

    def close(self) -> None:
        self.fh.close()


# --------------------------------------------------------------------------- running


async def _ask(teacher: Teacher, messages: list[dict[str, str]]):
    """One request; any unexpected failure of a backend is that record's (retryable) problem, not the run's end."""
    try:
        return await teacher.complete(messages)
    except (RetryableError, FatalError):
        raise
    except Exception as exc:
        raise RetryableError(f"unexpected {type(exc).__name__}: {str(exc)[:200]}") from None


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
                completion = await _ask(teacher, messages)
            except RetryableError as exc:
                if attempt > cfg.max_retries:
                    writer.fail(record, f"{exc} (after {attempt} attempts)", attempt)
                    break
                stats.retrying += 1
                tick()
                await asyncio.sleep(backoff_delay(attempt - 1, exc.retry_after, cap=cfg.max_backoff))
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
    """One job per split file to annotate; reads what is already annotated (nothing is created here)."""
    if data.is_file():
        if out.is_dir():
            raise ConfigError(f"--out {out} is a folder; give a .jsonl file for a single split")
        return [plan(data, out, cfg, backend, model, template)]
    if not data.is_dir():
        raise DataError(f"{data} does not exist")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for a prepared folder")
    if not any((data / f"{name}.jsonl").is_file() for name in SPLITS):
        raise DataError(f"{data}: no train/valid/test.jsonl; run `distil prepare` first")
    missing = [name for name in cfg.splits if not (data / f"{name}.jsonl").is_file()]
    if missing:
        raise DataError(f"{data}: no {', '.join(f'{m}.jsonl' for m in missing)} to annotate (--splits)")
    return [plan(data / f"{name}.jsonl", out / f"{name}.jsonl", cfg, backend, model, template) for name in cfg.splits]


def copy_other_splits(data: Path, out: Path, annotated: list[str]) -> None:
    """The splits not annotated (and the manifest) go to OUT unchanged, so OUT is a whole prepared folder."""
    for name in [f"{s}.jsonl" for s in SPLITS if s not in annotated] + ["manifest.json"]:
        source, target = data / name, out / name
        if source.is_file() and not target.exists():
            remove_stale_temporaries(out, name)
            tmp = target.with_name(temporary_name(name, "copy"))
            shutil.copyfile(source, tmp)
            tmp.replace(target)


def _progress_tick(jobs: list[Job], total: Stats, progress: Callable[[Stats], None] | None) -> Callable[[], None]:
    def tick() -> None:
        if progress is not None:
            live = Stats(total=total.total, skipped=total.skipped, started=total.started)
            for job in jobs:
                live.done += job.stats.done
                live.failed += job.stats.failed
                live.retrying += job.stats.retrying
                live.prompt_tokens += job.stats.prompt_tokens
                live.completion_tokens += job.stats.completion_tokens
            progress(live)

    return tick


def annotate(
    data: Path, out: Path, cfg: AnnotateSettings, cache_dir: Path, progress: Callable[[Stats], None] | None = None
) -> Stats:
    """Annotate a split file or every split of a prepared folder; ``check_failures`` turns failures into an error.

    One process per output at a time (a lock beside OUT); OUT may not be, hold or lie in DATA.
    """
    data, out = Path(data), Path(out)
    check_separate(data, out)
    # a split file's run also holds its folder's lock shared: a run over that whole folder, which
    # writes the same file, is refused while it works (and the other way round)
    with OutputLock(out), contextlib.ExitStack() as folder:
        if data.is_file():
            try:
                folder.enter_context(OutputLock(out.resolve().parent, shared=True))
            except PermissionError:  # its parent is not writable: a folder run could not lock it either
                pass
        return _annotate(data, out, cfg, cache_dir, progress)


def planned(data: Path, out: Path, cfg: AnnotateSettings) -> tuple[str | None, list[Job]]:
    """(the template, read once: it decides every prompt and hash; the jobs of a run)."""
    model = cfg.model or ("default" if cfg.backend == "local" else DEFAULT_OPENAI_MODEL)
    template = load_template(cfg.template)
    return template, plan_all(Path(data), Path(out), cfg, cfg.backend, model, template)


def _annotate(data: Path, out: Path, cfg: AnnotateSettings, cache_dir: Path, progress) -> Stats:
    template, jobs = planned(data, out, cfg)
    total = Stats(total=sum(j.stats.total for j in jobs), skipped=sum(j.stats.skipped for j in jobs))
    tick = _progress_tick(jobs, total, progress)
    label_aware = template is not None and "{output}" in template
    teacher = make_teacher(cfg, cache_dir) if any(job.todo for job in jobs) else None
    if data.is_dir():  # created only once the teacher exists: a bad key or model creates nothing
        out.mkdir(parents=True, exist_ok=True)
        copy_other_splits(data, out, cfg.splits)
    if isinstance(teacher, BatchTeacher):  # in-process models batch; API clients run concurrently
        run_local(jobs, teacher, cfg, label_aware, tick)
    elif isinstance(teacher, Teacher):
        try:
            asyncio.run(run_openai(jobs, teacher, cfg, label_aware, tick))
        except AuthError as exc:
            raise ConfigError(str(exc)) from None
    elif teacher is not None:
        raise ConfigError(f"annotate backend '{cfg.backend}' made a {type(teacher).__name__}, not a teacher")
    result = Stats(started=total.started)
    for job in jobs:
        result.merge(job.stats)
    if cfg.format == "hf":
        from distil_cli.data.hf import save_as_dataset

        files = [out / f"{s}.jsonl" for s in SPLITS if (out / f"{s}.jsonl").is_file()] if data.is_dir() else [out]
        save_as_dataset(files, out / "hf" if data.is_dir() else out.with_name(out.stem + ".hf"))
    return result


def check_failures(stats: Stats, max_flagged: float = 1.0) -> None:
    """Exit 3 for records that failed after their retries, or for too many empty or truncated rationales."""
    if stats.failed:
        raise PartialFailure(
            f"{stats.failed} record(s) failed after retries; see {', '.join(stats.failed_files)}; "
            "rerun the same command to retry only those"
        )
    empty, truncated = stats.flags.get("empty", 0), stats.flags.get("truncated", 0)
    if stats.done and stats.unusable / stats.done > max_flagged:
        raise PartialFailure(
            f"{stats.unusable} of {stats.done} new rationale(s) empty ({empty}) or truncated ({truncated}) "
            f"(more than --max-flagged {max_flagged:g}); raise --max-tokens (in another --out) or check the "
            "teacher; the rows are kept and flagged in their 'annotation'"
        )
