"""The end of a run: final/ written atomically (from FSDP shards too), a run finished at its last
checkpoint, the metrics lines of a resumed run trimmed to its checkpoint."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from distil_cli.data.guard import remove_stale_temporaries, temporary_name
from distil_cli.settings import TrainSettings

log = logging.getLogger(__name__)


def trim_metrics(path: Path, last_step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= last_step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def save_final(trainer, tokenizer, out: Path, cfg: TrainSettings, card: str, state_dict=None) -> Path:
    """final/ (model, tokenizer, model card) is written beside it and renamed into place: a kill never
    leaves half a model there. ``state_dict``: the full weights gathered from FSDP shards (``full_state_dict``)."""
    final = out / "final"
    remove_stale_temporaries(out, "final")
    tmp = out / temporary_name("final")
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.merges():
        model = model.merge_and_unload()
    model.save_pretrained(tmp, state_dict=state_dict)  # safetensors
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def full_state_dict(trainer) -> dict | None:
    """The full weights of an FSDP-sharded model, gathered to rank 0 (on the CPU); every rank must call it
    (a collective). None for a model that is not sharded (final/ saves the model itself)."""
    if not getattr(trainer, "is_fsdp_enabled", False):
        return None
    return trainer.accelerator.get_state_dict(trainer.model)


def finished_at(checkpoint: Path):
    """The checkpoint's trainer state when it is the last step of its run, else None."""
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    return state if state.max_steps and state.global_step >= state.max_steps else None


def finish_from(trainer, checkpoint: Path) -> None:
    """A run killed after its last checkpoint: final/ comes from that checkpoint (or the best), no step more."""
    state = finished_at(checkpoint)
    source = checkpoint
    best = state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and best and Path(best).is_dir():
        source = Path(best)
    log.info("%s is the last step (%d of %d): writing final/ from %s", checkpoint.name, state.global_step,
             state.max_steps, source.name)  # fmt: skip
    trainer._load_from_checkpoint(str(source))  # the Trainer's own loader (model or adapter weights)
    trainer.state = state
