"""The run record (RUN_DIR/run.json): what ``distil train`` did, read back by ``distil infer``.

Versioned: ``run_record`` names the layout. A record without it was written by distil
0.1.0 before the field existed and has the layout of version 1. A newer, unknown version
is an error that says to upgrade distil, never a silent misreading.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from distil_cli.errors import ConfigError

RUN_RECORD_VERSION = 1
FILE_NAME = "run.json"


@dataclass
class RunRecord:
    settings: dict[str, Any]  # the train settings (secrets masked)
    model_source: str
    formatter: str
    instructions: dict[str, dict[str, str]]  # task key ("summary", "rationale") -> lang -> instruction
    max_input_tokens: int
    family: str | None = None
    system_prompt: str | None = None  # in every prompt of the run (None: the chat template's default)
    prompt_template: str | None = None  # the summary prompt of its first language, the input as {input}
    data_dir: str = ""
    data_manifest_sha256: str | None = None
    examples: int = 0
    cropped_inputs: int = 0
    skipped_missing_rationale: list[str] = field(default_factory=list)
    speed: dict[str, Any] = field(default_factory=dict)
    global_steps: int = 0
    best_metric: float | None = None
    best_checkpoint: str | None = None
    selected: dict[str, Any] = field(default_factory=dict)  # which checkpoint became final/ and why
    train_seconds: float = 0.0
    final: str = ""
    # each resume that made the run longer: planned_steps -> steps, resumed_at_step, changed (the settings)
    extensions: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"  # "running" while training (written at the start), "done" at the end
    tool: str = "distil"
    version: str = ""  # distil's version
    versions: dict[str, str] = field(default_factory=dict)  # libraries
    run_record: int = RUN_RECORD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    def write(self, run_dir: Path) -> Path:
        from distil_cli.data.files import write_atomic

        path = Path(run_dir) / FILE_NAME
        write_atomic(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable run record ({exc}); is this a `distil train` run?") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not a run record (expected a JSON object)")
        version = data.get("run_record", 1)
        if version != RUN_RECORD_VERSION:
            raise ConfigError(
                f"{path}: run record version {version!r}, this distil reads version {RUN_RECORD_VERSION}; "
                "upgrade distil (or pass the model folder final/ with --formatter)"
            )
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"{path}: incomplete run record ({exc})") from None

    def recipe(self) -> dict[str, Any]:
        """The train settings the run recorded with its data folder, None left out: a recipe's ``train``."""
        found = {**self.settings, "data": self.settings.get("data") or self.data_dir or None}
        return {k: v for k, v in found.items() if v is not None}

    def summary_instructions(self) -> dict[str, str]:
        """lang -> the summary instruction the model was trained with."""
        return dict(self.instructions.get("summary", {}))


def find_run_record(model_arg: str) -> Path | None:
    """run.json of a run folder or of the run holding a final/ folder; None for other models."""
    path = Path(model_arg).expanduser()
    if not path.is_dir():
        return None
    return next((p for p in (path / FILE_NAME, path.parent / FILE_NAME) if p.is_file()), None)
