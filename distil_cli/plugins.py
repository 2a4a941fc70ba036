"""The plugin registry: built-ins plus entry-point plugins (group ``distil``), as in simonw/llm.

* Built-ins (``distil_cli.builtin_plugin``) are registered first, as a default plugin.
* ``DISTIL_LOAD_PLUGINS=a,b`` loads only those entry points (empty: none).
* A plugin that fails to import is reported as a warning; the CLI keeps working.
* Two registrations of the same family, formatter or backend name are an error naming
  both plugins.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from distil_cli import hookspecs
from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)
GROUP = "distil"
BUILTIN = "distil (built-in)"


@dataclass(frozen=True)
class ModelFamily:
    """What distil needs to know about a family of checkpoints."""

    name: str
    formatter: str
    model_types: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    name_patterns: tuple[str, ...] = ()  # regular expressions matched against the model id or folder name
    end_of_turn: tuple[str, ...] = ()
    pad_token: str | None = None  # None: the eos token (masked by attention and -100 labels)
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    tiny_config: Callable[[int], Any] | None = None  # vocab size -> a small PretrainedConfig (no download)

    def matches(self, config: Any = None, name: str = "") -> bool:
        if any(re.search(p, name, re.IGNORECASE) for p in self.name_patterns):
            return True
        if config is None:
            return False
        if getattr(config, "model_type", None) in self.model_types:
            return True
        return any(a in self.architectures for a in (getattr(config, "architectures", None) or []))


TINY_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
)


def tiny_config(config_cls, vocab_size: int, **overrides):
    """A 2-layer, 64-wide config of any family (the ``tiny`` preset shape), built without a download."""
    return config_cls(vocab_size=vocab_size, **{**TINY_SHAPE, **overrides})


@dataclass
class Registry:
    families: dict[str, ModelFamily] = field(default_factory=dict)
    formatters: dict[str, Callable] = field(default_factory=dict)
    backends: dict[str, Callable] = field(default_factory=dict)
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
    from distil_cli import builtin_plugin

    pm = pluggy.PluginManager("distil")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    pm.register(builtin_plugin, name=BUILTIN)
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
