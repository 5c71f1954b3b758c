"""The papers' headline claims as functions of our results, each returning a :class:`Verdict`.

A claim is tested on a per-seed statistic (one value per training seed, e.g. LATA's maths score
minus TA's). Its mean gets a two-sided Student-t confidence interval; the verdict is

- **reproduced** when the whole interval lies on the claimed side of the margin,
- **not reproduced** when the whole interval lies on the other side,
- **inconclusive** otherwise, or with fewer than ``MIN_SEEDS`` seeds (no interval is computed).

Claims with two parts (e.g. "better tasks at equal or better perplexity") combine their parts:
reproduced only if every part is, not reproduced if any part is.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
MIN_SEEDS = 3


@dataclass
class Verdict:
    claim: str                 # id, as in reprolib/papers/published/<paper>.yaml
    text: str                  # what is tested, in words
    verdict: str               # reproduced | not reproduced | inconclusive
    estimate: float            # mean of the per-seed statistic
    ci: tuple[float, float]    # confidence interval of the mean (NaN with < MIN_SEEDS seeds)
    n: int                     # seeds
    values: list[float] = field(default_factory=list)
    parts: list["Verdict"] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t (scipy when present; a table for the common 95% case otherwise)."""
    try:
        from scipy.stats import t

        return float(t.ppf(p, df))
    except ImportError:  # pragma: no cover - scipy ships with the environment
        table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
        if abs(p - 0.975) > 1e-9:
            raise
        return table.get(df, 1.96)


