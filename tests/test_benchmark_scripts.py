"""The scripts behind docs/method.md's pooled numbers and forest plot, against `distil experiment`'s own tables."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    if str(ROOT / "benchmarks") not in sys.path:  # as when run: a script imports its neighbours
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def experiment(grid) -> Path:
    """The finished grid of conftest (trained once per test run); these tests only read it."""
    return grid[1]


@pytest.mark.integration
def test_pooling_seeds_kept_in_two_folders_gives_the_experiments_own_comparison(experiment, tmp_path):
    for seed, folder in ((1, "first"), (2, "second")):  # each seed's predictions in its own experiment folder
        target = tmp_path / folder / "runs" / "f0.5" / f"s{seed}"
        target.mkdir(parents=True)
        for arm in ("standard", "distill-a0.5"):
            shutil.copy(experiment / "runs" / "f0.5" / f"s{seed}" / f"{arm}.jsonl", target)
    args = [tmp_path / "first", tmp_path / "second", "--fraction", "0.5", "--arm", "distill-a0.5", "--resamples", "200"]
    done = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "pool_seeds.py", *args], capture_output=True, text=True, check=True
    )
    pooled = json.loads(done.stdout)
    (own,) = [p for p in json.loads((experiment / "results.json").read_text())["pairs"] if p["fraction"] == 0.5]
    assert pooled["seeds"] == ["first/s1", "second/s2"] and pooled["n_test"] == 10
    assert [s["diff"] for s in pooled["per_seed"]] == [s["diff"] for s in own["per_seed"]]
    assert pooled["pooled"]["diff"] == own["pooled"]["diff"]
    assert pooled["across_seeds"] == own["across_seeds"]  # from the same per-seed differences


@pytest.mark.integration
def test_pooling_against_baselines_kept_in_other_folders_pairs_them_seed_by_seed(experiment, tmp_path):
    """--baseline-dirs: the arm from one experiment, the baseline of the same seed from another (as when
    one arm was trained with two instruction pairs in two experiments); the arm's own folder is ignored."""
    for seed in (1, 2):
        source = experiment / "runs" / "f0.5" / f"s{seed}"
        for folder, arm in (("arms", "distill-a0.5"), ("bases", "standard")):
            target = tmp_path / folder / "runs" / "f0.5" / f"s{seed}"
            target.mkdir(parents=True)
            shutil.copy(source / f"{arm}.jsonl", target)
        shutil.copy(source / "distill-a0.5.jsonl", tmp_path / "arms" / "runs" / "f0.5" / f"s{seed}" / "standard.jsonl")

    def pool(*args):
        done = subprocess.run(
            [sys.executable, ROOT / "benchmarks" / "pool_seeds.py", tmp_path / "arms", "--fraction", "0.5",
             "--resamples", "200", *args], capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(done.stdout)

    (own,) = [p for p in json.loads((experiment / "results.json").read_text())["pairs"] if p["fraction"] == 0.5]
    across = pool("--arm", "distill-a0.5", "--baseline-dirs", tmp_path / "bases")
    assert across["seeds"] == ["arms/s1", "arms/s2"]
    assert [s["diff"] for s in across["per_seed"]] == [s["diff"] for s in own["per_seed"]]
    assert across["pooled"]["diff"] == own["pooled"]["diff"]
    # without --baseline-dirs the arm's folder's "standard" (here a copy of distill) is the baseline
    assert pool("--arm", "distill-a0.5")["pooled"]["diff"] == 0
    # the same arm name on both sides: arms' "standard" (distill's predictions) against bases' standard
    assert pool("--arm", "standard", "--baseline-dirs", tmp_path / "bases")["pooled"]["diff"] == own["pooled"]["diff"]
    # bad input: one line naming the folder, or what was looked for and where
    script, arms, bases = ROOT / "benchmarks" / "pool_seeds.py", tmp_path / "arms", tmp_path / "bases"
    args = ["--fraction", "0.25", "--arm", "x"]  # a fraction the folder does not have
    wrong = subprocess.run([sys.executable, script, arms, *args], capture_output=True, text=True)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == f"{arms}: no runs/f0.25 folder: give `distil experiment --out` folders"
    args = ["--fraction", "0.5", "--arm", "distill-a0.5", "--baseline", "nope", "--baseline-dirs", bases]
    missing = subprocess.run([sys.executable, script, arms, *args], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"no seed has both distill-a0.5 and nope (baseline from {bases}) at fraction 0.5"


def test_the_forest_plot_reads_the_experiments_markdown(experiment, tmp_path):
    forest = _script("method_forest")
    shutil.copy(experiment / "results.md", tmp_path / "2026-01-01_cqa_tiny_next.md")  # a name the plot labels
    rows = [r for r in forest.rows(tmp_path) if r[0] == ("cqa_tiny_next", "distill-a0.5")]
    pairs = json.loads((experiment / "results.json").read_text())["pairs"]  # fractions 0.5 and 1, in order
    assert len(rows) == len(pairs) == 2
    for (_, diff, low, high, seeds), own in zip(rows, pairs):
        assert diff == pytest.approx(own["pooled"]["diff"], abs=0.006)  # the markdown shows two decimals
        assert [low, high] == pytest.approx(own["pooled"]["ci"], abs=0.006)
        assert list(seeds) == pytest.approx(own["across_seeds"]["ci"], abs=0.02)  # from the rounded seeds
    shutil.copy(experiment / "results.md", tmp_path / "2026-01-02_cqa_full_verbs.md")  # one of today's defaults
    today = [r[0] for r in forest.rows(tmp_path) if r[0] in forest.DEFAULTS]
    assert today == [("cqa_full_verbs", "distill-a0.5")] * 2  # the defaults plot takes it, not cqa_tiny_next
    forest.main(str(tmp_path), str(tmp_path / "forest.png"), str(tmp_path / "defaults.png"))
    assert (tmp_path / "forest.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "defaults.png").read_bytes()[:4] == b"\x89PNG"


def test_the_forest_plot_names_a_comparison_with_another_baseline_in_full(tmp_path):
    """An ablation pair such as distill-e10 - standard-e10 is labelled by the whole pair; the same file's
    distill-e10 - standard (other epochs) is not plotted."""
    forest = _script("method_forest")
    seeds = "+0.74 [-1.23, +2.70]; -0.20 [-2.38, +2.13]"
    (tmp_path / "2026-01-01_cqa_tiny_e10.md").write_text(
        f"| 0.03 | distill-e10 - standard | +0.27 [-0.56, +1.13] | 0.578 | +0.27 [-0.44, +0.98] | {seeds} |\n"
        f"| 0.03 | distill-e10 - standard-e10 | -0.14 [-1.02, +0.74] | 0.794 | -0.14 [-1.52, +1.24] | {seeds} |\n",
        encoding="utf-8",
    )
    rows = forest.rows(tmp_path)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (("cqa_tiny_e10", "distill-e10 - standard-e10"), -0.14, -1.02, 0.74)
    ]


@pytest.mark.parametrize("spec", sorted((ROOT / "benchmarks" / "experiments").glob("*.toml")), ids=lambda p: p.stem)
def test_every_spec_the_docs_report_loads_with_valid_arms(spec):
    from distil_cli.experiment.spec import load_spec
    from distil_cli.settings import TrainSettings

    plan = load_spec(spec)
    for arm in plan.all_arms():
        plan.train_settings(TrainSettings(), arm, plan.seeds[0])
    assert len(set(plan.seeds)) == len(plan.seeds)


def test_choice_likelihood_scores_each_answer_token_after_its_context(tmp_path):
    """cqa_choice_loglik.py: the per-token NLL of a tail equals transformers' own loss over those labels, the
    accuracy is the share of records whose highest-scored choice is the answer, and a bad record is one line."""
    import torch
    from conftest import tiny_model_and_tokenizer

    from distil_cli.plugins.choosing import choose_formatter

    script = _script("cqa_choice_loglik")
    model, tokenizer = tiny_model_and_tokenizer()
    context, tail = tokenizer("Q: where are fish?\nAnswer:")["input_ids"], tokenizer(" in water")["input_ids"]
    labels = torch.tensor([[-100] * len(context) + tail])
    with torch.no_grad():
        expected = model(torch.tensor([context + tail]), labels=labels).loss.item()
    nll = script.tail_nll(model, context, tail)
    assert len(nll) == len(tail) and sum(nll) / len(nll) == pytest.approx(expected, rel=1e-5)

    record = {"input": "Q: where are fish?\nAnswer Choices:\n(a) water\n(b) sky", "output": ""}
    formatter = choose_formatter(tokenizer)
    scores = {}
    for choice in ("water", "sky"):
        ids = tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
        scores[choice] = -sum(script.tail_nll(model, tokenizer("Question: where are fish?\nAnswer:")["input_ids"], ids))
    best = max(scores, key=lambda c: scores[c] / len(" " + c))
    records = [{**record, "output": best}, {**record, "output": "sky" if best == "water" else "water"}]
    assert script.choice_accuracy(model, tokenizer, formatter, records, "plain", "Respond.") == 50.0

    context = tokenizer(formatter.format("Respond.", "Q: where are fish?").prompt, add_special_tokens=False)
    scores = {c: -sum(script.tail_nll(model, context["input_ids"], tokenizer(c, add_special_tokens=False)["input_ids"]))
              for c in ("water", "sky")}  # fmt: skip
    best = max(scores, key=lambda c: scores[c] / len(c))  # the question prompt lists no choices
    records = [{**record, "output": best}, {**record, "output": "sky" if best == "water" else "water"}]
    assert script.choice_accuracy(model, tokenizer, formatter, records[:1], "question", "Respond.") == 100.0
    assert script.choice_accuracy(model, tokenizer, formatter, records[1:], "question", "Respond.") == 0.0
    shown = []
    real_format = formatter.format
    formatter.format = lambda instruction, text, *rest: shown.append(text) or real_format(instruction, text, *rest)
    script.choice_accuracy(model, tokenizer, formatter, records[:1], "question", "Respond.")
    script.choice_accuracy(model, tokenizer, formatter, records[:1], "distil", "Respond.")
    assert shown == ["Q: where are fish?", record["input"]]

    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps(records[0]) + "\n" + json.dumps({"input": "no output"}) + "\n")
    with pytest.raises(SystemExit, match=r"test.jsonl line 2: not a record with input and output"):
        script.read_records(data, 5)
    assert script.read_records(data, 1) == records[:1]
    with pytest.raises(SystemExit, match=r": not a model folder \("):
        script.tokenizer_and_formatter(tmp_path, "")


def test_reference_loop_supervises_only_the_target_and_lowers_its_loss(tmp_path):
    """reference_loop.py, the control for distil train: labels -100 on the prompt and the padding, the
    attention mask off on the padding, and a few AdamW steps on one batch lower transformers' own loss."""
    import argparse

    import torch
    from conftest import tiny_model_and_tokenizer

    from distil_cli.plugins.choosing import choose_formatter

    script = _script("reference_loop")
    model, tokenizer = tiny_model_and_tokenizer()
    formatter = choose_formatter(tokenizer)
    records = [{"input": "Q: where are fish?", "output": "in water"}, {"input": "Q: sky?", "output": "blue"}]
    examples = [script.encode(tokenizer, formatter, r) for r in records]
    for record, (ids, labels) in zip(records, examples):
        prompt = tokenizer(formatter.format(script.INSTRUCTION, record["input"]).prompt, add_special_tokens=False)
        n = len(prompt["input_ids"])
        assert labels[:n] == [-100] * n and labels[n:] == ids[n:] and ids[:n] == prompt["input_ids"]
    ids, labels = script.encode_plain(tokenizer, {"input": "Q: where are fish?", "output": "in water"})
    prompt = tokenizer("Question: where are fish?\nAnswer:")["input_ids"]
    assert ids[: len(prompt)] == prompt and labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) :] == ids[len(prompt) :] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[len(prompt) : -1]) == " in water"
    batch = script.batch_tensors(examples, pad=0, device="cpu")
    short = min(range(2), key=lambda i: len(examples[i][0]))
    width, length = batch["input_ids"].shape[1], len(examples[short][0])
    assert length < width
    assert batch["attention_mask"][short, length:].eq(0).all() and batch["labels"][short, length:].eq(-100).all()
    assert batch["attention_mask"][short, :length].eq(1).all()

    with torch.no_grad():
        before = model(**batch).loss.item()
    args = argparse.Namespace(steps=8, batch=2, lr=1e-2, warmup=0.0, seed=1, max_grad_norm=1.0)  # one batch
    losses = script.train(model.train(), examples, args, pad=0, device="cpu")
    assert len(losses) == 8 and losses[0] == pytest.approx(before, rel=1e-4) and max(losses[-3:]) < 0.8 * before

    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps(records[0]) + "\n[1, 2]\n")
    with pytest.raises(SystemExit, match=r"train.jsonl line 2: not a record with input and output"):
        script.read_records(data, 0)
    assert script.read_records(data, 1) == records[:1]


