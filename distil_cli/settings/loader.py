"""Building the effective settings from their layers, each value remembering its source.

Precedence, lowest to highest (tested in tests/test_settings.py):

    defaults < config file (``distil --config FILE``; TOML or YAML)
             < environment (``DISTIL_<SECTION>__<FIELD>``)
             < command-line flags

Every value remembers where it came from so that ``distil config show`` can say so,
and so that an unknown key or an out-of-range value is reported with its source.
Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from distil_cli.errors import ConfigError
from distil_cli.settings.secrets import mask_value
from distil_cli.settings.sections import ALIASES, SECTIONS, Section, Settings

ENV_PREFIX = "DISTIL_"
# DISTIL_* variables that are not settings (no "__"): read directly where they apply.
RESERVED_ENV = {"DISTIL_DEBUG", "DISTIL_LOAD_PLUGINS", "DISTIL_CONFIG"}


@dataclass
class LoadedSettings:
    """The effective settings plus, for every ``section.field``, where its value came from."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, section: str, name: str) -> str:
        return self.sources.get(f"{section}.{name}", "default")


def field_help(section: str, name: str) -> str:
    """Help text of a settings field for its CLI flag, with the default spelled out."""
    info = SECTIONS[section].model_fields[name]
    default = info.get_default(call_default_factory=True)
    if isinstance(default, tuple):
        default = ",".join(f"{x:g}" for x in default)
    if isinstance(default, list):
        default = ",".join(map(str, default))
    shown = "" if default in (None, {}, [], "") else f" [default: {default}]"
    choices = _choices(info.annotation)
    listed = f" One of: {', '.join(choices)}." if choices else ""
    return f"{info.description}{listed}{shown} (setting {section}.{name})"


def _choices(annotation) -> list[str]:
    """The allowed values of a Literal field (also inside Optional / a list), for --help."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in args]
    return next((c for c in (_choices(a) for a in args) if c), [])


def read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - exercised on 3.10 only
                import tomli as tomllib
            data = tomllib.loads(text)
    except Exception as exc:  # the parsers' own error types differ
        raise ConfigError(f"config file {path} cannot be parsed: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of sections such as [train]")
    return data


def _coerce_env(section: str, name: str, raw: str) -> Any:
    """Environment values are strings; list and dict fields take JSON or comma-separated text."""
    annotation = SECTIONS[section].model_fields[name].annotation
    text = repr(annotation)
    if "dict[" in text:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw  # let validation report it with its source
    if "list[" in text:
        if raw.strip().startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw
        return [x.strip() for x in raw.split(",") if x.strip()]
    return raw


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    values: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX) or key in RESERVED_ENV or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
        label = f"environment {key}"
        name = _check_known(section, name, label)
        values.setdefault(section, {})[name] = _coerce_env(section, name, env[key])
        labels[f"{section}.{name}"] = label
    return values, labels


def _check_known(section: str, name: str | None, label: str) -> str | None:
    """The field's own name (aliases resolved); an unknown section or field is an error naming its source."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown settings section '{section}' (from {label}); known: {', '.join(SECTIONS)}")
    if name is None:
        return None
    name = ALIASES.get(section, {}).get(name, name)
    if name not in SECTIONS[section].model_fields:
        known = ", ".join(SECTIONS[section].model_fields)
        raise ConfigError(f"unknown setting '{section}.{name}' (from {label}); known in [{section}]: {known}")
    return name


def _file_layer(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    values: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for section, body in read_file(path).items():
        label = f"config file {path}"
        _check_known(section, None, label)
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}] in {path} must be a table of settings, not {type(body).__name__}")
        for key, value in body.items():
            name = _check_known(section, key, label)
            if name in values.get(section, {}):
                raise ConfigError(f"[{section}] in {path} sets '{name}' twice (once as '{key}'); keep one")
            values.setdefault(section, {})[name] = value
            labels[f"{section}.{name}"] = label
    return values, labels


def load_settings(
    config_file: Path | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Build the effective settings from defaults, file, environment and flags.

    ``flags`` maps section -> {field: value} for the flags the user actually gave
    (``None`` values are skipped: an absent flag must not override lower layers).
    """
    env = os.environ if env is None else env
    if config_file is None and env.get("DISTIL_CONFIG"):
        config_file = Path(env["DISTIL_CONFIG"])
    layers: list[tuple[dict[str, dict[str, Any]], dict[str, str]]] = []
    if config_file is not None:
        layers.append(_file_layer(Path(config_file)))
    layers.append(_env_layer(env))
    flag_values: dict[str, dict[str, Any]] = {}
    flag_labels: dict[str, str] = {}
    for section, body in (flags or {}).items():
        for name, value in body.items():
            if value is None:
                continue
            _check_known(section, name, "command line")
            flag_values.setdefault(section, {})[name] = value
            flag_labels[f"{section}.{name}"] = "flag --" + name.replace("_", "-")
    layers.append((flag_values, flag_labels))

    merged: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for values, labels in layers:
        for section, body in values.items():
            merged.setdefault(section, {}).update(body)
        sources.update(labels)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources)) from None
    return LoadedSettings(settings, sources)


def _explain(exc: ValidationError, sources: dict[str, str]) -> str:
    err = exc.errors()[0]
    loc = [str(x) for x in err["loc"]]
    key = ".".join(loc[:2])
    label = sources.get(key, "default")
    value = mask_value(loc[0], loc[1], err.get("input")) if len(loc) >= 2 else err.get("input")
    shown = "" if isinstance(value, (dict, SecretStr)) else f" = {value!r}"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {key}{shown} (from {label}): {msg}{more}"


def effective_rows(loaded: LoadedSettings, section: str | None = None) -> list[tuple[str, str, str]]:
    """(key, printable value, source) for ``config show``; secrets are masked."""
    if section is not None and section not in SECTIONS:
        raise ConfigError(f"unknown settings section '{section}'; known: {', '.join(SECTIONS)}")
    rows = []
    for sec in SECTIONS:
        if section is not None and sec != section:
            continue
        body = getattr(loaded.settings, sec)
        for name in SECTIONS[sec].model_fields:
            value = mask_value(sec, name, getattr(body, name))
            if isinstance(value, tuple):
                shown = ",".join(f"{x:g}" for x in value)
            elif isinstance(value, (dict, list)):
                shown = json.dumps(value, ensure_ascii=False)
            else:
                shown = "" if value is None else str(value)
            rows.append((f"{sec}.{name}", shown, loaded.source(sec, name)))
    return rows


def public_dump(section: Section) -> dict[str, Any]:
    """A JSON-safe dump of one section for manifests and run records (secrets masked)."""
    name = next((k for k, cls in SECTIONS.items() if isinstance(section, cls)), "")
    data = section.model_dump(mode="json")
    for key in data:
        raw = getattr(section, key)
        masked = mask_value(name, key, raw)
        if masked is not raw:
            data[key] = masked
    return data
