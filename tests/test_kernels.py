"""The fast training paths: varlen attention over packed rows, the collator's loss index, fused CE plumbing.

The CUDA kernels themselves (torch's varlen flash attention, Liger) are checked by
tests/test_cuda_kernels.py on a GPU; here the same code paths run with their CPU
stand-ins (SDPA per sequence, an exact linear + cross-entropy), so everything around
the kernels - sequence lengths, flattening, GQA, the hook on the decoder, the per-task
split - is tested in CI.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model_and_tokenizer

from distil_cli.errors import ConfigError
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.train import kernels, linear_ce
from distil_cli.train.batching import Collator, LossCounts, PackingCollator, sequence_lengths
from distil_cli.train.config import DistilTrainingArguments
from distil_cli.train.examples import IGNORE, build_examples
from distil_cli.train.loss import multitask_loss
from distil_cli.train.trainer import DistilTrainer


@pytest.fixture(scope="module")
def setup():
    model, tokenizer = tiny_model_and_tokenizer()
    records = [
        {
            "id": f"r{i}",
            "lang": "en",
            "input": "Fever and cough since Monday. " * (i + 2),
            "output": f"Pneumonia {i}, treated.",
            "rationale": "Fever; cough; crackles. " * (i % 3 + 1),
        }
        for i in range(6)
    ]
    examples = build_examples(records, tokenizer, choose_formatter(tokenizer), "distill", 256, 64).examples
    return model, tokenizer, examples


def _reference(model, examples, alpha):
    batch = Collator(pad_token_id=0)(examples)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return multitask_loss(logits, batch["labels"], batch["task"], alpha)


def _trainer(model, tmp_path, **kw):
    args = DistilTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], alpha=0.3, packing=True, save_strategy="no", **kw
    )
    return DistilTrainer(model=model, args=args, train_dataset=[], data_collator=Collator(0))


def test_sequence_lengths_start_where_positions_restart():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]])
    out = sequence_lengths(positions)
    assert out["cu_seq_lens_q"].tolist() == [0, 3, 5, 6, 10, 12]
    assert out["cu_seq_lens_q"].dtype == torch.int32
    assert out["max_length_q"] == 4 and out["max_length_k"] == 4
    assert out["attention_mask"].shape == (1, 1, 0, 0)  # passed through by transformers, read by nothing


def test_loss_index_points_at_every_supervised_token(setup):
    _, _, examples = setup
    batch = PackingCollator(row_tokens=300, pad_token_id=0)(examples)
    index, labels, task = batch["loss_index"], batch["labels"], batch["task"]
    assert labels.shape[0] > 1  # several rows, with padding
    width = labels.shape[1]
    flat = index.flat_index
    rows, cols = flat // width, flat % width
    assert torch.equal(labels[rows, cols + 1], index.flat_target)
    assert (index.flat_target != IGNORE).all()
    n_pred = index.n_pred
    assert (task[rows[:n_pred], cols[:n_pred] + 1] == 0).all() and (task[rows[n_pred:], cols[n_pred:] + 1] == 1).all()
    supervised = labels[:, 1:].ne(IGNORE)
    assert flat.numel() == int(supervised.sum())
    assert index.keep.tolist() == supervised.any(dim=0).nonzero().squeeze(-1).tolist()
    n_expl = flat.numel() - n_pred
    assert batch["loss_counts"] == LossCounts(n_pred, n_expl, sum(len(e["input_ids"]) for e in examples), len(examples))


def test_loss_index_rejects_a_task_without_supervised_tokens(setup):
    _, _, examples = setup
    broken = dict(examples[1])
    broken["labels"] = [IGNORE] * len(broken["labels"])
    with pytest.raises(ValueError, match="task 1 has examples"):
        PackingCollator()([examples[0], broken])


@pytest.mark.parametrize("row_tokens", [None, 300])
def test_varlen_packed_training_loss_equals_unpacked(setup, tmp_path, monkeypatch, row_tokens):
    model, _, examples = setup
    reference = _reference(model, examples, 0.3)
    varlen = copy.deepcopy(model).train()  # training mode: the step's counts are accumulated
    varlen.set_attn_implementation(kernels.register_varlen())
    calls = []
    original = kernels._varlen_reference
    monkeypatch.setattr(kernels, "_varlen_reference", lambda *a: calls.append(1) or original(*a))
    trainer = _trainer(varlen, tmp_path)
    counted = []
    trainer.on_counts = counted.append  # the hook `distil bench train` counts tokens with
    batch = PackingCollator(row_tokens, pad_token_id=0, varlen=True)(examples)
    with torch.no_grad():
        loss = trainer.compute_loss(varlen, batch)
    assert calls and len(calls) == varlen.config.num_hidden_layers  # every layer took the varlen path
    assert loss.item() == pytest.approx(reference.loss.item(), rel=1e-5)
    assert [(c.n_pred, c.n_expl) for c in counted] == [(int(reference.n_pred), int(reference.n_expl))]


def test_varlen_reaches_attention_through_peft(setup, tmp_path, monkeypatch):
    """LoRA runs keep the varlen path: peft passes the sequence lengths on to the attention."""
    from peft import LoraConfig, get_peft_model

    model, _, examples = setup
    reference = _reference(model, examples, 0.3)
    base = copy.deepcopy(model).train()
    base.set_attn_implementation(kernels.register_varlen())
    wrapped = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    calls = []
    original = kernels._varlen_reference
    monkeypatch.setattr(kernels, "_varlen_reference", lambda *a: calls.append(1) or original(*a))
    trainer = _trainer(wrapped, tmp_path)
    with torch.no_grad():
        loss = trainer.compute_loss(wrapped, PackingCollator(None, pad_token_id=0, varlen=True)(examples))
    assert len(calls) == model.config.num_hidden_layers
    assert loss.item() == pytest.approx(reference.loss.item(), rel=1e-5)  # LoRA B starts at zero


def test_varlen_without_sequence_lengths_is_sdpa_with_its_mask(setup):
    """Generation and evaluation (a padding mask, no sequence lengths) go through SDPA unchanged."""
    model, tokenizer, _ = setup
    varlen = copy.deepcopy(model)
    varlen.set_attn_implementation(kernels.register_varlen())
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = varlen(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(a[0, 2:], b[0, 2:])
    torch.testing.assert_close(a[1], b[1])


def test_varlen_finds_padding_free_sequences_from_their_positions(setup):
    """A padding-free row with positions only (TRL's collator, no sequence lengths): each sequence
    attends to itself alone, as when it runs by itself."""
    model, tokenizer, _ = setup
    varlen = copy.deepcopy(model)
    varlen.set_attn_implementation(kernels.register_varlen())
    first, second = [5, 6, 7, 8, 9], [10, 11, 12]
    packed = torch.tensor([first + second])
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]])
    with torch.no_grad():
        got = varlen(input_ids=packed, position_ids=positions).logits[0]
        alone = [model(input_ids=torch.tensor([seq])).logits[0] for seq in (first, second)]
    torch.testing.assert_close(got, torch.cat(alone))
    assert kernels._lengths_from_positions(positions)[0].tolist() == [0, 5, 8]
    assert kernels._lengths_from_positions(torch.tensor([[3, 4, 0]]))[0] is None  # not a packed row


@pytest.mark.parametrize("budget", [100000, 150])
def test_packed_validation_loss_equals_padded(setup, tmp_path, budget):
    """Evaluation's teacher-forced per-task loss: packed under the token budget (one batch, or one
    example per batch) or padded in batches of 16, the same numbers."""
    model, _, examples = setup

    def losses(packing: bool) -> dict[str, float]:
        args = DistilTrainingArguments(
            output_dir=str(tmp_path),
            use_cpu=True,
            report_to=[],
            packing=packing,
            tokens_per_batch=budget,
            save_strategy="no",
        )
        trainer = DistilTrainer(
            model=model, args=args, train_dataset=[], data_collator=Collator(0), validation_examples=examples
        )
        return trainer._validation_losses(packed=packing)  # packed is the default with varlen (GPU)

    padded, packed = losses(False), losses(True)
    assert set(padded) == {"loss_pred", "loss_expl"} and padded["loss_pred"] > 0
    assert packed == pytest.approx(padded, abs=2e-4)


def test_fused_ce_path_equals_logits_path(setup, tmp_path, monkeypatch):
    """fused_ce: hidden states from the decoder hook, split per task; Liger replaced by exact math on CPU."""
    model, _, examples = setup
    reference = _reference(model, examples, 0.3)

    def exact(hidden, weight, targets, chunk_rows=2048, sync_free=True):
        return F.cross_entropy(hidden.float() @ weight.float().T, targets, reduction="sum")

    monkeypatch.setattr(linear_ce, "linear_ce_sum", exact)
    trainer = _trainer(model, tmp_path, fused_ce=True)
    batch = PackingCollator(300, pad_token_id=0)(examples)
    loss = trainer.compute_loss(model, batch)
    assert loss.item() == pytest.approx(reference.loss.item(), rel=1e-5)
    loss.backward()  # gradients reach the output layer through the fused path
    assert model.get_output_embeddings().weight.grad is not None
    model.zero_grad()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the defaults checked here are the CPU's")
def test_cpu_defaults_and_explicit_requests(setup):
    model, _, _ = setup
    assert kernels.resolve_attention(None, model.config, packing=True) is None  # CPU: transformers' SDPA
    assert kernels.resolve_attention("sdpa", model.config, packing=True) == "sdpa"
    with pytest.raises(ConfigError, match="varlen"):
        kernels.resolve_attention("varlen", model.config, packing=True)
    assert kernels.resolve_kernels("auto", model) == "none"
    assert kernels.resolve_kernels("none", model) == "none"
    with pytest.raises(ConfigError, match="liger"):
        kernels.resolve_kernels("liger", model)


def _gemma3(vocab: int, window: int):
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, vocab_size=vocab, sliding_window=window, final_logit_softcapping=None,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()


def test_varlen_with_sliding_windows_equals_each_example_alone(setup, tmp_path, monkeypatch):
    """Gemma 3's sliding layers under varlen (packed rows, a window per layer): the loss of each example
    alone with transformers' own sliding-window mask; the window is short enough here to matter."""
    _, tokenizer, examples = setup
    model = _gemma3(len(tokenizer), window=8)
    reference = _reference(model, examples, 0.3)
    full = _gemma3(len(tokenizer), window=4096)
    full.load_state_dict(model.state_dict())
    assert _reference(full, examples, 0.3).loss.item() != pytest.approx(reference.loss.item(), rel=1e-4)
    varlen = copy.deepcopy(model).train()
    varlen.set_attn_implementation(kernels.register_varlen())
    windows = []
    original = kernels._varlen_reference
    monkeypatch.setattr(kernels, "_varlen_reference", lambda *a: windows.append(a[-1]) or original(*a))
    with torch.no_grad():
        loss = _trainer(varlen, tmp_path).compute_loss(varlen, PackingCollator(None, 0, varlen=True)(examples))
    assert windows == [8, None, 8]  # the sliding layers got their window, the full one none
    assert loss.item() == pytest.approx(reference.loss.item(), rel=1e-5)


