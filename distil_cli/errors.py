"""The error hierarchy that the CLI turns into one-line messages (see ``cli.main``).

Core modules raise these with a message that names the file / record / field and
what to do; they never print or exit themselves.
"""

from __future__ import annotations


class DistilError(Exception):
    """Base class: an expected failure with a user-facing one-line message."""

    exit_code = 1


class ConfigError(DistilError):
    """A setting is unknown, malformed or out of range."""


class ResumeRefused(ConfigError):
    """``--resume`` cannot continue this run folder: no complete checkpoint, or settings that differ."""


class DataError(DistilError):
    """Input data is missing, malformed, duplicated or inconsistent."""


class ModelError(DistilError):
    """A model could not be found, fetched, converted or loaded."""


class PartialFailure(DistilError):
    """Some records failed after all retries; they are listed beside the output."""

    exit_code = 3


OUT_OF_MEMORY = "out of GPU memory"


def out_of_memory_message(detail: str) -> str:
    """torch's CUDA out-of-memory error in one line, with what to lower."""
    said = detail.removeprefix("CUDA out of memory. ").split(" Including non-PyTorch memory")[0]
    said = said.split(". Process ")[0].rstrip(".")  # the other processes' shares: too long for one line
    return (
        f"{OUT_OF_MEMORY} ({said}): lower --tokens-per-batch or --batch-size, add --gradient-checkpointing "
        "(distil train), train a large student with --lora or --load-in-4bit, or run fewer processes per GPU "
        "(distil experiment --jobs)"
    )
