"""The τJp chapter, part 1 (seed 004, the eight-task vision setting): its claims, tested on the
paper's printed numbers and on our runs (``reprolib.chapters.taujp_runs``), which give Evidence with
the same columns.

Evidence ids and columns (accuracies in %, the paper's unit):

- ``table1`` (task addition): ``scale`` (ours: the zoo profile; the paper's: b32 | b16 | l14),
  ``method`` (pretrained | individual | mtl | nonlinear | linear | ties | adamerging | ours),
  ``coef`` ("-" | "1.0" | "grid" | "trained"), ``abs``, ``norm``.
- ``table2`` (task negation): ``scale``, ``method``, ``coef``, ``targ`` (target accuracy, lower is
  better), ``cont`` (control accuracy), ``reference`` (printed in parentheses: the control fell
  below 95 % of the pre-trained model's).
- ``pairs`` (Figs. 1, 2, 6–8; ours only, the paper prints no numbers): ``method`` (linear | ours),
  ``a``, ``b``, ``taujp``, ``cosine``, ``dis`` (mean weight-disentanglement error over Fig. 1's
  grid), ``norm`` (the pair's normalised accuracy after addition).
- ``per_task`` (Figs. 4–5): ``stage`` (single | addition), ``method``, ``task``, ``acc``, ``norm``.

Readings of the paper's words (each claim's ``how`` repeats its own): "outperforms" / "better" /
"surpassing" = strictly above, by any margin; "significantly" / "significant difference" = the 95 %
interval excludes no difference (the claims' interval does that: we test > 0); "the same results" =
within ``SAME`` points; "notably lower" = under half; "weak positive correlation" = Spearman's ρ in
(0, ``WEAK``); "no degradation" = not more than ``NO_DEGRADATION`` points below; "most tasks" = more
than half.
"""

from __future__ import annotations

import math

import numpy as np

from reprolib.claims import ClaimRegistry, Evidence, all_of, only, printed_evidence, seed_verdict
from reprolib.published import table_rows

PAPER = "taujp"
PAGE = "taujp.html"
SAME = 0.5            # points: "the same results" (the paper prints one decimal)
NORM_99 = 98.5        # "a normalized accuracy of 99%" (rounds to 99)
NOTABLY = 0.5         # "notably lower": less than half
WEAK = 0.5            # a "weak" correlation: ρ below 0.5
NO_DEGRADATION = 1.0  # points
SLIGHT = 2.5          # points: "slightly worse, the difference is not significant" (the paper's gap: 1.9 / 1.7)
AROUND_80 = (70.0, 90.0)   # % less time per iteration: "around 80%" (the paper's 81.5 %)
COMPARABLE_TIME = 1.1      # "a runtime comparable to Linear FT": at most 10 % slower (the paper's 3.6 %)
COMPARABLE = 5.0      # points of Abs. below MTL: "comparable to MTL" (the paper's gaps: 3.3 / 3.2 / 1.8)
FIRST_STEPS = 100     # "within the first 100 steps"
NORM_EXCEEDS = 99.0   # "normalized accuracy exceeding 99%"
SCALES = ("b32", "b16", "l14")          # the paper's models, smallest first
METHOD_OF = {"Pre-trained": "pretrained", "Individual": "individual", "MTL": "mtl", "Non-lin. FT": "nonlinear",
             "Linear FT": "linear", "Ties-Merging": "ties", "AdaMerging": "adamerging", "Ours": "ours"}
COEF_OF = {"-": "-", "1.0": "1.0", "Grid-searched": "grid", "Trained": "trained"}
VARIANT_OF = {"No reg. (Linear FT)": "linear", "Incremental reg. (Ours)": "incremental", "Full reg. (Ours)": "ours",
              "Cyclical reg. (11)": "ours", "Strict reg. (10)": "strict"}      # Tables 5–6's printed settings
