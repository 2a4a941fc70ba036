"""The experiment spec (TOML or YAML): data, grid (arms x seeds x training fractions), metric, settings.

    data = "data/cqa"                 # a prepared folder: train.jsonl and the test split
    metric = "exact"                  # any `distil score` metric; its headline value is compared
    seeds = "1-12"                    # or a list: [1, 2, 3], ["1-6", 20]
    fractions = [0.125, 0.25, 1.0]    # share of train.jsonl each run trains on (same records for every arm)
    valid = 100                       # optional: records of train.jsonl held out per seed as every run's
                                      # valid.jsonl (evaluation during training, --select best); 0 = none
    objectives = ["standard", "distill"]
    alphas = [0.5]
    [train]                           # settings for every run (as in `distil train`)
    max_new_tokens = 32
    [infer]
    max_new_tokens = 32
    [[arms]]                          # more arms: ablations with their own train settings
    name = "distill-clinical"
    train = { objective = "distill", summary_instruction = "Summarize the following clinical case report." }

docs/experiments.md describes every field, with examples that tests load.

Arms: ``standard`` and ``distill-a<alpha>`` from ``objectives`` x ``alphas``, plus ``[[arms]]``.
Every arm is compared with ``baseline`` (default ``standard``), paired on the test records;
``comparisons = [["distill-e3", "standard-e3"]]`` adds other pairs (arm, its baseline), e.g. to
compare two ablation arms with each other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from distil_cli.errors import ConfigError
from distil_cli.settings import InferSettings, TrainSettings


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    train: dict[str, Any] = Field(default_factory=dict)  # TrainSettings fields for this arm

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError(f"arm name {value!r}: use letters, digits, '.', '_' and '-' only (it names folders)")
        return value


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    data: Path
    metric: str = "rouge"
    test_split: str = "test"
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    fractions: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    valid: int = Field(0, ge=0)
    objectives: list[str] = Field(default_factory=lambda: ["standard", "distill"])
    alphas: list[float] = Field(default_factory=lambda: [0.5])
    baseline: str = "standard"
    comparisons: list[tuple[str, str]] = Field(default_factory=list)  # extra (arm, baseline) pairs
    bootstrap: int = Field(2000, ge=100)
    # a finished run's checkpoints (saved with save_checkpoints = true in [train], for a cut-off run to go
    # on): removed once its final/ is written, unless kept (--resume --extend-steps needs one)
    keep_checkpoints: bool = False
    train: dict[str, Any] = Field(default_factory=dict)
    infer: dict[str, Any] = Field(default_factory=dict)
    arms: list[Arm] = Field(default_factory=list)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_ranges(cls, value: Any) -> Any:
        """``"16-33"``, ``"1-3, 7"`` or a list mixing numbers and such ranges: one seed per number."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        seeds: list[Any] = []
        for item in items:
            if isinstance(item, str):
                match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", item)
                if not match or (match[2] is not None and int(match[2]) < int(match[1])):
                    raise ValueError(f"seed range {item.strip()!r}: write N or FIRST-LAST with FIRST <= LAST")
                seeds += range(int(match[1]), int(match[2] or match[1]) + 1)
            else:
                seeds.append(item)
        return seeds

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        repeated = sorted({s for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds {repeated} are listed twice")
        return value

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in value):
            raise ValueError("fractions lie in (0, 1]")
        return sorted(set(value))

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        unknown = set(value) - {"standard", "distill"}
        if unknown:
            raise ValueError(f"unknown objective(s) {sorted(unknown)}; use standard and/or distill")
        return value

    def all_arms(self) -> list[Arm]:
        arms = []
        if "standard" in self.objectives:
            arms.append(Arm(name="standard", train={"objective": "standard"}))
        if "distill" in self.objectives:
            arms += [Arm(name=f"distill-a{a:g}", train={"objective": "distill", "alpha": a}) for a in self.alphas]
        arms += self.arms
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ConfigError(f"experiment arms must have distinct names, got {names}")
        if self.baseline not in names:
            raise ConfigError(f"baseline arm '{self.baseline}' is not among the arms {names}")
        for arm, base in self.comparisons:
            unknown = [n for n in (arm, base) if n not in names]
            if unknown or arm == base:
                what = f"arm '{unknown[0]}' is not among the arms {names}" if unknown else "an arm with itself"
                raise ConfigError(f"experiment comparison [{arm!r}, {base!r}]: {what}")
        return arms

    def train_settings(self, base: TrainSettings, arm: Arm, seed: int) -> TrainSettings:
        """The run's train settings: the command's (file, env) < the spec's [train] < the arm's, with its seed."""
        own = {"select_metric": self.metric}  # --select best (an arm's choice) reads the experiment's metric
        values = {**base.model_dump(), "save_checkpoints": False, **own, **self.train, **arm.train, "seed": seed}
        try:
            return TrainSettings.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"experiment arm '{arm.name}': {_first(exc)}") from None

    def infer_settings(self, base: InferSettings) -> InferSettings:
        try:
            return InferSettings.model_validate({**base.model_dump(), **self.infer})
        except ValidationError as exc:
            raise ConfigError(f"experiment [infer]: {_first(exc)}") from None


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def load_spec(path: Path) -> ExperimentSpec:
    """The spec from a TOML or YAML file; ``data`` relative to the spec's folder."""
    from distil_cli.settings.loader import read_file

    if not Path(path).is_file():
        raise ConfigError(f"experiment spec {path} does not exist (give a TOML, YAML or JSON file)")
    data = read_file(Path(path))
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"experiment spec {path}: {_first(exc)}") from None
    if not spec.data.is_absolute():
        spec.data = (Path(path).parent / spec.data).resolve()
    return spec
