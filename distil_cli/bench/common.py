"""What the benchmarks share: measurements, devices, models of real shapes, the profiler, reports.

Figures: useful (non-padding) tokens/s, samples/s, peak GPU memory, model FLOP
utilisation against 790 TFLOP/s bf16 (H200), and the ratio to the seed-style baseline
measured in the same process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import torch

PEAK_FLOPS = 790e12  # H200 dense bf16
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
QWEN_15B = dict(
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
)
QWEN_7B = dict(
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    tie_word_embeddings=False,
    max_position_embeddings=32768,
)
# Gemma 3 270M's shape (the config `distil models pull gemma3-270m` writes): five sliding-window layers
# (512 tokens) to one global, 262k-token vocabulary, tied embeddings
GEMMA3_270M = dict(
    hidden_size=640,
    num_hidden_layers=18,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=256,
    intermediate_size=2048,
    vocab_size=262144,
    sliding_window=512,
    layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 3,
    query_pre_attn_scalar=256,
    final_logit_softcapping=None,
    attn_logit_softcapping=None,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
)
RANDOM_SHAPES = {"qwen0.5b": QWEN_05B, "qwen1.5b": QWEN_15B, "qwen7b": QWEN_7B, "gemma270m": GEMMA3_270M}
# the adapter of the lora and qlora variants, for distil and the TRL + peft peer alike
BENCH_LORA = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear")


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


def build_model(shape: str, cache_dir, flags: frozenset[str] = frozenset()):
    """(model, tokenizer or None): qwen0.5b/1.5b/7b and gemma270m random init of that shape, smollm2
    (embedded), gemma3-270m (pulled), tiny.

    ``flags`` lora: a frozen bf16 base (built on the GPU: a 7B float32 init on the host takes minutes);
    qlora: that base saved once and loaded back in 4-bit NF4 (``--load-in-4bit``'s quantization)."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, Qwen2Config

    from distil_cli.models import load_tokenizer, resolve_model

    adapter = bool(flags & {"lora", "qlora"})
    dtype = torch.bfloat16 if adapter and torch.cuda.is_available() else torch.float32
    if shape in RANDOM_SHAPES:
        torch.manual_seed(0)
        with torch.device("cuda" if adapter and torch.cuda.is_available() else "cpu"):
            config = (Gemma3TextConfig if shape.startswith("gemma") else Qwen2Config)(**RANDOM_SHAPES[shape])
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        tokenizer = None
    else:
        source = resolve_model("default" if shape == "smollm2" else shape, cache_dir)
        model, tokenizer = AutoModelForCausalLM.from_pretrained(source, dtype=dtype), load_tokenizer(source)
    if "qlora" in flags:
        model = _four_bit(model, cache_dir, shape)
    return model, tokenizer


BENCH_SOURCE = "distil bench: random-weight shapes saved for --load-in-4bit runs (delete freely)"


def _four_bit(model, cache_dir, shape: str):
    """``model`` in 4-bit NF4 as ``--load-in-4bit`` loads it (from a folder: saved once under the cache)."""
    from transformers import AutoModelForCausalLM

    from distil_cli.settings import TrainSettings
    from distil_cli.train.adapters import quantization

    folder = saved_shape(model, cache_dir, shape)
    del model
    extra = quantization(TrainSettings(lora=True, load_in_4bit=True))
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, **extra)


def saved_shape(model, cache_dir, shape: str):
    """CACHE/bench/SHAPE-bf16: ``model`` in bf16, saved once (written aside and renamed, so a cut-off save
    leaves nothing a later run would load), beside the marker `distil models list` reads."""
    import shutil
    import tempfile
    from pathlib import Path

    from distil_cli.pull import MARKER

    root = Path(cache_dir) / "bench"
    folder = root / f"{shape}-bf16"
    if (folder / "config.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps({"name": "bench", "source": BENCH_SOURCE}) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=root, prefix=".shape-") as tmp:
        model.to(torch.bfloat16).save_pretrained(Path(tmp) / "model")
        shutil.rmtree(folder, ignore_errors=True)
        (Path(tmp) / "model").rename(folder)
    return folder


def pad_tokenizer():
    """A tokenizer with only special tokens, built in memory, for peers that want one (TRL: its pad and eos
    ids) with a random-shape model whose examples are token ids already: no model files needed."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def train_flops(model, lengths: list[int]) -> float:
    """6 N T for the weights (LM head included) plus 6 L d T^2 for causal attention, per sequence."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters()) - (
        0 if cfg.tie_word_embeddings else cfg.vocab_size * cfg.hidden_size
    )
    return sum(6 * n * t + 6 * cfg.num_hidden_layers * cfg.hidden_size * t * t for t in lengths)


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


def env_info() -> dict[str, str]:
    import transformers

    device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"torch": torch.__version__, "device": device_name, "transformers": transformers.__version__}


def report(title: str, results: list[Measure], key: str) -> dict[str, Any]:
    rows = [m.row() for m in results]
    base = rows[0][key]
    for row in rows:
        row["ratio_to_seed"] = round(row[key] / base, 2) if base else None
    return {"benchmark": title, "env": env_info(), "results": rows}


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)