EXISTING = ("nonlinear", "linear", "ties", "adamerging")   # task-arithmetic methods ours is compared with

NOT_TESTED = {
    "table2_caption (line 239)": "'better forgetting of target tasks while preserving higher performance on control tasks' "
                                 "asks one row of ours to do both; its two halves are table2_grid (forgetting) and "
                                 "table2_control_at_one (control), tested on the same rows. The paper's own Table 2 has no "
                                 "such row (see the contradictions under the claims)",
    "fig5_most_tasks, second half (line 621)": "'maintains consistent performance across all tasks' has no stated measure "
                                               "of consistency; the per-task bars of Fig. 5 are shown",
    "AdaMerging (Table 1)": "not run here (trained coefficients; the paper copies its numbers from Yang et al., "
                            "footnote 2): in the paper's numbers it counts as an existing approach, in ours it is absent",
    "MTL (Table 1)": "multi-task learning is part 2's Table 7",
    "Fig. 7 (line 671)": "'no consistent trend was observed between cosine similarity and τJp' is tested as fig8_weak_positive",
}


# ----------------------------------------------------------------------------- the paper's numbers


def _table(paper: dict, table_id: str, columns: tuple[str, ...]) -> list[dict]:
    out = []
    for r in table_rows(paper, table_id):
        for scale in SCALES:
            out.append({"scale": scale, "method": METHOD_OF[r["method"]], "coef": COEF_OF[r["coef"]],
                        **{c: r.get(f"{scale}_{c}") for c in columns},
                        **({"reference": bool(r.get("reference"))} if "reference" in r else {})})
    return out


def _variants(paper: dict) -> list[dict]:
    """Tables 5–6 (ViT-B-32, grid-searched coefficients: their Linear FT and Ours rows are Table 1's)."""
    rows = {}
    for table_id in ("table5", "table6"):
        for r in table_rows(paper, table_id):
            rows[VARIANT_OF[r["method"]]] = {"scale": "b32", "method": VARIANT_OF[r["method"]], "coef": "grid",
                                             "abs": r["abs"], "norm": r["norm"]}
    return list(rows.values())


def _timing(paper: dict) -> list[dict]:
    return [{"method": VARIANT_OF[r["method"]], "sec_per_iter": r["sec_per_iter"]} for r in table_rows(paper, "table6")]


def _table7(paper: dict) -> list[dict]:
    return [{"scale": scale, "method": METHOD_OF[r["method"]], "coef": "-" if r["method"] == "MTL" else "grid",
             "abs": r[scale]} for r in table_rows(paper, "table7") for scale in SCALES]


def paper_evidence(paper: dict, ids, n_seeds: int = 3) -> dict[str, Evidence]:
    """The paper's Tables 1–2 and 5–7 as if they were our results (every scale); the figures print no
    numbers."""
    build = {"table1": lambda: _table(paper, "table1", ("abs", "norm")),
             "table2": lambda: _table(paper, "table2", ("targ", "cont")),
             "variants": lambda: _variants(paper), "timing": lambda: _timing(paper), "table7": lambda: _table7(paper)}
    out = {}
    for evidence_id in ids:
        if evidence_id in build:
            rows = build[evidence_id]()
            floats = [c for c in ("abs", "norm", "targ", "cont", "sec_per_iter") if c in rows[0]]
            out[evidence_id] = printed_evidence(rows, n_seeds, floats)
    return out


# ----------------------------------------------------------------------------- statistics


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than three points or a constant."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(spearmanr(x, y).statistic)


def _scales(g) -> list[str]:
    return sorted({r["scale"] for r in g}, key=lambda s: (s not in SCALES, SCALES.index(s) if s in SCALES else 0, s))


def _best_other(g, scale: str, coef: str | None, column: str, lower: bool = False) -> float:
    """The best score of the existing methods at ``coef`` (None: at any; AdaMerging's trained
    coefficients count at every setting), on one scale."""
    values = [r[column] for r in g if r["scale"] == scale and r["method"] in EXISTING
              and (coef is None or r["coef"] == coef or r["method"] == "adamerging")]
    return min(values) if lower else max(values)


