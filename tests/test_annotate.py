"""`distil annotate`: real OpenAI-compatible server, retries, resume, kills, quality gates, secrets."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, tiny_model_dir
from fake_openai import FakeOpenAI

from distil_cli.errors import ConfigError
from distil_cli.settings import AnnotateSettings
from distil_cli.teach.openai_api import resolve_api_key
from distil_cli.teach.quality import grounding_score, quality_flags

SECRET = "sk-test-0123456789-secret"


def _split(path: Path, inputs: list[str], lang="en") -> Path:
    rows = [{"id": f"r{i}", "lang": lang, "input": text, "output": f"Summary {i}."} for i, text in enumerate(inputs)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _args(server, data, out, *extra):
    return ["annotate", data, "--out", out, "--base-url", server.url, "--model", "teacher", "--max-retries", 3, *extra]


def test_annotates_with_metadata_and_resumes(tmp_path):
    data = _split(tmp_path / "train.jsonl", [f"Patient {i} had fever 39.5 and cough." for i in range(6)])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out, "--concurrency", 3, "--header", "X-Title: distil tests"))
        assert result.exit_code == 0, result.output
        assert server.headers and all(h.get("x-title") == "distil tests" for h in server.headers)
        bad = run_cli(*_args(server, data, tmp_path / "x.jsonl", "--header", "no-colon"))
        assert bad.exit_code == 2 and "expected 'Name: value'" in bad.output
        rows = _lines(out)
        assert sorted(r["id"] for r in rows) == [f"r{i}" for i in range(6)]
        row = next(r for r in rows if r["id"] == "r2")
        assert row["input"] == "Patient 2 had fever 39.5 and cough." and row["output"] == "Summary 2."
        assert row["rationale"] == "Key facts: Patient 2 had fever 39.5 and"
        meta = row["annotation"]
        assert meta["teacher_model"] == "teacher" and meta["backend"] == "openai" and meta["finish_reason"] == "stop"
        assert meta["prompt_tokens"] > 0 and meta["completion_tokens"] > 0 and len(meta["prompt_hash"]) == 16
        assert (
            meta["grounding"] == 0.8 and meta["flags"] == [] and meta["latency_s"] >= 0
        )  # "facts" is not in the input
        calls = sum(server.calls.values())
        again = run_cli(*_args(server, data, out))
        assert again.exit_code == 0 and sum(server.calls.values()) == calls  # nothing paid for twice
        other = run_cli(*_args(server, data, out, "--system-prompt", "Be brief."))
        assert other.exit_code == 1 and "annotated with another prompt or model" in other.output


def test_retries_429_and_5xx_then_failed_file_and_exit_code(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["RL2 fever", "E5002 cough", "ALWAYS500 rash", "plain text here"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out))
        assert result.exit_code == 3
        assert "1 record(s) failed after retries" in result.output and "ann.failed.jsonl" in result.output
        assert sorted(r["id"] for r in _lines(out)) == ["r0", "r1", "r3"]
        attempts = {r["id"]: r["annotation"]["attempts"] for r in _lines(out)}
        assert attempts == {"r0": 3, "r1": 3, "r3": 1}
        failed = _lines(tmp_path / "ann.failed.jsonl")
        assert failed[0]["id"] == "r2" and failed[0]["attempts"] == 4 and "server error 500" in failed[0]["error"]
        assert server.calls[[k for k in server.calls if "ALWAYS500" in k][0]] == 4


def test_quality_gates_empty_copy_and_grounding(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["EMPTY case", "COPY case", "Fever 39.5 with cough"])
    out = tmp_path / "ann.jsonl"
    template = tmp_path / "t.txt"
    template.write_text("Explain the key facts.\n\n{input}\n\nReference: {output}")
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out, "--template", f"@{template}", "--min-grounding", "0.9"))
        assert result.exit_code == 0, result.output
        rows = {r["id"]: r for r in _lines(out)}
        assert rows["r0"]["annotation"]["flags"][0] == "empty" and rows["r0"]["annotation"]["attempts"] == 2
        assert "copies_reference" in rows["r1"]["annotation"]["flags"]
        assert "flagged: empty" in result.output


def test_grounding_and_flags_units():
    assert grounding_score("Fever of 39.5 and cough", "Patient with fever 39.5 and a cough") == 1.0
    assert grounding_score("Pneumonia confirmed", "Patient with fever") == 0.0
    assert quality_flags("", "length", {}, False, 0.0, 0.5) == ["empty", "truncated", "low_grounding"]


def test_api_key_never_leaks(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["BAD400 text"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI(api_key=SECRET) as server:
        env = {"MY_KEY": SECRET}
        result = run_cli(*_args(server, data, out, "--api-key-env", "MY_KEY"), env=env)
        assert result.exit_code == 3
        failed = (tmp_path / "ann.failed.jsonl").read_text()
        assert "HTTP 400" in failed and SECRET not in failed and "**********" in failed
        assert SECRET not in result.output
        wrong = run_cli(*_args(server, data, tmp_path / "b.jsonl", "--api-key-env", "NOPE"), env=env)
        assert wrong.exit_code == 1 and "refused the API key (401): set $NOPE" in wrong.output
    shown = run_cli("config", "show", "--section", "annotate", env={"DISTIL_ANNOTATE__API_KEY": SECRET})
    assert SECRET not in shown.output


def test_missing_key_for_hosted_api_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"needs an API key: set \$OPENROUTER_API_KEY"):
        resolve_api_key(AnnotateSettings(), env={})
    assert resolve_api_key(AnnotateSettings(base_url="http://127.0.0.1:8000/v1"), env={}) is None


def test_folder_mode_and_torn_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _split(data / "train.jsonl", ["a b c", "d e f", "g h i"])
    _split(data / "valid.jsonl", ["j k l"])
    (data / "manifest.json").write_text("{}")
    out = tmp_path / "annotated"
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out)).exit_code == 0
        assert len(_lines(out / "train.jsonl")) == 3 and len(_lines(out / "valid.jsonl")) == 1
        assert (out / "manifest.json").is_file()
        text = (out / "train.jsonl").read_text().splitlines()
        (out / "train.jsonl").write_text("\n".join(text[:2]) + "\n" + text[2][:25])  # torn by a kill
        result = run_cli(*_args(server, data, out))
        assert result.exit_code == 0, result.output
        assert sorted(r["id"] for r in _lines(out / "train.jsonl")) == ["r0", "r1", "r2"]


def test_kill_mid_run_loses_nothing_written(tmp_path):
    data = _split(tmp_path / "s.jsonl", [f"SLOW case {i}" for i in range(30)])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        cmd = [
            sys.executable,
            "-m",
            "distil_cli",
            "annotate",
            str(data),
            "--out",
            str(out),
            "--base-url",
            server.url,
            "--model",
            "teacher",
            "--concurrency",
            "4",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written = [json.loads(x) for x in out.read_text().splitlines()[:-1]]  # all complete lines parse
        assert 6 <= len(written) < 30
        before = {r["id"] for r in written}
        result = run_cli("annotate", data, "--out", out, "--base-url", server.url, "--model", "teacher")
        assert result.exit_code == 0, result.output
        rows = _lines(out)
        assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(30))  # none lost, none twice
        assert before <= {r["id"] for r in rows}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_tiny():
    """`transformers serve` (a real OpenAI-compatible server) with the tiny model on 127.0.0.1."""
    model = tiny_model_dir()
    port = _free_port()
    exe = Path(sys.executable).with_name("transformers")
    proc = subprocess.Popen(
        [str(exe), "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except OSError:
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail("transformers serve did not start")
    yield f"http://127.0.0.1:{port}/v1", str(model)
    proc.terminate()
    proc.wait(timeout=30)


def test_real_transformers_serve(tmp_path, served_tiny):
    url, model = served_tiny
    data = _split(tmp_path / "s.jsonl", ["Paciente con fiebre.", "Paciente con tos."], lang="es")
    out = tmp_path / "ann.jsonl"
    result = run_cli("annotate", data, "--out", out, "--base-url", url, "--model", model, "--max-tokens", 4)
    assert result.exit_code == 0, result.output
    rows = _lines(out)
    assert len(rows) == 2
    for row in rows:
        assert row["annotation"]["backend"] == "openai" and row["annotation"]["completion_tokens"] > 0
        assert row["annotation"]["finish_reason"] in ("stop", "length")


def test_local_backend(tmp_path):
    model = tiny_model_dir()
    data = _split(tmp_path / "s.jsonl", ["Fièvre et toux.", "Douleur thoracique."], lang="fr")
    out = tmp_path / "ann.jsonl"
    result = run_cli("annotate", data, "--out", out, "--backend", "local", "--model", model, "--max-tokens", 4)
    assert result.exit_code == 0, result.output
    rows = _lines(out)
    assert [r["annotation"]["backend"] for r in rows] == ["local", "local"]
    assert all(r["annotation"]["completion_tokens"] <= 4 for r in rows)
