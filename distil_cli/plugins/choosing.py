"""Which registered prompt formatter a tokenizer gets (above the registry and the formatters)."""

from __future__ import annotations

from distil_cli.errors import ConfigError
from distil_cli.plugins.registry import get_registry
from distil_cli.prompts import ChatMLFormatter, ChatTemplateFormatter, PromptFormatter


def detect_family(model_source: str, model_arg: str):
    """The registered family of this checkpoint (by config and name), or None."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_source)
    except (OSError, ValueError):
        config = None
    return get_registry().detect_family(config, f"{model_arg} {model_source}")


def choose_formatter(tokenizer, name: str | None = None, family=None) -> PromptFormatter:
    """``name`` if given; else the tokenizer's chat template; else the family's formatter; else ChatML."""
    formatters = get_registry().formatters
    if name is None:
        if getattr(tokenizer, "chat_template", None):
            name = ChatTemplateFormatter.name
        elif family is not None:
            name = family.formatter
        else:
            name = ChatMLFormatter.name
    if name not in formatters:
        raise ConfigError(
            f"unknown prompt formatter '{name}'; known: {', '.join(sorted(formatters))} (see `distil plugins`)"
        )
    formatter = formatters[name](tokenizer)
    ids = tokenizer(formatter.end_of_turn, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(
            f"formatter '{name}' ends turns with {formatter.end_of_turn!r}, which is not one token of this tokenizer "
            "(generation could never stop); choose the formatter of this model family"
        )
    return formatter
