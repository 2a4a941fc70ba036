"""One settings object for every command, with a section per command (schema: ``sections``; layers: ``loader``)."""

from distil_cli.settings.loader import (
    ENV_PREFIX,
    RESERVED_ENV,
    LoadedSettings,
    effective_rows,
    field_help,
    load_settings,
    public_dump,
)
from distil_cli.settings.secrets import MASK, mask_url, mask_value
from distil_cli.settings.sections import (
    ALIASES,
    DEFAULT_CACHE,
    SECTIONS,
    AnnotateSettings,
    InferSettings,
    ModelsSettings,
    PrepareSettings,
    ScoreSettings,
    Section,
    Settings,
    TrainSettings,
)

__all__ = [
    "MASK",
    "mask_url",
    "mask_value",
    "ALIASES",
    "DEFAULT_CACHE",
    "ENV_PREFIX",
    "RESERVED_ENV",
    "SECTIONS",
    "AnnotateSettings",
    "InferSettings",
    "LoadedSettings",
    "ModelsSettings",
    "PrepareSettings",
    "ScoreSettings",
    "Section",
    "Settings",
    "TrainSettings",
    "effective_rows",
    "field_help",
    "load_settings",
    "public_dump",
]
