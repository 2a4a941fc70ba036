"""How a setting is declared (``setting``: its flag, help, resume rule and Trainer mapping in one place),
the base of every section, and the parsers list and table settings share."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

FORMATTERS = "chat-template, chatml, or a plugin's: gemma, llama3, mistral, phi3, ...; see `distil plugins`"


# A resume (``distil train --resume``) must keep a MATCH setting: it changes what the run means
# (its data, objective, schedule, weights' form). A MAY_CHANGE one changes only how the run is
# carried out or reported, and a resume may change it (saying so).
MATCH, MAY_CHANGE = "match", "may change"


def setting(
    default: Any = ...,
    *,
    description: str,
    resume: str | None = None,
    flags: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    hf: str | None = None,
    sets: tuple[str, ...] = (),
    metavar: str | None = None,
    cli: bool = True,
    **constraints: Any,
) -> Any:
    """A settings field, the one declaration of an option: everything else is derived from it.

    ``description`` is the help of its flag (``distil_cli.cli.options``); ``resume`` its resume rule
    (``train.resume``); ``flags`` the flag's spellings when not ``--name-with-dashes``; ``aliases``
    other names a config file or variable may use; ``hf`` the Hugging Face TrainingArguments field
    of the same meaning (accepted as a flag, a key and an alias, and refused in trainer_args);
    ``sets`` other TrainingArguments fields distil derives from it (refused in trainer_args);
    ``metavar`` the flag's value as --help shows it;
    ``cli=False`` for the one field without a flag (a secret, read from the environment only).
    """
    extra = {
        "resume": resume,
        "flags": list(flags) or None,
        "aliases": list(aliases) or None,
        "hf": hf,
        "sets": list(sets) or None,
        "metavar": metavar,
        "cli": None if cli else False,
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


def meta(section: type[BaseModel], name: str) -> dict[str, Any]:
    """The metadata ``setting`` gave a field (empty for a plain pydantic Field)."""
    extra = section.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


class Section(BaseModel):
    # allow_inf_nan=False: NaN and infinity are never valid settings (a NaN split ratio passed every range check)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``batch_size: true`` is not 1: a boolean is only valid where the setting is a boolean."""
        if isinstance(value, bool) and bool not in _leaf_types(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a {_kind(cls.model_fields[info.field_name].annotation)}, got {value}")
        return value


def _leaf_types(annotation: Any) -> set[Any]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return {type(a) for a in args}
    return set().union(*(_leaf_types(a) for a in args)) if args else {annotation}


def _kind(annotation: Any) -> str:
    leaves = _leaf_types(annotation) - {type(None)}
    names = {int: "number", float: "number", str: "text", Path: "path", list: "list", dict: "table"}
    return " or ".join(sorted({names.get(t, getattr(t, "__name__", str(t))) for t in leaves}))


def comma_list(value: Any) -> Any:
    """A list setting given as one comma-separated string (a flag, a variable): its items."""
    return [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else value


def pairs(value: Any, sep: str, form: str, parse_json: bool = False) -> Any:
    """A table setting given as repeated ``KEY<sep>VALUE`` strings (a repeatable flag): the table.

    ``parse_json``: a value that reads as JSON is taken as such (``max_grad_norm=0.5`` is a number)."""
    if not isinstance(value, (list, tuple)):
        return value
    table: dict[str, Any] = {}
    for item in value:
        key, found, text = str(item).partition(sep)
        if not found or not key.strip():
            raise ValueError(f"expected {form}, got {item!r}")
        table[key.strip()] = _json_or_text(text.strip()) if parse_json else text.strip()
    return table


def _json_or_text(text: str) -> Any:

    try:
        return json.loads(text)
    except ValueError:
        return text
