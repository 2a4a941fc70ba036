"""Batched, left-padded generation shared by training-time evaluation and ``distil infer``.

Prompts are sorted by length (longest first, so an out-of-memory shows up at once),
left-padded per batch, and decoded from the new tokens only, up to the first stop token.
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
    """Generate for every prompt (token ids); results come back in the input order."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    results: list[Generated | None] = [None] * len(prompt_ids)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    options = generation_options(temperature, top_p, min_new_tokens, cache_implementation)
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
                repetition_penalty=repetition_penalty,
                **options,
            )
            batch_out = [_decode(tokenizer, row[input_ids.shape[1] :].tolist(), stop_ids) for row in output]
            for i, generated in zip(indices, batch_out):
                results[i] = generated
            if on_batch is not None:
                on_batch(indices, batch_out)
    finally:
        model.train(was_training)
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
