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
    out-of-distribution split (new phrasings), mean over its training seeds, with 95 % intervals
    over training seeds and test items (seeds, then items, resampled with replacement), and the
    OOD / test ratio."""
    import numpy as np
    import pandas as pd

    from reprolib.kit.scorer import sets_label
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
        ood_kw = {"sets": {metric: ood[metric]}, "set_label": sets_label({metric: ood[metric]})}
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