def _ours(g, scale: str, coef: str) -> dict:
    return only([r for r in g if r["scale"] == scale], f"{scale}", method="ours", coef=coef)


def _of(method: str, fn):
    """``fn`` of one seed's pair records of ``method`` only."""
    return lambda g: fn([r for r in g if r["method"] == method])


_v = seed_verdict          # a statistic of one seed's records → verdict over seeds and items


CLAIMS = ClaimRegistry(PAPER)


# ----------------------------------------------------------------------------- Table 1: task addition


@CLAIMS.register("table1_outperforms", ("table1",), anchor=f"{PAGE}#table1",
                 how="Table 1: ours − the best existing method (non-linear FT, linear FT, TIES, and AdaMerging where "
                     "printed) at the same coefficient setting (1.0; grid-searched), the smaller margin over both "
                     "settings and every model scale, for Abs. and for Norm.; 'outperforms' = above 0 ('notable' is not "
                     "quantified).")
def table1_outperforms(ev):
    rows = ev["table1"]
    parts = [_v(f"table1_outperforms/{col}", f"smallest margin of ours over the best existing method, {col}",
                lambda g, col=col: min(_ours(g, s, c)[col] - _best_other(g, s, c, col) for s in _scales(g)
                                       for c in ("1.0", "grid")), rows) for col in ("abs", "norm")]
    return all_of("table1_outperforms", "ours above every existing method, both coefficient settings", parts)


@CLAIMS.register("table1_no_tuning", ("table1",), anchor=f"{PAGE}#table1",
                 how="Table 1: ours at coefficients 1.0 − the best existing method with its coefficients grid-searched "
                     "(AdaMerging: trained), the smallest over the model scales, for Abs. and Norm.; above 0.")
def table1_no_tuning(ev):
    rows = ev["table1"]
    parts = [_v(f"table1_no_tuning/{col}", f"ours (1.0) − best existing (grid-searched), {col}",
                lambda g, col=col: min(_ours(g, s, "1.0")[col] - _best_other(g, s, "grid", col) for s in _scales(g)),
                rows) for col in ("abs", "norm")]
    return all_of("table1_no_tuning", "ours without tuning above every tuned existing method", parts)


@CLAIMS.register("table1_alpha_one", ("table1",), anchor=f"{PAGE}#table1",
                 how=f"Table 1, the largest model scale of the evidence (the paper's ViT-L-14; ours: the zoo's one "
                     f"scale): ours grid-searched − ours 1.0 within ±{SAME:g} points for Abs. and Norm. ('the same "
                     f"results', an equivalence test: the difference below {SAME:g} and above −{SAME:g}), and ours' Norm. "
                     f"at 1.0 above {NORM_99:g} % ('99%', a magnitude the paper states for ViT-L-14 only).")
def table1_alpha_one(ev):
    rows = ev["table1"]

    def gap(col):
        return lambda g: _ours(g, _scales(g)[-1], "grid")[col] - _ours(g, _scales(g)[-1], "1.0")[col]

    parts = [_v(f"table1_alpha_one/same_{col}_{side}", f"ours grid − ours 1.0, {col}", gap(col), rows, better, margin)
             for col in ("abs", "norm") for side, better, margin in (("below", "lower", SAME), ("above", "higher", -SAME))]
    parts.append(_v("table1_alpha_one/norm_99", "ours' Norm. at 1.0", lambda g: _ours(g, _scales(g)[-1], "1.0")["norm"],
                    rows, margin=NORM_99))
    return all_of("table1_alpha_one", "α = 1 is optimal for ours on the largest scale, Norm. ≈ 99 %", parts)


# ----------------------------------------------------------------------------- Table 2: task negation


