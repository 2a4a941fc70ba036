"""Training examples: tokenised prompt + target with exact loss masks, batching, the loss.

Each record yields a summary example (task 0) and, for ``distill``, a rationale
example (task 1). The prompt and the target (answer + end-of-turn) are tokenised
separately; labels are -100 on the prompt and on padding. A prompt that is too long is
shortened by cropping the *input text* only; the answer and its end-of-turn are never
cropped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler

from distil_cli.errors import DataError
from distil_cli.prepare import crop_tokens
from distil_cli.prompts import RATIONALE, SUMMARY, PromptFormatter, instruction_for

log = logging.getLogger(__name__)
IGNORE = -100
TASK_IDS = {SUMMARY: 0, RATIONALE: 1}


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
    max_answer_tokens: int,
    record_id: str,
    task: int,
) -> dict[str, Any]:
    if not answer or not answer.strip():
        raise DataError(f"record {record_id}: empty answer for task {task}; it would have no supervised token")
    target = formatter.format(instruction, text, answer=answer).target
    target_ids = _ids(tokenizer, target)
    if len(target_ids) > max_answer_tokens + 1:
        raise DataError(
            f"record {record_id}: answer of {len(target_ids) - 1} tokens exceeds "
            f"max_output_tokens={max_answer_tokens}; "
            "raise --max-output-tokens or crop outputs in `distil prepare`"
        )
    prompt_ids, cropped = encode_prompt(tokenizer, formatter, instruction, text, max_prompt_tokens, record_id)
    return {
        "id": record_id,
        "task": task,
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
    model_type: str,
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
        if model_type == "distill" and not record.get("rationale"):
            if missing_rationale == "skip":
                skipped.append(rid)
                continue
            raise DataError(
                f"record {rid}: no 'rationale' for distill training; run `distil annotate`, "
                "pass --missing-rationale skip, or use --model-type standard"
            )
        lang = record.get("lang", "en")
        tasks = [(SUMMARY, record["output"], summary_instructions)]
        if model_type == "distill":
            tasks.append((RATIONALE, record["rationale"], rationale_instructions))
        for task, answer, overrides in tasks:
            examples.append(
                encode_example(
                    tokenizer,
                    formatter,
                    instruction_for(task, lang, overrides),
                    record["input"],
                    answer,
                    max_input_tokens,
                    max_output_tokens,
                    rid,
                    TASK_IDS[task],
                )
            )
    if not examples:
        raise DataError("no training example left (all records lacked a rationale?)")
    return ExampleSet(examples, sum(e["cropped"] for e in examples), skipped)


class Collator:
    """Dynamic right padding to the longest example of the batch; labels -100 on padding."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for row, f in enumerate(features):
            length = len(f["input_ids"])
            input_ids[row, :length] = torch.tensor(f["input_ids"])
            labels[row, :length] = torch.tensor(f["labels"])
            attention[row, :length] = 1
        task = torch.tensor([f["task"] for f in features], dtype=torch.long)
        supervised = labels[:, 1:].ne(IGNORE)
        per_task = [int((supervised[task == t]).sum()) for t in (0, 1)]
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels": labels,
            "task": task,
            "loss_counts": (*per_task, int(attention.sum()), n),
        }


def record_groups(examples: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Indices of adjacent examples of the same record (its summary and rationale examples)."""
    groups: list[list[int]] = []
    for index, example in enumerate(examples):
        if groups and examples[groups[-1][0]]["id"] == example["id"]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class GroupedLengthSampler(Sampler[int]):
    """Seeded, length-grouped order that keeps a record's task examples in one batch.

    Records (groups of adjacent examples with the same id) are shuffled, cut into
    mega-batches of 50 batches, sorted by length inside each, so batches hold examples of
    similar length (little padding) and both tasks of a record share a forward pass.
    The order depends only on the seed and the epoch, which makes ``--resume`` exact.
    """

    def __init__(self, examples: Sequence[dict[str, Any]], batch_size: int, seed: int):
        self.groups = record_groups(examples)
        self.lengths = [max(len(examples[i]["input_ids"]) for i in g) for g in self.groups]
        per_group = max(len(g) for g in self.groups)
        self.groups_per_batch = max(1, batch_size // per_group)
        self.seed = seed
        self.epoch = 0
        self.total = sum(len(g) for g in self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[int]:
        order = list(range(len(self.groups)))
        random.Random(self.seed * 1000003 + self.epoch).shuffle(order)
        mega = self.groups_per_batch * 50
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda g: -self.lengths[g])
            for g in chunk:
                yield from self.groups[g]


@dataclass
class LossParts:
    loss: torch.Tensor
    loss_pred: torch.Tensor
    loss_expl: torch.Tensor
    sum_pred: torch.Tensor
    sum_expl: torch.Tensor
    n_pred: torch.Tensor
    n_expl: torch.Tensor


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross-entropy of next-token prediction and its supervision mask, [B, T-1]."""
    shift_logits = logits[:, :-1, :]
    shift_labels = labels[:, 1:]
    losses = chunked_cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1))
    return losses.view(shift_labels.shape), shift_labels.ne(IGNORE)


