"""The M³ chapter (Mixup Model Merge, seed 003): its claims, tested on the paper's printed numbers
now and on our merges once the chapter's notebook runs them.

A claim reads Evidence whose rows have the same columns whether they hold the paper's numbers
(``paper_evidence``) or our runs:

- ``table1``, ``table7`` (two-model merges): ``method`` (average | task_arithmetic | ties, or
  ``expert`` for a fine-tune on its own), ``dare`` (DARE, p = 0.2, on the task vectors), ``m3``
  (λ chosen by M³, eq. 3), ``models`` (lm | math | code | lm_math | lm_code | math_code), ``lam``
  (M³'s λ, the weight of the first-named model) and one column per benchmark in ``BENCHMARKS``
  (NaN where not evaluated). Table 1's "DARE" rows are Task Arithmetic + DARE (the YAML's notes).
  Our suite's metrics go in the column of the benchmark they stand for (``instructions`` →
  ``alpacaeval``, ``math`` → ``gsm8k``, ``code`` → ``humaneval``); the ``math`` column is MATH.
- ``table2``, ``table5``, ``table6`` (prompt attacks): ``attack`` (stresstest | deepwordbug |
  bertattack), ``models``, ``dataset`` (sst2 | cola), ``m3``, ``clean`` and ``attacked`` (the task
  metric without / under the attack) and ``pdr`` (%, eq. 7), which is computed from clean and
  attacked where both are there (our runs, Tables 5–6) and read as printed otherwise (Table 2).
- ``fig2``, ``fig4`` (three-model p-series grid, eq. 4): ``p``, ``s``, benchmark columns and,
  optionally, ``selected`` (the configuration M³ chose on a validation split; without it, the
  grid's peak); the centroid baseline is (p = 0, s = 1).
- ``fig3`` (dominance orders, line 241): ``order`` (e.g. "math>lm>code") and ``gsm8k``.
- ``fig5`` (OOD, LiveBench, line 272): ``method``, ``models``, ``m3`` and ``ood``.

Readings of the paper's words, stated again in each claim's ``how``: "consistently" = every cell;
"generally" and an unqualified "improves / enhances / yields gains" = more than half of the cells
(as LATA's "DARE achieves better results when…"); "for instance / specifically" = the named cells,
as a part of their own; a gain is strict (a tie is not a gain). A cell is a (method, model pair,
benchmark) of the table the sentence cites.
"""

from __future__ import annotations

import math
import statistics

from reprolib.claims import ClaimRegistry, Evidence, all_of, by_seed, group_by, only, present, printed_evidence, share, verdict_on
from reprolib.published import table_rows

PAPER = "m3"
PAGE = "m3.html"                       # the chapter's page, for the claims' anchors
BENCHMARKS = ("alpacaeval", "gsm8k", "math", "humaneval", "mbpp")
MATH_TASKS = ("gsm8k", "math")
METHODS = {"Average Merging": "average", "Task Arithmetic": "task_arithmetic", "TIES-Merging": "ties"}
MODELS = {"LM": "lm", "Math": "math", "Code": "code", "LM & Math": "lm_math", "LM & Code": "lm_code", "Math & Code": "math_code"}
ATTACKS = {"table2": "stresstest", "table5": "deepwordbug", "table6": "bertattack"}
ORDERS = {"math_instruct_code": "math>lm>code", "math_code_instruct": "math>code>lm", "instruct_math_code": "lm>math>code"}
OOD_MODELS = ("math_code", "lm_math", "lm_code")    # the order of Fig. 5's printed gains (line 272)
FLOATS = BENCHMARKS + ("lam", "p", "s", "clean", "attacked", "pdr", "ood")

LAMBDA_TOL = 0.05     # |λ − 0.5| ≤ 0.05 is "the arithmetic mean" (our reading; Table 1's closest λ is 0.62)
RARELY = 0.25         # "rarely on the bisector": fewer than a quarter of the chosen λ's (our reading)
FOUR_OF_FIVE = 0.75   # "4 out of 5 datasets": more than ¾ of the benchmarks evaluated (4/5 passes, 3/4 does not)
MINIMAL = 0.05        # "minimal degradation elsewhere": every other benchmark within 5 % (relative) of the baseline
COLLAPSE = 0.5        # "catastrophic collapse": below half the GSM8K of the math-first orders (our reading)
P_EXTREME = 3         # "extreme skewing (p = 3)", line 255

