"""The Python API: the same steps as the CLI, with the same settings validation and errors."""

from __future__ import annotations

import csv

import pytest
from conftest import tiny_model_dir

from distil_cli import ConfigError, api


@pytest.mark.integration
def test_prepare_train_infer_score_from_python(tmp_path):
    source = tmp_path / "corpus.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "input", "output", "rationale", "lang"])
        for i in range(20):
            writer.writerow([f"c{i}", f"Patient {i} has fever and cough.", f"Fever {i}.", f"fever; cough {i}", "en"])
    prepared = api.prepare(source, tmp_path / "data", split="0.8,0.1,0.1")
    assert prepared.manifest["totals"] == {"train": 16, "valid": 2, "test": 2}
    tiny = str(tiny_model_dir())
    runs = {}
    for objective in ("standard", "distill"):
        record = api.train(tmp_path / "data", tmp_path / objective, model=tiny, objective=objective, max_steps=1)
        assert record.global_steps == 1 and record.settings["objective"] == objective
        result = api.infer(tmp_path / objective, tmp_path / "data", tmp_path / f"{objective}.jsonl", max_new_tokens=3)
        assert result.written == 2
        runs[objective] = tmp_path / f"{objective}.jsonl"
    scores = api.score(runs["standard"], compare=runs["distill"], bootstrap=100)
    assert scores["scores"][0]["n"] == 2 and {r["metric"] for r in scores["comparison"]} >= {"rouge_mean"}
    with pytest.raises(ConfigError, match="invalid setting train.alpha"):
        api.train(tmp_path / "data", tmp_path / "bad", model=tiny, alpha=2)
    assert not (tmp_path / "bad").exists()
