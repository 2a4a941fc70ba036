"""The Hugging Face Hub: a trained run's model (or LoRA adapter) with its card (``distil push``), and an
annotated dataset with its card (``distil annotate --push-to-hub``).

What goes up for a model is RUN_DIR/final/ as it is (weights, tokenizer, README.md: the model card
distil wrote); for a dataset, its splits as parquet (data/SPLIT.parquet) and a dataset card, staged in
a folder first. Both go through ``huggingface_hub`` (``create_repo`` + ``upload_folder``), in one commit.
``dry_run`` lists the files and sends nothing. Offline, or without a token, the hub's error becomes one line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from distil_cli.errors import ConfigError, ModelError
from distil_cli.run_record import FILE_NAME, RunRecord

REPO = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass
class Upload:
    repo: str
    folder: Path
    files: list[tuple[str, int]]  # (path in the repo, bytes)
    adapter: bool
    url: str | None = None
    repo_type: str = "model"


def check_repo(repo: str, flag: str = "--repo") -> str:
    if not REPO.fullmatch(repo):
        raise ConfigError(f"{flag} {repo!r}: give OWNER/NAME, e.g. alice/distil-cqa-270m")
    return repo


def plan(run_dir: Path, repo: str, adapter: bool = False) -> Upload:
    """What ``push`` uploads: final/ of a finished run (with ``adapter``: final/ must be a LoRA adapter)."""
    run_dir = Path(run_dir)
    check_repo(repo)
    if not (run_dir / FILE_NAME).is_file():
        raise ModelError(f"{run_dir} has no {FILE_NAME}: not a `distil train` run folder")
    record = RunRecord.read(run_dir / FILE_NAME)
    final = run_dir / "final"
    if record.status != "done" or not final.is_dir():
        raise ModelError(f"{run_dir} has no finished final/ (status {record.status!r}): finish the run first")
    is_adapter = (final / "adapter_config.json").is_file()
    if adapter and not is_adapter:
        raise ConfigError(
            f"--adapter: {final} holds merged weights, not a LoRA adapter (train with --lora --no-merge to push one)"
        )
    if is_adapter and not adapter:
        raise ConfigError(f"{final} is a LoRA adapter: pass --adapter to push it as one")
    if not (final / "README.md").is_file():
        raise ModelError(f"{final} has no README.md (model card): retrain with this distil or add one")
    files = sorted((str(p.relative_to(final)), p.stat().st_size) for p in final.rglob("*") if p.is_file())
    return Upload(repo, final, files, is_adapter)


def push(upload: Upload, private: bool = False, token: str | None = None) -> Upload:
    """Create the repo (if needed) and upload final/; a failure of the hub is a one-line error."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    what = "a model trained" if upload.repo_type == "model" else "a dataset annotated"
    try:
        api.create_repo(upload.repo, private=private, exist_ok=True, repo_type=upload.repo_type)
        commit = api.upload_folder(
            repo_id=upload.repo,
            folder_path=str(upload.folder),
            commit_message=f"Upload {what} with distil",
            repo_type=upload.repo_type,
        )
    except OfflineModeIsEnabled:
        raise ConfigError("the Hugging Face Hub is offline here (HF_HUB_OFFLINE): nothing was uploaded") from None
    except HfHubHTTPError as exc:
        raise ConfigError(f"the Hub refused the upload to {upload.repo}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:  # no network
        raise ConfigError(
            f"the Hugging Face Hub cannot be reached ({type(exc).__name__}): nothing was uploaded"
        ) from None
    prefix = "" if upload.repo_type == "model" else "datasets/"
    upload.url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{prefix}{upload.repo}"
    return upload


# distil's split names -> the Hub's
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def plan_dataset(annotated: Path, repo: str, staging: Path) -> Upload:
    """What ``annotate --push-to-hub`` uploads, written to ``staging``: each annotated split of ``annotated``
    (a folder of train/valid/test.jsonl, or one split file) as data/SPLIT.parquet, and README.md, a dataset
    card (teachers, counts, flags, languages). Nested values (the ``annotation`` metadata) become JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distil_cli.data.files import read_appended
    from distil_cli.data.hf import flat_row

    check_repo(repo, "--push-to-hub")
    annotated, staging = Path(annotated), Path(staging)
    if annotated.is_dir():
        sources = {HUB_SPLITS[s]: annotated / f"{s}.jsonl" for s in HUB_SPLITS if (annotated / f"{s}.jsonl").is_file()}
    else:
        sources = {HUB_SPLITS.get(annotated.stem, "train"): annotated}
    if not sources:
        raise ConfigError(f"{annotated}: no annotated split (train/valid/test.jsonl) to push")
    (staging / "data").mkdir(parents=True, exist_ok=True)
    counts, teachers, flags, langs = {}, Counter(), Counter(), set()
    for split, path in sources.items():
        rows = read_appended(path)
        for row in rows:
            meta = row.get("annotation") or {}
            if meta:
                teachers[f"{meta.get('teacher_model')} ({meta.get('backend')})"] += 1
                flags.update(meta.get("flags") or [])
            langs.add(row.get("lang", "en"))
        pq.write_table(pa.Table.from_pylist([flat_row(r) for r in rows]), staging / "data" / f"{split}.parquet")
        counts[split] = (len(rows), sum(bool(r.get("rationale")) for r in rows))
    (staging / "README.md").write_text(_dataset_card(counts, teachers, flags, sorted(langs)), encoding="utf-8")
    files = sorted((str(p.relative_to(staging)), p.stat().st_size) for p in staging.rglob("*") if p.is_file())
    return Upload(repo, staging, files, adapter=False, repo_type="dataset")


def _dataset_card(counts: dict, teachers: Counter, flags: Counter, langs: list[str]) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    from distil_cli.train.card import CITATION

    data = DatasetCardData(
        language=langs,
        task_categories=["text-generation"],
        tags=["distil", "distilling-step-by-step", "rationales"],
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}.parquet"} for s in counts]}],
    )
    lines = [
        "# Records with teacher rationales, annotated with distil",
        "",
        "Each record has an `input`, its reference `output` (where the source had one) and the teacher's "
        "`rationale`, with the request's metadata in `annotation` (JSON text: teacher model, prompt hash, "
        "tokens, quality flags).",
        "",
        "| split | records | with a rationale |",
        "|---|---|---|",
        *[f"| {split} | {n} | {r} |" for split, (n, r) in counts.items()],
        "",
        "- Teachers: " + (", ".join(f"{t}: {n} records" for t, n in teachers.most_common()) or "none recorded"),
        "- Quality flags: " + (", ".join(f"{f}: {n}" for f, n in flags.most_common()) or "none"),
        "",
        "Rationales are a model's text: they can be wrong or invented. Check them before relying on them, and "
        "check that the source records may be shared.",
        "",
        "The recipe: distilling step-by-step (Hsieh et al., 2023).",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return str(DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)))
