"""`distil train`: masking, cropping, short runs of both model types, resume, inspect."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from distil_cli.data.prepare import prepare
from distil_cli.errors import ConfigError, DataError
from distil_cli.models import load_tokenizer, tiny_dir
from distil_cli.plugins.choosing import choose_formatter
from distil_cli.prompts import ChatMLFormatter, ChatTemplateFormatter
from distil_cli.settings import PrepareSettings, TrainSettings
from distil_cli.train.examples import IGNORE, build_examples, encode_example

CASES = [
    (
        "en",
        "A 64-year-old man had fever and cough for three days. Chest X-ray showed right lower lobe consolidation.",
        "Man, 64, with right lower lobe pneumonia.",
        "Fever; cough; consolidation right lower lobe.",
    ),
    (
        "es",
        "Mujer de 45 años con dolor abdominal en fosa ilíaca derecha. La ecografía mostró apendicitis.",
        "Mujer de 45 años con apendicitis aguda.",
        "Dolor en fosa ilíaca derecha; apendicitis en ecografía.",
    ),
    (
        "fr",
        "Homme de 70 ans avec dyspnée et œdèmes. L'échographie montre une fraction d'éjection à 30 %.",
        "Homme de 70 ans, insuffisance cardiaque.",
        "Dyspnée ; œdèmes ; FEVG 30 %.",
    ),
    (
        "pt",
        "Mulher de 30 anos com febre e disúria. Ecografia renal sem abcesso; pielonefrite.",
        "Mulher de 30 anos com pielonefrite aguda.",
        "Febre; disúria; pielonefrite sem abcesso.",
    ),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from distil_cli.settings import ModelsSettings

    return tiny_dir(Path(os.environ.get("DISTIL_MODELS__CACHE_DIR", ModelsSettings().cache_dir)))


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return load_tokenizer(str(tiny))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    rows = []
    for copy in range(4):
        for lang, text, summary, rationale in CASES:
            rows.append(
                {"id": f"{lang}-{copy}", "lang": lang, "input": text, "output": summary, "rationale": rationale}
            )
    (root / "all.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    prepare(root / "all.jsonl", root / "data", PrepareSettings(split=(0.75, 0.25, 0.0)))
    return root / "data"


@pytest.mark.parametrize("formatter_cls", [ChatTemplateFormatter, ChatMLFormatter])
def test_masking_covers_exactly_answer_and_end_of_turn(tokenizer, formatter_cls):
    formatter = choose_formatter(tokenizer, formatter_cls.name)  # the registered factory of that formatter
    assert isinstance(formatter, formatter_cls)
    answer = "Fièvre élevée ; toux productive.\nPneumonie droite."
    example = encode_example(tokenizer, formatter, "Résumez.", "Patiente de 54 ans.", answer, 512, 64, "r1", 0)
    supervised = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE]
    assert tokenizer.decode(supervised) == answer + "<|im_end|>"
    # every label is either -100 or the token itself, and the supervised part is one suffix
    first = next(i for i, label in enumerate(example["labels"]) if label != IGNORE)
    assert all(label == IGNORE for label in example["labels"][:first])
    assert example["labels"][first:] == example["input_ids"][first:]
    prompt = tokenizer.decode(example["input_ids"][:first])
    assert prompt.endswith("<|im_start|>assistant\n") and "Patiente de 54 ans." in prompt


def test_chat_template_formatter_matches_template(tokenizer):
    formatter = choose_formatter(tokenizer)
    assert formatter.name == "chat-template"
    messages = [{"role": "user", "content": "Summarize.\n\nText."}, {"role": "assistant", "content": "Sum."}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    formatted = formatter.format("Summarize.", "Text.", answer="Sum.")
    assert rendered.startswith(formatted.prompt + formatted.target)


def test_cropping_keeps_answer_and_crops_input(tokenizer):
    formatter = choose_formatter(tokenizer)
    long_input = "La paciente presentó fiebre alta y tos productiva durante varios días. " * 40
    answer = "Neumonía adquirida en la comunidad."
    example = encode_example(tokenizer, formatter, "Resume.", long_input, answer, 120, 64, "long-1", 0)
    first = next(i for i, label in enumerate(example["labels"]) if label != IGNORE)
    assert first <= 120
    assert tokenizer.decode(example["input_ids"][first:]) == answer + "<|im_end|>"
    assert example["cropped"] is True
    with pytest.raises(DataError, match="record long-2: the prompt without any input"):
        encode_example(tokenizer, formatter, "Resume.", long_input, answer, 10, 64, "long-2", 0)
    with pytest.raises(DataError, match="record long-3: answer of .* exceeds max_output_tokens=3"):
        encode_example(tokenizer, formatter, "Resume.", "x", answer, 120, 3, "long-3", 0)


def test_build_examples_pairs_and_missing_rationale(tokenizer):
    formatter = choose_formatter(tokenizer)
    records = [
        {"id": "a", "lang": "en", "input": "t", "output": "s", "rationale": "r"},
        {"id": "b", "lang": "fr", "input": "t", "output": "s"},
    ]
    with pytest.raises(DataError, match="record b: no 'rationale'"):
        build_examples(records, tokenizer, formatter, "distill", 256, 64)
    built = build_examples(records, tokenizer, formatter, "distill", 256, 64, missing_rationale="skip")
    assert [(e["id"], e["task"]) for e in built.examples] == [("a", 0), ("a", 1)]
    assert built.skipped_missing_rationale == ["b"]
    standard = build_examples(records, tokenizer, formatter, "standard", 256, 64)
    assert [(e["id"], e["task"]) for e in standard.examples] == [("a", 0), ("b", 0)]
    prompt = tokenizer.decode(standard.examples[1]["input_ids"])
    assert "Réponds au texte ci-dessous." in prompt  # French instruction for a French record


def _train_args(data_dir, out, model, model_type, steps=3, extra=()):
    return [
        "train",
        data_dir,
        "--out",
        out,
        "--model",
        model,
        "--model-type",
        model_type,
        "--max-steps",
        steps,
        "--eval-steps",
        2,
        "--batch-size",
        4,
        "--lr",
        "1e-3",
        "--max-new-tokens",
        8,
        "--alpha",
        "0.7",
        *extra,
    ]


@pytest.mark.integration
def test_eval_samples_zero_trains_without_evaluating_and_still_checkpoints(tmp_path, data_dir, tiny):
    """--eval-samples 0 turns generation-based evaluation off (slow with a large student); the run still saves
    its checkpoints and its final model, and the model card and run.json say no evaluation ran."""
    out = tmp_path / "run"
    result = run_cli(*_train_args(data_dir, out, tiny, "standard", steps=4, extra=["--eval-samples", 0]))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == [1, 2, 3, 4]
    assert not [line for line in lines if any(key.startswith("eval_") for key in line)]
    assert (out / "checkpoint-2").is_dir() and (out / "final" / "model.safetensors").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["best_metric"] is None and record["settings"]["eval_samples"] == 0
    assert "- Last evaluation: none (--eval-samples 0)" in (out / "final" / "README.md").read_text()


@pytest.mark.integration
def test_without_lr_a_pulled_model_trains_at_its_measured_rate_and_the_run_records_it(tmp_path, data_dir, tiny):
    import shutil

    from distil_cli.pull import MARKER

    model = tmp_path / "gemma-3-270m"
    shutil.copytree(tiny, model)
    (model / MARKER).write_text(json.dumps({"name": "gemma-3-270m"}))  # the table's entry: lr 3e-5
    args = _train_args(data_dir, tmp_path / "run", model, "standard", steps=2, extra=["--eval-samples", 0])
    i = args.index("--lr")
    result = run_cli(*args[:i], *args[i + 2 :])
    assert result.exit_code == 0, result.output
    assert "learning rate 3e-05 (measured for gemma-3-270m" in result.output  # the log says where it came from
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["settings"]["lr"] == 3e-5
    rates = [line["learning_rate"] for line in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open())
             if "learning_rate" in line]  # fmt: skip
    assert rates and max(rates) <= 3e-5
    assert "3e-05" in (tmp_path / "run" / "final" / "README.md").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("model_type", ["standard", "distill"])
def test_short_run_writes_final_metrics_and_loads(tmp_path, data_dir, tiny, model_type):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    result = run_cli(*_train_args(data_dir, out, tiny, model_type))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if "loss" in line]
    assert [line["step"] for line in train_lines] == [1, 2, 3]
    assert all(line["loss_pred"] > 0 and line["tokens_per_s"] > 0 and "learning_rate" in line for line in train_lines)
    if model_type == "distill":
        for line in train_lines:
            assert line["loss"] == pytest.approx(0.7 * line["loss_pred"] + 0.3 * line["loss_expl"], rel=1e-4)
    else:
        assert all("loss_expl" not in line for line in train_lines)
        assert all(line["loss"] == pytest.approx(line["loss_pred"], rel=1e-5) for line in train_lines)
    evals = [line for line in lines if "eval_rouge_mean" in line]
    assert [line["step"] for line in evals] == [2, 3]
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["objective"] == model_type and run["global_steps"] == 3
    assert run["settings"]["epochs"] == 6  # the default for a small training set, recorded as a number
    assert run["formatter"] == "chat-template" and run["data_manifest_sha256"]
    assert run["instructions"]["summary"]["es"] == "Responde al texto siguiente."
    predictions = (out / "eval_predictions" / "step-3.jsonl").read_text().splitlines()
    assert len(predictions) == 4
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert model.config.vocab_size == len(load_tokenizer(str(out / "final")))
    card = (out / "final" / "README.md").read_text()
    assert "## Limitations" in card and run["data_manifest_sha256"] in card and "Objective: " + model_type in card
    assert (
        "Not a medical device" not in card
    )  # the clinical caveat is for clinical data (multiclinsum, clinical prompts)
    assert "pipeline_tag: text-generation" in card and "- distilling-step-by-step" in card and "hsieh2023" in card
    assert str(tmp_path) not in card and "<|im_start|>user" in card  # no local path; the exact prompt
    assert "eval_rouge_mean" in card and (out / "final" / "model.safetensors").is_file()
    assert run["selected"]["rule"] == "last" and run["selected"]["checkpoint"] == "step 3"
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert all(line["eval_loss_pred"] > 0 for line in evals)  # teacher-forced validation loss per task
    if model_type == "distill":
        assert all(line["eval_loss_expl"] > 0 for line in evals)  # the valid records carry rationales here
    plotted = run_cli("plot", out, out, "--out", tmp_path / "both")
    assert plotted.exit_code == 0 and (tmp_path / "both.png").is_file()
    assert run_cli("plot", tmp_path, "--out", tmp_path / "x.png").exit_code == 1


def test_distill_requires_rationales_and_existing_run_guard(tmp_path, data_dir, tiny):
    bare = tmp_path / "bare"
    bare.mkdir()
    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()]
    rows[0].pop("rationale")
    (bare / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli("train", bare, "--out", tmp_path / "r", "--model", tiny, "--max-steps", 1)
    assert result.exit_code == 1 and f"record {rows[0]['id']}: no 'rationale'" in result.output
    with pytest.raises(ConfigError, match="no checkpoint"):
        from distil_cli.train.run import run_training

        run_training(data_dir, tmp_path / "fresh", TrainSettings(model=str(tiny)), tmp_path, resume=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU's refusal of GPU kernels")
@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (("--kernels", "liger"), "--kernels liger: it needs CUDA, Triton and the liger-kernel package"),
        (("--attn-implementation", "varlen"), "--attn-implementation varlen: it needs CUDA"),
    ],
)
def test_gpu_only_speed_options_fail_in_one_line_on_cpu(tmp_path, data_dir, tiny, flag, message):
    out = tmp_path / "run"
    result = run_cli(*_train_args(data_dir, out, tiny, "standard", steps=1, extra=flag))
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()  # nothing written


@pytest.mark.integration
def test_short_run_records_the_speed_path(tmp_path, data_dir, tiny):
    out = tmp_path / "run"
    args = _train_args(data_dir, out, tiny, "standard", steps=1, extra=("--tokens-per-batch", 512))
    result = run_cli(*args, env={"COLUMNS": "40"})  # narrower than the path
    assert result.exit_code == 0, result.output
    assert str(out / "final") in result.stdout.splitlines()  # the path a script reads stays one line
    speed = json.loads((out / "run.json").read_text())["speed"]
    assert speed["tokens_per_batch"] == 512 and speed["kernels"] == "none"
    if not torch.cuda.is_available():  # the CPU path: SDPA with rows of at most 4096 tokens
        assert speed["attn_implementation"] == "sdpa" and speed["pack_row_tokens"] == 4096


@pytest.mark.integration
@pytest.mark.parametrize("precision", ["mixed", "bf16"])
def test_resume_after_interruption_matches_uninterrupted(tmp_path, data_dir, tiny, monkeypatch, precision):
    """bf16: the float32 master weights come back from the optimizer state, not from the rounded model."""
    from distil_cli.train.trainer import DistilTrainer

    reference = tmp_path / "reference"
    extra = ["--precision", precision]
    assert run_cli(*_train_args(data_dir, reference, tiny, "distill", steps=4, extra=extra)).exit_code == 0

    interrupted = tmp_path / "interrupted"
    original = DistilTrainer.training_step
    calls = {"n": 0}

    def crash_on_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DistilTrainer, "training_step", crash_on_third)
    crashed = run_cli(*_train_args(data_dir, interrupted, tiny, "distill", steps=4, extra=extra))
    assert crashed.exit_code != 0 and (interrupted / "checkpoint-2").is_dir() and not (interrupted / "final").exists()
    monkeypatch.setattr(DistilTrainer, "training_step", original)
    again = run_cli(*_train_args(data_dir, interrupted, tiny, "distill", steps=4, extra=extra))
    assert again.exit_code == 1 and "--resume" in again.output
    resumed = run_cli(*_train_args(data_dir, interrupted, tiny, "distill", steps=4, extra=[*extra, "--resume"]))
    assert resumed.exit_code == 0, resumed.output

    def losses(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(x["step"], round(x["loss"], 5)) for x in lines if "loss" in x]

    assert losses(interrupted) == losses(reference)
    from safetensors.torch import load_file

    a = load_file(reference / "checkpoint-4" / "model.safetensors")
    b = load_file(interrupted / "checkpoint-4" / "model.safetensors")
    assert a.keys() == b.keys()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    for key in a:
        assert a[key].dtype == b[key].dtype == dtype
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert json.loads((interrupted / "run.json").read_text())["speed"]["precision"] == precision


def test_inspect_shows_masking_without_training(tmp_path, data_dir, tiny):
    result = run_cli("train", data_dir, "--inspect", 2, "--model", tiny, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "formatter: chat-template" in result.output
    assert result.output.count("supervised") >= 2 and "[summary]" in result.output and "[rationale]" in result.output
    assert not (tmp_path / "run").exists()
    forced = run_cli(
        "train", data_dir, "--inspect", 1, "--model", tiny, "--formatter", "chatml", env={"COLUMNS": "200"}
    )
    assert forced.exit_code == 0 and "formatter: chatml" in forced.output


def test_inspect_wraps_a_long_example_and_keeps_its_supervised_end(tmp_path, tiny):
    import io

    from rich.console import Console

    from distil_cli.reports import print_inspection
    from distil_cli.settings import TrainSettings
    from distil_cli.train.run import load_inputs

    data = tmp_path / "data"
    data.mkdir()
    row = {"id": "long", "lang": "en", "input": "word " * 80, "output": "the supervised end is here " * 6}
    (data / "train.jsonl").write_text(json.dumps({**row, "rationale": "r"}) + "\n")
    buffer = io.StringIO()
    console = Console(file=buffer, width=60, soft_wrap=True, emoji=False, markup=False)  # as the CLI's
    print_inspection(console, load_inputs(data, TrainSettings(model=str(tiny)), tmp_path), 1)
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 60 for line in lines[1:])  # wrapped to the panel
    assert "<|im_end|>" in lines[-2] and "end is here" in lines[-3]  # the supervised end, not cut off


@pytest.mark.integration
@pytest.mark.slow
def test_short_run_on_embedded_model(tmp_path, data_dir, embedded_model_dir):
    out = tmp_path / "real"
    extra = ["--max-input-tokens", 96, "--no-save-checkpoints"]  # (saving 135M weights + optimizer: 2 s)
    args = _train_args(data_dir, out, "default", "distill", steps=1, extra=extra)
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    first = next(x for x in lines if "loss" in x)
    assert 0 < first["loss_pred"] < 8  # a pretrained model, not a random one (ln 49152 = 10.8)
    assert (out / "final" / "model.safetensors").is_file()
    assert not list(out.glob("checkpoint-*"))  # --no-save-checkpoints: not even at the final evaluation


@pytest.mark.integration
def test_two_processes_match_one_process(tmp_path, data_dir, tiny):
    """torchrun with 2 CPU processes (gloo), batch 2 each == 1 process with batch 4 (padded batches, LoRA):
    the losses, the validation losses per task and the generated metrics, evaluation split over the ranks."""

    common = ["--model", str(tiny), "--max-steps", "3", "--eval-steps", "2", "--lr", "1e-2", "--max-new-tokens", "8"]
    common += ["--no-packing", "--lora", "--lora-r", "4", "--lora-dropout", "0"]  # dropout: a draw per process
    single = run_cli("train", data_dir, "--out", tmp_path / "one", "--batch-size", 4, *common)
    assert single.exit_code == 0, single.output
    # `distil train --gpus 2` starts torchrun itself (2 CPU processes here)
    two = run_cli("train", data_dir, "--out", tmp_path / "two", "--batch-size", 2, *common, "--gpus", 2)
    assert two.exit_code == 0, two.output
    assert "Starting 2 processes with torchrun" in two.output

    def lines(run):
        return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]

    one, two = lines(tmp_path / "one"), lines(tmp_path / "two")
    assert [x["step"] for x in two] == [x["step"] for x in one]  # rank 0 alone wrote the file
    for a, b in zip(one, two):
        for key in ("loss", "loss_pred", "loss_expl", "eval_rouge_mean", "eval_loss_pred", "eval_loss_expl"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5), key
    assert sum("eval_loss_pred" in x for x in two) == 2  # evaluated at step 2 and at the end
    assert (tmp_path / "two" / "final" / "model.safetensors").is_file()  # the adapter merged by rank 0


@pytest.mark.integration
@pytest.mark.parametrize("merge", [True, False])
def test_lora_run_merges_into_final_unless_no_merge(tmp_path, data_dir, tiny, merge):
    out = tmp_path / "lora"
    extra = ["--lora", "--lora-r", 4, "--gradient-checkpointing", "--merge" if merge else "--no-merge"]
    result = run_cli(*_train_args(data_dir, out, tiny, "distill", steps=2, extra=extra))
    assert result.exit_code == 0, result.output
    files = {p.name for p in (out / "final").iterdir()}
    if merge:
        from transformers import AutoModelForCausalLM

        assert "model.safetensors" in files and "adapter_config.json" not in files
        merged = AutoModelForCausalLM.from_pretrained(out / "final")
        assert not any("lora" in name for name, _ in merged.named_parameters())
    else:
        assert "adapter_config.json" in files and "adapter_model.safetensors" in files
        assert "LoRA adapter" in (out / "final" / "README.md").read_text()
    assert "README.md" in files
    predictions = tmp_path / "p.jsonl"  # infer loads either form from the run folder
    done = run_cli("infer", out, data_dir, "--split", "valid", "--out", predictions, "--max-new-tokens", 2)
    assert done.exit_code == 0, done.output
    assert len(predictions.read_text().splitlines()) == 4


@pytest.mark.integration
def test_qlora_trains_dora_rslora_adapters_on_a_4bit_base_and_keeps_the_adapter(tmp_path, data_dir, tiny):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the dev and qlora extras install it)")
    from distil_cli.train.run import load_model

    cfg = TrainSettings(model=str(tiny), lora=True, load_in_4bit=True, lora_target_modules=["all-linear"])
    model, _ = load_model(str(tiny), cfg, load_tokenizer(str(tiny)))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear4bit" in kinds  # the frozen base is NF4
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    out = tmp_path / "q"
    extra = ["--lora", "--load-in-4bit", "--dora", "--rslora", "--lora-target-modules", "all-linear"]
    result = run_cli(*_train_args(data_dir, out, tiny, "distill", steps=2, extra=extra))
    assert result.exit_code == 0, result.output
    adapter = json.loads((out / "final" / "adapter_config.json").read_text())
    assert adapter["use_dora"] and adapter["use_rslora"] and len(adapter["target_modules"]) == 14  # 7 x 2 layers
    assert not (out / "final" / "model.safetensors").exists()  # not merged into 4-bit weights
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["load_in_4bit"] and settings["dora"] and settings["rslora"]
    card = (out / "final" / "README.md").read_text()
    assert "load_in_4bit True" in card and "dora True" in card and "LoRA adapter" in card
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert all(0 < x["loss"] < 20 for x in lines)
    merged = run_cli(*_train_args(data_dir, tmp_path / "m", tiny, "distill", extra=[*extra, "--merge"]))
    assert merged.exit_code == 1 and "--merge with --load-in-4bit" in merged.output
    bare = run_cli(*_train_args(data_dir, tmp_path / "b", tiny, "distill", extra=["--load-in-4bit"]))
    assert bare.exit_code == 1 and "--load-in-4bit quantizes the frozen base of a LoRA run (QLoRA): add --lora" in (
        bare.output
    )


def test_a_lora_base_is_bf16_on_a_bf16_gpu_and_qlora_leaves_its_other_weights_unconverted(monkeypatch, tiny):
    """The frozen base of a LoRA run takes no optimizer step: bf16 where bf16 runs (a 7B base in 14 GiB, not
    28); QLoRA's unquantized weights stay as loaded (no float32 output layer) and checkpointing through the
    frozen layers still reaches the adapters."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the dev and qlora extras install it)")
    import torch

    from distil_cli.train import config as train_config
    from distil_cli.train.adapters import base_dtype
    from distil_cli.train.run import load_model

    assert base_dtype(TrainSettings(lora=True)) is torch.float32  # no bf16 GPU here
    assert base_dtype(TrainSettings(precision="bf16")) is torch.bfloat16
    monkeypatch.setattr(train_config, "bf16_supported", lambda: True)
    assert base_dtype(TrainSettings(lora=True)) is torch.bfloat16
    assert base_dtype(TrainSettings(precision="mixed")) is torch.float32  # full fine-tuning: float32 weights
    cfg = TrainSettings(model=str(tiny), lora=True, load_in_4bit=True, gradient_checkpointing=True)
    model, _ = load_model(str(tiny), cfg, load_tokenizer(str(tiny)))
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad and p.dtype.is_floating_point}
    assert frozen == {torch.bfloat16}  # embeddings, norms, output layer: not upcast to float32
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # the adapters
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.train()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values())  # every adapter, through the checkpointed layers
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