def test_determinism_compares_repeats_tensor_by_tensor(tmp_path):
    """determinism.py: identical weights are reported identical; one element changed in one tensor is
    found, with its size; a variant is NAME=flags, split as a shell would."""
    import torch
    from safetensors.torch import save_file

    script = _script("determinism")
    weights = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(4, dtype=torch.bfloat16)}
    for name in ("r1", "r2", "r3"):
        (tmp_path / name).mkdir()
        save_file(weights, tmp_path / name / "model.safetensors")
    changed = torch.tensor([1.0, 1.0, 1.0, 1.25], dtype=torch.bfloat16)
    save_file({**weights, "b": changed}, tmp_path / "r3" / "model.safetensors")
    same = script.compare([tmp_path / "r1", tmp_path / "r2"])
    assert same["identical"] and same["tensors"] == 2 and same["tensors_differing"] == 0
    differ = script.compare([tmp_path / "r1", tmp_path / "r2", tmp_path / "r3"])
    assert not differ["identical"] and differ["tensors_differing"] == 1 and differ["max_abs_diff"] == 0.25
    assert differ["identical_tensors"] == ["a"]
    assert "DIFFER: 1/2 tensors" in script.line({"variant": "v", "seconds": 1.0, **differ})
    assert script.parse_variant("det=--trainer-arg full_determinism=true --kernels 'none'") == (
        "det",
        ["--trainer-arg", "full_determinism=true", "--kernels", "none"],
    )
    assert script.parse_variant("plain=") == ("plain", [])
    with pytest.raises(SystemExit, match="expected NAME=flags"):
        script.parse_variant("--kernels none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no .safetensors weights"):
        script.compare([tmp_path / "empty", tmp_path / "r1"])