def mean_ci(values, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Mean and two-sided t-interval; (mean, (nan, nan)) for fewer than two values."""
    values = [float(v) for v in values]
    mean = statistics.fmean(values) if values else math.nan
    if len(values) < 2:
        return mean, (math.nan, math.nan)
    half = t_quantile(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def directional(claim: str, text: str, values, better: str = "higher", margin: float = 0.0,
                level: float = 0.95) -> Verdict:
    """Verdict on "the statistic is above ``margin``" (``better='higher'``) or below it ('lower')."""
    if better not in ("higher", "lower"):
        raise ValueError(f"parameter 'better' must be 'higher' or 'lower', got {better!r}")
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values):
        raise ValueError(f"claim {claim!r}: a per-seed value is NaN ({values})")
    mean, (lo, hi) = mean_ci(values, level)
    if len(values) < MIN_SEEDS:
        verdict = INCONCLUSIVE
    elif better == "higher":
        verdict = REPRODUCED if lo > margin else NOT_REPRODUCED if hi < margin else INCONCLUSIVE
    else:
        verdict = REPRODUCED if hi < margin else NOT_REPRODUCED if lo > margin else INCONCLUSIVE
    return Verdict(claim, text, verdict, mean, (lo, hi), len(values), values)


def all_of(claim: str, text: str, parts: list[Verdict]) -> Verdict:
    """A claim made of parts: reproduced if all are, not reproduced if any is not."""
    verdicts = [p.verdict for p in parts]
    verdict = (NOT_REPRODUCED if NOT_REPRODUCED in verdicts else
               REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE)
    return Verdict(claim, text, verdict, math.nan, (math.nan, math.nan), min(p.n for p in parts), [], parts)


def verdict_table(verdicts: list[Verdict]):
    """One row per verdict (and per part), for the book."""
    import pandas as pd

    rows = []
    for v in verdicts:
        for i, x in enumerate([v] + v.parts):
            rows.append({"claim": v.claim if i == 0 else f"  └ part {i}", "tested": x.text, "verdict": x.verdict,
                         "mean": x.estimate if not math.isnan(x.estimate) else None, "95% CI": "n/a" if math.isnan(x.ci[0]) else f"[{x.ci[0]:.3g}, {x.ci[1]:.3g}]",
                         "seeds": x.n, "per seed": ", ".join(f"{y:.3g}" for y in x.values)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- LATA


def task_score(row, tasks) -> float:
    """Mean score over the merged tasks on a 0–1 scale: maths EM, code pass@1 and harm rescaled
    from 1–5 by (h − 1)/4 (in task learning, higher harm = the UA task learned)."""
    parts = []
    for t in tasks:
        col = {"ua": "harm", "math": "math", "code": "code"}[t]
        parts.append((row[col] - 1.0) / 4.0 if col == "harm" else row[col])
    return statistics.fmean(parts)


def _task_gain(row_lata, row_ta, tasks) -> float:
    """LATA's task score minus TA's (see :func:`task_score`)."""
    return task_score(row_lata, tasks) - task_score(row_ta, tasks)


def _tasks_of(label: str) -> list[str]:
    from reprolib.lata import TASK_ROLES

    return [TASK_ROLES[t.strip()] for t in label.split("+")]


BASELINES = ("TA", "DARE", "TIES", "DARE + TIES")


def lata_beats_baselines(scores, claim: str = "table3_best_utility") -> Verdict:
    """LATA §4 (Table 3, line 674; Tables 5–7): LATA has the lowest perplexity and beats the
    existing methods on the target tasks. ``scores``: rows with columns tasks, method (TA, DARE,
    TIES, DARE + TIES, LATA), seed, ppl and the task metrics. Per seed, means over the task sets of
    (i) LATA's task score minus the best baseline's and (ii) LATA's perplexity over the lowest
    baseline perplexity minus 1; claimed: (i) > 0 and (ii) < 0."""
    gains, ppl_change = [], []
    for seed, group in scores.groupby("seed"):
        g, p = [], []
        for label, rows in group.groupby("tasks"):
            tasks = _tasks_of(label)
            la = rows[rows["method"] == "LATA"].iloc[0]
            base = rows[rows["method"].isin(BASELINES)]
            g.append(task_score(la, tasks) - max(task_score(r, tasks) for _, r in base.iterrows()))
            p.append(la["ppl"] / base["ppl"].min() - 1.0)
        gains.append(statistics.fmean(g))
        ppl_change.append(statistics.fmean(p))
    parts = [directional(f"{claim}/tasks", "LATA's task score − the best baseline's (0–1 scale, mean over task sets)", gains, "higher"),
             directional(f"{claim}/ppl", "LATA's perplexity / the lowest baseline perplexity − 1", ppl_change, "lower")]
    return all_of(claim, "LATA beats every baseline (TA, DARE, TIES, DARE+TIES) on the target tasks and has the lowest perplexity", parts)


def setting_is_best(scores, column: str, best, claim: str, metric: str = "tasks") -> Verdict:
    """Appendix claims of the form "method X works best with setting ``best``" (e.g. DARE with
    p = 0.3). Per seed, mean over task sets of the setting's score minus the best score among the
    other settings: the task score (higher is better) or, for ``metric='ppl'`` ("better
    utilities"), the relative perplexity (lower is better). ``column`` holds the setting."""
    diffs = []
    for seed, group in scores.groupby("seed"):
        per_set = []
        for label, rows in group.groupby("tasks"):
            if metric == "ppl":
                value = rows["ppl"] / rows["ppl"].mean()
            else:
                value = rows.apply(lambda r: task_score(r, _tasks_of(label)), axis=1)
            is_best = rows[column].astype(str) == str(best)
            others = value[~is_best].min() if metric == "ppl" else value[~is_best].max()
            per_set.append(float(value[is_best].mean() - others))
        diffs.append(statistics.fmean(per_set))
    what = "relative perplexity" if metric == "ppl" else "task score"
    return directional(claim, f"{what} of {column} = {best} minus the best other setting's", diffs,
                       "lower" if metric == "ppl" else "higher")


def lata_alone_best(scores, claim: str = "table4_lata_alone_best") -> Verdict:
    """LATA §4 (Table 4, line 772): LATA alone is better than LATA combined with TIES, DARE or
    DARE+TIES. Per seed, mean over task sets and combinations of LATA's task score minus the
    combination's. ``scores`` holds method 'LATA' and 'LATA + …' rows."""
    diffs = []
    for seed, group in scores.groupby("seed"):
        d = []
        for label, rows in group.groupby("tasks"):
            tasks = _tasks_of(label)
            alone = rows[rows["method"] == "LATA"].iloc[0]
            for _, combo in rows[rows["method"] != "LATA"].iterrows():
                d.append(_task_gain(alone, combo, tasks))
        diffs.append(statistics.fmean(d))
    return directional(claim, "LATA alone − LATA + TIES/DARE/DARE+TIES on the task score", diffs, "higher")


def pure_vector_forgets(forget, lata: str, ta: str) -> Verdict:
    """LATA §5 (Fig. 4, line 871): subtracting the pure UA vector lowers harm in other languages,
    more than the existing methods, with less loss of language quality than TA negation.
    ``forget``: rows language, method, seed, harm, ppl including method 'original'. Per seed,
    means over languages of (i) harm after LATA minus harm before, (ii) harm after LATA minus the
    lowest harm of the other methods, (iii) LATA's relative perplexity increase minus TA negation's."""
    harm_drop, vs_best, quality = [], [], []
    for seed, g in forget.groupby("seed"):
        by = g.set_index(["method", "language"])
        langs = sorted(g["language"].unique())
        others = [m for m in g["method"].unique() if m not in ("original", lata)]
        harm_drop.append(statistics.fmean(by.loc[(lata, l), "harm"] - by.loc[("original", l), "harm"] for l in langs))
        vs_best.append(statistics.fmean(by.loc[(lata, l), "harm"] - min(by.loc[(m, l), "harm"] for m in others) for l in langs))
        quality.append(statistics.fmean(
            by.loc[(lata, l), "ppl"] / by.loc[("original", l), "ppl"] - by.loc[(ta, l), "ppl"] / by.loc[("original", l), "ppl"]
            for l in langs))
    parts = [directional("forgetting/harm", "harm after LATA − harm before (mean over languages)", harm_drop, "lower"),
             directional("forgetting/vs_methods", "harm after LATA − the lowest harm of the other methods", vs_best, "lower"),
             directional("forgetting/quality", "LATA's relative perplexity increase − TA negation's", quality, "lower")]
    return all_of("forgetting_harm", "the pure UA vector removes more harm than the other methods, with less quality loss than TA negation", parts)


def late_layers_matter(layers) -> Verdict:
    """LATA Fig. 5 (line 875): the least instruction-like (most task-relevant) layers lie late in
    the network. Per seed and expert: the share of the ⌈L/2⌉ lowest-cosine blocks that sit in the
    second half of the blocks; claimed when this share exceeds 1/2 (chance)."""
    shares = []
    for seed, g in layers.groupby("seed"):
        per_expert = []
        for _, e in g.groupby("expert"):
            L = len(e)
            low = e.nsmallest(math.ceil(L / 2), "cosine")
            per_expert.append(float((low["layer"] >= L / 2).mean()))
        shares.append(statistics.fmean(per_expert))
    return directional("fig5_late_layers", "share of the least instruction-like half of the blocks that lie in the second half",
                       shares, "higher", margin=0.5)
