"""Reading corpora: MultiClinSum folder trees and tabular files (json, jsonl, csv, parquet).

Every reader returns plain records ``{id, lang, input, output?, rationale?}`` with
normalised text (no BOM, ``\\n`` line ends, surrounding whitespace stripped), and
raises ``DataError`` naming the file / line / id and what to do on bad input.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_cli.data.text import check_lang, normalise_text
from distil_cli.errors import DataError

log = logging.getLogger(__name__)

LANG_RE = re.compile(r"(?:^|[_\-.])(en|es|fr|pt)(?:[_\-.]|$)", re.IGNORECASE)
TABLE_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class SourceScan:
    """What a reader found, besides the records themselves (goes into the manifest)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped_missing: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    format: str = ""
    source_splits: list[str] = field(default_factory=list)  # each record's split in the source, when it has them


def detect_lang(path: Path, root: Path) -> str | None:
    """Language code from the file name first, then from the folders up to ``root`` included."""
    parts = [path.stem] + [p.name for p in path.parents if p == root or root in p.parents]
    for part in parts:
        match = LANG_RE.search(part)
        if match:
            return match.group(1).lower()
    return None


# a folder of one file per split: train.jsonl, validation.csv (or dev, valid), test.parquet, ...
# a source's split names -> distil's (validation and dev are distil's valid)
SOURCE_SPLIT_NAMES = {"train": "train", "validation": "valid", "valid": "valid", "dev": "valid", "test": "test"}
HF_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")


def split_files(source: Path) -> dict[str, Path]:
    """The split files of a folder (name -> file, in train, validation, test order); {} for other folders."""
    if not source.is_dir() or any((source / name).is_file() for name in HF_MARKERS):
        return {}
    found: dict[str, Path] = {}
    for path in sorted(source.iterdir()):
        stem = path.stem.lower()
        if path.is_file() and stem in SOURCE_SPLIT_NAMES and path.suffix.lower() in TABLE_SUFFIXES:
            if stem in found:
                raise DataError(f"{source}: two files for the split '{stem}' ({found[stem].name}, {path.name})")
            found[stem] = path
    valid = [found[stem].name for stem, ours in SOURCE_SPLIT_NAMES.items() if ours == "valid" and stem in found]
    if len(valid) > 1:
        raise DataError(f"{source}: {' and '.join(valid)} are both a validation split; keep one")
    return {stem: found[stem] for stem in SOURCE_SPLIT_NAMES if stem in found}


def split_file_rows(files: dict[str, Path], encoding: str) -> Iterator[tuple[str, str, Any]]:
    """(split, location, row) of every row of a folder's split files."""
    for split, path in files.items():
        for where, row in _rows(path, TABLE_SUFFIXES[path.suffix.lower()], encoding):
            yield split, where, row


def detect_format(source: Path, wanted: str) -> str:
    from distil_cli.data.hf import is_hf_source

    if wanted != "auto":
        return wanted
    if split_files(source):  # before the parquet-folder check: train.parquet + test.parquet are two splits
        return "splits"
    if is_hf_source(source):
        return "hf"
    if source.is_dir():
        return "multiclinsum"
    fmt = TABLE_SUFFIXES.get(source.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{source}: unknown format '{source.suffix or 'no suffix'}'; give a MultiClinSum folder, "
            ".json, .jsonl, .csv, .parquet, a folder of split files (train.jsonl, validation.jsonl, test.jsonl), "
            "a Hugging Face dataset (save_to_disk folder, .arrow, hf:NAME) or --format"
        )
    return fmt


# --------------------------------------------------------------------------- MultiClinSum trees


def _summary_path(fulltext: Path) -> Path:
    return fulltext.parent.parent / "summaries" / f"{fulltext.stem}_sum.txt"


