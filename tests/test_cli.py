"""The CLI surface: help for every command, the version, one-line errors and the debug traceback."""

from __future__ import annotations

import pytest
from conftest import run_cli

from distil_cli.version import __version__

COMMANDS = [
    "prepare",
    "annotate",
    "train",
    "infer",
    "score",
    "config show",
    "models pull",
    "models list",
    "plugins list",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run_cli(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_top_level_help_lists_commands():
    result = run_cli("--help")
    for name in ("prepare", "annotate", "train", "infer", "score", "models", "plugins", "config"):
        assert name in result.output
    assert run_cli("--version").output.strip() == f"distil {__version__}"


def test_prepare_help_explains_options():
    result = run_cli("prepare", "--help", env={"COLUMNS": "200"})
    for flag in (
        "--split",
        "--seed",
        "--max-input-tokens",
        "--tokenizer",
        "--allow-missing",
        "--encoding",
        "--id-field",
    ):
        assert flag in result.output
    assert "[default: 0.8,0.1,0.1]" in result.output


def test_debug_shows_traceback(tmp_path):
    result = run_cli("prepare", tmp_path / "missing", "--out", tmp_path / "o", env={"DISTIL_DEBUG": "1"})
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "DataError"


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_debug_off_values_keep_the_one_line_error(tmp_path, value):
    result = run_cli("prepare", tmp_path / "missing", "--out", tmp_path / "o", env={"DISTIL_DEBUG": value})
    assert result.exit_code == 1 and result.output.startswith("error:")
    assert isinstance(result.exception, SystemExit)


def test_help_lists_the_allowed_values_of_choice_options():
    text = " ".join(run_cli("score", "--help", env={"COLUMNS": "200"}).output.split())
    assert "One of: table, json, csv, markdown" in text and "One of: porter, language, none" in text
    text = " ".join(run_cli("train", "--help", env={"COLUMNS": "200"}).output.split())
    for choices in ("One of: standard, distill", "One of: last, best", "none, tensorboard, wandb, mlflow"):
        assert choices in text
    # the default instruction pair is named, as it is in prompts.DEFAULT_INSTRUCTIONS
    assert "(default: 'Respond to the text below.'" in text and "(default: 'Explain the text below.'" in text


def test_json_output_for_plugins_models_config_and_env(tmp_path):
    import json

    plugins = json.loads(run_cli("plugins", "--json").stdout)
    assert {"exact", "equation", "rouge"} <= set(plugins["metrics"]) and plugins["formatters"]["chatml"]
    config = json.loads(run_cli("config", "show", "--json", "--section", "train").stdout)
    assert {"key": "train.alpha", "value": "0.5", "source": "default"} in config
    models = json.loads(run_cli("models", "list", "--json", "--cache-dir", tmp_path).stdout)
    assert models["cache"] == [] and [m["name"] for m in models["pullable"]] == ["default", "gemma3-270m"]
    env = json.loads(run_cli("env", "--json").stdout)
    assert env["packages"]["torch"] and "cuda" in env and env["model_cache"]


def test_json_config_file_is_read_as_json(tmp_path):
    from distil_cli.settings import load_settings

    path = tmp_path / "distil.json"
    path.write_text('{"train": {"alpha": 0.3, "trainer_args": {"max_grad_norm": 0.5}}}')
    train = load_settings(path, env={}).settings.train
    assert train.alpha == 0.3 and train.trainer_args == {"max_grad_norm": 0.5}


def test_running_out_of_gpu_memory_is_one_line_saying_what_to_lower(monkeypatch):
    """torch's CUDA out-of-memory error (the settings asked too much of the GPU) is no "internal error"."""
    import torch

    import distil_cli.cli.env

    detail = (
        "CUDA out of memory. Tried to allocate 980.00 MiB. GPU 0 has a total capacity of 79.18 GiB of which 482.25 "
        "MiB is free. Process 2204 has 26.11 GiB memory in use. Including non-PyTorch memory, this process has 6.79 "
        "GiB memory in use. Of the allocated memory 5.81 GiB is allocated by PyTorch"
    )

    def out_of_memory(ctx):
        raise torch.OutOfMemoryError(detail)

    monkeypatch.setattr(distil_cli.cli.env, "environment", out_of_memory)
    result = run_cli("env")
    assert result.exit_code == 1 and "internal error" not in result.output
    line = " ".join(result.output.split())
    assert line.startswith(
        "error: out of GPU memory (Tried to allocate 980.00 MiB. GPU 0 has a total capacity of 79.18 GiB of which "
        "482.25 MiB is free): lower --tokens-per-batch"
    )
    assert "--jobs" in line and "Process 2204" not in line
