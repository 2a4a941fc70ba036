"""Training examples: tokenised prompt + target with exact loss masks.

Each record yields a summary example (``Task.SUMMARY``) and, for ``distill``, a rationale
example (``Task.RATIONALE``). The prompt and the target (answer + end-of-turn) are
tokenised separately; labels are -100 (``IGNORE``) on the prompt and on padding. A prompt
that is too long is shortened by cropping the *input text* only; the answer and its
end-of-turn are never cropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from distil_cli.data.text import crop_tokens
from distil_cli.errors import DataError
from distil_cli.prompts import PromptFormatter, Task, instruction_for

log = logging.getLogger(__name__)
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
) -> dict[str, Any]:
    if not answer or not answer.strip():
        raise DataError(f"record {record_id}: empty answer for task {int(task)}; it would have no supervised token")
    target = formatter.format(instruction, text, answer=answer).target
    target_ids = _ids(tokenizer, target)
    if len(target_ids) > max_output_tokens + 1:  # + 1: the end-of-turn token
        raise DataError(
            f"record {record_id}: answer of {len(target_ids) - 1} tokens exceeds "
            f"max_output_tokens={max_output_tokens}; "
            "raise --max-output-tokens or crop outputs in `distil prepare`"
        )
    prompt_ids, cropped = encode_prompt(tokenizer, formatter, instruction, text, max_prompt_tokens, record_id)
    return {
        "id": record_id,
        "task": int(task),
        "input_ids": prompt_ids + target_ids,
        "labels": [IGNORE] * len(prompt_ids) + target_ids,
        "cropped": cropped,
    }


@dataclass
class ExampleSet:
    examples: list[dict[str, Any]]
    cropped: int
    skipped_missing_rationale: list[str]


def build_examples(
    records: Sequence[dict[str, Any]],
    tokenizer,
    formatter: PromptFormatter,
    objective: str,
    max_input_tokens: int,
    max_output_tokens: int,
    missing_rationale: str = "error",
    summary_instructions: dict[str, str] | None = None,
    rationale_instructions: dict[str, str] | None = None,
) -> ExampleSet:
    """Examples in record order; for distill the two tasks of a record are adjacent."""
    examples: list[dict[str, Any]] = []
    skipped: list[str] = []
    for record in records:
        rid = record["id"]
        if not record.get("output"):
            raise DataError(f"record {rid}: no 'output' (reference summary) to train on")
        if objective == "distill" and not record.get("rationale"):
            if missing_rationale == "skip":
                skipped.append(rid)
                continue
            raise DataError(
                f"record {rid}: no 'rationale' for distill training; run `distil annotate`, "
                "pass --missing-rationale skip, or use --objective standard"
            )
        lang = record.get("lang", "en")
        tasks = [(Task.SUMMARY, record["output"], summary_instructions)]
        if objective == "distill":
            tasks.append((Task.RATIONALE, record["rationale"], rationale_instructions))
        for task, answer, overrides in tasks:
            instruction = instruction_for(task, lang, overrides)
            example = encode_example(
                tokenizer,
                formatter,
                instruction,
                record["input"],
                answer,
                max_input_tokens,
                max_output_tokens,
                rid,
                task,
            )
            examples.append(example)
    if not examples:
        raise DataError("no training example left (all records lacked a rationale?)")
    return ExampleSet(examples, sum(e["cropped"] for e in examples), skipped)


def task_masks(labels: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per task (summary, rationale): the positions [B, T-1] whose next token is supervised.

    The one definition of "a supervised token of task t" (labels shifted by one, as the
    model predicts the next token). ``task`` is per example [B] or per token [B, T]
    (packed rows, -1 on row padding).
    """
    supervised = labels[:, 1:].ne(IGNORE)
    token_task = task.unsqueeze(1).expand(supervised.shape) if task.dim() == 1 else task[:, 1:]
    return supervised & (token_task == Task.SUMMARY), supervised & (token_task == Task.RATIONALE)