NOT_TESTED = {
    "abstract_outperforms": "which comparison 'this simple geometric exploration significantly outperforms complex "
                            "conflict-resolution baselines' means is not stated: each method with M³ against itself "
                            "without is table1_m3_gains (and the conclusion's 'task' part), M³ alone against DARE alone "
                            "is m3_beats_dare; no table compares M³ on Task Arithmetic with TIES-Merging, and "
                            "'significantly' has no variance behind it in the paper",
}


# ----------------------------------------------------------------------------- the paper's numbers


def _figure(paper: dict, figure_id: str) -> dict:
    return next(f for f in paper["figures"] if f["id"] == figure_id)


def _merge_rows(paper: dict, table_id: str) -> list[dict]:
    """Tables 1 and 7 in our labels (Table 1's first three rows are the experts)."""
    out = []
    for r in table_rows(paper, table_id):
        if r["method"] is None:
            labels = {"method": "expert", "dare": False, "m3": False}
        elif r["method"] == "DARE":
            labels = {"method": "task_arithmetic", "dare": True, "m3": r["use_m3"]}
        else:
            labels = {"method": METHODS[r["method"]], "dare": r.get("use_dare", False), "m3": r["use_m3"]}
        out.append({"table": table_id, **labels, "models": MODELS[r["models"]], "lam": r.get("lambda"),
                    **{b: r[b] for b in BENCHMARKS}})
    return out


def _attack_rows(paper: dict, table_id: str) -> list[dict]:
    """Tables 2, 5, 6: one row per (models, dataset, M³). Table 2 prints the no-attack metric and
    the PDR; Tables 5–6 a no-attack line (with the PDR, sometimes empty) and an attacked line."""
    rows = table_rows(paper, table_id)
    pairs = [(r, None) for r in rows] if table_id == "table2" else list(zip(rows[::2], rows[1::2]))
    if any(a is not None and (c["use_attack"] or not a["use_attack"]) for c, a in pairs):
        raise ValueError(f"{table_id}: rows are not (no attack, attack) pairs")
    return [{"table": table_id, "attack": ATTACKS[table_id], "models": MODELS[c["model"]], "dataset": c["dataset"].lower(),
             "m3": c["use_m3"], "clean": c["metric"], "attacked": a["metric"] if a else None, "pdr": c["pdr"]}
            for c, a in pairs]


def _fig2_rows(paper: dict) -> list[dict]:
    """Fig. 2: Task Arithmetic's centroid and M³'s configuration, the numbers of lines 230–232; M³'s
    (p, s) is Fig. 4's optimum (the same GSM8K, 67.55)."""
    v, h = _figure(paper, "fig2")["text_values"], paper["hyperparameters"]["three_model_merging"]
    return [{"table": "fig2", "p": h["baseline"]["p"], "s": h["baseline"]["s"], "selected": False,
             "alpacaeval": v["ta_alpacaeval"]["percent"], "gsm8k": v["m3_vs_ta"]["ta_gsm8k_percent"]},
            {"table": "fig2", "p": h["optimum"]["p"], "s": h["optimum"]["s"], "selected": True,
             "alpacaeval": v["m3_vs_ta"]["m3_alpacaeval_percent"], "gsm8k": v["m3_vs_ta"]["m3_gsm8k_percent"]}]


def _fig3_rows(paper: dict) -> list[dict]:
    """Fig. 3: GSM8K of three dominance orders (line 241); their p and s are not stated."""
    v = _figure(paper, "fig3")["text_values"]["gsm8k_percent_by_order"]
    return [{"table": "fig3", "order": order, "gsm8k": v[key]} for key, order in ORDERS.items()]


