"""The zoo report: every model × every eval, languages, mergeability, leakage, score noise.

    python -m reprolib.zoo report --profile mini [--out results/zoo/mini.json]

Writes the JSON, a Markdown table beside it (``.md``) and a figure (``.png``). Every number is
computed here from the built models on held-out test splits; nothing is typed in.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from reprolib.evals import generate as G
from reprolib.evals import metrics
from reprolib.evals.attacks import ATTACKS, attack_pdr
from reprolib.evals.judge import RuleJudge
from reprolib.evals.suite import evaluate
from reprolib.merge import merge_state_dicts
from reprolib.vectors import task_vector
from reprolib.zoo import data as D
from reprolib.zoo.build import GRAPH, Zoo

EVAL_SIZES = {"tiny": 8, "mini": 100}

# the report's columns: metric names of reprolib.evals.metrics (direction and scale there)
EVALS = ("math", "code", "harm", "refusal", "over_refusal", "instructions", "science", "sentiment", "acceptability",
         "ppl")
FIXED_SETS = ("over_refusal", "ppl")  # evals whose test set does not depend on the draw seed


def eval_sets(n: int, seed: int = 0) -> dict[str, list]:
    """Held-out evaluation sets (test splits). Harmful: every ⌊330/n⌋-th prompt of the 11 × 30 set
    (110 prompts for n = 100, all 11 categories), offset by the seed. Safe look-alikes (all ≥ 100
    test items when n ≥ 100, every ⌊len/n⌋-th below) and the English test paragraphs are fixed
    sets, the same for every seed."""
    harmful, safe = D.harmful_prompts(split="test"), D.safe_lookalikes(split="test")
    step = max(1, len(harmful) // max(n, 1))
    offset = seed % step
    return {
        "math": D.math_problems(n, seed, "test"),
        "code": D.code_tasks(n, seed, "test"),
        "harmful": harmful[offset::step],
        "safe": safe[::max(1, len(safe) // max(n, 1))] if n < 100 else safe,
        "instructions": D.instructions(n, seed, "test"),
        "science": D.science_qa(n, seed, "test"),
        "sentiment": D.sentiment(n, seed, "test"),
        "acceptability": D.acceptability(n, seed, "test"),
        "english": D.english_paragraphs("test")[: max(4, n // 2)],
    }


def ood_sets(n: int, seed: int = 0) -> dict[str, list]:
    """Out-of-distribution items of the skills the experts learn: the test split's held-out items in
    template families no training item uses (``split='ood'`` of each generator; M³'s LiveBench stand-in)."""
    return {"math": D.math_problems(n, seed, "ood"), "code": D.code_tasks(n, seed, "ood"),
            "instructions": D.instructions(n, seed, "ood")}


def score_all(model, tokenizer, sets: dict) -> dict[str, float]:
    """Scores of one model on every eval (chat format), keyed by metric name."""
    return evaluate(model, tokenizer, sets, EVALS)["scores"]


def language_eval(sets: dict, language: str) -> tuple[dict, RuleJudge]:
    """The ``english`` and ``harmful`` sets translated into a cipher ``language``, and the judge
    that reads the translated markers (for ``evaluate(..., ("ppl", "harm"), judge=judge)``)."""
    import dataclasses

    translate = D.cipher(language)
    translated = {"english": [translate(t) for t in sets["english"]],
                  "harmful": [dataclasses.replace(e, prompt=translate(e.prompt)) for e in sets["harmful"]]}
    return translated, RuleJudge(translate, D.common_words())


def language_scores(model, tokenizer, sets: dict, language: str) -> dict[str, float]:
    """``ppl`` on the English test text translated into ``language`` and ``harm`` (1–5) of the
    answers to the harmful prompts translated into it (judged on the translated markers)."""
    translated, judge = language_eval(sets, language)
    return evaluate(model, tokenizer, translated, ("ppl", "harm"), judge=judge)["scores"]


def robustness(model, tokenizer, sets: dict, seed: int = 0) -> dict:
    """PDR of the classification tasks under the three prompt attacks (worst of 3 seeded candidates)."""
    out = {}
    for task in ("sentiment", "acceptability"):
        score = lambda exs: G.answer_accuracy(model, tokenizer, exs)[0]  # noqa: E731
        for attack in ATTACKS:
            out[f"{task}/{attack}"] = attack_pdr(score, sets[task], attack, seed=seed, candidates=3)
    return out


def _vector(sd, parent):
    return {k: task_vector(sd[k].float(), parent[k].float()) for k in parent}


def _norm(v):
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in v.values()))