@CLAIMS.register("table2_control_at_one", ("table2",), anchor=f"{PAGE}#table2",
                 how="Table 2: ours' control accuracy at coefficients 1.0 − the best of every existing method's row "
                     "(non-linear FT, linear FT, TIES; at 1.0 and grid-searched), the smallest over the model scales; "
                     "'significantly outperforms' = above 0 with the interval.")
def table2_control_at_one(ev):
    return _v("table2_control_at_one", "ours' control (1.0) − best existing control",
              lambda g: min(_ours(g, s, "1.0")["cont"] - _best_other(g, s, None, "cont") for s in _scales(g)),
              ev["table2"])


@CLAIMS.register("table2_grid", ("table2",), anchor=f"{PAGE}#table2",
                 how="Table 2: (a) ours' target accuracy grid-searched − at 1.0, the largest over the scales, below 0 "
                     "('greatly enhances the forgetting'; 'greatly' is not quantified); (b) ours' control accuracy "
                     "grid-searched − the best existing method's grid-searched, the smallest over the scales, above 0.")
def table2_grid(ev):
    rows = ev["table2"]
    parts = [_v("table2_grid/forgetting", "ours' target: grid-searched − 1.0",
                lambda g: max(_ours(g, s, "grid")["targ"] - _ours(g, s, "1.0")["targ"] for s in _scales(g)), rows,
                "lower", 0.0),
             _v("table2_grid/control", "ours' control − best existing control, grid-searched",
                lambda g: min(_ours(g, s, "grid")["cont"] - _best_other(g, s, "grid", "cont") for s in _scales(g)),
                rows)]
    return all_of("table2_grid", "tuned, ours forgets more and keeps more control than every existing method", parts)


# ----------------------------------------------------------------------------- pairs: Figs. 1, 2, 6, 8


@CLAIMS.register("taujp_tracks_accuracy", ("pairs",), anchor=f"{PAGE}#fig2",
                 how="Fig. 2: Spearman's ρ between τJp and the pair's normalised accuracy over the 28 pairs of linear FT "
                     "(the unregularised vectors, whose τJp spans the widest range); 'smaller τJp, higher accuracy' = "
                     "ρ below 0.")
def taujp_tracks_accuracy(ev):
    return _v("taujp_tracks_accuracy", "Spearman ρ(τJp, normalised accuracy), linear FT pairs",
              _of("linear", lambda g: spearman([r["taujp"] for r in g], [r["norm"] for r in g])), ev["pairs"], "lower", 0.0)


def _paired(g, column, transform=lambda x: x):
    """Per pair (a, b): transform(ours' value) − transform(linear FT's), the pairs in order."""
    by = {(r["method"], r["a"], r["b"]): transform(r[column]) for r in g}
    return [by["ours", a, b] - by["linear", a, b] for (m, a, b) in by if m == "linear"]


def _log_ratio(g):
    """The mean over pairs of log10(τJp ours / τJp linear FT)."""
    return float(np.mean(_paired(g, "taujp", lambda v: math.log10(max(v, 1e-30)))))


@CLAIMS.register("fig2_reg_reduces", ("pairs",), anchor=f"{PAGE}#fig2",
                 how="Fig. 2, the 28 pairs: (a) the mean of log10(τJp ours / τJp linear FT) below 0 ('reduces τJp', "
                     "significant by the interval); (b) the mean of the pairs' normalised accuracy, ours − linear FT, "
                     "above 0 ('improves task addition performance').")
def fig2_reg_reduces(ev):
    rows = ev["pairs"]
    parts = [_v("fig2_reg_reduces/taujp", "mean log10(τJp ours / τJp linear)", _log_ratio, rows, "lower", 0.0),
             _v("fig2_reg_reduces/accuracy", "mean pair normalised accuracy, ours − linear",
                lambda g: float(np.mean(_paired(g, "norm"))), rows)]
    return all_of("fig2_reg_reduces", "the penalty lowers τJp and raises the pairs' accuracy", parts)


