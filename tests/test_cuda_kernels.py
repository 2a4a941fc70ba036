"""The CUDA kernels of the fast training path against the plain path (run on a GPU machine).

On a machine without CUDA these tests are skipped: the code around the kernels is covered
on the CPU by tests/test_kernels.py; these check the kernels themselves (torch's varlen
flash attention, Liger's Triton kernels) on the GPU, in bf16 autocast as in training.
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from distil_cli.bench.train import synthetic_examples
from distil_cli.train import kernels
from distil_cli.train.batching import Collator, PackingCollator
from distil_cli.train.config import DistilTrainingArguments
from distil_cli.train.loss import multitask_loss
from distil_cli.train.trainer import DistilTrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=512,
        vocab_size=32000,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(config).cuda()


def _examples():
    return synthetic_examples(6, 32000, seed=3)


def _reference(model, examples, alpha=0.3):
    batch = {k: v.cuda() for k, v in Collator(0)(examples).items() if torch.is_tensor(v)}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return multitask_loss(logits.float(), batch["labels"], batch["task"], alpha)


def _loss(model, batch, tmp_path, fused_ce=False):
    args = DistilTrainingArguments(output_dir=str(tmp_path), report_to=[], alpha=0.3, fused_ce=fused_ce, bf16=True)
    trainer = DistilTrainer(model=model, args=args, train_dataset=[], data_collator=Collator(0))
    batch = trainer._prepare_inputs(batch)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        return trainer.compute_loss(model, batch)


def _grads(model):
    return torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])


def _tiny_gemma3(**extra):
    """A 3-layer Gemma 3 (gemma3_text) on the GPU, random init."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        hidden_size=256, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1, head_dim=64,
        intermediate_size=512, vocab_size=32000, sliding_window=16, final_logit_softcapping=None, **extra,
    )  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").cuda()


def _assert_varlen_matches_sdpa(model, tmp_path, rows=None):
    """Loss and gradients of packed rows under varlen attention against the padded SDPA reference."""
    examples = _examples()
    reference = _reference(model, examples)
    reference.loss.backward()
    expected = _grads(model)
    model.zero_grad()
    varlen = copy.deepcopy(model)
    varlen.set_attn_implementation(kernels.register_varlen())
    loss = _loss(varlen, PackingCollator(rows, 0, varlen=True)(examples), tmp_path)
    loss.backward()
    assert loss.item() == pytest.approx(reference.loss.item(), rel=2e-3)
    assert torch.nn.functional.cosine_similarity(_grads(varlen), expected, dim=0) > 0.999


@pytest.mark.parametrize("rows", [None, 1500])
def test_varlen_flash_attention_matches_padded_sdpa(model, tmp_path, rows):
    _assert_varlen_matches_sdpa(model, tmp_path, rows)


