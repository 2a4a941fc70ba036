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


class DataError(DistilError):
    """Input data is missing, malformed, duplicated or inconsistent."""


class ModelError(DistilError):
    """A model could not be found, fetched, converted or loaded."""


class PartialFailure(DistilError):
    """Some records failed after all retries; they are listed beside the output."""

    exit_code = 3
