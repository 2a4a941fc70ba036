"""Batches: padded and packed collators, the record-keeping samplers, the host-side loss bookkeeping.

A record's two examples (summary and rationale) always share a batch, so both tasks of a
record are seen in one optimizer step. Everything the loss needs to know about a batch
(how many supervised tokens per task, where they are) is computed here on the CPU, so the
training step never waits for the GPU to count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from distil_cli.prompts import Task
from distil_cli.train.examples import IGNORE, task_masks


@dataclass
class LossCounts:
    """What a batch holds, counted on the host: supervised tokens per task, useful tokens, examples.

    ``n_pred`` / ``n_expl``: supervised tokens of the summary / rationale task (label shift
    applied), the denominators of ``loss_pred`` / ``loss_expl``.
    """

    n_pred: int = 0
    n_expl: int = 0
    tokens: int = 0
    examples: int = 0

    def __add__(self, other: LossCounts) -> LossCounts:
        return LossCounts(
            self.n_pred + other.n_pred,
            self.n_expl + other.n_expl,
            self.tokens + other.tokens,
            self.examples + other.examples,
        )


@dataclass
class LossIndex:
    """Where the loss of a packed batch is, computed by the collator on the CPU.

    ``keep``: columns (of the shifted labels) supervised in any row, for ``logits_to_keep``.
    ``flat_index`` / ``flat_target``: flat positions [B*T] whose next token is supervised and
    those tokens, summary-task positions first; the first ``n_pred`` are the summary's.
    """

    keep: torch.Tensor
    flat_index: torch.Tensor
    flat_target: torch.Tensor
    n_pred: int

    def to(self, device, non_blocking: bool = False) -> LossIndex:
        """Moved with the batch (accelerate calls ``.to`` on batch values that have one)."""
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return LossIndex(move(self.keep), move(self.flat_index), move(self.flat_target), self.n_pred)

    def pin_memory(self) -> LossIndex:
        """Page-locked copies (the DataLoader pins batch values that have this), so ``.to`` can be asynchronous."""
        pin = lambda t: t.pin_memory()  # noqa: E731
        return LossIndex(pin(self.keep), pin(self.flat_index), pin(self.flat_target), self.n_pred)


def _counts(labels: torch.Tensor, task: torch.Tensor, tokens: int, examples: int) -> LossCounts:
    summary, rationale = task_masks(labels, task)
    return LossCounts(int(summary.sum()), int(rationale.sum()), tokens, examples)


class Collator:
    """Dynamic right padding to the longest example of the batch; labels -100 on padding."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
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
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels": labels,
            "task": task,
            "loss_counts": _counts(labels, task, int(attention.sum()), n),
        }


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

    def __init__(
        self, row_tokens: int | None = None, pad_token_id: int = 0, varlen: bool = False, mask_placeholder: bool = True
    ):
        self.row_tokens = row_tokens
        self.pad_token_id = pad_token_id
        self.varlen = varlen
        self.mask_placeholder = mask_placeholder  # see sequence_lengths

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

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = self._rows(features)
        width = max(sum(len(f["input_ids"]) for f in row) for row in rows)
        # numpy arrays filled row by row (converting 32k-token Python lists with torch.tensor took
        # 7 of the collator's 9 ms a step, host time the GPU waited for in small-batch runs)
        shape = (len(rows), width)
        ids = np.full(shape, self.pad_token_id, dtype=np.int64)
        labels = np.full(shape, IGNORE, dtype=np.int64)
        positions = np.empty(shape, dtype=np.int64)
        tasks = np.full(shape, -1, dtype=np.int64)
        for r, row in enumerate(rows):
            lengths = [len(f["input_ids"]) for f in row]
            used = sum(lengths)
            ids[r, :used] = list(chain.from_iterable(f["input_ids"] for f in row))
            labels[r, :used] = list(chain.from_iterable(f["labels"] for f in row))
            starts = np.repeat(np.cumsum([0] + lengths[:-1]), lengths)
            positions[r, :used] = np.arange(used) - starts
            positions[r, used:] = np.arange(width - used)  # row padding: one more sequence of its own
            tasks[r, :used] = np.repeat([f["task"] for f in row], lengths)
        arrays = {"input_ids": ids, "position_ids": positions, "labels": labels, "task": tasks}
        batch: dict[str, Any] = {name: torch.from_numpy(a) for name, a in arrays.items()}
        index = loss_index(batch["labels"], batch["task"], features)
        batch["loss_index"] = index
        n_pred = index.n_pred
        batch["loss_counts"] = LossCounts(
            n_pred, index.flat_index.numel() - n_pred, int(batch["task"].ge(0).sum()), len(features)
        )
        if self.varlen:
            batch.update(sequence_lengths(batch["position_ids"], self.mask_placeholder))
        return batch


