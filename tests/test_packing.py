"""Padding-free packing: same per-task losses as unpacked batches; attention never crosses examples."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_and_tokenizer

from distil_cli.plugins.choosing import choose_formatter
from distil_cli.train.batching import Collator, PackingCollator, TokenBudgetBatchSampler
from distil_cli.train.examples import build_examples
from distil_cli.train.loss import losses_to_parts, multitask_loss, supervised_token_losses


@pytest.fixture(scope="module")
def setup():
    model, tokenizer = tiny_model_and_tokenizer()
    records = [
        {
            "id": f"r{i}",
            "lang": lang,
            "input": "Fever and cough. " * (i + 1),
            "output": f"Pneumonia {i}.",
            "rationale": "Fever; cough; " * (i % 3 + 1),
        }
        for i, lang in enumerate(["en", "fr", "es", "pt", "en"])
    ]
    examples = build_examples(records, tokenizer, choose_formatter(tokenizer), "distill", 256, 64).examples
    return model, tokenizer, examples


def _unpacked(model, examples, alpha):
    batch = Collator(pad_token_id=0)(examples)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return multitask_loss(logits, batch["labels"], batch["task"], alpha)


def test_packed_losses_equal_unpacked(setup):
    model, _, examples = setup
    reference = _unpacked(model, examples, 0.3)
    packed = PackingCollator()(examples)
    labels = packed.pop("labels")
    task = packed.pop("task")
    packed.pop("loss_index")
    assert packed["position_ids"][0, : len(examples[0]["input_ids"]) + 1].tolist()[-1] == 0  # restarts per example
    losses, _ = supervised_token_losses(model, packed, labels)
    parts = losses_to_parts(losses, labels, task, 0.3)
    for name in ("loss", "loss_pred", "loss_expl"):
        assert getattr(parts, name).item() == pytest.approx(getattr(reference, name).item(), rel=1e-5, abs=1e-6), name
    assert int(parts.n_pred) == int(reference.n_pred) and int(parts.n_expl) == int(reference.n_expl)


def test_logits_only_where_supervised_equal_full_logits(setup):
    model, _, examples = setup
    batch = Collator(pad_token_id=0)(examples)
    reference = multitask_loss(
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
        batch["labels"],
        batch["task"],
        0.6,
    )
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    losses, _ = supervised_token_losses(model, inputs, batch["labels"])
    parts = losses_to_parts(losses, batch["labels"], batch["task"], 0.6)
    assert parts.loss.item() == pytest.approx(reference.loss.item(), rel=1e-5)


def test_attention_never_crosses_examples(setup):
    model, _, examples = setup
    first, second = dict(examples[0]), examples[1]
    packed = PackingCollator()([first, second])
    changed = dict(first)
    changed["input_ids"] = [(t + 7) % 1000 + 10 for t in first["input_ids"]]
    packed_changed = PackingCollator()([changed, second])
    n = len(first["input_ids"])
    with torch.no_grad():
        # use_cache=False as in training: with a cache transformers would not derive the packed mask
        a = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0, n:]
        b = model(
            input_ids=packed_changed["input_ids"], position_ids=packed_changed["position_ids"], use_cache=False
        ).logits[0, n:]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_packed_gradients_equal_unpacked(setup):
    model, _, examples = setup
    model.zero_grad()
    _unpacked(model, examples, 0.5).loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    packed = PackingCollator()(examples)
    labels, task = packed.pop("labels"), packed.pop("task")
    packed.pop("loss_index")
    losses, _ = supervised_token_losses(model, packed, labels)
    losses_to_parts(losses, labels, task, 0.5).loss.backward()
    for name, grad in reference.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-6)
    model.zero_grad()


def test_token_budget_batches_keep_pairs_and_are_stable(setup):
    _, _, examples = setup
    sampler = TokenBudgetBatchSampler(examples, 300, seed=3)
    batches = list(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(examples)))
    for batch in batches:
        ids = [examples[i]["id"] for i in batch]
        assert all(ids.count(x) == 2 for x in ids)
        assert sum(len(examples[i]["input_ids"]) for i in batch) <= 300 or len(set(ids)) == 1
    sampler.set_epoch(1)
    assert sorted(map(tuple, sampler)) == sorted(map(tuple, batches)) and len(sampler) == len(batches)


def test_supervised_only_logits_path_is_found_through_peft(setup):
    from peft import LoraConfig, get_peft_model

    from distil_cli.train.loss import accepts_logits_to_keep

    model, _, _ = setup
    assert accepts_logits_to_keep(model)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    assert accepts_logits_to_keep(wrapped)  # finishes: peft's base_model chain points back to itself
    wrapped.unload()
