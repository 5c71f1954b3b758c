"""What a test item is (:class:`Example`) and how a model's answer is read (maths, code)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One test (or training) item: the user prompt, the reference answer and metric-specific
    ``meta`` (maths ``value``, code ``tests``, harmful ``thing``/``place``, …)."""

    prompt: str
    answer: str
    domain: str
    split: str
    meta: dict = field(default_factory=dict, hash=False, compare=True)

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "answer": self.answer, "domain": self.domain, "split": self.split, **self.meta}


def math_answer(text: str) -> str | None:
    """The last integer in a model's answer (exact-match scoring, as GSM8K's final number), or None."""
    found = re.findall(r"-?\d+", text)
    return found[-1] if found else None


def extract_code(text: str) -> str:
    """The Python source in a model's answer (inside ``` fences if present)."""
    m = re.search(r"```(?:python)?\n(.*?)(?:```|$)", text, re.S)
    return (m.group(1) if m else text).strip("\n")