def chunked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Float32 cross-entropy per row, computed chunk by chunk (-100 targets give 0).

    Each chunk is checkpointed, so the float32 copy of a [rows, vocab] block exists for one
    chunk at a time, in the forward and in the backward pass.
    """
    from torch.utils.checkpoint import checkpoint

    def piece(block: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(block.float(), target, ignore_index=IGNORE, reduction="none")

    if logits.shape[0] <= chunk or not logits.requires_grad:
        return piece(logits, targets)
    parts = [
        checkpoint(piece, logits[i : i + chunk], targets[i : i + chunk], use_reentrant=False)
        for i in range(0, logits.shape[0], chunk)
    ]
    return torch.cat(parts)


def _per_token(task: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Task ids per predicted position [B, T-1], from per-example [B] or per-token [B, T] ids."""
    if task.dim() == 1:
        return task.unsqueeze(1).expand(shape)
    return task[:, 1:]


def multitask_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    task: torch.Tensor,
    alpha: float,
    counts: torch.Tensor | None = None,
) -> LossParts:
    """``alpha * loss_pred + (1 - alpha) * loss_expl``, each the mean over its own supervised tokens.

    ``task`` gives the task per example [B] or per token [B, T] (packed rows). ``counts`` =
    [supervised summary tokens, supervised rationale tokens] over the whole
    gradient-accumulation window (and all ranks); by default this batch's. Summing the
    returned ``loss`` over the micro-batches of a window then gives exactly the per-task
    means of the window. A task absent from the batch contributes 0; a task present
    with no supervised token is an error (its mean would be undefined).
    """
    losses, mask = token_losses(logits, labels)
    return losses_to_parts(losses, mask, task, alpha, counts)


def losses_to_parts(
    losses: torch.Tensor,
    mask: torch.Tensor,
    task: torch.Tensor,
    alpha: float,
    counts: torch.Tensor | None = None,
    check: bool = True,
) -> LossParts:
    """Per-task sums and means from per-token losses [B, T-1] and their mask.

    ``check`` raises when a task has examples but no supervised token (a host sync; packed
    batches are checked by their collator instead).
    """
    token_task = _per_token(task, mask.shape)
    sums, ns = [], []
    for task_id in (0, 1):
        selected = token_task == task_id
        n = (mask & selected).sum()
        if check and bool((task == task_id).any()) and int(n) == 0:
            raise ValueError(f"task {task_id} has examples in the batch but no supervised token")
        sums.append((losses * (mask & selected)).sum())
        ns.append(n)
    return parts_from_sums(sums, ns, alpha, counts)


def parts_from_sums(sums, ns, alpha: float, counts: torch.Tensor | None = None) -> LossParts:
    """The multitask loss from per-task loss sums and supervised token counts (tensors or ints).

    ``counts`` (per-task tokens of the whole accumulation window) replace ``ns`` as the
    denominators when given.
    """
    denominators = counts if counts is not None else ns
    means = [s / (d.clamp(min=1) if torch.is_tensor(d) else max(d, 1)) for s, d in zip(sums, denominators)]
    loss = alpha * means[0] + (1.0 - alpha) * means[1]
    return LossParts(loss, means[0], means[1], sums[0].detach(), sums[1].detach(), ns[0], ns[1])