def loss_index(labels: torch.Tensor, task: torch.Tensor, features: list[dict[str, Any]]) -> LossIndex:
    """The ``LossIndex`` of a packed batch; a task with examples but no supervised token is an error."""
    width = labels.shape[1]
    index, target = [], []
    for task_id, mask in zip(Task, task_masks(labels, task)):
        rows, cols = mask.nonzero(as_tuple=True)
        if rows.numel() == 0 and any(f["task"] == task_id for f in features):
            raise ValueError(f"task {int(task_id)} has examples in the batch but no supervised token")
        index.append(rows * width + cols)
        target.append(labels[rows, cols + 1])
    supervised = labels[:, 1:].ne(IGNORE)
    return LossIndex(
        keep=supervised.any(dim=0).nonzero().squeeze(-1),
        flat_index=torch.cat(index),
        flat_target=torch.cat(target),
        n_pred=int(index[0].numel()),
    )


def sequence_lengths(position_ids: torch.Tensor, mask_placeholder: bool = True) -> dict[str, Any]:
    """Cumulative sequence lengths of packed rows (flattened) for varlen attention: starts where positions are 0."""
    flat = position_ids.reshape(-1)
    starts = (flat == 0).nonzero().squeeze(-1)
    cu = torch.cat([starts, torch.tensor([flat.numel()])]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    out = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}
    if mask_placeholder:  # False: transformers' check, for a benchmark's comparison
        # Without a mask, transformers' mask preparation reads the position ids back on the host to
        # detect packed sequences (find_packed_sequence_indices: a GPU sync every forward, the
        # step's last one). A 4D mask is passed through unread, and varlen attention ignores it
        # (the lengths above say where sequences are). It is empty, so an attention that did read
        # it would fail instead of attending across examples.
        out["attention_mask"] = torch.zeros((1, 1, 0, 0), dtype=torch.bool)
    return out


def record_groups(examples: Sequence[dict[str, Any]], pair: bool = True) -> list[list[int]]:
    """Indices of adjacent examples of the same record (its summary and rationale examples).

    ``pair=False``: every example is a group of its own (a record's tasks may land in different batches).
    """
    groups: list[list[int]] = []
    for index, example in enumerate(examples):
        if pair and groups and examples[groups[-1][0]]["id"] == example["id"]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class GroupedLengthSampler(Sampler[int]):
    """Seeded, length-grouped order that keeps a record's task examples in one batch (padded batches).

    Records (groups of adjacent examples with the same id) are shuffled, cut into
    mega-batches of 50 batches, sorted by length inside each, so batches hold examples of
    similar length (little padding) and both tasks of a record share a forward pass.
    The order depends only on the seed and the epoch, which makes ``--resume`` exact.
    """

    def __init__(self, examples: Sequence[dict[str, Any]], batch_size: int, seed: int, pair: bool = True):
        self.groups = record_groups(examples, pair)
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


class TokenBudgetBatchSampler:
    """Batches of whole records (both tasks together) holding at most ``max_tokens`` tokens (packed batches).

    By default batch membership is fixed once from the seed (so the number of batches per epoch
    never changes) and only the order of the batches is reshuffled per epoch. ``reshuffle``
    draws the membership anew each epoch; the number of batches stays that of epoch 0 (an
    epoch that packs into more batches merges its two smallest, one with fewer splits its
    largest), so the step count, the schedule and ``--resume`` stay exact. Everything
    depends only on the seed and the epoch. ``pair=False`` lets a record's two examples go
    to different batches. A record longer than the budget gets a batch of its own.
    """

    def __init__(
        self,
        examples: Sequence[dict[str, Any]],
        max_tokens: int,
        seed: int,
        pair: bool = True,
        reshuffle: bool = False,
    ):
        self.groups = record_groups(examples, pair)
        self.sizes = [sum(len(examples[i]["input_ids"]) for i in g) for g in self.groups]
        self.max_tokens, self.seed, self.reshuffle = max_tokens, seed, reshuffle
        self.batches = self._pack(random.Random(seed))
        self.epoch = 0
        self.sampler = self  # accelerate looks for batch_sampler.sampler.set_epoch when it wraps us

    def _pack(self, rng: random.Random) -> list[list[int]]:
        """Batches as lists of group indices, filled in a seeded random order up to the budget."""
        order = list(range(len(self.groups)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for g in order:
            if current and used + self.sizes[g] > self.max_tokens:
                batches.append(current)
                current, used = [], 0
            current.append(g)
            used += self.sizes[g]
        if current:
            batches.append(current)
        return batches

    def _epoch_batches(self) -> list[list[int]]:
        if not self.reshuffle or self.epoch == 0:
            return self.batches
        batches = self._pack(random.Random(f"{self.seed}:membership:{self.epoch}"))
        tokens = lambda batch: sum(self.sizes[g] for g in batch)  # noqa: E731
        while len(batches) > len(self.batches):  # merge the two smallest
            batches.sort(key=tokens)
            batches = [batches[0] + batches[1], *batches[2:]]
        while len(batches) < len(self.batches):  # split the largest (whole records only)
            batches.sort(key=tokens, reverse=True)
            if len(batches[0]) < 2:
                break
            largest = batches.pop(0)
            batches += [largest[: len(largest) // 2], largest[len(largest) // 2 :]]
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._epoch_batches()
        order = list(range(len(batches)))
        random.Random(self.seed * 1000003 + self.epoch).shuffle(order)
        for b in order:
            yield [i for g in batches[b] for i in self.groups[g]]
