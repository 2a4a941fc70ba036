"""``distil train``: a Trainer subclass for the prefix multitask objective.

* Loss: ``examples.multitask_loss`` (a pure function), with per-task token counts taken
  over the whole gradient-accumulation window so accumulation does not change it.
* Batches: length-grouped, dynamically padded, both tasks of a record in one forward.
* Evaluation: real greedy generation on valid.jsonl + ROUGE on the generated text only;
  the best checkpoint by mean ROUGE becomes ``RUN_DIR/final``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ProgressCallback

from distil_cli.examples import (
    IGNORE,
    GroupedLengthSampler,
    PackingCollator,
    TokenBudgetBatchSampler,
    chunked_cross_entropy,
    encode_prompt,
    losses_to_parts,
    parts_from_sums,
    task_token_counts,
)
from distil_cli.generation import generate_batched
from distil_cli.kernels import VARLEN
from distil_cli.prompts import SUMMARY, PromptFormatter, instruction_for, stop_token_ids
from distil_cli.scoring import aggregate, score_many

log = logging.getLogger(__name__)


@dataclass
class DistilTrainingArguments(TrainingArguments):
    """TrainingArguments plus the recipe's own knobs, range-checked."""

    model_type: str = field(default="distill", metadata={"help": "standard (summary only) or distill (+ rationale)."})
    alpha: float = field(default=0.5, metadata={"help": "Weight of the summary loss; 1 - alpha weighs the rationale."})
    eval_max_new_tokens: int = field(default=256, metadata={"help": "Generation length at evaluation."})
    max_input_tokens: int = field(default=2048, metadata={"help": "Prompt length limit (input side cropped)."})
    packing: bool = field(default=True, metadata={"help": "Padding-free packed batches under a token budget."})
    tokens_per_batch: int = field(default=8192, metadata={"help": "Token budget of one packed batch."})
    pack_row_tokens: int | None = field(default=None, metadata={"help": "Longest packed row (None: one row)."})
    fused_ce: bool = field(default=False, metadata={"help": "Liger's fused linear cross-entropy for the loss."})

    def __post_init__(self):
        super().__post_init__()
        if self.model_type not in ("standard", "distill"):
            raise ValueError(f"model_type must be standard or distill, not {self.model_type!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.tokens_per_batch < 1:
            raise ValueError("tokens_per_batch must be positive")
        if self.model_type == "distill" and not self.packing and self.per_device_train_batch_size % 2:
            raise ValueError("distill keeps a record's two tasks in one batch: batch_size must be even")


class MetricsFile(TrainerCallback):
    """Appends every log line (train and eval) to RUN_DIR/metrics.jsonl on the main process."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            line = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs}
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")


class LossProgress(ProgressCallback):
    """The progress bar (steps, ETA) with the latest loss, task losses and ROUGE as its postfix."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and self.training_bar is not None and logs):
            return
        shown = {"loss": "loss", "loss_pred": "pred", "loss_expl": "expl", "eval_rouge_mean": "rouge"}
        values = {label: f"{logs[key]:.4g}" for key, label in shown.items() if isinstance(logs.get(key), (int, float))}
        if values:
            self.postfix = {**getattr(self, "postfix", {}), **values}
            self.training_bar.set_postfix(self.postfix, refresh=True)


class EvaluateAtEnd(TrainerCallback):
    """Also evaluate (and save) at the last step, so the best checkpoint is chosen among all."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.eval_strategy != "no":
            control.should_evaluate = True
            control.should_save = True
        return control


class DistilTrainer(Trainer):
    """Trainer with the multitask loss, per-task logging and generation-based evaluation."""

    def __init__(
        self,
        *args,
        eval_records: list[dict[str, Any]] | None = None,
        formatter: PromptFormatter | None = None,
        summary_instructions: dict[str, str] | None = None,
        predictions_dir: Path | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.eval_records = eval_records or []
        self.formatter = formatter
        self.summary_instructions = summary_instructions
        self.predictions_dir = predictions_dir
        self.loss_is_scaled_for_ga = True  # compute_loss already normalises over the window
        # Since the last log / since the start. The loss sums stay on the device and the collator's
        # counts on the host, read only when logging, so steps never wait for the GPU.
        self._acc: torch.Tensor | None = None  # sum_pred, sum_expl
        self._host = [0, 0, 0, 0]  # n_pred, n_expl, tokens, examples
        self._host_total = [0, 0, 0, 0]
        self._last_log_time = time.perf_counter()

    # ---- batching -----------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return GroupedLengthSampler(dataset, self.args.per_device_train_batch_size, self.args.seed)

    def get_train_dataloader(self):
        if not self.args.packing:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        sampler = TokenBudgetBatchSampler(self.train_dataset, self.args.tokens_per_batch, self.args.seed)
        pad = getattr(self.processing_class, "pad_token_id", None) or 0
        varlen = getattr(self.model.config, "_attn_implementation", None) == VARLEN
        collator = PackingCollator(self.args.pack_row_tokens, pad, varlen=varlen)
        loader = DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=collator, num_workers=0)
        return self.accelerator.prepare(loader)

    def _get_num_items_in_batch(self, batch_samples, device):
        """Per-task supervised token counts of the accumulation window, summed over ranks."""
        counts = task_token_counts(batch_samples).to(device) if batch_samples else torch.zeros(2, device=device)
        if self.args.world_size > 1:
            counts = self.accelerator.gather(counts.unsqueeze(0)).sum(dim=0)
        return counts

    # ---- loss ---------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task = inputs.pop("task")
        labels = inputs.pop("labels")
        index = inputs.pop("loss_index", None)  # packed batches: where the loss is, from the collator
        host = inputs.pop("loss_counts")  # n_pred, n_expl, tokens, examples, counted by the collator
        alpha = self.args.alpha if self.args.model_type == "distill" else 1.0
        counts = num_items_in_batch if torch.is_tensor(num_items_in_batch) and num_items_in_batch.numel() == 2 else None
        if index is not None and self.args.fused_ce:
            half = torch.bfloat16 if self.args.bf16 else (torch.float16 if self.args.fp16 else None)
            sums, outputs = fused_supervised_sums(model, inputs, index, half)
            parts = parts_from_sums(sums, host[:2], alpha, counts)
        else:
            keep = index["keep"] if index is not None else None
            losses, mask, outputs = supervised_token_losses(model, inputs, labels, keep)
            parts = losses_to_parts(losses, mask, task, alpha, counts, check=index is None)
        loss = parts.loss * (self.args.world_size if counts is not None else 1)  # DDP averages gradients
        if model.training:
            step = torch.stack([parts.sum_pred, parts.sum_expl]).to(torch.float64)
            self._acc = step if self._acc is None else self._acc + step
            for i, v in enumerate(host):
                self._host[i] += v
                self._host_total[i] += v
        return (loss, outputs) if return_outputs else loss

    @property
    def _tokens_seen(self) -> int:
        return self._host_total[2]

    @property
    def _examples_seen(self) -> int:
        return self._host_total[3]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            sums = [0.0, 0.0] if self._acc is None else self._acc.tolist()
            totals = torch.tensor(sums + self._host, dtype=torch.float64, device=self.args.device)
            if self.args.world_size > 1:  # every rank logs at the same steps, so this collective is safe
                totals = self.accelerator.reduce(totals, reduction="sum")
            sum_pred, sum_expl, n_pred, n_expl, tokens, _ = totals.cpu().tolist()
            self._host = [0, 0, 0, 0]
            logs["loss_pred"] = sum_pred / n_pred if n_pred else float("nan")
            if self.args.model_type == "distill":
                logs["loss_expl"] = sum_expl / n_expl if n_expl else float("nan")
            now = time.perf_counter()
            logs["tokens_per_s"] = round(tokens / max(now - self._last_log_time, 1e-9), 1)
            self._acc = None
            self._last_log_time = now
        super().log(logs, start_time)

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        records = self.eval_records
        rank, world = self.args.process_index, self.args.world_size
        mine = records[rank::world]
        model = self.accelerator.unwrap_model(self.model)
        tokenizer = self.processing_class
        started = time.perf_counter()
        prompts = [
            encode_prompt(
                tokenizer,
                self.formatter,
                instruction_for(SUMMARY, r.get("lang", "en"), self.summary_instructions),
                r["input"],
                self.args.max_input_tokens,
                r["id"],
            )[0]
            for r in mine
        ]
        outputs = generate_batched(
            model,
            tokenizer,
            prompts,
            stop_token_ids(tokenizer, self.formatter),
            self.args.eval_max_new_tokens,
            batch_size=self.args.per_device_eval_batch_size,
        )
        rows = [
            {"id": r["id"], "lang": r.get("lang", "en"), "prediction": o.text, "reference": r["output"]}
            for r, o in zip(mine, outputs)
        ]
        if world > 1:
            gathered: list[list[dict]] = [None] * world  # type: ignore[list-item]
            torch.distributed.all_gather_object(gathered, rows)
            rows = sorted((row for part in gathered for row in part), key=lambda row: row["id"])
        scores = aggregate(
            score_many([r["prediction"] for r in rows], [r["reference"] for r in rows], [r["lang"] for r in rows])
        )
        metrics = {f"{metric_key_prefix}_{k}": round(v, 4) for k, v in scores.items()}
        metrics[f"{metric_key_prefix}_samples"] = len(rows)
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - started, 2)
        if self.predictions_dir is not None and self.is_world_process_zero():
            self.predictions_dir.mkdir(parents=True, exist_ok=True)
            path = self.predictions_dir / f"step-{self.state.global_step}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def accepts_logits_to_keep(model) -> bool:
    """Whether the model, through DDP/peft wrappers, takes ``logits_to_keep``; cached per model object."""
    if model not in _KEEPS_LOGITS:
        import inspect

        inner, found, seen = model, False, set()
        while inner is not None and id(inner) not in seen and not found:  # base_model can point to itself
            seen.add(id(inner))
            found = "logits_to_keep" in inspect.signature(inner.forward).parameters
            inner = next((getattr(inner, a) for a in ("module", "model", "base_model") if hasattr(inner, a)), None)
        _KEEPS_LOGITS[model] = found
    return _KEEPS_LOGITS[model]


_KEEPS_LOGITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def supervised_token_losses(model, inputs: dict, labels: torch.Tensor, positions: torch.Tensor | None = None):
    """Per-token losses [B, T-1] and mask, with logits only where a token is supervised.

    ``logits_to_keep`` (a tensor of positions) makes the model apply its LM head to the
    positions that predict a supervised token only (any row's, for padded batches): the
    prompt's logits, most of a long clinical input, are never computed. Models without
    that argument fall back to full logits. The loss is float32, computed chunk by chunk.
    ``positions`` (from the collator) saves the GPU->host sync of finding them here.
    """
    shift_labels = labels[:, 1:]
    mask = shift_labels.ne(IGNORE)
    if accepts_logits_to_keep(model):
        if positions is None:
            positions = mask.any(dim=0).nonzero().squeeze(-1)
        outputs = model(**inputs, logits_to_keep=positions, use_cache=False)
        logits = outputs.logits  # [B, K, V] for the kept positions
        targets = shift_labels[:, positions]
        kept = chunked_cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).view(targets.shape)
        losses = torch.zeros(shift_labels.shape, dtype=kept.dtype, device=kept.device)
        losses[:, positions] = kept
        return losses, mask, outputs
    outputs = model(**inputs, use_cache=False)
    logits = outputs.logits[:, :-1]
    flat = chunked_cross_entropy(logits.reshape(-1, logits.shape[-1]), shift_labels.reshape(-1))
    losses = flat.view(shift_labels.shape)
    return losses, mask, outputs


def fused_supervised_sums(
    model, inputs: dict, index: dict, dtype: torch.dtype | None = None
) -> tuple[list[torch.Tensor], Any]:
    """Per-task sums of token losses with Liger's fused linear cross-entropy (no logits at all).

    The decoder's final hidden states are taken with a forward hook (so DDP and peft wrappers
    still run their forward); the model's own LM head is asked for one position only.
    ``dtype``: the mixed-precision dtype. The loss runs outside the model's autocast forward,
    so hidden states and weight are cast here (float32 would mean float32 GEMMs).
    """
    from accelerate.utils import extract_model_from_parallel

    from distil_cli.kernels import fused_linear_ce_sum

    base = extract_model_from_parallel(model)  # DDP, torch.compile
    if hasattr(base, "get_base_model"):  # peft
        base = base.get_base_model()
    decoder = base.get_decoder()
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        captured["hidden"] = output[0]

    handle = decoder.register_forward_hook(hook)
    try:
        outputs = model(**inputs, logits_to_keep=1, use_cache=False)
    finally:
        handle.remove()
    hidden = captured["hidden"]
    weight = base.get_output_embeddings().weight
    if dtype is None and torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
    if dtype is not None:
        hidden, weight = hidden.to(dtype), weight.to(dtype)
    rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index["flat_index"])
    split = index["n_pred"]
    targets = index["flat_target"]
    sums = [
        fused_linear_ce_sum(rows[:split], weight, targets[:split]),
        fused_linear_ce_sum(rows[split:], weight, targets[split:]),
    ]
    return sums, outputs


def steps_per_epoch(n_examples: int, batch_size: int, grad_accum: int, world_size: int = 1) -> int:
    batches = math.ceil(n_examples / (batch_size * world_size))
    return max(1, math.ceil(batches / grad_accum))


def bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
