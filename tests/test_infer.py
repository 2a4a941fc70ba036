"""`distil infer`: outputs, resume, torn lines, submission folder, prompt from run.json, batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_model_dir, write_case

from distil_cli.data.files import done_ids
from distil_cli.generate.batched import generate_batched
from distil_cli.generate.infer import prompt_spec
from distil_cli.generate.submission import submission_name
from distil_cli.models import load_tokenizer
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.prompts import stop_token_ids


@pytest.fixture(scope="module")
def tiny() -> Path:
    return tiny_model_dir()


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [
        {"id": f"case-{i}", "lang": lang, "input": f"Patient {i} with fever {'x ' * i}", "output": f"Summary {i}."}
        for i, lang in enumerate(["en", "es", "fr", "pt", "en"])
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_infer_writes_records_and_resumes(tmp_path, data, tiny):
    out = tmp_path / "pred.jsonl"
    args = ["infer", tiny, data, "--out", out, "--max-new-tokens", 5, "--batch-size", 2]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == [f"case-{i}" for i in range(5)]
    for row in rows:
        assert set(row) == {"id", "lang", "prediction", "reference", "tokens", "finish_reason"}
        assert row["finish_reason"] in ("stop", "length") and 0 <= row["tokens"] <= 5
    # a rerun skips done ids; a torn last line (killed mid-write) is dropped and redone
    kept = out.read_text().splitlines()[:3]
    out.write_text("\n".join(kept) + '\n{"id": "case-')
    again = run_cli(*args, env={"COLUMNS": "40"})  # narrower than the path
    assert again.exit_code == 0, again.output
    assert "3 already done" in again.output
    assert str(out) in again.stdout.splitlines()  # the path a script reads stays one line
    assert sorted(r["id"] for r in _lines(out)) == [f"case-{i}" for i in range(5)]


def test_done_ids_rejects_corruption_in_the_middle(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(Exception, match="p.jsonl:2: malformed line"):
        done_ids(path)


def test_submission_folder_and_txt_inputs(tmp_path, tiny):
    root = tmp_path / "multiclinsum_test_es"
    write_case(root, "", "multiclinsum_test_es_1", "Paciente con fiebre.", None)
    write_case(root, "", "multiclinsum_test_es_2", "Paciente con tos.", None)
    sub = tmp_path / "submission"
    result = run_cli("infer", tiny, root, "--out", tmp_path / "p.jsonl", "--max-new-tokens", 3, "--submission-dir", sub)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in sub.iterdir()) == ["multiclinsum_test_es_1_sum.txt", "multiclinsum_test_es_2_sum.txt"]
    assert all(r["lang"] == "es" and "reference" not in r for r in _lines(tmp_path / "p.jsonl"))


def test_submission_names_cannot_escape():
    assert submission_name("../../etc/passwd") == "etc_passwd_sum.txt"
    assert submission_name("/abs/x") == "abs_x_sum.txt"
    assert "/" not in submission_name("a/b\\c")


def test_prompt_comes_from_run_json(tmp_path, data, tiny, monkeypatch):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    for f in Path(tiny).iterdir():
        (run / "final" / f.name).write_bytes(f.read_bytes())
    record = {
        "run_record": 1,
        "formatter": "chatml",
        "settings": {"summary_instructions": {"en": "CUSTOM SUMMARY INSTRUCTION."}},
        "instructions": {"summary": {"en": "CUSTOM SUMMARY INSTRUCTION."}},
        "max_input_tokens": 40,
        "model_source": str(tiny),
    }
    (run / "run.json").write_text(json.dumps(record))
    spec = prompt_spec(str(run), None)
    assert spec.formatter == "chatml" and spec.max_input_tokens == 40
    seen = []
    import distil_cli.generate.batched as generation

    original = generation.generate_batched

    def spy(model, tokenizer, prompt_ids, *args, **kwargs):
        seen.extend(tokenizer.decode(p) for p in prompt_ids)
        return original(model, tokenizer, prompt_ids, *args, **kwargs)

    monkeypatch.setattr(generation, "generate_batched", spy)
    result = run_cli("infer", run, data, "--out", tmp_path / "p.jsonl", "--max-new-tokens", 2)
    assert result.exit_code == 0, result.output
    english = [p for p in seen if "CUSTOM SUMMARY INSTRUCTION." in p]
    assert len(english) == 2  # the two English records
    assert all(p.startswith("<|im_start|>user\n") for p in seen)  # chatml: no default system prompt
    tokenizer = load_tokenizer(str(tiny))
    assert all(len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= 40 for p in seen)


@pytest.mark.parametrize("cache", ["dynamic", "static", "slots"])
def test_batched_generation_equals_one_by_one(tiny, cache):
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(str(tiny))
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    formatter = choose_formatter(tokenizer)
    prompts = [
        tokenizer(formatter.format("Summarize.", "fever " * n).prompt, add_special_tokens=False)["input_ids"]
        for n in (1, 7, 3, 12)
    ]
    stops = stop_token_ids(tokenizer, formatter)
    batched = generate_batched(model, tokenizer, prompts, stops, 12, batch_size=4, cache_implementation=cache)
    single = []
    for ids in prompts:
        out = model.generate(
            torch.tensor([ids]),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
        single.append(out[0, len(ids) :].tolist())
    for got, ref in zip(batched, single):
        ref_kept = ref[: next((i for i, t in enumerate(ref) if t in stops), len(ref))]
        assert got.new_tokens == len(ref_kept)
        assert got.text == tokenizer.decode(ref_kept, skip_special_tokens=True).strip()


def test_duplicate_ids_are_an_error_before_any_output(tmp_path, tiny):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n')
    result = run_cli("infer", tiny, data, "--out", tmp_path / "p.jsonl")
    assert result.exit_code == 1 and "duplicate id 'a'" in result.output
    assert not (tmp_path / "p.jsonl").exists()


def test_sampling_keeps_the_static_cache_and_min_new_tokens(tmp_path, data, tiny, monkeypatch):
    """`--temperature 0.7 --cache static` used to drop the cache option (the sampling branch replaced it)."""
    from transformers import GenerationMixin

    seen = []
    original = GenerationMixin.generate

    def spy(self, *args, **kwargs):
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", spy)
    args = ["infer", tiny, data, "--out", tmp_path / "p.jsonl", "--max-new-tokens", 3]
    result = run_cli(*args, "--temperature", "0.7", "--top-p", "0.9", "--cache", "static")
    assert result.exit_code == 0, result.output
    assert seen and all(k["cache_implementation"] == "static" for k in seen)
    assert all(k["do_sample"] is True and k["temperature"] == 0.7 and k["top_p"] == 0.9 for k in seen)
    from distil_cli.generate.batched import generation_options

    options = generation_options(0.7, 0.9, min_new_tokens=4, cache_implementation="static")
    assert options == {
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "min_new_tokens": 4,
        "cache_implementation": "static",
    }


def test_unknown_run_record_version_is_a_clear_error(tmp_path, data, tiny):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    for f in Path(tiny).iterdir():
        (run / "final" / f.name).write_bytes(f.read_bytes())
    (run / "run.json").write_text(json.dumps({"run_record": 99, "formatter": "chatml"}))
    result = run_cli("infer", run, data, "--out", tmp_path / "p.jsonl")
    assert result.exit_code == 1
    assert "run record version 99" in result.output and "upgrade distil" in result.output
    assert not (tmp_path / "p.jsonl").exists() or not (tmp_path / "p.jsonl").read_text()


def test_last_line_without_newline_is_repaired_before_appending(tmp_path, data, tiny):
    out = tmp_path / "pred.jsonl"
    args = ["infer", tiny, data, "--out", out, "--max-new-tokens", 3]
    assert run_cli(*args).exit_code == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:2]))  # a kill after a complete line but before its newline
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    assert "2 already done" in result.output
    rows = _lines(out)  # every line parses: nothing glued
    assert sorted(r["id"] for r in rows) == [f"case-{i}" for i in range(5)]


@pytest.mark.integration
def test_resume_with_another_model_or_settings_is_refused(tmp_path, data, tiny):
    from transformers import AutoModelForCausalLM

    other = tmp_path / "other"
    model = AutoModelForCausalLM.from_pretrained(tiny)
    with torch.no_grad():
        model.lm_head.weight.mul_(1.5)
    model.save_pretrained(other)
    load_tokenizer(str(tiny)).save_pretrained(other)
    out = tmp_path / "pred.jsonl"
    assert run_cli("infer", tiny, data, "--out", out, "--max-new-tokens", 3).exit_code == 0
    out.write_text("".join(line + "\n" for line in out.read_text().splitlines()[:2]))
    result = run_cli("infer", other, data, "--out", out, "--max-new-tokens", 3)
    assert result.exit_code == 1 and "another model or other settings" in result.output
    assert "model_fingerprint" in result.output and len(_lines(out)) == 2
    result = run_cli("infer", tiny, data, "--out", out, "--max-new-tokens", 4)
    assert result.exit_code == 1 and "differs: max_new_tokens" in result.output
    assert run_cli("infer", tiny, data, "--out", out, "--max-new-tokens", 3).exit_code == 0
    assert len(_lines(out)) == 5


def test_a_held_output_is_refused(tmp_path, data, tiny):
    import os

    from distil_cli.data.guard import OutputLock

    out = tmp_path / "pred.jsonl"
    with OutputLock(out):
        result = run_cli("infer", tiny, data, "--out", out)
    assert result.exit_code == 1 and f"(pid {os.getpid()})" in result.output and not out.exists()


def test_an_id_too_long_for_a_file_name_fails_before_generation(tmp_path, tiny):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "x" * 300, "lang": "en", "input": "fever"}) + "\n")
    out = tmp_path / "p.jsonl"
    result = run_cli("infer", tiny, data, "--out", out, "--submission-dir", tmp_path / "sub")
    assert result.exit_code == 1 and "too long for a submission file name" in result.output
    assert not out.exists() and not (tmp_path / "sub").exists()


def test_paths_a_user_can_get_wrong_are_one_line_errors(tmp_path, data, tiny):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("infer", tiny, data, "--out", blocker / "p.jsonl")  # a file where a folder should be
    assert result.exit_code == 1 and "internal error" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(blocker) in errors[0] and "Traceback" not in result.output
    (tmp_path / "folder").mkdir()
    result = run_cli("infer", tiny, data, "--out", tmp_path / "folder")  # a folder where a file should be
    assert result.exit_code == 1 and "is a folder" in result.output
    result = run_cli("infer", tiny, data / "test.jsonl", "--out", data / "test.jsonl")
    assert result.exit_code == 1 and "is the input itself" in result.output
    result = run_cli("infer", "missing-model-folder/", data, "--out", tmp_path / "p.jsonl")
    assert result.exit_code == 1 and not (tmp_path / "p.jsonl").exists()


def test_shared_task_layout_per_language_with_zips(tmp_path, data, tiny):
    import zipfile

    sub = tmp_path / "sub"
    args = ["infer", tiny, data, "--out", tmp_path / "p.jsonl", "--max-new-tokens", 2, "--submission-dir", sub]
    result = run_cli(*args, "--team", "TeamX", "--run-id", 2)
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in sub.iterdir() if p.is_dir())
    assert folders == [f"TeamX_multiclinsum_{lang}_run_2" for lang in ("en", "es", "fr", "pt")]
    assert sorted(p.name for p in (sub / "TeamX_multiclinsum_en_run_2").iterdir()) == [
        "case-0_sum.txt",
        "case-4_sum.txt",
    ]
    with zipfile.ZipFile(sub / "TeamX_multiclinsum_en_run_2.zip") as archive:
        assert sorted(archive.namelist()) == [f"TeamX_multiclinsum_en_run_2/case-{i}_sum.txt" for i in (0, 4)]
    bad = run_cli(*args, "--team", "TeamX")
    assert bad.exit_code == 1 and "--team and --run-id go together" in bad.output


def test_one_prompt_is_answered_as_the_run_was_trained(tmp_path, tiny, monkeypatch):
    """infer RUN --prompt: the run's formatter and instructions (summary, and rationale with --rationale)."""
    from distil_cli.generate import infer as infer_module
    from distil_cli.run_record import RunRecord
    from distil_cli.settings import InferSettings

    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    for f in Path(tiny).iterdir():
        (run / "final" / f.name).write_bytes(f.read_bytes())
    instructions = {"summary": {"*": "Give the diagnosis."}, "rationale": {"*": "List the findings."}}
    RunRecord({}, str(tiny), "chatml", instructions, 64).write(run)
    found = infer_module.answer(str(run), "Fever and cough.", InferSettings(max_new_tokens=3), tmp_path, rationale=True)
    assert found["prompt"].startswith("<|im_start|>user\nGive the diagnosis.\n\nFever and cough.<|im_end|>")
    assert set(found) == {"summary", "rationale", "prompt"}
    seen = []
    from distil_cli.generate import batched

    original = batched.generate_batched

    def spy(model, tokenizer, prompts, *args, **kwargs):
        seen.extend(tokenizer.decode(p) for p in prompts)
        return original(model, tokenizer, prompts, *args, **kwargs)

    monkeypatch.setattr(batched, "generate_batched", spy)
    result = run_cli("infer", run, "--prompt", "Fever and cough.", "--rationale", "--max-new-tokens", "3")
    assert result.exit_code == 0, result.output
    assert "rationale" in result.output and len(seen) == 2
    assert "Give the diagnosis.\n\nFever and cough." in seen[0] and "List the findings.\n\nFever and cough." in seen[1]
    both = run_cli("infer", run, tmp_path / "d.jsonl", "--prompt", "x")
    assert both.exit_code != 0 and "either --prompt TEXT or DATA" in both.output
    neither = run_cli("infer", run)
    assert neither.exit_code != 0 and "give DATA and --out" in neither.output
