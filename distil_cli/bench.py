"""``distil bench train|infer``: seed-style baseline vs distil's real code path, same data, one process.

Synthetic MultiClinSum-like lengths (prompt 300-800 tokens, summary 60-180, rationale
100-300). The seed-style training pads every example to 3078 tokens, runs batch 1 and
one forward pass per task with full logits; distil runs its DistilTrainer (packing,
logits only where supervised, bf16, fused AdamW). The seed-style generation is a
``pipeline`` called one prompt at a time; distil's is ``generate_batched`` (the code
``distil infer`` runs). Figures: useful (non-padding) tokens/s, samples/s, peak GPU
memory, model FLOP utilisation against 790 TFLOP/s bf16, and the ratio to the baseline.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import torch

from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)
PEAK_FLOPS = 790e12  # H200 dense bf16
SEED_MAX_LENGTH = 3078
SEED_WARMUP, SEED_MIN_STEPS = 5, 40  # on a GPU (see bench_train)
QWEN_05B = dict(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
)


@dataclass
class Measure:
    name: str
    seconds: float
    samples: int
    useful_tokens: int
    new_tokens: int = 0
    flops: float = 0.0
    peak_gib: float | None = None
    profile: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "samples_per_s": round(self.samples / self.seconds, 3),
            "useful_tokens_per_s": round(self.useful_tokens / self.seconds, 1),
            "peak_gib": None if self.peak_gib is None else round(self.peak_gib, 2),
        }
        if self.new_tokens:
            out["new_tokens_per_s"] = round(self.new_tokens / self.seconds, 1)
        if self.flops and torch.cuda.is_available():
            out["mfu"] = round(self.flops / self.seconds / PEAK_FLOPS, 4)
        if self.profile:
            out["profile"] = self.profile
        return out


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def build_model(shape: str, cache_dir):
    """(model, tokenizer or None): 'qwen0.5b' random init of that shape, 'smollm2' the embedded model, 'tiny'."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from distil_cli.models import load_tokenizer, resolve_model

    dtype = torch.float32
    if shape == "qwen0.5b":
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(Qwen2Config(**QWEN_05B), dtype=dtype)
        return model, None
    source = resolve_model("default" if shape == "smollm2" else shape, cache_dir)
    return AutoModelForCausalLM.from_pretrained(source, dtype=dtype), load_tokenizer(source)


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


