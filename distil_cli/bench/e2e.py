"""``distil bench e2e``: time-to-result of a small real-shaped job, distil train + infer vs a minimal loop.

The job (defaults after the method issue's low-data run): 280 training records with a rationale,
100 evaluation records, 500 test records, lengths of clinical case reports (input 300-800 tokens,
summary 60-180, rationale 100-300), synthetic text from the model's own vocabulary. distil runs
its real code (``train.run.run_training`` then ``generate.infer.run_inference``) with the given
settings; the minimal loop does the same optimizer steps on the same packed batches with a plain
AdamW loop, the same evaluations (one batched greedy ``generate`` per evaluation, no scoring) and
the same generation, in the same process. Wall time per phase: start-up (model and data until the
first step), steps, evaluation (and its parts: generation, validation loss, ROUGE), checkpointing,
generation.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from distil_cli.bench.common import RANDOM_SHAPES, device, env_info, sync
from distil_cli.errors import ConfigError
from distil_cli.settings import InferSettings, TrainSettings
from distil_cli.train.phases import STEPS, Phases


def synthetic_split(tokenizer, n: int, seed: int, rationale: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    vocab = len(tokenizer)

    def text(low: int, high: int) -> str:
        return tokenizer.decode([rng.randrange(100, vocab - 100) for _ in range(rng.randint(low, high))])

    rows = []
    for i in range(n):
        row = {"id": f"s{seed}-{i}", "lang": "en", "input": text(300, 800), "output": text(60, 180)}
        if rationale:
            row["rationale"] = text(100, 300)
        rows.append(row)
    return rows


def write_job(folder: Path, tokenizer, train: int, valid: int, test: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", train, 1), ("valid", valid, 2), ("test", test, 3)):
        rows = synthetic_split(tokenizer, n, seed, rationale=name == "train")
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"synthetic": True}) + "\n", encoding="utf-8")
    return folder


class PhaseClock(Phases):
    """Wall time per phase (``train.phases``), the GPU synchronised at each phase's edges."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.first_step: float | None = None

    @contextlib.contextmanager
    def __call__(self, name: str):
        if name == STEPS and self.first_step is None:
            self.first_step = time.perf_counter()
        sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            sync()
            self.seconds[name] += time.perf_counter() - started


def distil_job(data: Path, work: Path, cfg: TrainSettings, infer_cfg: InferSettings, cache_dir) -> dict[str, float]:
    """``distil train`` then ``distil infer`` on the job, timed per phase."""
    from distil_cli.generate.infer import read_inputs, run_inference
    from distil_cli.train import run

    clock = PhaseClock()
    started = time.perf_counter()
    record = run.run_training(data, work / "run", cfg, cache_dir, phases=clock)
    trained = time.perf_counter()
    records = read_inputs(data, "test", None)
    generation_started = time.perf_counter()
    run_inference(str(work / "run"), records, work / "predictions.jsonl", infer_cfg, cache_dir)
    done = time.perf_counter()
    phases = dict(clock.seconds)
    phases["start-up"] = (clock.first_step or trained) - started
    phases["generation"] = done - generation_started
    phases["total"] = done - started
    phases["optimizer_steps"] = record.global_steps
    return phases


