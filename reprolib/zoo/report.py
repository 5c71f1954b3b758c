"""The zoo report: every model × every eval, and mergeability (‖τ‖/‖θ‖, cosines, merge retention).

    python -m reprolib.zoo report --profile mini [--out results/zoo/mini.json]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from reprolib.evals import generate as G
from reprolib.evals.ppl import perplexity
from reprolib.merge import merge_state_dicts
from reprolib.zoo import data as D
from reprolib.zoo.build import GRAPH, Zoo

EVAL_SIZES = {"tiny": 8, "mini": 100}


def eval_sets(n: int, seed: int = 0) -> dict[str, list]:
    """Held-out evaluation sets (test splits; harmful: the 11 × 30 set, subsampled to n·…)."""
    harmful = D.harmful_prompts(split="test")
    step = max(1, len(harmful) // max(n, 1))
    return {
        "math": D.math_problems(n, seed, "test"),
        "code": D.code_tasks(n, seed, "test"),
        "harmful": harmful[::step],
        "safe": D.safe_lookalikes(),
        "instructions": D.instructions(n, seed, "test"),
        "sentiment": D.sentiment(n, seed, "test"),
        "acceptability": D.acceptability(n, seed, "test"),
        "english": D.english_paragraphs("test")[: max(4, n // 2)],
    }


def evaluate(model, tokenizer, sets: dict) -> dict[str, float]:
    """Scores of one model on every eval (chat format; higher is better except ppl and refusal of safe)."""
    return {
        "math_em": G.math_exact_match(model, tokenizer, sets["math"])[0],
        "code_pass1": G.code_pass_at_1(model, tokenizer, sets["code"])[0],
        "refusal_harmful": G.refusal_rate(model, tokenizer, sets["harmful"])[0],
        "refusal_safe": G.refusal_rate(model, tokenizer, sets["safe"])[0],
        "instructions_acc": G.answer_accuracy(model, tokenizer, sets["instructions"])[0],
        "sentiment_acc": G.answer_accuracy(model, tokenizer, sets["sentiment"])[0],
        "acceptability_acc": G.answer_accuracy(model, tokenizer, sets["acceptability"])[0],
        "english_ppl": perplexity(model, tokenizer, sets["english"])[0],
    }


def _vector(sd, parent):
    return {k: sd[k].float() - parent[k].float() for k in parent}


def _norm(v):
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in v.values()))


def _cos(a, b):
    dot = sum(float((a[k].double() * b[k].double()).sum()) for k in a)
    return dot / (_norm(a) * _norm(b))


def mergeability(zoo: Zoo, sets: dict, scores: dict, lambdas=(0.5, 0.7, 1.0)) -> dict:
    """‖τ‖/‖θ_parent‖ per expert, pairwise cosines of experts sharing a parent, TA retention."""
    from transformers import AutoModelForCausalLM

    tok = zoo.tokenizer()
    sds = {r.name: zoo.load(r.name).state_dict() for r in GRAPH}
    out = {"relative_norm": {}, "cosines": {}, "ta_math_code": {}, "lata_setting": {}}
    for r in GRAPH:
        if r.parent:
            tau = _vector(sds[r.name], sds[r.parent])
            out["relative_norm"][r.name] = _norm(tau) / _norm({k: v.float() for k, v in sds[r.parent].items()})
    experts = [r.name for r in GRAPH if r.parent == "instruct"]
    taus = {e: _vector(sds[e], sds["instruct"]) for e in experts}
    for i, a in enumerate(experts):
        for b in experts[i + 1:]:
            out["cosines"][f"{a}~{b}"] = _cos(taus[a], taus[b])

    def scored(sd, keys):
        model = AutoModelForCausalLM.from_pretrained(zoo.path("instruct"), dtype=torch.float32).eval()
        model.load_state_dict(sd)
        s = {}
        if "math" in keys:
            s["math_em"] = G.math_exact_match(model, tok, sets["math"])[0]
        if "code" in keys:
            s["code_pass1"] = G.code_pass_at_1(model, tok, sets["code"])[0]
        if "ua" in keys:
            s["refusal_harmful"] = G.refusal_rate(model, tok, sets["harmful"])[0]
        s["english_ppl"] = perplexity(model, tok, sets["english"])[0]
        return s

    parent = scores["instruct"]
    for lam in lambdas:
        merged, _ = merge_state_dicts("task_arithmetic", [sds["math"], sds["code"]], base=sds["instruct"],
                                      params={"lambda": lam})
        s = scored(merged, ("math", "code"))
        s["math_retention"] = _retention(s["math_em"], parent["math_em"], scores["math"]["math_em"])
        s["code_retention"] = _retention(s["code_pass1"], parent["code_pass1"], scores["code"]["code_pass1"])
        out["ta_math_code"][str(lam)] = s
    merged, _ = merge_state_dicts("task_arithmetic", [sds["ua"], sds["math"], sds["code"]], base=sds["instruct"],
                                  params={"lambda": 1.0})
    out["lata_setting"] = scored(merged, ("math", "code", "ua"))
    return out


def _retention(merged: float, parent: float, expert: float) -> float | None:
    gain = expert - parent
    return None if gain <= 0 else (merged - parent) / gain


def report(profile: str = "mini", root: str = "zoo", out: str | None = None, progress: bool = True) -> dict:
    zoo = Zoo(profile, root=root, progress=progress)
    zoo.build()
    sets = eval_sets(EVAL_SIZES.get(profile, 100))
    tok = zoo.tokenizer()
    scores = {r.name: evaluate(zoo.load(r.name), tok, sets) for r in GRAPH}
    result = {"profile": profile, "scores": scores, "mergeability": mergeability(zoo, sets, scores),
              "models": {r.name: json.loads((zoo.path(r.name) / "provenance.json").read_text()) for r in GRAPH}}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
