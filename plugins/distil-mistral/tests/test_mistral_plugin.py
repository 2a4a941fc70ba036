"""The Mistral formatter equals Mistral-7B-Instruct's chat template; masking covers answer + </s>."""

from __future__ import annotations

import pytest
from distil_mistral import MistralFormatter, tiny_config

from distil_cli import build_registry, check_formatter, family_tokenizer

# The chat template of mistralai/Mistral-7B-Instruct-v0.1.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return family_tokenizer(MISTRAL_TEMPLATE, ["[INST]", "[/INST]"], bos="<s>", eos="</s>")


def test_matches_official_template_and_masking(tokenizer):
    check_formatter(MistralFormatter(tokenizer), tokenizer, generation_prompt=False)


def test_family_and_tiny_preset(tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    registry = build_registry()
    assert registry.detect_family(tiny_config(10), "").name == "mistral"
    model = AutoModelForCausalLM.from_config(tiny_config(len(tokenizer)))
    assert model(torch.tensor([[1, 2]])).logits.shape == (1, 2, len(tokenizer))
