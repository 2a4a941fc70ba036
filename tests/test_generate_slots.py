"""Slot generation (packed prefill, slot KV cache, continuous refill) gives generate()'s tokens.

On the CPU the attention runs as per-row SDPA in float32, so greedy tokens must be *equal* to
transformers' one-prompt-at-a-time ``generate``; the CUDA kernel path is checked in
tests/test_cuda_kernels.py.
"""

from __future__ import annotations

import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from distil_cli.errors import ConfigError
from distil_cli.generate.batched import choose_engine
from distil_cli.generate.slots import generate_slots

STOPS = [2, 7]


def _model(kind: str):
    torch.manual_seed(0)
    shape = dict(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as in SmolLM2 and Qwen
        initializer_range=0.5,  # peaked logits: no near-ties between the top tokens
        max_position_embeddings=512,
    )
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**shape)).eval()
    if kind == "gemma3":  # Gemma 3's text model: sliding-window layers (here of 5 tokens) around a global one
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        # untied: with tied, scaled embeddings a random Gemma repeats its last token, whatever the window;
        # so, 12 of the 13 test prompts continue otherwise with a window of 1,000
        layers = ["sliding_attention", "full_attention", "sliding_attention"]
        config = Gemma3TextConfig(**{**shape, "num_hidden_layers": 3}, head_dim=16, query_pre_attn_scalar=16,
                                  sliding_window=5, layer_types=layers, tie_word_embeddings=False)  # fmt: skip
        return Gemma3ForCausalLM(config).eval()
    return LlamaForCausalLM(LlamaConfig(**shape)).eval()


def _prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(10, 300) for _ in range(rng.randint(3, 40))] for _ in range(n)]


def _reference(model, prompts, max_new, **options) -> list[list[int]]:
    out = []
    for p in prompts:
        row = model.generate(torch.tensor([p]), max_new_tokens=max_new, eos_token_id=STOPS, pad_token_id=0, **options)[
            0, len(p) :
        ].tolist()
        cut = next((i for i, t in enumerate(row) if t in STOPS), None)
        out.append(row if cut is None else row[: cut + 1])
    return out


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["llama", "qwen2", "gemma3"])
@pytest.mark.parametrize("slots", [1, 4, 32])
@pytest.mark.parametrize("decode", ["exact", "padded"])
def test_greedy_tokens_equal_one_by_one_generate(kind, slots, decode):
    """``padded`` is the CUDA-graph path without the graph: rows padded to a bucket with the scratch slot."""
    model = _model(kind)
    prompts = _prompts(13)
    expected = _reference(model, prompts, 20, do_sample=False)
    finished = []
    done = lambda i, t: finished.extend(i)  # noqa: E731
    got = generate_slots(model, prompts, STOPS, 20, slots=slots, on_done=done, decode=decode)
    assert got == expected
    assert any(t[-1] in STOPS for t in got) and any(len(t) == 20 for t in got)  # both ways of ending occur
    assert sorted(finished) == list(range(13))  # every prompt handed back exactly once


def test_a_lora_model_generates_through_slots():
    from peft import LoraConfig, get_peft_model

    model = _model("llama")
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.eval()
    prompts = _prompts(5, seed=4)
    assert generate_slots(lora, prompts, STOPS, 12, slots=2) == _reference(lora, prompts, 12, do_sample=False)


def test_small_prefill_budget_and_sparse_checks_change_nothing():
    model = _model("llama")
    prompts = _prompts(9, seed=3)
    expected = generate_slots(model, prompts, STOPS, 16, slots=3)
    assert generate_slots(model, prompts, STOPS, 16, slots=3, prefill_tokens=8, check_every=1) == expected
    assert generate_slots(model, prompts, STOPS, 16, slots=3, check_every=64) == expected


@pytest.mark.parametrize("decode", ["exact", "padded"])
def test_repetition_penalty_and_min_new_tokens_match_generate(decode):
    model = _model("llama")
    prompts = _prompts(6, seed=1)
    expected = _reference(model, prompts, 12, do_sample=False, repetition_penalty=1.7, min_new_tokens=10)
    options = dict(repetition_penalty=1.7, min_new_tokens=10, decode=decode)
    got = generate_slots(model, prompts, STOPS, 12, slots=4, **options)
    assert got == expected
    assert all(len(t) >= 10 for t in got)


