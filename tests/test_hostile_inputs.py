"""Inputs a hostile but realistic user gives: each refused with a one-line error naming its source,
before anything is written (reliability round 3: languages as paths, NaN and binary cells, booleans
as numbers, short split ratios, run ids below 1, partial predictions, two spellings of one output)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_cli, tiny_model_dir


def _prepared(folder) -> dict:
    """id -> record over the three splits of a prepared folder."""
    return {
        r["id"]: r for split in ("train", "valid", "test") for r in map(json.loads, (folder / f"{split}.jsonl").open())
    }


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_language_that_is_a_path_is_refused_by_infer_and_never_written_outside(tmp_path):
    data = _jsonl(tmp_path / "test.jsonl", [{"id": "t1", "lang": "x/../../../../tmp/ESCAPED", "input": "Fever."}])
    sub = tmp_path / "sub"
    result = run_cli(
        "infer", tiny_model_dir(), data, "--out", tmp_path / "p.jsonl", "--submission-dir", sub,
        "--team", "T", "--run-id", "1", "--max-new-tokens", "2",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "record t1: language 'x/../../../../tmp/ESCAPED' is not a language code" in result.output
    assert not (tmp_path / "p.jsonl").exists() and not sub.exists()
    assert not list(tmp_path.parent.glob("**/ESCAPED*"))


@pytest.mark.parametrize("lang", ["../x", "1", "en/../../x", ""])
def test_prepare_accepts_only_language_codes(tmp_path, lang):
    _jsonl(
        tmp_path / "in.jsonl", [{"id": f"r{i}", "lang": lang or None, "input": "A.", "output": "B."} for i in range(3)]
    )
    result = run_cli(
        "prepare", tmp_path / "in.jsonl", "--out", tmp_path / "out", *(["--lang", "x/y"] if not lang else [])
    )
    assert result.exit_code == 1 and "is not a language code" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_submission_run_ids_start_at_one(tmp_path):
    from distil_cli.errors import ConfigError
    from distil_cli.generate.submission import Submission

    with pytest.raises(ConfigError, match="--run-id -1: the shared task's run numbers start at 1"):
        Submission(tmp_path, "T", -1)
    assert Submission(tmp_path, "T", 1).folder("pt-br").name == "T_multiclinsum_pt-br_run_1"


def test_nan_and_null_inputs_name_the_field_file_and_line(tmp_path):
    (tmp_path / "nan.jsonl").write_text('{"id": "a", "lang": "en", "input": "x", "output": "y"}\n'
                                        '{"id": "b", "lang": "en", "input": NaN, "output": "y"}\n')  # fmt: skip
    result = run_cli("prepare", tmp_path / "nan.jsonl", "--out", tmp_path / "o1")
    assert result.exit_code == 1 and "nan.jsonl:2 (id b): field 'input' (input) must be text, got NaN" in result.output
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["a", "b"], "input": ["x", None], "output": ["y", "z"]})
    pq.write_table(table, tmp_path / "null.parquet")
    result = run_cli("prepare", tmp_path / "null.parquet", "--out", tmp_path / "o2", "--lang", "en")
    assert result.exit_code == 1 and "(id b): field 'input' (input) must be text, got null" in result.output


def test_binary_parquet_columns_are_decoded_or_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [f"Patient {i} had fever.".encode() for i in range(6)]
    table = pa.table({"id": [f"r{i}" for i in range(6)], "input": pa.array(rows, pa.binary()), "output": rows})
    pq.write_table(table, tmp_path / "bin.parquet")
    result = run_cli("prepare", tmp_path / "bin.parquet", "--out", tmp_path / "out", "--lang", "en")
    assert result.exit_code == 0, result.output
    records = list(_prepared(tmp_path / "out").values())
    assert sorted(r["input"] for r in records) == sorted(r.decode() for r in rows)
    bad = pa.table({"id": ["r0", "r1"], "input": pa.array([b"\xff\xfe", b"ok"], pa.binary()), "output": ["a", "b"]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    result = run_cli("prepare", tmp_path / "bad.parquet", "--out", tmp_path / "o2", "--lang", "en")
    assert result.exit_code == 1 and "field 'input' (input) is binary and not utf-8 text" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"train": {"batch_size": true}}', "train.batch_size = True (from config file"),
        ('{"train": {"alpha": false}}', "train.alpha = False"),
        ('{"prepare": {"seed": true}}', "prepare.seed = True"),
    ],
)
def test_booleans_are_not_numbers_in_any_setting(tmp_path, text, message):
    config = tmp_path / "c.json"
    config.write_text(text)
    result = run_cli("--config", config, "config", "show")
    assert result.exit_code == 1 and message in result.output and "expected a number" in result.output


def test_two_split_ratios_say_three_are_needed(tmp_path):
    _jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "lang": "en", "input": "A.", "output": "B."} for i in range(3)])
    result = run_cli("prepare", tmp_path / "in.jsonl", "--out", tmp_path / "out", "--split", "0.5,0.5")
    assert result.exit_code == 1 and "needs three ratios train,valid,test" in result.output
    assert "Field required" not in result.output


def test_two_spellings_of_one_output_take_one_lock(tmp_path, monkeypatch):
    from distil_cli.data.guard import OutputLock
    from distil_cli.errors import ConfigError

    (tmp_path / "cc").mkdir()
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "a.jsonl")
    monkeypatch.chdir(tmp_path)
    for first, second in [("cc/train.jsonl", tmp_path / "cc" / ".." / "cc" / "train.jsonl"), ("a.jsonl", "b.jsonl")]:
        with OutputLock(first):
            with pytest.raises(ConfigError, match=f"in use by another distil process \\(pid {os.getpid()}\\)"):
                with OutputLock(second):
                    pass


def test_infer_on_a_run_without_final_says_whether_it_is_still_training(tmp_path):
    from distil_cli.data.guard import OutputLock

    run = tmp_path / "tt"
    (run / "checkpoint-2").mkdir(parents=True)
    from distil_cli.run_record import RunRecord

    RunRecord({}, "default", "chatml", {}, 64, status="running").write(run)  # what train writes at its start
    data = _jsonl(tmp_path / "test.jsonl", [{"id": "t1", "lang": "en", "input": "Fever."}])
    with OutputLock(run):
        held = run_cli("infer", run, data, "--out", tmp_path / "p.jsonl")
    assert held.exit_code == 1
    assert f"{run} has no final/ yet: it is still training (its lock is held by pid {os.getpid()})" in held.output
    stopped = run_cli("infer", run, data, "--out", tmp_path / "p.jsonl")
    assert stopped.exit_code == 1 and "its training stopped before the end" in stopped.output
    assert "--resume" in stopped.output and not (tmp_path / "p.jsonl").exists()


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    """ENOSPC from write() carries no file name: the error still says which file could not be written."""
    import errno

    from distil_cli.data import files

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.Path, "write_bytes", full)
    with pytest.raises(OSError) as caught:
        files.write_atomic(tmp_path / "results.json", "{}")
    assert caught.value.filename == str(tmp_path / "results.json")
    from distil_cli.cli.common import _os_message

    assert (
        _os_message(caught.value)
        == f"{tmp_path / 'results.json'}: No space left on device; check the path and free space"
    )


def test_rows_without_ids_are_numbered_and_said_once(tmp_path):
    rows = [{"lang": "en", "input": f"Case {i}.", "output": f"Out {i}."} for i in range(10)]
    _jsonl(tmp_path / "cases.jsonl", rows)
    result = run_cli("prepare", tmp_path / "cases.jsonl", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the log line may wrap
    assert said.count("has no 'id' field: each record's id is its row number") == 1
    ids = set(_prepared(tmp_path / "out"))
    assert ids == {f"cases-{i}" for i in range(1, 11)}
    mixed = rows[:3] + [{"id": "x", "lang": "en", "input": "A.", "output": "B."}]
    _jsonl(tmp_path / "mixed.jsonl", mixed)
    result = run_cli("prepare", tmp_path / "mixed.jsonl", "--out", tmp_path / "o2")
    assert (
        result.exit_code == 1 and "mixed.jsonl:4" in result.output and "give every row an id or none" in result.output
    )


def test_trl_prompt_completion_and_messages_records_are_read(tmp_path):
    pc = [{"id": f"p{i}", "lang": "en", "prompt": f"Case {i}: fever.", "completion": f"Fever {i}."} for i in range(10)]
    _jsonl(tmp_path / "pc.jsonl", pc)
    result = run_cli("prepare", tmp_path / "pc.jsonl", "--out", tmp_path / "o1")
    assert result.exit_code == 0, result.output
    records = _prepared(tmp_path / "o1")
    assert records["p3"]["input"] == "Case 3: fever." and records["p3"]["output"] == "Fever 3."
    chats = [
        {
            "id": f"m{i}",
            "lang": "en",
            "messages": [
                {"role": "user", "content": f"Summarise: case {i}."},
                {"role": "assistant", "content": f"Summary {i}."},
            ],
        }
        for i in range(10)
    ]
    chats[0]["messages"].insert(0, {"role": "system", "content": "Be brief."})
    _jsonl(tmp_path / "chat.jsonl", chats)
    result = run_cli("prepare", tmp_path / "chat.jsonl", "--out", tmp_path / "o2")
    assert result.exit_code == 0, result.output
    records = _prepared(tmp_path / "o2")
    assert records["m4"]["input"] == "Summarise: case 4." and records["m4"]["output"] == "Summary 4."
    assert records["m0"]["input"] == "System: Be brief.\n\nUser: Summarise: case 0."
    _jsonl(tmp_path / "bad.jsonl", [{"id": "x", "lang": "en", "messages": [{"role": "user"}]}])
    bad = run_cli("prepare", tmp_path / "bad.jsonl", "--out", tmp_path / "o3")
    assert bad.exit_code == 1 and "bad.jsonl:1" in bad.output and "a message must be" in bad.output
