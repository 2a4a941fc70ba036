"""Teacher backends for ``distil annotate`` behind one small interface.

``openai``: any OpenAI-compatible server (OpenRouter, vLLM, ``transformers serve``,
OpenAI) through the official async client; retries are ours (exponential backoff with
jitter, ``Retry-After`` honoured), so the client's own are switched off.
``local``: a transformers model on this machine, batched greedy generation.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Protocol

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


class Teacher(Protocol):
    name: str
    model: str

    async def complete(self, messages: list[dict[str, str]]) -> Completion: ...


def _retry_after(response) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after") if hasattr(response, "headers") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class OpenAITeacher:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        api_key_env: str,
        temperature: float,
        max_tokens: int,
        timeout: float,
        headers: dict[str, str] | None = None,
    ):
        import openai

        self.openai = openai
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.secret = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-set",
            timeout=timeout,
            max_retries=0,
            default_headers=headers or None,
        )

    def scrub(self, text: str) -> str:
        """Error texts never carry the key, even if a server echoes it."""
        return text.replace(self.secret, "**********") if self.secret else text

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        openai = self.openai
        started = time.perf_counter()
        try:
            response = await self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens
            )
        except openai.AuthenticationError:
            raise AuthError(
                f"the server at {self.base_url} refused the API key (401): set ${self.api_key_env} "
                "or name another variable with --api-key-env"
            ) from None
        except openai.RateLimitError as exc:
            raise RetryableError("rate limited (429)", _retry_after(exc.response)) from None
        except openai.APITimeoutError:
            raise RetryableError("timeout") from None
        except openai.APIConnectionError as exc:
            raise RetryableError(self.scrub(f"connection error: {exc}")) from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise RetryableError(f"server error {exc.status_code}", _retry_after(exc.response)) from None
            raise FatalError(self.scrub(f"HTTP {exc.status_code}: {str(exc)[:300]}")) from None
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        usage = response.usage
        return Completion(
            text=text.strip(),
            finish_reason=(choice.finish_reason if choice else None) or "unknown",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_s=round(time.perf_counter() - started, 3),
        )


class LocalTeacher:
    """A transformers model on this machine; calls are serialised and batched by the caller."""

    name = "local"

    def __init__(self, source: str, model_name: str, max_tokens: int, temperature: float, formatter: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        from distil_cli.models import load_tokenizer
        from distil_cli.prompts import choose_formatter

        self.model = model_name
        self.tokenizer = load_tokenizer(source)
        self.formatter = choose_formatter(self.tokenizer, formatter)
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        if torch.cuda.is_available():
            self.lm = self.lm.to("cuda")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        """The messages as one prompt: the user message already holds instruction and input."""
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
        return self.formatter.format("", user, system=system).prompt

    def complete_batch(self, batch: list[list[dict[str, str]]]) -> list[Completion]:
        from distil_cli.generation import generate_batched
        from distil_cli.prompts import stop_token_ids

        started = time.perf_counter()
        ids = [self.tokenizer(self._prompt(m), add_special_tokens=False)["input_ids"] for m in batch]
        stops = stop_token_ids(self.tokenizer, self.formatter)
        outs = generate_batched(
            self.lm, self.tokenizer, ids, stops, self.max_tokens, batch_size=len(batch), temperature=self.temperature
        )
        latency = round((time.perf_counter() - started) / max(1, len(batch)), 3)
        return [Completion(o.text, o.finish_reason, len(i), o.new_tokens, latency) for o, i in zip(outs, ids)]


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


def backoff_delay(attempt: int, retry_after: float | None, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""
    jittered = random.uniform(0, min(cap, base * 2**attempt))
    return max(jittered, retry_after or 0.0)
