"""File helpers shared by every command: JSON lines, resumable appends, hashing.

Outputs that grow record by record (annotate, infer) are JSON lines appended and flushed
one record at a time; a rerun reads the ids already there (``done_ids``) and skips them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distil_cli.data.guard import temporary_name
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
    """Records of a prepared split; a malformed line or a repeated id is an error naming its line
    (before anything is paid for, trained or generated)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; run `distil prepare` first or check the path")
    records, seen = [], {}
    for number, record in iter_jsonl(path):
        for key in ("id", "input"):
            if not isinstance(record, dict) or not isinstance(record.get(key), str) or not record[key]:
                raise DataError(f"{path}:{number}: record has no '{key}' text; re-run `distil prepare`")
        if record["id"] in seen:
            raise DataError(
                f"{path}:{number}: duplicate id '{record['id']}' (first at line {seen[record['id']]}); "
                "ids must be unique"
            )
        seen[record["id"]] = number
        records.append(record)
    return records


def dump_jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"


def read_appended(path: Path) -> list[dict[str, Any]]:
    """The rows of an output that grows one JSON line per record, repairing what a kill can leave.

    * a torn last line (killed mid-write) is dropped; complete records before the tear stay;
    * a complete last line without its newline gets one (otherwise the next append would glue
      the next record onto it);
    * records glued onto one line (by such an append) are split onto lines of their own.

    Each repair is made once, atomically, and reported. Any other malformed line is an error
    naming its number: it is not something a kill leaves.
    """
    if not path.is_file():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows: list[dict[str, Any]] = []
    kept: list[bytes] = []
    repairs: list[str] = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        objects, rest = _split_objects(line)
        if rest.strip() and number != last:
            raise DataError(f"{path}:{number + 1}: malformed line in an existing output; fix or remove it")
        if rest.strip():
            repairs.append(f"dropped a torn last line ({len(rest)} bytes of an interrupted write)")
        if len(objects) > 1:
            repairs.append(f"split line {number + 1} holding {len(objects)} records")
        for blob, value in objects:
            if not isinstance(value, dict) or not isinstance(value.get("id"), str):
                raise DataError(f"{path}:{number + 1}: a line without an 'id' in an existing output; fix or remove it")
            rows.append(value)
            kept.append(blob)
    text = b"".join(blob + b"\n" for blob in kept)
    if text != raw:
        if not repairs:
            repairs.append("added the newline missing after the last record")
        write_atomic(path, text)
        log.warning("%s: %s", path, "; ".join(repairs))
    return rows


def _split_objects(line: bytes) -> tuple[list[tuple[bytes, Any]], bytes]:
    """The complete JSON values at the start of ``line`` (raw bytes and value), and what is left."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return [], line
    decoder = json.JSONDecoder()
    objects, position = [], 0
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break
        objects.append((text[position:end].encode("utf-8"), value))
        position = end
    return objects, text[position:].encode("utf-8")


@contextlib.contextmanager
def naming(path: Path | str):
    """An OSError raised inside without a file name (``write()`` on a full disk says only "No space
    left on device") gets ``path``, so its one-line error says which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file through a temporary sibling and a rename: readers see the old or the new file."""
    path = Path(path)
    tmp = path.with_name(temporary_name(path.name))
    with naming(path):
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)


def done_ids(path: Path) -> set[str]:
    """Ids already in an appended output (after ``read_appended``'s repairs)."""
    return {row["id"] for row in read_appended(path)}
