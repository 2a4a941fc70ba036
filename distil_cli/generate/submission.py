"""The MultiClinSum submission layout: one ``<case>_sum.txt`` per prediction.

Flat (``--submission-dir DIR``): ``DIR/<case>_sum.txt``. The shared task's layout
(``--team NAME --run-id N`` too): ``DIR/<team>_multiclinsum_<lang>_run_<N>/<case>_sum.txt``
for every language, and a zip of each such folder beside it. Names are checked before any
generation: ids that would collide or be too long for a file name are errors.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_cli.data.files import iter_jsonl
from distil_cli.data.guard import remove_stale_temporaries, temporary_name
from distil_cli.data.text import check_lang
from distil_cli.errors import ConfigError, DataError

SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILE_NAME = 255  # bytes, on every common file system


def submission_name(record_id: str) -> str:
    """``<case_id>_sum.txt`` with the id sanitised so it cannot escape the folder."""
    safe = SAFE_ID.sub("_", record_id).strip("._") or "record"
    return f"{safe}_sum.txt"


@dataclass
class Submission:
    root: Path
    team: str | None = None
    run_id: int | None = None

    def __post_init__(self) -> None:
        if (self.team is None) != (self.run_id is None):
            raise ConfigError("--team and --run-id go together (the shared task's layout); give both or neither")
        if self.team is not None and not re.fullmatch(r"[A-Za-z0-9-]+", self.team):
            raise ConfigError(f"--team {self.team!r}: use letters, digits and '-' (it names folders)")
        if self.run_id is not None and self.run_id < 1:
            raise ConfigError(f"--run-id {self.run_id}: the shared task's run numbers start at 1")

    def folder(self, lang: str) -> Path:
        if self.team is None:
            return self.root
        lang = check_lang(lang, "submission folder")  # never a path: nothing is written outside root
        return self.root / f"{self.team}_multiclinsum_{lang}_run_{self.run_id}"

    def path(self, record: dict[str, Any]) -> Path:
        return self.folder(record.get("lang", "en")) / submission_name(record["id"])

    def check(self, records: list[dict[str, Any]]) -> None:
        """No two records map to one file; no name is too long: before any generation."""
        seen: dict[Path, str] = {}
        for record in records:
            path = self.path(record)
            if path in seen:
                raise DataError(f"ids '{seen[path]}' and '{record['id']}' map to the same submission file {path.name}")
            if len(path.name.encode("utf-8")) > MAX_FILE_NAME:
                raise DataError(
                    f"id '{record['id'][:40]}...' is too long for a submission file name "
                    f"({len(path.name.encode())} bytes, at most {MAX_FILE_NAME}); shorten the ids "
                    "(e.g. in `distil prepare`) or drop --submission-dir"
                )
            seen[path] = record["id"]

    def write(self, record: dict[str, Any], text: str) -> None:
        path = self.path(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")

    def fill(self, predictions: Path) -> None:
        """Records done in an earlier run also belong in the submission."""
        for _, row in iter_jsonl(predictions):
            if not self.path(row).exists():
                self.write(row, row["prediction"])

    def zip_folders(self) -> list[Path]:
        """A zip of every language folder (the shared task's layout only), written beside it atomically."""
        if self.team is None:
            return []
        zips = []
        for folder in sorted(p for p in self.root.glob(f"{self.team}_multiclinsum_*_run_{self.run_id}") if p.is_dir()):
            target = folder.with_name(folder.name + ".zip")
            remove_stale_temporaries(folder.parent, target.name)
            tmp = folder.with_name(temporary_name(target.name))
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.glob("*_sum.txt")):
                    archive.write(file, f"{folder.name}/{file.name}")
            tmp.replace(target)
            zips.append(target)
        return zips
