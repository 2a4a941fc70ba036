"""The CLI surface: help for every command, the version, one-line errors and the debug traceback."""

from __future__ import annotations

import pytest
from conftest import run_cli

from distil_cli import __version__

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
