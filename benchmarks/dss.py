#!/usr/bin/env python3
"""Convert the distilling step-by-step paper's CQA / SVAMP sets (with PaLM rationales) into a prepared folder.

    python benchmarks/dss.py ../shared/data/dss cqa data/cqa
    python benchmarks/dss.py ../shared/data/dss svamp data/svamp

Writes OUT/{train,test}.jsonl with distil's records {id, lang, input, output, rationale} and
OUT/manifest.json (counts, source hashes). The rationale of a training record is PaLM's text
before the first new few-shot question ("Q:"), up to "So the answer is" (CQA) or "The answer
is" (SVAMP); PaLM outputs without that phrase give no usable rationale, and those records are
left out of train (for every objective, so standard and distill see the same records). Test
records keep only input and output. No validation split: experiments select the last checkpoint.

Inputs: CQA "Q: question / Answer Choices: (a) ... (e) ..." -> the answer text; SVAMP the word
problem -> its equation (scored by value: `distil score --metric equation`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ANSWER_PHRASE = {"cqa": re.compile(r"So the answer is", re.IGNORECASE), "svamp": re.compile(r"The answer is")}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def palm_outputs(folder: Path, split: str) -> list[str]:
    """PaLM's outputs in the order of the split file (train_CoT_0, train_CoT_1, ...)."""
    files = sorted(folder.glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    outputs: list[str] = []
    for path in files:
        outputs.extend(json.loads(path.read_text(encoding="utf-8")))
    return outputs


def rationale_of(output: str, task: str) -> str | None:
    """PaLM's reasoning before its answer, or None when the output has no answer phrase."""
    first = re.split(r"\n\s*Q:", output, maxsplit=1)[0]
    match = ANSWER_PHRASE[task].search(first)
    if match is None:
        return None
    text = " ".join(first[: match.start()].split())
    return text or None


def cqa_input(row: dict) -> str:
    letters = "abcdefghij"
    choices = "\n".join(f"({letters[i]}) {choice}" for i, choice in enumerate(row["choices"]))
    return f"Q: {' '.join(row['question'].split())}\nAnswer Choices:\n{choices}"


def records(source: Path, task: str, split: str) -> tuple[list[dict], int]:
    """(records, how many were left out for lack of a usable rationale)."""
    rows = read_lines(source / task / f"{task}_{split}.json")
    outputs = palm_outputs(source / task / "palm", split) if split == "train" else []
    if split == "train" and len(outputs) != len(rows):
        raise SystemExit(f"{task}: {len(rows)} training rows but {len(outputs)} PaLM outputs; the files do not align")
    out, dropped = [], 0
    for index, row in enumerate(rows):
        if task == "cqa":
            record = {"id": row["id"], "lang": "en", "input": cqa_input(row), "output": row["answer"]}
        else:
            record = {
                "id": f"svamp-{split}-{index}",
                "lang": "en",
                "input": row["input"].strip(),
                "output": row["label"],
            }
        if split == "train":
            rationale = rationale_of(outputs[index], task)
            if rationale is None:
                dropped += 1
                continue
            record["rationale"] = rationale
        out.append(record)
    return out, dropped


def convert(source: Path, task: str, out: Path) -> dict:
    if task not in ANSWER_PHRASE:
        raise SystemExit(f"unknown task {task!r}; give cqa or svamp")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"tool": "benchmarks/dss.py", "task": task, "source": str(source.resolve()), "totals": {}}
    for split in ("train", "test"):
        rows, dropped = records(source, task, split)
        (out / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        manifest["totals"][split] = len(rows)
        if split == "train":
            manifest["dropped_without_rationale"] = dropped
    manifest["counts"] = {split: {"en": n} for split, n in manifest["totals"].items()}
    files = sorted((source / task).rglob("*.json"))
    manifest["source_files"] = {str(p.relative_to(source)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the dss folder (holding cqa/ and svamp/)")
    parser.add_argument("task", choices=sorted(ANSWER_PHRASE))
    parser.add_argument("out", type=Path, help="the prepared folder to write")
    args = parser.parse_args(argv)
    manifest = convert(args.source, args.task, args.out)
    print(json.dumps({k: manifest[k] for k in ("task", "totals", "dropped_without_rationale")}), file=sys.stderr)


if __name__ == "__main__":
    main()
