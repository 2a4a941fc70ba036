"""Attention shared by training and generation (a leaf: torch only)."""

from __future__ import annotations

import torch


def varlen_reference(q, k, v, cu_q, cu_k, causal: bool, scale, used_k=None, window: int | None = None) -> torch.Tensor:
    """FlashAttention's variable-length call ([T, heads, d] tensors, cumulative lengths, optional
    ``seqused_k``) as SDPA one sequence at a time, grouped-query heads repeated: the CPU stand-in.
    ``window`` (causal only): a query sees itself and the ``window - 1`` keys before it, as transformers'
    sliding-window layers do (FlashAttention's ``window_size=(window - 1, 0)``)."""
    heads, kv_heads = q.shape[1], k.shape[1]
    qs, ks = cu_q.tolist(), cu_k.tolist()
    used = used_k.tolist() if used_k is not None else [b - a for a, b in zip(ks[:-1], ks[1:])]
    parts = []
    for row in range(len(qs) - 1):
        qr = q[qs[row] : qs[row + 1]].transpose(0, 1)  # [h, Tq, d]
        kr = k[ks[row] : ks[row] + used[row]].transpose(0, 1)
        vr = v[ks[row] : ks[row] + used[row]].transpose(0, 1)
        if kv_heads != heads:
            kr = kr.repeat_interleave(heads // kv_heads, dim=0)
            vr = vr.repeat_interleave(heads // kv_heads, dim=0)
        if window is None:
            out = torch.nn.functional.scaled_dot_product_attention(qr, kr, vr, is_causal=causal, scale=scale)
        else:  # the queries are the last of the keys' positions (a prefill: all of them)
            q_pos = torch.arange(qr.shape[1], device=q.device) + (kr.shape[1] - qr.shape[1])
            k_pos = torch.arange(kr.shape[1], device=q.device)
            seen = (k_pos[None, :] <= q_pos[:, None]) & (k_pos[None, :] > q_pos[:, None] - window)
            out = torch.nn.functional.scaled_dot_product_attention(qr, kr, vr, attn_mask=seen, scale=scale)
        parts.append(out.transpose(0, 1))
    return torch.cat(parts, dim=0)
