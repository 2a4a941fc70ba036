"""`distil score`: ROUGE values, languages, bootstrap, paired comparison, formats, bad input."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from distil_cli.errors import DataError
from distil_cli.evaluate.metrics import UnicodeTokenizer, score_pair, split_sentences
from distil_cli.evaluate.runs import bootstrap_ci, compare, load_run


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


REFS = {
    "en-1": ("en", "The patient had fever. She recovered fully."),
    "en-2": ("en", "Acute appendicitis was treated surgically."),
    "fr-1": ("fr", "La patiente avait une fièvre élevée. Elle a guéri."),
    "es-1": ("es", "El paciente tenía fiebre alta. Se recuperó."),
}


def _preds(tmp_path, name, predictions, with_reference=True):
    rows = []
    for rid, text in predictions.items():
        row = {"id": rid, "lang": REFS[rid][0], "prediction": text}
        if with_reference:
            row["reference"] = REFS[rid][1]
        rows.append(row)
    return _write(tmp_path / f"{name}.jsonl", rows)


def test_identical_text_scores_100_and_mean_definition():
    scores = score_pair("The patient had fever. She recovered.", "The patient had fever. She recovered.")
    assert all(scores[k] == pytest.approx(100.0) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "rouge_mean"))
    s = score_pair("the cat sat on the mat", "the cat lay on a mat")
    assert s["rouge_mean"] == pytest.approx((s["rouge1"] + s["rouge2"] + s["rougeL"]) / 3)
    assert s["rouge1"] == pytest.approx(100 * 4 / 6)  # the, cat, on, mat of 6 tokens each


def test_offline_sentence_splitting_and_accent_aware_tokens():
    assert split_sentences("Le Dr. Martin a vu la patiente. Elle avait 39,5 °C de fièvre.", "fr") == [
        "Le Dr. Martin a vu la patiente.",
        "Elle avait 39,5 °C de fièvre.",
    ]
    assert len(split_sentences("Tenía fiebre. Se recuperó.", "es")) == 2
    assert len(split_sentences("Tinha febre. Recuperou.", "pt")) == 2
    assert UnicodeTokenizer(None).tokenize("Fièvre élevée") == ["fièvre", "élevée"]
    assert UnicodeTokenizer("fr").tokenize("fièvres élevées") == ["fievr", "élev"]  # Snowball French
    # rouge-score's default tokenizer splits accented words; the language option does not
    porter = score_pair("fièvre", "vre", "fr", "porter")["rouge1"]  # porter sees "fi" + "vre"
    language = score_pair("fièvre", "vre", "fr", "language")["rouge1"]
    assert porter > 0 and language == 0


def test_cli_per_language_and_json(tmp_path):
    path = _preds(tmp_path, "run", {k: v[1] for k, v in REFS.items()})
    result = run_cli("score", path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    langs = {row["lang"]: row for row in data["scores"]}
    assert set(langs) == {"all", "en", "es", "fr"} and langs["en"]["n"] == 2 and langs["all"]["n"] == 4
    assert all(row["rouge_mean"] == pytest.approx(100.0) for row in data["scores"])


def test_references_from_prepared_data_and_errors(tmp_path):
    refs = tmp_path / "data"
    refs.mkdir()
    _write(refs / "test.jsonl", [{"id": k, "lang": v[0], "input": "x", "output": v[1]} for k, v in REFS.items()])
    _write(refs / "train.jsonl", [{"id": "tr-1", "lang": "en", "input": "x", "output": "y"}])  # another split
    path = _preds(tmp_path, "noref", {"en-1": "The patient had fever.", "fr-1": ""}, with_reference=False)
    partial = run_cli("score", path, "--references", refs)
    assert partial.exit_code == 1
    assert "2 reference(s) without a prediction: en-2, es-1; finish the predictions" in partial.output
    assert "--allow-missing" in partial.output and "tr-1" not in partial.output  # train.jsonl is not scored
    as_json = run_cli("score", path, "--references", refs, "--allow-missing", "--format", "json")
    assert json.loads(as_json.stdout)["missing"] == {"noref": ["en-2", "es-1"]}
    # a narrow terminal: the note stays one line however long its path (it wrapped at 80 columns once)
    result = run_cli("score", path, "--references", refs, "--format", "csv", "--allow-missing", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert "2 reference(s) without a prediction: en-2, es-1 (not scored)" in result.output
    assert any(line.startswith("run,lang,n,rouge1") for line in result.output.splitlines())
    assert "1 empty prediction(s) scored as 0" in result.output
    fr = next(line for line in result.output.splitlines() if line.startswith("noref,fr,"))
    assert fr.split(",")[3] == "0.0"
    missing = run_cli("score", path)
    assert missing.exit_code == 1 and "no reference for 2 id(s)" in missing.output and "--references" in missing.output
    _write(tmp_path / "bad.jsonl", [{"id": "zz", "lang": "en", "prediction": "x"}])
    result = run_cli("score", tmp_path / "bad.jsonl", "--references", refs)
    assert result.exit_code == 1 and "no reference for 1 id(s) in --references: zz" in result.output
    _write(tmp_path / "lang.jsonl", [{"id": "en-1", "lang": "fr", "prediction": "x"}])
    result = run_cli("score", tmp_path / "lang.jsonl", "--references", refs)
    assert "language 'fr' but the reference says 'en'" in result.output
    (tmp_path / "torn.jsonl").write_text('{"id": "en-1", "prediction": "x", "reference": "y"}\n{"id": \n')
    result = run_cli("score", tmp_path / "torn.jsonl")
    assert result.exit_code == 1 and "torn.jsonl:2: malformed JSON" in result.output


def test_bootstrap_ci_brackets_mean_and_is_seeded():
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    low, high = bootstrap_ci(values, 500, seed=1)
    assert low < 35.0 < high and low >= 10 and high <= 60
    assert bootstrap_ci(values, 500, seed=1) == (low, high)


def test_paired_comparison(tmp_path):
    good = _preds(tmp_path, "good", {k: v[1] for k, v in REFS.items()})
    bad = _preds(tmp_path, "bad", {k: "unrelated words entirely" for k in REFS})
    a, b = load_run(bad, None, "porter"), load_run(good, None, "porter")
    rows = compare(a, b, 500, 0)
    overall = next(r for r in rows if r["lang"] == "all" and r["metric"] == "rouge_mean")
    assert overall["diff"] > 50 and overall["ci"] is None and overall["p_value"] is None  # n = 4: no CI
    many = {f"en-{i}": f"The patient {i} had fever. She recovered fully." for i in range(12)}
    good_many = _write(tmp_path / "gm.jsonl", [{"id": k, "prediction": v, "reference": v} for k, v in many.items()])
    bad_many = _write(
        tmp_path / "bm.jsonl", [{"id": k, "prediction": "unrelated", "reference": v} for k, v in many.items()]
    )
    rows = compare(load_run(bad_many, None, "porter"), load_run(good_many, None, "porter"), 500, 0)
    overall = next(r for r in rows if r["lang"] == "all" and r["metric"] == "rouge_mean")
    assert overall["diff"] > 50 and overall["ci"][0] > 0 and overall["p_value"] < 0.05
    partial = _preds(tmp_path, "partial", {"en-1": "x"})
    with pytest.raises(DataError, match="cover different ids: only in the first"):
        compare(a, load_run(partial, None, "porter"), 100, 0)
    result = run_cli("score", bad, "--compare", good, "--bootstrap", 200, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "paired difference" in result.output


def test_markdown_several_runs_and_plot(tmp_path):
    a = _preds(tmp_path, "a", {k: v[1] for k, v in REFS.items()})
    b = _preds(tmp_path, "b", {k: "fever" for k in REFS})
    result = run_cli("score", a, b, "--format", "markdown", "--bootstrap", 100, "--plot", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert "| a | all | 4 |" in result.output and "| b | all | 4 |" in result.output
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_with_plot_draws_both_runs(tmp_path, monkeypatch):
    from distil_cli import reports

    drawn = []
    monkeypatch.setattr(reports, "plot_scores", lambda rows, path, metric: drawn.extend(rows))
    a = _preds(tmp_path, "a", {k: v[1] for k, v in REFS.items()})
    b = _preds(tmp_path, "b", {k: "fever" for k in REFS})
    result = run_cli("score", a, "--compare", b, "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert {row["run"] for row in drawn} == {"a", "b"}


def test_bertscore_needs_local_model(tmp_path):
    path = _preds(tmp_path, "run", {"en-1": "x"})
    result = run_cli("score", path, "--bertscore-model", tmp_path / "nope")
    assert result.exit_code == 1 and "not a local model folder" in result.output


def test_bertscore_with_a_local_model(tmp_path):
    import os
    from pathlib import Path

    from distil_cli.evaluate.metrics import BertScorer
    from distil_cli.models import tiny_dir
    from distil_cli.settings import ModelsSettings

    folder = tiny_dir(Path(os.environ.get("DISTIL_MODELS__CACHE_DIR", ModelsSettings().cache_dir)))
    scorer = BertScorer(str(folder))
    same, other = scorer.f1(["The patient had fever.", "The patient had fever."], ["The patient had fever.", "Rash."])
    assert same == pytest.approx(100.0, abs=1e-3) and other < same
    path = _preds(tmp_path, "run", {"en-1": "The patient had fever. She recovered fully."})
    result = run_cli("score", path, "--bertscore-model", folder, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["scores"][0]["bertscore_f1"] == pytest.approx(100.0, abs=1e-3)
    # a registered metric like the others: named in --metric, through the Python API too
    from distil_cli import api

    scores = api.score([path, path], metric=["bertscore"], bertscore_model=str(folder))["scores"]
    assert [row["lang"] for row in scores] == ["all", "en", "all", "en"]  # both runs
    assert all(row["bertscore_f1"] == pytest.approx(100.0, abs=1e-3) for row in scores)
    none = run_cli("score", path, "--metric", "bertscore")
    assert none.exit_code == 1 and "metric bertscore needs a local encoder folder" in none.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "prediction": NaN, "reference": "x"}', "'prediction' must be text, not float"),
        ('{"id": "a", "prediction": 7, "reference": "x"}', "'prediction' must be text, not int"),
        ('{"id": "a", "prediction": ["x"], "reference": "x"}', "'prediction' must be text, not list"),
        ('{"id": "a", "prediction": "x", "reference": Infinity}', "'reference' must be text, not float"),
        ('{"id": "a", "prediction": "x", "reference": "x", "lang": 7}', "'lang' must be text, not int"),
        ('{"id": "a", "reference": "x"}', "no 'prediction' field"),
    ],
)
def test_non_text_values_are_one_line_errors_with_file_and_line(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "ok", "prediction": "x", "reference": "x"}\n' + line + "\n")
    result = run_cli("score", path)
    assert result.exit_code == 1, result.output
    assert f"p.jsonl:2 (id a): {message}" in result.output and "internal error" not in result.output


def test_plot_path_reported_is_the_path_written(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prediction": "fever and cough", "reference": "fever"}\n')
    result = run_cli("score", path, "--plot", tmp_path / "chart")
    assert result.exit_code == 0 and (tmp_path / "chart.png").is_file()
    assert f"Wrote {tmp_path / 'chart.png'}" in result.output.replace("\n", "")
    (tmp_path / "plots").mkdir()
    result = run_cli("score", path, "--plot", tmp_path / "plots")
    assert result.exit_code == 0 and (tmp_path / "plots" / "scores.png").is_file()


def test_line_numbers_are_not_emoji_codes(tmp_path):
    path = tmp_path / "data.jsonl"
    good = '{"id": "r%d", "prediction": "x", "reference": "x"}\n'
    path.write_text("".join(good % i for i in range(99)) + "{broken\n")
    result = run_cli("score", path, env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "data.jsonl:100: malformed JSON" in result.output


def test_answer_metrics_exact_and_equation():
    from distil_cli.evaluate.answers import equation_match, equation_value, exact_match

    assert exact_match("The answer is: Bank.", "bank")["exact_match"] == 100.0
    assert exact_match("river", "bank")["exact_match"] == 0.0
    assert equation_value("( 84.0 / 2.0 )") == 42.0 and equation_value("-(3 - 5) * 2") == 4.0
    assert equation_match("84 / 2", "( 84.0 / 2.0 )")["equation_accuracy"] == 100.0
    assert equation_match("84 / 3", "( 84.0 / 2.0 )")["equation_accuracy"] == 0.0
    for hostile in ("__import__('os').system('true')", "2 ** 999999", "1 / 0", "x + 1", "[1, 2]", "1e999 * 1e999"):
        assert equation_value(hostile) is None  # never executed, never an exception


def test_score_with_chosen_metrics_and_unknown_metric(tmp_path):
    rows = [{"id": f"q{i}", "prediction": "bank" if i % 2 else "river", "reference": "bank"} for i in range(20)]
    path = _write(tmp_path / "p.jsonl", rows)
    result = run_cli("score", path, "--metric", "exact,rouge", "--format", "json", "--bootstrap", 100)
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["scores"][0]
    assert overall["exact_match"] == 50.0 and "rouge_mean" in overall and len(overall["exact_match_ci"]) == 2
    other = _write(tmp_path / "o.jsonl", [{**r, "prediction": "bank"} for r in rows])
    result = run_cli("score", path, "--compare", other, "--metric", "exact", "--format", "json")
    comparison = json.loads(result.stdout)["comparison"][0]
    assert comparison["metric"] == "exact_match" and comparison["diff"] == 50.0 and comparison["ci"][0] > 0
    result = run_cli("score", path, "--metric", "bleu")
    assert result.exit_code == 1 and "unknown metric 'bleu'; known: bertscore, equation, exact, rouge" in result.output


def test_narrow_terminals_never_cut_run_or_metric_names(tmp_path):
    rows = [{"id": f"r{i}", "prediction": "fever and cough", "reference": "fever"} for i in range(12)]
    a = _write(tmp_path / "standard-seed-1.jsonl", rows)
    b = _write(tmp_path / "distill-alpha-0.5-seed-1.jsonl", rows)
    result = run_cli("score", a, "--compare", b, "--bootstrap", 100, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for name in ("standard-seed-1", "distill-alpha-0.5-seed-1", "rougeLsum", "rouge_mean"):
        assert name in result.output
    plugins = run_cli("plugins", env={"COLUMNS": "80"})
    for name in ("chat-template", "distil (built-in)", "equation"):
        assert name in plugins.output


def test_fast_lcs_table_and_cached_stemming_change_no_score():
    """The numpy LCS table and the cached stemmer (speed) give rouge-score's own numbers."""
    import random

    from rouge_score import tokenizers

    from distil_cli.evaluate.metrics import lcs_table, score_many, split_sentences

    def reference_table(ref, can):  # the textbook dynamic programme
        table = [[0] * (len(can) + 1) for _ in range(len(ref) + 1)]
        for i in range(1, len(ref) + 1):
            for j in range(1, len(can) + 1):
                if ref[i - 1] == can[j - 1]:
                    table[i][j] = table[i - 1][j - 1] + 1
                else:
                    table[i][j] = max(table[i - 1][j], table[i][j - 1])
        return table

    rng = random.Random(0)
    for _ in range(200):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 25))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 25))]
        assert lcs_table(a, b) == reference_table(a, b)

    from rouge_score import rouge_scorer

    words = "the patient was treated for fevers and running pains after surgeries of the knees".split()
    preds = [
        " ".join(rng.choice(words) for _ in range(20)) + ". " + " ".join(rng.choice(words) for _ in range(9)) + "."
        for _ in range(20)
    ]
    refs = [" ".join(rng.choice(words) for _ in range(25)) + "." for _ in range(20)]
    got = score_many(preds, refs, ["en"] * 20)
    plain = rouge_scorer.RougeScorer(
        ["rouge1", "rouge2", "rougeL", "rougeLsum"], tokenizer=tokenizers.DefaultTokenizer(True)
    )
    saved = rouge_scorer._lcs_table
    rouge_scorer._lcs_table = reference_table  # rouge-score as shipped
    try:
        for p, r, scores in zip(preds, refs, got):
            expected = plain.score("\n".join(split_sentences(r)), "\n".join(split_sentences(p)))
            assert all(abs(100 * expected[k].fmeasure - scores[k]) < 1e-9 for k in expected)
    finally:
        rouge_scorer._lcs_table = saved