def test_top_p_near_zero_is_greedy_and_sampling_uses_the_vocabulary():
    model = _model("llama")
    prompts = _prompts(5, seed=2)
    greedy = generate_slots(model, prompts, STOPS, 10, slots=2)
    torch.manual_seed(1)
    assert generate_slots(model, prompts, STOPS, 10, slots=2, temperature=1.0, top_p=1e-6) == greedy
    torch.manual_seed(1)
    sampled = generate_slots(model, prompts, STOPS, 10, slots=2, temperature=5.0)
    assert sampled != greedy and all(0 <= t < 300 for row in sampled for t in row)


def test_sampling_keeps_only_the_top_k_tokens_as_generate_does():
    from distil_cli.generate.picking import sample as _sample

    logits = torch.tensor([[5.0, 4.0, 3.0, -1.0, -2.0]]).repeat(400, 1)
    torch.manual_seed(0)
    picked = _sample(logits, top_p=1.0, top_k=2)
    assert set(picked.tolist()) == {0, 1}
    picked = _sample(logits, top_p=0.5, top_k=0)  # the top token alone holds more than half
    assert set(picked.tolist()) == {0}


def test_padded_buckets_shrink_as_rows_finish_and_the_scratch_slot_stays_in_bounds(monkeypatch):
    """40 slots decode in buckets of 40, 32 and 16 rows as the prompts run out; the padding rows
    write to the scratch slot, whose position is clamped to the cache width (a long tail of
    padded steps would otherwise index past it)."""
    from distil_cli.generate import slot_decode as engine

    model = _model("llama")
    prompts = _prompts(70, seed=5)
    monkeypatch.setattr(engine, "MIN_BUCKET", 16)  # 128 by default: a model this small would need 128+ slots
    seen: list[int] = []
    original = engine.Decoder.set_rows

    def spy(self, active):
        original(self, active)
        seen.append(self.bucket)

    monkeypatch.setattr(engine.Decoder, "set_rows", spy)
    got = generate_slots(model, prompts, STOPS, 24, slots=40, decode="padded", check_every=1)
    assert got == generate_slots(model, prompts, STOPS, 24, slots=40, decode="exact")
    assert {40, 32, 16} <= set(seen)
    with pytest.raises(ValueError, match="decode must be"):
        generate_slots(model, prompts[:2], STOPS, 4, slots=2, decode="fast")


def test_a_failed_graph_capture_decodes_eagerly_with_a_warning(caplog):
    """Here the capture cannot work (no CUDA): the run must go on padded and eager, tokens unchanged."""
    model = _model("qwen2")
    prompts = _prompts(7, seed=6)
    with caplog.at_level("WARNING", logger="distil_cli.generate.slots"):
        got = generate_slots(model, prompts, STOPS, 10, slots=3, decode="graph")
    assert got == generate_slots(model, prompts, STOPS, 10, slots=3, decode="exact")
    assert "CUDA graph capture of the decoding step failed" in caplog.text
    assert caplog.text.count("capture") == 1  # warned once, not once per bucket
    from distil_cli.generate.slot_decode import decode_mode

    cuda = torch.device("cuda")  # a device object needs no GPU: what auto would choose there
    assert decode_mode("auto", cuda, 0.0, model) == "exact"  # this model failed: not tried again
    assert decode_mode("auto", cuda, 0.0, _model("llama")) == "graph"
    assert decode_mode("auto", cuda, 0.7, _model("llama")) == "exact"  # sampling stays eager


@pytest.mark.parametrize("value, on", [("0", False), ("off", False), (" False ", False), ("no", False), ("1", True)])
def test_cuda_graphs_switch(monkeypatch, value, on):
    from distil_cli.generate.slot_decode import decode_mode

    monkeypatch.setenv("DISTIL_CUDA_GRAPHS", value)
    assert decode_mode("auto", torch.device("cuda"), 0.0) == ("graph" if on else "exact")


