"""Choosing the next token of each decoding row: repetition penalty, min-new-tokens, greedy or sampling.

Used by the slot engine (``distil_cli.generate.slots``); the same rules and order as
transformers' ``generate`` (penalty, then the stop-token block, then temperature, top-k, top-p).
Every tensor it writes comes from the device (no Python scalars assigned into CUDA tensors), so
a greedy decoding step that calls it can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch


class Picker:
    """Chooses the next token per row: repetition penalty, min-new-tokens, then greedy or top-p sampling."""

    def __init__(
        self, vocab: int, stops, temperature, top_p, repetition_penalty, min_new_tokens, slots, device, top_k=0
    ):
        self.stops = torch.tensor(sorted(set(stops)), dtype=torch.long, device=device)
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.penalty, self.min_new = repetition_penalty, min_new_tokens
        self.seen = torch.zeros((slots, vocab), dtype=torch.bool, device=device) if repetition_penalty != 1 else None
        # device constants: assigning a Python scalar into a CUDA tensor copies it from the host,
        # which a CUDA graph cannot capture
        self.is_stop = torch.zeros(vocab, dtype=torch.bool, device=device)
        self.is_stop[self.stops] = True
        self.true = torch.ones((), dtype=torch.bool, device=device)

    def admit(self, slot: int, prompt: torch.Tensor) -> None:
        if self.seen is not None:
            self.seen[slot] = False
            self.seen[slot, prompt] = True

    def __call__(self, logits: torch.Tensor, rows: torch.Tensor, made: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.seen is not None:
            seen = self.seen[rows]
            scaled = torch.where(logits > 0, logits / self.penalty, logits * self.penalty)
            logits = torch.where(seen, scaled, logits)
        if self.min_new:
            early = (made < self.min_new).unsqueeze(1)
            logits = logits.masked_fill(early & self.is_stop, float("-inf"))
        if self.temperature > 0:
            token = sample(logits / self.temperature, self.top_p, self.top_k)
        else:
            token = logits.argmax(dim=-1)
        if self.seen is not None:
            self.seen.index_put_((rows, token), self.true)
        return token


def sample(logits: torch.Tensor, top_p: float, top_k: int = 0) -> torch.Tensor:
    """Temperature-scaled ``logits`` -> one sampled token per row: top-k, then top-p (transformers' order)."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, index = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # keep the smallest prefix reaching top_p
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, index, ordered)
    return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)
