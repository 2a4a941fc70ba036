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
        assert bad.exit_code == 1 and "expected 'Name: value'" in bad.output and "--header" in bad.output
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


@pytest.mark.integration
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
        args = ("--template", f"@{template}", "--min-grounding", "0.9", "--max-flagged", "0.5")
        result = run_cli(*_args(server, data, out, *args))
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


@pytest.mark.integration
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
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 7):
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
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:  # `make setup` installs them (the serving extra); say so instead of waiting a minute
        pytest.skip(f"transformers serve needs {', '.join(missing)}: pip install 'distil-cli[serving]'")
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


@pytest.mark.integration
def test_real_transformers_serve(tmp_path, served_tiny):
    url, model = served_tiny
    data = _split(tmp_path / "s.jsonl", ["Paciente con fiebre.", "Paciente con tos."], lang="es")
    out = tmp_path / "ann.jsonl"
    result = run_cli(
        "annotate", data, "--out", out, "--base-url", url, "--model", model, "--max-tokens", 4, "--max-flagged", 1
    )
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
    result = run_cli(
        "annotate", data, "--out", out, "--backend", "local", "--model", model, "--max-tokens", 4, "--max-flagged", 1
    )
    assert result.exit_code == 0, result.output
    rows = _lines(out)
    assert [r["annotation"]["backend"] for r in rows] == ["local", "local"]
    assert all(r["annotation"]["completion_tokens"] <= 4 for r in rows)


REPLY_FAULTS = ("TRUNC", "HTML", "NOCHOICES", "ERR200")


@pytest.mark.integration
def test_malformed_replies_are_retried_per_record_never_the_end_of_the_run(tmp_path):
    """Truncated JSON, an HTML page, no choices, an error object, all with status 200."""
    texts = [f"{fault}2 case {i}" for i, fault in enumerate(REPLY_FAULTS)]
    texts += [f"{fault}99 hopeless {i}" for i, fault in enumerate(REPLY_FAULTS)] + ["plain case"]
    data = _split(tmp_path / "s.jsonl", texts)
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out, "--concurrency", 16))
    assert result.exit_code == 3, result.output  # finished; some records failed after their retries
    assert "internal error" not in result.output
    done = {r["id"]: r for r in _lines(out)}
    assert sorted(done) == ["r0", "r1", "r2", "r3", "r8"]
    assert all(done[f"r{i}"]["annotation"]["attempts"] == 3 for i in range(4))  # two faults, then an answer
    failed = {r["id"]: r["error"] for r in _lines(tmp_path / "ann.failed.jsonl")}
    assert sorted(failed) == ["r4", "r5", "r6", "r7"]
    assert all("malformed reply" in error and "after 4 attempts" in error for error in failed.values())
    assert "no choices" in failed["r6"] and "error object" in failed["r7"]


@pytest.mark.integration
def test_kill_and_resume_under_reply_faults_loses_and_duplicates_nothing(tmp_path):
    faults = [*REPLY_FAULTS, "E500", "RL"]
    data = _split(tmp_path / "s.jsonl", [f"SLOW {faults[i % len(faults)]}1 case {i}" for i in range(40)])
    out = tmp_path / "ann.jsonl"
    concurrency = 4
    with FakeOpenAI() as server:
        cmd = [sys.executable, "-m", "distil_cli", "annotate", str(data), "--out", str(out)]
        cmd += ["--base-url", server.url, "--model", "teacher", "--concurrency", str(concurrency)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 90
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 9):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = {json.loads(x)["id"] for x in out.read_text().splitlines()[:-1]}  # the last may be torn
        assert 8 <= len(before) < 40
        result = run_cli(*_args(server, data, out, "--concurrency", concurrency))
        assert result.exit_code == 0, result.output
        rows = _lines(out)
        assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(40))  # none lost, none twice
        paid_twice = [prompt for prompt, n in server.answered.items() if n > 1]
        assert all(n <= 2 for n in server.answered.values())
        assert len(paid_twice) <= concurrency  # at most the requests in flight at the kill


