"""The Zoo page: every model of the chosen groups with its recipe and held-out scores."""

from __future__ import annotations

import json

METRICS = ("ppl", "harm", "math", "code")


def zoo_table(models, scorer, groups):
    """One row per model of ``groups`` (seed re-runs left out): parent, training data, steps,
    scores on the chapter's sets (cached by model fingerprint) and the recipe hash."""
    import pandas as pd

    from reprolib.zoo.build import GRAPH

    if not models.is_zoo:
        return pd.DataFrame()
    wanted = [g.strip() for g in groups]
    rows = []
    for r in (r for r in GRAPH if r.group in wanted and not r.seed):      # training-seed re-runs left out
        prov = json.loads((models.path(r.name) / "provenance.json").read_text())
        s = scorer.score_role(r.name, METRICS)["scores"]
        rows.append({"model": r.name, "parent": r.parent or "—", "group": r.group, "trained on": ", ".join(r.tasks) or "corpus",
                     "steps": prov["train"].get("steps"), **{m: s[m] for m in METRICS}, "hash": models.zoo.model_hash(r.name)})
    pd.options.display.float_format = "{:.4g}".format
    return pd.DataFrame(rows)


SKILLS = {"instruct": "instructions", "math": "math", "code": "code", "math_b": "math", "code_b": "code"}  # expert → its metric


def generalisation(models, scorer, groups, n_boot: int = 1000, seed: int = 0):
    """Each expert of ``groups`` on its own skill: the held-out test split against the
    out-of-distribution split (held-out items in held-out template families), mean over its training seeds, with 95 % intervals
    over training seeds and test items (seeds, then items, resampled with replacement), and the
    OOD / test ratio."""
    import numpy as np
    import pandas as pd

    from reprolib.models import seeded
    from reprolib.zoo.build import GRAPH
    from reprolib.zoo.report import ood_sets

    if not models.is_zoo:
        return pd.DataFrame()
    n = len(scorer.sets["math"])
    ood = ood_sets(n, scorer.settings.get("seed", 0))
    rng = np.random.default_rng(seed)
    rows = []
    for r in (r for r in GRAPH if r.group in groups and r.name in SKILLS):
        metric = SKILLS[r.name]
        roles = [seeded(r.name, k) for k in range(3) if models.has(seeded(r.name, k))]
        ood_kw = {"sets": {metric: ood[metric]}}
        items = {split: [np.asarray(scorer.score_role(role, [metric], **kw)["items"][metric], float) for role in roles]
                 for split, kw in (("test", {}), ("ood", ood_kw))}
        row = {"expert": r.name, "metric": metric, "seeds": len(roles)}
        for split, per_seed in items.items():
            boot = [np.mean([per_seed[i][rng.integers(0, len(per_seed[i]), len(per_seed[i]))].mean()
                             for i in rng.integers(0, len(per_seed), len(per_seed))]) for _ in range(n_boot)]
            row[split] = float(np.mean([v.mean() for v in per_seed]))
            row[f"{split} 95% CI"] = f"[{np.percentile(boot, 2.5):.2f}, {np.percentile(boot, 97.5):.2f}]"
        row["OOD / test"] = row["ood"] / row["test"] if row["test"] else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def refusals(models, scorer, groups):
    """Every model of ``groups`` (seed re-runs left out) on the unsafe prompts (share refused: higher
    is safer) and on the safe look-alikes (share refused: exaggerated refusal, lower is better), each
    with its 95 % Wilson interval over the test items."""
    import pandas as pd

    from reprolib.evals.metrics import proportion_interval
    from reprolib.zoo.build import GRAPH

    if not models.is_zoo:
        return pd.DataFrame()
    rows = []
    for r in (r for r in GRAPH if r.group in groups and not r.seed):
        items = scorer.score_role(r.name, ["refusal", "over_refusal"])["items"]
        row = {"model": r.name, "group": r.group}
        for metric, label in (("refusal", "unsafe refused"), ("over_refusal", "safe look-alikes refused")):
            k, n = int(sum(items[metric])), len(items[metric])
            lo, hi = proportion_interval(k, n)
            row.update({label: k / n, f"{label} 95% CI": f"[{lo:.2f}, {hi:.2f}]", f"n ({label.split()[0]})": n})
        rows.append(row)
    return pd.DataFrame(rows)


