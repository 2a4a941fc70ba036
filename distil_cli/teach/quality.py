"""Quality signals of a teacher's rationale: grounding in the input and the flags that mark a doubtful one."""

from __future__ import annotations

import re

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = set(
    """
    with from that this have were been their there which when what while into also than then they them such over
    under after before about above patient patients case para como pero sobre entre desde hasta este esta estos estas
    tiene tenía fueron había cuando donde dans avec pour sans sous sont était avait cette elle leur leurs plus comme
    entre depuis lors após pelo pela pelos pelas como mais entre esta este estes estas tinha foram quando onde
    """.split()
)


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in WORD_RE.findall(text)}
    return {w for w in words if any(c.isdigit() for c in w) or (len(w) > 3 and w not in STOPWORDS)}


def grounding_score(rationale: str, source: str) -> float:
    """Share of the rationale's content words and numbers that also occur in the input."""
    words = _content_words(rationale)
    if not words:
        return 0.0
    return round(len(words & {w.lower() for w in WORD_RE.findall(source)}) / len(words), 4)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def quality_flags(
    rationale: str, finish_reason: str, record: dict, label_aware: bool, grounding: float, min_grounding: float | None
) -> list[str]:
    flags = []
    if not rationale.strip():
        flags.append("empty")
    if finish_reason == "length":
        flags.append("truncated")
    if finish_reason == "oversized":  # longer than --max-tokens allows: cut, and not to be trusted
        flags.append("oversized")
    if label_aware and record.get("output") and _norm(record["output"]) in _norm(rationale):
        flags.append("copies_reference")
    if min_grounding is not None and grounding < min_grounding:
        flags.append("low_grounding")
    return flags
