"""distil plugin for Llama 3 instruct models.

Turns are ``<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>``; contents are trimmed.
"""

from __future__ import annotations

from distil_cli import Formatted, ModelFamily, hookimpl, user_message
from distil_cli import tiny_config as tiny_shape

END_OF_TURN = "<|eot_id|>"


def _turn(role: str, content: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}{END_OF_TURN}"


class Llama3Formatter:
    name = "llama3"
    end_of_turn = END_OF_TURN

    def __init__(self, tokenizer=None):
        self.bos = (
            (getattr(tokenizer, "bos_token", None) or "<|begin_of_text|>")
            if tokenizer is not None
            else "<|begin_of_text|>"
        )

    def format(self, instruction, text, answer=None, system=None):
        turns = (_turn("system", system) if system else "") + _turn("user", user_message(instruction, text))
        prompt = f"{self.bos}{turns}<|start_header_id|>assistant<|end_header_id|>\n\n"
        return Formatted(prompt, None if answer is None else answer.strip() + END_OF_TURN)


def tiny_config(vocab_size: int):
    from transformers import LlamaConfig

    return tiny_shape(LlamaConfig, vocab_size, rope_theta=500000.0)


@hookimpl
def register_model_families(register):
    register(
        ModelFamily(
            name="llama3",
            formatter="llama3",
            name_patterns=(r"llama-?3",),
            end_of_turn=(END_OF_TURN,),
            lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            tiny_config=tiny_config,
        )
    )


@hookimpl
def register_prompt_formatters(register):
    register(Llama3Formatter.name, Llama3Formatter)
