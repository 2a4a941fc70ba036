"""The Gemma formatter equals Gemma's official chat template; masking covers answer + <end_of_turn>."""

from __future__ import annotations

import pytest
from distil_gemma import GemmaFormatter, tiny_config

from distil_cli import build_registry, check_formatter, family_tokenizer

# The chat template of google/gemma-2-2b-it (Gemma 1 and 2 share it).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return family_tokenizer(GEMMA_TEMPLATE, ["<start_of_turn>", "<end_of_turn>"], bos="<bos>", eos="<eos>", pad="<pad>")


def test_matches_official_template_and_masking(tokenizer):
    check_formatter(GemmaFormatter(tokenizer), tokenizer)


def test_system_prompt_goes_into_the_first_user_turn(tokenizer):
    formatted = GemmaFormatter(tokenizer).format("Summarize.", "Text.", system="Be brief.")
    assert (
        formatted.prompt
        == "<bos><start_of_turn>user\nBe brief.\n\nSummarize.\n\nText.<end_of_turn>\n<start_of_turn>model\n"
    )


def test_registered_family_recognises_gemma_and_tiny_preset_runs(tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    registry = build_registry()  # the installed package, found through its entry point
    assert registry.source("formatter", "gemma") == "gemma"
    family = registry.detect_family(tiny_config(100), "")
    assert family is not None and family.name == "gemma" and family.formatter == "gemma"
    assert registry.detect_family(None, "google/gemma-2-2b-it").name == "gemma"
    model = AutoModelForCausalLM.from_config(tiny_config(len(tokenizer)))
    out = model(torch.tensor([[1, 2, 3]]))
    assert out.logits.shape == (1, 3, len(tokenizer))


def _pulled_gemma3():
    from distil_cli.pull import GEMMA3_270M, is_pulled, model_dir
    from distil_cli.settings import ModelsSettings

    cache = ModelsSettings().cache_dir
    return model_dir(cache, GEMMA3_270M) if is_pulled(cache, GEMMA3_270M) else None


@pytest.mark.integration
@pytest.mark.skipif(_pulled_gemma3() is None, reason="gemma3-270m not pulled (`distil models pull gemma3-270m`)")
def test_pulled_gemma3_270m_prompts_and_masks_are_exact():
    """The real Gemma 3 tokenizer (converted from the registry GGUF): one token per turn marker, the
    formatter chosen for it (the GGUF has no chat template) renders Gemma's template exactly and
    supervises exactly answer + <end_of_turn>."""
    from transformers import AutoConfig

    from distil_cli.models import load_tokenizer
    from distil_cli.plugins.choosing import choose_formatter
    from distil_cli.plugins.registry import get_registry
    from distil_cli.prompts import stop_token_ids

    folder = _pulled_gemma3()
    tokenizer = load_tokenizer(str(folder))
    assert not tokenizer.chat_template
    family = get_registry().detect_family(AutoConfig.from_pretrained(folder), "gemma3-270m")
    formatter = choose_formatter(tokenizer, family=family)
    assert isinstance(formatter, GemmaFormatter)
    vocab = tokenizer.get_vocab()
    for marker in ("<start_of_turn>", "<end_of_turn>"):
        assert tokenizer.encode(marker, add_special_tokens=False) == [vocab[marker]]
    assert vocab["<end_of_turn>"] in stop_token_ids(tokenizer, formatter)
    prompt = formatter.format("Summarize.", "Text.").prompt
    assert tokenizer.encode(prompt, add_special_tokens=False)[:2] == [tokenizer.bos_token_id, vocab["<start_of_turn>"]]
    tokenizer.chat_template = GEMMA_TEMPLATE  # Gemma 3's template renders text turns as Gemma 2's does
    check_formatter(formatter, tokenizer)


def test_infer_on_a_bare_gemma_folder_without_a_template_uses_the_family_formatter(tmp_path):
    """A pulled Gemma's tokenizer has no chat template: `distil infer MODEL --prompt` takes the family's
    formatter (it chose ChatML, whose <|im_end|> is no token of Gemma's tokenizer, and refused)."""
    import torch
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from distil_cli.cli import app
    from distil_cli.generate.infer import Generator
    from distil_cli.settings import InferSettings

    bare = family_tokenizer(GEMMA_TEMPLATE, ["<start_of_turn>", "<end_of_turn>"], bos="<bos>", eos="<eos>")
    bare.chat_template = None
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config(len(bare))).save_pretrained(tmp_path)
    bare.save_pretrained(tmp_path)
    assert Generator.load(str(tmp_path), InferSettings(), tmp_path).formatter.name == "gemma"
    result = CliRunner().invoke(app, ["infer", str(tmp_path), "--prompt", "Text.", "--max-new-tokens", "2"])
    assert result.exit_code == 0, result.output
