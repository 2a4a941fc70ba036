"""Command-line flags derived from the settings schema: one flag per settings field, nothing declared twice.

``@settings_flags("train")`` adds to a command one option per field of ``TrainSettings``: its
spellings (``--name-with-dashes``, or the field's ``flags``, plus its Hugging Face name ``hf``),
its help (the field's description, choices and default: ``settings.field_help``) and its type.
The command receives what the user typed as ``flags`` (a dict of the fields given), which
``settings_for`` layers over the config file and the environment. Every flag defaults to
``None`` so that only flags the user typed override the lower layers.

Types: a bool is ``--x/--no-x``; a number or text is itself; a Literal is text (the schema
checks it and says which source gave a wrong value); a list is one comma-separated text; a
table is a repeatable ``KEY=VALUE`` flag (the schema's validators parse both).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from distil_cli.settings import SECTIONS, field_help
from distil_cli.settings.fields import meta

_PLAIN = (bool, int, float, str, Path)


def flag_names(section: str, name: str) -> list[str]:
    """The spellings of a field's flag: its own (or ``--name-with-dashes``) and its Hugging Face name."""
    info = meta(SECTIONS[section], name)
    names = list(info.get("flags") or ["--" + name.replace("_", "-")])
    if info.get("hf"):
        names.append("--" + info["hf"])
    return names


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """(the flag's Python type, repeatable) for a field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if annotation in _PLAIN:
        return annotation, False
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if origin is typing.Literal:
        return str, False
    if origin is dict:
        return list[str], True
    if origin in (list, tuple):
        return str, False
    raise TypeError(f"no flag type for {annotation!r}: give the field cli=False or a type the CLI knows")


def parameters(section: str, skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option) per field of ``section`` with a flag."""
    schema = SECTIONS[section]
    found = []
    for name, info in schema.model_fields.items():
        if name in skip or meta(schema, name).get("cli") is False:
            continue
        kind, repeatable = _flag_type(info.annotation)
        names = flag_names(section, name)
        if kind is bool:
            names = [f"{n}/--no-{n[2:]}" for n in names[:1]] + names[1:]
        option = typer.Option(
            *names,
            help=field_help(section, name),
            show_default=False,
            metavar=meta(schema, name).get("metavar") or ("KEY=VALUE" if repeatable else None),
        )
        annotation = Annotated[Optional[kind], option]
        found.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return found


def settings_flags(section: str, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command ``f(ctx, ..., flags)``: it gains a flag per ``section`` field and gets the typed ones.

    ``flags`` holds only the fields the user gave on the command line (the others are None, left
    to the file, the environment and the defaults).
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "flags"]
        derived = parameters(section, skip)
        names = {p.name for p in derived}
        clash = names & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are also settings of [{section}]")

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in names}
            return command(**kwargs, flags={k: v for k, v in given.items() if v is not None})

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]  # Typer passes all by name
        run.__signature__ = inspect.Signature([*params, *derived])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*own, *derived]}
        return run

    return decorate
