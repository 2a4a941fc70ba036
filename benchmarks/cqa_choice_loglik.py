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
lettered choices, the default instruction); ``question``: that prompt without the choices listed
(for a model trained on such records, e.g. by ``benchmarks/reference_loop.py --no-choices``).
Float32 (on the GPU where there is one), no generation: it tells whether a student knows the
answers before fine-tuning and whether it reads the multiple-choice prompt.
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

from distil_cli.errors import DistilError
from distil_cli.models import load_tokenizer
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.plugins.registry import get_registry

DATA = Path(__file__).parent / "experiments" / "data" / "cqa" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--name", default="", help="the model's name, for the family's formatter")
    parser.add_argument("--data", type=Path, default=DATA, help="CQA records (id, input, output) as JSON lines")
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--prompt", choices=["plain", "distil", "question"], default="plain")
    parser.add_argument("--instruction", default="Respond to the text below.")
    parser.add_argument("--target-nll", action="store_true", help="the supervised tokens' NLL, no scoring")
    parser.add_argument("--warm-end-of-turn", action="store_true", help="end-of-turn row := <eos> row first")
    args = parser.parse_args()
    records = read_records(args.data, args.records)
    tokenizer, formatter = tokenizer_and_formatter(args.model, args.name)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(device).eval()
    if args.warm_end_of_turn:
        rows = model.get_input_embeddings().weight
        marker = tokenizer.convert_tokens_to_ids(formatter.end_of_turn)
        with torch.no_grad():
            rows[marker] = rows[tokenizer.eos_token_id]
    if args.target_nll:
        answer, end, both = target_nll(model, tokenizer, formatter, records, args.instruction)
        print(f"{len(records)} records: answer tokens {answer:.2f} nats, end-of-turn {end:.2f}, all {both:.2f}")
        return
    accuracy = choice_accuracy(model, tokenizer, formatter, records, args.prompt, args.instruction)
    print(f"{args.model.name} ({args.prompt} prompt, {len(records)} records): acc_norm {accuracy:.1f}")


def tokenizer_and_formatter(model: Path, name: str):
    """The model folder's tokenizer and its family's formatter (as ``distil train`` chooses them); a
    one-line exit when the folder cannot be read."""
    try:
        tokenizer = load_tokenizer(str(model))
        family = get_registry().detect_family(AutoConfig.from_pretrained(model), name)
    except (DistilError, OSError, ValueError) as exc:
        raise SystemExit(f"{model}: not a model folder ({str(exc).splitlines()[0]})") from None
    return tokenizer, choose_formatter(tokenizer, family=family)


def read_records(path: Path, limit: int) -> list[dict]:
    """The first ``limit`` records (all with 0); a one-line exit naming the file and line of a bad one."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (make it with: python benchmarks/dss.py ../shared/data/dss cqa DIR)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if limit and len(records) == limit:
            break
        try:
            record = json.loads(line)
            record["input"], record["output"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path} line {number}: not a record with input and output ({exc})") from None
        records.append(record)
    return records


def question_only(text: str) -> str:
    """A CQA input without its listed choices: "Q: ...\nAnswer Choices:\n(a) ..." -> "Q: ..." (dss.py's format)."""
    return text.split("\nAnswer Choices:")[0]


def tail_nll(model, context: list[int], tail: list[int]) -> list[float]:
    """The negative log-likelihood (nats) of each token of ``tail`` after ``context``."""
    with torch.no_grad():
        logits = model(torch.tensor([context + tail], device=model.device)).logits[0, -len(tail) - 1 : -1]
    gold = torch.tensor(tail, device=logits.device)[:, None]
    return (-logits.float().log_softmax(-1).gather(1, gold)).flatten().tolist()


def choice_accuracy(model, tokenizer, formatter, records: list[dict], prompt: str, instruction: str) -> float:
    """Percent of records whose answer is the choice of highest log-likelihood per character."""
    right = 0
    for record in records:
        choices = [c.strip() for c in re.findall(r"\([a-e]\) (.*)", record["input"])]
        if prompt == "plain":
            question = question_only(record["input"]).removeprefix("Q: ")
            context = tokenizer(f"Question: {question}\nAnswer:")["input_ids"]
            continuations = [" " + c for c in choices]
        else:  # distil: the question with its lettered choices; question: without them
            shown = record["input"] if prompt == "distil" else question_only(record["input"])
            text = formatter.format(instruction, shown).prompt
            context = tokenizer(text, add_special_tokens=False)["input_ids"]
            continuations = choices
        scores = [
            -sum(tail_nll(model, context, tokenizer(c, add_special_tokens=False)["input_ids"])) / len(c)
            for c in continuations
        ]
        right += choices[scores.index(max(scores))].lower() == record["output"].lower()
    return 100 * right / len(records)


def target_nll(model, tokenizer, formatter, records: list[dict], instruction: str) -> tuple[float, float, float]:
    """Mean NLL of the answer tokens, of the end-of-turn marker and of both, under distil's prompt."""
    answer, end = [], []
    for record in records:
        formatted = formatter.format(instruction, record["input"], record["output"])
        prompt = tokenizer(formatted.prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(formatted.prompt + formatted.target, add_special_tokens=False)["input_ids"]
        nll = tail_nll(model, ids[: len(prompt)], ids[len(prompt) :])
        answer += nll[:-1]
        end.append(nll[-1])
    return sum(answer) / len(answer), sum(end) / len(end), (sum(answer) + sum(end)) / (len(answer) + len(end))


if __name__ == "__main__":
    main()