@CLAIMS.register("fig1_sensitivity", ("pairs",), anchor=f"{PAGE}#fig1",
                 how="Fig. 1 (top row, linear FT): Spearman's ρ between a pair's τJp and its mean weight-disentanglement "
                     "error over the (α_A, α_B) grid, over the 28 pairs; 'larger τJp, more sensitive' = ρ above 0.")
def fig1_sensitivity(ev):
    return _v("fig1_sensitivity", "Spearman ρ(τJp, mean disentanglement error), linear FT pairs",
              _of("linear", lambda g: spearman([r["taujp"] for r in g], [r["dis"] for r in g])), ev["pairs"], "higher", 0.0)


@CLAIMS.register("fig1_regularized", ("pairs",), anchor=f"{PAGE}#fig1",
                 how="Fig. 1 (bottom row against top): the mean disentanglement error over the grid, ours − linear FT, "
                     "averaged over the 28 pairs; 'significantly enhanced' = below 0 with the interval.")
def fig1_regularized(ev):
    return _v("fig1_regularized", "mean disentanglement error, ours − linear FT",
              lambda g: float(np.mean(_paired(g, "dis"))), ev["pairs"], "lower", 0.0)


@CLAIMS.register("fig6_lower_offdiag", ("pairs",), anchor=f"{PAGE}#fig6",
                 how=f"Fig. 6: the geometric mean over the 28 off-diagonal pairs of τJp ours / τJp linear FT (a pair "
                     f"with an outlying τJp does not dominate it); 'notably lower' = under {NOTABLY:g}.")
def fig6_lower_offdiag(ev):
    return _v("fig6_lower_offdiag", "geometric mean of τJp ours / linear FT", lambda g: 10 ** _log_ratio(g), ev["pairs"],
              "lower", NOTABLY)


@CLAIMS.register("fig8_weak_positive", ("pairs",), anchor=f"{PAGE}#fig8",
                 how=f"Fig. 8: Spearman's ρ between τJp and the cosine of the two task vectors over the 28 pairs, per "
                     f"regime (linear FT, ours); 'weak positive' = ρ in (0, {WEAK:g}), tested as how far ρ lies outside "
                     f"that range, max(−ρ, ρ − {WEAK:g}), below 0.")
def fig8_weak_positive(ev):
    rows = ev["pairs"]

    def outside(g):
        rho = spearman([r["taujp"] for r in g], [r["cosine"] for r in g])
        return max(-rho, rho - WEAK)

    parts = [_v(f"fig8_weak_positive/{method}", f"ρ(τJp, cosine) outside (0, {WEAK:g}), {method}", _of(method, outside),
                rows, "lower", 0.0) for method in ("linear", "ours")]
    return all_of("fig8_weak_positive", "τJp and cosine correlate weakly and positively", parts)


# ----------------------------------------------------------------------------- per task: Figs. 4–5


def _task_means(g, stage: str, column: str) -> dict:
    """method → mean over tasks of ``column`` at ``stage``."""
    methods = {r["method"] for r in g if r["stage"] == stage}
    return {m: float(np.mean([r[column] for r in g if r["stage"] == stage and r["method"] == m])) for m in methods}


@CLAIMS.register("fig4_nonlinear_advantage", ("per_task",), anchor=f"{PAGE}#fig4",
                 how="Fig. 4: mean single-task accuracy after fine-tuning, non-linear FT − the better of linear FT and "
                     "ours; above 0.")
def fig4_nonlinear_advantage(ev):
    return _v("fig4_nonlinear_advantage", "non-linear FT − best linearised FT, mean single-task accuracy",
              lambda g: (lambda m: m["nonlinear"] - max(m["linear"], m["ours"]))(_task_means(g, "single", "acc")),
              ev["per_task"])