def read_multiclinsum(root: Path, encoding: str, lang: str | None, allow_missing: bool) -> SourceScan:
    """Every ``fulltext/*.txt`` under ``root`` with its ``summaries/<name>_sum.txt``.

    A ``fulltext`` folder with no ``summaries`` sibling at all is the test layout:
    its records have no output. Within a labelled folder a missing summary is an
    error unless ``allow_missing``.
    """
    scan = SourceScan(format="multiclinsum")
    folders = sorted(p for p in root.rglob("fulltext") if p.is_dir())
    if root.name == "fulltext":
        folders.insert(0, root)
    if not folders:
        raise DataError(f"{root}: no fulltext/ folder found; expected <corpus>/fulltext/*.txt (+ summaries/*_sum.txt)")
    seen: dict[str, Path] = {}
    for folder in folders:
        labelled = (folder.parent / "summaries").is_dir()
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() != ".txt" or path.name.startswith("."):
                scan.ignored_files.append(str(path.relative_to(root)))
                continue
            record_id = path.stem
            if record_id in seen:
                raise DataError(f"duplicate id '{record_id}': {seen[record_id]} and {path}; ids come from file names")
            seen[record_id] = path
            record = {"id": record_id, "lang": _lang_or_fail(path, root, lang)}
            record["input"] = _read_text(path, encoding, "input")
            scan.files.append(path)
            if labelled:
                summary = _summary_path(path)
                if not summary.is_file():
                    if allow_missing:
                        scan.skipped_missing.append(record_id)
                        continue
                    raise DataError(
                        f"{path}: no summary {summary.relative_to(root)}; "
                        "add it or pass --allow-missing to skip such cases"
                    )
                record["output"] = _read_text(summary, encoding, "output")
                scan.files.append(summary)
            scan.records.append(record)
    if not scan.records:
        raise DataError(f"{root}: no usable .txt case found under fulltext/")
    return scan


def _lang_or_fail(path: Path, root: Path, lang: str | None) -> str:
    found = detect_lang(path, root)
    if found is None and lang is None:
        raise DataError(f"{path}: no language in the file or folder name (_en, _es, _fr, _pt); pass --lang")
    return check_lang(found or lang, f"{path}" if found else "--lang")


def _read_text(path: Path, encoding: str, what: str) -> str:
    text = normalise_text(path.read_bytes(), encoding, str(path))
    if not text:
        raise DataError(f"{path}: empty {what} text; remove the case or fill it in")
    return text


# --------------------------------------------------------------------------- tabular files


def _rows(path: Path, fmt: str, encoding: str) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs; location is 'file:line' or 'file[index]'."""
    raw = path.read_bytes()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise DataError(f"{path}: not a readable parquet file ({exc})") from None
        for i, row in enumerate(table.to_pylist()):
            yield f"{path}[row {i}]", row
        return
    text = normalise_text(raw, encoding, str(path))
    if fmt == "jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: malformed JSON ({exc.msg}); fix or remove the line") from None
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        for i, row in enumerate(data):
            yield f"{path}[{i}]", row
    elif fmt == "csv":
        yield from _csv_rows(path, text)
    else:
        raise DataError(f"{path}: unknown format '{fmt}'")


# Clinical notes can be long: a cell of up to this many characters is accepted (the csv
# module's own limit is 131,072); a longer one is an error naming its line.
CSV_FIELD_LIMIT = 1 << 26


def _csv_rows(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    """Rows parsed by the csv module over the whole text, so newlines inside quoted cells are kept.

    ``strict``: an unterminated quote is an error naming the line where its row starts,
    not a cell that silently swallows every later row.
    """
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        start = reader.line_num + 1
        for values in reader:
            if values:
                yield f"{path}:{start}", dict(zip(header, values))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{start}: malformed CSV row ({exc}); check its quotes") from None


def read_table(
    path: Path,
    fmt: str,
    mapping: dict[str, str],
    encoding: str,
    lang: str | None,
    rows: Iterator[tuple[str, Any]] | None = None,
    files: list[Path] | None = None,
) -> SourceScan:
    """Records from a .json/.jsonl/.csv/.parquet file (or given ``rows``: a dataset) through the field mapping."""
    scan = SourceScan(format=fmt, files=[path] if files is None else files)
    file_lang = detect_lang(path, path.parent) if fmt != "hf" else None
    seen: dict[str, str] = {}
    numbered = None  # rows without an id field: the row number is the id (decided by the first row)
    said: set[str] = set()
    for number, (where, row) in enumerate(rows if rows is not None else _rows(path, fmt, encoding), start=1):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object with fields, got {type(row).__name__}")
        row = _from_trl_form(row, mapping, where, path, said)
        if numbered is None:
            numbered = mapping["id"] not in row
            if numbered:
                log.warning(
                    "%s has no '%s' field: each record's id is its row number (%s-1, %s-2, ...); map one with "
                    "--id-field to keep your own",
                    path, mapping["id"], path.stem, path.stem,
                )  # fmt: skip
        if numbered:
            if mapping["id"] in row:
                raise DataError(
                    f"{where}: has an '{mapping['id']}' field but the first row has none; give every row an id or none"
                )
            record_id = f"{path.stem}-{number}"
        else:
            record_id = _field(row, mapping["id"], where, "id", required=True, encoding=encoding)
        where = f"{where} (id {record_id})"
        if record_id in seen:
            raise DataError(f"{where}: duplicate id '{record_id}' (first at {seen[record_id]})")
        seen[record_id] = where
        record: dict[str, Any] = {"id": record_id}
        found = (_field(row, mapping["lang"], where, "lang", encoding=encoding) or lang or file_lang or "").lower()
        if not found:
            raise DataError(f"{where}: no language (no '{mapping['lang']}' field, none in the file name); pass --lang")
        record["lang"] = check_lang(found, f"{where} field '{mapping['lang']}'")
        record["input"] = _field(row, mapping["input"], where, "input", required=True, encoding=encoding)
        output = _field(row, mapping["output"], where, "output", encoding=encoding)
        if output is not None:
            record["output"] = output
        rationale = _field(row, mapping["rationale"], where, "rationale", encoding=encoding)
        if rationale:
            record["rationale"] = rationale
        scan.records.append(record)
    if not scan.records:
        raise DataError(f"{path}: no records")
    labelled = sum("output" in r for r in scan.records)
    if 0 < labelled < len(scan.records):
        missing = next(r["id"] for r in scan.records if "output" not in r)
        raise DataError(
            f"{path} (id {missing}): field '{mapping['output']}' missing or empty while other records have it; "
            "map it with --output-field or fix the record"
        )
    return scan


def _text_of(turns: list, where: str) -> str:
    """A conversation's turns as the input text: one user turn is its content; more are a transcript."""
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or "role" not in turn:
            raise DataError(f"{where}: a message must be {{'role': ..., 'content': text}}, got {str(turn)[:80]}")
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{t['role'].capitalize()}: {t['content']}" for t in turns)


