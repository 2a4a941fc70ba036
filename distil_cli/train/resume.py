"""The state of a run folder: which checkpoints are complete, what a fresh start clears, what a resume must match.

A checkpoint is complete when its trainer state parses and its weights file has a readable
header: a kill during a save leaves one without (the Trainer writes the state last).
``--resume`` continues from the newest complete checkpoint and says which ones it skipped;
a fresh start removes what a dead run left (cut-off checkpoints, its metrics lines). A resume
must keep every setting that changes what the run means (``MEANING``: the fields of
``TrainSettings`` whose declaration says ``resume=MATCH``); others may change and are logged.
The run's length is the exception: a resume may make it longer (``--extend-steps N``, a larger
``--epochs`` or ``--max-steps``), never shorter; run.json and the card record each extension.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_cli.errors import ResumeRefused
from distil_cli.run_record import FILE_NAME, RunRecord
from distil_cli.settings import ALIASES, TrainSettings
from distil_cli.settings.fields import MATCH, MAY_CHANGE, meta

log = logging.getLogger(__name__)


def resume_rules(schema: type[TrainSettings] = TrainSettings) -> dict[str, str]:
    """Each train setting's resume rule (``settings.MATCH`` or ``MAY_CHANGE``), as its field declares it.

    A field declared without one is refused here, at import, so no option escapes the resume check.
    """
    rules = {name: meta(schema, name).get("resume") for name in schema.model_fields}
    missing = sorted(name for name, rule in rules.items() if rule not in (MATCH, MAY_CHANGE))
    if missing:
        raise TypeError(f"train settings {missing} declare no resume rule: give setting(..., resume=MATCH|MAY_CHANGE)")
    return rules


MEANING = tuple(name for name, rule in resume_rules().items() if rule == MATCH)
LENGTH = ("epochs", "max_steps")  # MATCH, except that a resume may make the run longer (an extension)
FSDP_SHARDS = "pytorch_model_fsdp_0"  # where accelerate writes a sharded checkpoint's weights
# ".final.tmp": where distil 0.1.0 wrote final/ before temporaries carried their writer's pid
LEFTOVERS = ("metrics.jsonl", "eval_predictions", ".final.tmp", FILE_NAME)


@dataclass
class RunDir:
    path: Path
    complete: list[Path] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    has_final: bool = False

    @classmethod
    def inspect(cls, path: Path) -> RunDir:
        state = cls(Path(path))
        if not state.path.is_dir():
            return state
        found = [p for p in state.path.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        for checkpoint in sorted(found, key=step_of):
            (state.complete if is_complete(checkpoint) else state.incomplete).append(checkpoint)
        state.has_final = (state.path / "final").exists()
        return state

    @property
    def holds_a_run(self) -> bool:
        return bool(self.complete) or self.has_final


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[-1])


def is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (checkpoint / FSDP_SHARDS / ".metadata").is_file():  # --fsdp: each rank's shard, the index written last
        return True
    weights = [p for p in checkpoint.glob("*.safetensors")]
    return bool(weights) and all(_readable_header(p) for p in weights)


def _readable_header(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
        return True
    except Exception:  # safetensors raises its own error types for a cut-off file
        return False


def clear_for_fresh_start(state: RunDir) -> None:
    """Remove what a dead run left in RUN_DIR (cut-off checkpoints, its metrics and eval predictions)."""
    for checkpoint in state.incomplete:
        log.warning("Removing %s: a checkpoint cut off while saving (the run that wrote it was killed)", checkpoint)
        shutil.rmtree(checkpoint, ignore_errors=True)
    for name in LEFTOVERS:
        target = state.path / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def choose_checkpoint(state: RunDir) -> Path:
    """The newest complete checkpoint; newer cut-off ones are removed (saying so)."""
    if not state.complete:
        cut = f" ({', '.join(p.name for p in state.incomplete)}: cut off while saving)" if state.incomplete else ""
        raise ResumeRefused(
            f"--resume: {state.path} has no checkpoint to resume from{cut}; start again without --resume"
        )
    chosen = state.complete[-1]
    for checkpoint in state.incomplete:
        log.warning("Skipping %s: cut off while saving; resuming from %s", checkpoint.name, chosen.name)
        shutil.rmtree(checkpoint, ignore_errors=True)
    log.info("Resuming from %s", chosen)
    return chosen


def recorded_settings(run_dir: Path) -> dict[str, Any] | None:
    """The train settings the run.json of ``run_dir`` recorded, None without a run.json."""
    path = Path(run_dir) / FILE_NAME
    return RunRecord.read(path).settings if path.is_file() else None


def precision_of_run(state: RunDir) -> str | None:
    """The precision the run in RUN_DIR trained in: its run.json's, ``mixed`` for a run.json written
    before distil recorded it (those runs trained in mixed precision), None without a run.json."""
    settings = recorded_settings(state.path)
    return None if settings is None else settings.get("precision", "mixed")


def lr_of_run(state: RunDir) -> float | None:
    """The learning rate the run in RUN_DIR trained at (its run.json's), None without a run.json."""
    lr = (recorded_settings(state.path) or {}).get("lr")
    return float(lr) if lr is not None else None


def planned_steps(checkpoint: Path) -> tuple[int, int]:
    """(steps taken, steps planned) of a checkpoint, from its trainer state."""
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("global_step", 0)), int(state.get("max_steps", 0))


