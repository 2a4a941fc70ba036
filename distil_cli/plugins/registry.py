"""The plugin registry: built-ins plus entry-point plugins (group ``distil``), as in simonw/llm.

* Built-ins (``distil_cli.plugins.builtin``) are registered first, as a default plugin,
  loaded by module name like an entry point: the built-in plugin depends on the core
  (formatters, teachers), never the other way round.
* ``DISTIL_LOAD_PLUGINS=a,b`` loads only those entry points (empty: none).
* A plugin that fails to import is reported as a warning; the CLI keeps working.
* Two registrations of the same family, formatter or backend name are an error naming
  both plugins.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

import distil_cli.plugins.hookspecs as hookspecs
from distil_cli.errors import ConfigError
from distil_cli.plugins.families import ModelFamily

log = logging.getLogger(__name__)
GROUP = "distil"
BUILTIN = "distil (built-in)"
BUILTIN_MODULE = "distil_cli.plugins.builtin"


@dataclass
class Registry:
    families: dict[str, ModelFamily] = field(default_factory=dict)
    formatters: dict[str, Callable] = field(default_factory=dict)
    backends: dict[str, Callable] = field(default_factory=dict)
    metrics: dict[str, Callable] = field(default_factory=dict)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin
    plugins: list[dict[str, str]] = field(default_factory=list)  # name, package, status
    warnings: list[str] = field(default_factory=list)

    def _add(self, kind: str, table: dict, name: str, value: Any, plugin: str) -> None:
        if name in table:
            raise ConfigError(
                f"{kind} '{name}' is registered by both '{self.sources[(kind, name)]}' and '{plugin}'; "
                "uninstall one or restrict DISTIL_LOAD_PLUGINS"
            )
        table[name] = value
        self.sources[(kind, name)] = plugin

    def source(self, kind: str, name: str) -> str:
        return self.sources.get((kind, name), "?")

    def detect_family(self, config: Any = None, name: str = "") -> ModelFamily | None:
        """The first family (plugins before built-ins) that recognises this checkpoint."""
        ordered = sorted(self.families.values(), key=lambda f: self.source("family", f.name) == BUILTIN)
        return next((f for f in ordered if f.matches(config, name)), None)


def _package_of(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _allowed() -> set[str] | None:
    raw = os.environ.get("DISTIL_LOAD_PLUGINS")
    if raw is None:
        return None
    return {x.strip() for x in raw.split(",") if x.strip()}


def build_registry(extra_plugins: list[tuple[str, Any]] | None = None) -> Registry:
    """Load built-ins, entry points and ``extra_plugins`` ((name, module) pairs, for tests)."""
    pm = pluggy.PluginManager("distil")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    pm.register(importlib.import_module(BUILTIN_MODULE), name=BUILTIN)
    registry.plugins.append({"name": BUILTIN, "package": "distil-cli", "status": "loaded"})
    allowed = _allowed()
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            registry.plugins.append(
                {"name": ep.name, "package": _package_of(ep), "status": "skipped (DISTIL_LOAD_PLUGINS)"}
            )
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break the CLI
            message = f"plugin '{ep.name}' ({_package_of(ep)}) failed to load: {type(exc).__name__}: {exc}"
            registry.warnings.append(message)
            registry.plugins.append({"name": ep.name, "package": _package_of(ep), "status": "failed"})
            log.warning("%s", message)
            continue
        registry.plugins.append({"name": ep.name, "package": _package_of(ep), "status": "loaded"})
    for name, module in extra_plugins or []:
        pm.register(module, name=name)
        registry.plugins.append({"name": name, "package": "(in process)", "status": "loaded"})

    def call(hook_name: str, register_for: Callable[[str], Callable]) -> None:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            impl.function(register=register_for(impl.plugin_name))

    call(
        "register_model_families",
        lambda plugin: lambda fam: registry._add("family", registry.families, fam.name, fam, plugin),
    )
    call(
        "register_prompt_formatters",
        lambda plugin: lambda name, factory: registry._add("formatter", registry.formatters, name, factory, plugin),
    )
    call(
        "register_annotate_backends",
        lambda plugin: lambda name, factory: registry._add("backend", registry.backends, name, factory, plugin),
    )
    call(
        "register_metrics",
        lambda plugin: lambda name, factory: registry._add("metric", registry.metrics, name, factory, plugin),
    )
    return registry


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (tests that install or fake plugins)."""
    global _REGISTRY
    _REGISTRY = None
