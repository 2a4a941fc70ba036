"""What Liger's kernels may change beyond the one model they are applied to (a leaf: torch only).

Liger patches a model instance and, as it does so, its family's modeling module: the module's
RMSNorm and MLP classes are swapped for Liger's and its ``apply_rotary_pos_emb`` for Liger's RoPE.
Left in place, the class swaps give every model of that family loaded later in the process
Liger's modules (an experiment's inference after its training, a benchmark's plain variant after a
Liger one). And Liger's RoPE kernel (liger-kernel 0.8.5) is wrong on one-position calls with a batch:
it steps from one row to the next by ``q.stride(1)`` of the ``[B, T, H, D]`` view, which for T = 1
PyTorch leaves at D instead of H * D when the query comes from a contiguous ``[B, H, 1, D]`` tensor,
as it does after Liger's RMSNorm of a query already in that layout (Gemma 3's q_norm; Qwen3 and
OLMo2 normalise before moving the heads, and Llama-like models have no q_norm). Every decode
step of batched generation then rotated the wrong rows: garbled answers from a Gemma 3 model
generating in the process that trained it with Liger (its training steps, of many positions, were
exact). ``contain_module_patches`` puts the classes back and sends one-position calls to
transformers' own RoPE.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

ROPE = "apply_rotary_pos_emb"


def contain_module_patches(module: ModuleType, before: dict) -> list[str]:
    """Undo what a patch changed in ``module`` (``before``: ``dict(vars(module))`` taken before it),
    except its RoPE function, which stays for calls over more than one position. Returns the names
    put back."""
    restored = []
    for name, value in list(vars(module).items()):
        if name not in before or before[name] is value:
            continue
        if name == ROPE:
            setattr(module, name, decode_safe_rope(value, before[name]))
        else:
            setattr(module, name, before[name])
            restored.append(name)
    return restored


def decode_safe_rope(kernel_rope: Callable, own_rope: Callable) -> Callable:
    """RoPE through ``kernel_rope`` for queries ``[B, H, T, D]`` with T > 1, through ``own_rope``
    (transformers') for T = 1."""
    own_rope = getattr(own_rope, "own_rope", own_rope)  # patched twice: still the library's own

    def rope(q, k, cos, sin, *args, **kwargs):
        if q.shape[-2] == 1:
            return own_rope(q, k, cos, sin, *args, **kwargs)
        return kernel_rope(q, k, cos, sin, *args, **kwargs)

    rope.own_rope, rope.kernel_rope = own_rope, kernel_rope
    return rope
