"""LoRA and QLoRA: the adapter a run trains (peft) and the 4-bit base weights it may train on (bitsandbytes).

QLoRA is bitsandbytes' NF4 through transformers' ``BitsAndBytesConfig``: the path peft, TRL and axolotl
build on (docs/architecture.md says why not torchao). The adapter's A matrices are drawn from the run's seed.

The frozen base is held in bf16 on a GPU with bf16 (:func:`base_dtype`) and its unquantized weights are
not upcast (peft's ``prepare_model_for_kbit_training`` would make the embeddings, norms and output layer
float32: at the Qwen2.5-7B shape that QLoRA run had 1.6x the peak memory of TRL + peft's and 0.79x its
tokens/s, docs/benchmarks.md). The adapters train in float32 (peft's default) under bf16 autocast.
"""

from __future__ import annotations

import os
from typing import Any

from distil_cli.errors import ConfigError
from distil_cli.settings import TrainSettings


def quantization(cfg: TrainSettings) -> dict[str, Any]:
    """``from_pretrained`` arguments for --load-in-4bit (none otherwise): NF4 with double quantization and
    bf16 compute, the model on this process's device (a 4-bit model is not moved after loading)."""
    if not cfg.load_in_4bit:
        return {}
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("--load-in-4bit needs bitsandbytes: pip install 'distil-cli[qlora]'") from None
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
    return {"quantization_config": config, "device_map": {"": device}}


def base_dtype(cfg: TrainSettings):
    """The dtype a run's weights load in. Full fine-tuning: bf16 for ``--precision bf16`` (float32 master
    weights live in the optimizer), else float32. LoRA and QLoRA on a GPU with bf16: the frozen base in
    bf16 whatever the precision (it takes no optimizer step, so nothing is lost: 14 GiB instead of 28 for
    a 7B base); on a CPU float32."""
    import torch

    from distil_cli.train.config import bf16_supported

    if cfg.precision == "bf16" or (cfg.lora and bf16_supported()):
        return torch.bfloat16
    return torch.float32


def with_lora(model, cfg: TrainSettings, family=None):
    """``model`` with LoRA adapters (DoRA, rsLoRA as set), prepared for 4-bit training when quantized."""
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    if cfg.load_in_4bit and cfg.gradient_checkpointing:
        # peft does this itself for an unquantized base only (transformers 5.25 also does it when checkpointing
        # is turned on): the embeddings' output requires grad, so that reentrant checkpointing through frozen
        # layers still reaches the adapters. get_peft_model freezes the base.
        model.enable_input_require_grads()
    set_seed(cfg.seed)  # LoRA's A matrices are drawn here: the same seed, the same adapter (and on every rank)
    targets: Any = cfg.lora_target_modules or (list(family.lora_target_modules) if family else "all-linear")
    if targets == ["all-linear"]:
        targets = "all-linear"  # peft's word for every linear layer but the output layer
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        use_dora=cfg.dora,
        use_rslora=cfg.rslora,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:  # e.g. target modules not found in the model
        raise ConfigError(f"--lora: {str(exc).splitlines()[0]}") from None
