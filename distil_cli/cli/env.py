"""``distil env``: what a bug report needs: versions, devices, plugins, paths."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Annotated

import typer

from distil_cli.cli.common import JSON_FLAG, out_console, print_json, settings_for

PACKAGES = (
    "distil-cli", "torch", "transformers", "peft", "accelerate", "liger-kernel", "triton", "openai", "pydantic",
    "typer", "rich", "rouge-score", "nltk", "pyarrow", "matplotlib", "pluggy", "datasets", "huggingface-hub",
)  # fmt: skip


def environment(ctx: typer.Context) -> dict:
    import torch

    from distil_cli.cli.plugins import registry_summary
    from distil_cli.plugins.registry import get_registry

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    settings = settings_for(ctx).settings
    registry = registry_summary(get_registry())
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cuda": {"available": cuda, "version": torch.version.cuda, "devices": devices},
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "model_cache": str(settings.models.cache_dir),
        "plugins": [f"{p['name']} ({p['package']}): {p['status']}" for p in registry["plugins"]],
        "warnings": registry["warnings"],
    }


def env(ctx: typer.Context, as_json: Annotated[bool, JSON_FLAG] = False) -> None:
    """Print versions, devices, plugins and cache paths (paste it into a bug report)."""
    info = environment(ctx)
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(map(str, value)) or "-"
        out_console.print(f"{key}: {value}", highlight=False)
