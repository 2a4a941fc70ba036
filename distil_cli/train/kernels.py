"""GPU kernels for ``distil train``: variable-length flash attention and Liger's fused kernels.

* ``varlen`` attention (registered in transformers as ``distil_varlen``): packed examples are
  attended with ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention) over cumulative
  sequence lengths computed by the collator, so a packed batch costs what its examples cost
  alone: no dense block-diagonal mask, no padding, no compilation. Without sequence lengths
  (generation, evaluation) the call goes to transformers' SDPA with the usual mask.
* Liger kernels (``liger-kernel``, Triton): RMSNorm, SwiGLU, RoPE patched into the model, and
  a fused linear cross-entropy so the logits of the supervised positions are never
  materialised (``train.linear_ce``: Liger's cross-entropy kernel without its host syncs).
  Used only on CUDA, for model types Liger patches, when Triton imports.

Everything here falls back cleanly: on the CPU, none of it is used.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import sys
from typing import Any

import torch

from distil_cli.attention import varlen_reference  # noqa: F401  (the CPU stand-in of varlen)

log = logging.getLogger(__name__)
VARLEN = "distil_varlen"
USER_NAMES = {"varlen": VARLEN}


# ---------------------------------------------------------------------------- varlen attention
def varlen_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _varlen_call():
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    return varlen_attn, causal, "enable_gqa" in params, "window_size" in params


def varlen_windows() -> bool:
    """Whether this torch's varlen attention takes sliding windows (``window_size``: after torch 2.10)."""
    return varlen_available() and _varlen_call()[3]


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention per packed example; query/key/value are [B, heads, T, head_dim]."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None and attention_mask is None and query.shape[0] == 1 and query.shape[2] == key.shape[2] > 1:
        cu, longest = _lengths_from_positions(kwargs.get("position_ids"))  # padding-free rows (e.g. TRL's)
        if cu is not None:
            kwargs = {**kwargs, "cu_seq_lens_q": cu, "max_length_q": longest}
    if cu is None:
        sdpa = _sdpa()
        extra = {"sliding_window": sliding_window} if sliding_window is not None else {}
        return sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **extra, **kwargs)
    if dropout or softcap is not None:
        raise RuntimeError(
            "varlen attention supports neither attention dropout nor softcapping; "
            "use --attn-implementation sdpa for this model"
        )
    if not query.is_cuda:
        return _varlen_reference(query, key, value, cu, scaling, sliding_window), None
    fn, causal, has_gqa, windowed = _varlen_call()
    if sliding_window is not None:  # a sliding layer: itself and the sliding_window - 1 tokens before it
        if not windowed:
            raise RuntimeError("this torch's varlen attention has no sliding windows; use --attn-implementation sdpa")
        causal = {"window_size": (sliding_window - 1, 0)}
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    dtype = query.dtype
    if dtype not in (torch.bfloat16, torch.float16):
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else torch.bfloat16

    def flat(t: torch.Tensor) -> torch.Tensor:  # [B, h, T, d] -> [B*T, h, d]
        return t.transpose(1, 2).reshape(batch * length, t.shape[1], dim).to(dtype)

    q, k, v = flat(query), flat(key), flat(value)
    extra: dict[str, Any] = {}
    if kv_heads != heads:
        if has_gqa:
            extra["enable_gqa"] = True
        else:
            k = k.repeat_interleave(heads // kv_heads, dim=1)
            v = v.repeat_interleave(heads // kv_heads, dim=1)
    longest = kwargs["max_length_q"]
    out = fn(q, k, v, cu, cu, longest, longest, scale=scaling, **causal, **extra)
    return out.reshape(batch, length, heads, dim).to(query.dtype), None


_last_positions: list = [None, None, None]  # (position tensor, cu, longest) of the previous call


def _lengths_from_positions(position_ids: torch.Tensor | None) -> tuple[torch.Tensor | None, int]:
    """Cumulative lengths of the sequences of one packed row, from positions restarting at 0.

    Every layer of a forward gets the same tensor: computed once (one host sync), then reused."""
    if position_ids is None or position_ids.dim() != 2 or position_ids.shape[0] != 1:
        return None, 0
    if _last_positions[0] is position_ids:
        return _last_positions[1], _last_positions[2]
    row = position_ids[0]
    starts = torch.nonzero(row == 0).flatten()
    if starts.numel() == 0 or int(starts[0]) != 0:
        return None, 0
    total = torch.tensor([row.numel()], device=row.device)
    cu = torch.cat([starts, total]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    _last_positions[:] = [position_ids, cu, longest]
    return cu, longest


def _varlen_reference(query, key, value, cu: torch.Tensor, scaling: float | None, window: int | None = None):
    """The same computation with SDPA, one sequence at a time (CPU: tests and debugging)."""
    batch, heads, length, dim = query.shape

    def flat(t: torch.Tensor) -> torch.Tensor:  # [B, h, T, d] -> [B*T, h, d]
        return t.transpose(1, 2).reshape(batch * length, t.shape[1], dim)

    out = varlen_reference(flat(query), flat(key), flat(value), cu, cu, True, scaling, window=window)
    return out.reshape(batch, length, heads, dim)


def _varlen_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any):
    """No mask for packed training batches (the kernel gets sequence lengths); SDPA's otherwise."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def _sdpa():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS["sdpa"]


@functools.cache
def register_varlen() -> str:
    """Register ``distil_varlen`` with transformers (attention and mask); returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN, varlen_attention_forward)
    AttentionMaskInterface.register(VARLEN, _varlen_mask)
    return VARLEN


def varlen_supported(config) -> str | None:
    """None when varlen attention can run this model config, else the reason it cannot."""
    if not varlen_available():
        return "it needs CUDA and torch.nn.attention.varlen"
    if getattr(config, "attention_dropout", 0.0):
        return "the model uses attention dropout"
    if getattr(config, "attn_logit_softcapping", None):
        return "the model uses attention logit softcapping"
    if _sliding(config) and not varlen_windows():
        return "the model uses sliding-window attention, which this torch's varlen attention lacks (torch 2.11 has it)"
    return None


def _sliding(config) -> bool:
    """Whether some layers of the model attend through a sliding window (Gemma 2 and 3, Mistral's configs)."""
    window = getattr(config, "sliding_window", None)
    return bool(
        window
        and getattr(config, "use_sliding_window", True)
        and "sliding_attention" in (getattr(config, "layer_types", None) or ["sliding_attention"])
    )


def resolve_attention(requested: str | None, config, packing: bool) -> str | None:
    """The attention implementation for training: ``requested`` (``varlen`` mapped), or the best default.

    Default: varlen on CUDA for packed batches when the model allows it, else None
    (transformers' own choice, SDPA). Sliding-window models too where torch's varlen attention has
    windows (Gemma 3 270M's shape, one H100: 4.7x the tokens/s of SDPA over 2,048-token rows).
    """
    if requested:
        name = USER_NAMES.get(requested, requested)
        if name == VARLEN:
            reason = varlen_supported(config)
            if reason:
                from distil_cli.errors import ConfigError

                raise ConfigError(f"--attn-implementation varlen: {reason}; use sdpa or flex_attention")
            register_varlen()
        return name
    if packing and varlen_supported(config) is None:
        return register_varlen()
    return None


# ---------------------------------------------------------------------------- Liger kernels
LIGER_TYPES = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gemma2", "gemma3_text", "granite", "olmo2")


def liger_available() -> bool:
    return (
        torch.cuda.is_available()
        and importlib.util.find_spec("liger_kernel") is not None
        and importlib.util.find_spec("triton") is not None
    )


def liger_supported(model) -> str | None:
    """None when Liger kernels can be applied to this model, else the reason they cannot."""
    if not liger_available():
        return "it needs CUDA, Triton and the liger-kernel package"
    model_type = getattr(model.config, "model_type", "")
    if model_type not in LIGER_TYPES:
        return f"model type {model_type!r} is not one distil applies Liger to ({', '.join(LIGER_TYPES)})"
    if getattr(model.config, "final_logit_softcapping", None):
        return "the model softcaps its logits"
    head = model.get_output_embeddings()
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return "the output layer is not a plain bias-free Linear"
    return None


def apply_liger(model) -> None:
    """Patch RMSNorm / SwiGLU / RoPE of this model instance with Liger's kernels (the loss is ours).

    Liger's RMSNorm then gets a wider backward launch (:func:`wide_rms_norm_backward`)."""
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance
    from liger_kernel.transformers.rms_norm import LigerRMSNorm

    from distil_cli.train.liger_patches import contain_module_patches

    if hasattr(model, "get_base_model"):  # a peft model: Liger finds the decoder's modules on the model it wraps
        model = model.get_base_model()
    module = sys.modules[type(model).__module__]
    before = dict(vars(module))
    _apply_liger_kernel_to_instance(model=model, cross_entropy=False, fused_linear_cross_entropy=False)
    contain_module_patches(module, before)  # this model only; no batched-decode RoPE bug (liger_patches)
    if not wide_rms_norm_ready():
        log.info("Liger's own RMSNorm backward kept: its kernel's arguments are not liger-kernel 0.8.5's")
        return
    for module in model.modules():
        if getattr(module.forward, "__func__", None) is LigerRMSNorm.forward:
            module.forward = _wide_rms_norm_forward.__get__(module)


# Liger's RMSNorm backward runs one program per SM, each walking ~n_rows / SMs rows one after
# another: for hidden sizes over 256 (its row kernel) the walk is latency-bound: 0.29 ms for
# 32k x 896 bf16 on an H200, where reading dY and X and writing dX takes 0.04 ms (49 calls, 10
# of the 209 ms of a Qwen2.5-0.5B step). The same kernel launched with 8 programs per SM (each
# walking fewer rows; their weight-gradient partial sums are added afterwards in float32) takes
# 0.12 ms; 4, 16 and 32 per SM measured 0.15, 0.12, 0.12 (benchmarks/rms_norm_backward.py).
RMS_NORM_PROGRAMS_PER_SM = 8


_WIDE_KERNEL_ARGS = (
    "dY_ptr", "dY_row_stride", "dX_ptr", "dX_row_stride", "X_ptr", "X_row_stride", "X_dtype", "W_ptr",
    "W_row_stride", "RSTD_ptr", "RSTD_row_stride", "dW_ptr", "dW_row_stride", "n_rows", "n_cols", "offset",
    "rows_per_program", "casting_mode", "elementwise_affine", "BLOCK_SIZE", "COMPUTE_DW",
)  # fmt: skip


def takes_arguments(kernel, names: tuple[str, ...]) -> bool:
    """Whether a Triton kernel of an installed library takes exactly these arguments (distil launches
    some of Liger's kernels itself; another Liger version's kernel may differ)."""
    return tuple(getattr(kernel, "arg_names", ())) == names


@functools.cache
def wide_rms_norm_ready() -> bool:
    """Whether the installed Liger's RMSNorm backward kernel takes the arguments the wide launch passes."""
    try:
        from liger_kernel.ops.rms_norm import _rms_norm_backward_kernel, torch_to_triton_dtype  # noqa: F401
    except ImportError:
        return False
    return takes_arguments(_rms_norm_backward_kernel, _WIDE_KERNEL_ARGS)


def _wide_rms_norm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """LigerRMSNorm.forward with :func:`wide_rms_norm_backward` as its backward."""
    return _wide_rms_norm_function().apply(
        hidden_states, self.weight, self.variance_epsilon, self.offset, self.casting_mode, self.in_place, self.row_mode
    )


@functools.cache
def _wide_rms_norm_function():
    from liger_kernel.ops.rms_norm import LigerRMSNormFunction

    class WideRMSNormFunction(LigerRMSNormFunction):
        @staticmethod
        def backward(ctx, dY):
            if not ctx.elementwise_affine or not dY.is_cuda or dY.numel() == 0:
                return LigerRMSNormFunction.backward(ctx, dY)
            X, W, RSTD = ctx.saved_tensors
            dX, dW = wide_rms_norm_backward(
                dY.contiguous(), X, W, RSTD, ctx.offset, ctx.casting_mode, ctx.BLOCK_SIZE, ctx.num_warps,
                ctx.in_place, ctx.needs_input_grad[1],
            )  # fmt: skip
            return dX, dW, None, None, None, None, None

    return WideRMSNormFunction


def wide_rms_norm_backward(
    dY, X, W, RSTD, offset, casting_mode, block_size, num_warps, in_place, needs_dw,
    programs_per_sm: int = RMS_NORM_PROGRAMS_PER_SM,
):  # fmt: skip
    """Liger's RMSNorm backward kernel over ``programs_per_sm`` programs per SM."""
    import math

    from liger_kernel.ops.rms_norm import _rms_norm_backward_kernel, torch_to_triton_dtype

    shape = dY.shape
    dY = dY.view(-1, shape[-1])
    n_rows, n_cols = dY.shape
    sms = torch.cuda.get_device_properties(X.device).multi_processor_count
    rows_per_program = math.ceil(n_rows / max(1, min(n_rows, sms * programs_per_sm)))
    programs = math.ceil(n_rows / rows_per_program)
    partial = torch.empty((programs, n_cols), dtype=torch.float32, device=W.device) if needs_dw else None
    dX = dY if in_place else torch.empty_like(dY)
    with torch.cuda.device(X.device):
        _rms_norm_backward_kernel[(programs,)](
            dY, dY.stride(0), dX, dX.stride(0), X, X.stride(0), torch_to_triton_dtype[X.dtype],
            W, W.stride(0), RSTD, RSTD.stride(0), partial, partial.stride(0) if needs_dw else 0,
            n_rows, n_cols, offset, rows_per_program, casting_mode,
            elementwise_affine=True, BLOCK_SIZE=block_size, COMPUTE_DW=needs_dw, num_warps=num_warps,
        )  # fmt: skip
    return dX.view(*shape), partial.sum(dim=0).to(W.dtype) if needs_dw else None


def resolve_kernels(requested: str, model) -> str:
    """``auto`` -> ``liger`` where supported else ``none``; ``liger`` when unsupported is an error."""
    if requested == "none":
        return "none"
    reason = liger_supported(model)
    if requested == "liger" and reason:
        from distil_cli.errors import ConfigError

        raise ConfigError(f"--kernels liger: {reason}; use --kernels none")
    if reason:
        log.info("Liger kernels not used: %s", reason)
        return "none"
    apply_liger(model)
    return "liger"
