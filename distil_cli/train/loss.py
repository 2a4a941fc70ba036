"""The objective of distilling step-by-step, in one place.

    loss = alpha * loss_pred + (1 - alpha) * loss_expl

``loss_pred`` is the summary task's loss and ``loss_expl`` the rationale task's (the
paper's names, kept in logs): each the mean next-token cross-entropy over its own
supervised tokens. ``standard`` training is ``alpha = 1`` on summary examples only.

The front door is ``parts_from_sums`` (pure: per-task loss sums and token counts in, the
objective out); ``multitask_loss`` is the same from logits. The trainer computes the
per-task sums without materialising more logits than needed: ``supervised_token_losses``
(logits only where a token is supervised) or ``fused_supervised_sums`` (fused linear
cross-entropy on Liger's kernel, no logits at all: ``train.linear_ce``).

Gradient accumulation: pass ``counts``, the per-task supervised tokens of the whole
accumulation window (and all ranks); summing the returned ``loss`` over the window's
micro-batches then gives exactly the per-task means of the window.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from distil_cli.train.examples import IGNORE, task_masks


@dataclass
class LossParts:
    loss: torch.Tensor
    loss_pred: torch.Tensor
    loss_expl: torch.Tensor
    sum_pred: torch.Tensor
    sum_expl: torch.Tensor
    n_pred: torch.Tensor
    n_expl: torch.Tensor


def parts_from_sums(sums, ns, alpha: float, counts: torch.Tensor | None = None) -> LossParts:
    """The multitask loss from per-task loss sums and supervised token counts (tensors or ints).

    ``counts`` (per-task tokens of the whole accumulation window) replace ``ns`` as the
    denominators when given. A task absent from the batch contributes 0.
    """
    denominators = counts if counts is not None else ns
    means = [s / (d.clamp(min=1) if torch.is_tensor(d) else max(d, 1)) for s, d in zip(sums, denominators)]
    loss = alpha * means[0] + (1.0 - alpha) * means[1]
    return LossParts(loss, means[0], means[1], sums[0].detach(), sums[1].detach(), ns[0], ns[1])


def losses_to_parts(
    losses: torch.Tensor,
    labels: torch.Tensor,
    task: torch.Tensor,
    alpha: float,
    counts: torch.Tensor | None = None,
    check: bool = True,
) -> LossParts:
    """The objective from per-token losses [B, T-1] (next-token positions) and the batch's labels.

    ``check`` raises when a task has examples but no supervised token, whose mean would be
    undefined (a host sync; packed batches are checked by their collator instead).
    """
    sums, ns = [], []
    for task_id, mask in enumerate(task_masks(labels, task)):
        n = mask.sum()
        if check and bool((task == task_id).any()) and int(n) == 0:
            raise ValueError(f"task {task_id} has examples in the batch but no supervised token")
        sums.append((losses * mask).sum())
        ns.append(n)
    return parts_from_sums(sums, ns, alpha, counts)


def multitask_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    task: torch.Tensor,
    alpha: float,
    counts: torch.Tensor | None = None,
) -> LossParts:
    """``alpha * loss_pred + (1 - alpha) * loss_expl`` from full logits [B, T, V].

    ``task`` gives the task per example [B] or per token [B, T] (packed rows).
    """
    return losses_to_parts(token_losses(logits, labels), labels, task, alpha, counts)


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy of next-token prediction [B, T-1] (0 where the label is ignored)."""
    shift_logits = logits[:, :-1, :]
    shift_labels = labels[:, 1:]
    losses = chunked_cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1))
    return losses.view(shift_labels.shape)


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


def task_token_counts(batches: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """[summary tokens, rationale tokens] supervised in these batches (the accumulation window)."""
    device = batches[0]["labels"].device if batches else "cpu"
    counts = torch.zeros(2, dtype=torch.long, device=device)
    for batch in batches:
        for task_id, mask in enumerate(task_masks(batch["labels"], batch["task"])):
            counts[task_id] += mask.sum()
    return counts


def accepts_logits_to_keep(model) -> bool:
    """Whether the model, through DDP/peft wrappers, takes ``logits_to_keep``; cached per model object."""
    if model not in _KEEPS_LOGITS:
        import inspect

        inner, found, seen = model, False, set()
        while inner is not None and id(inner) not in seen and not found:  # base_model can point to itself
            seen.add(id(inner))
            found = "logits_to_keep" in inspect.signature(inner.forward).parameters
            inner = next((getattr(inner, a) for a in ("module", "model", "base_model") if hasattr(inner, a)), None)
        _KEEPS_LOGITS[model] = found
    return _KEEPS_LOGITS[model]


_KEEPS_LOGITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def supervised_token_losses(model, inputs: dict, labels: torch.Tensor, positions: torch.Tensor | None = None):
    """(per-token losses [B, T-1], model outputs), with logits only where a token is supervised.

    ``logits_to_keep`` (a tensor of positions) makes the model apply its LM head to the
    positions that predict a supervised token only (any row's, for padded batches): the
    prompt's logits, most of a long clinical input, are never computed. Models without
    that argument fall back to full logits. The loss is float32, computed chunk by chunk.
    ``positions`` (from the collator) saves the GPU->host sync of finding them here.
    """
    shift_labels = labels[:, 1:]
    if accepts_logits_to_keep(model):
        if positions is None:
            positions = shift_labels.ne(IGNORE).any(dim=0).nonzero().squeeze(-1)
        outputs = model(**inputs, logits_to_keep=positions, use_cache=False)
        logits = outputs.logits  # [B, K, V] for the kept positions
        targets = shift_labels[:, positions]
        kept = chunked_cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).view(targets.shape)
        losses = torch.zeros(shift_labels.shape, dtype=kept.dtype, device=kept.device)
        losses[:, positions] = kept
        return losses, outputs
    outputs = model(**inputs, use_cache=False)
    return token_losses(outputs.logits, labels), outputs


def fused_supervised_sums(
    model, inputs: dict, index, dtype: torch.dtype | None = None, sync_free: bool = True
) -> tuple[list, Any]:
    """Per-task sums of token losses by fused linear cross-entropy (no logits at all, no host sync).

    ``index`` is the collator's ``LossIndex``. The decoder's final hidden states are taken
    with a forward hook (so DDP and peft wrappers still run their forward); the model's own
    LM head is asked for one position only. ``dtype``: the mixed-precision dtype. The loss
    runs outside the model's autocast forward, so hidden states and weight are cast here
    (float32 would mean float32 GEMMs). ``sync_free=False``: Liger's own function (a benchmark's
    comparison).
    """
    from accelerate.utils import extract_model_from_parallel

    from distil_cli.train.linear_ce import linear_ce_sum

    base = extract_model_from_parallel(model)  # DDP, torch.compile
    if hasattr(base, "get_base_model"):  # peft
        base = base.get_base_model()
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        captured["hidden"] = output[0]

    handle = base.get_decoder().register_forward_hook(hook)
    try:
        outputs = model(**inputs, logits_to_keep=1, use_cache=False)
    finally:
        handle.remove()
    hidden = captured["hidden"]
    weight = base.get_output_embeddings().weight
    if dtype is None and torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
    if dtype is not None:
        hidden, weight = hidden.to(dtype), weight.to(dtype)
    rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index.flat_index)
    split, targets = index.n_pred, index.flat_target
    sums = [
        linear_ce_sum(rows[:split], weight, targets[:split], sync_free=sync_free),
        linear_ce_sum(rows[split:], weight, targets[split:], sync_free=sync_free),
    ]
    return sums, outputs
