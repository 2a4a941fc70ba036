"""Prompt formatters and the per-language task instructions.

A formatter turns (system?, instruction, input, answer?) into the *prompt* text (all
that precedes the answer, ending with the assistant header) and the *target* text
(the answer followed by the end-of-turn marker). Training tokenises the two parts
separately and supervises exactly the target tokens, so the masking never depends on
searching for a response template, and the prompt tokens seen in training are the
same ones generation sees at inference.

Built in: ``chat-template`` (the tokenizer's own jinja chat template) and ``chatml``
(Qwen2/2.5/3, SmolLM). Plugins register more through the ``register_prompt_formatters`` hook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from distil_cli.errors import ConfigError, DataError
from distil_cli.tasks import (  # noqa: F401  (the public names of prompts)
    ALL_LANGUAGES,
    CLINICAL_INSTRUCTIONS,
    DEFAULT_INSTRUCTIONS,
    RATIONALE,
    SUMMARY,
    Task,
    instruction_for,
    user_message,
)

log = logging.getLogger(__name__)


# End-of-turn markers of common families, tried after the tokenizer's own eos.
KNOWN_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


@dataclass(frozen=True)
class Formatted:
    prompt: str
    target: str | None  # answer + end-of-turn; None for a generation prompt


class PromptFormatter(Protocol):
    """What train, infer and annotate need from a formatter."""

    name: str
    end_of_turn: str

    def format(
        self, instruction: str, text: str, answer: str | None = None, system: str | None = None
    ) -> Formatted: ...


class ChatMLFormatter:
    """``<|im_start|>role\\n...<|im_end|>`` turns (Qwen2/2.5/3, SmolLM). No default system prompt."""

    name = "chatml"
    end_of_turn = "<|im_end|>"  # that it is one token of the tokenizer is checked by ``choose_formatter``

    def format(self, instruction: str, text: str, answer: str | None = None, system: str | None = None) -> Formatted:
        head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
        prompt = f"{head}<|im_start|>user\n{user_message(instruction, text)}<|im_end|>\n<|im_start|>assistant\n"
        return Formatted(prompt, None if answer is None else answer + self.end_of_turn)


class ChatTemplateFormatter:
    """The tokenizer's own chat template, split into prompt and answer + end-of-turn.

    The prompt is the template rendered with ``add_generation_prompt=True``; the full
    conversation must start with it and continue with the answer verbatim followed by
    an end-of-turn marker, otherwise the template cannot be trained on safely and an
    error says so.

    Templates with a thinking switch (Qwen3) are rendered with ``enable_thinking=False``:
    the empty ``<think>\n\n</think>\n\n`` block they then put after the assistant header
    belongs to the prompt, so it is never supervised and training and inference see the
    same prompt (without the switch the full conversation has the block and the generation
    prompt has not, and they would disagree).
    """

    name = "chat-template"

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the tokenizer has no chat template; use --formatter chatml or a plugin formatter")
        self.tokenizer = tokenizer
        template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
        self.template_kwargs = {"enable_thinking": False} if "enable_thinking" in template else {}
        self.end_of_turn = self._probe_end_of_turn()

    def _render(self, messages: list[dict], generation: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation, **self.template_kwargs
        )

    def _probe_end_of_turn(self) -> str:
        messages = [{"role": "user", "content": "ping"}]
        prompt = self._render(messages, True)
        full = self._render(messages + [{"role": "assistant", "content": "pong"}], False)
        rest = full[len(prompt) :] if full.startswith(prompt) else ""
        if not rest.startswith("pong"):
            raise ConfigError(
                "the tokenizer's chat template does not continue its generation prompt with the answer verbatim; "
                "choose a --formatter for this model family"
            )
        after = rest[len("pong") :]
        candidates = [self.tokenizer.eos_token, *KNOWN_END_OF_TURN]
        for marker in sorted({c for c in candidates if c}, key=len, reverse=True):
            if after.startswith(marker):
                return marker
        raise ConfigError(
            f"the chat template ends an assistant turn with {after[:20]!r}, not a known end-of-turn token; "
            "choose a --formatter for this model family"
        )

    def format(self, instruction: str, text: str, answer: str | None = None, system: str | None = None) -> Formatted:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user_message(instruction, text)})
        prompt = self._render(messages, True)
        if answer is None:
            return Formatted(prompt, None)
        full = self._render(messages + [{"role": "assistant", "content": answer}], False)
        if not full.startswith(prompt + answer):
            raise DataError(
                "the chat template changes this answer (e.g. strips or rewrites it); "
                "strip surrounding whitespace or choose another --formatter"
            )
        return Formatted(prompt, answer + self.end_of_turn)


@dataclass(frozen=True)
class WithSystem:
    """A formatter whose every prompt carries one system prompt (``train.system_prompt``; run.json keeps it
    so that ``distil infer`` prompts the same way)."""

    inner: PromptFormatter
    system: str

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def end_of_turn(self) -> str:
        return self.inner.end_of_turn

    def format(self, instruction: str, text: str, answer: str | None = None, system: str | None = None) -> Formatted:
        return self.inner.format(instruction, text, answer=answer, system=self.system if system is None else system)


def with_system(formatter: PromptFormatter, system: str | None) -> PromptFormatter:
    """``formatter`` with ``system`` in every prompt (``None``: as it is)."""
    return formatter if system is None else WithSystem(formatter, system)


def stop_token_ids(tokenizer, formatter: PromptFormatter) -> list[int]:
    """Token ids that end generation: the formatter's end-of-turn and the tokenizer's eos."""
    ids = []
    for token in (formatter.end_of_turn, tokenizer.eos_token):
        if token:
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is not None and tid != tokenizer.unk_token_id and tid not in ids:
                ids.append(tid)
    return ids