def extended_steps(state: RunDir, steps: int) -> int:
    """``--extend-steps N``: the run's new length, the steps its newest checkpoint planned plus N."""
    if not state.complete:
        choose_checkpoint(state)  # raises: nothing to extend
    return planned_steps(state.complete[-1])[1] + steps


def previous_extensions(state: RunDir) -> list[dict[str, Any]]:
    """The extensions the run's run.json recorded (a later resume keeps them)."""
    path = state.path / FILE_NAME
    return list(RunRecord.read(path).extensions) if path.is_file() else []


def _longer(key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` asks for a longer run than ``old`` by ``key`` (the steps decide: ``extension``)."""
    before, after = old.get(key), new.get(key)
    if key == "max_steps":
        return after is not None and (before is None or after > before)
    # more epochs count while max_steps does not decide the length
    return before is not None and after is not None and after > before and new.get("max_steps") is None


def extension(checkpoint: Path, total: int, grown: list[str]) -> dict[str, Any] | None:
    """The record of a resume that lengthens the run to ``total`` steps (None when nothing grew).

    A length that grew yet gives no more steps than were planned is refused: it would end at once."""
    if not grown:
        return None
    done, planned = planned_steps(checkpoint)
    if total <= planned:
        raise ResumeRefused(
            f"--resume: {', '.join(grown)} as given make {total} steps, not more than the {planned} the run planned; "
            "extend it with --extend-steps N"
        )
    return {"planned_steps": planned, "steps": total, "resumed_at_step": done, "changed": grown}


def settings_differ(run_dir: Path, settings: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings that give a run its meaning (``MEANING``) in which the run.json of ``run_dir`` differs
    from ``settings``, as "name: recorded -> asked"; none without a run.json."""
    recorded = recorded_settings(run_dir)
    if recorded is None:
        return []
    old = _current_names(recorded)
    return [f"{k}: {old[k]!r} -> {settings.get(k)!r}" for k in _meaning_differs(old, settings, ignore)]


def _current_names(recorded: dict[str, Any]) -> dict[str, Any]:
    """Recorded train settings under today's names (a run.json may use an older alias)."""
    aliases = ALIASES.get("train", {})
    return {aliases.get(k, k): v for k, v in recorded.items()}


def _meaning_differs(old: dict[str, Any], settings: dict[str, Any], skip=()) -> list[str]:
    """The ``MEANING`` settings recorded in ``old`` that ``settings`` asks otherwise (but those in ``skip``)."""
    return [k for k in MEANING if k in old and k not in skip and old[k] != settings.get(k)]


def check_same_run(state: RunDir, settings: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """A resume keeps the settings and facts (model, data) that give the run its meaning; the length
    settings that grew (an extension) are returned."""
    path = state.path / FILE_NAME
    if not path.is_file():
        log.warning("%s has no %s: cannot check that the resumed run keeps its settings", state.path, FILE_NAME)
        return []
    before = RunRecord.read(path)
    old = _current_names(before.settings)
    old_facts = {"data_manifest_sha256": before.data_manifest_sha256, "model_source": before.model_source}
    grown = [k for k in LENGTH if k in old and old[k] != settings.get(k) and _longer(k, old, settings)]
    differ = _meaning_differs(old, settings, grown)
    differ += [k for k, v in facts.items() if old_facts.get(k) and old_facts[k] != v]
    if differ:
        shown = "; ".join(f"{k}: {old.get(k, old_facts.get(k))!r} -> {settings.get(k, facts.get(k))!r}" for k in differ)
        raise ResumeRefused(
            f"--resume: these settings differ from the run's ({shown}); resume with the same ones, "
            "or start a new run in another --out"
        )
    changed = [k for k in settings if k not in MEANING and k in old and old[k] != settings[k]]
    if changed:
        log.info("Resuming with changed settings that do not change the run: %s", ", ".join(changed))
    return grown
