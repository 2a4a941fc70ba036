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

from distil_cli.encoding import IGNORE, encode_example, encode_prompt  # noqa: F401  (used here and by train)
from distil_cli.errors import DataError
from distil_cli.prompts import PromptFormatter, Task, instruction_for

log = logging.getLogger(__name__)


@dataclass
class ExampleSet:
    examples: list[dict[str, Any]]
    cropped: int
    skipped_missing_rationale: list[str]
    long_rationales: int = 0  # cropped or skipped (long_rationale)


@dataclass
class Encoder:
    """Encodes a record's summary or rationale example with one tokenizer, formatter and length limits."""

    tokenizer: Any
    formatter: PromptFormatter
    max_input_tokens: int
    max_output_tokens: int

    def __call__(self, record: dict[str, Any], instruction: str, task: Task, crop: bool = False) -> dict[str, Any]:
        answer = record["output"] if task == Task.SUMMARY else record["rationale"]
        return encode_example(
            self.tokenizer, self.formatter, instruction, record["input"], answer, self.max_input_tokens,
            self.max_output_tokens, record["id"], task, crop,
        )  # fmt: skip

    def rationale(self, record: dict[str, Any], instruction: str, long_rationale: str) -> dict[str, Any] | None:
        """The rationale example, or None when it is too long and ``long_rationale`` is skip."""
        try:
            return self(record, instruction, Task.RATIONALE, long_rationale == "crop")
        except DataError:
            if long_rationale == "skip":
                return None
            raise


def _has_rationale(record: dict[str, Any], missing_rationale: str) -> bool:
    """Whether the record has a rationale; without one, False to skip it or an error that says why."""
    if (record.get("rationale") or "").strip():
        return True
    if missing_rationale == "skip":
        return False
    rid = record["id"]
    if "rationale" in record:  # annotated, but the teacher gave nothing usable
        flags = "/".join((record.get("annotation") or {}).get("flags") or []) or "no flags"
        raise DataError(
            f"record {rid}: its rationale is empty (annotated, {flags}); "
            "annotate it again into a new --out, or pass --missing-rationale skip"
        )
    raise DataError(
        f"record {rid}: no 'rationale' for distill training (never annotated); run `distil annotate`, "
        "pass --missing-rationale skip, or use --objective standard"
    )


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
    long_rationale: str = "error",
) -> ExampleSet:
    """Examples in record order; for distill the two tasks of a record are adjacent."""
    examples: list[dict[str, Any]] = []
    skipped: list[str] = []
    long = 0
    encode = Encoder(tokenizer, formatter, max_input_tokens, max_output_tokens)
    for record in records:
        if not record.get("output"):
            raise DataError(f"record {record['id']}: no 'output' (reference summary) to train on")
        if objective == "distill" and not _has_rationale(record, missing_rationale):
            skipped.append(record["id"])
            continue
        lang = record.get("lang", "en")
        examples.append(encode(record, instruction_for(Task.SUMMARY, lang, summary_instructions), Task.SUMMARY))
        if objective == "distill":
            instruction = instruction_for(Task.RATIONALE, lang, rationale_instructions)
            example = encode.rationale(record, instruction, long_rationale)
            long += example is None or example["cropped_answer"]
            if example is not None:
                examples.append(example)
    if not examples:
        raise DataError("no training example left (all records lacked a rationale?)")
    return ExampleSet(examples, sum(e["cropped"] for e in examples), skipped, long)


def validation_examples(
    records: Sequence[dict[str, Any]],
    encode: Encoder,
    objective: str,
    summary_instructions: dict[str, str] | None = None,
    rationale_instructions: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Teacher-forced examples of the eval records: every summary, and (distill) the rationales they have.

    Validation records are usually not annotated (annotate does train only by default), so a
    missing rationale is not an error here; long answers are cropped (a validation loss only).
    """
    examples = []
    for record in records:
        lang = record.get("lang", "en")
        examples.append(encode(record, instruction_for(Task.SUMMARY, lang, summary_instructions), Task.SUMMARY, True))
        if objective == "distill" and (record.get("rationale") or "").strip():
            instruction = instruction_for(Task.RATIONALE, lang, rationale_instructions)
            examples.append(encode(record, instruction, Task.RATIONALE, True))
    return examples


def task_masks(labels: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per task (summary, rationale): the positions [B, T-1] whose next token is supervised.

    The one definition of "a supervised token of task t" (labels shifted by one, as the
    model predicts the next token). ``task`` is per example [B] or per token [B, T]
    (packed rows, -1 on row padding).
    """
    supervised = labels[:, 1:].ne(IGNORE)
    token_task = task.unsqueeze(1).expand(supervised.shape) if task.dim() == 1 else task[:, 1:]
    return supervised & (token_task == Task.SUMMARY), supervised & (token_task == Task.RATIONALE)
