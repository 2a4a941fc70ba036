"""Metrics for short answers: exact match of the answer text, and the value of an arithmetic equation.

``exact``: the prediction equals the reference after normalisation (case, surrounding
punctuation and whitespace, a leading "the answer is"), as in question answering (CQA).
``equation``: both are arithmetic expressions (numbers, + - * /, parentheses) whose values
agree to 1e-4 relative tolerance (SVAMP: "( 84.0 / 2.0 )" equals "84 / 2"). Expressions are
parsed with ``ast`` and evaluated node by node: nothing is executed.
"""

from __future__ import annotations

import ast
import math
import operator
import re

PREFIX = re.compile(r"^(?:so\s+)?(?:the\s+)?answer\s+is\s*:?\s*", re.IGNORECASE)
EDGES = " \t\n.,;:!?\"'()[]"


def normalise_answer(text: str) -> str:
    text = PREFIX.sub("", text.strip().splitlines()[0] if text.strip() else "")
    return " ".join(text.strip(EDGES).lower().split())


def exact_match(prediction: str, reference: str, lang: str = "en") -> dict[str, float]:
    return {"exact_match": 100.0 * (normalise_answer(prediction) == normalise_answer(reference))}


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_DEPTH = 50


def equation_value(text: str) -> float | None:
    """The value of an arithmetic expression, or None when it is not one (or divides by zero)."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    text = PREFIX.sub("", text).strip().rstrip(".")
    if not text or len(text) > 500:
        return None
    try:
        value = _value(ast.parse(text, mode="eval").body, 0)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def _value(node: ast.AST, depth: int) -> float:
    if depth > MAX_DEPTH:
        raise ValueError("too deep")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.left, depth + 1), _value(node.right, depth + 1))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError(f"not arithmetic: {type(node).__name__}")


def equation_match(prediction: str, reference: str, lang: str = "en") -> dict[str, float]:
    got, want = equation_value(prediction), equation_value(reference)
    ok = got is not None and want is not None and math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6)
    return {"equation_accuracy": 100.0 * ok}
