"""What a teacher is: the two protocols ``distil annotate`` drives, their result and errors.

* ``Teacher``: one request at a time, awaited concurrently (API clients: ``openai``).
  Retries are the caller's (exponential backoff with jitter, ``Retry-After`` honoured).
* ``BatchTeacher``: a batch of prompts at once (an in-process model: ``local``).

Backends raise ``RetryableError`` for what another try may fix and ``FatalError`` for what
it cannot; ``AuthError`` stops the whole run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class RetryableError(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection); ``retry_after`` in seconds if the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(Exception):
    """A failure that retrying cannot fix (401, 400, unknown model, ...)."""


class AuthError(FatalError):
    """The server refused the API key: stop the whole run."""


@runtime_checkable
class Teacher(Protocol):
    """A teacher answering one chat request at a time (awaited concurrently by annotate)."""

    name: str
    model: str

    async def complete(self, messages: list[dict[str, str]]) -> Completion: ...


@runtime_checkable
class BatchTeacher(Protocol):
    """A teacher answering a batch of chat requests in one call (an in-process model)."""

    name: str
    model: str

    def complete_batch(self, batch: list[list[dict[str, str]]]) -> list[Completion]: ...


class RateLimiter:
    """At most ``rate`` request starts per second (None = unlimited)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_start = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next_start - now
            self.next_start = max(now, self.next_start) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


BACKOFF_CAP = 60.0


def backoff_delay(attempt: int, retry_after: float | None, base: float = 1.0, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer, up to ``cap``.

    A server asking for more (``Retry-After: 3600``, ``inf``) gets ``cap`` seconds and a warning: a run
    never sleeps for as long as a server says."""
    jittered = random.uniform(0, min(cap, base * 2**attempt))
    wanted = retry_after or 0.0
    if wanted > cap:
        log.warning("The server asked to wait %s s before retrying; waiting %g s (the backoff cap)", wanted, cap)
        wanted = cap
    return max(jittered, wanted)
