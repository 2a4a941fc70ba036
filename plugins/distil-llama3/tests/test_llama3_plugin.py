"""The Llama-3 formatter equals Meta-Llama-3-8B-Instruct's chat template; masking covers answer + <|eot_id|>."""

from __future__ import annotations

import pytest
from distil_llama3 import Llama3Formatter, tiny_config

from distil_cli import build_registry, check_formatter, family_tokenizer

# The chat template of meta-llama/Meta-Llama-3-8B-Instruct.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
SPECIAL = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


@pytest.fixture(scope="module")
def tokenizer():
    return family_tokenizer(LLAMA3_TEMPLATE, SPECIAL, bos="<|begin_of_text|>", eos="<|eot_id|>")


@pytest.mark.parametrize("system", [None, "You are a careful clinician."])
def test_matches_official_template_and_masking(tokenizer, system):
    check_formatter(Llama3Formatter(tokenizer), tokenizer, system=system)


def test_family_and_tiny_preset(tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    registry = build_registry()
    assert registry.source("formatter", "llama3") == "llama3"
    assert registry.detect_family(None, "meta-llama/Meta-Llama-3-8B-Instruct").name == "llama3"
    assert registry.detect_family(None, "HuggingFaceTB/SmolLM2-135M-Instruct").name == "smollm"
    model = AutoModelForCausalLM.from_config(tiny_config(len(tokenizer)))
    assert model(torch.tensor([[1, 2]])).logits.shape == (1, 2, len(tokenizer))
