"""The model card written into every ``final/`` folder (README.md, Hugging Face model card format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distil_cli.pull import licence_of
from distil_cli.run_record import RunRecord

# Hub card spellings of the licences of the models distil pulls (others are "other" with a name and link)
HUB_LICENCES = {"Apache-2.0": "apache-2.0"}

CAVEAT = (
    "**Not a medical device.** This model was trained for research on clinical text. Its outputs can be "
    "wrong, incomplete or invented, and must be reviewed by a qualified expert before any use in care, "
    "documentation or decisions about a patient."
)
SHOWN_SETTINGS = (
    "epochs", "max_steps", "lr", "warmup_ratio", "weight_decay", "batch_size", "tokens_per_batch", "grad_accum",
    "seed", "max_input_tokens", "max_output_tokens", "lora", "select",
)  # fmt: skip


def _manifest(record: RunRecord) -> dict[str, Any]:
    path = Path(record.data_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _last_eval(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    evals = [line for line in log_history if any(k.startswith("eval_rouge") for k in line)]
    return evals[-1] if evals else {}


def model_card(record: RunRecord, log_history: list[dict[str, Any]], adapter: bool = False) -> str:
    settings = record.settings
    objective = settings.get("objective", "distill")
    manifest = _manifest(record)
    counts = manifest.get("counts", {}).get("train", {})
    last_eval = _last_eval(log_history)
    languages = sorted(counts) or sorted(record.instructions.get("summary", {}))
    front = [
        "---",
        "library_name: " + ("peft" if adapter else "transformers"),
        "tags:",
        "- distil",
        "- distilling-step-by-step",
    ]
    front += (
        [f"base_model: {record.model_source}"]
        if "/" in record.model_source and not record.model_source.startswith("/")
        else []
    )
    licence = licence_of(record.model_source)
    if licence is not None:
        hub = HUB_LICENCES.get(licence["name"])
        front += (
            [f"license: {hub}"]
            if hub
            else [
                "license: other",
                "license_name: " + licence["name"].lower().replace(" ", "-"),
                f"license_link: {licence['url']}",
            ]
        )
    front += ["language:"] + [f"- {lang}" for lang in languages if lang != "*"] + ["---", ""]
    what = (
        f"distill: the summary task and the teacher's rationale task, loss = {settings.get('alpha')} * summary loss "
        f"+ {1 - float(settings.get('alpha', 0.5)):g} * rationale loss"
        if objective == "distill"
        else "standard: the summary task alone"
    )
    instructions = json.dumps(record.instructions, ensure_ascii=False)
    lines = [
        "# A student model trained with distil",
        "",
        f"- Base model: `{record.model_source}`" + (" (LoRA adapter; load it with peft)" if adapter else ""),
        f"- Objective: {what}",
        f"- Data: `{record.data_dir}`, manifest sha256 `{record.data_manifest_sha256}`; training records per "
        f"language: {json.dumps(counts) if counts else 'not recorded'}; {record.examples} training examples",
        f"- Prompt formatter: `{record.formatter}`; instructions: `{instructions}`",
        "- Training settings: " + ", ".join(f"{k} {settings.get(k)}" for k in SHOWN_SETTINGS if k in settings),
        f"- Steps: {record.global_steps}; this model: {record.selected.get('rule', 'last')} checkpoint "
        f"({record.selected.get('why', '')})",
        "- Last evaluation: "
        + (
            ", ".join(f"{k} {v}" for k, v in last_eval.items() if k.startswith("eval_rouge")) or "none (no valid.jsonl)"
        ),
        f"- Libraries: distil {record.version}, " + ", ".join(f"{k} {v}" for k, v in record.versions.items()),
        "- Weights: safetensors",
        *(
            [
                f"- Licence: this model is a derivative of {licence['model']}, whose licence applies: "
                f"{licence['name']} ({licence['url']})"
            ]
            if licence
            else []
        ),
        "",
        "## Intended use",
        "",
        "Summaries (or the task's outputs) for inputs like its training data, through `distil infer`, which "
        "prompts it exactly as it was trained (formatter and instructions from run.json).",
        "",
        "## Limitations",
        "",
        CAVEAT,
        "",
    ]
    return "\n".join(front + lines)