def _fig4_rows(paper: dict) -> list[dict]:
    """Fig. 4b: the optimum's gains over the baseline (line 253), carried as the optimum's scores
    over a 0 that stands for the baseline's score (MATH's is not printed)."""
    v = _figure(paper, "fig4")["values"]["optimum_vs_baseline"]
    return [{"table": "fig4", "p": v["baseline_p"], "s": v["baseline_s"], "selected": False, "gsm8k": 0.0, "math": 0.0},
            {"table": "fig4", "p": v["p"], "s": v["s"], "selected": True,
             "gsm8k": v["gsm8k_gain_points"], "math": v["math_gain_points"]}]


def _fig5_rows(paper: dict) -> list[dict]:
    """Fig. 5: M³'s OOD gains under Task Arithmetic and TIES-Merging (line 274), carried as the M³
    score over a 0 for the score without it (Average Merging's and the absolute scores are plot-only)."""
    v = _figure(paper, "fig5")["text_values"]["m3_gain_percent"]
    out = []
    for key, method in (("task_arithmetic", "task_arithmetic"), ("ties_merging", "ties")):
        for models, gain in zip(OOD_MODELS, v[key]):
            out += [{"table": "fig5", "method": method, "models": models, "m3": False, "ood": 0.0},
                    {"table": "fig5", "method": method, "models": models, "m3": True, "ood": gain}]
    return out


def paper_evidence(paper: dict, ids, n_seeds: int = 3) -> dict[str, Evidence]:
    """The paper's own numbers as if they were our results (``reprolib.claims.printed_evidence``),
    by evidence id: table1, table2, table5, table6, table7, fig2, fig3, fig4, fig5. The figures print
    only the few numbers of the text; fig4 and fig5 only gains, which every statistic reading them
    uses through a difference."""
    build = {"table1": lambda: _merge_rows(paper, "table1"), "table7": lambda: _merge_rows(paper, "table7"),
             "table2": lambda: _attack_rows(paper, "table2"), "table5": lambda: _attack_rows(paper, "table5"),
             "table6": lambda: _attack_rows(paper, "table6"), "fig2": lambda: _fig2_rows(paper),
             "fig3": lambda: _fig3_rows(paper), "fig4": lambda: _fig4_rows(paper), "fig5": lambda: _fig5_rows(paper)}
    out = {}
    for evidence_id in ids:
        rows = build[evidence_id]()
        out[evidence_id] = printed_evidence(rows, n_seeds, [c for c in FLOATS if c in rows[0]])
    return out


# ----------------------------------------------------------------------------- statistics
#
# Each helper takes one seed's records (plain dicts) and returns what the statistic aggregates; a
# run missing from a comparison, or scored on a benchmark its counterpart is not, is an error
# naming it (a min or a share that skipped it would quietly drop a cell).

CLAIMS = ClaimRegistry(PAPER)
WITHOUT, WITH = {"m3": False}, {"m3": True}
M3_ALONE, DARE_ALONE, BOTH = {"m3": True, "dare": False}, {"m3": False, "dare": True}, {"m3": True, "dare": True}


def _has(ev: Evidence, column: str) -> bool:
    """Some run of ``ev`` has a score in ``column``."""
    return column in ev.rows and bool(ev.rows[column].notna().any())


def _cells(g, keys, *runs, where: str) -> dict:
    """{(labels of ``keys``…, benchmark): (score of each of ``runs``)}: per group of ``g`` by ``keys``,
    the runs picked by the label dicts ``runs``, on every benchmark they were evaluated on."""
    out = {}
    for key, rows in group_by(g, *keys).items():
        picked = [only(rows, f"{where} {key}", **labels) for labels in runs]
        for b in BENCHMARKS:
            scored = [present(r.get(b)) for r in picked]
            if any(scored) and not all(scored):
                raise ValueError(f"{where} {key} (seed {rows[0]['seed']}): {b!r} is scored for some of {list(runs)} only")
            if all(scored):
                out[(*key, b)] = tuple(r[b] for r in picked)
    return out


def _m3_gains(g) -> dict:
    """Table 1: (method, dare, models, benchmark) → score with M³ − score without."""
    merges = [r for r in g if r["method"] != "expert"]
    return {k: w - wo for k, (wo, w) in _cells(merges, ("method", "dare", "models"), WITHOUT, WITH, where="table1").items()}