@pytest.mark.parametrize(
    ("lora", "requested", "asked"),
    [(False, "auto", "auto"), (True, "auto", "auto"), (True, "liger", "liger"), (True, "none", "none")],
)
def test_kernels_are_applied_to_the_base_model_before_the_adapter(monkeypatch, tiny, lora, requested, asked):
    """--kernels reaches the kernel choice as asked, with or without --lora, and Liger patches the base model
    before the adapter wraps it (the CUDA half, Liger and the fused loss under LoRA against the plain adapter
    path: tests/test_cuda_kernels.py)."""
    from distil_cli.train import kernels
    from distil_cli.train.run import load_model

    calls = []
    monkeypatch.setattr(kernels, "resolve_kernels", lambda req, model: calls.append((req, type(model))) or "none")
    cfg = TrainSettings(model=str(tiny), lora=lora, kernels=requested)
    model, _ = load_model(str(tiny), cfg, load_tokenizer(str(tiny)))
    assert calls == [(asked, calls[0][1])] and not hasattr(calls[0][1], "get_base_model")  # not a peft model
    assert hasattr(model, "get_base_model") is lora


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir, tiny):
    """A 4-step distill run with checkpoint-2 and checkpoint-4, copied fresh for each test."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert run_cli(*_train_args(data_dir, out, tiny, "distill", steps=4)).exit_code == 0
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()
    return out


def _copy_run(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "final")
    return run


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["no-trainer-state", "cut-weights", "empty-newer"])
def test_resume_skips_checkpoints_cut_off_while_saving(tmp_path, data_dir, tiny, finished_run, damage):
    import shutil

    run = _copy_run(finished_run, tmp_path)
    if damage == "no-trainer-state":
        (run / "checkpoint-4" / "trainer_state.json").unlink()
    elif damage == "cut-weights":
        weights = run / "checkpoint-4" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:  # the newest checkpoint's folder was made, then the kill came
        shutil.rmtree(run / "checkpoint-4")
        (run / "checkpoint-4").mkdir()
    resumed = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume"]))
    assert resumed.exit_code == 0, resumed.output
    assert "Skipping checkpoint-4" in resumed.output and "resuming from checkpoint-2" in resumed.output
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss" in x]
    assert steps == sorted(set(steps)) and steps[-1] == 4  # no step logged twice
    assert (run / "final" / "model.safetensors").is_file()


@pytest.mark.integration
def test_a_run_with_only_a_cut_off_checkpoint_restarts_cleanly(tmp_path, data_dir, tiny, finished_run):
    import shutil

    run = _copy_run(finished_run, tmp_path)
    shutil.rmtree(run / "checkpoint-4")
    (run / "checkpoint-2" / "trainer_state.json").unlink()  # killed while saving the first checkpoint
    resumed = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume"]))
    assert resumed.exit_code == 1 and "no checkpoint to resume from (checkpoint-2: cut off" in resumed.output
    fresh = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4))
    assert fresh.exit_code == 0, fresh.output
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3, 4]  # the dead run's lines are gone


@pytest.mark.integration
def test_resume_refuses_settings_that_change_the_run(tmp_path, data_dir, tiny, finished_run):
    run = _copy_run(finished_run, tmp_path)
    changed = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume", "--lr", "2e-3"]))
    assert changed.exit_code == 1 and "lr: 0.001 -> 0.002" in changed.output
    bf16 = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume", "--precision", "bf16"]))
    assert bf16.exit_code == 1 and "precision: 'mixed' -> 'bf16'" in bf16.output
    standard = run_cli(*_train_args(data_dir, run, tiny, "standard", steps=4, extra=["--resume"]))
    assert standard.exit_code == 1 and "objective: 'distill' -> 'standard'" in standard.output
    trainer_arg = ["--resume", "--trainer-arg", "max_grad_norm=0.5"]
    other = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=trainer_arg))
    assert other.exit_code == 1 and "trainer_args: {} -> {'max_grad_norm': 0.5}" in other.output
    harmless = _train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume", "--max-new-tokens", "4"])
    assert run_cli(*harmless).exit_code == 0
    alone = run_cli("train", "--out", run, "--resume")  # without retyping: data and settings from run.json
    assert alone.exit_code == 0, alone.output
    settings = json.loads((run / "run.json").read_text())["settings"]
    assert settings["lr"] == 0.001 and settings["alpha"] == 0.7 and settings["max_steps"] == 4
    still_checked = run_cli("train", "--out", run, "--resume", "--alpha", "0.2")
    assert still_checked.exit_code == 1 and "alpha: 0.7 -> 0.2" in still_checked.output


def test_missing_tracker_and_held_run_dir_fail_before_anything_is_created(tmp_path, data_dir, tiny):
    import importlib.util
    import os

    from distil_cli.data.guard import OutputLock

    out = tmp_path / "run"
    if importlib.util.find_spec("wandb") is None:
        result = run_cli(*_train_args(data_dir, out, tiny, "distill", extra=["--report-to", "wandb"]))
        assert result.exit_code == 1 and "pip install 'distil-cli[wandb]'" in result.output
        assert not out.exists()
    if importlib.util.find_spec("comet_ml") is None:  # no distil extra for it: the package's own name
        result = run_cli(*_train_args(data_dir, out, tiny, "distill", extra=["--report-to", "comet_ml"]))
        assert result.exit_code == 1 and "pip install comet-ml" in result.output and "distil-cli[" not in result.output
    unknown = run_cli(*_train_args(data_dir, out, tiny, "distill", extra=["--report-to", "tensorbord"]))
    assert unknown.exit_code == 1 and "not a tracker transformers knows" in unknown.output and not out.exists()
    with OutputLock(out):
        result = run_cli(*_train_args(data_dir, out, tiny, "distill"))
    assert result.exit_code == 1 and f"(pid {os.getpid()})" in result.output and not out.exists()
    inside = run_cli(*_train_args(data_dir, data_dir / "run", tiny, "distill"))
    assert inside.exit_code == 1 and "lies inside the input" in inside.output


def test_missing_rationale_says_never_annotated_or_annotated_but_empty(tokenizer):
    formatter = choose_formatter(tokenizer)
    never = [{"id": "a", "lang": "en", "input": "x", "output": "y"}]
    with pytest.raises(DataError, match="record a: no 'rationale' for distill training \\(never annotated\\)"):
        build_examples(never, tokenizer, formatter, "distill", 64, 16)
    empty = [{**never[0], "rationale": "", "annotation": {"flags": ["empty", "truncated"]}}]
    with pytest.raises(DataError, match="record a: its rationale is empty \\(annotated, empty/truncated\\)"):
        build_examples(empty, tokenizer, formatter, "distill", 64, 16)


def test_long_rationale_is_cropped_skipped_or_an_error(tokenizer):
    formatter = choose_formatter(tokenizer)
    records = [{"id": "a", "lang": "en", "input": "x", "output": "short", "rationale": "word " * 200}]
    cropped = build_examples(records, tokenizer, formatter, "distill", 64, 16, long_rationale="crop")
    rationale = cropped.examples[1]
    supervised = [t for t, label in zip(rationale["input_ids"], rationale["labels"]) if label != IGNORE]
    assert len(supervised) == 17 and tokenizer.decode(supervised[-1:]) == formatter.end_of_turn
    assert cropped.long_rationales == 1
    skipped = build_examples(records, tokenizer, formatter, "distill", 64, 16, long_rationale="skip")
    assert [e["task"] for e in skipped.examples] == [0] and skipped.long_rationales == 1
    with pytest.raises(DataError, match="exceeds max_output_tokens=16"):
        build_examples(records, tokenizer, formatter, "distill", 64, 16, long_rationale="error")


@pytest.mark.integration
def test_trainer_args_pass_through_and_are_checked(tmp_path, data_dir, tiny):
    out = tmp_path / "run"
    extra = ["--trainer-arg", "max_grad_norm=0.25", "--trainer-arg", "lr_scheduler_type=linear"]
    result = run_cli(*_train_args(data_dir, out, tiny, "standard", steps=1, extra=extra))
    assert result.exit_code == 0, result.output
    args = torch.load(out / "checkpoint-1" / "training_args.bin", weights_only=False)
    assert args.max_grad_norm == 0.25 and getattr(args.lr_scheduler_type, "value", None) == "linear"
    assert args.accelerator_config.non_blocking  # batches go to the GPU asynchronously (pinned by the loader)
    for arg, message in (
        ("max_grad_nrom=1", "is not a TrainingArguments field; did you mean max_grad_norm"),
        ("learning_rate=1", "distil sets it from --lr"),
    ):
        bad = run_cli(*_train_args(data_dir, tmp_path / "bad", tiny, "standard", steps=1, extra=["--trainer-arg", arg]))
        assert bad.exit_code == 1 and message in bad.output and not (tmp_path / "bad").exists()


@pytest.mark.integration
def test_report_to_tensorboard_writes_event_files(tmp_path, data_dir, tiny):
    out = tmp_path / "run"
    result = run_cli(*_train_args(data_dir, out, tiny, "distill", steps=2, extra=["--report-to", "tensorboard"]))
    assert result.exit_code == 0, result.output
    events = list(out.rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


@pytest.mark.integration
def test_two_processes_match_one_process_with_packed_batches(tmp_path, data_dir, tiny):
    """The packed default under DDP (CPU gloo): 2 processes x 1 batch a step == 1 process x 2 accumulated batches,
    and a two-process run resumed from its checkpoint reaches the same weights.

    accelerate gives rank r the batches r, r + 2, ... of the same sampler, so both see the same global
    batches; the per-task means are over each task's tokens of the whole global batch, not means of means.
    """
    import shutil
    import subprocess
    import sys

    common = ["--model", str(tiny), "--max-steps", "2", "--eval-steps", "1", "--lr", "1e-3"]
    common += ["--max-new-tokens", "4", "--tokens-per-batch", "300", "--save-checkpoints"]
    single = run_cli("train", data_dir, "--out", tmp_path / "one", "--grad-accum", 2, *common)
    assert single.exit_code == 0, single.output
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}

    def torchrun(*args: str) -> None:  # torchrun as a user types it; --standalone: a free port of its own
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cmd += ["-m", "distil_cli", "train", str(data_dir), "--out", str(tmp_path / "two"), *map(str, common), *args]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    torchrun()

    def lines(run):
        return [x for x in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in x]

    one, two = lines(tmp_path / "one"), lines(tmp_path / "two")
    assert [x["step"] for x in one] == [x["step"] for x in two] == [1, 2]
    for a, b in zip(one, two):
        for key in ("loss", "loss_pred", "loss_expl"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
    from safetensors.torch import load_file

    a, b = (
        load_file(tmp_path / "one" / "final" / "model.safetensors"),
        load_file(tmp_path / "two" / "final" / "model.safetensors"),
    )
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    shutil.rmtree(tmp_path / "two" / "checkpoint-2")  # killed after step 1's checkpoint
    shutil.rmtree(tmp_path / "two" / "final")
    torchrun("--resume")
    resumed = load_file(tmp_path / "two" / "final" / "model.safetensors")
    for key in b:
        torch.testing.assert_close(resumed[key], b[key], rtol=1e-4, atol=1e-6)


def test_resuming_a_run_killed_after_its_last_checkpoint_takes_no_extra_step(tmp_path, data_dir, tiny, finished_run):
    from safetensors.torch import load_file

    run = _copy_run(finished_run, tmp_path)  # checkpoint-4 is the last step; final/ was never written
    resumed = run_cli(*_train_args(data_dir, run, tiny, "distill", steps=4, extra=["--resume"]))
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "run.json").read_text())["global_steps"] == 4
    assert not (run / "checkpoint-5").exists()
    final, last = load_file(run / "final" / "model.safetensors"), load_file(run / "checkpoint-4" / "model.safetensors")
    for key in final:
        torch.testing.assert_close(final[key], last[key])


@pytest.mark.integration
def test_extending_a_finished_run_continues_its_steps_and_records_it(tmp_path, data_dir, tiny, finished_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)  # finished: final/ and checkpoint-4, the last step
    alone = run_cli("train", "--out", run, "--extend-steps", "2")
    assert alone.exit_code == 1 and "--extend-steps 2 continues a run: pass --resume" in alone.output
    extended = run_cli("train", "--out", run, "--resume", "--extend-steps", "2")
    assert extended.exit_code == 0, extended.output
    record = json.loads((run / "run.json").read_text())
    assert record["global_steps"] == 6 and record["settings"]["max_steps"] == 6
    assert record["extensions"] == [{"planned_steps": 4, "steps": 6, "resumed_at_step": 4, "changed": ["max_steps"]}]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6]  # nothing logged twice, nothing lost
    rates = {x["step"]: x["learning_rate"] for x in lines if "learning_rate" in x}
    assert rates[6] > 0  # the schedule was recomputed for 6 steps: it does not sit at its old end (0)
    card = (run / "final" / "README.md").read_text()
    assert "Extended on resume: planned 4 steps, continued to 6 from step 4" in card
    shorter = run_cli("train", "--out", run, "--resume", "--max-steps", "5")
    assert shorter.exit_code == 1 and "max_steps: 6 -> 5" in shorter.output
    again = run_cli("train", "--out", run, "--resume")  # the extended run resumes as it is now: finished
    assert again.exit_code == 0, again.output
    assert json.loads((run / "run.json").read_text())["extensions"] == record["extensions"]


def test_a_resume_may_lengthen_a_run_by_its_epochs_or_steps_never_shorten_it():
    from distil_cli.train.resume import _longer

    assert _longer("epochs", {"epochs": 3.0}, {"epochs": 5.0, "max_steps": None})
    assert not _longer("epochs", {"epochs": 3.0}, {"epochs": 2.0, "max_steps": None})
    assert not _longer("epochs", {"epochs": 3.0}, {"epochs": 5.0, "max_steps": 10})  # max_steps decides
    assert _longer("max_steps", {"max_steps": None}, {"max_steps": 10})  # the steps then decide (extension)
    assert _longer("max_steps", {"max_steps": 4}, {"max_steps": 6})
    assert not _longer("max_steps", {"max_steps": 6}, {"max_steps": None})


def test_default_epochs_follow_the_training_set_size():
    from distil_cli.settings import TrainSettings
    from distil_cli.train.config import with_epochs

    assert with_epochs(TrainSettings(), 292).epochs == 6
    assert with_epochs(TrainSettings(), 2000).epochs == 6
    assert with_epochs(TrainSettings(), 2001).epochs == 3
    assert with_epochs(TrainSettings(epochs=1.5), 100).epochs == 1.5  # what the user set wins


def test_one_process_never_splits_batches_over_gpus(tmp_path, caplog, monkeypatch):
    """One process on a host with several GPUs trains on one, and says so.

    transformers wraps the model in nn.DataParallel there, which splits every tensor argument
    along its first dimension: on an H200 x2 the packed batch's logits_to_keep came out halved
    (a crash in the loss) and its varlen sequence lengths too (wrong attention).
    """
    from conftest import tiny_model_and_tokenizer
    from transformers import Trainer, TrainingArguments
    from transformers.training_args import ParallelMode

    from distil_cli.train import config
    from distil_cli.train.trainer import DistilTrainer

    model, _ = tiny_model_and_tokenizer()
    plain = TrainingArguments(output_dir=str(tmp_path / "plain"), report_to=[], use_cpu=True)
    ours = config.DistilTrainingArguments(output_dir=str(tmp_path / "ours"), report_to=[], use_cpu=True)
    for args in (plain, ours):
        assert args.n_gpu == 0  # (sets the devices up)
        args._n_gpu = 2  # what transformers' device set-up finds on a host with two GPUs, without torchrun
    assert isinstance(Trainer(model=model, args=plain)._wrap_model(model), torch.nn.DataParallel)  # the hazard
    assert DistilTrainer(model=model, args=ours)._wrap_model(model) is model
    assert ours.n_gpu == 1 and ours.parallel_mode == ParallelMode.NOT_PARALLEL
    assert ours.train_batch_size == ours.per_device_train_batch_size  # not multiplied by the GPUs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(config, "_SAID_GPUS", [])
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun each process has its own GPU: nothing to say
    with caplog.at_level("WARNING", logger="distil_cli.train.config"):
        config.warn_several_gpus()
    assert caplog.text == ""
    monkeypatch.setenv("WORLD_SIZE", "1")
    with caplog.at_level("WARNING", logger="distil_cli.train.config"):
        for _ in range(3):  # an experiment trains many runs in one process: said once
            config.warn_several_gpus()
    assert caplog.text.count("2 GPUs are visible to this one process: it trains on the first only") == 1
    assert "torchrun --nproc_per_node 2" in caplog.text


@pytest.mark.integration
def test_select_best_by_the_tasks_own_metric(tmp_path, data_dir, tiny):
    out = tmp_path / "run"
    extra = ["--select", "best", "--select-metric", "exact"]
    result = run_cli(*_train_args(data_dir, out, tiny, "distill", steps=4, extra=extra))
    assert result.exit_code == 0, result.output
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if "eval_exact_match" in x]
    assert len(evals) == 2 and all(0 <= e["eval_exact_match"] <= 100 for e in evals)
    selected = json.loads((out / "run.json").read_text())["selected"]
    assert selected["rule"] == "best" and "highest eval exact_match" in selected["why"]
    unknown = run_cli(*_train_args(data_dir, tmp_path / "x", tiny, "distill", extra=["--select-metric", "bleu"]))
    assert unknown.exit_code == 1 and "unknown metric 'bleu'" in unknown.output and not (tmp_path / "x").exists()


@pytest.mark.integration
def test_a_system_prompt_is_trained_with_and_reused_by_infer(tmp_path, data_dir, tiny):
    from distil_cli.generate.infer import answer
    from distil_cli.settings import InferSettings

    out = tmp_path / "run"
    extra = ["--system-prompt", "Be terse.", "--formatter", "chatml"]
    result = run_cli(*_train_args(data_dir, out, tiny, "standard", steps=1, extra=extra))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["system_prompt"] == "Be terse."
    shown = run_cli("train", data_dir, "--model", tiny, "--inspect", 1, *extra, env={"COLUMNS": "200"})
    assert "<|im_start|>system" in shown.output and "Be terse.<|im_end|>" in shown.output  # (in a panel)
    found = answer(str(out), "Fever.", InferSettings(max_new_tokens=2), tmp_path)
    assert found["prompt"].startswith("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\n")


@pytest.mark.integration
def test_a_recipe_file_alone_reproduces_a_run(tmp_path, data_dir, tiny):
    """config export RUN_DIR writes the run's settings (data and out included) as YAML; `train --config` with it
    and a new --out trains the same run (HF's --output_dir spelling works too)."""
    first = tmp_path / "first"
    result = run_cli(*_train_args(data_dir, first, tiny, "distill", steps=2))
    assert result.exit_code == 0, result.output
    exported = run_cli("config", "export", first)
    assert exported.exit_code == 0, exported.output
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(exported.stdout)
    second = tmp_path / "second"
    again = run_cli("--config", recipe, "train", "--output_dir", second)
    assert again.exit_code == 0, again.output
    a, b = (json.loads((d / "run.json").read_text()) for d in (first, second))
    assert {k: v for k, v in a["settings"].items() if k != "out"} == {
        k: v for k, v in b["settings"].items() if k != "out"
    }
    assert a["data_manifest_sha256"] == b["data_manifest_sha256"] and a["global_steps"] == b["global_steps"] == 2
    no_data = run_cli("train", "--out", tmp_path / "x")
    assert no_data.exit_code != 0 and "give the prepared folder DATA" in no_data.output


def test_the_same_seed_draws_the_same_lora_adapter(tiny, tokenizer):
    import torch

    from distil_cli.train.run import load_model

    cfg = TrainSettings(model=str(tiny), lora=True, lora_r=4, seed=7)

    def adapter():
        torch.manual_seed(torch.seed())  # whatever the global generator held before
        model, _ = load_model(str(tiny), cfg, tokenizer)
        return {k: v.clone() for k, v in model.named_parameters() if "lora_A" in k}

    first, second = adapter(), adapter()
    assert first and all(torch.equal(first[k], second[k]) for k in first)


def test_qlora_without_bitsandbytes_is_a_one_line_error(monkeypatch):
    import sys

    from distil_cli.train.adapters import quantization

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"--load-in-4bit needs bitsandbytes: pip install 'distil-cli\[qlora\]'"):
        quantization(TrainSettings(lora=True, load_in_4bit=True))
    assert quantization(TrainSettings(lora=True)) == {}  # no 4-bit, nothing imported
