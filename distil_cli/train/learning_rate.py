"""The learning rate a run trains at when ``--lr`` is not given (run.json records the rate it became).

``DEFAULT_LR`` (1e-4) was chosen on SmolLM2-135M; a model with a rate measured for it gets that rate
(the table of pullable models, ``distil_cli.pull``), and a distil run's model the rate that run trained at.
"""

from __future__ import annotations

import logging
from pathlib import Path

from distil_cli.errors import ConfigError
from distil_cli.settings import TrainSettings
from distil_cli.settings.train import DEFAULT_LR

log = logging.getLogger(__name__)


def default_lr(cfg: TrainSettings, model_source: str) -> tuple[float, str]:
    """The rate a run without ``--lr`` trains at, and where it comes from (for the log): DEFAULT_LR, 1e-4,
    chosen on SmolLM2-135M (docs/method.md "Learning rate": on CQA 3% 3e-4 lost 4.3 points, 3e-5 was no
    better); for full fine-tuning of a pulled model whose entry names a rate measured for it, that rate
    (Gemma 3 270M: 3e-5, docs/method.md "Student size": standard +12.6 exact match on CQA 25%); for full
    fine-tuning that goes on from a distil run's final/ (``--model RUN_DIR``), the rate that run trained at."""
    from distil_cli.pull import find, pulled_entry

    entry = find(model_source) or pulled_entry(model_source)  # a table name (--model), or its pulled folder
    path = Path(model_source)
    run_dir = path.parent if path.name == "final" else path  # --model RUN_DIR trains on from RUN_DIR/final
    trained = _rate_of_run(run_dir)
    if trained is not None and not cfg.lora:  # a distil run's model goes on at the rate it trained at
        return trained, f"the rate {run_dir} trained at"
    if entry is not None and entry.lr is not None:
        if not cfg.lora:
            return entry.lr, f"measured for {entry.name}, docs/method.md"
        return DEFAULT_LR, f"distil's default: {entry.name}'s {entry.lr:g} was measured for full fine-tuning"
    return DEFAULT_LR, "distil's default"


def _rate_of_run(run_dir: Path) -> float | None:
    """The full fine-tuning rate a distil run in ``run_dir`` trained at; None for any other folder."""
    from distil_cli.train.resume import recorded_settings

    try:
        settings = recorded_settings(run_dir) or {}
    except ConfigError:  # not a run record distil reads: not a run to go on from
        return None
    lr = settings.get("lr")
    return float(lr) if isinstance(lr, (int, float)) and not settings.get("lora") else None


def with_lr(cfg: TrainSettings, model_source: str, resumed: float | None = None) -> TrainSettings:
    """``cfg`` with its learning rate made concrete (run.json records it): as given, else the resumed
    run's, else ``default_lr``'s."""
    if cfg.lr is not None:
        return cfg
    lr, why = (resumed, "the resumed run's") if resumed is not None else default_lr(cfg, model_source)
    log.info("learning rate %g (%s; --lr sets another)", lr, why)
    return cfg.model_copy(update={"lr": lr})