def task_token_counts(batches: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """[summary tokens, rationale tokens] supervised in these batches (label shift applied)."""
    device = batches[0]["labels"].device if batches else "cpu"
    counts = torch.zeros(2, dtype=torch.long, device=device)
    for batch in batches:
        supervised = batch["labels"][:, 1:].ne(IGNORE)
        token_task = _per_token(batch["task"], supervised.shape)
        for task_id in (0, 1):
            counts[task_id] += (supervised & (token_task == task_id)).sum()
    return counts


class PackingCollator:
    """Padding-free batches: examples packed into rows, position ids restarting at 0 per example.

    No attention mask is passed, so transformers derives a block-diagonal causal mask from
    the position ids: attention never crosses examples. Every example starts with prompt
    tokens (label -100), so no token is trained to predict the next example's first token.
    Task ids are given per token (-1 on row padding).

    ``row_tokens=None`` packs the whole batch into one row. A bound (e.g. 4096) packs
    first-fit-decreasing into several rows of at most that many tokens (longer examples
    get a row of their own): with a dense attention kernel the cost per row is quadratic
    in the row length, so shorter rows waste less. Rows are padded to the longest; the
    padding is one more sequence of its own (positions from 0, labels -100).
    """

    def __init__(self, row_tokens: int | None = None, pad_token_id: int = 0, varlen: bool = False):
        self.row_tokens = row_tokens
        self.pad_token_id = pad_token_id
        self.varlen = varlen

    def _rows(self, features: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if not self.row_tokens:
            return [features]
        rows: list[list[dict[str, Any]]] = []
        space: list[int] = []
        for f in sorted(features, key=lambda f: -len(f["input_ids"])):
            n = len(f["input_ids"])
            slot = next((i for i, free in enumerate(space) if free >= n), None)
            if slot is None:
                rows.append([f])
                space.append(self.row_tokens - n)
            else:
                rows[slot].append(f)
                space[slot] -= n
        return rows

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = self._rows(features)
        width = max(sum(len(f["input_ids"]) for f in row) for row in rows)
        out = {name: [] for name in ("input_ids", "position_ids", "labels", "task")}
        for row in rows:
            ids, labels, positions, tasks = [], [], [], []
            for f in row:
                n = len(f["input_ids"])
                ids.extend(f["input_ids"])
                labels.extend(f["labels"])
                positions.extend(range(n))
                tasks.extend([f["task"]] * n)
            pad = width - len(ids)
            ids.extend([self.pad_token_id] * pad)
            labels.extend([IGNORE] * pad)
            positions.extend(range(pad))
            tasks.extend([-1] * pad)
            for name, values in zip(out, (ids, positions, labels, tasks)):
                out[name].append(values)
        batch: dict[str, Any] = {name: torch.tensor(values, dtype=torch.long) for name, values in out.items()}
        batch["loss_index"] = loss_index(batch["labels"], batch["task"], features)
        n_pred = batch["loss_index"]["n_pred"]
        n_expl = batch["loss_index"]["flat_index"].numel() - n_pred
        batch["loss_counts"] = (n_pred, n_expl, int(batch["task"].ge(0).sum()), len(features))
        if self.varlen:
            batch.update(sequence_lengths(batch["position_ids"]))
        return batch


def loss_index(labels: torch.Tensor, task: torch.Tensor, features: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the loss is, computed on the CPU so the training step never waits for the GPU.

    ``keep``: columns (of the shifted labels) supervised in any row, for ``logits_to_keep``.
    ``flat_index`` / ``flat_target``: flat positions [B*T] whose next token is supervised and
    those tokens, summary-task positions first; ``n_pred`` of them are the summary's.
    """
    supervised = labels[:, 1:].ne(IGNORE)
    width = labels.shape[1]
    index, target = [], []
    for task_id in (0, 1):
        rows, cols = (supervised & (task[:, 1:] == task_id)).nonzero(as_tuple=True)
        if rows.numel() == 0 and any(f["task"] == task_id for f in features):
            raise ValueError(f"task {task_id} has examples in the batch but no supervised token")
        index.append(rows * width + cols)
        target.append(labels[rows, cols + 1])
    return {
        "keep": supervised.any(dim=0).nonzero().squeeze(-1),
        "flat_index": torch.cat(index),
        "flat_target": torch.cat(target),
        "n_pred": int(index[0].numel()),
    }


def sequence_lengths(position_ids: torch.Tensor) -> dict[str, Any]:
    """Cumulative sequence lengths of packed rows (flattened) for varlen attention: starts where positions are 0."""
    flat = position_ids.reshape(-1)
    starts = (flat == 0).nonzero().squeeze(-1)
    cu = torch.cat([starts, torch.tensor([flat.numel()])]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


class TokenBudgetBatchSampler:
    """Batches of whole records (both tasks together) holding at most ``max_tokens`` tokens.

    Batch membership is fixed once from the seed (so the number of batches per epoch never
    changes); the order of the batches is reshuffled per epoch from the seed and the epoch,
    which keeps ``--resume`` exact. A record longer than the budget gets a batch of its own.
    """

    def __init__(self, examples: Sequence[dict[str, Any]], max_tokens: int, seed: int):
        groups = record_groups(examples)
        sizes = [sum(len(examples[i]["input_ids"]) for i in g) for g in groups]
        order = list(range(len(groups)))
        random.Random(seed).shuffle(order)
        self.batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for g in order:
            if current and used + sizes[g] > max_tokens:
                self.batches.append(current)
                current, used = [], 0
            current.extend(groups[g])
            used += sizes[g]
        if current:
            self.batches.append(current)
        self.seed = seed
        self.epoch = 0
        self.sampler = self  # accelerate looks for batch_sampler.sampler.set_epoch when it wraps us

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.batches)))
        random.Random(self.seed * 1000003 + self.epoch).shuffle(order)
        for b in order:
            yield self.batches[b]
