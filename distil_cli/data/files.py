"""File helpers shared by every command: JSON lines, resumable appends, hashing.

Outputs that grow record by record (annotate, infer) are JSON lines appended and flushed
one record at a time; a rerun reads the ids already there (``done_ids``) and skips them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distil_cli.errors import DataError

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; a malformed line is an error naming its number."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: malformed JSON ({exc.msg})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a prepared split; a malformed line is an error naming its number."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; run `distil prepare` first or check the path")
    records = []
    for number, record in iter_jsonl(path):
        for key in ("id", "input"):
            if not isinstance(record, dict) or not isinstance(record.get(key), str) or not record[key]:
                raise DataError(f"{path}:{number}: record has no '{key}' text; re-run `distil prepare`")
        records.append(record)
    return records


def dump_jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"


def done_ids(path: Path) -> set[str]:
    """Ids already in an appended output; a torn last line (killed mid-write) is dropped."""
    if not path.is_file():
        return set()
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    ids, good = set(), 0
    for number, line in enumerate(lines):
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            ids.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            if number == len(lines) - 1 or all(not rest.strip() for rest in lines[number + 1 :]):
                log.warning("%s: dropping a torn last line (an interrupted write)", path)
                with open(path, "r+b") as fh:
                    fh.truncate(good)
                break
            raise DataError(f"{path}:{number + 1}: malformed line in an existing output; fix or remove it") from None
        good += len(line) + 1
    return ids
