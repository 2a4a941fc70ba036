"""``distil prepare``: raw corpus -> reproducible, stratified, disjoint splits.

The output folder is built in a temporary sibling and renamed into place at the end,
so a failure never leaves a half-written DATA_DIR behind.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from distil_cli.data.files import dump_jsonl_line, sha256_file
from distil_cli.data.guard import OutputLock, check_separate, remove_stale_temporaries, temporary_name
from distil_cli.data.hf import is_hub
from distil_cli.data.readers import (
    SOURCE_SPLIT_NAMES,
    SourceScan,
    detect_format,
    read_multiclinsum,
    read_table,
    split_file_rows,
    split_files,
)
from distil_cli.data.text import crop_chars, crop_tokens
from distil_cli.errors import DataError
from distil_cli.settings import PrepareSettings, public_dump
from distil_cli.version import __version__

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclass
class PrepareResult:
    out: Path
    manifest: dict[str, Any]
    splits: dict[str, list[dict[str, Any]]]
    stats: list[dict[str, Any]]


def natural_key(text: str) -> list[Any]:
    """Sort 'case_2' before 'case_10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def read_source(source: Path, cfg: PrepareSettings) -> SourceScan:
    hub = is_hub(source)
    if not hub and not source.exists():
        raise DataError(f"source {source} does not exist")
    fmt = "hf" if hub else detect_format(source, cfg.format)
    if fmt == "multiclinsum":
        if not source.is_dir():
            raise DataError(f"{source}: the multiclinsum format needs a folder")
        return read_multiclinsum(source, cfg.encoding, cfg.lang, cfg.allow_missing)
    mapping = {
        "id": cfg.id_field,
        "input": cfg.input_field,
        "output": cfg.output_field,
        "rationale": cfg.rationale_field,
        "lang": cfg.lang_field,
    }
    if fmt not in ("hf", "splits"):
        return read_table(source, fmt, mapping, cfg.encoding, cfg.lang)
    names: list[str] = []  # each row's split in the source

    def tagged(rows):
        for name, where, row in rows:
            names.append(name)
            yield where, row

    if fmt == "splits":
        files = split_files(source)
        if not files:
            raise DataError(f"{source}: --format splits needs train/validation/test files (.jsonl .json .csv .parquet)")
        rows, listed = split_file_rows(files, cfg.encoding), list(files.values())
    else:
        from distil_cli.data.hf import hf_files, hf_rows

        # hf_rows names each row's split in its location: "SOURCE[split index]"
        found = hf_rows(source, cfg.hf_config, cfg.hf_split)
        rows, listed = ((w.rsplit("[", 1)[-1].split(" ", 1)[0], w, r) for w, r in found), hf_files(source)
    scan = read_table(source, fmt, mapping, cfg.encoding, cfg.lang, tagged(rows), listed)
    scan.source_splits = names
    return scan


def source_splits(scan: SourceScan, cfg) -> dict[str, list[dict[str, Any]]] | None:
    """The source's own splits (validation/dev -> valid), or None when it has none to keep (one split, or
    --resplit). A source without a validation split gets one carved from its train split (--split's
    valid share of train + valid, seeded)."""
    names = set(scan.source_splits)
    if cfg.resplit or len(names) < 2:
        return None
    unknown = sorted(names - set(SOURCE_SPLIT_NAMES))
    if unknown:
        raise DataError(
            f"the source's splits {unknown} are none of train, validation (dev), test: keep one with --hf-split "
            "or pool them all with --resplit"
        )
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for record, name in zip(scan.records, scan.source_splits, strict=True):
        splits[SOURCE_SPLIT_NAMES[name]].append(record)
    if not splits["valid"] and splits["train"]:
        share = cfg.split[1] / max(cfg.split[0] + cfg.split[1], 1e-9)
        carved = split_records(splits["train"], (1 - share, share, 0.0), cfg.seed)
        splits["train"], splits["valid"] = carved["train"], carved["valid"]
    for name in SPLITS:
        splits[name].sort(key=lambda r: (r["lang"], natural_key(r["id"])))
    return splits