def test_varlen_reference_window_sees_itself_and_the_keys_before_it():
    """window w: a query sees itself and the w - 1 keys before it (keys longer than the queries: the
    queries are the last positions), against attention written out."""
    from distil_cli.attention import varlen_reference

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 8), torch.randn(7, 2, 8), torch.randn(7, 2, 8)
    out = varlen_reference(q, k, v, torch.tensor([0, 3]), torch.tensor([0, 7]), True, None, window=3)
    for i in range(3):
        pos = 4 + i  # query i sits at key position 4 + i
        keys = list(range(pos - 2, pos + 1))
        weights = torch.softmax(torch.einsum("hd,khd->hk", q[i], k[keys]) / 8**0.5, dim=-1)
        assert torch.allclose(out[i], torch.einsum("hk,khd->hd", weights, v[keys]), atol=1e-6)


def test_sliding_window_models_get_varlen_where_torch_has_windows(setup, monkeypatch):
    """On a GPU whose torch has windows a sliding-window model gets varlen by default, as full-attention models
    do; without windows in torch it gets SDPA by default, and asking for varlen is a clear error."""
    model, tokenizer, _ = setup
    gemma = _gemma3(len(tokenizer), window=8).config
    monkeypatch.setattr(kernels, "varlen_available", lambda: True)
    monkeypatch.setattr(kernels, "_varlen_call", lambda: (None, {}, True, True))
    assert kernels.resolve_attention(None, gemma, packing=True) == kernels.VARLEN
    assert kernels.resolve_attention("varlen", gemma, packing=True) == kernels.VARLEN
    assert kernels.resolve_attention(None, model.config, packing=True) == kernels.VARLEN
    assert kernels.resolve_attention(None, gemma, packing=False) is None
    monkeypatch.setattr(kernels, "_varlen_call", lambda: (None, {}, True, False))
    assert kernels.resolve_attention(None, gemma, packing=True) is None
    assert kernels.resolve_attention(None, model.config, packing=True) == kernels.VARLEN
    with pytest.raises(ConfigError, match="sliding-window attention, which this torch's varlen attention lacks"):
        kernels.resolve_attention("varlen", gemma, packing=True)


