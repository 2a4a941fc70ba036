"""distil plugin for Gemma 2/3: ``<start_of_turn>role ... <end_of_turn>`` turns, 'model' as the assistant role.

Gemma has no system role: a system prompt is put at the top of the first user turn,
followed by a blank line (what Gemma 3's own template does).
"""

from __future__ import annotations

from distil_cli import Formatted, ModelFamily, hookimpl, user_message
from distil_cli import tiny_config as tiny_shape

END_OF_TURN = "<end_of_turn>"


class GemmaFormatter:
    name = "gemma"
    end_of_turn = END_OF_TURN

    def __init__(self, tokenizer=None):
        self.bos = (getattr(tokenizer, "bos_token", None) or "<bos>") if tokenizer is not None else "<bos>"

    def format(self, instruction, text, answer=None, system=None):
        user = user_message(instruction, text).strip()  # the template trims message contents
        if system:
            user = f"{system.strip()}\n\n{user}"
        prompt = f"{self.bos}<start_of_turn>user\n{user}{END_OF_TURN}\n<start_of_turn>model\n"
        return Formatted(prompt, None if answer is None else answer.strip() + END_OF_TURN)


def tiny_config(vocab_size: int):
    from transformers import Gemma2Config

    return tiny_shape(Gemma2Config, vocab_size, head_dim=16)


@hookimpl
def register_model_families(register):
    register(
        ModelFamily(
            name="gemma",
            formatter="gemma",
            model_types=("gemma", "gemma2", "gemma3", "gemma3_text"),
            architectures=("GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"),
            name_patterns=(r"gemma",),
            end_of_turn=(END_OF_TURN,),
            pad_token="<pad>",
            lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            tiny_config=tiny_config,
        )
    )


@hookimpl
def register_prompt_formatters(register):
    register(GemmaFormatter.name, GemmaFormatter)