@CLAIMS.register("fig4_no_degradation", ("per_task",), anchor=f"{PAGE}#fig4",
                 how=f"Fig. 4: mean single-task accuracy, ours − linear FT; 'no degradation' = above −{NO_DEGRADATION:g} "
                     "points.")
def fig4_no_degradation(ev):
    return _v("fig4_no_degradation", "ours − linear FT, mean single-task accuracy",
              lambda g: (lambda m: m["ours"] - m["linear"])(_task_means(g, "single", "acc")), ev["per_task"],
              margin=-NO_DEGRADATION)


@CLAIMS.register("fig5_most_tasks", ("per_task",), anchor=f"{PAGE}#fig5",
                 how="Fig. 5 (right): the share of the eight tasks on which ours has the highest normalised accuracy "
                     "after addition (grid-searched α) among non-linear FT, linear FT and ours (a tie at the top counts as a share: "
                     "1/k among k tied); 'most tasks' = above 0.5.")
def fig5_most_tasks(ev):
    def share(g):
        after = [r for r in g if r["stage"] == "addition"]
        tasks = sorted({r["task"] for r in after})
        wins = 0.0
        for t in tasks:
            scores = {r["method"]: r["norm"] for r in after if r["task"] == t}
            top = [m for m, v in scores.items() if v == max(scores.values())]
            wins += ("ours" in top) / len(top)
        return wins / len(tasks)

    return _v("fig5_most_tasks", "share of tasks where ours has the highest normalised accuracy", share, ev["per_task"],
              margin=0.5)



# ----------------------------------------------------------------------------- Tables 5–7, Fig. 3


def _grid(g, method: str, column: str) -> float:
    return only(g, "variants", method=method, coef="grid")[column]


def _grid_gap(hi: str, lo: str, column: str):
    """The statistic ``hi`` − ``lo`` of ``column`` at the grid-searched coefficients (one seed's records)."""
    return lambda g: _grid(g, hi, column) - _grid(g, lo, column)


@CLAIMS.register("table5_full_best", ("variants",), anchor=f"{PAGE}#table5",
                 how="Table 5 (grid-searched coefficients): (a) 'the highest performance' = ours (full reg.) − "
                     "incremental reg. above 0, and (b) 'substantial improvement over the existing unregularized "
                     "method' = incremental reg. − linear FT above 0 ('substantial' is not quantified), each for Abs. "
                     "and Norm.")
def table5_full_best(ev):
    rows = ev["variants"]
    parts = [_v(f"table5_full_best/{hi}_{col}", f"{hi} − {lo}, {col}",
                _grid_gap(hi, lo, col), rows)
             for hi, lo in (("ours", "incremental"), ("incremental", "linear")) for col in ("abs", "norm")]
    return all_of("table5_full_best", "full reg. > incremental reg. > no reg.", parts)


@CLAIMS.register("table6_cyclical", ("variants", "timing"), anchor=f"{PAGE}#table6",
                 how=f"Table 6 (grid-searched coefficients): (a) 'slightly worse … not significant' = strict − cyclical "
                     f"(ours) below {SLIGHT:g} points, Abs. and Norm.; (b) 'around 80% reduction' = 1 − seconds per "
                     f"iteration cyclical / strict within {AROUND_80[0]:g}–{AROUND_80[1]:g} %; (c) 'a runtime comparable "
                     f"to Linear FT' = cyclical / linear FT seconds below {COMPARABLE_TIME:g}; (d) 'a significant "
                     f"improvement in performance' = cyclical − linear FT above 0, Abs. and Norm. Seconds are measured "
                     f"in rounds (the timing's 'seed'); ours: the strict penalty as the zoo trains it, one JVP over every "
                     f"other task's batch.")
