"""`distil prepare`: counts, reproducible disjoint stratified splits, manifest, cropping, errors."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLE, run_cli, write_case

from distil_cli.data.files import read_jsonl
from distil_cli.data.prepare import prepare, split_records
from distil_cli.data.text import crop_chars, crop_tokens
from distil_cli.errors import DataError
from distil_cli.settings import PrepareSettings


def _read(out: Path) -> dict[str, list[dict]]:
    return {name: read_jsonl(out / f"{name}.jsonl") for name in ("train", "valid", "test")}


def test_sample_corpus_counts_and_manifest(tmp_path):
    out = tmp_path / "data"
    result = run_cli("prepare", SAMPLE, "--out", out)
    assert result.exit_code == 0, result.output
    splits = _read(out)
    assert {k: len(v) for k, v in splits.items()} == {"train": 32, "valid": 4, "test": 4}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["valid"] == {"en": 1, "es": 1, "fr": 1, "pt": 1}
    assert manifest["totals"] == {"train": 32, "valid": 4, "test": 4}
    assert len(manifest["source_files"]) == 80
    assert all(len(h) == 64 for h in manifest["source_files"].values())
    assert manifest["settings"]["split"] == [0.8, 0.1, 0.1]
    assert manifest["version"]
    record = splits["train"][0]
    assert set(record) == {"id", "lang", "input", "output"}
    assert "length statistics" in result.output and "median" in result.output


def test_splits_disjoint_stratified_reproducible(small_tree, tmp_path):
    cfg = PrepareSettings(seed=3)
    a = prepare(small_tree, tmp_path / "a", cfg)
    ids = [r["id"] for split in a.splits.values() for r in split]
    assert len(ids) == len(set(ids)) == 40
    for lang in ("en", "es", "fr", "pt"):
        assert [sum(r["lang"] == lang for r in a.splits[s]) for s in ("train", "valid", "test")] == [8, 1, 1]
    # Same corpus written in another order, in another place: byte-identical splits.
    other = tmp_path / "other"
    files = sorted(small_tree.rglob("*.txt"))
    random.Random(1).shuffle(files)
    for path in files:
        target = other / path.relative_to(small_tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    b = prepare(other, tmp_path / "b", cfg)
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = prepare(small_tree, tmp_path / "c", PrepareSettings(seed=4))
    assert c.splits["valid"] != a.splits["valid"]
    assert b.manifest["source_files"] == a.manifest["source_files"]


def test_split_independent_of_input_order():
    records = [{"id": f"r{i}", "lang": "en" if i % 3 else "fr", "input": "x", "output": "y"} for i in range(50)]
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    assert split_records(records, (0.6, 0.2, 0.2), 9) == split_records(shuffled, (0.6, 0.2, 0.2), 9)


def test_unseen_tree_with_bom_crlf_accents_stray_and_missing(tmp_path):
    root = tmp_path / "unseen"
    write_case(root, "batch_es", "caso_es_1", "\ufeffPaciente de 54 años.\r\nFiebre y tos.\r\n", "Neumonía.\r\n")
    write_case(root, "batch_es", "caso_es_2", "Mujer con cefalea.", "Migraña.")
    write_case(root, "batch_fr", "cas_fr_1", "Homme de 60 ans, fièvre.", "Pneumonie à pneumocoque.")
    write_case(root, "batch_fr", "cas_fr_2", "Sans résumé.", None)
    (root / "batch_fr" / "fulltext" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "batch_fr" / "fulltext" / "notes.md").write_text("not a case")
    out = tmp_path / "out"
    failed = run_cli("prepare", root, "--out", out)
    assert failed.exit_code == 1
    assert "cas_fr_2.txt" in failed.output and "--allow-missing" in failed.output
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    ok = run_cli("prepare", root, "--out", out, "--allow-missing", "--split", "1,0,0")
    assert ok.exit_code == 0, ok.output
    records = {r["id"]: r for r in read_jsonl(out / "train.jsonl")}
    assert set(records) == {"caso_es_1", "caso_es_2", "cas_fr_1"}
    assert records["caso_es_1"]["input"] == "Paciente de 54 años.\nFiebre y tos."
    assert records["caso_es_1"]["output"] == "Neumonía."
    assert records["cas_fr_1"]["lang"] == "fr"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped_missing_summary"] == {"count": 1, "ids": ["cas_fr_2"]}
    assert sorted(manifest["ignored_files"]) == ["batch_fr/fulltext/.DS_Store", "batch_fr/fulltext/notes.md"]


def test_test_layout_without_summaries_goes_to_test(tmp_path):
    root = tmp_path / "multiclinsum_test_en"
    for i in range(3):
        write_case(root, "", f"multiclinsum_test_{i}", f"Case {i}.", None)
    result = prepare(root, tmp_path / "out", PrepareSettings())
    assert [len(result.splits[s]) for s in ("train", "valid", "test")] == [0, 0, 3]
    assert all("output" not in r and r["lang"] == "en" for r in result.splits["test"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: write_case(r, "x_en", "a_en", b"caf\xe9", "s"), "a_en.txt: cannot decode as utf-8"),
        (lambda r: write_case(r, "x_en", "a_en", "   \n", "s"), "a_en.txt: empty input"),
        (lambda r: write_case(r, "x_en", "a_en", "text", ""), "a_en_sum.txt: empty output"),
        (
            lambda r: (write_case(r, "x_en", "a_en", "t", "s"), write_case(r, "y_en", "a_en", "t", "s")),
            "duplicate id 'a_en'",
        ),
        (lambda r: write_case(r, "corpus", "case1", "t", "s"), "no language in the file or folder name"),
    ],
)
def test_tree_errors(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    result = run_cli("prepare", root, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_encoding_option(tmp_path):
    root = tmp_path / "latin"
    write_case(root, "x_fr", "a_fr", "Fièvre élevée.".encode("latin-1"), "Résumé.".encode("latin-1"))
    result = run_cli("prepare", root, "--out", tmp_path / "out", "--encoding", "latin-1", "--split", "1,0,0")
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out" / "train.jsonl")[0]["input"] == "Fièvre élevée."


def _table_records(n=10):
    return [
        {
            "doc": f"d{i}",
            "text": f"Texto número {i} con acentos.",
            "sum": f"Resumen {i}.",
            "why": f"Clave {i}.",
            "l": "es",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_tabular_formats_with_mapping(tmp_path, fmt):
    rows = _table_records()
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), encoding="utf-8-sig")
    elif fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    out = tmp_path / "out"
    args = ["--id-field", "doc", "--input-field", "text", "--output-field", "sum", "--rationale-field", "why"]
    result = run_cli("prepare", path, "--out", out, *args, "--lang-field", "l")
    assert result.exit_code == 0, result.output
    records = [r for s in _read(out).values() for r in s]
    assert len(records) == 10
    by_id = {r["id"]: r for r in records}
    assert by_id["d3"] == {
        "id": "d3",
        "lang": "es",
        "input": "Texto número 3 con acentos.",
        "output": "Resumen 3.",
        "rationale": "Clave 3.",
    }


def test_tabular_errors(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"id": "a", "input": "x", "output": "y", "lang": "en"}\n'
        '{"id": "a", "input": "z", "output": "y", "lang": "en"}\n'
    )
    result = run_cli("prepare", path, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "data.jsonl:2 (id a): duplicate id 'a'" in result.output
    path.write_text('{"id": "a", "text": "x", "output": "y", "lang": "en"}\n')
    result = run_cli("prepare", path, "--out", tmp_path / "o")
    assert "data.jsonl:1 (id a): missing field 'input' (input); map another field with --input-field" in result.output
    path.write_text('{"id": "a", "input": "x", "output": "y", "lang": "en"}\n{broken\n')
    result = run_cli("prepare", path, "--out", tmp_path / "o")
    assert "data.jsonl:2: malformed JSON" in result.output
    weird = tmp_path / "data.xlsx"
    weird.write_text("x")
    result = run_cli("prepare", weird, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "unknown format '.xlsx'" in result.output
    result = run_cli("prepare", path, "--out", tmp_path / "o", "--split", "0.7,0.2,0.2")
    assert result.exit_code == 1 and "must sum to 1" in result.output
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(small_tree, tmp_path):
    out = tmp_path / "out"
    assert run_cli("prepare", small_tree, "--out", out).exit_code == 0
    again = run_cli("prepare", small_tree, "--out", out)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert run_cli("prepare", small_tree, "--out", out, "--overwrite", "--seed", "5").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["settings"]["seed"] == 5


def test_crop_chars_never_splits_characters():
    text = "é" * 10 + " " + "ç" * 10
    cropped = crop_chars(text, 15)
    assert len(cropped) <= 15 and cropped.encode("utf-8").decode("utf-8") == cropped
    assert crop_chars("abc", 10) == "abc"


def test_char_cropping_recorded(small_tree, tmp_path):
    result = prepare(small_tree, tmp_path / "o", PrepareSettings(max_input_chars=40, max_output_chars=12))
    assert all(len(r["input"]) <= 40 for s in result.splits.values() for r in s)
    assert result.manifest["cropped"] == {"input": 40, "output": 40}


@pytest.mark.slow
def test_token_cropping_with_embedded_tokenizer(small_tree, tmp_path, embedded_model_dir):
    from distil_cli.models import load_tokenizer

    tok = load_tokenizer(str(embedded_model_dir))
    text = "Fièvre élevée à 39,5 °C et toux productive depuis trois jours. " * 4
    cropped = crop_tokens(text, 7, tok)
    assert len(tok(cropped, add_special_tokens=False)["input_ids"]) <= 7
    assert text.startswith(cropped) and cropped
    out = tmp_path / "tok"
    result = run_cli("prepare", small_tree, "--out", out, "--max-input-tokens", "12")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cropped"]["input"] == 40 and manifest["tokenizer"] == "default"
    assert "tokens" in result.output
    for split in _read(out).values():
        for r in split:
            assert len(tok(r["input"], add_special_tokens=False)["input_ids"]) <= 12


def test_prepare_rejects_missing_source(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare(tmp_path / "nope", tmp_path / "o", PrepareSettings())


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_keeps_newlines_in_quoted_cells_and_long_cells(tmp_path):
    path = tmp_path / "data.csv"
    long_text = "fiebre " * 40_000  # 280k characters: above the csv module's default field limit
    rows = [[f"c{i}", f"first line {i}\nsecond line", f"s{i}", "en"] for i in range(9)]
    rows.append(["long", long_text, "s", "en"])
    _csv(path, ["id", "input", "output", "lang"], rows)
    result = run_cli("prepare", path, "--out", tmp_path / "out", "--split", "1,0,0")
    assert result.exit_code == 0, result.output
    records = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "train.jsonl")}
    assert len(records) == 10 and records["c3"]["input"] == "first line 3\nsecond line"
    assert records["long"]["input"] == long_text.strip()


def test_csv_unterminated_quote_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "data.csv"
    lines = ["id,input,output,lang"] + [f"c{i},text {i},sum {i},en" for i in range(10)]
    lines[4] = 'c3,text 3,"sum 3 never closed,en'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("prepare", path, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "data.csv:5: malformed CSV row" in result.output and not (tmp_path / "out").exists()


def test_output_that_is_or_holds_or_lies_in_the_source_is_refused(small_tree, tmp_path):
    before = sorted(p for p in small_tree.rglob("*") if p.is_file())
    for out in (small_tree, small_tree / "prepared", small_tree.parent):
        result = run_cli("prepare", small_tree, "--out", out, "--overwrite")
        assert result.exit_code == 1 and "--out" in result.output, result.output
    assert sorted(p for p in small_tree.rglob("*") if p.is_file()) == before  # nothing deleted or added
    table = tmp_path / "same.jsonl"
    table.write_text('{"id": "a", "input": "x", "output": "y", "lang": "en"}\n')
    result = run_cli("prepare", table, "--out", table, "--overwrite")
    assert result.exit_code == 1 and "is the input itself" in result.output and table.is_file()


def test_temporaries_of_a_killed_prepare_are_removed_by_the_next_run(small_tree, tmp_path):
    out = tmp_path / "out"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".out.tmp-{dead.pid}"
    (stale / "x").mkdir(parents=True)
    alive = tmp_path / f".out.tmp-{os.getpid()}-keep"  # a live writer's folder is left alone
    alive.mkdir()
    assert run_cli("prepare", small_tree, "--out", out).exit_code == 0
    assert not stale.exists() and alive.exists()


def _dataset_rows(n=12):
    return [{"doc": f"d{i}", "text": f"Texto {i}.", "sum": f"Resumen {i}.", "l": "es"} for i in range(n)]


@pytest.mark.parametrize("kind", ["dataset", "datasetdict", "arrow", "parquet-folder"])
def test_hugging_face_datasets_as_sources(tmp_path, kind):
    import datasets

    rows = _dataset_rows()
    if kind == "dataset":
        source = tmp_path / "ds"
        datasets.Dataset.from_list(rows).save_to_disk(str(source))
    elif kind == "datasetdict":
        source = tmp_path / "dd"
        parts = {"train": datasets.Dataset.from_list(rows[:8]), "validation": datasets.Dataset.from_list(rows[8:])}
        datasets.DatasetDict(parts).save_to_disk(str(source))
    elif kind == "arrow":
        folder = tmp_path / "saved"
        datasets.Dataset.from_list(rows).save_to_disk(str(folder))
        source = next(folder.glob("*.arrow"))
    else:
        source = tmp_path / "pq"
        source.mkdir()
        datasets.Dataset.from_list(rows[:6]).to_parquet(str(source / "a.parquet"))
        datasets.Dataset.from_list(rows[6:]).to_parquet(str(source / "b.parquet"))
    args = ["--id-field", "doc", "--input-field", "text", "--output-field", "sum", "--lang-field", "l"]
    result = run_cli("prepare", source, "--out", tmp_path / "out", *args)
    assert result.exit_code == 0, result.output
    records = {r["id"]: r for split in _read(tmp_path / "out").values() for r in split}
    assert len(records) == 12 and records["d3"] == {
        "id": "d3",
        "lang": "es",
        "input": "Texto 3.",
        "output": "Resumen 3.",
    }
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["format"] == "hf" and manifest["source_files"]
    if kind == "datasetdict":
        one = run_cli("prepare", source, "--out", tmp_path / "one", *args, "--hf-split", "validation")
        assert one.exit_code == 0 and sum(len(v) for v in _read(tmp_path / "one").values()) == 4
        bad = run_cli("prepare", source, "--out", tmp_path / "bad", *args, "--hf-split", "test")
        assert bad.exit_code == 1 and "no split 'test' (it has train, validation)" in bad.output
    if kind == "dataset":
        bad = run_cli("prepare", source, "--out", tmp_path / "bad", *args, "--hf-split", "train")
        assert bad.exit_code == 1 and "a single dataset without splits" in bad.output


def test_hub_id_offline_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = run_cli("prepare", "hf:distil-test/does-not-exist", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "hf:distil-test/does-not-exist" in result.output
    assert "internal error" not in result.output and not (tmp_path / "out").exists()


def test_every_atomic_writer_names_its_temporary_by_pid_and_clears_dead_ones(tmp_path):
    """annotate's copy of the other splits, the submission zips and the datasets export write through
    ``.NAME.<kind>-<pid>`` temporaries; one left by a killed run is removed by the next, none remains."""
    from distil_cli.data.hf import save_as_dataset
    from distil_cli.generate.submission import Submission
    from distil_cli.teach.annotate import copy_other_splits

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir(), out.mkdir()
    (data / "test.jsonl").write_text('{"id": "a", "input": "x", "output": "y", "lang": "en"}\n')
    (data / "manifest.json").write_text("{}")
    (out / f".test.jsonl.copy-{dead.pid}").write_text("half")
    copy_other_splits(data, out, ["train"])
    assert (out / "test.jsonl").read_text() == (data / "test.jsonl").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.jsonl"]

    sub = Submission(tmp_path / "sub", team="T", run_id=1)
    sub.write({"id": "a", "lang": "en"}, "summary")
    (tmp_path / "sub" / f".T_multiclinsum_en_run_1.zip.tmp-{dead.pid}").write_text("half")
    assert [z.name for z in sub.zip_folders()] == ["T_multiclinsum_en_run_1.zip"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [
        "T_multiclinsum_en_run_1",
        "T_multiclinsum_en_run_1.zip",
    ]

    dest = tmp_path / "hf"
    (tmp_path / f".hf.tmp-{dead.pid}").mkdir()
    save_as_dataset([data / "test.jsonl"], dest)
    assert (dest / "dataset_dict.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hf.")]


def test_a_datasetdicts_own_splits_are_kept_unless_resplit(tmp_path):
    import datasets

    rows = _dataset_rows(20)
    parts = {
        "train": datasets.Dataset.from_list(rows[:12]),
        "dev": datasets.Dataset.from_list(rows[12:16]),
        "test": datasets.Dataset.from_list(rows[16:]),
    }
    source = tmp_path / "dd"
    datasets.DatasetDict(parts).save_to_disk(str(source))
    args = ["--id-field", "doc", "--input-field", "text", "--output-field", "sum", "--lang-field", "l"]
    result = run_cli("prepare", source, "--out", tmp_path / "kept", *args)
    assert result.exit_code == 0, result.output
    kept = {name: sorted(r["id"] for r in split) for name, split in _read(tmp_path / "kept").items()}
    assert kept["test"] == sorted(f"d{i}" for i in range(16, 20))  # the source's test stays test
    assert kept["valid"] == sorted(f"d{i}" for i in range(12, 16))  # dev -> valid
    assert json.loads((tmp_path / "kept" / "manifest.json").read_text())["splits_from"] == "source"
    assert "Kept the source's own splits" in " ".join(result.output.split())
    again = run_cli("prepare", source, "--out", tmp_path / "pooled", *args, "--resplit")
    pooled = {name: {r["id"] for r in split} for name, split in _read(tmp_path / "pooled").items()}
    assert again.exit_code == 0 and pooled["test"] != set(kept["test"])  # drawn again from all 20
    assert json.loads((tmp_path / "pooled" / "manifest.json").read_text())["splits_from"] == "distil"
    no_valid = tmp_path / "nv"
    datasets.DatasetDict({"train": parts["train"], "test": parts["test"]}).save_to_disk(str(no_valid))
    carved = run_cli("prepare", no_valid, "--out", tmp_path / "carved", *args)
    splits = _read(tmp_path / "carved")
    assert carved.exit_code == 0 and len(splits["test"]) == 4 and len(splits["train"]) + len(splits["valid"]) == 12
    assert len(splits["valid"]) >= 1  # carved from train (--split's valid share)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_folder_of_split_files_keeps_its_splits(tmp_path, suffix):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _dataset_rows(20)
    source = tmp_path / "src"
    source.mkdir()
    for name, part in (("train", rows[:12]), ("validation", rows[12:16]), ("test", rows[16:])):
        path = source / f"{name}{suffix}"
        if suffix == ".jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in part))
        elif suffix == ".csv":
            header = list(part[0])
            path.write_text("\n".join([",".join(header)] + [",".join(str(r[k]) for k in header) for r in part]) + "\n")
        else:
            pq.write_table(pa.Table.from_pylist(part), path)
    args = ["--id-field", "doc", "--input-field", "text", "--output-field", "sum", "--lang-field", "l"]
    result = run_cli("prepare", source, "--out", tmp_path / "kept", *args)
    assert result.exit_code == 0, result.output
    kept = {name: sorted(r["id"] for r in split) for name, split in _read(tmp_path / "kept").items()}
    assert kept["test"] == sorted(f"d{i}" for i in range(16, 20))
    assert kept["valid"] == sorted(f"d{i}" for i in range(12, 16))  # validation -> valid
    manifest = json.loads((tmp_path / "kept" / "manifest.json").read_text())
    assert manifest["splits_from"] == "source" and len(manifest["source_files"]) == 3
    pooled = run_cli("prepare", source, "--out", tmp_path / "pooled", *args, "--resplit")
    assert pooled.exit_code == 0 and sum(len(s) for s in _read(tmp_path / "pooled").values()) == 20
    (source / f"dev{suffix}").write_bytes((source / f"validation{suffix}").read_bytes())
    both = run_cli("prepare", source, "--out", tmp_path / "both", *args)
    assert both.exit_code == 1 and f"validation{suffix} and dev{suffix} are both a validation split" in both.output
