"""Masking of secret-bearing settings: API keys, HTTP headers, credentials inside URLs.

Used wherever a setting's value can reach a person or a file: validation errors,
``distil config show``, logs, manifests and run records.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

MASK = "**********"
SECRET_FIELDS = {("annotate", "api_key"), ("annotate", "headers")}
URL_FIELDS = {("annotate", "base_url")}


def mask_url(url: str) -> str:
    """The URL with the password of its user info and every query value masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_value(section: str, name: str, value: Any) -> Any:
    """What may be shown of a setting's value."""
    if isinstance(value, SecretStr) or ((section, name) in SECRET_FIELDS and not isinstance(value, dict)):
        return MASK if value not in (None, "") else value
    if (section, name) in SECRET_FIELDS:  # headers: the names are useful, the values may be tokens
        return {k: MASK for k in value}
    if (section, name) in URL_FIELDS and isinstance(value, str):
        return mask_url(value)
    return value
