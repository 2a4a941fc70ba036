"""The package layout holds: no import circles, the CLI is a composition root, plugins use the public API."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import distil_cli

PACKAGE = Path(distil_cli.__file__).parent
ROOT = PACKAGE.parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Every import (module level or inside functions) between distil_cli modules."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        if path.name == "__init__.py":  # a package importing its own children is not a circle
            found = {m for m in found if not m.startswith(name + ".")}
        graph[name] = found
    return graph


def test_no_import_circles():
    graphlib.TopologicalSorter(_graph()).prepare()  # raises CycleError naming the circle


def test_cli_is_imported_by_nothing_and_core_never_imports_typer():
    graph = _graph()
    importers = [m for m, deps in graph.items() if any(d.startswith("distil_cli.cli") for d in deps)]
    assert all(m.startswith("distil_cli.cli") or m == "distil_cli.__main__" for m in importers), importers
    for path in PACKAGE.rglob("*.py"):
        if "cli" not in path.relative_to(PACKAGE).parts:
            assert "import typer" not in path.read_text(encoding="utf-8"), path


def test_plugin_packages_import_only_the_public_api():
    for path in (ROOT / "plugins").glob("distil-*/distil_*/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("distil_cli"):
                assert node.module == "distil_cli", f"{path}: from {node.module} import ..."
                assert all(a.name in distil_cli.__all__ for a in node.names), path


# The layers of the package, bottom first: a module imports only from its own layer or below (within a
# layer, the import-circle test keeps the order). Longest matching prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "version", "tasks", "attention", "plugins"),  # plugins: its empty __init__ (modules below)
    (
        "data.files",
        "data.guard",
        "data.text",
        "prompts",
        "run_record",
        "pull",
        "plugins.hookspecs",
        "plugins.families",
    ),
    ("settings", "data", "encoding", "plugins.registry"),
    ("models", "evaluate", "plugins.choosing", "reports"),
    ("generate",),
    ("teach", "train", "push"),  # push: the model card's citation comes from train.card
    ("plugins.builtin", "plugins.testing"),
    ("experiment", "bench", "api"),
    ("cli", "__main__"),
]


def _layer(module: str) -> int:
    if module == "distil_cli":
        return len(LAYERS)  # the package root: the public facade over everything
    rest = module.removeprefix("distil_cli.")
    best = max(
        (
            (i, prefix)
            for i, names in enumerate(LAYERS)
            for prefix in names
            if rest == prefix or rest.startswith(prefix + ".")
        ),
        key=lambda found: len(found[1]),
        default=None,
    )
    assert best is not None, f"{module} is in no layer of LAYERS: place it"
    return best[0]


def test_imports_point_down_the_layers():
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == [], "\n".join(upward)