def train_flops(model, lengths: list[int]) -> float:
    """6 N T for the weights (LM head included) plus 6 L d T^2 for causal attention, per sequence."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters()) - (
        0 if cfg.tie_word_embeddings else cfg.vocab_size * cfg.hidden_size
    )
    return sum(6 * n * t + 6 * cfg.num_hidden_layers * cfg.hidden_size * t * t for t in lengths)


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
    """distil's DistilTrainer on the same examples: packing, supervised-only logits, bf16, fused AdamW.

    ``flags``: liger (Liger's RMSNorm/SwiGLU/RoPE kernels), flce (Liger's fused linear
    cross-entropy for the loss), ckpt (gradient checkpointing), compile (``torch_compile``).
    ``profile``: 3 more steps under the torch profiler after the timed ones.
    """
    from transformers import TrainerCallback

    from distil_cli.examples import Collator
    from distil_cli.kernels import liger_supported, resolve_kernels
    from distil_cli.training import DistilTrainer, DistilTrainingArguments

    marks: dict[str, Any] = {}
    last = steps + 2

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                sync()
                marks["start"] = (time.perf_counter(), trainer._tokens_seen, trainer._examples_seen)
                reset_peak()
            elif state.global_step == last:
                sync()
                marks["end"] = (time.perf_counter(), trainer._tokens_seen, trainer._examples_seen, peak())
                if profile:
                    marks["profiler"] = start_profiler()
            elif state.global_step == last + 3 and "profiler" in marks:
                sync()
                marks["profile"] = stop_profiler(marks.pop("profiler"), 3)

    cuda = torch.cuda.is_available()
    if "liger" in flags:
        resolve_kernels("liger", model)
    elif "flce" in flags and (reason := liger_supported(model)):
        raise ValueError(f"flce: {reason}")
    args = DistilTrainingArguments(
        output_dir=str(workdir),
        model_type="distill",
        alpha=0.5,
        packing=True,
        tokens_per_batch=tokens_per_batch,
        pack_row_tokens=row_tokens,
        fused_ce="flce" in flags,
        per_device_train_batch_size=2,
        learning_rate=1e-5,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        weight_decay=0.01,
        max_steps=last + (3 if profile else 0),
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        **({"gradient_checkpointing": True} if "ckpt" in flags else {}),
        **({"torch_compile": True} if "compile" in flags else {}),
        logging_steps=10**6,
        logging_nan_inf_filter=False,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
    )
    trainer = DistilTrainer(
        model=model, args=args, train_dataset=examples, data_collator=Collator(tokenizer_pad), callbacks=[Clock()]
    )
    reset_peak()
    trainer.train()
    sync()
    t0, tok0, ex0 = marks["start"]
    t1, tok1, ex1, peak_gib = marks["end"]
    # FLOPs of the packed rows: attention is per example, so count per example lengths
    mean_len = sum(len(e["input_ids"]) for e in examples) / len(examples)
    n_examples = ex1 - ex0
    flops = train_flops(model, [int(mean_len)] * n_examples)
    attn = model.config._attn_implementation
    extra = "".join(f", {f}" for f in sorted(flags))
    name = f"distil train [{attn}, {tokens_per_batch} tokens/batch, rows {row_tokens or 'one'}{extra}]"
    return Measure(name, t1 - t0, n_examples, tok1 - tok0, flops=flops, peak_gib=peak_gib, profile=marks.get("profile"))


def start_profiler():
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=activities)
    prof.start()
    prof._distil_t0 = time.perf_counter()  # type: ignore[attr-defined]
    return prof


def stop_profiler(prof, steps: int, top: int = 25) -> dict[str, Any]:
    """Where the time of ``steps`` steps went: device busy time vs wall time, kernels by self time."""
    wall = time.perf_counter() - prof._distil_t0
    prof.stop()
    cuda = torch.cuda.is_available()

    def self_us(event) -> float:
        if cuda:
            return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)))
        return float(event.self_cpu_time_total)

    def is_kernel(event) -> bool:  # device kernels only (ops would count their kernels twice)
        return not cuda or str(getattr(event, "device_type", "")).endswith("CUDA")

    events = [e for e in prof.key_averages() if is_kernel(e) and self_us(e) > 0]
    events.sort(key=self_us, reverse=True)
    busy = sum(self_us(e) for e in events) / 1e3
    groups: dict[str, float] = {}
    for e in events:
        groups[_kernel_group(e.key)] = groups.get(_kernel_group(e.key), 0.0) + self_us(e) / 1e3
    host = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "steps": steps,
        "wall_ms_per_step": round(wall * 1e3 / steps, 2),
        "host_busy_ms_per_step": round(sum(e.self_cpu_time_total for e in host) / 1e3 / steps, 2),
        "host_top": [
            {"name": e.key[:120], "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 3)}
            for e in host[:12]
        ],
        ("gpu" if cuda else "cpu") + "_busy_ms_per_step": round(busy / steps, 2),
        "by_group_ms_per_step": {k: round(v / steps, 2) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top": [
            {"name": e.key[:120], "self_ms_per_step": round(self_us(e) / 1e3 / steps, 3), "calls": e.count // steps}
            for e in events[:top]
        ],
    }


def _kernel_group(name: str) -> str:
    low = name.lower()
    rules = [
        ("attention", ("flash", "fmha", "attention", "varlen", "flex")),
        ("matmul", ("gemm", "cutlass", "sm90", "matmul", "mm", "linear", "cublas", "nvjet")),
        ("optimizer", ("adam", "foreach", "multi_tensor")),
        ("cross-entropy", ("cross_entropy", "log_softmax", "nll", "liger_cross")),
        ("norm/act/rope (triton)", ("triton", "liger", "rms", "swiglu", "rope")),
        ("copy/cast", ("copy", "cast", "to_copy", "cat", "index")),
        ("elementwise", ("elementwise", "vectorized", "reduce", "pointwise")),
    ]
    for group, keys in rules:
        if any(k in low for k in keys):
            return group
    return "other"


FLAGS = {"liger", "flce", "ckpt", "compile"}


def parse_infer_variant(text: str) -> tuple[str, int]:
    """'static,256' -> (cache implementation, batch size; 0 = automatic)."""
    kind, _, size = text.partition(",")
    try:
        return kind.strip(), int(size or 0)
    except ValueError:
        raise ConfigError(f"--variant {text!r}: expected CACHE,BATCH such as dynamic,0 or static,256") from None


def parse_variant(text: str) -> tuple[str, int, int | None, frozenset[str]]:
    """'varlen,16384,0,liger+ckpt' -> (attention kernel, token budget, row bound or None, flags)."""
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
    from distil_cli.kernels import resolve_attention

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
        model, _ = build_model(shape, cache_dir)  # fresh weights and optimizer state for each run
        try:
            model.set_attn_implementation(resolve_attention(attn, model.config, True))
            measured[i] = distil_train(model, pad, examples, steps, tokens, rows, workdir, flags, profile == i + 1)
        except Exception as exc:  # a kernel missing on this machine: report it, keep the others
            log.warning("variant %s failed: %s", variants[i], str(exc).splitlines()[0][:300])
            label = f"distil train [{attn}, {tokens} tokens, rows {rows}, {'+'.join(sorted(flags))}] FAILED"
            measured[i] = Measure(label, 1.0, 0, 0)
        if progress is not None:  # the report so far, in case a later variant does not finish
            progress(_report(f"train {shape} (partial)", results + list(measured.values()), "useful_tokens_per_s"))
    results.extend(measured[i] for i in range(len(variants)))
    return _report(f"train {shape}", results, "useful_tokens_per_s")


def _report(title: str, results: list[Measure], key: str) -> dict[str, Any]:
    rows = [m.row() for m in results]
    base = rows[0][key]
    for row in rows:
        row["ratio_to_seed"] = round(row[key] / base, 2) if base else None
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    import transformers

    info["transformers"] = transformers.__version__
    return {"benchmark": title, "env": info, "results": rows}


# --------------------------------------------------------------------------- generation


def synthetic_prompts(n: int, vocab: int, seed: int = 1) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(100, vocab - 100) for _ in range(rng.randint(300, 800))] for _ in range(n)]


def seed_style_generate(model, tokenizer, prompts, new_tokens: int) -> Measure:
    """The original scripts: a text-generation pipeline called one prompt at a time."""
    from transformers import pipeline

    texts = [tokenizer.decode(p) for p in prompts]
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device=device())
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, return_full_text=False)
    pipe(texts[0], **kwargs)  # warm-up
    reset_peak()
    sync()
    start = time.perf_counter()
    for text in texts:
        pipe(text, **kwargs)
    sync()
    seconds = time.perf_counter() - start
    return Measure(
        "seed-style (pipeline, one prompt at a time)",
        seconds,
        len(texts),
        sum(map(len, prompts)),
        new_tokens=new_tokens * len(texts),
        peak_gib=peak(),
    )


def distil_generate(model, tokenizer, prompts, new_tokens: int, batch_size: int, cache: str = "dynamic") -> Measure:
    from distil_cli.generation import generate_batched
    from distil_cli.inference import auto_batch_size

    size = batch_size or auto_batch_size(model, max(map(len, prompts)), new_tokens)
    stops = [tokenizer.eos_token_id]
    impl = None if cache == "dynamic" else cache
    # warm-up (compilation for the static cache) on a full batch of the real shapes
    generate_batched(
        model, tokenizer, prompts[:size], stops, 8, batch_size=size, min_new_tokens=8, cache_implementation=impl
    )
    reset_peak()
    sync()
    start = time.perf_counter()
    outs = generate_batched(
        model,
        tokenizer,
        prompts,
        stops,
        new_tokens,
        batch_size=size,
        min_new_tokens=new_tokens,
        cache_implementation=impl,
    )
    sync()
    seconds = time.perf_counter() - start
    return Measure(
        f"distil infer (generate_batched, {cache} cache, batch {size})",
        seconds,
        len(prompts),
        sum(map(len, prompts)),
        new_tokens=sum(o.new_tokens for o in outs),
        peak_gib=peak(),
    )


def bench_infer(shape: str, n_seed: int, n_ours: int, new_tokens: int, variants, cache_dir):
    model, tokenizer = build_model(shape, cache_dir)
    if tokenizer is None:
        raise ConfigError("--shape: the infer benchmark needs a model with a tokenizer (smollm2 or tiny)")
    if torch.cuda.is_available():
        model = model.to(device(), dtype=torch.bfloat16)
    model.eval()
    prompts = synthetic_prompts(max(n_seed, n_ours), len(tokenizer))
    results = [seed_style_generate(model, tokenizer, prompts[:n_seed], new_tokens)]
    for cache, size in variants:
        try:
            results.append(distil_generate(model, tokenizer, prompts[:n_ours], new_tokens, size, cache))
        except Exception as exc:  # report and keep the other variants
            log.warning("variant %s,%s failed: %s", cache, size, str(exc).splitlines()[0][:300])
            results.append(Measure(f"distil infer [{cache}, batch {size}] FAILED", 1.0, 0, 0))
    return _report(f"infer {shape}", results, "new_tokens_per_s")


def dump(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