@pytest.mark.integration
def test_determinism_reports_a_failed_variant_by_its_last_line_and_keeps_the_logs(tmp_path):
    """A variant whose `distil train` fails is reported with the run's last line (run side by side, each
    run's output in a log file beside it), not compared."""
    import argparse

    script = _script("determinism")
    data = tmp_path / "data"
    data.mkdir()
    args = argparse.Namespace(
        model="default", data=data, out=tmp_path / "out", steps=1, repeats=2, seed=1, parallel=True
    )
    result = script.run_variant(args, "bad", ["--kernels", "nope"])
    assert "train.kernels" in result["error"] and "identical" not in result
    assert all("train.kernels" in (tmp_path / "out" / "bad" / f"r{k}.log").read_text() for k in (1, 2))
    assert "failed: error:" in script.line(result)


def test_the_scores_plot_takes_each_arms_mean_and_t_interval_over_the_chosen_seeds(tmp_path, monkeypatch):
    plot = _script("size_scores_plot")
    runs = [{"arm": arm, "seed": seed, "exact_match": score}
            for arm, scores in (("standard", [20.0, 22.0, 27.0, 90.0]), ("distill", [30.0, 31.0, 35.0, 0.0]))
            for seed, score in zip([1, 2, 3, 4], scores, strict=True)]  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"metric": "exact_match", "runs": runs}))
    mean, half, n = plot.arm_score(path, "standard", plot.seeds_of("1-3"))  # seed 4 left out
    assert (mean, n) == (23.0, 3) and half == pytest.approx(4.303 * statistics.stdev([20, 22, 27]) / math.sqrt(3))
    assert plot.arm_score(path, "distill", None)[2] == 4  # no SEEDS: every seed of the file
    with pytest.raises(SystemExit, match="arm 'distill' has 1 runs on those seeds"):
        plot.arm_score(path, "distill", plot.seeds_of("2"))
    # seeds of two experiments whose arms are named otherwise: joined with +, one arm name per file
    later = tmp_path / "later.json"
    later_runs = [
        {"arm": "standard-lr3e-5", "seed": 7, "exact_match": 40.0},
        {"arm": "standard", "seed": 8, "exact_match": 0.0},
    ]
    later.write_text(json.dumps({"metric": "exact_match", "runs": later_runs}))
    mean, half, n = plot.arm_score(f"{path}+{later}", "standard+standard-lr3e-5", plot.seeds_of("1-7"))
    assert (mean, n) == (statistics.mean([20, 22, 27, 90, 40]), 5)
    assert half == pytest.approx(2.776 * statistics.stdev([20, 22, 27, 90, 40]) / math.sqrt(5), rel=1e-3)
    with pytest.raises(SystemExit, match="seed 1 of arm 'standard' is in an earlier file too"):
        plot.arm_score(f"{path}+{path}", "standard", None)
    with pytest.raises(SystemExit, match="2 files but 3 arm names"):
        plot.arm_score(f"{path}+{later}", "a+b+c", None)
    out = tmp_path / "scores.png"
    monkeypatch.setattr(
        sys, "argv", ["size_scores_plot", str(out), "--group", f"A, lr 1e-4|CQA|{path}|standard|distill|1-3"]
    )
    plot.main()
    assert out.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(sys, "argv", ["size_scores_plot", str(tmp_path / "bad.png"), "--group", f"A|CQA|{path}"])
    with pytest.raises(SystemExit, match="give LABEL\\|TASK"):
        plot.main()
    assert not (tmp_path / "bad.png").exists()


