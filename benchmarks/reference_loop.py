"""Fine-tune a causal LM on input -> output records with a plain PyTorch loop, as a control for ``distil train``.

    python benchmarks/reference_loop.py MODEL_DIR OUT_DIR --name gemma3-270m \\
        --data benchmarks/experiments/data/cqa/train.jsonl --records 480 --steps 30 --lr 1e-4

Nothing of distil's training code runs here: no Trainer, no packing, no fused loss, no master
weights, no kernels. Each step takes the next ``--batch`` records (shuffled once with ``--seed``),
right-pads them with an attention mask, and minimises the mean cross-entropy of the target tokens
(the prompt and the padding get label -100) with torch's AdamW (weight decay 0.01 on matrices only),
a cosine schedule with ``--warmup`` of the steps warming up, and gradient clipping at 1.0 (``--max-grad-norm``): the
recipe ``distil train --objective standard`` sets. Only the prompt comes from distil (the family's
formatter with the default instruction), so the prompt and the supervised tokens are the same.

If a student learns a task under this loop and not under ``distil train`` (same records, steps and
learning rate), the difference is distil's; if it fails under both, it is the student or the recipe.
The folder written holds the model and tokenizer, for ``benchmarks/cqa_choice_loglik.py`` and
``distil infer``; ``losses.json`` holds the loss of every step.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import torch
from cqa_choice_loglik import (  # this script's folder: on sys.path when run
    question_only,
    read_records,
    tokenizer_and_formatter,
)
from transformers import AutoModelForCausalLM

INSTRUCTION = "Respond to the text below."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", default="", help="the model's name, for the family's formatter")
    parser.add_argument("--data", type=Path, required=True, help="records (input, output) as JSON lines")
    parser.add_argument("--records", type=int, default=0, help="use the first N records (0: all)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16, help="records a step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.03, help="share of the steps warming up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: none)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--no-choices", action="store_true", help="drop CQA's listed choices from each input")
    parser.add_argument(
        "--plain", action="store_true", help='"Question: Q\\nAnswer: A" without the turn format (implies --no-choices)'
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = read_records(args.data, args.records)
    tokenizer, formatter = tokenizer_and_formatter(args.model, args.name)
    if args.no_choices or args.plain:  # CQA as an open question
        records = [{**r, "input": question_only(r["input"])} for r in records]
    if args.plain:
        examples = [encode_plain(tokenizer, r) for r in records]
    else:
        examples = [encode(tokenizer, formatter, r) for r in records]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).train()
    model.config.use_cache = False
    losses = train(model, examples, args, tokenizer.pad_token_id or 0, device)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "losses.json").write_text(json.dumps(losses))
    tail = losses[-10:]
    print(f"{args.out}: {len(losses)} steps, mean loss of the last {len(tail)}: {sum(tail) / len(tail):.3f}")


def encode(tokenizer, formatter, record: dict) -> tuple[list[int], list[int]]:
    """Token ids of prompt + target and their labels (-100 on the prompt)."""
    formatted = formatter.format(INSTRUCTION, record["input"], record["output"])
    prompt = tokenizer(formatted.prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(formatted.prompt + formatted.target, add_special_tokens=False)["input_ids"]
    return ids, [-100] * len(prompt) + ids[len(prompt) :]


def encode_plain(tokenizer, record: dict) -> tuple[list[int], list[int]]:
    """``cqa_choice_loglik.py --prompt plain``'s prompt, " answer" and the end-of-sequence token after it."""
    prompt = tokenizer(f"Question: {record['input'].removeprefix('Q: ')}\nAnswer:")["input_ids"]
    target = tokenizer(" " + record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt + target, [-100] * len(prompt) + target


def batch_tensors(examples: list[tuple[list[int], list[int]]], pad: int, device: str) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and labels of some examples."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (tokens, targets) in enumerate(examples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def train(model, examples, args, pad: int, device: str) -> list[float]:
    """AdamW with a cosine schedule; the loss of each step."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    warm = max(1, round(args.warmup * args.steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    order: list[int] = []
    shuffler = random.Random(args.seed)
    losses = []
    for _ in range(args.steps):
        if len(order) < args.batch:  # next epoch
            epoch = list(range(len(examples)))
            shuffler.shuffle(epoch)
            order += epoch
        chosen, order = order[: args.batch], order[args.batch :]
        loss = model(**batch_tensors([examples[i] for i in chosen], pad, device)).loss
        loss.backward()
        if args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


if __name__ == "__main__":
    main()
