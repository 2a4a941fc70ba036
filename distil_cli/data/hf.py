"""Hugging Face ``datasets`` as a source: save_to_disk folders, Arrow files, parquet folders, hub ids.

    distil prepare my_dataset/ --out data          # Dataset or DatasetDict.save_to_disk(...) folder
    distil prepare train.arrow --out data          # an Arrow file written by datasets
    distil prepare parquet_dir/ --out data         # a folder of .parquet files
    distil prepare hf:NAME --hf-config C --hf-split S --out data   # the hub (needs the network)

Rows go through the same field mapping flags as json/csv files. A DatasetDict gives all its
splits (or ``--hf-split``); ``distil prepare`` keeps them (``--resplit`` pools and splits again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distil_cli.data.guard import remove_stale_temporaries, temporary_name
from distil_cli.errors import DataError

HUB_PREFIX = "hf:"


def is_hub(source: Path | str) -> bool:
    """``hf:NAME``: a dataset on the hub (no local path to check)."""
    return str(source).startswith(HUB_PREFIX)


def is_hf_source(source: Path) -> bool:
    if is_hub(source):
        return True
    if source.is_file():
        return source.suffix.lower() == ".arrow"
    if source.is_dir():
        marker = any((source / name).is_file() for name in ("dataset_dict.json", "state.json", "dataset_info.json"))
        parquet = any(source.glob("*.parquet")) and not any(source.rglob("fulltext"))
        return marker or parquet
    return False


def _load(source: Path, config: str | None, split: str | None):
    try:
        import datasets
    except ImportError:
        raise DataError(
            "reading a Hugging Face dataset needs the datasets package: pip install 'datasets>=5.2'"
        ) from None
    text = str(source)
    try:
        if is_hub(source):
            return datasets.load_dataset(text[len(HUB_PREFIX) :], config, split=split)
        if source.is_file():
            return datasets.Dataset.from_file(str(source))
        if any(source.glob("*.parquet")) and not (source / "state.json").is_file():
            files = sorted(str(p) for p in source.glob("*.parquet"))
            return datasets.load_dataset("parquet", data_files={"train": files}, split="train")
        return datasets.load_from_disk(str(source))
    except DataError:
        raise
    except (ConnectionError, OSError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        where = (
            "the hub (is the network there? a local save_to_disk folder works offline)"
            if is_hub(source)
            else str(source)
        )
        raise DataError(f"{text}: cannot load the dataset from {where}: {first}") from None
    except ValueError as exc:  # an unknown split or config
        raise DataError(f"{text}: {str(exc).splitlines()[0][:300]}") from None


def hf_rows(source: Path, config: str | None = None, split: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) pairs of a dataset; a DatasetDict gives every split (or ``split``)."""
    import datasets

    loaded = _load(source, config, split)
    parts = dict(loaded.items()) if isinstance(loaded, (datasets.DatasetDict, dict)) else None
    if parts is None and split is not None and not is_hub(source):
        raise DataError(f"{source}: a single dataset without splits; drop --hf-split {split}")
    if parts is not None and split is not None:
        if split not in parts:
            raise DataError(f"{source}: no split '{split}' (it has {', '.join(parts)}); choose one with --hf-split")
        parts = {split: parts[split]}
    for name, dataset in (parts or {"rows": loaded}).items():
        for index, row in enumerate(dataset):
            yield f"{source}[{name} {index}]", row


def hf_files(source: Path) -> list[Path]:
    """The local files of the dataset, for the manifest's hashes (none for a hub id)."""
    if is_hub(source):
        return []
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in (".arrow", ".parquet", ".json"))


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its nested values (an annotation's metadata) as JSON text: every row of a table then
    has the same columns, whatever each record's metadata holds."""
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in row.items()}


def save_as_dataset(files: list[Path], dest: Path) -> Path:
    """JSON-lines splits as a DatasetDict saved to ``dest`` (atomically), for ``datasets`` users (``flat_row``)."""
    import shutil

    import datasets

    from distil_cli.data.files import read_appended

    splits = {}
    for path in files:
        splits[path.stem] = datasets.Dataset.from_list([flat_row(row) for row in read_appended(path)])
    remove_stale_temporaries(dest.parent, dest.name)
    tmp = dest.with_name(temporary_name(dest.name))
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.DatasetDict(splits).save_to_disk(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