def test_the_size_plot_reads_pairs_of_a_results_json_and_pooled_jsons(tmp_path, monkeypatch):
    plot = _script("size_plot")
    pair = {
        "arm": "distill-a0.5",
        "baseline": "standard",
        "pooled": {"diff": 1.5, "ci": [0.5, 2.5]},
        "per_seed": [1, 2],
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"pairs": [pair]}))
    pooled = tmp_path / "pooled.json"
    pooled.write_text(json.dumps({"pooled": {"diff": -0.5, "ci": [-1.0, 0.1]}, "seeds": ["a/s1", "a/s2", "b/s3"]}))
    assert plot.pooled(results, "distill-a0.5", "standard") == (1.5, 0.5, 2.5, 2)
    assert plot.pooled(pooled, "any", "any") == (-0.5, -1.0, 0.1, 3)  # a pooled JSON holds one pair
    with pytest.raises(SystemExit, match="no pair distill-a0.3 - standard"):
        plot.pooled(results, "distill-a0.3", "standard")
    two = tmp_path / "two.json"  # one spec, two fractions: the same pair twice
    two.write_text(json.dumps({"pairs": [{**pair, "fraction": 0.03}, {**pair, "fraction": 0.125, "per_seed": [1]}]}))
    with pytest.raises(SystemExit, match="at fractions 0.03, 0.125: add \\|FRACTION"):
        plot.pooled(two, "distill-a0.5", "standard")
    assert plot.pooled(two, "distill-a0.5", "standard", 0.125)[3] == 1
    with pytest.raises(SystemExit, match="no pair distill-a0.5 - standard at fraction 0.25"):
        plot.pooled(two, "distill-a0.5", "standard", 0.25)
    out = tmp_path / "size.png"
    points = [f"A|CQA|292|{results}|distill-a0.5|standard", f"A|CQA|1218|{pooled}|x|y", f"B|SVAMP|789|{pooled}|x|y",
              f"B|CQA|292|{two}|distill-a0.5|standard|0.03"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["size_plot", str(out), *[a for p in points for a in ("--point", p)]])
    plot.main()
    assert out.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(sys, "argv", ["size_plot", str(tmp_path / "bad.png"), "--point", f"A|CQA|many|{results}|x|y"])
    with pytest.raises(SystemExit, match="give STUDENT\\|TASK\\|RECORDS"):
        plot.main()
    monkeypatch.setattr(sys, "argv", ["size_plot", str(tmp_path / "bad.png"), "--point", f"A|CQA|9|{two}|x|y|half"])
    with pytest.raises(SystemExit, match="FRACTION in \\(0, 1\\]"):
        plot.main()
    assert not (tmp_path / "bad.png").exists()