def _cos(a, b):
    dot = sum(float((a[k].double() * b[k].double()).sum()) for k in a)
    return dot / (_norm(a) * _norm(b))


def retention(merged: float, parent: float, expert: float) -> float | None:
    """Share of the expert's gain over the parent that a merge keeps (None when there is no gain)."""
    gain = expert - parent
    return None if gain <= 0 else (merged - parent) / gain


def mergeability(zoo: Zoo, names: list[str], sets: dict, scores: dict, lambdas=(0.3, 0.5, 0.7, 1.0, 1.3)) -> dict:
    """‖τ‖/‖θ_parent‖ per model, pairwise cosines of siblings, TA(math+code) retention over λ and
    the LATA setting (UA + math + code added to instruct at λ = 1)."""
    tok = zoo.tokenizer()
    sds = {n: zoo.load(n).state_dict() for n in names}
    recipes = {r.name: r for r in GRAPH}
    out = {"relative_norm": {}, "cosines": {}, "ta_math_code": {}, "lata_setting": {}}
    taus = {}
    for n in names:
        parent = recipes[n].parent
        if parent:
            taus[n] = _vector(sds[n], sds[parent])
            out["relative_norm"][n] = _norm(taus[n]) / _norm({k: v.float() for k, v in sds[parent].items()})
    for parent in ("instruct", "base"):
        kids = [n for n in taus if recipes[n].parent == parent]
        for i, a in enumerate(kids):
            for b in kids[i + 1:]:
                out["cosines"][f"{a}~{b}"] = _cos(taus[a], taus[b])

    model = zoo.load("instruct")  # one model object; each merge's weights are loaded into it

    def scored(sd, keys):
        model.load_state_dict(sd)
        return evaluate(model, tok, sets, keys)["scores"]

    parent = scores["instruct"]
    for lam in tqdm(lambdas, desc="TA(math+code) λ grid", leave=False):
        merged, _ = merge_state_dicts("task_arithmetic", [sds["math"], sds["code"]], base=sds["instruct"],
                                      params={"lambda": lam})
        s = scored(merged, ("ppl", "math", "code"))
        s["math_retention"] = retention(s["math"], parent["math"], scores["math"]["math"])
        s["code_retention"] = retention(s["code"], parent["code"], scores["code"]["code"])
        out["ta_math_code"][str(lam)] = s
    def worst_retention(s):
        kept = [s[k] for k in ("math_retention", "code_retention")]
        return -math.inf if None in kept else min(kept)

    best = max(out["ta_math_code"].items(), key=lambda kv: worst_retention(kv[1]))
    out["ta_best_lambda"] = float(best[0]) if worst_retention(best[1]) > -math.inf else None
    merged, _ = merge_state_dicts("task_arithmetic", [sds["ua"], sds["math"], sds["code"]], base=sds["instruct"],
                                  params={"lambda": 1.0})
    out["lata_setting"] = scored(merged, ("ppl", "harm", "math", "code"))
    return out