def _table7(g) -> dict:
    """Table 7: (method, models, benchmark) → (M³ alone, DARE alone, M³ + DARE)."""
    return _cells(g, ("method", "models"), M3_ALONE, DARE_ALONE, BOTH, where="table7")


def _lambdas(g) -> list[float]:
    """M³'s chosen λ of every Table 1 merge."""
    lams = [r["lam"] for r in g if r["method"] != "expert" and r["m3"] == True]  # noqa: E712  (numpy bools)
    if not lams or not all(present(x) for x in lams):
        raise ValueError(f"table1 (seed {g[0]['seed']}): an M³ run without its λ")
    return lams


def _pdr(r) -> float:
    """PDR in % (eq. 7) from the clean and attacked scores when both are there, else as printed
    (no clean score to lose: no drop)."""
    if present(r.get("attacked")):
        return 100.0 * (r["clean"] - r["attacked"]) / r["clean"] if r["clean"] else 0.0
    return r["pdr"]


def _pdr_changes(g) -> dict:
    """(attack, models, dataset) → PDR with M³ − PDR without, over the pairs whose two halves are
    there (Table 6 prints no Math & Code / CoLA pair with M³)."""
    out = {}
    for key, rows in group_by(g, "attack", "models", "dataset").items():
        if {bool(r["m3"]) for r in rows} == {False, True}:
            out[key] = _pdr(only(rows, f"{key}", **WITH)) - _pdr(only(rows, f"{key}", **WITHOUT))
    return out


def _worst_attack_share(g) -> float:
    """The lowest, over attacks, share of (models, dataset) pairs whose PDR M³ lowers."""
    changes = _pdr_changes(g)
    return min(share(v < 0 for k, v in changes.items() if k[0] == attack) for attack in {k[0] for k in changes})


def _ood_gains(g) -> list[float]:
    """Fig. 5: the OOD score with M³ − without, per (method, models)."""
    return [only(rows, f"fig5 {key}", **WITH)["ood"] - only(rows, f"fig5 {key}", **WITHOUT)["ood"]
            for key, rows in group_by(g, "method", "models").items()]


def _mean_score(r) -> float:
    """A configuration's performance: the mean of its benchmark scores."""
    return statistics.fmean(r[b] for b in BENCHMARKS if present(r.get(b)))


def _at(r, p: float, s: float) -> bool:
    return math.isclose(r["p"], p) and math.isclose(r["s"], s)


def _baseline(g) -> dict:
    """The centroid: p = 0 (equal weights), s = 1 (Task Arithmetic's direction, lines 230, 253)."""
    rows = [r for r in g if _at(r, 0, 1)]
    if len(rows) != 1:
        raise ValueError(f"p-series grid (seed {g[0]['seed']}): expected one (p = 0, s = 1) run, found {len(rows)}")
    return rows[0]


def _peak(g) -> dict:
    """The grid's best configuration (highest mean score; the first of equals)."""
    return max(g, key=_mean_score)


def _m3_point(g) -> dict:
    """M³'s configuration: the one marked ``selected`` (chosen on a validation split, line 188), or
    the grid's peak when none is marked."""
    chosen = [r for r in g if present(r.get("selected")) and bool(r["selected"])]
    if len(chosen) > 1:
        raise ValueError(f"p-series grid (seed {g[0]['seed']}): {len(chosen)} configurations marked selected")
    return chosen[0] if chosen else _peak(g)


def _gsm8k_by_first(g, role: str) -> list[float]:
    values = [r["gsm8k"] for r in g if r["order"].split(">")[0] == role]
    if not values:
        raise ValueError(f"fig3 (seed {g[0]['seed']}): no order with {role!r} first")
    return values


def _beats_experts(g) -> float:
    """Line 224: the best Math & Code merge with M³, as the share of its benchmarks on which it
    beats each expert (Math, Code) scored there."""
    experts = [only(g, "table1 expert", method="expert", models=m) for m in ("math", "code")]

    def one(merge):
        flags = []
        for b in BENCHMARKS:
            rivals = [e[b] for e in experts if present(e.get(b))]
            if present(merge.get(b)) and rivals:
                flags.append(merge[b] > max(rivals))
        return share(flags)

    merges = [r for r in g if r["method"] != "expert" and r["models"] == "math_code" and r["m3"] == True]  # noqa: E712
    if not merges:
        raise ValueError(f"table1 (seed {g[0]['seed']}): no Math & Code merge with M³")
    return max(one(m) for m in merges)


