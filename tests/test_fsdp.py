"""--fsdp: what can be checked without GPUs (accelerate shards only on CUDA): the refusals, the
TrainingArguments it makes, sharded checkpoints counted as complete. The runs themselves need two GPUs
(benchmarks/run_gpus.sh; docs/benchmarks.md says what ran)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, tiny_model_dir

from distil_cli.errors import ConfigError
from distil_cli.settings import TrainSettings


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lora"], "--fsdp shards full fine-tuning; LoRA under FSDP is not supported"),
        (["--precision", "bf16"], "--fsdp keeps float32 sharded weights with bf16 compute"),
        (["--select", "best"], "--fsdp runs no evaluation during training: --select best has nothing to pick"),
    ],
)
def test_fsdp_refuses_what_it_does_not_shard_in_one_line(tmp_path, extra, message):
    result = run_cli("train", tmp_path, "--out", tmp_path / "run", "--fsdp", *extra)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without GPUs")
def test_fsdp_without_gpus_is_refused_before_any_process_starts(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "a", "lang": "en", "input": "x", "output": "y"}) + "\n")
    args = ["train", tmp_path, "--out", tmp_path / "run", "--model", tiny_model_dir(), "--fsdp"]
    result = run_cli(*args, "--gpus", 2)
    assert result.exit_code == 1 and "--fsdp needs CUDA GPUs" in result.output
    assert "Starting 2 processes" not in result.output and not (tmp_path / "run").exists()


def test_fsdp_arguments_shard_with_activation_checkpointing_and_sharded_checkpoints(tmp_path, monkeypatch):
    from distil_cli.train import config

    monkeypatch.setattr(config, "check_fsdp", lambda *a, **k: None)
    cfg = config.with_precision(TrainSettings(fsdp=True, epochs=1.0, gradient_checkpointing=True))
    assert cfg.precision == "mixed"  # FSDP's mixed precision: float32 shards, bf16 compute
    examples = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "task": 0, "id": "a"}]
    args = config.training_arguments(tmp_path, cfg, examples, 1, has_eval=False)
    plugin = args.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2 and plugin["activation_checkpointing"] is True
    assert plugin["state_dict_type"] == "SHARDED_STATE_DICT" and plugin["reshard_after_forward"] is True
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"  # each decoder layer (_no_split_modules)
    assert args.fused_ce is False and not args.gradient_checkpointing  # FSDP's own checkpointing instead
    assert not args.master_weights and args.eval_strategy == "no"
    with pytest.raises(ConfigError, match="distil sets it from --fsdp"):
        config.check_trainer_args({"fsdp_config": {"version": 1}})


def test_a_sharded_checkpoint_is_complete_once_its_index_is_written(tmp_path):
    from distil_cli.train.resume import FSDP_SHARDS, is_complete

    checkpoint = tmp_path / "checkpoint-4"
    (checkpoint / FSDP_SHARDS).mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "max_steps": 4}))
    (checkpoint / FSDP_SHARDS / "__0_0.distcp").write_bytes(b"shard")
    assert not is_complete(checkpoint)  # cut off before the index
    (checkpoint / FSDP_SHARDS / ".metadata").write_bytes(b"index")
    assert is_complete(checkpoint)


def test_a_run_that_is_not_sharded_saves_its_own_weights():
    from distil_cli.train.finish import full_state_dict

    class Plain:
        is_fsdp_enabled = False

    assert full_state_dict(Plain()) is None
