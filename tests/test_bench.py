"""The benchmark keeps working on the CPU (tiny preset): both paths run and report comparable figures."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_cli


@pytest.mark.integration
def test_bench_train_and_infer_on_cpu(tmp_path):
    out = tmp_path / "train.json"
    result = run_cli(
        "bench", "train", "--shape", "tiny", "--steps", 1, "--records", 4, "--variant", "sdpa,4096,1024", "--out", out
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    seed, ours = report["results"]
    assert seed["name"].startswith("seed-style") and ours["name"].startswith("distil train")
    assert seed["ratio_to_seed"] == 1.0 and ours["useful_tokens_per_s"] > 0 and ours["ratio_to_seed"] > 0
    out = tmp_path / "profiled.json"
    result = run_cli(
        "bench", "train", "--shape", "tiny", "--steps", 1, "--records", 4, "--no-baseline",
        "--variant", "sdpa,2048,0", "--variant", "sdpa,2048,512,ckpt+bf16", "--profile", 2, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plain, profiled = json.loads(out.read_text())["results"]
    assert "profile" not in plain and "ckpt" in profiled["name"] and "bf16" in profiled["name"]
    profile = profiled["profile"]
    assert profile["steps"] == 3 and profile["cpu_busy_ms_per_step"] > 0 and profile["top"]
    assert any("aten::" in row["name"] for row in profile["top"])
    out = tmp_path / "infer.json"
    result = run_cli(
        "bench", "infer", "--shape", "tiny", "--seed-prompts", 2, "--prompts", 4, "--new-tokens", 8, "--out", out
    )
    assert result.exit_code == 0, result.output
    seed, ours = json.loads(out.read_text())["results"]
    assert seed["new_tokens_per_s"] > 0 and ours["new_tokens_per_s"] > 0
    assert seed["samples_per_s"] > 0 and ours["seconds"] > 0
    result = run_cli(
        "bench", "infer", "--shape", "tiny", "--seed-prompts", 1, "--prompts", 3, "--new-tokens", 4,
        "--variant", "slots-eager,2", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    _, eager = json.loads(out.read_text())["results"]
    assert eager["name"] == "distil infer (generate_batched, slots cache without CUDA graphs, batch 2)"
    assert eager["new_tokens_per_s"] > 0 and os.environ.get("DISTIL_CUDA_GRAPHS") is None  # put back afterwards


def test_bench_rejects_a_malformed_variant():
    result = run_cli("bench", "train", "--variant", "sdpa")
    assert result.exit_code == 1 and "expected ATTN,TOKENS_PER_BATCH,ROW_TOKENS" in result.output
    assert "internal error" not in result.output
    result = run_cli("bench", "train", "--variant", "sdpa,1024,0,turbo")
    flags = "flags: bf16, blocking, ckpt, compile, flce, liger, ligerce, lora, maskcheck, qlora"
    assert result.exit_code == 1 and flags in result.output
    result = run_cli("bench", "train", "--variant", "sdpa,1024,0", "--profile", 2)
    assert result.exit_code == 1 and "--profile 2: there are 1 variant(s)" in result.output
    result = run_cli("bench", "infer", "--variant", "static,many")
    assert result.exit_code == 1 and "expected CACHE,BATCH" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run_cli("bench", "infer", "--variant", "turbo,8")
    assert result.exit_code == 1 and "the cache is one of auto, slots, slots-eager, dynamic, static" in result.output


def test_infer_variants_parse_including_slots_without_graphs():
    from distil_cli.bench.infer import parse_infer_variant

    assert parse_infer_variant("slots-eager,1024") == ("slots-eager", 1024)
    assert parse_infer_variant("slots") == ("slots", 0)


def test_variant_flags_parse():
    from distil_cli.bench.train import parse_variant

    assert parse_variant("varlen,16384,0,liger+ckpt") == ("varlen", 16384, None, frozenset({"liger", "ckpt"}))
    assert parse_variant("sdpa, 8192, 2048") == ("sdpa", 8192, 2048, frozenset())


@pytest.mark.integration
def test_bench_e2e_times_each_phase_of_both_pipelines(tmp_path):
    import json

    env = {"DISTIL_TRAIN__MODEL": "tiny", "DISTIL_TRAIN__EPOCHS": "1", "DISTIL_TRAIN__MAX_NEW_TOKENS": "2"}
    env["DISTIL_INFER__MAX_NEW_TOKENS"] = "2"
    out = tmp_path / "e2e.json"
    result = run_cli("bench", "e2e", "--train", 4, "--valid", 2, "--test", 2, "--out", out, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    minimal, ours = report["results"]
    for row in (minimal, ours):
        assert row["total"] > 0 and row["steps"] > 0 and row["generation"] > 0 and row["start-up"] > 0
        assert row["optimizer_steps"] == ours["optimizer_steps"] >= 1
    assert ours["evaluation"] > 0 and ours["ratio_to_minimal"] > 0
    parts = [ours[f"evaluation: {part}"] for part in ("generation", "validation loss", "ROUGE")]
    # each rounded to 0.01 s: the parts may round to 0 and their sum past the rounded whole
    assert all(t >= 0 for t in parts) and 0 < sum(parts) <= ours["evaluation"] + 0.02
    assert report["job"]["evaluations"] >= 1 and report["job"]["train"] == 4


def test_bench_e2e_on_a_shape_without_tokenizer_is_a_one_line_error():
    result = run_cli("bench", "e2e", "--shape", "qwen0.5b")
    assert result.exit_code == 1 and "--shape qwen0.5b: bench e2e needs a model with a tokenizer" in result.output


@pytest.mark.integration
def test_bench_train_runs_the_trl_peer_on_the_same_examples(tmp_path):
    import json

    out = tmp_path / "trl.json"
    args = ["bench", "train", "--shape", "tiny", "--steps", 1, "--records", 3, "--no-baseline"]
    # the adapter variants (the plain peer is the same path without peft): distil on a 4-bit base, TRL with
    # the same LoRA through peft
    result = run_cli(*args, "--variant", "sdpa,4096,0,qlora", "--variant", "trl,4096,0,lora", "--out", out)
    assert result.exit_code == 0, result.output
    ours, trl = json.loads(out.read_text())["results"]
    assert trl["name"].startswith("TRL SFTTrainer [sdpa, padding-free") and trl["name"].endswith("lora]")
    assert "FAILED" not in trl["name"] and trl["useful_tokens_per_s"] > 0
    assert ours["name"].endswith("qlora]") and ours["useful_tokens_per_s"] > 0


@pytest.mark.integration
def test_bench_e2e_without_the_minimal_loop_times_distil_alone(tmp_path):
    import json

    env = {"DISTIL_TRAIN__MODEL": "tiny", "DISTIL_TRAIN__EPOCHS": "1", "DISTIL_TRAIN__MAX_NEW_TOKENS": "2"}
    env["DISTIL_INFER__MAX_NEW_TOKENS"] = "2"
    out = tmp_path / "e2e.json"
    result = run_cli("bench", "e2e", "--train", 4, "--valid", 2, "--test", 2, "--no-minimal", "--out", out, env=env)
    assert result.exit_code == 0, result.output
    (ours,) = json.loads(out.read_text())["results"]
    assert ours["name"] == "distil train + infer" and ours["total"] > 0 and "ratio_to_minimal" not in ours


def test_gemma270m_shape_is_the_pulled_gemma3_270m():
    """The random gemma270m shape has Gemma 3 270M's parameter count and attention pattern (built on the
    meta device: no weights); where the pulled model is here, its config matches field by field."""
    import torch
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    from distil_cli.bench.common import GEMMA3_270M

    config = Gemma3TextConfig(**GEMMA3_270M)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 268_098_176
    assert config.layer_types.count("full_attention") == 3 and config.sliding_window == 512
    from distil_cli.pull import GEMMA3_270M as PULLABLE_GEMMA
    from distil_cli.pull import is_pulled, model_dir
    from distil_cli.settings import ModelsSettings

    cache = ModelsSettings().cache_dir
    if is_pulled(cache, PULLABLE_GEMMA):
        real = json.loads((model_dir(cache, PULLABLE_GEMMA) / "config.json").read_text())
        assert {k: real[k] for k in GEMMA3_270M} == {k: getattr(config, k) for k in GEMMA3_270M}


@pytest.mark.integration
def test_a_failing_variant_is_reported_with_its_error_and_the_others_kept(monkeypatch, tmp_path, caplog):
    """A variant that raises (here an error whose text starts with a blank line, as torch.compile's do) is
    logged with its type and first non-blank line, reported FAILED, and does not stop the next variant."""
    from conftest import tiny_model_dir

    from distil_cli.bench import train as bench

    real = bench.distil_train

    def failing(model, pad, examples, steps, tokens, *args):
        if tokens == 2048:
            raise RuntimeError("\n  backend failed: 'float' object has no attribute 'to'\nmore")
        return real(model, pad, examples, steps, tokens, *args)

    monkeypatch.setattr(bench, "distil_train", failing)
    cache = tiny_model_dir().parent
    variants = [bench.parse_variant("sdpa,2048,0"), bench.parse_variant("sdpa,1024,0")]
    with caplog.at_level("WARNING", logger="distil_cli.bench.train"):
        out = bench.bench_train("tiny", 1, 4, variants, cache, tmp_path, baseline=False)
    failed, ran = out["results"]
    assert failed["name"].endswith("FAILED") and failed["useful_tokens_per_s"] == 0
    assert "FAILED" not in ran["name"] and ran["useful_tokens_per_s"] > 0
    assert "RuntimeError: backend failed: 'float' object has no attribute 'to'" in caplog.text