# ----------------------------------------------------------------------------- parts shared by claims


def _consistent_gains(claim: str, ev) -> object:
    return verdict_on(claim, "min over Table 1 (method, pair, benchmark) cells of (with M³ − without)",
                      lambda r: by_seed(r, lambda g: min(_m3_gains(g).values())), ev, "higher")


def _combined_beats_both(claim: str, ev) -> object:
    return verdict_on(claim, "share of Table 7 (method, pair, benchmark) cells where M³ + DARE beats both M³ alone and DARE alone",
                      lambda r: by_seed(r, lambda g: share(both > max(m, d) for m, d, both in _table7(g).values())),
                      ev, "higher", 0.5)


def _adversarial(claim: str, ev: dict) -> object:
    rows = Evidence.concat([ev["table2"], ev["table5"], ev["table6"]])
    return verdict_on(claim, "min over attacks (Tables 2, 5, 6) of the share of (pair, dataset) where M³ lowers the PDR",
                      lambda r: by_seed(r, _worst_attack_share), rows, "higher", 0.5)


def _ood(claim: str, ev, every: bool) -> object:
    if every:
        return verdict_on(claim, "min over Fig. 5 (method, pair) of the OOD gain with M³",
                          lambda r: by_seed(r, lambda g: min(_ood_gains(g))), ev, "higher")
    return verdict_on(claim, "share of Fig. 5 (method, pair) where M³ raises the OOD score",
                      lambda r: by_seed(r, lambda g: share(x > 0 for x in _ood_gains(g))), ev, "higher", 0.5)


ADVERSARIAL_HOW = ("in each attack (Table 2 StressTest, Table 5 DeepWordBug, Table 6 BERTAttack) M³ lowers the PDR "
                   "in more than half of the (pair, dataset) cases (the lowest share over attacks > ½; our reading: "
                   "robustness is enhanced against each attack the paper reports)")


# ----------------------------------------------------------------------------- claims: Table 1


@CLAIMS.register("table1_m3_gains", ("table1",), anchor=f"{PAGE}#table1",
                 how="smallest gain of M³ over the same method without it, over Table 1's (method, pair, benchmark) "
                     "cells (> 0: 'consistently unlocks performance gains' = every cell); Task Arithmetic, Math & Code, "
                     "MBPP: with − without (> 0; the paper's 10.4 points), when MBPP is scored")
def table1_m3_gains(ev):
    rows = ev["table1"]
    parts = [_consistent_gains("table1_m3_gains/consistently", rows)]
    if _has(rows, "mbpp"):
        parts.append(verdict_on("table1_m3_gains/example", "Task Arithmetic, Math & Code, MBPP: with M³ − without",
                                lambda r: by_seed(r, lambda g: _m3_gains(g)[("task_arithmetic", False, "math_code", "mbpp")]),
                                rows, "higher"))
    return all_of("table1_m3_gains", "M³ gains in every Table 1 cell; the Math & Code MBPP example", parts)


@CLAIMS.register("table1_lambda_not_half", ("table1",), anchor=f"{PAGE}#table1",
                 how=f"smallest |λ − 0.5| over the λ's M³ chose in Table 1 (> {LAMBDA_TOL:g}: 'consistently deviate' "
                     f"= every λ off the mean by more than {LAMBDA_TOL:g}, our tolerance)")
def table1_lambda_not_half(ev):
    return verdict_on("table1_lambda_not_half", "min over Table 1's M³ merges of |λ − 0.5|",
                      lambda r: by_seed(r, lambda g: min(abs(x - 0.5) for x in _lambdas(g))), ev["table1"], "higher", LAMBDA_TOL)


