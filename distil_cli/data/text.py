"""Text normalisation and cropping (by characters or by tokens), shared by prepare, train and infer."""

from __future__ import annotations

import re
from typing import Any

from distil_cli.errors import DataError

LANG = re.compile(r"[a-z]{2,3}([_-][a-z0-9]{2,8})*")


def check_lang(lang: Any, where: str) -> str:
    """A record's language: a short code (``en``, ``pt-br``, ``zh_hans``); it names folders and files.

    Anything else (``../x``, ``1``, a path) is refused, so no language can lead a write outside its folder."""
    if not isinstance(lang, str) or not LANG.fullmatch(lang.lower()):
        raise DataError(
            f"{where}: language {lang!r} is not a language code such as en, es, pt-br (letters; it names folders)"
        )
    return lang.lower()


def normalise_text(raw: bytes, encoding: str, where: str) -> str:
    """Decode, drop a BOM, turn CRLF/CR into LF and strip surrounding whitespace."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{where}: cannot decode as {encoding} at byte {exc.start}; pass --encoding (e.g. latin-1) or fix the file"
        ) from None
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}' (from --encoding)") from None
    text = text.lstrip("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def crop_chars(text: str, limit: int | None) -> str:
    """At most ``limit`` characters (Python strings never split a UTF-8 character).

    When a word boundary lies within the last 10% of the limit, crop there.
    """
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ", int(limit * 0.9))
    return (cut[:space] if space > 0 else cut).rstrip()


def crop_tokens(text: str, limit: int | None, tokenizer) -> str:
    """At most ``limit`` tokens, cut at a token's character end offset."""
    if limit is None:
        return text
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= limit:
        return text
    return text[: offsets[limit - 1][1]].rstrip()
