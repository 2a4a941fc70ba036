"""The multitask loss as a pure function, checked against an independent computation."""

from __future__ import annotations

import math

import pytest
import torch

from distil_cli.train.batching import Collator, GroupedLengthSampler, LossCounts
from distil_cli.train.examples import IGNORE
from distil_cli.train.loss import multitask_loss, task_token_counts


def _batch(seed=0, vocab=11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 7, vocab, generator=g)
    labels = torch.randint(0, vocab, (4, 7), generator=g)
    labels[:, :3] = IGNORE  # prompts
    labels[1, 5:] = IGNORE  # padding
    labels[3, 4:] = IGNORE
    task = torch.tensor([0, 1, 0, 1])
    return logits, labels, task


def _independent(logits, labels, task, alpha):
    """Plain-Python per-task mean of next-token cross-entropy."""
    totals = {0: [0.0, 0], 1: [0.0, 0]}
    for b in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            target = int(labels[b, t])
            if target == IGNORE:
                continue
            row = logits[b, t - 1].double()
            nll = -(row[target] - torch.logsumexp(row, 0)).item()
            totals[int(task[b])][0] += nll
            totals[int(task[b])][1] += 1
    pred = totals[0][0] / totals[0][1]
    expl = totals[1][0] / totals[1][1]
    return alpha * pred + (1 - alpha) * expl, pred, expl


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_matches_independent_formula(alpha):
    logits, labels, task = _batch()
    parts = multitask_loss(logits, labels, task, alpha)
    expected, pred, expl = _independent(logits, labels, task, alpha)
    assert parts.loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts.loss_pred.item() == pytest.approx(pred, rel=1e-5)
    assert parts.loss_expl.item() == pytest.approx(expl, rel=1e-5)


def test_alpha_one_equals_standard_and_zero_equals_rationale():
    logits, labels, task = _batch(1)
    only_pred = task == 0
    standard = multitask_loss(logits[only_pred], labels[only_pred], task[only_pred], 1.0).loss
    assert multitask_loss(logits, labels, task, 1.0).loss.item() == pytest.approx(standard.item(), rel=1e-6)
    only_expl = task == 1
    rationale = multitask_loss(logits[only_expl], labels[only_expl], torch.zeros(2, dtype=torch.long), 1.0).loss
    assert multitask_loss(logits, labels, task, 0.0).loss.item() == pytest.approx(rationale.item(), rel=1e-6)


def test_identical_tasks_give_the_same_loss_for_any_alpha():
    logits, labels, _ = _batch(2)
    logits = torch.cat([logits[:2], logits[:2]])
    labels = torch.cat([labels[:2], labels[:2]])
    task = torch.tensor([0, 0, 1, 1])
    values = [multitask_loss(logits, labels, task, a).loss.item() for a in (0.0, 0.4, 1.0)]
    assert values == pytest.approx([values[0]] * 3, rel=1e-6)


def test_task_without_supervised_tokens_rejected():
    logits, labels, task = _batch(3)
    labels[task == 1] = IGNORE
    with pytest.raises(ValueError, match="task 1 has examples in the batch but no supervised token"):
        multitask_loss(logits, labels, task, 0.5)


def test_gradient_accumulation_window_equals_full_batch():
    """Summing micro-batch losses normalised by window counts == the loss of the whole window."""
    logits, labels, task = _batch(4)
    full = multitask_loss(logits, labels, task, 0.7).loss
    micro = [
        {"labels": labels[:2], "task": task[:2], "logits": logits[:2]},
        {"labels": labels[2:], "task": task[2:], "logits": logits[2:]},
    ]
    counts = task_token_counts(micro)
    summed = sum(multitask_loss(m["logits"], m["labels"], m["task"], 0.7, counts).loss for m in micro)
    assert summed.item() == pytest.approx(full.item(), rel=1e-6)
    # without window counts (the naive per-micro-batch mean) the value differs: the test can fail
    naive = sum(multitask_loss(m["logits"], m["labels"], m["task"], 0.7).loss for m in micro) / 2
    assert not math.isclose(naive.item(), full.item(), rel_tol=1e-4)


def test_collator_pads_right_and_masks_padding():
    features = [
        {"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7], "task": 0},
        {"input_ids": [5, 6, 7, 8, 9], "labels": [IGNORE, IGNORE, IGNORE, 8, 9], "task": 1},
    ]
    batch = Collator(pad_token_id=2)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 2, 2], [5, 6, 7, 8, 9]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, IGNORE], [IGNORE, IGNORE, IGNORE, 8, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["task"].tolist() == [0, 1]
    assert batch["loss_counts"] == LossCounts(2, 2, 8, 2)  # supervised per task, useful tokens, examples


def test_sampler_keeps_pairs_together_and_is_seeded():
    examples = []
    for i in range(20):
        for task in (0, 1):
            examples.append({"id": f"r{i}", "task": task, "input_ids": [1] * (10 + (i * 7) % 13 + task)})
    sampler = GroupedLengthSampler(examples, batch_size=4, seed=1)
    order = list(sampler)
    assert sorted(order) == list(range(40))
    for start in range(0, 40, 4):
        batch = [examples[i] for i in order[start : start + 4]]
        ids = [e["id"] for e in batch]
        assert all(ids.count(x) == 2 for x in ids)  # both tasks of each record in the same batch
    assert order == list(GroupedLengthSampler(examples, 4, 1))
    sampler.set_epoch(1)
    assert list(sampler) != order