@CLAIMS.register("asymmetric_optimum", ("table1",), optional=("fig4",), anchor=f"{PAGE}#table1",
                 how=f"share of Table 1's chosen λ's with |λ − 0.5| > {LAMBDA_TOL:g} (> {1 - RARELY:g}: 'rarely reside on "
                     f"the bisector', fewer than a quarter on it, our reading); with the three-model grid, p of its peak "
                     "(> 0: the best direction is skewed)")
def asymmetric_optimum(ev):
    parts = [verdict_on("asymmetric_optimum/two_models", f"share of Table 1's λ's with |λ − 0.5| > {LAMBDA_TOL:g}",
                        lambda r: by_seed(r, lambda g: share(abs(x - 0.5) > LAMBDA_TOL for x in _lambdas(g))),
                        ev["table1"], "higher", 1 - RARELY)]
    if "fig4" in ev:
        parts.append(verdict_on("asymmetric_optimum/three_models", "p of the p-series grid's peak",
                                lambda r: by_seed(r, lambda g: _peak(g)["p"]), ev["fig4"], "higher"))
    return all_of("asymmetric_optimum", "the best merges lie off the bisector", parts)


@CLAIMS.register("math_code_beats_experts", ("table1",), anchor=f"{PAGE}#table1",
                 how="the best Math & Code merge with M³ in Table 1: share of its benchmarks on which it beats each "
                     f"expert (WizardMath, Code-Alpaca) scored there (> {FOUR_OF_FIVE:g}: '4 out of 5 datasets')")
def math_code_beats_experts(ev):
    return verdict_on("math_code_beats_experts", "best Math & Code M³ merge: share of benchmarks above both experts",
                      lambda r: by_seed(r, _beats_experts), ev["table1"], "higher", FOUR_OF_FIVE)


# ----------------------------------------------------------------------------- claims: three models (Figs. 2–4)


@CLAIMS.register("three_model_centroid", ("fig2",), anchor=f"{PAGE}#fig2",
                 how="M³'s configuration (the one selected, else the grid's peak) minus the centroid (p = 0, s = 1), "
                     "on AlpacaEval and on GSM8K (each > 0: 'boosting AlpacaEval … and GSM8K')")
def three_model_centroid(ev):
    rows = ev["fig2"]
    parts = [verdict_on(f"three_model_centroid/{b}", f"{b}: M³'s configuration − the centroid",
                        lambda r, b=b: by_seed(r, lambda g: _m3_point(g)[b] - _baseline(g)[b]), rows, "higher")
             for b in ("alpacaeval", "gsm8k")]
    return all_of("three_model_centroid", "M³'s direction and scale beat the centroid on AlpacaEval and GSM8K", parts)


@CLAIMS.register("direction_ordering", ("fig3",), anchor=f"{PAGE}#fig3",
                 how="GSM8K of the weakest Math-first order minus that of the best Instruct-first order (> 0: 'in stark "
                     f"contrast'); best Instruct-first GSM8K over the weakest Math-first (< {COLLAPSE:g}: 'catastrophic "
                     "collapse', our reading)")
def direction_ordering(ev):
    rows = ev["fig3"]

    def contrast(g):
        return min(_gsm8k_by_first(g, "math")) - max(_gsm8k_by_first(g, "lm"))

    def collapse(g):
        weakest = min(_gsm8k_by_first(g, "math"))
        return max(_gsm8k_by_first(g, "lm")) / weakest if weakest else 1.0

    parts = [verdict_on("direction_ordering/contrast", "GSM8K: weakest Math-first order − best Instruct-first order",
                        lambda r: by_seed(r, contrast), rows, "higher"),
             verdict_on("direction_ordering/collapse", "GSM8K: best Instruct-first order / weakest Math-first order",
                        lambda r: by_seed(r, collapse), rows, "lower", COLLAPSE)]
    return all_of("direction_ordering", "Math-first orders keep GSM8K; Instruct-first collapses it", parts)


@CLAIMS.register("fig4_optimum_gains", ("fig4",), anchor=f"{PAGE}#fig4",
                 how="M³'s configuration (selected, else the peak) minus the baseline (p = 0, s = 1): the smaller of the "
                     "GSM8K and MATH gains (> 0: 'substantial improvements on mathematical tasks'); with other benchmarks "
                     f"scored, their largest relative drop (< {MINIMAL:.0%}: 'minimal degradation elsewhere', our reading; "
                     "the paper prints none of them)")
