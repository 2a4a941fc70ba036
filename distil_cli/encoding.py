"""Encoding one example: the prompt and the target tokenised separately, with exact loss masks.

Labels are -100 (``IGNORE``) on the prompt; a prompt that is too long is shortened by cropping
the *input text* only (the answer and its end-of-turn are never cropped). Training builds its
examples from these; generation encodes its prompts with ``encode_prompt``, so both see the same
prompt tokens.
"""

from __future__ import annotations

from typing import Any

from distil_cli.data.text import crop_tokens
from distil_cli.errors import DataError
from distil_cli.prompts import PromptFormatter, Task

IGNORE = -100


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_prompt(
    tokenizer, formatter: PromptFormatter, instruction: str, text: str, max_prompt_tokens: int, record_id: str
) -> tuple[list[int], bool]:
    """Prompt token ids at most ``max_prompt_tokens`` long, cropping the input text only."""
    prompt_ids = _ids(tokenizer, formatter.format(instruction, text).prompt)
    if len(prompt_ids) <= max_prompt_tokens:
        return prompt_ids, False
    overhead = len(prompt_ids) - len(_ids(tokenizer, text))
    budget = max_prompt_tokens - overhead
    while budget >= 1:
        cropped = crop_tokens(text, budget, tokenizer)
        prompt_ids = _ids(tokenizer, formatter.format(instruction, cropped).prompt)
        if len(prompt_ids) <= max_prompt_tokens:
            return prompt_ids, True
        budget -= max(1, len(prompt_ids) - max_prompt_tokens)
    raise DataError(
        f"record {record_id}: the prompt without any input is longer than max_input_tokens={max_prompt_tokens}; "
        "raise --max-input-tokens"
    )


def encode_example(
    tokenizer,
    formatter: PromptFormatter,
    instruction: str,
    text: str,
    answer: str,
    max_prompt_tokens: int,
    max_output_tokens: int,
    record_id: str,
    task: Task,
    crop_answer: bool = False,
) -> dict[str, Any]:
    """One example; an answer longer than ``max_output_tokens`` is an error unless ``crop_answer``."""
    if not answer or not answer.strip():
        raise DataError(f"record {record_id}: empty answer for task {int(task)}; it would have no supervised token")
    target = formatter.format(instruction, text, answer=answer).target
    target_ids = _ids(tokenizer, target)
    cropped_answer = False
    if len(target_ids) > max_output_tokens + 1:  # + 1: the end-of-turn token
        if not crop_answer:
            raise DataError(
                f"record {record_id}: answer of {len(target_ids) - 1} tokens exceeds "
                f"max_output_tokens={max_output_tokens}; "
                "raise --max-output-tokens or crop outputs in `distil prepare`"
            )
        answer = crop_tokens(answer, max_output_tokens, tokenizer)
        target_ids = _ids(tokenizer, formatter.format(instruction, text, answer=answer).target)
        target_ids = target_ids[:max_output_tokens] + target_ids[-1:]  # never without its end-of-turn
        cropped_answer = True
    prompt_ids, cropped = encode_prompt(tokenizer, formatter, instruction, text, max_prompt_tokens, record_id)
    return {
        "id": record_id,
        "task": int(task),
        "input_ids": prompt_ids + target_ids,
        "labels": [IGNORE] * len(prompt_ids) + target_ids,
        "cropped": cropped,
        "cropped_answer": cropped_answer,
    }
