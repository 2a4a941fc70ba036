"""``DistilTrainer``: a Trainer subclass for the prefix multitask objective.

* Loss: ``train.loss`` (``parts_from_sums``), with per-task token counts taken over the
  whole gradient-accumulation window so accumulation does not change it.
* Batches: packed under a token budget (default) or length-grouped and padded; both tasks
  of a record in one forward pass (``train.batching``).
* Evaluation: real greedy generation on valid.jsonl + ROUGE on the generated text only;
  the best checkpoint by mean ROUGE becomes ``RUN_DIR/final``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ProgressCallback

from distil_cli.data.files import naming
from distil_cli.errors import ConfigError
from distil_cli.evaluate.metrics import aggregate, score_many
from distil_cli.generate.batched import auto_batch_size, choose_engine, generate_batched
from distil_cli.prompts import SUMMARY, PromptFormatter, instruction_for, stop_token_ids
from distil_cli.train.batching import (
    Collator,
    GroupedLengthSampler,
    LossCounts,
    PackingCollator,
    TokenBudgetBatchSampler,
)
from distil_cli.train.examples import encode_prompt
from distil_cli.train.kernels import VARLEN
from distil_cli.train.loss import (
    fused_supervised_sums,
    losses_to_parts,
    parts_from_sums,
    supervised_token_losses,
    task_token_counts,
)
from distil_cli.train.phases import (
    CHECKPOINTING,
    EVAL_GENERATION,
    EVAL_LOSS,
    EVAL_METRIC,
    EVALUATION,
    NO_PHASES,
    STEPS,
    Phases,
)

log = logging.getLogger(__name__)


class MetricsFile(TrainerCallback):
    """Appends every log line (train and eval) to RUN_DIR/metrics.jsonl on the main process."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            line = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs}
            with naming(self.path), open(self.path, "a", encoding="utf-8") as fh:
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
    """Also evaluate (and save, unless --no-save-checkpoints) at the last step, so the best checkpoint is
    chosen among all."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.eval_strategy != "no":
            control.should_evaluate = True
            control.should_save = args.save_strategy != "no"  # (a str enum)
        return control


def selection_scores(name: str, predictions: list[str], references: list[str], langs: list[str]) -> dict[str, float]:
    """The means of a registered metric's values over the evaluation records."""
    from distil_cli.evaluate.metrics import get_metrics
    from distil_cli.settings import ScoreSettings

    metric = get_metrics([name], ScoreSettings())[0]
    values = metric.score_all(predictions, references, langs)
    return {key: sum(v[key] for v in values) / len(values) for key in metric.keys}