def test_output_inside_the_input_folder_is_refused_and_nothing_is_created(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _split(data / "train.jsonl", ["fever"])
    with FakeOpenAI() as server:
        for out in (data, data / "annotated", tmp_path):
            result = run_cli(*_args(server, data, out))
            assert result.exit_code == 1 and "--out" in result.output, result.output
        assert sorted(p.name for p in data.iterdir()) == ["train.jsonl"]
        result = run_cli(*_args(server, data / "train.jsonl", data / "train.jsonl"))
        assert result.exit_code == 1 and "is the input itself" in result.output
    assert _lines(data / "train.jsonl")[0]["input"] == "fever"


def test_a_second_process_on_the_same_output_is_refused_with_the_holders_pid(tmp_path):
    import os

    from distil_cli.data.guard import OutputLock

    data = _split(tmp_path / "s.jsonl", ["fever", "cough"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server, OutputLock(out):
        result = run_cli(*_args(server, data, out))
        assert result.exit_code == 1
        assert f"in use by another distil process (pid {os.getpid()})" in result.output
        assert sum(server.calls.values()) == 0 and not out.exists()
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out)).exit_code == 0  # released: the next run works


def test_a_last_line_without_newline_or_glued_records_are_repaired_not_lost(tmp_path):
    data = _split(tmp_path / "s.jsonl", [f"case {i}" for i in range(5)])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out)).exit_code == 0
        lines = out.read_text().splitlines()
        out.write_text(lines[0] + "\n" + lines[1] + lines[2] + "\n" + lines[3])  # glued, then no final newline
        calls = sum(server.calls.values())
        result = run_cli(*_args(server, data, out))
        assert result.exit_code == 0, result.output
        assert sum(server.calls.values()) == calls + 1  # only r4, missing before, is asked for (paid ones kept)
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == [f"r{i}" for i in range(5)]
    assert out.read_text().endswith("\n") and len(out.read_text().splitlines()) == 5


def test_secrets_in_headers_urls_and_bad_values_are_masked(tmp_path):
    env = {
        "DISTIL_ANNOTATE__HEADERS": '{"Authorization": "Bearer sk-header-secret-123"}',
        "DISTIL_ANNOTATE__BASE_URL": "https://user:pw-secret-456@example.org/v1?key=q-secret-789",
    }
    shown = run_cli("config", "show", "--section", "annotate", env={**env, "COLUMNS": "200"})
    assert shown.exit_code == 0
    for secret in ("sk-header-secret-123", "pw-secret-456", "q-secret-789"):
        assert secret not in shown.output
    assert "Authorization" in shown.output and "example.org" in shown.output
    config = tmp_path / "distil.toml"
    config.write_text('[annotate]\napi_key = ["sk-list-secret-000"]\n')
    bad = run_cli("--config", config, "config", "show")
    assert bad.exit_code == 1 and "invalid setting annotate.api_key" in bad.output
    assert "sk-list-secret-000" not in bad.output


def test_too_many_empty_or_truncated_rationales_exit_3_with_counts(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["EMPTY one", "fine two", "fine three"])
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, tmp_path / "ann.jsonl"))
    assert result.exit_code == 3
    assert "1 of 3 new rationale(s) empty (1) or truncated (0) (more than --max-flagged 0.05)" in result.output
    assert len(_lines(tmp_path / "ann.jsonl")) == 3  # kept, and flagged


def test_folder_annotates_train_only_by_default_and_copies_the_rest(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _split(data / "train.jsonl", ["a b c", "d e f"])
    _split(data / "valid.jsonl", ["g h i"])
    _split(data / "test.jsonl", ["j k l"])
    out = tmp_path / "annotated"
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out)).exit_code == 0
        assert sum(server.calls.values()) == 2  # only train's records were paid for
        assert all("rationale" in r for r in _lines(out / "train.jsonl"))
        assert (out / "test.jsonl").read_text() == (data / "test.jsonl").read_text()  # copied unchanged
        assert run_cli(*_args(server, data, out, "--splits", "train,test")).exit_code == 1  # test was copied
        other = tmp_path / "all"
        assert run_cli(*_args(server, data, other, "--splits", "train,valid,test")).exit_code == 0
        assert all("rationale" in r for r in _lines(other / "test.jsonl"))
        missing = run_cli(*_args(server, data, tmp_path / "x", "--splits", "train,dev"))
        assert missing.exit_code == 1 and "no dev.jsonl to annotate" in missing.output
        none = run_cli(*_args(server, data, tmp_path / "y", "--splits", ","))
        assert none.exit_code == 1 and "invalid setting annotate.splits" in none.output


def test_raising_max_tokens_does_not_silently_reuse_truncated_rationales(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["fever", "cough"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out, "--max-tokens", 8)).exit_code == 0
        again = run_cli(*_args(server, data, out, "--max-tokens", 64))
    assert again.exit_code == 1 and "--max-tokens / --temperature" in again.output