def split_records(
    records: list[dict[str, Any]], ratios: tuple[float, float, float], seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Stratified by language, seeded, independent of the input order.

    Records are first sorted by id, then shuffled with a generator seeded from
    ``seed`` and the language, so the same seed and corpus always give the same
    splits whatever order the files were listed in. Unlabelled records (test layout)
    all go to ``test``.
    """
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "output" not in record:
            splits["test"].append(record)
        else:
            by_lang.setdefault(record["lang"], []).append(record)
    for lang in sorted(by_lang):
        group = sorted(by_lang[lang], key=lambda r: natural_key(r["id"]))
        random.Random(f"{seed}:{lang}").shuffle(group)
        n_valid = round(len(group) * ratios[1])
        n_test = round(len(group) * ratios[2])
        n_valid = min(n_valid, len(group))
        n_test = min(n_test, len(group) - n_valid)
        splits["valid"].extend(group[:n_valid])
        splits["test"].extend(group[n_valid : n_valid + n_test])
        splits["train"].extend(group[n_valid + n_test :])
    for name in SPLITS:
        splits[name].sort(key=lambda r: (r["lang"], natural_key(r["id"])))
    return splits


# --------------------------------------------------------------------------- cropping


def apply_cropping(records: list[dict[str, Any]], cfg: PrepareSettings, tokenizer) -> dict[str, int]:
    counts = Counter()
    for record in records:
        for field, chars, tokens in (
            ("input", cfg.max_input_chars, cfg.max_input_tokens),
            ("output", cfg.max_output_chars, cfg.max_output_tokens),
        ):
            if field not in record:
                continue
            original = record[field]
            text = crop_chars(original, chars)
            if tokenizer is not None:
                text = crop_tokens(text, tokens, tokenizer)
            if text != original:
                if not text:
                    raise DataError(f"record {record['id']}: cropping leaves an empty {field}; raise the limit")
                record[field] = text
                counts[field] += 1
    return {"input": counts["input"], "output": counts["output"]}


# --------------------------------------------------------------------------- statistics


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def length_stats(
    splits: dict[str, list[dict[str, Any]]], count_tokens: Callable[[str], int] | None
) -> list[dict[str, Any]]:
    """Rows of (split, lang, field, unit, count, min, median, p90, p95, max)."""
    rows = []
    for split in SPLITS:
        langs = sorted({r["lang"] for r in splits[split]})
        for lang in langs:
            group = [r for r in splits[split] if r["lang"] == lang]
            for field in ("input", "output", "rationale"):
                texts = [r[field] for r in group if field in r]
                if not texts:
                    continue
                units = [("chars", len)] + ([("tokens", count_tokens)] if count_tokens else [])
                for unit, measure in units:
                    values = [measure(t) for t in texts]
                    rows.append(
                        {
                            "split": split,
                            "lang": lang,
                            "field": field,
                            "unit": unit,
                            "count": len(values),
                            "min": min(values),
                            "median": int(median(values)),
                            "p90": _quantile(values, 0.9),
                            "p95": _quantile(values, 0.95),
                            "max": max(values),
                        }
                    )
    return rows


# --------------------------------------------------------------------------- orchestration


def _counts(splits: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    return {name: dict(sorted(Counter(r["lang"] for r in records).items())) for name, records in splits.items()}


def _manifest(
    source: Path, scan: SourceScan, cfg: PrepareSettings, splits, cropped: dict[str, int], tokenizer_name: str | None
) -> dict[str, Any]:
    base = source if source.is_dir() else source.parent
    files = {str(p.relative_to(base)): sha256_file(p) for p in sorted(scan.files)}
    return {
        "tool": "distil",
        "version": __version__,
        "source": str(source.resolve()),
        "format": scan.format,
        "settings": public_dump(cfg),
        "tokenizer": tokenizer_name,
        "splits_from": "source"
        if scan.source_splits and len(set(scan.source_splits)) > 1 and not cfg.resplit
        else "distil",
        "counts": _counts(splits),
        "totals": {name: len(records) for name, records in splits.items()},
        "cropped": cropped,
        "skipped_missing_summary": {"count": len(scan.skipped_missing), "ids": scan.skipped_missing},
        "ignored_files": scan.ignored_files,
        "source_files": files,
    }


def _write_atomically(out: Path, splits, manifest: dict[str, Any], overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent, out.name)
    tmp = out.with_name(temporary_name(out.name))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, records in splits.items():
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as fh:
                fh.writelines(dump_jsonl_line(r) for r in records)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out.exists():
            old = out.with_name(temporary_name(out.name, "old"))
            if out.is_dir() and not out.is_symlink():
                out.rename(old)
            else:
                raise DataError(f"--out {out} is a file; give a folder for the prepared splits")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(
    source: Path, out: Path, cfg: PrepareSettings, load_tokenizer: Callable[[str], Any] | None = None
) -> PrepareResult:
    """Read, crop, split and write a corpus; return what was written and its statistics."""
    if not is_hub(source):
        check_separate(source, out)
    scan = read_source(Path(source), cfg)
    tokenizer_name = cfg.tokenizer
    if tokenizer_name is None and (cfg.max_input_tokens or cfg.max_output_tokens):
        tokenizer_name = "default"
    tokenizer = None
    if tokenizer_name is not None:
        if load_tokenizer is None:
            raise DataError("token cropping needs a tokenizer loader")
        tokenizer = load_tokenizer(tokenizer_name)
    cropped = apply_cropping(scan.records, cfg, tokenizer)
    kept = source_splits(scan, cfg)
    splits = kept if kept is not None else split_records(scan.records, cfg.split, cfg.seed)
    if kept is not None:
        log.info(
            "Kept the source's own splits (%s); --resplit pools and splits again",
            ", ".join(sorted(set(scan.source_splits))),
        )
    elif len(set(scan.source_splits)) > 1:
        log.info("Pooled the source's splits and split them again by --split (--resplit)")
    count_tokens = None
    if tokenizer is not None:
        count_tokens = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    stats = length_stats(splits, count_tokens)
    manifest = _manifest(Path(source), scan, cfg, splits, cropped, tokenizer_name)
    with OutputLock(Path(out)):
        _write_atomically(Path(out), splits, manifest, cfg.overwrite)
    if scan.skipped_missing:
        log.warning("Skipped %d case(s) without a summary (--allow-missing)", len(scan.skipped_missing))
    return PrepareResult(Path(out), manifest, splits, stats)
