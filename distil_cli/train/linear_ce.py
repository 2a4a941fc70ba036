"""Fused linear cross-entropy for the training loss: the sum of cross-entropies of
``hidden @ weight.T`` against targets, without materialising the logits and without a host sync.

Liger's fused linear cross-entropy computes the loss and both gradients chunk by chunk during
the forward (the logits of one chunk at a time), but its forward reads the number of
non-ignored targets on the host (``.item()``) and its backward compares the upstream gradient
with 1.0 on the host (``torch.equal``): three host syncs a call, six a training step (one call
per task). Each one empties the GPU's queue, and the step's launches then race the GPU
(profiled on an H200: the step was partly host-bound). distil's targets are the supervised
tokens only (no ignore index) and it sums, so neither value is needed: ``linear_ce_sum`` runs
the same Triton kernel (Liger's ``liger_cross_entropy_kernel``) and the same matmuls over the
same chunks with nothing read back, and scales the stored gradients by the upstream gradient
on the device (Liger's ``element_mul_kernel``, as Liger's backward does). Where the installed
Liger's kernels take other arguments, Liger's own function is used (same results, with its syncs).
"""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)

_CE_KERNEL_ARGS = (
    "X_ptr",
    "X_stride",
    "Y_ptr",
    "Y_stride",
    "weight_ptr",
    "loss_ptr",
    "z_loss_ptr",
    "loss_stride",
    "token_accuracy_ptr",
    "token_accuracy_stride",
    "predicted_tokens_ptr",
    "predicted_tokens_stride",
    "n_cols",
    "n_non_ignore",
    "sum_non_ignore_weight",
    "weight_sum",
    "ignore_index",
    "lse_square_scale",
    "label_smoothing",
    "reduction",
    "softcap",
    "RETURN_Z_LOSS",
    "RETURN_TOKEN_ACCURACY",
    "RETURN_PREDICTED_TOKENS",
    "BLOCK_SIZE",
    "HAS_WEIGHT",
    "HAS_SOFTCAPPING",
    "HAS_GRADIENTS",
)  # liger-kernel 0.8.5's
_MUL_KERNEL_ARGS = ("X_ptr", "X_stride", "grad_output_ptr", "n_cols", "BLOCK_SIZE", "X_col_stride")
MAX_BLOCK = 32768  # Liger's MAX_FUSED_SIZE on CUDA: columns one program reads at a time


@functools.cache
def sync_free_ready() -> bool:
    """Whether the installed Liger's cross-entropy kernel takes the arguments ``linear_ce_sum`` passes."""
    try:
        from liger_kernel.ops.cross_entropy import liger_cross_entropy_kernel
        from liger_kernel.ops.utils import element_mul_kernel
    except ImportError:
        return False
    from distil_cli.train.kernels import takes_arguments

    ready = takes_arguments(liger_cross_entropy_kernel, _CE_KERNEL_ARGS) and takes_arguments(
        element_mul_kernel, _MUL_KERNEL_ARGS
    )
    if not ready:
        log.info("Liger's own fused linear cross-entropy used: its kernel's arguments are not liger-kernel 0.8.5's")
    return ready