def fig4_optimum_gains(ev):
    rows = ev["fig4"]
    maths = [b for b in MATH_TASKS if _has(rows, b)]
    others = [b for b in BENCHMARKS if b not in MATH_TASKS and _has(rows, b)]

    def drop(g):
        best, base = _m3_point(g), _baseline(g)
        return max((base[b] - best[b]) / base[b] if base[b] else 0.0 for b in others)

    parts = [verdict_on("fig4_optimum_gains/maths", "min over GSM8K and MATH of (M³'s configuration − baseline)",
                        lambda r: by_seed(r, lambda g: min(_m3_point(g)[b] - _baseline(g)[b] for b in maths)), rows, "higher")]
    if others:
        parts.append(verdict_on("fig4_optimum_gains/elsewhere", "largest relative drop on the other benchmarks",
                                lambda r: by_seed(r, drop), rows, "lower", MINIMAL))
    return all_of("fig4_optimum_gains", "the optimum gains on maths and loses little elsewhere", parts)


@CLAIMS.register("p_series_peak", ("fig4",), anchor=f"{PAGE}#fig4",
                 how="performance = mean benchmark score of a configuration: the best configuration other than "
                     "(p = 0, s = 1) minus (p = 0, s = 1) (> 0: 'not at naive averaging'); with p = 3 runs, the best "
                     "with p ≠ 3 minus the best with p = 3 (> 0: 'nor at extreme skewing'); share of seeds whose peak "
                     "has p = 1 (> ½; s = 1.7 is not tested: the paper's s grid is not stated)")
def p_series_peak(ev):
    rows = ev["fig4"]

    def not_averaging(g):
        return max(_mean_score(r) for r in g if not _at(r, 0, 1)) - _mean_score(_baseline(g))

    def not_extreme(g):
        return (max(_mean_score(r) for r in g if r["p"] != P_EXTREME)
                - max(_mean_score(r) for r in g if r["p"] == P_EXTREME))

    parts = [verdict_on("p_series_peak/not_averaging", "best configuration but (0, 1) − (p = 0, s = 1), mean score",
                        lambda r: by_seed(r, not_averaging), rows, "higher")]
    if (rows.rows["p"] == P_EXTREME).any():
        parts.append(verdict_on("p_series_peak/not_extreme", "best with p ≠ 3 − best with p = 3, mean score",
                                lambda r: by_seed(r, not_extreme), rows, "higher"))
    parts.append(verdict_on("p_series_peak/p_one", "the peak has p = 1 (1 or 0 per seed)",
                            lambda r: by_seed(r, lambda g: float(_peak(g)["p"] == 1)), rows, "higher", 0.5))
    return all_of("p_series_peak", "the peak is at p = 1, neither at the centroid nor at p = 3", parts)


# ----------------------------------------------------------------------------- claims: DARE (Table 7)


@CLAIMS.register("m3_beats_dare", ("table7",), anchor=f"{PAGE}#table7",
                 how="share of Table 7 (method, pair, benchmark) cells where M³ alone beats DARE alone (> ½: "
                     "'generally'); Task Arithmetic, Math & Code, MBPP: M³ alone − DARE alone (> 0; the paper's 19.0 "
                     "vs 9.8), when MBPP is scored")
def m3_beats_dare(ev):
    rows = ev["table7"]
    parts = [verdict_on("m3_beats_dare/generally", "share of Table 7 cells where M³ alone beats DARE alone",
                        lambda r: by_seed(r, lambda g: share(m > d for m, d, _ in _table7(g).values())), rows, "higher", 0.5)]
    if _has(rows, "mbpp"):
        def example(g):
            m3, dare, _ = _table7(g)[("task_arithmetic", "math_code", "mbpp")]
            return m3 - dare

        parts.append(verdict_on("m3_beats_dare/example", "Task Arithmetic, Math & Code, MBPP: M³ alone − DARE alone",
                                lambda r: by_seed(r, example), rows, "higher"))
    return all_of("m3_beats_dare", "M³ alone beats DARE alone in most cells, and in the MBPP example", parts)


