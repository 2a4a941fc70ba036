"""Where a training run's time goes: an explicit hook instead of patching methods by name.

``DistilTrainer`` and ``run_training`` open ``phases(name)`` around each phase (``steps``,
``evaluation`` and its parts, ``checkpointing``). The default does nothing; ``distil bench e2e``
passes one that synchronises the GPU and adds up wall time per phase, so renaming a method can
never silently stop the benchmark from timing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

STEPS = "steps"
EVALUATION = "evaluation"
EVAL_GENERATION = "evaluation: generation"
EVAL_LOSS = "evaluation: validation loss"
EVAL_METRIC = "evaluation: ROUGE"
CHECKPOINTING = "checkpointing"


class Phases:
    """``with phases(name):`` around a phase of a run; this base class times nothing."""

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        yield


NO_PHASES = Phases()
