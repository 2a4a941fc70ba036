"""The built-in plugin: ChatML and chat-template formatters, Qwen2/SmolLM families, annotate backends."""

from __future__ import annotations

from distil_cli.hookspecs import hookimpl


def smollm_tiny_config(vocab_size: int):
    """A 2-layer Llama of SmolLM2's family, for tests and CPU benchmarks (no download)."""
    from transformers import LlamaConfig

    from distil_cli.plugins import tiny_config

    return tiny_config(LlamaConfig, vocab_size, tie_word_embeddings=True)


def qwen2_tiny_config(vocab_size: int):
    from transformers import Qwen2Config

    from distil_cli.plugins import tiny_config

    return tiny_config(Qwen2Config, vocab_size, tie_word_embeddings=True)


@hookimpl
def register_model_families(register):
    from distil_cli.plugins import ModelFamily

    register(
        ModelFamily(
            name="qwen2",
            formatter="chatml",
            model_types=("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"),
            architectures=("Qwen2ForCausalLM", "Qwen3ForCausalLM"),
            name_patterns=(r"qwen",),
            end_of_turn=("<|im_end|>",),
            tiny_config=qwen2_tiny_config,
        )
    )
    register(
        ModelFamily(
            name="smollm",
            formatter="chatml",
            name_patterns=(r"smollm",),
            end_of_turn=("<|im_end|>",),
            tiny_config=smollm_tiny_config,
        )
    )


@hookimpl
def register_prompt_formatters(register):
    from distil_cli.prompts import ChatMLFormatter, ChatTemplateFormatter

    register(ChatTemplateFormatter.name, ChatTemplateFormatter)
    register(ChatMLFormatter.name, ChatMLFormatter)


def _openai_backend(cfg, cache_dir):
    from distil_cli.annotate import DEFAULT_OPENAI_MODEL, resolve_api_key
    from distil_cli.teachers import OpenAITeacher

    return OpenAITeacher(
        cfg.base_url,
        cfg.model or DEFAULT_OPENAI_MODEL,
        resolve_api_key(cfg),
        cfg.api_key_env,
        cfg.temperature,
        cfg.max_tokens,
        cfg.timeout,
        cfg.headers,
    )


def _local_backend(cfg, cache_dir):
    from distil_cli.models import resolve_model
    from distil_cli.teachers import LocalTeacher

    name = cfg.model or "default"
    return LocalTeacher(resolve_model(name, cache_dir), name, cfg.max_tokens, cfg.temperature, cfg.formatter)


@hookimpl
def register_annotate_backends(register):
    register("openai", _openai_backend)
    register("local", _local_backend)
