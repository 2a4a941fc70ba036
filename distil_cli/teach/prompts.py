"""What the teacher is asked: the template (the template's own placeholders filled once, a record's text
inserted as data), the messages, and the hash that decides whether a record was asked the same way."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from distil_cli.errors import ConfigError, DataError
from distil_cli.settings import AnnotateSettings
from distil_cli.tasks import TEACHER_INSTRUCTIONS


def load_template(template: str | None) -> str | None:
    if template is None:
        return None
    if template.startswith("@"):
        path = Path(template[1:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"template file {path} does not exist")
        template = path.read_text(encoding="utf-8")
    if "{input}" not in template:
        raise ConfigError("the annotate template must contain {input}")
    return template


PLACEHOLDER = re.compile(r"\{(input|output|lang)\}")


def fill_template(template: str, values: dict[str, str]) -> str:
    """The template's own placeholders filled in one pass: a record's text is data, inserted once, so a
    ``{output}`` written inside an input never pulls the reference into the teacher's prompt."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def build_messages(record: dict[str, Any], template: str | None, system: str | None) -> list[dict[str, str]]:
    lang = record.get("lang", "en")
    if template is None:
        user = f"{TEACHER_INSTRUCTIONS.get(lang, TEACHER_INSTRUCTIONS['en'])}\n\n{record['input']}"
    else:
        if "{output}" in template and not record.get("output"):
            raise DataError(f"record {record['id']}: the template uses {{output}} but the record has no output")
        user = fill_template(template, {"input": record["input"], "output": record.get("output", ""), "lang": lang})
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


def prompt_hash(
    messages: list[dict[str, str]], backend: str, model: str, generation: dict[str, Any] | None = None
) -> str:
    """What decides a rationale: the messages, the teacher and its generation settings (a resume must match)."""
    blob = {"messages": messages, "backend": backend, "model": model, "generation": generation or {}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def generation_key(cfg: AnnotateSettings) -> dict[str, Any]:
    return {"max_tokens": cfg.max_tokens, "temperature": cfg.temperature}