class MinimalLoop:
    """A plain PyTorch training and generation loop over distil's packed batches (the reference)."""

    def __init__(self, data: Path, cfg: TrainSettings, source: str):
        from transformers import AutoModelForCausalLM

        from distil_cli.data.files import read_jsonl
        from distil_cli.models import load_tokenizer
        from distil_cli.plugins.choosing import choose_formatter
        from distil_cli.train.batching import PackingCollator
        from distil_cli.train.config import batch_plan
        from distil_cli.train.examples import build_examples

        self.data, self.dev = data, device()
        self.tokenizer = load_tokenizer(source)
        self.formatter = choose_formatter(self.tokenizer)
        records = read_jsonl(data / "train.jsonl")
        self.examples = build_examples(records, self.tokenizer, self.formatter, "distill", 2048, 1024).examples
        self.sampler, _ = batch_plan(cfg, self.examples)
        self.collate = PackingCollator(4096, self.tokenizer.pad_token_id)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(self.dev).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, fused=self.dev.type == "cuda")
        self.batches = iter(())

    def autocast(self):
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda")

    def prompts(self, split: str) -> list[list[int]]:
        from distil_cli.data.files import read_jsonl
        from distil_cli.train.examples import encode_prompt

        rows = read_jsonl(self.data / f"{split}.jsonl")
        return [encode_prompt(self.tokenizer, self.formatter, "Summarize.", r["input"], 2048, r["id"])[0] for r in rows]

    def step(self) -> None:
        batch = next(self.batches, None)
        if batch is None:  # a new epoch
            self.batches = iter(list(self.sampler))
            batch = next(self.batches)
        packed = self.collate([self.examples[i] for i in batch])
        with self.autocast():
            ids, positions = packed["input_ids"].to(self.dev), packed["position_ids"].to(self.dev)
            logits = self.model(input_ids=ids, position_ids=positions, use_cache=False).logits[:, :-1].float()
        targets = packed["labels"][:, 1:].reshape(-1).to(self.dev)
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, ignore_index=-100).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def generate(self, prompt_ids: list[list[int]], new_tokens: int) -> None:
        from distil_cli.generate.batched import left_pad

        self.model.eval()
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(prompt_ids), 256):
                ids, mask = left_pad(prompt_ids[start : start + 256], self.tokenizer.pad_token_id, self.dev)
                self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False)
        self.model.train()


def minimal_job(
    data: Path, cfg: TrainSettings, steps: int, evals: int, new_tokens: int, source: str
) -> dict[str, float]:
    """The same optimizer steps, evaluations and generation with ``MinimalLoop``, timed per phase.

    ``new_tokens``: at test time; the evaluations generate ``cfg.max_new_tokens`` as distil's do."""
    started = time.perf_counter()
    loop = MinimalLoop(data, cfg, source)
    eval_prompts, test_prompts = loop.prompts("valid"), loop.prompts("test")
    phases: dict[str, float] = defaultdict(float)
    every = max(1, steps // max(evals, 1))
    sync()
    phases["start-up"] = time.perf_counter() - started
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        loop.step()
        sync()
        phases["steps"] += time.perf_counter() - t0
        if step % every == 0 or step == steps:
            t0 = time.perf_counter()
            loop.generate(eval_prompts, cfg.max_new_tokens)
            sync()
            phases["evaluation"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    loop.generate(test_prompts, new_tokens)
    sync()
    phases["generation"] = time.perf_counter() - t0
    phases["total"] = time.perf_counter() - started
    phases["optimizer_steps"] = steps
    return dict(phases)


def bench_e2e(
    shape: str,
    train: int,
    valid: int,
    test: int,
    cfg: TrainSettings,
    infer_cfg: InferSettings,
    cache_dir,
    workdir,
    minimal: bool = True,
) -> dict[str, Any]:
    from distil_cli.models import load_tokenizer, resolve_model
    from distil_cli.reports import read_metrics
    from distil_cli.train.learning_rate import with_lr

    if shape in RANDOM_SHAPES:
        raise ConfigError(f"--shape {shape}: bench e2e needs a model with a tokenizer (smollm2 or tiny)")
    source = resolve_model("default" if shape == "smollm2" else shape, cache_dir)
    data = write_job(Path(workdir) / "data", load_tokenizer(source), train, valid, test)
    cfg = with_lr(cfg, source)  # the reference loop trains at the rate distil's run does
    ours = distil_job(data, Path(workdir), cfg, infer_cfg, cache_dir)
    evals = sum("eval_rouge_mean" in line for line in read_metrics(Path(workdir) / "run"))
    rows = [{"name": "distil train + infer", **_rounded(ours)}]
    if minimal:  # the reference loop (off: distil's phases alone, e.g. to re-time a change)
        reference = minimal_job(data, cfg, int(ours["optimizer_steps"]), evals, infer_cfg.max_new_tokens, source)
        rows[0]["ratio_to_minimal"] = round(ours["total"] / reference["total"], 2)
        rows.insert(0, {"name": "minimal loop", **_rounded(reference)})
    job = {"train": train, "valid": valid, "test": test, "evaluations": evals, "settings": cfg.model_dump(mode="json")}
    return {"benchmark": f"e2e {shape}", "env": env_info(), "job": job, "results": rows}


def _rounded(phases: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in phases.items()}
