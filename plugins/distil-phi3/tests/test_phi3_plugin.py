"""The Phi-3 formatter equals Phi-3-mini-4k-instruct's chat template; masking covers answer + <|end|>."""

from __future__ import annotations

import pytest
from distil_phi3 import Phi3Formatter, tiny_config

from distil_cli import build_registry, check_formatter, family_tokenizer

# The chat template of microsoft/Phi-3-mini-4k-instruct.
PHI3_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return family_tokenizer(PHI3_TEMPLATE, ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], eos="<|endoftext|>")


@pytest.mark.parametrize("system", [None, "You are a careful clinician."])
def test_matches_official_template_and_masking(tokenizer, system):
    check_formatter(Phi3Formatter(tokenizer), tokenizer, system=system)


def test_family_and_tiny_preset(tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    registry = build_registry()
    assert registry.detect_family(tiny_config(10), "").name == "phi3"
    model = AutoModelForCausalLM.from_config(tiny_config(len(tokenizer)))
    assert model(torch.tensor([[1, 2]])).logits.shape == (1, 2, len(tokenizer))
