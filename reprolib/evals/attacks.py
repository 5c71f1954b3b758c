"""Prompt attacks for PDR (M³ Table 2, App. C/E), modelled on PromptBench's three attack levels.

PromptBench perturbs the *instruction* of a classification prompt, never the sample or the label
words. Its attacks search adaptively against a model; ours draw seeded perturbations
(``candidates`` of them) and, when a scorer is given, keep the one that hurts most — the same
search in miniature, deterministic for a seed:

- ``stresstest`` (sentence level, Naik et al. 2018): appends a distractor, e.g. `` and true is true``
  five times, to the instruction;
- ``deepwordbug`` (character level, Gao et al. 2018): swaps, deletes, inserts or substitutes one
  character in up to ``n_words`` instruction words;
- ``bertattack`` (word level, Li et al. 2020): replaces up to ``n_words`` instruction words with
  neighbours from a fixed lexicon (BERT is not available offline; the lexicon stands in for its
  masked-LM candidates).

PDR = (metric_clean − metric_attacked) / metric_clean (M³ eq. 7).
"""

from __future__ import annotations

import dataclasses
import random
import re
import string
from typing import Callable, Sequence

from reprolib.evals.items import Example

ATTACKS = ("stresstest", "deepwordbug", "bertattack")
DISTRACTORS = [" and true is true" * 5, " and false is not true" * 5, " and true is not false" * 5]
LEXICON = {
    "is": ["was", "seems", "be"], "the": ["this", "that", "a"], "this": ["the", "that", "such"],
    "sentiment": ["feeling", "emotion", "tone", "mood", "attitude"], "sentence": ["phrase", "statement", "line", "text"],
    "or": ["versus", "either"], "grammar": ["syntax", "language"], "check": ["test", "review"],
}


def _protected(labels: Sequence[str]) -> set[str]:
    return {w.lower() for w in labels}


def stresstest(instruction: str, rng: random.Random, labels: Sequence[str] = ()) -> str:
    return instruction + rng.choice(DISTRACTORS)


def deepwordbug(instruction: str, rng: random.Random, labels: Sequence[str] = (), n_words: int = 2) -> str:
    words = re.findall(r"[A-Za-z]+", instruction)
    keep = _protected(labels)
    targets = [w for w in dict.fromkeys(words) if w.lower() not in keep and len(w) > 1]
    for w in rng.sample(targets, min(n_words, len(targets))):
        i = rng.randrange(len(w))
        op = rng.choice(["swap", "delete", "insert", "substitute"])
        if op == "swap" and len(w) > 2:
            i = min(i, len(w) - 2)
            new = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        elif op == "delete":
            new = w[:i] + w[i + 1:]
        elif op == "insert":
            new = w[:i] + rng.choice(string.ascii_lowercase) + w[i:]
        else:
            new = w[:i] + rng.choice([c for c in string.ascii_lowercase if c != w[i].lower()]) + w[i + 1:]
        instruction = re.sub(rf"\b{re.escape(w)}\b", new, instruction, count=1)
    return instruction


def bertattack(instruction: str, rng: random.Random, labels: Sequence[str] = (), n_words: int = 2) -> str:
    keep = _protected(labels)
    words = [w for w in dict.fromkeys(re.findall(r"[A-Za-z]+", instruction))
             if w.lower() in LEXICON and w.lower() not in keep]
    for w in rng.sample(words, min(n_words, len(words))):
        new = rng.choice(LEXICON[w.lower()])
        new = new.capitalize() if w[0].isupper() else new
        instruction = re.sub(rf"\b{re.escape(w)}\b", new, instruction, count=1)
    return instruction


_FUNCTIONS: dict[str, Callable] = {"stresstest": stresstest, "deepwordbug": deepwordbug, "bertattack": bertattack}


def attack_instruction(instruction: str, attack: str, seed: int, labels: Sequence[str] = ()) -> str:
    """One seeded perturbation of an instruction (label words untouched)."""
    if attack not in _FUNCTIONS:
        raise ValueError(f"unknown attack {attack!r} (known: {', '.join(ATTACKS)})")
    return _FUNCTIONS[attack](instruction, random.Random(f"{attack}:{seed}:{instruction}"), labels)


def attacked(examples: Sequence[Example], instruction: str) -> list[Example]:
    """The examples with their (shared) instruction replaced by ``instruction``."""
    out = []
    for e in examples:
        original = e.meta.get("instruction")
        if not original or original not in e.prompt:
            raise ValueError(f"example {e.prompt[:50]!r} has no meta['instruction'] to attack")
        head, _, tail = e.prompt.rpartition(original)
        out.append(dataclasses.replace(e, prompt=head + instruction + tail))
    return out


def pdr(clean: float, attacked_score: float) -> float:
    """Performance drop rate (M³ eq. 7); undefined (raises) when the clean metric is 0."""
    if clean <= 0:
        raise ValueError("PDR is undefined when the clean metric is 0")
    return (clean - attacked_score) / clean


def worst_attack(score: Callable[[Sequence[Example]], object], examples: Sequence[Example], attack: str, seed: int = 0,
                 candidates: int = 1, value: Callable[[object], float] = float) -> tuple[object, str]:
    """The lowest-scoring of ``candidates`` seeded attacked instructions: ``(score(attacked
    examples), instruction)``. ``score`` may return any result; ``value`` reads its number."""
    if candidates < 1:
        raise ValueError(f"attack: candidates must be >= 1, got {candidates}")
    instruction = examples[0].meta["instruction"]
    labels = examples[0].meta.get("labels", ())
    worst = None
    for c in range(candidates):
        perturbed = attack_instruction(instruction, attack, seed * 1000 + c, labels)
        result = score(attacked(examples, perturbed))
        if worst is None or value(result) < value(worst[0]):
            worst = (result, perturbed)
    return worst


def attack_pdr(score: Callable[[Sequence[Example]], float], examples: Sequence[Example], attack: str, seed: int = 0,
               candidates: int = 1) -> dict:
    """Clean and attacked metric and PDR; with ``candidates`` > 1 the worst of that many seeded
    instructions is kept (a small adaptive search, as PromptBench's attacks search)."""
    if candidates < 1:
        raise ValueError(f"attack_pdr: candidates must be >= 1, got {candidates}")
    clean = score(examples)
    value, instruction = worst_attack(score, examples, attack, seed, candidates)
    return {"attack": attack, "clean": clean, "attacked": value, "instruction": instruction,
            "pdr": pdr(clean, value) if clean > 0 else None}