def _from_trl_form(row: dict, mapping: dict[str, str], where: str, path: Path, said: set[str]) -> dict:
    """TRL's dataset forms as distil's fields, when the row has no input field: prompt-completion
    (``prompt`` -> input, ``completion`` -> output; either may be a list of messages) and chat
    ``messages`` (the last assistant turn is the output, the turns before it the input; a system
    turn is part of the input's transcript)."""
    if mapping["input"] in row:
        return row
    if "prompt" in row and ("completion" in row or mapping["output"] not in row):
        prompt, completion = row["prompt"], row.get("completion")
        form = "prompt-completion"
        converted = {
            mapping["input"]: _text_of(prompt, where) if isinstance(prompt, list) else prompt,
            mapping["output"]: _text_of(completion, where) if isinstance(completion, list) else completion,
        }
    elif isinstance(row.get("messages"), list) and row["messages"]:
        turns = row["messages"]
        form = "messages"
        if turns[-1].get("role") == "assistant" if isinstance(turns[-1], dict) else False:
            converted = {mapping["input"]: _text_of(turns[:-1], where), mapping["output"]: turns[-1].get("content")}
        else:
            converted = {mapping["input"]: _text_of(turns, where)}  # no answer: an unlabelled (test) record
    else:
        return row
    if form not in said:
        said.add(form)
        log.info("%s: records in TRL's %s form, read as input and output", path, form)
    return {**{k: v for k, v in row.items() if k not in ("prompt", "completion", "messages")}, **converted}


def _field(row: dict, name: str, where: str, role: str, required: bool = False, encoding: str = "utf-8") -> str | None:
    value = row.get(name)
    nan = isinstance(value, float) and value != value
    if required and name in row and (value is None or nan):  # a null cell, JSON NaN: there but not text
        raise DataError(f"{where}: field '{name}' ({role}) must be text, got {'NaN' if nan else 'null'}")
    if value is None or nan:
        if required:
            flag = f"--{role}-field"
            raise DataError(f"{where}: missing field '{name}' ({role}); map another field with {flag}")
        return None
    if isinstance(value, (bytes, bytearray)):  # a binary parquet column: text in --encoding
        try:
            value = bytes(value).decode(encoding)
        except UnicodeDecodeError:
            raise DataError(
                f"{where}: field '{name}' ({role}) is binary and not {encoding} text; give --encoding or convert it"
            ) from None
    if isinstance(value, (dict, list)):
        raise DataError(f"{where}: field '{name}' ({role}) must be text, got {type(value).__name__}")
    text = str(value).lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text and role in ("id", "input", "output"):
        raise DataError(f"{where}: empty '{name}' ({role}); fill it in or remove the record")
    return text or None