@pytest.mark.skipif(not kernels.varlen_windows(), reason="this torch's varlen attention has no sliding windows")
def test_varlen_flash_attention_with_sliding_windows_matches_padded_sdpa(tmp_path):
    """Gemma 3's sliding layers (a 16-token window over examples of hundreds) under varlen's window_size,
    against SDPA with transformers' sliding-window mask; loss and gradients."""
    layers = ["sliding_attention", "full_attention", "sliding_attention"]
    _assert_varlen_matches_sdpa(_tiny_gemma3(layer_types=layers), tmp_path)


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_liger_kernels_and_fused_ce_match_the_plain_path(model, tmp_path):
    examples = _examples()
    plain = _loss(model, PackingCollator(None, 0)(examples), tmp_path)
    plain.backward()
    expected = _grads(model)
    model.zero_grad()
    patched = copy.deepcopy(model)
    assert kernels.resolve_kernels("liger", patched) == "liger"
    loss = _loss(patched, PackingCollator(None, 0)(examples), tmp_path, fused_ce=True)
    loss.backward()
    assert loss.item() == pytest.approx(plain.item(), rel=5e-3)
    assert torch.nn.functional.cosine_similarity(_grads(patched), expected, dim=0) > 0.999


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_liger_and_fused_ce_under_lora_match_the_plain_adapter_path(model, tmp_path):
    """`distil train --lora` applies Liger to the base before the adapter and the fused loss through it."""
    from distil_cli.settings import TrainSettings
    from distil_cli.train.adapters import with_lora

    cfg = TrainSettings(lora=True, lora_r=8, lora_alpha=16, lora_target_modules=["all-linear"], seed=0)
    examples = _examples()
    plain = with_lora(copy.deepcopy(model), cfg)
    loss = _loss(plain, PackingCollator(None, 0)(examples), tmp_path)
    loss.backward()
    expected = _grads(plain)
    base = copy.deepcopy(model)
    assert kernels.resolve_kernels("auto", base) == "liger"
    patched = with_lora(base, cfg)  # the same seed: the same adapter
    got = _loss(patched, PackingCollator(None, 0)(examples), tmp_path, fused_ce=True)
    got.backward()
    assert got.item() == pytest.approx(loss.item(), rel=5e-3)
    grads = _grads(patched)
    assert grads.numel() == expected.numel() < sum(p.numel() for p in model.parameters())  # adapters only
    assert torch.nn.functional.cosine_similarity(grads, expected, dim=0) > 0.999


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_liger_and_fused_ce_on_gemma3_match_the_plain_path(tmp_path):
    """Gemma 3 (gemma3_text: GeGLU, RMSNorm with offset 1 and q/k norms) under Liger, against the plain path."""
    gemma = _tiny_gemma3()
    examples = _examples()
    plain = _loss(gemma, PackingCollator(None, 0)(examples), tmp_path)
    plain.backward()
    expected = _grads(gemma)
    gemma.zero_grad()
    patched = copy.deepcopy(gemma)
    assert kernels.resolve_kernels("liger", patched) == "liger"
    loss = _loss(patched, PackingCollator(None, 0)(examples), tmp_path, fused_ce=True)
    loss.backward()
    assert loss.item() == pytest.approx(plain.item(), rel=5e-3)
    assert torch.nn.functional.cosine_similarity(_grads(patched), expected, dim=0) > 0.999


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_a_liger_gemma3_decodes_a_batch_like_the_plain_model():
    """Batched decoding of a model patched with Liger, and of one loaded after it in the same process (an
    experiment infers where it trained): the logits of a one-position step match the plain model's. Liger's
    RoPE kernel, fed by its RMSNorm's q_norm, rotated the wrong rows of such a step (liger_patches)."""
    from transformers import AutoModelForCausalLM

    plain = _tiny_gemma3().float().eval()
    patched = copy.deepcopy(plain)
    kernels.apply_liger(patched)
    later = AutoModelForCausalLM.from_config(plain.config, attn_implementation="sdpa").cuda().eval()
    later.load_state_dict(plain.state_dict())
    assert type(later.model.layers[0].mlp).__name__ == "Gemma3MLP"
    assert type(later.model.layers[0].input_layernorm).__name__ == "Gemma3RMSNorm"
    ids = torch.randint(10, 32000, (3, 12), device="cuda")
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :7] = 0

    def steps(model):
        with torch.no_grad():
            first = model(input_ids=ids, attention_mask=mask, use_cache=True)
            step = torch.tensor([[5], [6], [7]], device="cuda")
            longer = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            second = model(input_ids=step, attention_mask=longer, past_key_values=first.past_key_values, use_cache=True)
        return first.logits[:, -1], second.logits[:, -1]

    expected = steps(plain)
    for model in (patched, later):
        for got, want in zip(steps(model), expected):
            assert (got - want).abs().max().item() < 1e-3 * want.abs().max().item()


def test_liger_is_importable_where_triton_is():
    if importlib.util.find_spec("triton") is not None and importlib.util.find_spec("liger_kernel") is not None:
        assert kernels.liger_available()


