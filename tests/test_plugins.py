"""Plugins: installed packages are listed and used, broken ones only warn, duplicates are errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from importlib import metadata

import pytest
from conftest import run_cli

from distil_cli import build_registry, hookimpl
from distil_cli.errors import ConfigError
from distil_cli.plugins.registry import BUILTIN, reset_registry

PLUGINS = {"gemma": "distil-gemma", "llama3": "distil-llama3", "mistral": "distil-mistral", "phi3": "distil-phi3"}


@pytest.fixture(autouse=True)
def _fresh_registry():
    reset_registry()
    yield
    reset_registry()


def test_plugin_packages_are_installed_and_listed():
    installed = {ep.name for ep in metadata.entry_points(group="distil")}
    assert set(PLUGINS) <= installed, "make setup installs the plugins/ packages"
    result = run_cli("plugins", env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name, package in PLUGINS.items():
        assert package in result.output and f"│ {name} " in result.output
    assert "chat-template" in result.output and "openai" in result.output and BUILTIN in result.output


def test_load_plugins_restriction(monkeypatch):
    monkeypatch.setenv("DISTIL_LOAD_PLUGINS", "gemma")
    registry = build_registry()
    assert "gemma" in registry.formatters and "llama3" not in registry.formatters
    statuses = {p["name"]: p["status"] for p in registry.plugins}
    assert statuses["llama3"].startswith("skipped")


def test_duplicate_names_name_both_plugins():
    dup = types.ModuleType("dup_plugin")

    @hookimpl
    def register_prompt_formatters(register):
        register("chatml", object)

    dup.register_prompt_formatters = register_prompt_formatters
    with pytest.raises(ConfigError, match=r"formatter 'chatml' is registered by both 'distil \(built-in\)' and 'dup'"):
        build_registry(extra_plugins=[("dup", dup)])


@pytest.mark.integration
def test_broken_plugin_warns_without_crashing(tmp_path):
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[distil]\nbroken = broken_plugin_module\n")
    (site / "broken_plugin_module.py").write_text("raise RuntimeError('boom at import')\n")
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "distil_cli", "plugins"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "plugin 'broken' (broken-plugin 0.1) failed to load: RuntimeError: boom at import" in done.stderr
    assert "failed" in done.stdout and "gemma" in done.stdout


@pytest.fixture
def gemma_tiny(tmp_path):
    """A tiny Gemma-2 model whose tokenizer has no chat template: the family decides the formatter."""
    from distil_gemma import tiny_config
    from transformers import AutoModelForCausalLM

    from distil_cli import family_tokenizer

    tokenizer = family_tokenizer(None, ["<start_of_turn>", "<end_of_turn>"], bos="<bos>", eos="<eos>", pad="<pad>")
    model = AutoModelForCausalLM.from_config(tiny_config(len(tokenizer)))
    folder = tmp_path / "gemma-tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    data = tmp_path / "data"
    data.mkdir()
    row = {"id": "c1", "lang": "en", "input": "Fever and cough.", "output": "Pneumonia.", "rationale": "Fever; cough."}
    (data / "train.jsonl").write_text(json.dumps(row) + "\n")
    return folder, data


@pytest.mark.integration
def test_installed_plugin_is_used_by_train_inspect(gemma_tiny):
    folder, data = gemma_tiny
    result = run_cli("train", data, "--inspect", 2, "--model", folder, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "formatter: gemma (end-of-turn '<end_of_turn>')" in result.output and "family: gemma" in result.output
    assert "<start_of_turn>model" in result.output and "Pneumonia.<end_of_turn>" in result.output
    wrong = run_cli("train", data, "--inspect", 1, "--model", folder, "--formatter", "phi3")
    assert wrong.exit_code == 1 and "formatter 'phi3' ends turns with '<|end|>', which is not one token" in wrong.output
    unknown = run_cli("train", data, "--inspect", 1, "--model", folder, "--formatter", "nope")
    assert unknown.exit_code == 1 and "unknown prompt formatter 'nope'" in unknown.output
