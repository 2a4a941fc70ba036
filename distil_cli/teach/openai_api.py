"""The ``openai`` teacher: any OpenAI-compatible server (OpenRouter, vLLM, ``transformers serve``, OpenAI).

The official async client with its own retries switched off (the caller retries); the
API key comes from the settings or the environment variable they name.
"""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import urlparse

from distil_cli.errors import ConfigError
from distil_cli.settings import AnnotateSettings, mask_url
from distil_cli.teach.base import AuthError, Completion, FatalError, RetryableError

DEFAULT_OPENAI_MODEL = "qwen/qwen2.5-72b-instruct"
NEEDS_KEY_HOSTS = ("openrouter.ai", "api.openai.com")


def resolve_api_key(cfg: AnnotateSettings, env: dict[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    if cfg.api_key is not None:
        return cfg.api_key.get_secret_value()
    key = env.get(cfg.api_key_env)
    host = urlparse(cfg.base_url).hostname or ""
    if not key and any(host == h or host.endswith("." + h) for h in NEEDS_KEY_HOSTS):
        raise ConfigError(
            f"{mask_url(cfg.base_url)} needs an API key: set ${cfg.api_key_env} (or name another with --api-key-env)"
        )
    return key


# A token spells at most a few dozen characters: a reply longer than --max-tokens x this is cut there
# and flagged "oversized" (a 50 MB reply is never taken as a rationale).
CHARS_PER_TOKEN_CAP = 32
OVERSIZED = "oversized"


def _retry_after(response) -> float | None:
    """Seconds a response's Retry-After asks for: a number of seconds or an HTTP date (RFC 9110)."""
    if response is None:
        return None
    value = response.headers.get("retry-after") if hasattr(response, "headers") else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        import datetime as dt

        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN: as if absent


def _url_credentials(url: str) -> list[str]:
    """The password of a URL's user info, ``user:password``, and its HTTP Basic form: secrets to scrub."""
    import base64
    from urllib.parse import unquote

    parts = urlparse(url)
    if not parts.password:
        return []
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
    basic = base64.b64encode(pair.encode()).decode()
    return [pair, basic, unquote(parts.password), parts.password]


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
        self.timeout = timeout
        # short header values are not secrets; a password in the URL always is
        self.header_values = [v for v in (headers or {}).values() if len(v) >= 8] + _url_credentials(base_url)
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-set",
            timeout=timeout,
            max_retries=0,
            default_headers=headers or None,
        )

    @classmethod
    def from_settings(cls, cfg: AnnotateSettings) -> OpenAITeacher:
        return cls(
            cfg.base_url,
            cfg.model or DEFAULT_OPENAI_MODEL,
            resolve_api_key(cfg),
            cfg.api_key_env,
            cfg.temperature,
            cfg.max_tokens,
            cfg.timeout,
            cfg.headers,
        )

    def scrub(self, text: str) -> str:
        """Error texts never carry the key or header values, even if a server echoes them."""
        for secret in (self.secret, *self.header_values):
            if secret:
                text = text.replace(secret, "**********")
        return text

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        openai = self.openai
        started = time.perf_counter()
        request = self.client.chat.completions.create(
            model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens
        )
        try:
            # --timeout bounds the whole request: the client's timeout bounds each read, which a server
            # sending a byte a second (or an endless body) never exceeds
            response = await asyncio.wait_for(request, self.timeout)
        except asyncio.TimeoutError:
            raise RetryableError(f"timeout (no complete reply in {self.timeout:g} s)") from None
        except openai.AuthenticationError:
            raise AuthError(
                f"the server at {mask_url(self.base_url)} refused the API key (401): set ${self.api_key_env} "
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
        except (ValueError, TypeError, openai.APIResponseValidationError) as exc:  # JSONDecodeError is a ValueError
            raise RetryableError(self.scrub(f"malformed reply ({type(exc).__name__}: {str(exc)[:200]})")) from None
        return self._completion(response, started)

    def _completion(self, response, started: float) -> Completion:
        """The reply as a Completion; any other shape (HTML, an error object, no choices) is retryable."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            error = getattr(response, "error", None)
            if isinstance(response, str):
                what = f"not JSON: {response[:80]!r}"
            elif error:
                what = f"an error object: {str(error)[:200]}"
            else:
                what = "no choices" if isinstance(choices, list) else "no 'choices' field"
            raise RetryableError(self.scrub(f"malformed reply ({what})"))
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if text is not None and not isinstance(text, str):
            raise RetryableError(f"malformed reply (content is {type(text).__name__}, not text)")
        usage = getattr(response, "usage", None)
        text, finish_reason = (text or "").strip(), getattr(choices[0], "finish_reason", None) or "unknown"
        limit = self.max_tokens * CHARS_PER_TOKEN_CAP
        if len(text) > limit:  # more than --max-tokens tokens can spell: a server ignoring it, or a runaway
            text, finish_reason = text[:limit], OVERSIZED
        return Completion(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
            completion_tokens=_count(getattr(usage, "completion_tokens", 0)),
            latency_s=round(time.perf_counter() - started, 3),
        )


def _count(value) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
