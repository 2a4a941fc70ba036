"""Text normalisation and cropping (by characters or by tokens), shared by prepare, train and infer."""

from __future__ import annotations

from distil_cli.errors import DataError


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
