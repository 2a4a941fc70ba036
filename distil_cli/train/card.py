"""The model card written into every ``final/`` folder (README.md), built with huggingface_hub's
``ModelCard`` / ``ModelCardData``: hub metadata (base model, licence, tags, the evaluation as a
model-index), how it was trained, how to prompt it exactly as it was trained, its limitations and
the method's citation. No absolute local path goes into it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distil_cli.pull import licence_of
from distil_cli.run_record import RunRecord

CAVEAT = (
    "**Not a medical device.** This model was trained for research on clinical text. Its outputs can be "
    "wrong, incomplete or invented, and must be reviewed by a qualified expert before any use in care, "
    "documentation or decisions about a patient."
)
LIMITATIONS = (
    "A small student distilled for one task: expect it to do that task on inputs like its training data and "
    "little else. Its outputs can be wrong or invented; check them before relying on them."
)
CITATION = """@inproceedings{hsieh2023distilling,
  title     = {Distilling Step-by-Step! Outperforming Larger Language Models with Less Training Data and
               Smaller Model Sizes},
  author    = {Hsieh, Cheng-Yu and Li, Chun-Liang and Yeh, Chih-Kuan and Nakhost, Hootan and Fujii, Yasuhisa and
               Ratner, Alexander and Krishna, Ranjay and Lee, Chen-Yu and Pfister, Tomas},
  booktitle = {Findings of the Association for Computational Linguistics: ACL 2023},
  year      = {2023}
}"""
SHOWN_SETTINGS = (
    "epochs", "max_steps", "lr", "warmup_ratio", "weight_decay", "batch_size", "tokens_per_batch", "grad_accum",
    "seed", "max_input_tokens", "max_output_tokens", "precision", "lora", "select", "select_metric",
)  # fmt: skip
LORA_SETTINGS = (
    "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "dora", "rslora", "load_in_4bit", "merge",
)  # fmt: skip
# Hub card spellings of the licences of the models distil pulls (others are "other" with a name and link)
HUB_LICENCES = {"Apache-2.0": "apache-2.0"}


def _manifest(record: RunRecord) -> dict[str, Any]:
    path = Path(record.data_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _last_eval(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    evals = [line for line in log_history if any(k.startswith("eval_") and k != "eval_loss" for k in line)]
    return evals[-1] if evals else {}


def _hub_id(source: str) -> str | None:
    """A model source that is a hub id (OWNER/NAME, not a local path), else None."""
    if source.startswith(("/", ".", "~")) or Path(source).exists() or source.count("/") != 1:
        return None
    return source


def _clinical(record: RunRecord, manifest: dict[str, Any]) -> bool:
    texts = json.dumps(record.instructions).lower() + str(manifest.get("format", ""))
    return "clinic" in texts or "multiclinsum" in texts


def _evaluation_key(metric: str) -> str:
    """The logged key of the metric's headline value (what --select best reads)."""
    from distil_cli.errors import ConfigError
    from distil_cli.train.config import selection_key

    try:
        return "eval_" + selection_key(metric)
    except ConfigError:  # a plugin's metric no longer installed: the card goes without its model-index
        return "eval_rouge_mean"


def _card_data(record: RunRecord, manifest: dict[str, Any], last_eval: dict[str, Any], adapter: bool):
    from huggingface_hub import EvalResult, ModelCardData

    licence = licence_of(record.model_source)
    base = _hub_id(record.model_source) or (licence or {}).get("hub_id") or None
    languages = sorted(lang for lang in manifest.get("counts", {}).get("train", {}) if lang != "*")
    key = _evaluation_key(record.settings.get("select_metric") or "rouge")
    results = None
    if key in last_eval:
        results = [
            EvalResult(
                task_type="text-generation",
                dataset_type="distil-prepared",
                dataset_name=f"valid split ({last_eval.get('eval_samples', '?')} records)",
                metric_type=key.removeprefix("eval_"),
                metric_value=last_eval[key],
            )
        ]
    extra: dict[str, Any] = {}
    if licence is not None:
        hub = HUB_LICENCES.get(licence["name"])
        if hub:
            extra["license"] = hub
        else:
            extra.update(
                license="other",
                license_name=licence["name"].lower().replace(" ", "-"),
                license_link=licence["url"],
            )
    return ModelCardData(
        base_model=base,
        language=languages or None,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=[
            "distil",
            "distilling-step-by-step",
            "text-generation",
            *(["lora"] if record.settings.get("lora") else []),
        ],
        model_name=f"distil student ({record.settings.get('objective', 'distill')})",
        eval_results=results,
        **extra,
    )


def model_card(record: RunRecord, log_history: list[dict[str, Any]], adapter: bool = False) -> str:
    from huggingface_hub import ModelCard

    settings = record.settings
    objective = settings.get("objective", "distill")
    manifest = _manifest(record)
    counts = manifest.get("counts", {}).get("train", {})
    last_eval = _last_eval(log_history)
    data = _card_data(record, manifest, last_eval, adapter)
    licence = licence_of(record.model_source)
    base = data.base_model or Path(record.model_source).name
    what = (
        f"distill: the summary task and the teacher's rationale task, loss = {settings.get('alpha')} * summary loss "
        f"+ {1 - float(settings.get('alpha', 0.5)):g} * rationale loss"
        if objective == "distill"
        else "standard: the summary task alone"
    )
    instructions = json.dumps(record.instructions, ensure_ascii=False)
    lora = (
        ["- LoRA: " + ", ".join(f"{k} {settings[k]}" for k in LORA_SETTINGS if settings.get(k) is not None)]
        if settings.get("lora")
        else []
    )
    evaluation = ", ".join(f"{k} {v}" for k, v in last_eval.items() if k.startswith("eval_") and "runtime" not in k)
    no_evaluation = "none (--eval-samples 0)" if settings.get("eval_samples") == 0 else "none (no valid.jsonl)"
    prompt = record.prompt_template or "(not recorded)"
    lines = [
        "# A student model trained with distil",
        "",
        f"- Base model: `{base}`" + (" (LoRA adapter; load it with peft)" if adapter else ""),
        f"- Objective: {what}",
        f"- Data: manifest sha256 `{record.data_manifest_sha256}`; training records per language: "
        f"{json.dumps(counts) if counts else 'not recorded'}; {record.examples} training examples",
        f"- Prompt formatter: `{record.formatter}`; instructions: `{instructions}`",
        "- Training settings: " + ", ".join(f"{k} {settings.get(k)}" for k in SHOWN_SETTINGS if k in settings),
        *lora,
        f"- Steps: {record.global_steps}; this model: {record.selected.get('rule', 'last')} checkpoint "
        f"({record.selected.get('why', '')})",
        *[
            f"- Extended on resume: planned {e['planned_steps']} steps, continued to {e['steps']} from step "
            f"{e['resumed_at_step']} (the cosine schedule recomputed for {e['steps']} steps)"
            for e in record.extensions
        ],
        f"- Last evaluation: {evaluation or no_evaluation}",
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
        "## Usage",
        "",
        "Prompt it exactly as it was trained (`distil infer` does this from run.json). The prompt, with the "
        "input in place of `{input}`:",
        "",
        "```text",
        prompt,
        "```",
        "",
        "```bash",
        'distil infer RUN_DIR --prompt "your input text"        # one input',
        "distil infer RUN_DIR data/ --split test --out predictions.jsonl",
        "```",
        "",
        "## Limitations",
        "",
        CAVEAT if _clinical(record, manifest) else LIMITATIONS,
        "",
        "## Citation",
        "",
        "The method (Hsieh et al., 2023):",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return str(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)))