def test_no_prompts_and_no_new_tokens():
    model = _model("llama")
    assert generate_slots(model, [], STOPS, 10, slots=4) == []
    assert generate_slots(model, [[5, 6]], STOPS, 0, slots=4) == [[]]


def test_engine_choice(monkeypatch):
    model = _model("llama")
    assert choose_engine(model, "auto") == "dynamic"  # on the CPU transformers' generate stays the default
    assert choose_engine(model, None) == "dynamic"
    assert choose_engine(model, "slots") == "slots"
    assert choose_engine(model, "static") == "static"
    gemma = _model("gemma3")  # its sliding windows: auto takes slots on CUDA (checked there, 2026-12-07)
    assert choose_engine(gemma, "slots") == "slots"
    from distil_cli.generate import slots

    assert slots.auto_slots(model) and slots.auto_slots(gemma)
    monkeypatch.setattr(slots, "GPU_UNCHECKED", ("gemma3_text",))  # a family whose CUDA path has not run yet
    assert slots.auto_slots(model) and not slots.auto_slots(gemma)
    model.config.model_type = "gemma2"
    model.config.layer_types = ["sliding_attention", "full_attention"]  # sliding layers: fine in themselves
    with pytest.raises(ConfigError, match="--cache slots: model type 'gemma2' has not been checked"):
        choose_engine(model, "slots")
    model.config.model_type = "qwen3_next"
    model.config.layer_types = ["linear_attention", "full_attention"]
    with pytest.raises(ConfigError, match="--cache slots: the model has layers other than full or sliding-window"):
        choose_engine(model, "slots")
    model.config.model_type, model.config.layer_types = "mistral", None
    model.config.sliding_window = 8  # a window without per-layer types: its layers do not say which they are
    with pytest.raises(ConfigError, match="sliding-window attention without per-layer types"):
        choose_engine(model, "slots")


def test_automatic_batch_is_capped_at_2048_rows_with_slots_and_1024_with_generate(monkeypatch):
    """The caps measured on an H200 (docs/benchmarks.md); below them, half the free memory decides."""
    from distil_cli.generate.batched import auto_batch_size

    model = _model("llama")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (100 * 2**30, 140 * 2**30))
    assert auto_batch_size(model, 800, 128, "slots") == 2048
    assert auto_batch_size(model, 800, 128, "dynamic") == 1024
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (2**20, 140 * 2**30))  # 1 MiB free
    # per row: (800 + 128) tokens x 2 layers x (k, v) x 2 kv heads x 16 dims x 2 bytes + 300 x 8 logit bytes
    per_row = 928 * 2 * 2 * 2 * 16 * 2 + 300 * 8
    assert auto_batch_size(model, 800, 128, "slots") == (2**20 // 2) // per_row == 2


def _pulled_gemma3():
    import os
    from pathlib import Path

    from distil_cli.pull import GEMMA3_270M, is_pulled, model_dir
    from distil_cli.settings import ModelsSettings

    cache = Path(os.environ.get("DISTIL_MODELS__CACHE_DIR", ModelsSettings().cache_dir)).expanduser()
    return model_dir(cache, GEMMA3_270M) if is_pulled(cache, GEMMA3_270M) else None


@pytest.mark.integration
@pytest.mark.skipif(_pulled_gemma3() is None, reason="gemma3-270m not pulled (`distil models pull gemma3-270m`)")
def test_the_pulled_gemma3_270m_generates_past_its_sliding_window_as_generate_does():
    """The real model (512-token windows): prompts of 700 and 800 tokens continue as transformers' generate
    continues them (without the window they do not); one of 250 tokens stays inside the window."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _pulled_gemma3()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    assert model.config.sliding_window == 512
    text = " ".join(f"Case {i}: fever, cough and {i % 7} days of fatigue; chest film clear." for i in range(120))
    ids = tokenizer(text)["input_ids"]
    prompts = [ids[:700], ids[100:900], ids[50:300]]
    stop = [tokenizer.eos_token_id]
    expected = []
    for p in prompts:
        row = model.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False, eos_token_id=stop, pad_token_id=0)
        expected.append(row[0, len(p) :].tolist())
    assert generate_slots(model, prompts, stop, 12, slots=2) == expected