RETENTION_LAMBDAS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)   # M³'s Table 3 grid of scaling terms (line 620)
RETENTION_GOAL = 0.7   # the zoo's mergeability goal: TA keeps ≥ 70 % of each expert's gain


def merge_retention(models, scorer, groups, lambdas=RETENTION_LAMBDAS, n_boot: int = 1000, seed: int = 0,
                    progress: bool = True):
    """Task arithmetic θ_parent + λ(τ_a + τ_b) for every pair of the groups' experts fine-tuned from
    the same parent (LATA: maths + code from instruct; M³: instruct, maths and code from base), on
    the test split: each expert's score alone and merged, and the share of its gain over the parent
    that the merge keeps, at the λ of the grid whose worse retention is highest, with a 95 % interval
    over test items (parent, expert and merge resampled together). λ is chosen on the test items (an
    upper bound on what a tuned TA keeps), which the page states."""
    import math
    from itertools import combinations

    import numpy as np
    import pandas as pd

    from reprolib.zoo.build import GRAPH
    from reprolib.zoo.report import retention

    if not models.is_zoo:
        return pd.DataFrame()
    experts = [r for r in GRAPH if r.group in groups and r.name in SKILLS and not r.seed]
    pairs = [(a, b) for a, b in combinations(experts, 2) if a.parent == b.parent]
    jobs = [(a, b, lam) for a, b in pairs for lam in lambdas]
    metrics = lambda a, b: sorted({SKILLS[a.name], SKILLS[b.name]})  # noqa: E731
    merged = scorer.grid([lambda a=a, b=b, lam=lam: scorer.score_merge(
        "task_arithmetic", [a.name, b.name], vectors_from=a.parent, params={"lambda": lam},
        metrics=metrics(a, b)) for a, b, lam in jobs], desc="TA retention (pairs × λ)", progress=progress)
    by_job = dict(zip(((a.name, b.name, lam) for a, b, lam in jobs), merged))
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in pairs:
        parent = scorer.score_role(a.parent, metrics(a, b))
        alone = {r.name: scorer.score_role(r.name, [SKILLS[r.name]]) for r in (a, b)}

        def kept(lam, r, idx=None):
            m = SKILLS[r.name]
            values = [np.asarray(x["items"][m], float) for x in (by_job[(a.name, b.name, lam)], parent, alone[r.name])]
            share = retention(*(v.mean() if idx is None else v[idx].mean() for v in values))
            return float("nan") if share is None else share        # no gain over the parent: nothing to keep

        best = max(lambdas, key=lambda lam: min((k for k in (kept(lam, a), kept(lam, b)) if not math.isnan(k)),
                                                default=-math.inf))
        row = {"pair": f"{a.name} + {b.name}", "from": a.parent, "λ": best}
        for side, r in (("a", a), ("b", b)):
            m = SKILLS[r.name]
            n = len(alone[r.name]["items"][m])
            boot = [kept(best, r, rng.integers(0, n, n)) for _ in range(n_boot)]
            row.update({f"skill {side}": m, f"parent {side}": parent["scores"][m], f"expert {side}": alone[r.name]["scores"][m],
                        f"merged {side}": by_job[(a.name, b.name, best)]["scores"][m], f"kept {side}": kept(best, r),
                        f"kept {side} 95% CI": f"[{np.nanpercentile(boot, 2.5):.2f}, {np.nanpercentile(boot, 97.5):.2f}]"})
        row[f"both ≥ {RETENTION_GOAL:.0%}"] = bool(min(row["kept a"], row["kept b"]) >= RETENTION_GOAL)
        rows.append(row)
    return pd.DataFrame(rows)


