"""``distil bench train``: seed-style training vs ``distil train``'s real code path, same data, one process.

Synthetic MultiClinSum-like lengths (prompt 300-800 tokens, summary 60-180, rationale
100-300). The seed-style training pads every example to 3078 tokens, runs batch 1 and
one forward pass per task with full logits; distil runs its DistilTrainer with the
arguments ``distil train`` builds (``train.config.training_arguments``): packing,
logits only where supervised, bf16, fused AdamW, and the variant's kernels.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import torch

from distil_cli.bench.common import (
    Measure,
    build_model,
    device,
    peak,
    report,
    reset_peak,
    start_profiler,
    stop_profiler,
    sync,
    train_flops,
)
from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)
SEED_MAX_LENGTH = 3078
SEED_WARMUP, SEED_MIN_STEPS = 5, 40  # on a GPU (see bench_train)


def synthetic_examples(n_records: int, vocab: int, seed: int = 0, tasks: int = 2) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    examples = []
    for r in range(n_records):
        prompt = [rng.randrange(100, vocab - 100) for _ in range(rng.randint(300, 800))]
        for task, (low, high) in list(enumerate([(60, 180), (100, 300)]))[:tasks]:
            answer = [rng.randrange(100, vocab - 100) for _ in range(rng.randint(low, high))]
            examples.append(
                {"id": f"s{r}", "task": task, "input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
            )
    return examples


def seed_style_train(model, examples, steps: int, alpha: float = 0.5) -> Measure:
    """The original scripts: pad to 3078, batch 1, one forward per task, full logits, HF loss."""
    dev = device()
    model.to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    pairs = [(examples[i], examples[i + 1]) for i in range(0, len(examples) - 1, 2)]
    pad = SEED_MAX_LENGTH

    def one(ex):
        ids = torch.zeros((1, pad), dtype=torch.long)
        labels = torch.full((1, pad), -100, dtype=torch.long)
        mask = torch.zeros((1, pad), dtype=torch.long)
        n = min(len(ex["input_ids"]), pad)
        ids[0, :n] = torch.tensor(ex["input_ids"][:n])
        labels[0, :n] = torch.tensor(ex["labels"][:n])
        mask[0, :n] = 1
        with amp:
            return model(input_ids=ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).loss

    useful, lengths, start = 0, [], None
    reset_peak()
    warmup = SEED_WARMUP if torch.cuda.is_available() else 2
    for step in range(steps + warmup):
        if step == warmup:
            sync()
            start, useful, lengths = time.perf_counter(), 0, []
        pred, expl = pairs[step % len(pairs)]
        loss = alpha * one(pred) + (1 - alpha) * one(expl)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for ex in (pred, expl):
            useful += len(ex["input_ids"])
            lengths.append(len(ex["input_ids"]))
    sync()
    seconds = time.perf_counter() - start
    return Measure(
        "seed-style (pad 3078, batch 1, 2 forwards)",
        seconds,
        2 * steps,
        useful,
        flops=train_flops(model, lengths),
        peak_gib=peak(),
    )


class _Clock:
    """Marks (time, tokens, examples) after step 2 and after the last timed step; profiles 3 more steps."""

    def __init__(self, last: int, profile: bool):
        from transformers import TrainerCallback

        from distil_cli.train.batching import LossCounts

        self.last, self.profile, self.marks = last, profile, {}
        self.seen = LossCounts()  # what the trainer reported through its on_counts hook
        clock = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                clock.step(state.global_step)

        self.callback = Callback()

    def count(self, counts) -> None:
        self.seen = self.seen + counts

    def step(self, global_step: int) -> None:
        seen, marks = self.seen, self.marks
        if global_step == 2:
            sync()
            marks["start"] = (time.perf_counter(), seen.tokens, seen.examples)
            reset_peak()
        elif global_step == self.last:
            sync()
            marks["end"] = (time.perf_counter(), seen.tokens, seen.examples, peak())
            if self.profile:
                marks["profiler"] = start_profiler()
        elif global_step == self.last + 3 and "profiler" in marks:
            sync()
            marks["profile"] = stop_profiler(marks.pop("profiler"), 3)


def _bench_settings(tokens_per_batch: int, max_steps: int, flags: frozenset[str]):
    from distil_cli.settings import TrainSettings

    return TrainSettings(
        objective="distill",
        alpha=0.5,
        packing=True,
        tokens_per_batch=tokens_per_batch,
        batch_size=2,
        lr=1e-5,
        max_steps=max_steps,
        gradient_checkpointing="ckpt" in flags,
        precision="bf16" if "bf16" in flags else "mixed",
        seed=0,
        **(_lora_settings() if flags & {"lora", "qlora"} else {}),
        load_in_4bit="qlora" in flags,
    )


def _lora_settings() -> dict:
    """BENCH_LORA as distil's train settings."""
    from distil_cli.bench.common import BENCH_LORA

    return dict(
        lora=True,
        lora_r=BENCH_LORA["r"],
        lora_alpha=BENCH_LORA["lora_alpha"],
        lora_dropout=BENCH_LORA["lora_dropout"],
        lora_target_modules=[BENCH_LORA["target_modules"]],
    )