def chunk_plan(rows: int, width: int, vocab: int, chunk_rows: int) -> tuple[int, int]:
    """(Liger's ``chunk_mem_const``, the rows of each chunk) for chunks of about ``chunk_rows`` rows.

    Liger sizes chunks so their logits stay near ``chunk_mem_const`` times the input's size (64
    rows for a 152k vocabulary and hidden size 896 at its default 1: many tiny matmuls); the
    constant asked for here gives chunks of about ``chunk_rows`` rows, rounded as Liger rounds.
    """
    chunks = -(-rows // chunk_rows)
    mem_const = max(1, -(-vocab // (width * chunks)))
    inc_factor = -(-vocab // (mem_const * width))
    size = _power_of_two_at_least(-(-rows // inc_factor))
    return mem_const, max(1, min(size, rows))


def _power_of_two_at_least(n: int) -> int:
    """Triton's ``next_power_of_2`` (1 for 1), without importing Triton on the CPU path."""
    return 1 << max(0, (n - 1).bit_length())


def linear_ce_sum(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_rows: int = 2048, sync_free: bool = True
):
    """Sum over rows of ``cross_entropy(hidden @ weight.T, targets)`` (hidden [N, H], weight [V, H]).

    Every target must be a class index (no ignore index). Hidden states and weight share a
    dtype (bf16 in training); the weight's gradient is accumulated in that dtype over ~2048-row
    chunks, as Liger does without ``accum_dtype`` (a float32 accumulator would mean float32
    SIMT GEMMs: 50 ms a step for Qwen2.5-0.5B on an H200, profiled).
    """
    rows, width = hidden.shape
    if rows == 0:
        return hidden.sum() * 0.0 + weight.sum() * 0.0
    mem_const, size = chunk_plan(rows, width, weight.shape[0], chunk_rows)
    if hidden.is_cuda and sync_free and sync_free_ready():
        return _LinearCESum.apply(hidden, weight, targets, size)
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    return liger_fused_linear_cross_entropy(hidden, weight, targets, reduction="sum", chunk_mem_const=mem_const)


class _LinearCESum(torch.autograd.Function):
    """Loss and gradients in the forward, chunk by chunk (Liger's scheme); backward scales them."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, size):
        from liger_kernel.ops.cross_entropy import liger_cross_entropy_kernel

        rows, vocab = hidden.shape[0], weight.shape[0]
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        losses = torch.zeros(rows, dtype=torch.float32, device=hidden.device)
        logits = torch.empty((size, vocab), dtype=hidden.dtype, device=hidden.device)
        targets = targets.contiguous()
        block = min(MAX_BLOCK, _power_of_two_at_least(vocab))
        for start in range(0, rows, size):
            end = min(start + size, rows)
            part, x = logits[: end - start], hidden[start:end]
            torch.mm(x, weight.t(), out=part)
            # the kernel writes each row's loss and, in place of its logits, d loss / d logits
            liger_cross_entropy_kernel[(end - start,)](
                X_ptr=part, X_stride=part.stride(-2), Y_ptr=targets[start:end], Y_stride=1, weight_ptr=None,
                loss_ptr=losses[start:end], z_loss_ptr=None, loss_stride=1, token_accuracy_ptr=None,
                token_accuracy_stride=0, predicted_tokens_ptr=None, predicted_tokens_stride=0, n_cols=vocab,
                n_non_ignore=rows, sum_non_ignore_weight=rows, weight_sum=0.0, ignore_index=-100,
                lse_square_scale=0.0, label_smoothing=0.0, reduction="sum", softcap=None, RETURN_Z_LOSS=False,
                RETURN_TOKEN_ACCURACY=False, RETURN_PREDICTED_TOKENS=False, BLOCK_SIZE=block, HAS_WEIGHT=False,
                HAS_SOFTCAPPING=False, HAS_GRADIENTS=True, num_warps=32,
            )  # fmt: skip
            if grad_hidden is not None:
                torch.mm(part, weight, out=grad_hidden[start:end])
            if grad_weight is not None:
                torch.addmm(grad_weight, part.t(), x, out=grad_weight)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return losses.sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        from liger_kernel.ops.utils import element_mul_kernel

        # in place, by Liger's kernel: the product in float32, rounded once (torch's bf16 mul_ by a
        # float32 0-dim tensor would round the factor to bf16 first, up to 0.4% off)
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad.contiguous()
        for stored in (grad_hidden, grad_weight):
            if stored is not None:
                rows, cols = stored.shape
                block = min(MAX_BLOCK, _power_of_two_at_least(cols))
                element_mul_kernel[(rows,)](
                    stored,
                    stored.stride(-2),
                    scale,
                    cols,
                    BLOCK_SIZE=block,
                    X_col_stride=stored.stride(-1),
                    num_warps=32,
                )
        return grad_hidden, grad_weight, None, None
