"""``distil push``: a trained run's model (or LoRA adapter) and its card to the Hugging Face Hub.

What goes up is RUN_DIR/final/ as it is (weights, tokenizer, README.md: the model card distil wrote),
through ``huggingface_hub`` (``create_repo`` + ``upload_folder``). ``dry_run`` lists the files and
sends nothing. Offline, or without a token, the hub's error becomes one line.
"""

from __future__ import annotations

import re
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


def plan(run_dir: Path, repo: str, adapter: bool = False) -> Upload:
    """What ``push`` uploads: final/ of a finished run (with ``adapter``: final/ must be a LoRA adapter)."""
    run_dir = Path(run_dir)
    if not REPO.fullmatch(repo):
        raise ConfigError(f"--repo {repo!r}: give OWNER/NAME, e.g. alice/distil-cqa-270m")
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
    try:
        api.create_repo(upload.repo, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            repo_id=upload.repo,
            folder_path=str(upload.folder),
            commit_message="Upload a model trained with distil",
            repo_type="model",
        )
    except OfflineModeIsEnabled:
        raise ConfigError("the Hugging Face Hub is offline here (HF_HUB_OFFLINE): nothing was uploaded") from None
    except HfHubHTTPError as exc:
        raise ConfigError(f"the Hub refused the upload to {upload.repo}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:  # no network
        raise ConfigError(
            f"the Hugging Face Hub cannot be reached ({type(exc).__name__}): nothing was uploaded"
        ) from None
    upload.url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{upload.repo}"
    return upload
