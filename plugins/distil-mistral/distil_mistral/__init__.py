"""distil plugin for Mistral instruct models: ``<s>[INST] user [/INST]answer</s>``.

Mistral's template has no system role and no generation prompt: a system prompt is put
at the top of the user message, followed by a blank line.
"""

from __future__ import annotations

from distil_cli import Formatted, ModelFamily, hookimpl, user_message
from distil_cli import tiny_config as tiny_shape


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

    return tiny_shape(MistralConfig, vocab_size)


@hookimpl
def register_model_families(register):
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
