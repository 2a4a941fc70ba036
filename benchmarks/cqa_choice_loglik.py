"""Zero-shot CommonsenseQA accuracy of a model folder, by the likelihood of each answer choice.

    python benchmarks/cqa_choice_loglik.py MODEL_DIR --name gemma3-270m --records 300 --prompt plain
    python benchmarks/cqa_choice_loglik.py MODEL_DIR --name gemma3-270m --records 200 --prompt distil
    python benchmarks/cqa_choice_loglik.py MODEL_DIR --name gemma3-270m --records 50 --target-nll
    python benchmarks/cqa_choice_loglik.py MODEL_DIR --name gemma3-270m --records 30 --target-nll --warm-end-of-turn

Scores each of a question's five choices by its summed log-probability per character after the
prompt and counts the best-scored choice against the answer (lighteval's ``acc_norm``), over the
first RECORDS records of benchmarks/experiments/data/cqa/test.jsonl (made by benchmarks/dss.py).
``plain``: "Question: Q\\nAnswer:" with no choices listed (how base-model leaderboards ask);
``distil``: the prompt ``distil train`` trains on (the model's formatter, the question with its
lettered choices, the default instruction). Float32 on the CPU, no generation: it tells whether a
student knows the answers before fine-tuning and whether it reads the multiple-choice prompt.
``--target-nll``: instead, the mean negative log-likelihood (nats) of what ``distil train`` supervises
under its prompt, before any training: the answer's tokens and the end-of-turn marker after them.
``--warm-end-of-turn``: first copy the ``<eos>`` row of the input embedding (tied to the output layer
in Gemma) into the formatter's end-of-turn marker's row.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from distil_cli.models import load_tokenizer
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.plugins.registry import get_registry

DATA = Path(__file__).parent / "experiments" / "data" / "cqa" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--name", default="", help="the model's name, for the family's formatter")
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--prompt", choices=["plain", "distil"], default="plain")
    parser.add_argument("--instruction", default="Respond to the text below.")
    parser.add_argument("--target-nll", action="store_true", help="the supervised tokens' NLL, no scoring")
    parser.add_argument("--warm-end-of-turn", action="store_true", help="end-of-turn row := <eos> row first")
    args = parser.parse_args()
    tokenizer = load_tokenizer(str(args.model))
    family = get_registry().detect_family(AutoConfig.from_pretrained(args.model), args.name)
    formatter = choose_formatter(tokenizer, family=family)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    if args.warm_end_of_turn:
        rows = model.get_input_embeddings().weight
        marker = tokenizer.convert_tokens_to_ids(formatter.end_of_turn)
        with torch.no_grad():
            rows[marker] = rows[tokenizer.eos_token_id]
    records = [json.loads(line) for line in DATA.read_text().splitlines()[: args.records]]
    if args.target_nll:
        return target_nll(model, tokenizer, formatter, records, args.instruction)
    right = 0
    for record in records:
        choices = [c.strip() for c in re.findall(r"\([a-e]\) (.*)", record["input"])]
        if args.prompt == "plain":
            question = record["input"].split("\nAnswer Choices:")[0].removeprefix("Q: ")
            context = tokenizer(f"Question: {question}\nAnswer:")["input_ids"]
            continuations = [" " + c for c in choices]
        else:
            prompt = formatter.format(args.instruction, record["input"]).prompt
            context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            continuations = choices
        scores = []
        for text in continuations:
            tail = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([context + tail])
            with torch.no_grad():
                logp = model(ids).logits[0, -len(tail) - 1 : -1].log_softmax(-1)
            scores.append(logp.gather(1, torch.tensor(tail)[:, None]).sum().item() / len(text))
        right += choices[scores.index(max(scores))].lower() == record["output"].lower()
    accuracy = 100 * right / len(records)
    print(f"{args.model.name} ({args.prompt} prompt, {len(records)} records): acc_norm {accuracy:.1f}")


def target_nll(model, tokenizer, formatter, records: list[dict], instruction: str) -> None:
    """Print the mean NLL of the answer tokens and of the end-of-turn marker under distil's prompt."""
    answer, end = [], []
    for record in records:
        formatted = formatter.format(instruction, record["input"], record["output"])
        prompt = tokenizer(formatted.prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(formatted.prompt + formatted.target, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        nll = [-logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids))]
        answer += nll[:-1]
        end.append(nll[-1])
    print(
        f"{len(records)} records: answer tokens {sum(answer) / len(answer):.2f} nats, "
        f"end-of-turn {sum(end) / len(end):.2f}, all {(sum(answer) + sum(end)) / (len(answer) + len(end)):.2f}"
    )


if __name__ == "__main__":
    main()
