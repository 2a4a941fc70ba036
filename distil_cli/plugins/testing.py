"""Helpers for plugin authors' tests: check a formatter against a family's official chat template.

No download: the tokenizer is the embedded SmolLM2 tokenizer extended with the family's
special tokens and given the family's official jinja template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def family_tokenizer(
    chat_template: str | None,
    special_tokens: list[str],
    bos: str | None = None,
    eos: str | None = None,
    pad: str | None = None,
    cache_dir: Path | None = None,
):
    from transformers import AutoTokenizer

    from distil_cli.models import pull
    from distil_cli.settings import ModelsSettings

    source = pull(cache_dir or ModelsSettings().cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    extra = [t for t in [*special_tokens, bos, eos, pad] if t]
    tokenizer.add_special_tokens({"additional_special_tokens": list(dict.fromkeys(extra))})
    if bos:
        tokenizer.bos_token = bos
    if eos:
        tokenizer.eos_token = eos
    tokenizer.pad_token = pad or tokenizer.eos_token
    tokenizer.chat_template = chat_template
    return tokenizer


def check_formatter(formatter: Any, tokenizer: Any, system: str | None = None, generation_prompt: bool = True) -> None:
    """Assert that ``formatter`` reproduces ``tokenizer``'s chat template and masks exactly answer + end-of-turn.

    ``generation_prompt=False`` for templates without one (Mistral): the prompt is then the
    template's rendering of the conversation without the answer.
    """
    from distil_cli.encoding import IGNORE, encode_example
    from distil_cli.prompts import user_message

    instruction, text = "Résumez le cas clinique suivant.", "Patiente de 54 ans, fièvre à 39,5 °C.\nToux productive."
    answer = "Pneumonie communautaire ; guérison sous ceftriaxone."
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user_message(instruction, text)}
    ]
    official_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    formatted = formatter.format(instruction, text, answer=answer, system=system)
    assert formatted.prompt == official_prompt, (formatted.prompt, official_prompt)
    official_full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    assert official_full.startswith(formatted.prompt + formatted.target), (formatted, official_full)
    assert formatted.target == answer + formatter.end_of_turn
    example = encode_example(tokenizer, formatter, instruction, text, answer, 512, 128, "check", 0)
    supervised = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE]
    assert tokenizer.decode(supervised) == answer + formatter.end_of_turn
    end_id = tokenizer.convert_tokens_to_ids(formatter.end_of_turn)
    assert supervised[-1] == end_id, "the end-of-turn marker must be one token"