def distil_train(
    model,
    tokenizer_pad: int,
    examples,
    steps: int,
    tokens_per_batch: int,
    row_tokens,
    workdir,
    flags: frozenset[str] = frozenset(),
    profile: bool = False,
) -> Measure:
    """distil's DistilTrainer on the same examples, with the arguments ``distil train`` builds.

    ``flags``: liger (Liger's RMSNorm/SwiGLU/RoPE kernels), flce (fused linear cross-entropy
    for the loss, ``train.linear_ce``), ckpt (gradient checkpointing), compile (``torch_compile``),
    bf16 (``--precision bf16``: bf16 weights, float32 master weights in the optimizer), and the
    host syncs distil removed, put back: blocking, ligerce, maskcheck (arguments of the Trainer).
    ``profile``: 3 more steps under the torch profiler after the timed ones.
    """
    from distil_cli.train.batching import Collator
    from distil_cli.train.config import batch_plan, training_arguments
    from distil_cli.train.kernels import liger_supported, resolve_kernels
    from distil_cli.train.trainer import DistilTrainer

    if "liger" in flags:
        resolve_kernels("liger", model)
    elif "flce" in flags and (reason := liger_supported(model)):
        raise ValueError(f"flce: {reason}")
    clock = _Clock(steps + 2, profile)
    cfg = _bench_settings(tokens_per_batch, clock.last + (3 if profile else 0), flags)
    sampler, per_epoch = batch_plan(cfg, examples)
    args = training_arguments(
        workdir,
        cfg,
        examples,
        per_epoch,
        has_eval=False,
        kernels="liger" if "liger" in flags else "none",
        # timing only: the variant's own rows and loss path, no logging, saving or progress bar
        pack_row_tokens=row_tokens,
        fused_ce="flce" in flags,
        torch_compile="compile" in flags,
        # the host syncs distil removed, put back for a comparison: blocking batch copies,
        # Liger's own fused loss (ligerce), transformers' packed-position check (maskcheck)
        accelerator_config={"non_blocking": "blocking" not in flags},
        sync_free_ce="ligerce" not in flags,
        mask_placeholder="maskcheck" not in flags,
        logging_steps=10**6,
        save_strategy="no",
        disable_tqdm=True,
    )
    collator = Collator(tokenizer_pad)
    trainer = DistilTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=collator,
        callbacks=[clock.callback],
        on_counts=clock.count,
    )
    trainer.batch_sampler = sampler
    reset_peak()
    trainer.train()
    sync()
    extra = "".join(f", {f}" for f in sorted(flags))
    name = f"distil train [{model.config._attn_implementation}, {tokens_per_batch} tokens/batch, "
    return _measure(clock.marks, model, examples, name + f"rows {row_tokens or 'one'}{extra}]")


def _measure(marks: dict[str, Any], model, examples, name: str) -> Measure:
    t0, tok0, ex0 = marks["start"]
    t1, tok1, ex1, peak_gib = marks["end"]
    # FLOPs of the packed rows: attention is per example, so count per example lengths (the
    # timed steps' examples are a sample of these: their expected FLOPs; the square of the mean
    # length would undercount attention, as the peers' runs count each example's own length)
    n_examples = ex1 - ex0
    flops = train_flops(model, [len(e["input_ids"]) for e in examples]) * n_examples / len(examples)
    return Measure(name, t1 - t0, n_examples, tok1 - tok0, flops=flops, peak_gib=peak_gib, profile=marks.get("profile"))


