"""distil plugin for Mistral instruct models: ``<s>[INST] user [/INST]answer</s>``.

Mistral's template has no system role and no generation prompt: a system prompt is put
at the top of the user message, followed by a blank line.
"""

from __future__ import annotations

from distil_cli.hookspecs import hookimpl
from distil_cli.prompts import Formatted, user_message


class MistralFormatter:
    name = "mistral"

    def __init__(self, tokenizer=None):
        self.bos = getattr(tokenizer, "bos_token", None) or "<s>"
        self.end_of_turn = getattr(tokenizer, "eos_token", None) or "</s>"

    def format(self, instruction, text, answer=None, system=None):
        user = user_message(instruction, text)
        if system:
            user = f"{system}\n\n{user}"
        prompt = f"{self.bos}[INST] {user} [/INST]"
        return Formatted(prompt, None if answer is None else answer + self.end_of_turn)


def tiny_config(vocab_size: int):
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )


@hookimpl
def register_model_families(register):
    from distil_cli.plugins import ModelFamily

    register(
        ModelFamily(
            name="mistral",
            formatter="mistral",
            model_types=("mistral",),
            architectures=("MistralForCausalLM",),
            name_patterns=(r"mistral",),
            end_of_turn=("</s>",),
            tiny_config=tiny_config,
        )
    )


@hookimpl
def register_prompt_formatters(register):
    register(MistralFormatter.name, MistralFormatter)
