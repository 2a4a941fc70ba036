"""Model families: what distil needs to know about a family of checkpoints, and the tiny preset.

A family is recognised from a checkpoint's config (``model_type``, ``architectures``) or its
name; it names the prompt formatter, the end-of-turn marker, the pad token policy and the
default LoRA targets, and can build a ``tiny`` 2-layer config for tests (no download).
The built-in families (Qwen2/Qwen3 and SmolLM) are defined here and registered by the
built-in plugin; other families come from plugins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelFamily:
    """What distil needs to know about a family of checkpoints."""

    name: str
    formatter: str
    model_types: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    name_patterns: tuple[str, ...] = ()  # regular expressions matched against the model id or folder name
    end_of_turn: tuple[str, ...] = ()
    pad_token: str | None = None  # None: the eos token (masked by attention and -100 labels)
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    tiny_config: Callable[[int], Any] | None = None  # vocab size -> a small PretrainedConfig (no download)

    def matches(self, config: Any = None, name: str = "") -> bool:
        if any(re.search(p, name, re.IGNORECASE) for p in self.name_patterns):
            return True
        if config is None:
            return False
        if getattr(config, "model_type", None) in self.model_types:
            return True
        return any(a in self.architectures for a in (getattr(config, "architectures", None) or []))


TINY_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
)


def tiny_config(config_cls, vocab_size: int, **overrides):
    """A 2-layer, 64-wide config of any family (the ``tiny`` preset shape), built without a download."""
    return config_cls(vocab_size=vocab_size, **{**TINY_SHAPE, **overrides})


def smollm_tiny_config(vocab_size: int):
    """A 2-layer Llama of SmolLM2's family, for tests and CPU benchmarks (no download)."""
    from transformers import LlamaConfig

    return tiny_config(LlamaConfig, vocab_size, tie_word_embeddings=True)


def qwen2_tiny_config(vocab_size: int):
    from transformers import Qwen2Config

    return tiny_config(Qwen2Config, vocab_size, tie_word_embeddings=True)


QWEN2 = ModelFamily(
    name="qwen2",
    formatter="chatml",
    model_types=("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"),
    architectures=("Qwen2ForCausalLM", "Qwen3ForCausalLM"),
    name_patterns=(r"qwen",),
    end_of_turn=("<|im_end|>",),
    tiny_config=qwen2_tiny_config,
)
SMOLLM = ModelFamily(
    name="smollm",
    formatter="chatml",
    name_patterns=(r"smollm",),
    end_of_turn=("<|im_end|>",),
    tiny_config=smollm_tiny_config,
)
BUILTIN_FAMILIES = (QWEN2, SMOLLM)