COMBINED_HOW = ("share of Table 7 (method, pair, benchmark) cells where M³ + DARE scores above both M³ alone and DARE "
                "alone (> ½; an unqualified 'yields gains' read as the majority of cells)")


@CLAIMS.register("m3_dare_additive", ("table7",), anchor=f"{PAGE}#table7", how=COMBINED_HOW)
def m3_dare_additive(ev):
    return _combined_beats_both("m3_dare_additive", ev["table7"])


@CLAIMS.register("abstract_orthogonal_dare", ("table7",), anchor=f"{PAGE}#table7", how=COMBINED_HOW)
def abstract_orthogonal_dare(ev):
    return _combined_beats_both("abstract_orthogonal_dare", ev["table7"])


# ----------------------------------------------------------------------------- claims: robustness (Fig. 5, Tables 2, 5, 6)


@CLAIMS.register("ood_gains", ("fig5",), anchor=f"{PAGE}#fig5",
                 how="smallest OOD gain of M³ over the (method, pair) cells of Fig. 5 (> 0: 'consistently … across all "
                     "model pairs and merging methods'); the paper prints Task Arithmetic's and TIES-Merging's gains only")
def ood_gains(ev):
    return _ood("ood_gains", ev["fig5"], every=True)


@CLAIMS.register("stresstest_pdr", ("table2",), anchor=f"{PAGE}#table2",
                 how="share of Table 2's (pair, dataset) cases where M³ lowers the StressTest PDR (> ½: an unqualified "
                     "'improves robustness' read as the majority); the two named cases (Math & Code CoLA, LM & Code "
                     "SST2): the larger PDR change with M³ (< 0)")
def stresstest_pdr(ev):
    rows = ev["table2"]
    named = (("stresstest", "math_code", "cola"), ("stresstest", "lm_code", "sst2"))
    parts = [verdict_on("stresstest_pdr/improves", "share of Table 2 (pair, dataset) where M³ lowers the PDR",
                        lambda r: by_seed(r, lambda g: share(v < 0 for v in _pdr_changes(g).values())), rows, "higher", 0.5),
             verdict_on("stresstest_pdr/examples", "max over the two named cases of (PDR with M³ − without)",
                        lambda r: by_seed(r, lambda g: max(_pdr_changes(g)[k] for k in named)), rows, "lower")]
    return all_of("stresstest_pdr", "M³ lowers the StressTest PDR in most cases, and in both named ones", parts)


@CLAIMS.register("abstract_robustness", ("table2", "table5", "table6"), optional=("fig5",), anchor=f"{PAGE}#table2",
                 how=f"{ADVERSARIAL_HOW}; with Fig. 5, the share of (method, pair) where M³ raises the OOD score (> ½)")
def abstract_robustness(ev):
    parts = [_adversarial("abstract_robustness/adversarial", ev)]
    if "fig5" in ev:
        parts.insert(0, _ood("abstract_robustness/ood", ev["fig5"], every=False))
    return all_of("abstract_robustness", "M³ enhances OOD and adversarial robustness", parts)


@CLAIMS.register("conclusion", ("table1", "table2", "table5", "table6", "table7"), optional=("fig5",), anchor=f"{PAGE}#table1",
                 how="task: the smallest gain of M³ over Table 1's cells (> 0: 'consistently improves task performance'); "
                     f"OOD (with Fig. 5): share of (method, pair) with a gain (> ½); adversarial: {ADVERSARIAL_HOW}; "
                     f"DARE: {COMBINED_HOW}")
def conclusion(ev):
    parts = [_consistent_gains("conclusion/task", ev["table1"])]
    if "fig5" in ev:
        parts.append(_ood("conclusion/ood", ev["fig5"], every=False))
    parts += [_adversarial("conclusion/adversarial", ev), _combined_beats_both("conclusion/dare", ev["table7"])]
    return all_of("conclusion", "M³ improves every cell, OOD and adversarial robustness, and adds to DARE", parts)