class DistilTrainer(Trainer):
    """Trainer with the multitask loss, per-task logging and generation-based evaluation."""

    def __init__(
        self,
        *args,
        eval_records: list[dict[str, Any]] | None = None,
        formatter: PromptFormatter | None = None,
        summary_instructions: dict[str, str] | None = None,
        predictions_dir: Path | None = None,
        batch_sampler: TokenBudgetBatchSampler | None = None,
        validation_examples: list[dict[str, Any]] | None = None,
        phases: Phases = NO_PHASES,
        on_counts: Callable[[LossCounts], None] | None = None,
        **kwargs,
    ):
        """``phases``: timed around each phase (``train.phases``); ``on_counts``: called with the host-side
        counts (tokens, examples) of every training batch (``distil bench train`` counts with it)."""
        super().__init__(*args, **kwargs)
        self.phases, self.on_counts = phases, on_counts
        self.validation_examples = validation_examples or []
        self.eval_records = eval_records or []
        self._eval_prompts: list[list[int]] | None = None  # encoded once: the records do not change
        self.formatter = formatter
        self.summary_instructions = summary_instructions
        self.predictions_dir = predictions_dir
        self.batch_sampler = batch_sampler
        self.loss_is_scaled_for_ga = True  # compute_loss already normalises over the window
        # Since the last log / since the start. The loss sums stay on the device and the collator's
        # counts on the host, read only when logging, so steps never wait for the GPU.
        self._acc: torch.Tensor | None = None  # sum_pred, sum_expl
        self._since_log = LossCounts()
        self._last_log_time = time.perf_counter()

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with master weights, the same AdamW over float32 copies."""
        if self.optimizer is None and self.args.master_weights:
            from distil_cli.train.precision import MasterAdamW

            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model if model is None else model)
            if cls is not torch.optim.AdamW:
                raise ConfigError(f"precision bf16 keeps float32 master weights for AdamW only, not {cls.__name__}")
            self.optimizer_cls_and_kwargs = (MasterAdamW, kwargs)
        return super().create_optimizer(model)

    # ---- batching -----------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return GroupedLengthSampler(
            dataset, self.args.per_device_train_batch_size, self.args.seed, self.args.pair_tasks
        )

    def get_train_dataloader(self):
        if not self.args.packing:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        if self.batch_sampler is None:
            self.batch_sampler = TokenBudgetBatchSampler(self.train_dataset, self.args.tokens_per_batch, self.args.seed)
        pad = getattr(self.processing_class, "pad_token_id", None) or 0
        varlen = getattr(self.model.config, "_attn_implementation", None) == VARLEN
        collator = PackingCollator(
            self.args.pack_row_tokens, pad, varlen=varlen, mask_placeholder=self.args.mask_placeholder
        )
        # pinned batches, moved with non_blocking (training_arguments): no host sync at a step's start
        pin = self.args.dataloader_pin_memory and torch.cuda.is_available()
        loader = DataLoader(
            self.train_dataset, batch_sampler=self.batch_sampler, collate_fn=collator, num_workers=0, pin_memory=pin
        )
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
        host: LossCounts = inputs.pop("loss_counts")
        counts = num_items_in_batch if torch.is_tensor(num_items_in_batch) and num_items_in_batch.numel() == 2 else None
        if index is not None and self.args.fused_ce:
            half = torch.bfloat16 if self.args.bf16 else (torch.float16 if self.args.fp16 else None)
            sums, outputs = fused_supervised_sums(
                model, inputs, index.to(labels.device, non_blocking=True), half, sync_free=self.args.sync_free_ce
            )
            parts = parts_from_sums(sums, [host.n_pred, host.n_expl], self.args.alpha, counts)
        else:
            keep = index.keep.to(labels.device, non_blocking=True) if index is not None else None
            losses, outputs = supervised_token_losses(model, inputs, labels, keep)
            parts = losses_to_parts(losses, labels, task, self.args.alpha, counts, check=index is None)
        loss = parts.loss * (self.args.world_size if counts is not None else 1)  # DDP averages gradients
        if model.training:
            step = torch.stack([parts.sum_pred, parts.sum_expl]).to(torch.float64)
            self._acc = step if self._acc is None else self._acc + step
            self._since_log = self._since_log + host
            if self.on_counts is not None:
                self.on_counts(host)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            sums = [0.0, 0.0] if self._acc is None else self._acc.tolist()
            host = self._since_log
            totals = torch.tensor(sums + [host.n_pred, host.n_expl, host.tokens], dtype=torch.float64)
            if self.args.world_size > 1:  # every rank logs at the same steps, so this collective is safe
                totals = self.accelerator.reduce(totals.to(self.args.device), reduction="sum")
            sum_pred, sum_expl, n_pred, n_expl, tokens = totals.cpu().tolist()
            self._since_log = LossCounts()
            logs["loss_pred"] = sum_pred / n_pred if n_pred else float("nan")
            if self.args.objective == "distill":
                logs["loss_expl"] = sum_expl / n_expl if n_expl else float("nan")
            now = time.perf_counter()
            logs["tokens_per_s"] = round(tokens / max(now - self._last_log_time, 1e-9), 1)
            self._acc = None
            self._last_log_time = now
        super().log(logs, start_time)

    # ---- evaluation ---------------------------------------------------------------------
    def training_step(self, *args, **kwargs):
        with self.phases(STEPS):
            return super().training_step(*args, **kwargs)

    def _save_checkpoint(self, *args, **kwargs):
        with self.phases(CHECKPOINTING):
            return super()._save_checkpoint(*args, **kwargs)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        with self.phases(EVALUATION):
            return self._generated_metrics(metric_key_prefix)

    def _generated_metrics(self, metric_key_prefix: str) -> dict[str, float]:
        started = time.perf_counter()
        with self.phases(EVAL_GENERATION):
            rows = self._generate_eval_rows()
        columns = ([r["prediction"] for r in rows], [r["reference"] for r in rows], [r["lang"] for r in rows])
        with self.phases(EVAL_METRIC):
            scores = aggregate(score_many(*columns))
            if self.args.select_metric != "rouge" and rows:  # the task's own metric, for --select best
                scores.update(selection_scores(self.args.select_metric, *columns))
        metrics = {f"{metric_key_prefix}_{k}": round(v, 4) for k, v in scores.items()}
        with self.phases(EVAL_LOSS):
            losses = self._validation_losses()
        metrics.update({f"{metric_key_prefix}_{k}": v for k, v in losses.items()})
        metrics[f"{metric_key_prefix}_samples"] = len(rows)
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - started, 2)
        if self.predictions_dir is not None and self.is_world_process_zero():
            self.predictions_dir.mkdir(parents=True, exist_ok=True)
            path = self.predictions_dir / f"step-{self.state.global_step}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    @torch.no_grad()
    def _validation_losses(self, packed: bool | None = None) -> dict[str, float]:
        """Teacher-forced per-task loss on the eval records (loss_pred, loss_expl): overfitting shows here.

        ``packed`` (default: with varlen attention) packs the examples under the training token
        budget (a few forwards, no padding); otherwise padded batches of 16 examples. Without
        varlen a packed row costs a dense mask: 13 s against 8.7 s padded for 8 demo examples on
        the CPU (measured), so it is not the default there."""
        if packed is None:
            packed = self.args.packing and getattr(self.model.config, "_attn_implementation", None) == VARLEN
        if not self.validation_examples:
            return {}
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        totals = torch.zeros(4, dtype=torch.float64)  # sum_pred, sum_expl, n_pred, n_expl
        try:
            for batch in self._validation_batches(packed):
                batch = self._prepare_inputs(batch)
                task, labels = batch.pop("task"), batch.pop("labels")
                index = batch.pop("loss_index", None)
                batch.pop("loss_counts", None)
                keep = index.keep.to(labels.device) if index is not None else None
                with self.autocast_smart_context_manager():
                    losses, _ = supervised_token_losses(model, batch, labels, keep)
                parts = losses_to_parts(losses.float(), labels, task, 1.0, check=False)
                totals += torch.tensor(
                    [parts.sum_pred, parts.sum_expl, parts.n_pred, parts.n_expl], dtype=torch.float64
                )
        finally:
            model.train(was_training)
        if self.args.world_size > 1:
            totals = self.accelerator.reduce(totals.to(self.args.device), reduction="sum").cpu()
        sum_pred, sum_expl, n_pred, n_expl = totals.tolist()
        out = {"loss_pred": round(sum_pred / n_pred, 4)} if n_pred else {}
        if n_expl:
            out["loss_expl"] = round(sum_expl / n_expl, 4)
        return out

    def _validation_batches(self, packed: bool):
        """This rank's validation examples as collated batches (packed like training, or padded)."""
        mine = self.validation_examples[self.args.process_index :: self.args.world_size]
        pad = getattr(self.processing_class, "pad_token_id", None) or 0
        if not packed:
            collate = Collator(pad)
            for start in range(0, len(mine), 16):
                yield collate(mine[start : start + 16])
            return
        varlen = getattr(self.model.config, "_attn_implementation", None) == VARLEN
        collate = PackingCollator(self.args.pack_row_tokens, pad, varlen=varlen)
        # no backward: 4x the training budget per forward (fewer, fuller forwards) fits in what a training
        # step's saved activations took; not with gradient checkpointing, whose steps save almost none
        budget = self.args.tokens_per_batch * (1 if self.args.gradient_checkpointing else 4)
        for batch in TokenBudgetBatchSampler(mine, budget, self.args.seed, pair=False):
            yield collate([mine[i] for i in batch])

    def _generate_eval_rows(self) -> list[dict[str, Any]]:
        """Greedy summaries of this rank's share of the eval records, gathered from every rank."""
        rank, world = self.args.process_index, self.args.world_size
        mine = self.eval_records[rank::world]
        tokenizer = self.processing_class
        if self._eval_prompts is None:
            self._eval_prompts = [
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
        prompts = self._eval_prompts
        from tqdm.auto import tqdm

        show = not self.args.disable_tqdm and self.is_world_process_zero()
        model = self.accelerator.unwrap_model(self.model)
        batch_size = self.args.per_device_eval_batch_size
        if prompts and choose_engine(model, "auto") == "slots":  # every record at once, as memory allows
            longest = max(len(p) for p in prompts)
            fits = auto_batch_size(model, longest, self.args.max_new_tokens, "slots")
            batch_size = max(batch_size, min(len(prompts), fits))
        with tqdm(total=len(prompts), desc="evaluate: generating", leave=False, disable=not show) as bar:
            outputs = generate_batched(
                model,
                tokenizer,
                prompts,
                stop_token_ids(tokenizer, self.formatter),
                self.args.max_new_tokens,
                batch_size=batch_size,
                on_batch=lambda indices, _: bar.update(len(indices)),
                cache_implementation="auto",
            )
        rows = [
            {"id": r["id"], "lang": r.get("lang", "en"), "prediction": o.text, "reference": r["output"]}
            for r, o in zip(mine, outputs)
        ]
        if world > 1:
            gathered: list[list[dict]] = [None] * world  # type: ignore[list-item]
            torch.distributed.all_gather_object(gathered, rows)
            rows = sorted((row for part in gathered for row in part), key=lambda row: row["id"])
        return rows
