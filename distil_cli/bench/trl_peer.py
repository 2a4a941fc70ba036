"""TRL's ``SFTTrainer`` on the same examples: the peer users pick for packed fine-tuning (bench variant ``trl``).

Padding-free (``padding_free=True``: each batch flattened into one row with position ids),
attended with the same variable-length FlashAttention as distil where CUDA has it (what TRL
users get from ``attn_implementation="flash_attention_2"``; distil's ``distil_varlen`` finds
the sequences from the restarting position ids as transformers' flash path does),
Liger kernels with the ``liger`` flag (``use_liger_kernel=True``), completion-only loss (the
prompt masked, as in distil), bf16 and fused AdamW on a GPU. The batch size in examples is the
token budget over the mean example length, so both see about the same tokens a step. TRL knows
no multitask objective: it trains the plain token loss over both tasks' answers (the same tokens).
Needs ``pip install 'distil-cli[bench]'`` (trl).
"""

from __future__ import annotations

import logging
import time

import torch

from distil_cli.bench.common import Measure, peak, reset_peak, sync, train_flops
from distil_cli.train.kernels import register_varlen, varlen_supported

log = logging.getLogger(__name__)


def trl_train(model, tokenizer, examples, steps: int, tokens_per_batch: int, workdir, flags: frozenset[str]) -> Measure:
    """``tokenizer``: any (the examples are token ids already); TRL needs one for its pad token."""
    import datasets
    from transformers import TrainerCallback
    from trl import SFTTrainer

    rows = [
        {"input_ids": e["input_ids"], "completion_mask": [int(label != -100) for label in e["labels"]]}
        for e in examples
    ]
    mean = sum(len(r["input_ids"]) for r in rows) / len(rows)
    batch = max(1, round(tokens_per_batch / mean))
    marks: dict[str, tuple] = {}
    last = steps + 2
    collated: list[list[int]] = []  # the lengths of each batch's examples, as TRL's collator got them

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (2, last):
                sync()
                marks[state.global_step] = (time.perf_counter(), state.num_input_tokens_seen, peak(), len(collated))
                if state.global_step == 2:
                    reset_peak()

    attention = "sdpa"
    if varlen_supported(model.config) is None:  # distil's own default
        attention = register_varlen()
        model.set_attn_implementation(attention)
    config = _config(workdir, batch, last, flags)
    peft = {}
    if flags & {"lora", "qlora"}:  # the same adapter as distil's variant; TRL prepares a 4-bit base itself
        from peft import LoraConfig

        from distil_cli.bench.common import BENCH_LORA

        peft["peft_config"] = LoraConfig(**BENCH_LORA, task_type="CAUSAL_LM")
    trainer = SFTTrainer(
        model=model,
        args=config,
        **peft,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    collate = trainer.data_collator

    def counting_collator(features):
        collated.append([len(f["input_ids"]) for f in features])
        return collate(features)

    trainer.data_collator = counting_collator
    trainer.train()
    (t0, tok0, _, b0), (t1, tok1, peak_gib, b1) = marks[2], marks[last]
    # what the timed steps trained on, from the batches themselves (a loader that collates one
    # batch ahead shifts both marks alike); the trainer's token counter is kept as a cross-check
    lengths = [n for batch_lengths in collated[b0:b1] for n in batch_lengths]
    if sum(lengths) != tok1 - tok0:
        log.info("TRL counted %d input tokens, its collator got %d", tok1 - tok0, sum(lengths))
    extra = "".join(f", {f}" for f in sorted(flags))
    name = f"TRL SFTTrainer [{attention}, padding-free, batch {batch} (~{tokens_per_batch} tokens){extra}]"
    return Measure(name, t1 - t0, len(lengths), sum(lengths), flops=train_flops(model, lengths), peak_gib=peak_gib)


def _config(workdir, batch: int, max_steps: int, flags: frozenset[str]):
    """TRL's configuration for the peer: padding-free, completion-only loss, bf16, fused AdamW on a GPU."""
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(workdir),
        per_device_train_batch_size=batch,
        padding_free=True,
        max_length=None,  # the examples are already within distil's limits
        completion_only_loss=True,
        use_liger_kernel="liger" in flags,
        gradient_checkpointing="ckpt" in flags,
        max_steps=max_steps,
        learning_rate=1e-5,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        include_num_input_tokens_seen=True,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=0,
    )