def test_liger_module_patches_are_put_back_except_a_rope_that_leaves_single_positions_to_transformers():
    """contain_module_patches: classes a patch swapped into a modeling module are restored (models loaded
    later are plain); its RoPE stays for many positions and hands one-position calls (decode steps, where
    Liger's kernel rotated the wrong rows of a batch) to the module's own; patching twice keeps the own."""
    import types

    from distil_cli.train.liger_patches import contain_module_patches

    calls = []

    def own_rope(q, k, cos, sin, unsqueeze_dim=1):
        calls.append(("own", q.shape[-2]))
        return q, k

    def kernel_rope(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
        calls.append(("kernel", q.shape[-2]))
        return q, k

    class Norm:
        pass

    module = types.SimpleNamespace(apply_rotary_pos_emb=own_rope, Gemma3RMSNorm=Norm, CONSTANT=1)
    for _ in range(2):  # a second model patched in the same process
        before = dict(vars(module))
        module.apply_rotary_pos_emb, module.Gemma3RMSNorm, module.added = kernel_rope, object, "new"
        assert contain_module_patches(module, before) == ["Gemma3RMSNorm"]
        assert module.Gemma3RMSNorm is Norm and module.CONSTANT == 1
    rope = module.apply_rotary_pos_emb
    assert rope.own_rope is own_rope and rope.kernel_rope is kernel_rope
    q, k = torch.zeros(2, 4, 1, 8), torch.zeros(2, 1, 1, 8)
    assert rope(q, k, None, None)[0] is q
    rope(torch.zeros(2, 4, 5, 8), torch.zeros(2, 1, 5, 8), None, None)
    assert calls == [("own", 1), ("kernel", 5)]