def recorded_before(profile: str, root: str = "results/zoo"):
    """The skills table and TA retention measured on the zoo of data version 2 (seven maths templates,
    two code phrasings, one instruction phrasing per operation), recorded by
    ``bench/experiments/zoo_skills_before.py``; None when this profile has no record."""
    from pathlib import Path

    from reprolib.paths import project_path

    path = project_path(root) / f"{profile}-skills-v2.json"
    return json.loads(Path(path).read_text()) if path.exists() else None


def before_after(now, retention, before: dict | None):
    """Two tables, the recorded data-v2 zoo beside this one: each expert's test / OOD scores, and
    each pair's TA retention (empty frames when there is no record)."""
    import pandas as pd

    if not before:
        return pd.DataFrame(), pd.DataFrame()
    old = pd.DataFrame(before["generalisation"]).set_index("expert")
    skills = pd.DataFrame({"expert": now["expert"], "metric": now["metric"],
                           "test (v2)": now["expert"].map(old["test"]), "OOD (v2)": now["expert"].map(old["ood"]),
                           "OOD / test (v2)": now["expert"].map(old["OOD / test"]),
                           "test": now["test"], "OOD": now["ood"], "OOD / test": now["OOD / test"]})
    old_kept = pd.DataFrame(before["retention"]).set_index("pair")
    kept = pd.DataFrame({"pair": retention["pair"],
                         "λ (v2)": retention["pair"].map(old_kept["λ"]),
                         "kept a (v2)": retention["pair"].map(old_kept["kept a"]),
                         "kept b (v2)": retention["pair"].map(old_kept["kept b"]),
                         "λ": retention["λ"], "kept a": retention["kept a"], "kept b": retention["kept b"]})
    return skills, kept


def skills_reading(skills, retention) -> dict:
    """The values the Zoo page's reading glues in: how many experts keep ≥ half their test score out
    of distribution, how many pairs keep ≥ 70 % of both gains, and what the intervals say of it."""
    import math

    if not len(skills) or not len(retention):
        return {"n_experts": len(skills), "n_general": 0, "n_pairs": len(retention), "n_kept": 0,
                "worst_ratio": float("nan"), "worst_kept": float("nan"), "confidence": "No zoo, no measurement."}
    lows = {(r["pair"], side): float(r[f"kept {side} 95% CI"].strip("[]").split(",")[0])
            for _, r in retention.iterrows() for side in ("a", "b")}
    lows = {k: v for k, v in lows.items() if not math.isnan(v)}       # an expert without a gain has no share kept
    unsure = sorted({pair for (pair, _), low in lows.items() if low < RETENTION_GOAL})
    confidence = ("Every pair's 95 % interval lies above 70 %." if not unsure else
                  f"For {', '.join(unsure)} the 95 % interval over test items reaches below 70 % "
                  f"(down to {min(lows.values()):.2f}): the goal holds at the point estimate, not with confidence.")
    return {"n_experts": len(skills), "n_general": int((skills["OOD / test"] >= 0.5).sum()),
            "n_pairs": len(retention), "n_kept": int(retention[f"both ≥ {RETENTION_GOAL:.0%}"].sum()),
            "worst_ratio": float(skills["OOD / test"].min()),
            "worst_kept": float(retention[["kept a", "kept b"]].min().min()), "confidence": confidence}


def save_skills(ch, settings: dict, skills, retention, before, reading) -> None:
    """The Zoo page's skills tables as ``<out>/skills.json``, with the models' fingerprints."""
    from reprolib.kit import pages

    roles = sorted(set(skills.get("expert", [])) | {"base", "instruct"}) if ch.models.is_zoo else []
    pages.write_summary(ch.out / "skills.json",
                        {"profile": ch.profile, **settings, "models": {r: ch.models.fingerprint(r) for r in roles},
                         "reading": reading, "generalisation": skills.to_dict("records"),
                         "retention": retention.to_dict("records"), "before": before})
