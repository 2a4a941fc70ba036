"""``distil bench infer``: a seed-style generation pipeline vs ``distil infer``'s batched generation.

The seed-style generation is a ``pipeline`` called one prompt at a time; distil's is
``generate_batched`` (the code ``distil infer`` runs), on the same synthetic prompts.
"""

from __future__ import annotations

import logging
import os
import random
import time
from unittest import mock

import torch

from distil_cli.bench.common import Measure, build_model, device, peak, report, reset_peak, sync
from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)


CACHES = ("auto", "slots", "slots-eager", "dynamic", "static")


def parse_infer_variant(text: str) -> tuple[str, int]:
    """'slots,256' -> (engine / cache: auto, slots, slots-eager, dynamic or static; batch size, 0 = automatic).

    ``slots-eager`` is the slot engine without CUDA graphs (``DISTIL_CUDA_GRAPHS=0``), to measure them."""
    kind, _, size = text.partition(",")
    if kind.strip() not in CACHES:
        raise ConfigError(f"--variant {text!r}: the cache is one of {', '.join(CACHES)}")
    try:
        return kind.strip(), int(size or 0)
    except ValueError:
        raise ConfigError(f"--variant {text!r}: expected CACHE,BATCH such as slots,0 or dynamic,1024") from None


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


def distil_generate(model, tokenizer, prompts, new_tokens: int, batch_size: int, cache: str = "auto") -> Measure:
    if cache == "slots-eager":
        with mock.patch.dict(os.environ, {"DISTIL_CUDA_GRAPHS": "0"}):
            measure = distil_generate(model, tokenizer, prompts, new_tokens, batch_size, "slots")
        measure.name = measure.name.replace("slots cache", "slots cache without CUDA graphs")
        return measure
    from distil_cli.generate.batched import auto_batch_size, choose_engine, generate_batched

    size = batch_size or auto_batch_size(model, max(map(len, prompts)), new_tokens, choose_engine(model, cache))
    stops = [tokenizer.eos_token_id]
    # warm-up (compilation for the static cache) on a full batch of the real shapes
    generate_batched(
        model, tokenizer, prompts[:size], stops, 8, batch_size=size, min_new_tokens=8, cache_implementation=cache
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
        cache_implementation=cache,
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
        raise ConfigError(
            f"--shape {shape}: the infer benchmark needs a model with a tokenizer (smollm2, gemma3-270m or tiny)"
        )
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
    return report(f"infer {shape}", results, "new_tokens_per_s")