def test_annotated_folder_also_as_a_hugging_face_datasetdict(tmp_path):
    import datasets

    data = tmp_path / "data"
    data.mkdir()
    _split(data / "train.jsonl", ["fever one", "cough two"])
    _split(data / "test.jsonl", ["rash three"])
    out = tmp_path / "annotated"
    with FakeOpenAI() as server:
        assert run_cli(*_args(server, data, out, "--format", "hf")).exit_code == 0
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert sorted(loaded) == ["test", "train"] and loaded["train"].num_rows == 2
    assert loaded["train"][0]["rationale"].startswith("Key facts") and json.loads(loaded["train"][0]["annotation"])


@pytest.mark.integration
def test_a_huge_retry_after_is_capped_and_an_http_date_is_honoured(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["RAHUGE1 fever", "RADATE1 cough"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        started = time.monotonic()
        result = run_cli(*_args(server, data, out, "--max-backoff", "2", "--timeout", "5"))
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert {r["id"]: r["annotation"]["attempts"] for r in _lines(out)} == {"r0": 2, "r1": 2}
    assert "asked to wait inf s before retrying; waiting 2 s (the backoff cap)" in result.output
    assert 0.9 < elapsed < 30  # the date (1.5 s ahead) was waited for; inf was not


@pytest.mark.parametrize("fault", ["LORIS", "ENDLESS"])
def test_timeout_bounds_the_whole_request_of_a_trickling_server(tmp_path, fault):
    data = _split(tmp_path / "s.jsonl", [f"{fault} fever", "plain text"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        started = time.monotonic()
        result = run_cli(*_args(server, data, out, "--timeout", "1", "--max-retries", "0"))
        elapsed = time.monotonic() - started
    assert result.exit_code == 3, result.output
    assert elapsed < 20 and [r["id"] for r in _lines(out)] == ["r1"]
    failed = _lines(tmp_path / "ann.failed.jsonl")
    assert failed[0]["id"] == "r0" and "timeout (no complete reply in 1 s)" in failed[0]["error"]


def test_credentials_in_the_base_url_never_leak(tmp_path):
    import base64

    data = _split(tmp_path / "s.jsonl", ["BAD400 text"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        url = server.url.replace("http://", "http://alice:pa55word-xyz@")
        args = ["annotate", data, "--out", out, "--base-url", url, "--model", "teacher", "--max-retries", 0]
        result = run_cli(*args)
        echoed = server.headers[-1].get("authorization", "")
    assert result.exit_code == 3, result.output
    basic = base64.b64encode(b"alice:pa55word-xyz").decode()
    failed = (tmp_path / "ann.failed.jsonl").read_text()
    assert "HTTP 400" in failed and "**********" in failed
    for secret in ("pa55word-xyz", basic):
        assert secret not in failed and secret not in result.output
    assert echoed == f"Basic {basic}"  # the server got the credential, and echoed it in its 400


def test_placeholders_inside_a_record_are_data_and_never_leak_the_label(tmp_path):
    rows = [{"id": "r0", "lang": "en", "input": "Fever {output} and {lang} {input}", "output": "SECRET-LABEL"}]
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out, "--template", "Summarise: {input}"))
        sent = list(server.calls)
    assert result.exit_code == 0, result.output
    assert sent == ["Summarise: Fever {output} and {lang} {input}"]  # inserted once, as it is
    assert _lines(out)[0]["annotation"]["flags"] == []  # not label-aware: the template has no {output}


def test_duplicate_ids_are_refused_before_any_request(tmp_path):
    data = tmp_path / "s.jsonl"
    rows = [{"id": "t2", "lang": "en", "input": text, "output": "o"} for text in ("First text.", "Other text.")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, tmp_path / "ann.jsonl"))
        assert not server.calls
    assert result.exit_code == 1 and "s.jsonl:2: duplicate id 't2' (first at line 1)" in result.output
    assert not (tmp_path / "ann.jsonl").exists()


def test_a_reply_longer_than_max_tokens_allows_is_cut_and_flagged(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["BIGREPLY fever", "plain text"])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        result = run_cli(*_args(server, data, out, "--max-tokens", "16", "--max-flagged", "1"))
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in _lines(out)}
    assert len(rows["r0"]["rationale"]) <= 16 * 32 and rows["r0"]["annotation"]["flags"] == ["oversized"]
    assert rows["r0"]["annotation"]["finish_reason"] == "oversized" and rows["r1"]["annotation"]["flags"] == []


def test_a_folder_run_and_a_split_run_on_the_same_output_are_refused_both_ways(tmp_path):
    import os

    from distil_cli.data.guard import OutputLock

    data = tmp_path / "d12"
    data.mkdir()
    _split(data / "train.jsonl", ["fever", "cough"])
    out = tmp_path / "cc"
    with FakeOpenAI() as server:
        with OutputLock(out):  # a folder run on cc is working
            split = run_cli(*_args(server, data / "train.jsonl", out / "train.jsonl"))
        assert split.exit_code == 1 and f"in use by another distil process (pid {os.getpid()})" in split.output
        with OutputLock(out / "train.jsonl"), OutputLock(out, shared=True):  # a split run on cc/train.jsonl
            whole = run_cli(*_args(server, data, out))
        assert whole.exit_code == 1 and "in use by another distil process" in whole.output
        assert not server.calls
        other = run_cli(*_args(server, data / "train.jsonl", tmp_path / "other" / "train.jsonl"))
        assert other.exit_code == 0, other.output


def test_dry_run_shows_prompts_tokens_and_cost_and_sends_nothing(tmp_path):
    data = _split(tmp_path / "s.jsonl", ["Patient had fever 39.5.", "Cough for two weeks.", "A rash."])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        args = _args(server, data, out, "--dry-run", "--limit", "2", "--price-per-mtok", "0.15,0.60")
        result = run_cli(*args, "--max-tokens", "100", env={"COLUMNS": "200"})
        assert not server.calls
    assert result.exit_code == 0, result.output
    assert "record r0" in result.output and "record r1" in result.output and "record r2" not in result.output
    assert "Explain step by step the key information in the text below" in result.output  # task-neutral default
    assert "2 request(s) would be sent" in result.output and "at most 200 completion tokens" in result.output
    # 2 x 100 completion tokens at $0.60 plus about 2 x 22 prompt tokens at $0.15, per million
    assert "at most $0.0001 at $0.15 / $0.6 per Mtok" in result.output and "Nothing was sent." in result.output
    assert not out.exists()
    bad = run_cli(*_args(server, data, out, "--dry-run", "--price-per-mtok", "0.15"))
    assert bad.exit_code == 1 and "expected two prices IN,OUT" in bad.output


def test_limit_annotates_the_first_records_not_yet_done(tmp_path):
    data = _split(tmp_path / "s.jsonl", [f"Record {i} text." for i in range(5)])
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI() as server:
        first = run_cli(*_args(server, data, out, "--limit", "2"))
        second = run_cli(*_args(server, data, out, "--limit", "2"))
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert sorted(r["id"] for r in _lines(out)) == ["r0", "r1", "r2", "r3"]  # concurrent: any order


def test_push_to_hub_offline_keeps_the_annotations_and_plans_a_dataset_with_its_card(tmp_path):
    import pyarrow.parquet as pq

    from distil_cli.push import plan_dataset

    folder = tmp_path / "prepared"
    folder.mkdir()
    _split(folder / "train.jsonl", [f"Patient {i} had fever 39.5 and cough." for i in range(3)], lang="es")
    _split(folder / "valid.jsonl", ["Patient 9 had a rash."], lang="es")
    out = tmp_path / "annotated"
    bad = run_cli("annotate", folder, "--out", out, "--push-to-hub", "no-owner", "--base-url", "http://127.0.0.1:9")
    assert bad.exit_code == 1 and "--push-to-hub 'no-owner': give OWNER/NAME" in bad.output and not out.exists()
    with FakeOpenAI() as server:
        args = _args(server, folder, out, "--splits", "train,valid", "--push-to-hub", "alice/cases")
        result = run_cli(*args, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 1 and "offline" in result.output and "the annotations are kept in" in result.output
    assert len(_lines(out / "train.jsonl")) == 3 and len(_lines(out / "valid.jsonl")) == 1  # nothing lost
    staging = tmp_path / "staging"
    upload = plan_dataset(out, "alice/cases", staging)
    assert upload.repo_type == "dataset" and [name for name, _ in upload.files] == [
        "README.md", "data/train.parquet", "data/validation.parquet",
    ]  # fmt: skip
    rows = pq.read_table(staging / "data" / "train.parquet").to_pylist()
    assert sorted(r["id"] for r in rows) == ["r0", "r1", "r2"] and all(r["rationale"] for r in rows)
    assert json.loads(rows[0]["annotation"])["teacher_model"] == "teacher"  # metadata as JSON text
    card = (staging / "README.md").read_text()
    assert "path: data/validation.parquet" in card and "- distilling-step-by-step" in card and "- es" in card
    assert "| train | 3 | 3 |" in card and "teacher (openai): 4 records" in card and "hsieh2023" in card
    assert str(tmp_path) not in card
