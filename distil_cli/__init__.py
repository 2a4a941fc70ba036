"""distil: distil a large teacher LLM into a small causal LM with distilling step-by-step.

Everything a plugin author (or a Python user) needs is importable from here, as in
simonw/llm::

    from distil_cli import hookimpl, ModelFamily, Formatted, user_message

See docs/plugins.md. The modules under ``distil_cli`` are internal and may move.
"""

from distil_cli.errors import ConfigError, DataError, DistilError, ModelError, PartialFailure  # noqa: E402
from distil_cli.evaluate.metrics import Metric  # noqa: E402
from distil_cli.plugins.families import TINY_SHAPE, ModelFamily, tiny_config  # noqa: E402
from distil_cli.plugins.hookspecs import hookimpl, hookspec  # noqa: E402
from distil_cli.plugins.registry import Registry, build_registry, get_registry  # noqa: E402
from distil_cli.plugins.testing import check_formatter, family_tokenizer  # noqa: E402
from distil_cli.prompts import (  # noqa: E402
    KNOWN_END_OF_TURN,
    ChatMLFormatter,
    ChatTemplateFormatter,
    Formatted,
    PromptFormatter,
    Task,
    instruction_for,
    user_message,
)
from distil_cli.teach.base import (  # noqa: E402
    AuthError,
    BatchTeacher,
    Completion,
    FatalError,
    RetryableError,
    Teacher,
)
from distil_cli.version import __version__  # noqa: E402

__all__ = [
    "KNOWN_END_OF_TURN",
    "Metric",
    "TINY_SHAPE",
    "AuthError",
    "BatchTeacher",
    "ChatMLFormatter",
    "ChatTemplateFormatter",
    "Completion",
    "ConfigError",
    "DataError",
    "DistilError",
    "FatalError",
    "Formatted",
    "ModelError",
    "ModelFamily",
    "PartialFailure",
    "PromptFormatter",
    "Registry",
    "RetryableError",
    "Task",
    "Teacher",
    "__version__",
    "build_registry",
    "check_formatter",
    "family_tokenizer",
    "get_registry",
    "hookimpl",
    "hookspec",
    "instruction_for",
    "tiny_config",
    "user_message",
]
