"""Fast generation: packed prefill, a KV cache of fixed slots, flash decoding, continuous refill.

``distil infer`` and training-time evaluation on CUDA use this path (``--cache auto``) for
decoder models whose attention goes through transformers' attention interface. What it does
that ``model.generate`` with left-padded batches does not:

* **No padding anywhere.** Prompts are prefilled as one packed sequence (variable-length
  FlashAttention over their cumulative lengths); each prompt's keys and values go straight
  into its *slot* of a preallocated cache (``slots x (longest prompt + max_new_tokens)``
  tokens per layer). A decoding step attends each row to exactly its own tokens
  (FlashAttention's ``seqused_k``): no mask, no ``repeat_kv`` copies (grouped-query heads are
  native to the kernel), no cache concatenation.
* **Continuous refill.** A row that stops frees its slot at the next check (every
  ``check_every`` steps, the only host synchronisations of the loop) and the next prompts are
  prefilled into the free slots, so the batch stays full instead of waiting for its longest
  answer.
* Logits only for the positions that pick a token.

Greedy outputs are the same tokens as one-prompt-at-a-time ``generate`` up to floating-point
ties (``tests/test_generate_slots.py`` on the CPU in float32; ``tests/test_cuda_kernels.py``
on a GPU). On the CPU the attention runs as per-row SDPA (tests); ``distil infer`` uses
``generate`` there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from distil_cli.generate.picking import Picker
from distil_cli.generate.slot_decode import Decoder, decode_mode

KWARG = "distil_kv"  # the forward keyword that carries the cache to the attention function


def slots_supported(model) -> str | None:
    """None when this model can generate through slots, else the reason it cannot."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder models are not supported"
    if getattr(config, "attn_logit_softcapping", None) or getattr(config, "final_logit_softcapping", None):
        return "the model softcaps its logits"
    layer_types = getattr(config, "layer_types", None) or []
    if any(t not in ("full_attention", "sliding_attention") for t in layer_types):
        return "the model has layers other than full or sliding-window attention (linear, ...)"
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) and not layer_types:
        return "the model uses sliding-window attention without per-layer types"
    if getattr(config, "model_type", "") not in SLOT_TYPES:
        return f"model type {config.model_type!r} has not been checked with slot generation"
    return None


# families whose attention layers pass keyword arguments through to the attention function (a sliding
# layer its window, as ``sliding_window``) and take position ids for RoPE (checked against generate() in
# the tests for llama, qwen2 and gemma3_text, the text model of Gemma 3 with its sliding-window layers)
SLOT_TYPES = ("llama", "qwen2", "qwen3", "mistral", "olmo2", "granite", "phi3", "smollm3", "gemma3_text")
# of those, the ones whose CUDA path has not run on a GPU yet (none now: gemma3_text's windows passed
# tests/test_cuda_kernels.py on an H100, 2026-12-07): ``--cache slots`` takes them, ``--cache auto`` keeps
# transformers' generate for them
GPU_UNCHECKED: tuple[str, ...] = ()


def auto_slots(model) -> bool:
    """Whether ``--cache auto`` generates this model through slots (on CUDA)."""
    return slots_supported(model) is None and getattr(model.config, "model_type", "") not in GPU_UNCHECKED