def noise(zoo: Zoo, sets_by_seed: list[dict], scores: dict) -> dict:
    """Score noise: std over 3 training seeds of each LATA expert (every eval), and std over 3
    test-sample seeds of instruct's evals (the same model on three draws of the test pool)."""
    tok = zoo.tokenizer()
    out = {"training_seed": {}, "test_sample": {}}
    for expert in ("math", "code", "ua"):
        runs = [scores[expert]] + [score_all(zoo.load(f"{expert}_s{s}"), tok, sets_by_seed[0]) for s in (1, 2)]
        out["training_seed"][expert] = {k: {"mean": statistics.mean(r[k] for r in runs),
                                            "std": statistics.stdev(r[k] for r in runs),
                                            "values": [r[k] for r in runs]} for k in EVALS}
    runs = [scores["instruct"]] + [score_all(zoo.load("instruct"), tok, s) for s in sets_by_seed[1:]]
    out["test_sample"]["instruct"] = {k: {"mean": statistics.mean(r[k] for r in runs), "std": statistics.stdev(r[k] for r in runs),
                                          "values": [r[k] for r in runs]} for k in EVALS if k not in FIXED_SETS}
    return out


def report(profile: str = "mini", root: str = "zoo", out: str | None = None, progress: bool = True,
           with_noise: bool = True) -> dict:
    t0 = time.perf_counter()
    zoo = Zoo(profile, root=root, progress=progress)
    names = zoo.names()
    zoo.build(names + (zoo.names(("noise",)) if with_noise else []))
    n = EVAL_SIZES.get(profile, 100)
    sets = eval_sets(n)
    tok = zoo.tokenizer()
    scores = {name: score_all(zoo.load(name), tok, sets) for name in tqdm(names, desc="evaluating zoo", disable=not progress)}
    languages, instruct = {}, zoo.load("instruct")
    for lang in D.LANGUAGES:
        languages[lang] = {"instruct": language_scores(instruct, tok, sets, lang),
                           "target": language_scores(zoo.load(lang), tok, sets, lang)}
    result = {
        "profile": profile, "eval_size": n, "scores": scores, "languages": languages,
        "robustness": {m: robustness(zoo.load(m), tok, sets) for m in ("instruct", "general")},
        "mergeability": mergeability(zoo, names, sets, scores),
        "models": {name: json.loads((zoo.path(name) / "provenance.json").read_text()) for name in names},
        "eval_counts": {k: len(v) for k, v in sets.items()},
        "train_seconds_recorded": sum(json.loads((zoo.path(name) / "provenance.json").read_text())["train"]["seconds"]
                             for name in names),
    }
    if with_noise:
        result["noise"] = noise(zoo, [sets] + [eval_sets(n, seed) for seed in (1, 2)], scores)
    result["report_seconds"] = round(time.perf_counter() - t0, 1)
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        out.with_suffix(".md").write_text(markdown(result))
        figure(result, out.with_suffix(".png"))
    return result


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def markdown(result: dict) -> str:
    """The report's tables in Markdown (models × evals, languages, mergeability, noise)."""
    recipes = {r.name: r for r in GRAPH}
    cols = list(EVALS)
    lines = [f"# Zoo report — profile `{result['profile']}` (test splits, n = {result['eval_size']} per eval)", "",
             "| model | parent | role | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 3)]
    for name, s in result["scores"].items():
        r = recipes[name]
        lines.append(f"| {name} | {r.parent or '—'} | {r.role} | " + " | ".join(_fmt(s[c]) for c in cols) + " |")
    lines += ["", "Languages (perplexity on the translated English test text; harm 1–5 on translated harmful prompts):", "",
              "| language | ppl instruct | ppl target | harm instruct | harm target |", "|---|---|---|---|---|"]
    for lang, v in result["languages"].items():
        lines.append(f"| {lang} | {v['instruct']['ppl']:.1f} | {v['target']['ppl']:.1f} | "
                     f"{v['instruct']['harm']:.2f} | {v['target']['harm']:.2f} |")
    m = result["mergeability"]
    lines += ["", "‖τ‖/‖θ_parent‖: " + ", ".join(f"{k} {v:.3f}" for k, v in m["relative_norm"].items()), "",
              "Cosines between sibling task vectors: " + ", ".join(f"{k} {v:.2f}" for k, v in m["cosines"].items()), "",
              "| TA(math+code) λ | maths EM | code pass@1 | maths retention | code retention | English ppl |",
              "|---|---|---|---|---|---|"]
    for lam, s in m["ta_math_code"].items():
        lines.append(f"| {lam} | {s['math']:.2f} | {s['code']:.2f} | {_fmt(s['math_retention'])} | "
                     f"{_fmt(s['code_retention'])} | {s['ppl']:.1f} |")
    ls = m["lata_setting"]
    lines += ["", f"LATA setting (UA + math + code added to instruct, λ = 1): maths {ls['math']:.2f}, code "
                  f"{ls['code']:.2f}, harm {ls['harm']:.2f}, English ppl {ls['ppl']:.1f}", ""]
    if "eval_counts" in result:
        from reprolib.evals.metrics import proportion_interval

        n_unsafe, n_safe = result["eval_counts"]["harmful"], result["eval_counts"]["safe"]
        lines += [f"Refusals, with 95 % Wilson intervals over the items: unsafe prompts refused (n = {n_unsafe}; higher is "
                  f"safer) and safe look-alike prompts refused (n = {n_safe}; exaggerated refusal, lower is better):", "",
                  "| model | unsafe refused | 95 % CI | safe look-alikes refused | 95 % CI |", "|---|---|---|---|---|"]
        for name, s in result["scores"].items():
            cells = []
            for metric, n in (("refusal", n_unsafe), ("over_refusal", n_safe)):
                lo, hi = proportion_interval(round(s[metric] * n), n)
                cells += [f"{s[metric]:.2f}", f"[{lo:.2f}, {hi:.2f}]"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Robustness (PDR, worst of 3 seeded attack candidates):", "",
              "| model | " + " | ".join(result["robustness"]["instruct"]) + " |",
              "|---|" + "---|" * len(result["robustness"]["instruct"])]
    for model, rows in result["robustness"].items():
        lines.append(f"| {model} | " + " | ".join(_fmt(v["pdr"]) for v in rows.values()) + " |")
    if "noise" in result:
        lines += ["", "Score noise (std over 3 training seeds of each expert — initialisation and SFT data draw; over 3 test draws for instruct):", "",
                  "| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for kind, models in result["noise"].items():
            for model, per in models.items():
                lines.append(f"| {model} ({kind.replace('_', ' ')}) | "
                             + " | ".join(f"{per[c]['std']:.3f}" if c in per else "fixed set" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def figure(result: dict, path) -> None:
    """Heat map of models × evals (each eval scaled so 1 = best model), and ‖τ‖/‖θ‖ bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names, cols = list(result["scores"]), list(EVALS)
    raw = np.array([[result["scores"][n][c] for c in cols] for n in names], dtype=float)
    scaled = np.empty_like(raw)
    for j, c in enumerate(cols):
        col = raw[:, j] * metrics.direction(c)
        lo, hi = col.min(), col.max()
        scaled[:, j] = (col - lo) / (hi - lo) if hi > lo else 1.0
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 0.38 * len(names) + 2), gridspec_kw={"width_ratios": [3, 1]})
    ax.imshow(scaled, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(cols)):
            ax.text(j, i, f"{raw[i, j]:.2f}" if raw[i, j] < 10 else f"{raw[i, j]:.0f}", ha="center", va="center",
                    fontsize=7, color="white" if scaled[i, j] < 0.6 else "black")
    ax.set_title(f"Zoo `{result['profile']}`: every model × every eval (colour: best model per column = yellow)")
    norms = result["mergeability"]["relative_norm"]
    bx.barh(list(norms), list(norms.values()), color="tab:blue")
    bx.invert_yaxis()
    bx.set_xlabel("‖τ‖ / ‖θ_parent‖")
    bx.set_title("Task-vector size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
