"""Shared Typer option aliases. Help texts come from the settings fields' descriptions.

Every flag defaults to ``None`` so that only flags the user typed override the
config file and the environment; the real default lives in ``settings.py`` and is
shown in the help text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from distil_cli.settings import field_help


def opt(section: str, name: str, *flags: str, **kwargs):
    """A Typer option whose help is the settings field's description and default."""
    names = flags or ("--" + name.replace("_", "-"),)
    return typer.Option(*names, help=field_help(section, name), show_default=False, **kwargs)


Model = Annotated[Optional[str], opt("train", "model")]
Formatter = Annotated[Optional[str], opt("train", "formatter")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output path.", show_default=False)]
Seed = Annotated[Optional[int], opt("prepare", "seed")]
