"""``distil prepare``: raw corpus -> train/valid/test splits with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from distil_cli.cli.common import err_console, out_console, settings_for
from distil_cli.cli.options import settings_flags


@settings_flags("prepare")
def prepare(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(
            help="MultiClinSum folder tree, a .json/.jsonl/.csv/.parquet file, a Hugging Face dataset "
            "(save_to_disk folder, .arrow, parquet folder) or hf:NAME (the hub)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder DATA_DIR (train/valid/test.jsonl + manifest.json).")
    ],
    flags: dict[str, Any] | None = None,
) -> None:
    """Turn a raw corpus into reproducible train/valid/test splits with a manifest and length statistics."""
    from distil_cli.data.prepare import prepare as run_prepare
    from distil_cli.reports import stats_table

    loaded = settings_for(ctx, "prepare", **(flags or {}))
    cache = loaded.settings.models.cache_dir
    result = run_prepare(source, out, loaded.settings.prepare, load_tokenizer=lambda name: _tokenizer(name, cache))
    out_console.print(stats_table(result.stats))
    totals = ", ".join(f"{k} {v}" for k, v in result.manifest["totals"].items())
    cropped = result.manifest["cropped"]
    err_console.print(
        f"Wrote {result.out} ({totals}; cropped inputs {cropped['input']}, outputs {cropped['output']}; "
        f"skipped without summary {result.manifest['skipped_missing_summary']['count']})",
        highlight=False,
    )


def _tokenizer(name: str, cache_dir: Path):
    from distil_cli.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(name, cache_dir))
