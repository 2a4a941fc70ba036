"""Running an experiment: data subsets, then train + infer for every (fraction, seed, arm), resumably.

Layout under OUT:

    data/f<fraction>-s<seed>/train.jsonl       the seeded subset every arm of that seed trains on
    runs/f<fraction>/s<seed>/<arm>/            a `distil train` run folder
    runs/f<fraction>/s<seed>/<arm>.jsonl       its predictions on the test split
    results.json  results.md  results.png     (experiment.results)

A rerun skips what is done: runs with a final/ model are not trained again and predictions
resume where they stopped; a run cut off while training resumes from its newest complete checkpoint
where it saved one (``save_checkpoints = true`` in the spec's [train]: the grid saves none by default),
else starts again. ``--shard K/N`` runs the
K-th of N shares of the grid (one process per GPU): the (fraction, seed) pairs are dealt out in
turn, so the arms of a pair, which share its subset, stay in one process, or, with more shares
than pairs, the runs themselves (the subset a pair's runs share is written once: ``publish_subset``);
each run folder is locked while it runs, so two processes never train the same run.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_cli.data.files import done_ids, dump_jsonl_line, read_jsonl, sha256_file
from distil_cli.data.guard import OutputLock, remove_stale_temporaries, temporary_name
from distil_cli.errors import ConfigError, DataError, DistilError, ResumeRefused
from distil_cli.experiment.spec import Arm, ExperimentSpec
from distil_cli.settings import InferSettings, TrainSettings

log = logging.getLogger(__name__)


@dataclass
class Cell:
    """One run of the grid."""

    fraction: float
    seed: int
    arm: Arm
    run_dir: Path
    predictions: Path
    data_dir: Path

    @property
    def label(self) -> str:
        return f"fraction {self.fraction:g}, seed {self.seed}, {self.arm.name}"


def plan(spec: ExperimentSpec, out: Path) -> list[Cell]:
    cells = []
    for fraction in spec.fractions:
        for seed in spec.seeds:
            for arm in spec.all_arms():
                base = out / "runs" / f"f{fraction:g}" / f"s{seed}"
                cells.append(
                    Cell(
                        fraction, seed, arm, base / arm.name, base / f"{arm.name}.jsonl", _data_dir(out, fraction, seed)
                    )
                )
    return cells


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; None for None."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. --shard 1/2 and --shard 2/2 on two GPUs")
    return int(match[1]), int(match[2])


def lock_target(out: Path, shard: tuple[int, int] | None) -> Path:
    """What a process locks for the whole command: OUT, or one shard of it (shards run side by side)."""
    return out if shard is None else out / f"shard-{shard[0]}-of-{shard[1]}"


def shard_cells(cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """The cells of shard K of N: the K-th, (K+N)-th, ... (fraction, seed) pair of the plan, all its arms;
    with more shards than pairs (3 seeds x 2 arms as 6 processes), the K-th, (K+N)-th, ... run."""
    if shard is None:
        return cells
    k, n = shard
    pairs = list(dict.fromkeys((c.fraction, c.seed) for c in cells))
    if n > len(pairs):
        return [c for index, c in enumerate(cells) if index % n == k - 1]
    mine = {pair for index, pair in enumerate(pairs) if index % n == k - 1}
    return [c for c in cells if (c.fraction, c.seed) in mine]


def _data_dir(out: Path, fraction: float, seed: int) -> Path:
    return out / "data" / f"f{fraction:g}-s{seed}"


def read_split(spec: ExperimentSpec, name: str) -> list[dict[str, Any]]:
    path = spec.data / f"{name}.jsonl"
    if not path.is_file():
        raise DataError(f"{path} does not exist; the experiment's data is a prepared folder with {name}.jsonl")
    return read_jsonl(path)


def write_subsets(
    spec: ExperimentSpec, out: Path, train: list[dict[str, Any]], pairs: set[tuple[float, int]] | None = None
) -> None:
    """data/f<fraction>-s<seed>/: a seeded subset of train.jsonl (the same for every arm of that seed).

    With ``valid`` > 0, that many records of train.jsonl are first held out per seed (the same for
    every fraction) as each subset's valid.jsonl, and the subset is drawn from the rest.
    ``pairs``: only these (fraction, seed) subsets (a shard's)."""
    pool_size(spec, len(train))
    for fraction in spec.fractions:
        for seed in spec.seeds:
            if pairs is not None and (fraction, seed) not in pairs:
                continue
            folder = _data_dir(out, fraction, seed)
            if (folder / "manifest.json").is_file():
                made = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("totals", {})
                if made.get("valid", 0) != spec.valid:
                    raise ConfigError(
                        f"{folder} holds {made.get('valid', 0)} valid records, the spec asks for {spec.valid}; "
                        "use another --out for a different valid split"
                    )
                continue
            pool, valid = train, []
            if spec.valid:
                order = list(range(len(train)))
                random.Random(f"{seed}:valid").shuffle(order)
                valid = [train[i] for i in sorted(order[: spec.valid])]
                pool = [train[i] for i in sorted(order[spec.valid :])]
            count = subset_size(len(pool), fraction)
            subset = pool if count == len(pool) else random.Random(f"{seed}:{fraction}").sample(pool, count)
            folder.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(folder.parent, folder.name)
            tmp = folder.with_name(temporary_name(folder.name))
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            (tmp / "train.jsonl").write_text("".join(dump_jsonl_line(r) for r in subset), encoding="utf-8")
            totals = {"train": count}
            if valid:
                (tmp / "valid.jsonl").write_text("".join(dump_jsonl_line(r) for r in valid), encoding="utf-8")
                totals["valid"] = len(valid)
            manifest = {"source": str(spec.data), "fraction": fraction, "seed": seed, "totals": totals}
            manifest["source_sha256"] = sha256_file(spec.data / "train.jsonl")
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            publish_subset(tmp, folder)


def publish_subset(tmp: Path, folder: Path) -> None:
    """Rename the written subset ``tmp`` to ``folder``. Shards whose runs share a subset may write it at
    once: the first rename wins, and a later writer, finding it complete (its manifest is written
    before the rename), drops its own copy (the same records: the subset is seeded), never removing a
    folder another process may be training from. A folder without a manifest is a leftover: replaced."""
    if folder.is_dir() and not (folder / "manifest.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:
        if not (folder / "manifest.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def pool_size(spec: ExperimentSpec, n_train: int) -> int:
    """Records of train.jsonl the training subsets are drawn from (those not held out as valid)."""
    if spec.valid and spec.valid >= n_train:
        raise ConfigError(f"experiment: valid = {spec.valid} leaves no training records of {n_train}")
    return n_train - spec.valid


def subset_size(pool: int, fraction: float) -> int:
    """Training records of a fraction of a pool of ``pool`` records (at least one)."""
    return max(1, round(pool * fraction))


def cell_state(cell: Cell, test_ids: set[str]) -> str:
    """``done`` (trained, every test record predicted), ``trained`` (predictions missing) or ``to run``."""
    if not (cell.run_dir / "final").is_dir():
        return "to run"
    return "done" if done_ids(cell.predictions) >= test_ids else "trained"


def resumes_from(cell: Cell) -> int | None:
    """The step a cell cut off while training goes on from (its newest complete checkpoint), None if none."""
    from distil_cli.train.resume import RunDir, step_of

    complete = RunDir.inspect(cell.run_dir).complete
    return step_of(complete[-1]) if complete and not (cell.run_dir / "final").is_dir() else None


def expected_settings(spec: ExperimentSpec, train_base: TrainSettings, cell: Cell, records: int) -> TrainSettings:
    """The settings the cell's run trains with, its epochs and learning rate made concrete as ``distil
    train`` makes them for ``records`` training records."""
    from distil_cli.train.config import with_epochs
    from distil_cli.train.learning_rate import default_lr

    cfg = with_epochs(spec.train_settings(train_base, cell.arm, cell.seed), records)
    return cfg if cfg.lr is not None else cfg.model_copy(update={"lr": default_lr(cfg, cfg.model)[0]})


def differences(cell: Cell, cfg: TrainSettings) -> list[str]:
    """How the cell's finished run was trained otherwise than ``cfg`` asks ("lr: 0.0001 -> 3e-05"); none for a
    cell not trained yet. ``precision auto`` takes whichever precision the GPU gave the run."""
    from distil_cli.settings import public_dump
    from distil_cli.train.resume import settings_differ

    if not (cell.run_dir / "final").is_dir():
        return []
    try:
        return settings_differ(cell.run_dir, public_dump(cfg), ignore=("precision",) if cfg.precision == "auto" else ())
    except DistilError as exc:  # a run record distil cannot read (another version): reused unchecked, as before
        log.warning("cannot check how %s was trained: %s", cell.run_dir, exc)
        return []


def check_finished_runs(spec: ExperimentSpec, cells: list[Cell], train_base: TrainSettings) -> None:
    """A finished run is reused only if it was trained with what its arm asks now (a spec edited, or a default
    that changed, would otherwise mix runs of other settings into the results)."""
    cells = [cell for cell in cells if (cell.run_dir / "final").is_dir()]
    if not cells:  # nothing trained yet: no need to read the training split
        return
    pool = pool_size(spec, len(read_split(spec, "train")))
    for cell in cells:
        differ = differences(cell, expected_settings(spec, train_base, cell, subset_size(pool, cell.fraction)))
        if differ:
            raise ConfigError(
                f"{cell.run_dir} was trained otherwise than arm {cell.arm.name!r} asks ({'; '.join(differ)}): "
                "set those in the spec to reuse it, or move that run folder away to train it again"
            )


def pending_runs(spec: ExperimentSpec, cells: list[Cell]) -> int:
    """How many of these cells are not done (trained and every test record predicted)."""
    test_ids = {r["id"] for r in read_split(spec, spec.test_split)}
    return sum(cell_state(cell, test_ids) != "done" for cell in cells)


def run_cell(
    cell: Cell, spec: ExperimentSpec, train_base: TrainSettings, infer_base: InferSettings, test, cache_dir: Path
) -> str:
    """Train (unless done) and infer (resuming) one cell; returns what was done."""
    from distil_cli.generate.infer import run_inference

    did = []
    if not (cell.run_dir / "final").is_dir():
        cfg = spec.train_settings(train_base, cell.arm, cell.seed)
        did.append(_train_cell(cell, cfg, cache_dir, spec.keep_checkpoints))
        _free_memory()
    if done_ids(cell.predictions) != {r["id"] for r in test}:
        run_inference(str(cell.run_dir), test, cell.predictions, spec.infer_settings(infer_base), cache_dir)
        did.append("inferred")
        _free_memory()
    return ", ".join(did) or "done before"


def _train_cell(cell: Cell, cfg: TrainSettings, cache_dir: Path, keep_checkpoints: bool) -> str:
    """Train the cell's run: from its newest complete checkpoint where one run cut off left one
    (``save_checkpoints = true`` in the spec's [train]), else from the start; then remove its
    checkpoints unless ``keep_checkpoints``."""
    from distil_cli.train.resume import RunDir
    from distil_cli.train.run import run_training

    did = None
    if RunDir.inspect(cell.run_dir).complete:
        try:
            run_training(cell.data_dir, cell.run_dir, cfg, cache_dir, resume=True)
            did = "resumed"
        except ResumeRefused as exc:  # trained otherwise than the arm now asks (an edited spec); other errors
            # (a bad setting) would fail a fresh start too: they stop here, the checkpoints kept
            log.warning("%s cannot be resumed (%s): training it again", cell.run_dir, exc)
    if did is None:
        shutil.rmtree(cell.run_dir, ignore_errors=True)  # cut off while training: start it again
        run_training(cell.data_dir, cell.run_dir, cfg, cache_dir)
        did = "trained"
    if not keep_checkpoints:  # final/ holds the model: a grid of large students would fill the disk
        for checkpoint in cell.run_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    return did


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def run_grid(
    spec: ExperimentSpec,
    out: Path,
    train_base: TrainSettings,
    infer_base: InferSettings,
    cache_dir: Path,
    say: Callable[[str], None] = print,
    shard: tuple[int, int] | None = None,
) -> list[Cell]:
    """Every cell of the grid (``shard``: of that shard), in order, one after another; skips what is
    done. Returns the whole grid's cells."""
    train, test = read_split(spec, "train"), read_split(spec, spec.test_split)
    cells = plan(spec, out)
    mine = shard_cells(cells, shard)
    write_subsets(spec, out, train, {(c.fraction, c.seed) for c in mine})
    for index, cell in enumerate(mine, start=1):
        started = time.perf_counter()
        say(f"[{index}/{len(mine)}] {cell.label}: running")
        # the cell's own lock (train and infer lock the run folder and the predictions themselves,
        # but a second process must not even clear a run another one is training)
        with OutputLock(cell.run_dir.with_name(f"{cell.arm.name}.cell"), "--out or --shard"):
            what = run_cell(cell, spec, train_base, infer_base, test, cache_dir)
        say(f"[{index}/{len(mine)}] {cell.label}: {what} in {time.perf_counter() - started:.0f} s")
    return cells