@dataclass
class _Step:
    """What the attention function needs for one forward: where the new keys go and whom to attend."""

    write: torch.Tensor  # flat cache index of every new token
    cu_q: torch.Tensor  # int32 cumulative query lengths
    max_q: int
    cu_k: torch.Tensor | None = None  # decode: start of each row's slot (int32); None = prefill
    used_k: torch.Tensor | None = None  # decode: keys each row attends to (int32)
    max_k: int = 0
    windowed: dict | None = None  # decode: (key starts, keys used) per sliding window, made once a step

    def window(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A decoding step's key starts and counts for a layer that sees the last ``size`` tokens (the
        query's own included): each row's start moves past the keys that left its window."""
        if self.windowed is None:
            self.windowed = {}
        if size not in self.windowed:
            used = self.used_k.clamp(max=size)
            starts = self.cu_k.clone()
            starts[:-1] += self.used_k - used
            self.windowed[size] = (starts, used)
        return self.windowed[size]


class SlotCache:
    """Per layer, ``slots * width`` key/value rows of ``[kv_heads, head_dim]``; row r of slot s at ``s * width + r``."""

    def __init__(self, layers: int, slots: int, width: int, kv_heads: int, head_dim: int, dtype, device):
        shape = (slots * width, kv_heads, head_dim)
        self.k = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.width = width
        self.dtype = dtype
        self.step: _Step | None = None

    def attend(self, module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling, window=None):
        """query/key/value [B, heads, T, d] -> attention output [B, T, heads, d]; ``window``: a sliding
        layer's, where a query sees itself and the ``window - 1`` tokens before it."""
        step = self.step
        batch, heads, length, dim = query.shape
        layer = module.layer_idx

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.transpose(1, 2).reshape(batch * length, t.shape[1], dim).to(self.dtype)

        q, k, v = flat(query), flat(key), flat(value)
        self.k[layer].index_copy_(0, step.write, k)
        self.v[layer].index_copy_(0, step.write, v)
        if step.cu_k is None:  # prefill: causal attention within each packed prompt
            out = _flash(q, k, v, step.cu_q, step.cu_q, step.max_q, step.max_q, True, scaling, None, window)
        else:  # decode: one query per row against its slot (a sliding layer: its window's part of it)
            cu_k, used_k = step.window(window) if window else (step.cu_k, step.used_k)
            out = _flash(q, self.k[layer], self.v[layer], step.cu_q, cu_k, 1, step.max_k, False, scaling, used_k)
        return out.reshape(batch, length, heads, dim).to(query.dtype)


def _flash(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale, used_k, window=None):
    """``window`` (causal prefill only): FlashAttention's ``window_size=(window - 1, 0)``."""
    if q.is_cuda:
        sides = {"window_size_left": window - 1, "window_size_right": 0} if window else {}
        out = torch.ops.aten._flash_attention_forward(
            q, k, v, cu_q, cu_k, max_q, max_k, 0.0, causal, False, scale=scale, seqused_k=used_k, **sides
        )
        return out[0]
    from distil_cli.attention import varlen_reference  # the CPU stand-in (tests)

    return varlen_reference(q, k, v, cu_q, cu_k, causal, scale, used_k, window)


ATTENTION = "distil_slots"  # the attention implementation name registered with transformers


def _slot_attention(module, query, key, value, attention_mask=None, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention-function signature, handing over to the slot cache of the forward."""
    return kwargs[KWARG].attend(module, query, key, value, scaling, kwargs.get("sliding_window")), None


@contextlib.contextmanager
def _slot_attention_impl(model):
    """Run the model with the slot attention function.

    It is registered for attention only, not for masks: transformers then builds no mask and
    runs no packed-sequence detection (a host synchronisation) in the forward, which keeps a
    decoding step free of host round trips and capturable in a CUDA graph."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _slot_attention)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model: its base
    before = base.config._attn_implementation
    base.set_attn_implementation(ATTENTION)
    try:
        yield
    finally:
        base.set_attn_implementation(before)


@torch.inference_mode()
def generate_slots(
    model,
    prompt_ids: Sequence[Sequence[int]],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    slots: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    min_new_tokens: int = 0,
    on_done: Callable[[list[int], list[list[int]]], None] | None = None,
    prefill_tokens: int = 32768,
    check_every: int = 8,
    decode: str = "auto",
) -> list[list[int]]:
    """New token ids for every prompt (input order), stop token included when one was produced.

    ``slots``: rows decoded together (the cache holds ``slots x (longest prompt + max_new_tokens)``
    tokens per layer). ``on_done(indices, token_lists)`` is called as prompts finish, in
    completion order. ``prefill_tokens`` bounds the tokens of one packed prefill forward.
    ``decode``: how a decoding step runs: ``graph`` (the step replayed from a CUDA graph per
    row bucket), ``padded`` (the same padded steps run eagerly: the graph path without the
    graph, for tests), ``exact`` (the active rows only, eagerly) or ``auto`` (``graph`` on CUDA
    for greedy decoding unless ``DISTIL_CUDA_GRAPHS=0``; ``exact`` otherwise).
    """
    n = len(prompt_ids)
    if n == 0 or max_new_tokens <= 0:
        if on_done is not None and n:
            on_done(list(range(n)), [[] for _ in range(n)])
        return [[] for _ in range(n)]
    top_k = getattr(getattr(model, "generation_config", None), "top_k", None) or 0  # as generate() samples
    sampling = dict(temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty)
    run = _SlotRun(model, prompt_ids, stop_ids, max_new_tokens, min(slots, n), sampling, min_new_tokens, on_done)
    was_training = model.training
    model.eval()
    try:
        with _slot_attention_impl(model):
            run.loop(prefill_tokens, check_every, Decoder(run, decode_mode(decode, run.device, temperature, model)))
    finally:
        run.cache.step = None
        model.train(was_training)
    return run.results  # type: ignore[return-value]


class _SlotRun:
    """The state of one ``generate_slots`` call: per-slot device tensors, host bookkeeping, the loop.

    The tensors have one slot more than ``slots``: the last is scratch, where the padding rows
    of a bucketed decoding step write (see ``slot_decode.Decoder``)."""

    def __init__(self, model, prompt_ids, stop_ids, max_new_tokens, slots, sampling, min_new_tokens, on_done):
        self.model, self.prompt_ids, self.max_new, self.on_done = model, prompt_ids, max_new_tokens, on_done
        device = self.device = next(model.parameters()).device
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        param_dtype = next(model.parameters()).dtype
        half = param_dtype in (torch.bfloat16, torch.float16)
        dtype = param_dtype if half or device.type != "cuda" else torch.bfloat16
        self.width = max(len(p) for p in prompt_ids) + max_new_tokens
        self.slots = slots = max(1, slots)
        self.scratch = slots  # the extra slot
        total = slots + 1
        self.cache = SlotCache(config.num_hidden_layers, total, self.width, kv_heads, head_dim, dtype, device)
        vocab = model.get_output_embeddings().weight.shape[0]
        self.pick = Picker(
            vocab,
            stop_ids,
            sampling["temperature"],
            sampling["top_p"],
            sampling["repetition_penalty"],
            min_new_tokens,
            total,
            device,
            sampling["top_k"],
        )
        self.stop_set = set(stop_ids)
        self.out_tokens = torch.zeros((total, max_new_tokens), dtype=torch.long, device=device)
        self.made = torch.zeros(total, dtype=torch.long, device=device)  # new tokens so far per slot
        self.length = torch.zeros(total, dtype=torch.long, device=device)  # tokens in the cache per slot
        self.stopped = torch.zeros(total, dtype=torch.bool, device=device)
        self.last = torch.zeros(total, dtype=torch.long, device=device)  # the token to feed next
        self.owner: dict[int, int] = {}  # slot -> prompt index
        self.deadline: dict[int, int] = {}  # slot -> the decoding step after which it has max_new_tokens
        self.step = 0  # decoding steps so far
        self.free = list(range(slots - 1, -1, -1))  # pop() gives the lowest slot
        order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
        self.pending = list(reversed(order))  # pop() gives the longest prompt first
        self.results: list[list[int] | None] = [None] * len(prompt_ids)
        self.autocast = (  # no weight-cast cache: a CUDA graph must not capture one
            torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
            if device.type == "cuda" and not half
            else contextlib.nullcontext()
        )

    def forward(self, input_ids, position_ids, keep) -> torch.Tensor:
        with self.autocast:
            out = self.model(
                input_ids=input_ids,
                position_ids=position_ids,
                use_cache=False,
                logits_to_keep=keep,
                **{KWARG: self.cache},
            )
        return out.logits

    def prefill(self, batch: list[tuple[int, int]]) -> None:
        """Prompts (index, slot) packed into one forward; their first new token picked."""
        device, width = self.device, self.width
        ids = [torch.as_tensor(self.prompt_ids[i], dtype=torch.long) for i, _ in batch]
        lens = torch.tensor([len(t) for t in ids], dtype=torch.long)
        cu = torch.zeros(len(ids) + 1, dtype=torch.int32)
        cu[1:] = torch.cumsum(lens, 0)
        positions = torch.cat([torch.arange(int(k)) for k in lens])
        starts = torch.cat([torch.full((int(k),), s * width, dtype=torch.long) for (_, s), k in zip(batch, lens)])
        rows = torch.tensor([s for _, s in batch], dtype=torch.long, device=device)
        self.cache.step = _Step(write=(starts + positions).to(device), cu_q=cu.to(device), max_q=int(lens.max()))
        for (_, slot), prompt in zip(batch, ids):
            self.pick.admit(slot, prompt.to(device))
        flat_ids = torch.cat(ids).to(device)
        logits = self.forward(flat_ids[None], positions.to(device)[None], (cu[1:] - 1).to(device).long())[0]
        token = self.pick(logits, rows, torch.zeros(len(batch), dtype=torch.long, device=device))
        self.length[rows] = lens.to(device)
        self.made[rows] = 1
        self.out_tokens[rows, 0] = token
        self.stopped[rows] = torch.isin(token, self.pick.stops)
        self.last[rows] = token
        for i, slot in batch:
            self.owner[slot] = i
            self.deadline[slot] = self.step + self.max_new - 1

    def admit(self, prefill_tokens: int) -> None:
        """Fill the free slots with the next prompts, packed by at most ``prefill_tokens`` a forward."""
        while self.free and self.pending:
            batch, tokens = [], 0
            while (
                self.free
                and self.pending
                and (not batch or tokens + len(self.prompt_ids[self.pending[-1]]) <= prefill_tokens)
            ):
                i = self.pending.pop()
                tokens += len(self.prompt_ids[i])
                batch.append((i, self.free.pop()))
            self.prefill(batch)

    def collect(self) -> None:
        """Hand back the rows that stopped or reached max_new_tokens; free their slots (one sync)."""
        if not self.owner:
            return
        active = sorted(self.owner)
        flags = self.stopped[active].tolist()
        finished = [s for s, flag in zip(active, flags) if flag or self.deadline[s] <= self.step]
        if not finished:
            return
        counts, rows = self.made[finished].tolist(), self.out_tokens[finished].tolist()
        indices, lists = [], []
        for slot, count, row in zip(finished, counts, rows):
            tokens = row[:count]
            cut = next((p for p, token in enumerate(tokens) if token in self.stop_set), None)
            tokens = tokens if cut is None else tokens[: cut + 1]
            i = self.owner.pop(slot)
            self.deadline.pop(slot)
            self.results[i] = tokens
            indices.append(i)
            lists.append(tokens)
            self.free.append(slot)
        self.free.sort(reverse=True)  # reuse low slots first (keeps the active rows dense)
        if self.on_done is not None:
            self.on_done(indices, lists)

    def decode(self, rows: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor) -> None:
        """One token for each row of ``rows``, attending to its own slot (padding rows: the scratch slot).

        Device work only, no host synchronisation: a CUDA graph can capture it."""
        position = self.length[rows].clamp(max=self.width - 1)  # the clamp bounds the scratch slot only
        self.cache.step = _Step(
            write=rows * self.width + position,
            cu_q=cu_q,
            max_q=1,
            cu_k=cu_k,
            used_k=(position + 1).to(torch.int32),
            max_k=self.width,
        )
        logits = self.forward(self.last[rows][:, None], position[:, None], 1)[:, -1]
        count = self.made[rows]
        token = self.pick(logits, rows, count)
        self.out_tokens[rows, count.clamp(max=self.max_new - 1)] = token
        self.made[rows] = count + 1
        self.length[rows] = position + 1
        self.stopped[rows] |= torch.isin(token, self.pick.stops)
        self.last[rows] = token

    def loop(self, prefill_tokens: int, check_every: int, decoder: Decoder) -> None:
        self.admit(prefill_tokens)
        self.collect()
        active = None
        while self.owner:
            if active != sorted(self.owner):  # the device rows change only when rows come or go
                active = sorted(self.owner)
                decoder.set_rows(active)
                soonest = min(self.deadline[s] for s in active)
            decoder.step()
            self.step += 1
            if self.step % check_every == 0 or soonest <= self.step:
                self.collect()
                self.admit(prefill_tokens)
                self.collect()
