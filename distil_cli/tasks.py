"""The recipe's two tasks and their per-language instructions (a leaf: settings, prompts and
training read it; it reads nothing of distil)."""

from __future__ import annotations

import logging
from enum import IntEnum

log = logging.getLogger(__name__)


class Task(IntEnum):
    """The recipe's two tasks, which differ only by their instruction.

    The integer is the id that examples and batches carry (-1 marks row padding); ``key``
    ("summary" / "rationale") names the task in settings, instruction tables and run.json.
    The loss of each is logged as ``loss_pred`` / ``loss_expl`` (the paper's names).
    """

    SUMMARY = 0
    RATIONALE = 1

    @property
    def key(self) -> str:
        return self.name.lower()


SUMMARY = Task.SUMMARY
RATIONALE = Task.RATIONALE

# The student's task prefixes: short, task-agnostic (any input -> output task) and parallel in the
# form the method issue found to help on clinical data: the same noun, one verb each (as the paper's
# "[label]" / "[rationale]" differ only in the task's name). docs/method.md has the measurements:
# on CQA this pair and the previous one ("Write the output / the rationale for the text below.", the
# same verb, one noun each) are within noise of each other; the earlier clinical pair is kept as
# CLINICAL_INSTRUCTIONS.
DEFAULT_INSTRUCTIONS: dict[Task, dict[str, str]] = {
    SUMMARY: {
        "en": "Respond to the text below.",
        "es": "Responde al texto siguiente.",
        "fr": "Réponds au texte ci-dessous.",
        "pt": "Responda ao texto abaixo.",
    },
    RATIONALE: {
        "en": "Explain the text below.",
        "es": "Explica el texto siguiente.",
        "fr": "Explique le texte ci-dessous.",
        "pt": "Explique o texto abaixo.",
    },
}
# The earlier defaults: descriptive, clinical and not parallel. The teacher is still asked with
# the rationale one (it tells a large model what a rationale should hold).
CLINICAL_INSTRUCTIONS: dict[Task, dict[str, str]] = {
    SUMMARY: {
        "en": "Summarize the following clinical case report.",
        "es": "Resume el siguiente informe de caso clínico.",
        "fr": "Résumez le rapport de cas clinique suivant.",
        "pt": "Resuma o seguinte relato de caso clínico.",
    },
    RATIONALE: {
        "en": "Extract the key information from the clinical text.",
        "es": "Extrae la información clave del texto clínico.",
        "fr": "Extrayez les informations clés du texte clinique.",
        "pt": "Extraia as informações principais do texto clínico.",
    },
}
# What the teacher is asked for by default (annotate without --template): task-neutral, since distil
# serves any input -> output task; clinical data can keep CLINICAL_INSTRUCTIONS' rationale prompt
# through --template.
TEACHER_INSTRUCTIONS: dict[str, str] = {
    "en": "Explain step by step the key information in the text below and what follows from it.",
    "es": "Explica paso a paso la información clave del texto siguiente y lo que se deduce de ella.",
    "fr": "Explique étape par étape les informations clés du texte ci-dessous et ce qui en découle.",
    "pt": "Explique passo a passo as informações principais do texto abaixo e o que decorre delas.",
}
ALL_LANGUAGES = "*"  # an override key that applies to every language without its own entry


def instruction_for(
    task: Task, lang: str, overrides: dict[str, str] | None = None, table: dict[Task, dict[str, str]] | None = None
) -> str:
    """The task instruction in ``lang``: an override for ``lang``, else one for every language (``*``),
    else the default of ``lang`` (English where there is none)."""
    if overrides and lang in overrides:
        return overrides[lang]
    if overrides and ALL_LANGUAGES in overrides:
        return overrides[ALL_LANGUAGES]
    table = (table or DEFAULT_INSTRUCTIONS)[task]
    if lang not in table:
        log.debug("no %s instruction for language %r: using the English one", task, lang)
    return table.get(lang, table["en"])


def user_message(instruction: str, text: str) -> str:
    """The user turn: instruction, a blank line, the input (just the text when there is no instruction)."""
    return f"{instruction}\n\n{text}" if instruction else text
