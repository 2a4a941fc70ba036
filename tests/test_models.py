"""The embedded model: pull (sha256-checked, converted once), fast reload, resolution."""

from __future__ import annotations

import time

import pytest
from conftest import run_cli

from distil_cli.errors import ModelError
from distil_cli.models import MARKER, pull, resolve_model


def test_pull_rejects_wrong_gguf(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF not really")
    with pytest.raises(ModelError, match="sha256"):
        pull(tmp_path / "cache", fake)
    assert not (tmp_path / "cache" / "SmolLM2-135M-Instruct").exists()


def test_resolve_model_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.bin"), tmp_path)
    assert resolve_model("Qwen/Qwen2.5-0.5B", tmp_path) == "Qwen/Qwen2.5-0.5B"


@pytest.mark.slow
def test_embedded_model_loads_fast(embedded_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    assert (embedded_model_dir / MARKER).is_file()
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"loading the cached model took {elapsed:.1f}s"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert model.config.vocab_size == 49152
    # a run folder resolves to its final/
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "config.json").write_text("{}")
    assert resolve_model(str(run), tmp_path) == str(run / "final")


@pytest.mark.slow
def test_models_list_and_pull_cli(embedded_model_dir):
    cache = str(embedded_model_dir.parent)
    result = run_cli("models", "pull", "--cache-dir", cache)
    assert result.exit_code == 0 and str(embedded_model_dir) in result.output.replace("\n", "")
    listed = run_cli("models", "list", "--cache-dir", cache, env={"COLUMNS": "250"})
    assert "SmolLM2-135M-Instruct" in listed.output
