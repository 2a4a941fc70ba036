"""``distil push``: a run's final model (or LoRA adapter) and its model card to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distil_cli.cli.common import err_console, out_console


def push(
    run_dir: Annotated[Path, typer.Argument(help="A finished `distil train` run folder (uploads its final/).")],
    repo: Annotated[str, typer.Option("--repo", help="The Hub repository, OWNER/NAME (created if needed).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
    adapter: Annotated[
        bool, typer.Option("--adapter", help="final/ is a LoRA adapter (a --lora --no-merge run): push it as one.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; nothing is sent.")] = False,
) -> None:
    """Upload RUN_DIR/final/ (weights, tokenizer, model card) to the Hub with huggingface_hub; HF_TOKEN or
    `hf auth login` authenticates."""
    from distil_cli.push import plan
    from distil_cli.push import push as upload

    found = plan(run_dir, repo, adapter)
    kind = "LoRA adapter" if found.adapter else "model"
    for name, size in found.files:
        out_console.print(f"{size:>12,}  {name}", highlight=False)
    total = sum(size for _, size in found.files)
    if dry_run:
        err_console.print(
            f"Would upload the {kind} in {found.folder} ({len(found.files)} files, {total / 2**20:.1f} MiB) to "
            f"{found.repo}{' (private)' if private else ''}; nothing was sent.",
            highlight=False,
        )
        return
    done = upload(found, private=private)
    err_console.print(f"Uploaded the {kind} ({len(found.files)} files) to {done.url}", highlight=False)
