"""Settings precedence (defaults < file < env < flags), unknown keys, ranges, config show."""

from __future__ import annotations

import pytest
from conftest import run_cli

from distil_cli.errors import ConfigError
from distil_cli.settings import effective_rows, load_settings


def _toml(tmp_path, text: str):
    path = tmp_path / "distil.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path):
    loaded = load_settings(None, env={})
    assert loaded.settings.train.alpha == 0.5
    assert loaded.settings.prepare.split == (0.8, 0.1, 0.1)
    assert loaded.source("train", "alpha") == "default"


def test_precedence_file_env_flag(tmp_path):
    cfg = _toml(tmp_path, "[train]\nalpha = 0.6\nlr = 2e-5\nepochs = 2\n[prepare]\nseed = 7\n")
    env = {"DISTIL_TRAIN__ALPHA": "0.7", "DISTIL_TRAIN__LR": "3e-5"}
    loaded = load_settings(cfg, {"train": {"alpha": 0.9, "epochs": None}}, env=env)
    train = loaded.settings.train
    assert train.alpha == 0.9 and loaded.source("train", "alpha") == "flag --alpha"
    assert train.lr == 3e-5 and loaded.source("train", "lr") == "environment DISTIL_TRAIN__LR"
    assert train.epochs == 2 and loaded.source("train", "epochs") == f"config file {cfg}"
    assert loaded.settings.prepare.seed == 7
    assert loaded.settings.train.batch_size == 16 and loaded.source("train", "batch_size") == "default"


def test_yaml_file(tmp_path):
    path = tmp_path / "distil.yaml"
    path.write_text("train:\n  alpha: 0.25\n", encoding="utf-8")
    assert load_settings(path, env={}).settings.train.alpha == 0.25


@pytest.mark.parametrize(
    "source, expected",
    [
        ("file", "unknown setting 'train.alphaa' (from config file"),
        ("env", "unknown setting 'train.alphaa' (from environment DISTIL_TRAIN__ALPHAA)"),
        ("section", "unknown settings section 'trian'"),
    ],
)
def test_unknown_keys_name_source(tmp_path, source, expected):
    with pytest.raises(ConfigError) as err:
        if source == "file":
            load_settings(_toml(tmp_path, "[train]\nalphaa = 1\n"), env={})
        elif source == "env":
            load_settings(None, env={"DISTIL_TRAIN__ALPHAA": "1"})
        else:
            load_settings(_toml(tmp_path, "[trian]\nalpha = 1\n"), env={})
    assert expected in str(err.value)


def test_out_of_range_names_key_and_source(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"DISTIL_TRAIN__ALPHA": "1.5"})
    message = str(err.value)
    assert "train.alpha" in message and "DISTIL_TRAIN__ALPHA" in message and "1.5" in message
    with pytest.raises(ConfigError, match=r"prepare.split .*flag --split.*sum to 1"):
        load_settings(None, {"prepare": {"split": "0.5,0.3,0.3"}}, env={})


def test_env_list_and_dict_fields():
    env = {
        "DISTIL_TRAIN__LORA_TARGET_MODULES": "q_proj, v_proj",
        "DISTIL_TRAIN__SUMMARY_INSTRUCTIONS": '{"en": "Summarise."}',
    }
    train = load_settings(None, env=env).settings.train
    assert train.lora_target_modules == ["q_proj", "v_proj"]
    assert train.summary_instructions == {"en": "Summarise."}


def test_secrets_masked(tmp_path):
    loaded = load_settings(None, env={"DISTIL_ANNOTATE__API_KEY": "sk-very-secret"})
    assert loaded.settings.annotate.api_key.get_secret_value() == "sk-very-secret"
    rows = {key: (value, source) for key, value, source in effective_rows(loaded)}
    assert rows["annotate.api_key"] == ("**********", "environment DISTIL_ANNOTATE__API_KEY")


def test_config_show_cli_reflects_precedence(tmp_path):
    cfg = _toml(tmp_path, "[train]\nalpha = 0.6\nlr = 2e-5\n[annotate]\nconcurrency = 3\n")
    env = {"DISTIL_TRAIN__LR": "4e-5", "DISTIL_ANNOTATE__API_KEY": "sk-never-shown", "COLUMNS": "250"}
    result = run_cli("--config", cfg, "config", "show", env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 3}
    assert "0.6" in lines["train.alpha"] and "config file" in lines["train.alpha"]
    assert "4e-05" in lines["train.lr"] and "DISTIL_TRAIN__LR" in lines["train.lr"]
    assert "sk-never-shown" not in result.output and "**********" in lines["annotate.api_key"]
    only = run_cli("--config", cfg, "config", "show", "--section", "annotate", env=env)
    assert "annotate.concurrency" in only.output and "train.alpha" not in only.output


def test_config_errors_are_one_line(tmp_path):
    result = run_cli("config", "show", env={"DISTIL_TRAIN__ALPHA": "2"})
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: invalid setting train.alpha")
    assert "Traceback" not in result.output
    broken = _toml(tmp_path, "[train\nalpha=")
    result = run_cli("--config", broken, "config", "show")
    assert result.exit_code == 1 and "cannot be parsed" in result.output


def test_aliases_for_renamed_fields_and_hugging_face_names(tmp_path):
    cfg = _toml(tmp_path, "[train]\nmodel_type = 'standard'\nlearning_rate = 2e-4\nnum_train_epochs = 5\n")
    env = {"DISTIL_TRAIN__GRADIENT_ACCUMULATION_STEPS": "4"}
    loaded = load_settings(cfg, env=env)
    train = loaded.settings.train
    assert (train.objective, train.lr, train.epochs, train.grad_accum) == ("standard", 2e-4, 5, 4)
    assert loaded.source("train", "lr") == f"config file {cfg}"
    assert loaded.source("train", "grad_accum") == "environment DISTIL_TRAIN__GRADIENT_ACCUMULATION_STEPS"
    twice = _toml(tmp_path, "[train]\nlr = 1e-4\nlearning_rate = 2e-4\n")
    with pytest.raises(ConfigError, match="sets 'lr' twice"):
        load_settings(twice, env={})


def test_select_best_needs_checkpoints():
    with pytest.raises(ConfigError, match="select best needs the checkpoints"):
        load_settings(None, {"train": {"select": "best", "save_checkpoints": False}}, env={})
    assert load_settings(None, {"train": {"select": "last", "save_checkpoints": False}}, env={})


def test_non_finite_numbers_are_rejected_everywhere(tmp_path):
    with pytest.raises(ConfigError, match="finite"):
        load_settings(None, {"prepare": {"split": "nan,0.5,0.5"}}, env={})
    with pytest.raises(ConfigError, match="DISTIL_TRAIN__ALPHA"):
        load_settings(None, env={"DISTIL_TRAIN__ALPHA": "nan"})
    with pytest.raises(ConfigError, match="finite"):
        load_settings(None, env={"DISTIL_TRAIN__LR": "inf"})
    result = run_cli("prepare", tmp_path, "--out", tmp_path / "o", "--split", "nan,0.5,0.5")
    assert result.exit_code == 1 and "invalid setting prepare.split" in result.output


def test_config_file_that_is_not_utf8_or_a_folder_is_a_one_line_error(tmp_path):
    bad = tmp_path / "latin.toml"
    bad.write_bytes("[train]\n# résumé\nalpha = 0.5\n".encode("latin-1"))
    result = run_cli("--config", bad, "config", "show")
    assert result.exit_code == 1 and "is not UTF-8 text" in result.output
    result = run_cli("--config", tmp_path, "config", "show")
    assert result.exit_code == 1 and "(it is a folder)" in result.output