def _slot_llama(dtype, kind: str = "llama"):
    """A small random model for slot generation: Llama, or Gemma 3's text model with sliding-window layers
    of 64 tokens (the prompts run to 300) around a global one, untied so that it does not just repeat."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

    torch.manual_seed(0)
    shape = dict(
        vocab_size=2000,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.2,
    )
    if kind == "gemma3":
        layers = ["sliding_attention", "full_attention", "sliding_attention"]
        config = Gemma3TextConfig(**shape, head_dim=64, query_pre_attn_scalar=64, sliding_window=64,
                                  layer_types=layers, tie_word_embeddings=False)  # fmt: skip
    else:
        config = LlamaConfig(**shape)
    return AutoModelForCausalLM.from_config(config).cuda().to(dtype).eval()


def _slot_prompts(n: int = 40) -> list[list[int]]:
    import random

    rng = random.Random(0)
    return [[rng.randrange(10, 2000) for _ in range(rng.randint(5, 300))] for _ in range(n)]


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_slot_generation_picks_the_greedy_token_of_a_full_forward(dtype, kind):
    """Flash decoding over the slot cache (CUDA graphs, the default): every generated token is
    the argmax (up to bf16 ties: the bf16 model failed a 0.1 tolerance by 0.125, one unit in the
    last place, on the H200) of the same model's full teacher-forced forward over prompt +
    answer (SDPA, no cache)."""
    from distil_cli.generate.batched import choose_engine
    from distil_cli.generate.slots import generate_slots

    llama = _slot_llama(dtype, kind)
    assert choose_engine(llama, "auto") == "slots"
    prompts = _slot_prompts()
    got = generate_slots(llama, prompts, [3], 24, slots=16)
    worst = 0.0
    for prompt, answer in zip(prompts, got):
        assert 1 <= len(answer) <= 24
        ids = torch.tensor([prompt + answer], device="cuda")
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            logits = llama(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        chosen = logits.gather(1, torch.tensor(answer, device="cuda")[:, None]).squeeze(1)
        worst = max(worst, float((logits.max(dim=1).values - chosen).max()))
    # bf16 weights give bf16 logits: one unit in the last place is 0.125 at magnitudes of 16-32
    tolerance = 0.1 if dtype == torch.float32 else 0.26
    assert worst < tolerance, f"a generated token is {worst:.3f} logits below the full forward's best"


@pytest.mark.parametrize(
    "dtype, options",
    [
        (torch.float32, {}),
        (torch.bfloat16, {}),
        (torch.bfloat16, {"min_new_tokens": 20, "repetition_penalty": 1.3}),  # their masks inside the graph
    ],
)
@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_cuda_graph_decoding_replays_the_padded_steps_exactly(dtype, options, kind, caplog):
    """The captured step is the eager padded step: the same tokens, and no fallback warning."""
    from distil_cli.generate.slots import generate_slots

    llama = _slot_llama(dtype, kind)
    prompts = _slot_prompts(70)
    with caplog.at_level("WARNING", logger="distil_cli.generate.slots"):
        graph = generate_slots(llama, prompts, [3], 24, slots=40, decode="graph", check_every=1, **options)
    assert "capture" not in caplog.text
    assert graph == generate_slots(llama, prompts, [3], 24, slots=40, decode="padded", check_every=1, **options)


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_cuda_graph_decoding_with_liger_kernels(kind, caplog):
    """Training-time evaluation decodes a Liger-patched model: its Triton kernels must capture too."""
    if not kernels.liger_available():
        pytest.skip("liger-kernel / triton not installed")
    from distil_cli.generate.slots import generate_slots

    llama = _slot_llama(torch.bfloat16, kind)
    kernels.apply_liger(llama)
    prompts = _slot_prompts(20)
    with caplog.at_level("WARNING", logger="distil_cli.generate.slots"):
        graph = generate_slots(llama, prompts, [3], 16, slots=20, decode="graph")
    assert "capture" not in caplog.text
    assert graph == generate_slots(llama, prompts, [3], 16, slots=20, decode="padded")


def _train_losses(model, precision: str, tmp_path, steps: int = 30):
    """Per-step losses of a short packed distill run with varlen attention at ``precision``."""
    from distil_cli.settings import TrainSettings
    from distil_cli.train.config import batch_plan, training_arguments

    examples = synthetic_examples(64, 32000, seed=5)
    model.set_attn_implementation(kernels.register_varlen())
    cfg = TrainSettings(tokens_per_batch=4096, lr=1e-3, max_steps=steps, precision=precision, seed=0)
    sampler, per_epoch = batch_plan(cfg, examples)
    args = training_arguments(
        tmp_path, cfg, examples, per_epoch, has_eval=False, logging_steps=1, save_strategy="no", disable_tqdm=True
    )
    trainer = DistilTrainer(model=model, args=args, train_dataset=examples, data_collator=Collator(0))
    trainer.batch_sampler = sampler
    trainer.train()
    return trainer, [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_bf16_master_weights_train_like_mixed_precision(model, tmp_path):
    from distil_cli.train.precision import MasterAdamW

    _, mixed = _train_losses(copy.deepcopy(model), "mixed", tmp_path / "mixed")
    trainer, bf16 = _train_losses(copy.deepcopy(model).to(torch.bfloat16), "bf16", tmp_path / "bf16")
    assert isinstance(getattr(trainer.optimizer, "optimizer", trainer.optimizer), MasterAdamW)
    assert not trainer.args.bf16 and next(trainer.model.parameters()).dtype == torch.bfloat16
    assert len(mixed) == len(bf16) == 30
    print("mixed", [round(x, 3) for x in mixed], "bf16", [round(x, 3) for x in bf16])
    # random tokens: the loss falls slowly from ln(32000) = 10.4, by the same amount in both
    assert bf16[-1] < bf16[0] - 0.1 and mixed[-1] < mixed[0] - 0.1
    for a, b in zip(mixed, bf16):
        assert b == pytest.approx(a, abs=0.05)  # the same curve, up to bf16 rounding


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
@pytest.mark.parametrize("rows", [7, 5000, 40000])
def test_wide_rms_norm_backward_matches_liger_and_float32(rows):
    from liger_kernel.ops.rms_norm import LigerRMSNormFunction

    torch.manual_seed(0)
    x = torch.randn(rows, 896, device="cuda", dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(896, device="cuda")).to(torch.bfloat16)
    dy = torch.randn_like(x)

    def grads(fn):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = fn.apply(xi, wi, 1e-6, 0.0, "llama", True, None)
        y.backward(dy.clone())
        return y.detach(), xi.grad.float(), wi.grad.float()

    xf, wf = x.float().requires_grad_(), w.float().requires_grad_()
    (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * wf).backward(dy.float())
    y_liger, dx_liger, dw_liger = grads(LigerRMSNormFunction)
    y_wide, dx_wide, dw_wide = grads(kernels._wide_rms_norm_function())
    assert torch.equal(y_wide, y_liger)  # the forward is Liger's
    assert torch.equal(dx_wide, dx_liger)  # the same per-row arithmetic
    assert torch.allclose(dx_wide, xf.grad, rtol=2e-2, atol=2e-2)
    error_wide = (dw_wide - wf.grad).abs().max().item()
    error_liger = (dw_liger - wf.grad).abs().max().item()
    scale = wf.grad.abs().max().item()
    assert error_wide <= 0.01 * scale  # weight gradient of bf16 products, partial sums in float32
    assert error_wide <= 2 * error_liger + 1e-6 * scale


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_apply_liger_gives_every_rms_norm_the_wide_backward(model):
    assert kernels.wide_rms_norm_ready()  # the installed Liger's kernel takes the arguments passed
    patched = copy.deepcopy(model)
    kernels.apply_liger(patched)
    norms = [m for m in patched.modules() if type(m).__name__.endswith("RMSNorm")]
    assert len(norms) == 2 * patched.config.num_hidden_layers + 1
    assert all(m.forward.__func__ is kernels._wide_rms_norm_forward for m in norms)


class _NoHostSync:
    """Raise on any operation that makes the host wait for the GPU (torch's sync debug mode)."""

    def __enter__(self):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")

    def __exit__(self, *exc):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
@pytest.mark.parametrize("rows", [1, 900, 5000])
def test_linear_ce_sum_equals_liger_and_never_waits_for_the_gpu(rows):
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    from distil_cli.train import linear_ce

    assert linear_ce.sync_free_ready()  # the installed Liger's kernel takes the arguments passed
    torch.manual_seed(0)
    hidden = torch.randn(rows, 256, device="cuda", dtype=torch.bfloat16)
    weight = (0.05 * torch.randn(32000, 256, device="cuda")).to(torch.bfloat16)
    targets = torch.randint(0, 32000, (rows,), device="cuda")
    mem_const, size = linear_ce.chunk_plan(rows, 256, 32000, 2048)
    assert size == {1: 1, 900: 900, 5000: 2048}[rows] and (rows < 2048 or -(-rows // size) == 3)

    def run(fn):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss = fn(h, w)
        (0.37 * loss).backward()  # an upstream gradient other than 1, as the task weights give
        return loss.detach(), h.grad, w.grad

    def liger(h, w):
        return liger_fused_linear_cross_entropy(h, w, targets, reduction="sum", chunk_mem_const=mem_const)

    expected = run(liger)
    with _NoHostSync():
        got = run(lambda h, w: linear_ce.linear_ce_sum(h, w, targets))
    for a, b in zip(got, expected):
        assert torch.equal(a, b)  # the same kernels over the same chunks
    exact = torch.nn.functional.cross_entropy(hidden.float() @ weight.float().T, targets, reduction="sum")
    assert got[0].item() == pytest.approx(exact.item(), rel=1e-2)
    with pytest.raises(RuntimeError, match="synchroniz"), _NoHostSync():
        run(liger)  # what the sync-free path avoids (and proof that the check catches a sync)


@pytest.mark.skipif(not kernels.liger_available(), reason="liger-kernel / triton not installed")
def test_a_packed_training_step_never_waits_for_the_gpu(model, tmp_path):
    """Pinned batch copied asynchronously, varlen attention, Liger kernels, fused loss, backward: no host
    sync (transformers' packed-sequence check on the host is skipped by the placeholder mask)."""
    patched = copy.deepcopy(model)
    patched.set_attn_implementation(kernels.register_varlen())
    kernels.apply_liger(patched)
    args = DistilTrainingArguments(output_dir=str(tmp_path), report_to=[], alpha=0.3, fused_ce=True, bf16=True)
    trainer = DistilTrainer(model=patched, args=args, train_dataset=[], data_collator=Collator(0))
    batch = PackingCollator(None, 0, varlen=True)(_examples())
    pinned = torch.utils.data._utils.pin_memory.pin_memory(batch)
    assert pinned["input_ids"].is_pinned() and pinned["loss_index"].flat_index.is_pinned()
    import warnings

    from accelerate.utils import send_to_device

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inputs = send_to_device(pinned, "cuda", non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = trainer.compute_loss(patched, inputs)
            loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [(w.filename, w.lineno) for w in caught if "synchroniz" in str(w.message)]
    assert syncs == []
    assert torch.isfinite(loss) and patched.get_output_embeddings().weight.grad is not None
