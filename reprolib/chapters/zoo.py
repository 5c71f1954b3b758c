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
    for r in (r for r in GRAPH if r.group in wanted):
        prov = json.loads((models.path(r.name) / "provenance.json").read_text())
        s = scorer.score_role(r.name, METRICS)["scores"]
        rows.append({"model": r.name, "parent": r.parent or "—", "group": r.group, "trained on": ", ".join(r.tasks) or "corpus",
                     "steps": prov["train"].get("steps"), **{m: s[m] for m in METRICS}, "hash": models.zoo.model_hash(r.name)})
    pd.options.display.float_format = "{:.4g}".format
    return pd.DataFrame(rows)
