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
from enum import IntEnum
from typing import Protocol

from distil_cli.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class Task(IntEnum):
    """The recipe's two tasks, which differ only by their instruction.

    The integer is the id that examples and batches carry (-1 marks row padding); ``key``
    ("summary" / "rationale") names the task in settings, instruction tables and run.json.
    The loss of each is logged as ``loss_pred`` / ``loss_expl`` (the paper's names).
    """

    SUMMARY = 0
    RATIONALE = 1

    @property
    def key(self) -> str:
        return self.name.lower()


SUMMARY = Task.SUMMARY
RATIONALE = Task.RATIONALE

# The student's task prefixes: short, task-agnostic (any input -> output task) and parallel in the
# form the method issue found to help on clinical data: the same noun, one verb each (as the paper's
# "[label]" / "[rationale]" differ only in the task's name). docs/method.md has the measurements:
# on CQA this pair and the previous one ("Write the output / the rationale for the text below.", the
# same verb, one noun each) are within noise of each other; the earlier clinical pair is kept as
# CLINICAL_INSTRUCTIONS.
DEFAULT_INSTRUCTIONS: dict[Task, dict[str, str]] = {
    SUMMARY: {
        "en": "Respond to the text below.",
        "es": "Responde al texto siguiente.",
        "fr": "Réponds au texte ci-dessous.",
        "pt": "Responda ao texto abaixo.",
    },
    RATIONALE: {
        "en": "Explain the text below.",
        "es": "Explica el texto siguiente.",
        "fr": "Explique le texte ci-dessous.",
        "pt": "Explique o texto abaixo.",
    },
}
# The earlier defaults: descriptive, clinical and not parallel. The teacher is still asked with
# the rationale one (it tells a large model what a rationale should hold).
CLINICAL_INSTRUCTIONS: dict[Task, dict[str, str]] = {
    SUMMARY: {
        "en": "Summarize the following clinical case report.",
        "es": "Resume el siguiente informe de caso clínico.",
        "fr": "Résumez le rapport de cas clinique suivant.",
        "pt": "Resuma o seguinte relato de caso clínico.",
    },
    RATIONALE: {
        "en": "Extract the key information from the clinical text.",
        "es": "Extrae la información clave del texto clínico.",
        "fr": "Extrayez les informations clés du texte clinique.",
        "pt": "Extraia as informações principais do texto clínico.",
    },
}
ALL_LANGUAGES = "*"  # an override key that applies to every language without its own entry

# End-of-turn markers of common families, tried after the tokenizer's own eos.
KNOWN_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


def instruction_for(
    task: Task, lang: str, overrides: dict[str, str] | None = None, table: dict[Task, dict[str, str]] | None = None
) -> str:
    """The task instruction in ``lang``: an override for ``lang``, else one for every language (``*``),
    else the default of ``lang`` (English where there is none)."""
    if overrides and lang in overrides:
        return overrides[lang]
    if overrides and ALL_LANGUAGES in overrides:
        return overrides[ALL_LANGUAGES]
    table = (table or DEFAULT_INSTRUCTIONS)[task]
    if lang not in table:
        log.debug("no %s instruction for language %r: using the English one", task, lang)
    return table.get(lang, table["en"])


def user_message(instruction: str, text: str) -> str:
    """The user turn: instruction, a blank line, the input (just the text when there is no instruction)."""
    return f"{instruction}\n\n{text}" if instruction else text


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


def choose_formatter(tokenizer, name: str | None = None, family=None) -> PromptFormatter:
    """``name`` if given; else the tokenizer's chat template; else the family's formatter; else ChatML."""
    from distil_cli.plugins.registry import get_registry

    formatters = get_registry().formatters
    if name is None:
        if getattr(tokenizer, "chat_template", None):
            name = ChatTemplateFormatter.name
        elif family is not None:
            name = family.formatter
        else:
            name = ChatMLFormatter.name
    if name not in formatters:
        raise ConfigError(
            f"unknown prompt formatter '{name}'; known: {', '.join(sorted(formatters))} (see `distil plugins`)"
        )
    formatter = formatters[name](tokenizer)
    ids = tokenizer(formatter.end_of_turn, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(
            f"formatter '{name}' ends turns with {formatter.end_of_turn!r}, which is not one token of this tokenizer "
            "(generation could never stop); choose the formatter of this model family"
        )
    return formatter


def stop_token_ids(tokenizer, formatter: PromptFormatter) -> list[int]:
    """Token ids that end generation: the formatter's end-of-turn and the tokenizer's eos."""
    ids = []
    for token in (formatter.end_of_turn, tokenizer.eos_token):
        if token:
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is not None and tid != tokenizer.unk_token_id and tid not in ids:
                ids.append(tid)
    return ids
