"""Qwen, the seed's own student family, with its real chat templates: prompts and masks are exact.

The templates below are the non-tool branches of the official Qwen2.5-Instruct and Qwen3 chat
templates (tokenizer_config.json of those checkpoints), transcribed for the messages distil
sends (an optional system message, one user turn, the assistant's answer). The tokenizer is the
embedded SmolLM2 one with the ChatML and thinking tokens added: no download.
"""

from __future__ import annotations

import pytest

from distil_cli import family_tokenizer
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.prompts import ChatTemplateFormatter, user_message
from distil_cli.train.examples import IGNORE, encode_example

QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) "
    "or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

QWEN3 = (
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- set ns = namespace(last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if message.role == 'user' and ns.last_query_index == messages|length - 1 %}"
    "{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}"
    "{%- endif %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set reasoning_content = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{%- if loop.index0 > ns.last_query_index %}"
    "{%- if loop.last or (not loop.last and reasoning_content) %}"
    "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' "
    "+ content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}{%- endif %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

TOKENS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
INSTRUCTION, TEXT, ANSWER = "Respond to the text below.", "Fièvre à 39 °C.\nToux.", "Pneumonie probable."


def _supervised(tokenizer, formatter):
    example = encode_example(tokenizer, formatter, INSTRUCTION, TEXT, ANSWER, 512, 64, "r", 0)
    return tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE])


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_qwen25_prompt_is_the_official_rendering_with_its_default_system_prompt(system):
    tokenizer = family_tokenizer(QWEN25, TOKENS, eos="<|im_end|>")
    formatter = choose_formatter(tokenizer)
    assert isinstance(formatter, ChatTemplateFormatter) and formatter.end_of_turn == "<|im_end|>"
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user_message(INSTRUCTION, TEXT)}
    ]
    official = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    formatted = formatter.format(INSTRUCTION, TEXT, answer=ANSWER, system=system)
    assert formatted.prompt == official
    assert ("You are Qwen, created by Alibaba Cloud" in formatted.prompt) is (system is None)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": ANSWER}], tokenize=False)
    assert full.startswith(formatted.prompt + formatted.target)
    assert _supervised(tokenizer, formatter) == ANSWER + "<|im_end|>"


def test_qwen3_empty_thinking_block_is_prompt_in_training_and_inference_alike():
    tokenizer = family_tokenizer(QWEN3, TOKENS, eos="<|im_end|>")
    formatter = choose_formatter(tokenizer)
    messages = [{"role": "user", "content": user_message(INSTRUCTION, TEXT)}]
    no_thinking = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert no_thinking.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    formatted = formatter.format(INSTRUCTION, TEXT, answer=ANSWER)
    assert formatted.prompt == no_thinking  # the prompt infer sends is the one training saw
    assert formatter.format(INSTRUCTION, TEXT).prompt == no_thinking
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": ANSWER}], tokenize=False)
    assert full.startswith(formatted.prompt + formatted.target)  # the template's own training rendering
    supervised = _supervised(tokenizer, formatter)
    assert supervised == ANSWER + "<|im_end|>" and "<think>" not in supervised  # the block is never supervised


def test_a_local_qwen_folder_gets_its_formatter_without_flags(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from distil_cli.models import load_tokenizer
    from distil_cli.plugins.choosing import detect_family
    from distil_cli.plugins.families import qwen2_tiny_config

    tokenizer = family_tokenizer(QWEN25, TOKENS, eos="<|im_end|>")
    folder = tmp_path / "my-finetuned-model"  # no "qwen" in the name: recognised by its config
    config: Qwen2Config = qwen2_tiny_config(len(tokenizer))
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    family = detect_family(str(folder), str(folder))
    assert family is not None and family.name == "qwen2"
    formatter = choose_formatter(load_tokenizer(str(folder)), None, family)
    assert formatter.name == "chat-template" and "You are Qwen" in formatter.format("i", "t").prompt
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path / "bare")
    bare = load_tokenizer(str(tmp_path / "bare"))
    bare.chat_template = None
    assert choose_formatter(bare, None, family).name == "chatml"  # no template: the family's formatter
