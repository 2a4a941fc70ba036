"""Plugin hook specifications (pluggy project name ``distil``, entry-point group ``distil``).

A plugin is a module with functions decorated by ``hookimpl`` named like the specs
below; each receives a ``register`` callable. See docs/plugins.md.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("distil")
hookimpl = pluggy.HookimplMarker("distil")


@hookspec
def register_model_families(register):
    """Register model families: ``register(ModelFamily(...))``."""


@hookspec
def register_prompt_formatters(register):
    """Register prompt formatters: ``register(name, factory)``; ``factory(tokenizer)`` returns a formatter."""


@hookspec
def register_annotate_backends(register):
    """Register annotate backends: ``register(name, factory)``; ``factory(settings, cache_dir)`` returns a teacher."""


@hookspec
def register_metrics(register):
    """Register per-record metrics for ``distil score --metric``: ``register(name, factory)``;
    ``factory(score_settings)`` returns a ``distil_cli.Metric``."""