def table6_cyclical(ev):
    rows, timing = ev["variants"], ev["timing"]

    def sec(g, method):
        return only(g, "timing", method=method)["sec_per_iter"]

    def saving(g):
        return 100.0 * (1.0 - sec(g, "ours") / sec(g, "strict"))

    parts = [_v(f"table6_cyclical/slightly_{col}", f"strict − cyclical, {col}",
                _grid_gap("strict", "ours", col), rows, "lower", SLIGHT)
             for col in ("abs", "norm")]
    parts += [_v("table6_cyclical/time_above", "% less time per iteration, cyclical vs strict", saving, timing,
                 "higher", AROUND_80[0]),
              _v("table6_cyclical/time_below", "% less time per iteration, cyclical vs strict", saving, timing,
                 "lower", AROUND_80[1]),
              _v("table6_cyclical/runtime", "seconds per iteration, cyclical / linear FT",
                 lambda g: sec(g, "ours") / sec(g, "linear"), timing, "lower", COMPARABLE_TIME)]
    parts += [_v(f"table6_cyclical/improves_{col}", f"cyclical − linear FT, {col}",
                 _grid_gap("ours", "linear", col), rows) for col in ("abs", "norm")]
    return all_of("table6_cyclical", "cyclical: nearly strict's accuracy at linear FT's cost", parts)


@CLAIMS.register("table7_comparable", ("table7",), anchor=f"{PAGE}#table7",
                 how=f"Table 7 (grid-searched Abs.): MTL − ours, the largest over the model sizes, below {COMPARABLE:g} "
                     f"points ('comparable'; one-sided: ours above MTL is comparable too).")
def table7_comparable(ev):
    return _v("table7_comparable", "MTL − ours, Abs., the largest over the sizes",
              lambda g: max(only(g, s, scale=s, method="mtl")["abs"] - only(g, s, scale=s, method="ours")["abs"]
                            for s in _scales(g)), ev["table7"], "lower", COMPARABLE)


def _at(g, step: int) -> dict:
    return only(g, "fig3", step=step)


def _gain(g, column: str, transform, sign: float):
    """Fig. 3: the improvement of ``column`` within the first steps minus its improvement after them
    (improvement = sign · (transform(later) − transform(earlier)))."""
    last = max(r["step"] for r in g)
    start, mid, end = (transform(_at(g, s)[column]) for s in (0, FIRST_STEPS, last))
    return sign * (mid - start) - max(0.0, sign * (end - mid))


@CLAIMS.register("fig3_first_100", ("fig3",), anchor=f"{PAGE}#fig3",
                 how=f"Fig. 3 (continued training of the linear-FT pair with the largest τJp, with the penalty): "
                     f"'both metrics improve sharply within the first {FIRST_STEPS} steps … afterward the improvement is "
                     f"more gradual' = the improvement in the first {FIRST_STEPS} steps minus the improvement after "
                     f"them, above 0, for the normalised accuracy (α = 1) and for log10 τJp (lower is better); "
                     f"'exceeding 99%' = the normalised accuracy at step {FIRST_STEPS} above {NORM_EXCEEDS:g}.")
def fig3_first_100(ev):
    rows = ev["fig3"]
    if not (rows.rows["step"] == FIRST_STEPS).any() or rows.rows["step"].max() <= FIRST_STEPS:
        return None                       # a run of at most FIRST_STEPS steps cannot show what follows them
    parts = [_v("fig3_first_100/accuracy", f"normalised-accuracy gain: first {FIRST_STEPS} steps − later",
                lambda g: _gain(g, "norm", float, 1.0), rows),
             _v("fig3_first_100/taujp", f"log10 τJp drop: first {FIRST_STEPS} steps − later",
                lambda g: _gain(g, "taujp", lambda v: math.log10(max(v, 1e-30)), -1.0), rows),
             _v("fig3_first_100/exceeds_99", f"normalised accuracy at step {FIRST_STEPS}",
                lambda g: _at(g, FIRST_STEPS)["norm"], rows, margin=NORM_EXCEEDS)]
    return all_of("fig3_first_100", "sharp early gains, above 99 % by step 100", parts)
