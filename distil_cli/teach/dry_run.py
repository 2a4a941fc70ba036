"""``annotate --dry-run``: the requests a run would send, with a token and cost estimate; nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distil_cli.settings import AnnotateSettings
from distil_cli.teach.annotate import planned

CHARS_PER_TOKEN = 4  # a rough rate for estimates without the teacher's tokenizer (English-like text)


@dataclass
class DryRun:
    """What ``annotate --dry-run`` shows: the rendered prompts and an estimate of tokens and cost."""

    prompts: list[tuple[str, list[dict[str, str]]]]  # (record id, messages) of the records shown
    records: int  # records a run would send
    prompt_tokens: int  # estimated, over all of them
    completion_tokens: int  # at most: --max-tokens each
    cost_usd: float | None  # with --price-per-mtok: an upper bound (completions at --max-tokens)


def dry_run(data: Path, out: Path, cfg: AnnotateSettings, show: int = 3) -> DryRun:
    """The requests a run would send (nothing is sent or written): its first ``show`` prompts, and the
    estimated tokens (characters / 4 for prompts, --max-tokens per completion) and cost."""
    _, jobs = planned(data, out, cfg)
    todo = [item for job in jobs for item in job.todo]
    prompt_tokens = sum(
        max(1, round(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)) for _, messages, _ in todo
    )
    completion_tokens = len(todo) * cfg.max_tokens
    cost = None
    if cfg.price_per_mtok is not None:
        price_in, price_out = cfg.price_per_mtok
        cost = (prompt_tokens * price_in + completion_tokens * price_out) / 1e6
    shown = [(record["id"], messages) for record, messages, _ in todo[:show]]
    return DryRun(shown, len(todo), prompt_tokens, completion_tokens, cost)
