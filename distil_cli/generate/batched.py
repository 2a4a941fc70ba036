"""Batched generation shared by training-time evaluation, ``distil infer`` and the local teacher.

Two engines behind one call:

* ``slots`` (``distil_cli.generate.slots``; what ``auto`` picks on CUDA for the model families
  it supports): packed prefill, a slot KV cache, flash decoding, continuous refill.
* transformers' ``generate`` (``dynamic`` or ``static`` cache; ``auto`` elsewhere): prompts
  sorted by length (longest first, so an out-of-memory shows up at once), left-padded per batch.

Either way the answer is decoded from the new tokens only, up to the first stop token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class Generated:
    text: str
    new_tokens: int
    finish_reason: str  # "stop" (an end-of-turn/eos token) or "length"


def left_pad(batch: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    return input_ids.to(device), attention.to(device)


@torch.inference_mode()
def generate_batched(
    model,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    batch_size: int = 8,
    temperature: float = 0.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    on_batch: Callable[[list[int], list[Generated]], None] | None = None,
    min_new_tokens: int = 0,
    cache_implementation: str | None = None,
) -> list[Generated]:
    """Generate for every prompt (token ids); results come back in the input order.

    ``cache_implementation``: ``auto`` (slots where supported, else dynamic), ``slots``,
    ``dynamic`` (None) or ``static``. ``on_batch(indices, generated)`` is called as prompts finish.
    """
    engine = choose_engine(model, cache_implementation)
    job = (model, tokenizer, prompt_ids, stop_ids, max_new_tokens, batch_size, on_batch)
    sampling = dict(temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty)
    if engine == "slots":
        return _generate_slots(*job, min_new_tokens=min_new_tokens, **sampling)
    kwargs = generation_options(temperature, top_p, min_new_tokens, None if engine == "dynamic" else engine)
    return _generate_hf(*job, repetition_penalty, kwargs)


def _generate_hf(
    model, tokenizer, prompt_ids, stop_ids, max_new_tokens, batch_size, on_batch, penalty: float, kwargs: dict
) -> list[Generated]:
    """transformers' ``generate`` over length-sorted, left-padded batches (``kwargs``: ``generation_options``)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    results: list[Generated | None] = [None] * len(prompt_ids)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            input_ids, attention = left_pad([prompt_ids[i] for i in indices], pad_id, device)
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                eos_token_id=list(stop_ids),
                pad_token_id=pad_id,
                repetition_penalty=penalty,
                **kwargs,
            )
            batch_out = [_decode(tokenizer, row[input_ids.shape[1] :].tolist(), stop_ids) for row in output]
            for i, generated in zip(indices, batch_out):
                results[i] = generated
            if on_batch is not None:
                on_batch(indices, batch_out)
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def auto_batch_size(model, prompt_tokens: int, max_new_tokens: int, engine: str = "dynamic") -> int:
    """As many sequences as fit in half the free GPU memory (KV cache + logits); 8 on CPU.

    At most 1,024 with transformers' generate, 2,048 with slots (both measured on an H200:
    docs/benchmarks.md; slots gave 38k new tokens/s at 1,024 rows and 51k at 2,048)."""
    import torch

    if not torch.cuda.is_available():
        return 8
    free, _ = torch.cuda.mem_get_info()
    cfg = model.config
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    half = next(model.parameters()).dtype in (torch.bfloat16, torch.float16)
    bytes_per = 2 if half or engine == "slots" else 4  # the slot cache is bf16/fp16 whatever the weights
    per_seq = (prompt_tokens + max_new_tokens) * cfg.num_hidden_layers * 2 * heads * head_dim * bytes_per
    per_seq += cfg.vocab_size * 4 * 2  # logits of the last position, float32, with some slack
    cap = 2048 if engine == "slots" else 1024
    return int(max(1, min(cap, (free * 0.5) // max(per_seq, 1))))


def choose_engine(model, requested: str | None) -> str:
    """``slots``, ``dynamic`` or ``static`` for this model and request (``auto``/None: the fastest that runs)."""
    from distil_cli.errors import ConfigError
    from distil_cli.generate.slots import auto_slots, slots_supported

    if requested in (None, "auto"):
        device = next(model.parameters()).device
        if device.type == "cuda" and auto_slots(model) and _flash_available():
            return "slots"
        return "dynamic"
    if requested == "slots":
        reason = slots_supported(model)
        if reason is None and next(model.parameters()).device.type == "cuda" and not _flash_available():
            reason = "it needs FlashAttention (an Ampere or newer GPU)"
        if reason:
            raise ConfigError(f"--cache slots: {reason}; use --cache dynamic")
    return requested


def _flash_available() -> bool:
    """torch's FlashAttention kernel: CUDA, Ampere (sm80) or newer."""
    import torch

    return (
        torch.cuda.is_available()
        and torch.cuda.get_device_capability() >= (8, 0)
        and hasattr(torch.ops.aten, "_flash_attention_forward")
    )


def _generate_slots(
    model, tokenizer, prompt_ids, stop_ids, max_new_tokens, slots, on_batch, **options
) -> list[Generated]:
    """The slot engine, its token lists decoded as ``generate``'s are (``options``: sampling, min_new_tokens)."""
    from distil_cli.generate.slots import generate_slots

    results: list[Generated | None] = [None] * len(prompt_ids)

    def done(indices: list[int], token_lists: list[list[int]]) -> None:
        batch_out = [_decode(tokenizer, tokens, stop_ids) for tokens in token_lists]
        for i, generated in zip(indices, batch_out):
            results[i] = generated
        if on_batch is not None:
            on_batch(indices, batch_out)

    generate_slots(model, prompt_ids, stop_ids, max_new_tokens, slots=slots, on_done=done, **options)
    return results  # type: ignore[return-value]


def generation_options(
    temperature: float, top_p: float, min_new_tokens: int = 0, cache_implementation: str | None = None
) -> dict:
    """``generate`` keyword arguments: greedy or sampling, plus the options that apply to both."""
    options: dict = {"do_sample": False}
    if temperature > 0:
        options = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    if min_new_tokens:
        options["min_new_tokens"] = min_new_tokens  # benchmarks: a fixed amount of work per prompt
    if cache_implementation:
        options["cache_implementation"] = cache_implementation  # "static": fixed shapes, compiled decoding
    return options


def _decode(tokenizer, new_ids: list[int], stop_ids: Sequence[int]) -> Generated:
    stops = set(stop_ids)
    for position, token in enumerate(new_ids):
        if token in stops:
            kept = new_ids[:position]
            return Generated(tokenizer.decode(kept, skip_special_tokens=True).strip(), len(kept), "stop")
    return Generated(tokenizer.decode(new_ids, skip_special_tokens=True).strip(), len(new_ids), "length")
