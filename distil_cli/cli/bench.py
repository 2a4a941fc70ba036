"""``distil bench train|infer``: the command-line side of ``distil_cli.bench``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from distil_cli.cli.common import new_app, out_console, settings_for
from distil_cli.errors import ConfigError

bench_app = new_app("Benchmarks: the seed-style baseline vs distil's real code paths, in one process.")


@bench_app.command("train")
def bench_train(
    ctx: typer.Context,
    shape: Annotated[
        str,
        typer.Option(
            help="qwen0.5b / qwen1.5b / qwen7b (random init of Qwen2.5's shapes), gemma270m (random init of "
            "Gemma 3 270M's), smollm2 (embedded), gemma3-270m (pulled), tiny."
        ),
    ] = "tiny",
    steps: Annotated[int, typer.Option(help="Timed optimizer steps (after 2 warm-up steps).")] = 10,
    records: Annotated[
        int, typer.Option(help="Synthetic records (each gives a summary and a rationale example).")
    ] = 64,
    variant: Annotated[
        Optional[list[str]],
        typer.Option(
            help="distil configuration ATTN,TOKENS_PER_BATCH,ROW_TOKENS[,FLAGS] (repeatable; ROW_TOKENS 0 = one "
            "row; ATTN sdpa, varlen, flex_attention, ..., or trl (TRL's SFTTrainer, padding-free); FLAGS joined "
            "by +: liger, ckpt (gradient "
            "checkpointing), compile, flce (fused linear cross-entropy), bf16 (bf16 weights: distil keeps "
            "float32 master weights, TRL trains them in bf16), lora (a frozen bf16 base with LoRA r 16 on every "
            "linear layer; TRL gets the same through peft), qlora (that base in 4-bit NF4), and for distil's "
            "comparisons with its earlier host "
            "syncs: blocking (batches copied to the GPU synchronously), ligerce (Liger's own fused linear "
            "cross-entropy, which reads values back to the host), maskcheck (transformers' packed-sequence check "
            "on the host)), e.g. varlen,16384,0,liger+bf16"
        ),
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also run the seed-style baseline.")
    ] = True,
    profile: Annotated[
        int,
        typer.Option(
            help="Profile 3 steps of variant N (1-based) with the torch profiler and add its top kernels "
            "to the report (0: no profile)."
        ),
    ] = 0,
    out: Annotated[Optional[Path], typer.Option(help="Also write the JSON report here.")] = None,
) -> None:
    """Training throughput: seed-style vs distil train, useful tokens/s, memory, MFU, ratio."""
    import tempfile

    from distil_cli.bench.common import dump
    from distil_cli.bench.train import bench_train as run
    from distil_cli.bench.train import parse_variant

    cache = settings_for(ctx).settings.models.cache_dir
    variants = [parse_variant(v) for v in (variant or ["sdpa,16384,0"])]
    if not 0 <= profile <= len(variants):
        raise ConfigError(f"--profile {profile}: there are {len(variants)} variant(s); give 1-{len(variants)} or 0")
    with tempfile.TemporaryDirectory() as work:
        progress = None if out is None else (lambda part: out.write_text(dump(part) + "\n", encoding="utf-8"))
        report = run(shape, steps, records, variants, cache, work, baseline, profile, progress)
    _emit_report(report, out)


@bench_app.command("infer")
def bench_infer(
    ctx: typer.Context,
    shape: Annotated[str, typer.Option(help="smollm2 (embedded), gemma3-270m (pulled) or tiny.")] = "tiny",
    seed_prompts: Annotated[int, typer.Option(help="Prompts for the (slow) seed-style pipeline.")] = 8,
    prompts: Annotated[int, typer.Option(help="Prompts for distil's batched generation.")] = 64,
    new_tokens: Annotated[int, typer.Option(help="New tokens per prompt (fixed: min = max).")] = 128,
    variant: Annotated[
        Optional[list[str]],
        typer.Option(
            help="distil configuration CACHE,BATCH (repeatable; CACHE: auto, slots, slots-eager (no CUDA "
            "graphs), dynamic or static; BATCH 0 = automatic), e.g. slots,0 or dynamic,1024"
        ),
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write the JSON report here.")] = None,
) -> None:
    """Generation throughput: seed-style pipeline vs distil infer's batched generation, new tokens/s, ratio."""
    from distil_cli.bench.infer import bench_infer as run
    from distil_cli.bench.infer import parse_infer_variant

    cache_dir = settings_for(ctx).settings.models.cache_dir
    variants = [parse_infer_variant(v) for v in variant or ["auto,0"]]
    _emit_report(run(shape, seed_prompts, prompts, new_tokens, variants, cache_dir), out)


@bench_app.command("e2e")
def bench_e2e(
    ctx: typer.Context,
    shape: Annotated[str, typer.Option(help="smollm2 (embedded) or tiny.")] = "tiny",
    train: Annotated[int, typer.Option(help="Training records (with a rationale).")] = 280,
    valid: Annotated[int, typer.Option(help="Evaluation records.")] = 100,
    test: Annotated[int, typer.Option(help="Test records to generate for.")] = 500,
    minimal: Annotated[
        bool, typer.Option(help="Also time the minimal reference loop (--no-minimal: distil only).")
    ] = True,
    out: Annotated[Optional[Path], typer.Option(help="Also write the JSON report here.")] = None,
) -> None:
    """Time-to-result of a small real-shaped job: distil train + infer vs a minimal loop, wall time per phase.

    Train and infer settings come from the usual layers (config file, DISTIL_TRAIN__*, e.g. epochs,
    eval_samples; DISTIL_INFER__MAX_NEW_TOKENS)."""
    import tempfile

    from distil_cli.bench.e2e import bench_e2e as run

    loaded = settings_for(ctx).settings
    with tempfile.TemporaryDirectory() as work:
        report = run(shape, train, valid, test, loaded.train, loaded.infer, loaded.models.cache_dir, work, minimal)
    _emit_report(report, out)


def _emit_report(report: dict, out: Optional[Path]) -> None:
    from distil_cli.bench.common import dump

    text = dump(report)
    out_console.print(text, highlight=False, markup=False)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
