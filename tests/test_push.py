"""`distil push`: what a finished run uploads (listed offline with --dry-run), and the errors before any upload."""

from __future__ import annotations

import pytest
from conftest import run_cli

from distil_cli.run_record import RunRecord


def _run(tmp_path, adapter=False, status="done"):
    run = tmp_path / "run"
    final = run / "final"
    final.mkdir(parents=True)
    (final / "README.md").write_text("---\ntags:\n- distil\n---\n# card\n")
    (final / ("adapter_model.safetensors" if adapter else "model.safetensors")).write_bytes(b"\0" * 2048)
    if adapter:
        (final / "adapter_config.json").write_text("{}")
    (final / "tokenizer.json").write_text("{}")
    RunRecord({}, "default", "chatml", {}, 64, status=status).write(run)
    return run


def test_dry_run_lists_final_and_sends_nothing(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda *a, **k: pytest.fail("uploaded"))
    run = _run(tmp_path)
    result = run_cli("push", run, "--repo", "alice/distil-run", "--private", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "model.safetensors" in result.output and "README.md" in result.output and "tokenizer.json" in result.output
    assert "Would upload the model" in result.output and "to alice/distil-run (private); nothing was sent" in " ".join(
        result.output.split()
    )


def test_push_errors_come_before_any_upload(tmp_path):
    run = _run(tmp_path)
    bad = run_cli("push", run, "--repo", "no-owner", "--dry-run")
    assert bad.exit_code == 1 and "give OWNER/NAME" in bad.output
    wrong = run_cli("push", run, "--repo", "a/b", "--adapter", "--dry-run")
    assert wrong.exit_code == 1 and "holds merged weights, not a LoRA adapter" in wrong.output
    adapter = _run(tmp_path / "lora", adapter=True)
    assert run_cli("push", adapter, "--repo", "a/b", "--dry-run").exit_code == 1
    assert run_cli("push", adapter, "--repo", "a/b", "--adapter", "--dry-run").exit_code == 0
    unfinished = _run(tmp_path / "busy", status="running")
    busy = run_cli("push", unfinished, "--repo", "a/b", "--dry-run")
    assert busy.exit_code == 1 and "no finished final/" in busy.output
    offline = run_cli("push", run, "--repo", "a/b")  # tests run with HF_HUB_OFFLINE=1 (conftest)
    assert offline.exit_code == 1 and "offline" in offline.output and "nothing was uploaded" in offline.output


def test_push_to_hub_inside_training_points_to_distil_push():
    from distil_cli.errors import ConfigError
    from distil_cli.train.config import check_trainer_args

    with pytest.raises(ConfigError, match="distil push RUN_DIR --repo OWNER/NAME"):
        check_trainer_args({"push_to_hub": True})
    with pytest.raises(ConfigError, match="distil push"):
        check_trainer_args({"hub_model_id": "a/b"})
