"""The built-in plugin: ChatML and chat-template formatters, Qwen2/SmolLM families, annotate backends, metrics.

It is loaded by the registry by module name, like any plugin (it depends on the core; the
core never imports it).
"""

from __future__ import annotations

from distil_cli.plugins.families import BUILTIN_FAMILIES
from distil_cli.plugins.hookspecs import hookimpl


@hookimpl
def register_model_families(register):
    for family in BUILTIN_FAMILIES:
        register(family)


@hookimpl
def register_prompt_formatters(register):
    from distil_cli.prompts import ChatMLFormatter, ChatTemplateFormatter

    register(ChatTemplateFormatter.name, ChatTemplateFormatter)
    register(ChatMLFormatter.name, lambda tokenizer: ChatMLFormatter())  # ChatML needs nothing of the tokenizer


def _openai_backend(cfg, cache_dir):
    from distil_cli.teach.openai_api import OpenAITeacher

    return OpenAITeacher.from_settings(cfg)


def _local_backend(cfg, cache_dir):
    from distil_cli.models import resolve_model
    from distil_cli.teach.local import LocalTeacher

    name = cfg.model or "default"
    return LocalTeacher(resolve_model(name, cache_dir), name, cfg.max_tokens, cfg.temperature, cfg.formatter)


@hookimpl
def register_annotate_backends(register):
    register("openai", _openai_backend)
    register("local", _local_backend)


def _answer_metric(name: str):
    def factory(cfg):
        from distil_cli.evaluate.answers import equation_match, exact_match
        from distil_cli.evaluate.metrics import Metric

        if name == "exact":
            return Metric("exact", ("exact_match",), "exact_match", exact_match)
        return Metric("equation", ("equation_accuracy",), "equation_accuracy", equation_match)

    return factory


def _rouge(cfg):
    from distil_cli.evaluate.metrics import rouge_metric

    return rouge_metric(cfg)


def _bertscore(cfg):
    from distil_cli.evaluate.metrics import bertscore_metric

    return bertscore_metric(cfg)


@hookimpl
def register_metrics(register):
    register("rouge", _rouge)  # ROUGE-1/2/L/Lsum F1 and their mean (rouge-score, offline)
    register("exact", _answer_metric("exact"))  # answer text equality after normalisation (QA)
    register("equation", _answer_metric("equation"))  # equal arithmetic values (math word problems)
    register("bertscore", _bertscore)  # BERTScore F1 with a local encoder (--bertscore-model)
