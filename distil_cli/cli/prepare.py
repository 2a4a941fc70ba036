"""``distil prepare``: raw corpus -> train/valid/test splits with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from distil_cli.cli.common import err_console, flags_of, opt, out_console, settings_for


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
    split: Annotated[Optional[str], opt("prepare", "split")] = None,
    seed: Annotated[Optional[int], opt("prepare", "seed")] = None,
    format: Annotated[Optional[str], opt("prepare", "format")] = None,
    lang: Annotated[Optional[str], opt("prepare", "lang")] = None,
    id_field: Annotated[Optional[str], opt("prepare", "id_field")] = None,
    input_field: Annotated[Optional[str], opt("prepare", "input_field")] = None,
    output_field: Annotated[Optional[str], opt("prepare", "output_field")] = None,
    rationale_field: Annotated[Optional[str], opt("prepare", "rationale_field")] = None,
    lang_field: Annotated[Optional[str], opt("prepare", "lang_field")] = None,
    max_input_chars: Annotated[Optional[int], opt("prepare", "max_input_chars")] = None,
    max_output_chars: Annotated[Optional[int], opt("prepare", "max_output_chars")] = None,
    max_input_tokens: Annotated[Optional[int], opt("prepare", "max_input_tokens")] = None,
    max_output_tokens: Annotated[Optional[int], opt("prepare", "max_output_tokens")] = None,
    tokenizer: Annotated[Optional[str], opt("prepare", "tokenizer")] = None,
    encoding: Annotated[Optional[str], opt("prepare", "encoding")] = None,
    hf_config: Annotated[Optional[str], opt("prepare", "hf_config")] = None,
    hf_split: Annotated[Optional[str], opt("prepare", "hf_split")] = None,
    allow_missing: Annotated[Optional[bool], opt("prepare", "allow_missing", "--allow-missing")] = None,
    overwrite: Annotated[Optional[bool], opt("prepare", "overwrite", "--overwrite")] = None,
) -> None:
    """Turn a raw corpus into reproducible train/valid/test splits with a manifest and length statistics."""
    flags = flags_of(locals(), "source", "out")
    from distil_cli.data.prepare import prepare as run_prepare
    from distil_cli.reports import stats_table

    loaded = settings_for(ctx, "prepare", **flags)
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
