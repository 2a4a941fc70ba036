"""distil plugin for Phi-3 / Phi-3.5 instruct models: ``<|user|>\\n...<|end|>\\n<|assistant|>\\n``."""

from __future__ import annotations

from distil_cli import Formatted, ModelFamily, hookimpl, user_message
from distil_cli import tiny_config as tiny_shape

END_OF_TURN = "<|end|>"


class Phi3Formatter:
    name = "phi3"
    end_of_turn = END_OF_TURN

    def __init__(self, tokenizer=None):
        pass

    def format(self, instruction, text, answer=None, system=None):
        head = f"<|system|>\n{system}{END_OF_TURN}\n" if system else ""
        prompt = f"{head}<|user|>\n{user_message(instruction, text)}{END_OF_TURN}\n<|assistant|>\n"
        return Formatted(prompt, None if answer is None else answer + END_OF_TURN)


def tiny_config(vocab_size: int):
    from transformers import Phi3Config

    return tiny_shape(Phi3Config, vocab_size, pad_token_id=0)


@hookimpl
def register_model_families(register):
    register(
        ModelFamily(
            name="phi3",
            formatter="phi3",
            model_types=("phi3",),
            architectures=("Phi3ForCausalLM",),
            name_patterns=(r"phi-?3",),
            end_of_turn=(END_OF_TURN,),
            lora_target_modules=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
            tiny_config=tiny_config,
        )
    )


@hookimpl
def register_prompt_formatters(register):
    register(Phi3Formatter.name, Phi3Formatter)