FLAGS = {"liger", "flce", "ckpt", "compile", "bf16", "blocking", "ligerce", "maskcheck", "lora", "qlora"}


def parse_variant(text: str) -> tuple[str, int, int | None, frozenset[str]]:
    """'varlen,16384,0,liger+ckpt' -> (attention kernel, token budget, row bound or None, flags).

    ATTN ``trl`` runs TRL's SFTTrainer (padding-free) on the same examples instead of distil.
    """
    try:
        attn, tokens, rows, *rest = (x.strip() for x in text.split(","))
        if len(rest) > 1:
            raise ValueError
        flags = frozenset(f for f in (rest[0].split("+") if rest else []) if f)
        if flags - FLAGS:
            raise ValueError
        return attn, int(tokens), (int(rows) or None), flags
    except ValueError:
        raise ConfigError(
            f"--variant {text!r}: expected ATTN,TOKENS_PER_BATCH,ROW_TOKENS[,FLAGS] such as sdpa,16384,0 or "
            f"varlen,16384,0,liger (flags: {', '.join(sorted(FLAGS))})"
        ) from None


def bench_train(
    shape: str,
    steps: int,
    records: int,
    variants,
    cache_dir,
    workdir,
    baseline: bool = True,
    profile: int = 0,
    progress=None,
):
    """Seed-style baseline, then each variant on fresh weights. Variants with ``liger`` patch the
    model classes of this process, so they are run after the others."""
    from distil_cli.bench.common import pad_tokenizer
    from distil_cli.train.kernels import resolve_attention

    model, tokenizer = build_model(shape, cache_dir)
    examples = synthetic_examples(records, model.config.vocab_size)
    pad = tokenizer.pad_token_id if tokenizer is not None else 0
    results = []
    if baseline:
        # the baseline's batch-1 steps are short: on a GPU time at least SEED_MIN_STEPS of them (its
        # figure varied 6.3-9.3k tokens/s between runs of 10 steps on the H200)
        seed_steps = max(steps, SEED_MIN_STEPS) if torch.cuda.is_available() else steps
        results.append(seed_style_train(model, examples, seed_steps))
    order = sorted(range(len(variants)), key=lambda i: ("liger" in variants[i][3], "compile" in variants[i][3]))
    measured: dict[int, Measure] = {}
    for i in order:
        attn, tokens, rows, flags = variants[i]
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        model, _ = build_model(shape, cache_dir, flags)  # fresh weights and optimizer state for each run
        if "bf16" in flags:  # distil: --precision bf16 (master weights); TRL: a model loaded in bf16
            model.to(torch.bfloat16)
        try:
            if attn == "trl":
                from distil_cli.bench.trl_peer import trl_train

                measured[i] = trl_train(model, tokenizer or pad_tokenizer(), examples, steps, tokens, workdir, flags)
            else:
                model.set_attn_implementation(resolve_attention(attn, model.config, True))
                if flags & {"lora", "qlora"}:  # distil's own adapter (TRL's peer gets the same as peft_config)
                    from distil_cli.train.adapters import with_lora

                    model = with_lora(model, _bench_settings(tokens, 1, flags))
                measured[i] = distil_train(model, pad, examples, steps, tokens, rows, workdir, flags, profile == i + 1)
        except Exception as exc:  # a kernel missing on this machine: report it, keep the others
            said = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            log.warning("variant %s failed: %s: %s", variants[i], type(exc).__name__, said[:300])
            who = "TRL SFTTrainer" if attn == "trl" else "distil train"
            label = f"{who} [{attn}, {tokens} tokens, rows {rows}, {'+'.join(sorted(flags))}] FAILED"
            measured[i] = Measure(label, 1.0, 0, 0)
        if progress is not None:  # the report so far, in case a later variant does not finish
            progress(report(f"train {shape} (partial)", results + list(measured.values()), "useful_tokens_per_s"))
    results.extend(measured[i] for i in range(len(variants)))
    return report(f"train {shape}", results, "useful_tokens_per_s")
