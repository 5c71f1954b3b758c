"""The LATA chapter (Layer-Aware Task Arithmetic, seed 000): its runs and its claims.

Fig. 5 (layer similarity ranks), Tables 3–15 (task learning) and Fig. 4 (task forgetting), built
on the chapter kit (``reprolib.kit``): every merge goes through ``Scorer.score_merge`` and every
claim through ``reprolib.claims``.

Choices where the paper is silent (also stated on the pages):
- TIES ``k`` and DARE+TIES ``k`` are the fraction of entries KEPT (the paper's (p, k) pairs sum
  to 1); per-task λ's are the per-model weights, the global λ is 1; TIES's disjoint mean divides
  by the number of agreeing models (TIES paper), not by the sum of weights.
- "LATA + TIES/DARE/DARE+TIES" (Table 4) feed the pure vectors τ'_i into TIES/DARE with the main
  text's k = 0.7, p = 0.3, (p, k) = (0.1, 0.9), in one step (not sequentially).
- Safety Arithmetic is its weight-space step only (harm-direction removal with the paper's
  per-language λ, on the top ``sa_density`` magnitudes of the UA vector); its in-context-vector
  step (α) steers activations at inference and is not a merge.
- The matched control ("TA, blocks only, flat"): LATA's merge with every block weighted by the
  mean of LATA's block weights — the same average weight and the same untouched embeddings and
  head, without layer awareness.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from dataclasses import dataclass

from reprolib.claims import (ClaimRegistry, Evidence, all_of, by_seed, group_by, present, printed_evidence, share,
                             verdict_on)
from reprolib.merge import methods as M
from reprolib.models import seeded
from reprolib.vectors import block_index, is_block, layer_cosines, task_vector

PAPER = "lata"
TASK_ROLES = {"UA": "ua", "Math": "math", "Code": "code"}
TASK_METRIC = {"ua": "harm", "math": "math", "code": "code"}   # the score that says a task was learned
PAPER_METRICS = {"ppl": "ppl", "harm": "harm", "gsm8k": "math", "humaneval": "code"}
TASKS = ("harm", "math", "code")
VARIANTS = {"linear-drop-by-rank": "linear", "logarithmic-drop-by-rank": "log", "drop-with-threshold": "threshold"}
BASELINES = ("TA", "DARE", "TIES", "DARE + TIES")
COMBOS = ("LATA + TIES", "LATA + DARE", "LATA + DARE + TIES")
CONTROL = "TA, blocks only, flat (control)"
# the paper's five languages in Table 2's order, standing for the zoo's lang_a … lang_e
PAPER_LANGUAGES = {"lang_a": "chinese", "lang_b": "japanese", "lang_c": "german", "lang_d": "russian", "lang_e": "thai"}
PAPER_SCALE = "Gemma-2-9B-it and Llama-3-8B-Instruct with public UA, maths and code fine-tunes (Table 1)"
FORGET_SCALE = "Llama-3-8B-Instruct, the DevsDoCode UA fine-tune and five language-specific Llama-3-8B models (Table 2)"
COMPETITIVE = 0.02    # table7: "competitive" = within 2 % of the best baseline's score (our reading)
ON_PAR = 0.05         # forgetting: utility "on par" = perplexity up by less than 5 % (our reading)


def open_lata(kind: str = "learning", **params):
    """The chapter for a LATA notebook (``kind``: learning | forgetting | zoo), from its parameters."""
    from reprolib.kit import open_chapter

    seeded_roles = {"learning": ("ua", "math", "code"), "forgetting": ("ua",), "zoo": ()}[kind]
    scale = FORGET_SCALE if kind == "forgetting" else PAPER_SCALE
    return open_chapter(PAPER, "lata", seeded_roles=seeded_roles, paper_scale=scale, claims=CLAIMS, **params)


@functools.cache
def main_settings() -> dict:
    """LATA §4's baseline settings (lines 622–625), read once from the transcription."""
    from reprolib.published import load_published

    h = load_published(PAPER)["hyperparameters"]
    t, f = h["task_learning"], h["task_forgetting"]
    return {"ties_k": t["TIES"]["k"], "dare_p": t["DARE"]["p"], "dare_ties_p": t["DARE_TIES"]["p"],
            "dare_ties_k": t["DARE_TIES"]["k"], "sa_lambda": {lang: v["lambda"] for lang, v in f["safety_arithmetic"].items()},
            "forget_ta_lambda": f["TA"]["lambda"], "forget_lata_lambda": f["LATA"]["lambda"], "forget_sigma": f["LATA"]["sigma"]}


# ----------------------------------------------------------------------------- Fig. 5: layer ranks


def layer_table(models, experts=("ua", "math", "code"), seed: int = 0, sigma: float = 0.95):
    """Per transformer block and expert: cos(τ_comp^i, τ_instr^i) (eq. 6), its rank (1 = most
    similar to the instruction vector), and the linear / log / threshold weights (eq. 8–10)."""
    import pandas as pd

    base, instruct = models.state_dict("base"), models.state_dict("instruct")
    instruction_vector = {k: task_vector(instruct[k], base[k]) for k in base if base[k].is_floating_point()}
    rows = []
    for expert in experts:
        ft = models.state_dict(seeded(expert, seed))
        complex_vector = {k: task_vector(ft[k], base[k]) for k in instruction_vector}
        cos = {layer: c for layer, c in layer_cosines(complex_vector, instruction_vector).items() if is_block(layer)}
        ranks = M.lata_ranks(cos)
        weights = {s: M.lata_layer_weights(cos, s, sigma) for s in ("linear", "log", "threshold")}
        for layer, c in cos.items():
            rows.append({"expert": expert, "seed": seed, "layer": block_index(layer), "cosine": c, "rank": ranks[layer],
                         **{f"w_{s}": weights[s][layer] for s in weights}})
    return pd.DataFrame(rows)


def layers_for(ch, experts=("ua", "math", "code"), sigma: float = 0.95):
    import pandas as pd

    return pd.concat([layer_table(ch.models, experts, s, sigma) for s in ch.seeds], ignore_index=True)


def retained_fraction(layers, sigma: float) -> dict[str, float]:
    """Share of blocks whose cosine is below σ (kept by Drop-with-Threshold), per expert and seed."""
    return (layers.assign(kept=layers["cosine"] < sigma).groupby(["expert", "seed"])["kept"].mean()).to_dict()


# ----------------------------------------------------------------------------- task learning


@dataclass(frozen=True)
class Run:
    """One merge of experts into instruct, labelled as in the paper's tables."""

    tasks: tuple[str, ...]            # zoo roles, e.g. ("ua", "math")
    method: str                       # TA | DARE | TIES | DARE + TIES | LATA | LATA + … | CONTROL
    lambdas: tuple[float, ...]        # per-task λ_i
    p: float | None = None            # DARE drop rate
    k: float | None = None            # TIES kept fraction
    variant: str | None = None        # LATA: linear | log | threshold
    sigma: float = 0.95               # LATA threshold variant
    seed: int = 0                     # training seed of the experts and seed of the DARE masks

    @property
    def label(self) -> str:
        return " + ".join(k for k, v in TASK_ROLES.items() if v in self.tasks)

    def merge_args(self) -> tuple[str, dict, list[dict]]:
        """(registry method, parameters, per-model parameters) of this run."""
        weights = [{"weight": lam} for lam in self.lambdas]
        with_k = [dict(w, density=self.k) for w in weights]
        simple = {"TA": ("task_arithmetic", {}, weights), "DARE": ("dare_linear", {"drop_rate": self.p}, weights),
                  "TIES": ("ties", {}, with_k), "DARE + TIES": ("dare_ties", {"drop_rate": self.p}, with_k)}
        if self.method in simple:
            return simple[self.method]
        combine = {"LATA": "ta", CONTROL: "ta", "LATA + TIES": "ties", "LATA + DARE": "dare",
                   "LATA + DARE + TIES": "dare_ties"}.get(self.method)
        if combine is None:
            raise ValueError(f"unknown method {self.method!r}")
        params = {"scheme": self.variant, "sigma": self.sigma, "combine": combine, "flatten": self.method == CONTROL}
        if combine in ("dare", "dare_ties"):
            params["drop_rate"] = self.p
        return "lata", params, with_k if combine in ("ties", "dare_ties") else weights

    def score(self, scorer) -> dict:
        """Merged into instruct; task vectors from instruct (LATA's cosines also read the base)."""
        method, params, model_params = self.merge_args()
        metrics = ["ppl"] + [TASK_METRIC[t] for t in self.tasks]
        return scorer.score_merge(method, [seeded(t, self.seed) for t in self.tasks], "instruct", "instruct",
                                  params, model_params, self.seed, metrics)


def run_from_row(row: dict, sigma: float = 0.95, seed: int = 0) -> Run:
    """The run that reproduces one published table row (Tables 3–15)."""
    tasks = tuple(TASK_ROLES[t.strip()] for t in row["tasks"].split("+"))
    lambdas = tuple(float(row["lambda"][t]) for t in tasks)
    method = row["method"].replace(" (Ours)", "")
    p, k = row.get("p"), row.get("k")
    p = None if p is None or p != p else float(p)
    k = None if k is None or k != k else float(k)
    main = main_settings()
    if method in ("LATA + TIES", "LATA + DARE + TIES"):
        k = k or (main["ties_k"] if method == "LATA + TIES" else main["dare_ties_k"])
    if method in ("LATA + DARE", "LATA + DARE + TIES"):
        p = p or (main["dare_p"] if method == "LATA + DARE" else main["dare_ties_p"])
    variant = VARIANTS.get(row.get("lata_variant")) if method.startswith("LATA") else None
    return Run(tasks, method, lambdas, p, k, variant, sigma if variant == "threshold" else 0.95, seed)


def control_of(run: Run) -> Run:
    """The matched control of a LATA run: same blocks, same mean block weight, no ranks."""
    return dataclasses.replace(run, method=CONTROL)


def table_runs(ch, table_id: str, sigma: float = 0.95) -> list[Run]:
    """The runs of one table for every seed (seed-major, each seed in the table's order)."""
    return [run_from_row(r, sigma, s) for s in ch.seeds for r in ch.table(table_id)["rows"]]


def _row(run: Run, table: str) -> dict:
    return {"table": table, "tasks": run.label, "method": run.method, "variant": run.variant,
            "lambda": "/".join(f"{x:g}" for x in run.lambdas), "p": run.p, "k": run.k, "seed": run.seed}


def score_runs(ch, runs: list[Run], table: str, progress: bool = False) -> Evidence:
    """Rows (labels + scores; NaN where a metric does not apply) and per-item values of the runs."""
    import pandas as pd

    results = ch.scorer.grid([functools.partial(r.score, ch.scorer) for r in runs], desc=table, progress=progress)
    rows = [{**_row(r, table), **res["scores"]} for r, res in zip(runs, results)]
    return Evidence(pd.DataFrame(rows).reindex(columns=list(_row(runs[0], table)) + ["ppl", *TASKS]),
                    [res["items"] for res in results])


def learning_evidence(ch, table_ids, sigma: float = 0.95, progress: bool = False) -> dict[str, Evidence]:
    """Evidence per table id, plus ``control``: the matched control of every LATA run of Table 3."""
    out = {t: score_runs(ch, table_runs(ch, t, sigma), t, progress) for t in table_ids}
    if "table3" in out:
        lata = [run_from_row(r, sigma, s) for s in ch.seeds for r in ch.table("table3")["rows"]
                if r["method"].startswith("LATA")]
        out["control"] = score_runs(ch, [control_of(r) for r in lata], "control", progress)
    return out


def paper_evidence(paper: dict, ids, n_seeds: int = 3) -> dict[str, Evidence]:
    """The paper's own numbers as if they were our results (``reprolib.claims.printed_evidence``):
    each table's rows in our column names. ``fig4`` holds the only forgetting numbers printed
    (German harm before and after LATA, line 871)."""
    out = {}
    tables = {t["id"]: t for t in paper["tables"]}
    for table_id in ids:
        if table_id == "fig4":
            values = next(f for f in paper["figures"] if f["id"] == "fig4")["values"]["german_harm"]
            rows = [{"language": "german", "kind": kind, "method": kind, "harm": values[key]}
                    for kind, key in (("original", "before"), ("LATA", "after_lata"))]
            out[table_id] = printed_evidence(rows, n_seeds, ["harm"])
            continue
        rows = [{**_row(run_from_row(r), table_id), **{ours: r.get(col) for col, ours in PAPER_METRICS.items()}}
                for r in tables[table_id]["rows"]]
        out[table_id] = printed_evidence(rows, n_seeds, PAPER_METRICS.values())
    return out


def side_by_side(ch, table_id: str, ours: Evidence):
    from reprolib.kit.pages import side_by_side as sbs

    def labels(row, run):
        method = row["method"].replace(" (Ours)", "")
        if row.get("lata_variant"):
            method += f" ({VARIANTS[row['lata_variant']]})"
        return {"tasks": row["tasks"], "method": method, "λ": "/".join(f"{v:g}" for v in row["lambda"].values()),
                "p (ours)": run["p"], "k (ours)": run["k"]}

    return sbs(ch.table(table_id), ours.rows, PAPER_METRICS, labels)


# ----------------------------------------------------------------------------- task forgetting


def forgetting_methods(language: str, sigma: float, lam_lata: float, lam_ta: float, sa_density: float,
                       dare_p: float = 0.3, sa_lambda: float | None = None) -> dict:
    """Method kind -> (label, registry method, params, per-model params) removing the UA vector from
    a language target (None: the target itself). TA and DARE negation subtract λ·τ_UA (DARE-masked)
    from every tensor; Safety Arithmetic its top ``sa_density`` entries, with the paper's λ for the
    language this target stands for (line 626) unless ``sa_lambda`` is given; LATA the pure vector
    of the blocks only."""
    sa = sa_lambda if sa_lambda is not None else main_settings()["sa_lambda"][PAPER_LANGUAGES.get(language, "chinese")]
    return {
        "original": ("original", None),
        "TA": (f"TA negation (λ={lam_ta:g})", ("safety_arithmetic", {"lambda": lam_ta}, [{"density": 1.0}])),
        "DARE": (f"DARE negation (λ={lam_ta:g}, p={dare_p:g})", ("dare_linear", {"drop_rate": dare_p}, [{"weight": -lam_ta}])),
        "SA": (f"Safety Arithmetic (top {sa_density:.0%})", ("safety_arithmetic", {"lambda": sa}, [{"density": sa_density}])),
        "LATA": (f"LATA threshold (σ={sigma:g}, λ={lam_lata:g})",
                 ("lata", {"scheme": "threshold", "sigma": sigma}, [{"weight": -lam_lata}])),
    }


def forgetting_evidence(ch, languages, sigma: float, lam_lata: float, lam_ta: float, sa_density: float,
                        dare_p: float = 0.3, progress: bool = False) -> Evidence:
    """Harm (1–5) and in-language perplexity of each language target before and after removing
    the UA vector of each training seed."""
    import pandas as pd

    from reprolib.zoo.report import language_eval     # the sets translated into the language, its judge

    jobs, rows = [], []
    for seed in ch.seeds:
        ua = seeded("ua", seed)
        for lang in languages:
            sets, judge = language_eval(ch.scorer.sets, lang)
            for kind, (label, spec) in forgetting_methods(lang, sigma, lam_lata, lam_ta, sa_density, dare_p).items():
                kw = {"metrics": ("ppl", "harm"), "sets": sets, "judge": judge}
                if spec is None:
                    jobs.append(functools.partial(ch.scorer.score_role, lang, **kw))
                else:
                    method, params, model_params = spec
                    jobs.append(functools.partial(ch.scorer.score_merge, method, [ua], "instruct", lang, params,
                                                  model_params, seed, **kw))
                rows.append({"language": lang, "kind": kind, "method": label, "seed": seed})
    results = ch.scorer.grid(jobs, desc="forgetting", progress=progress)
    frame = pd.DataFrame([{**r, "harm": res["scores"]["harm"], "ppl": res["scores"]["ppl"]} for r, res in zip(rows, results)])
    return Evidence(frame, [res["items"] for res in results])


# ----------------------------------------------------------------------------- claims
#
# Each statistic takes the evidence's records (plain dicts: labels, seed, scores) and returns
# {seed: value}. "Task" scores are harm (UA learned: higher), maths EM and code pass@1, each
# compared within its own metric.

CLAIMS = ClaimRegistry(PAPER)


def _settings(records) -> list[list[dict]]:
    """The (table, task set) groups."""
    return list(group_by(records, "table", "tasks").values())


def _tasks_present(g) -> list[str]:
    return [m for m in TASKS if any(present(r.get(m)) for r in g)]


def _value(g, method: str, metric: str) -> float:
    """The one score of ``method`` in the group; a missing run or score is an error naming the run
    (a min/max that skipped it would silently drop a baseline)."""
    rows = [r for r in g if r["method"] == method]
    where = f"{g[0].get('table', '?')} / {g[0].get('tasks', '?')} / {method} (seed {g[0].get('seed', '?')})"
    if len(rows) != 1:
        raise ValueError(f"run {where}: expected one run, found {len(rows)}")
    if not present(rows[0].get(metric)):
        raise ValueError(f"run {where} has no {metric!r} score")
    return rows[0][metric]


def _best(g, methods, metric, lower=False) -> float:
    methods = (methods,) if isinstance(methods, str) else methods
    values = [_value(g, m, metric) for m in methods]
    return min(values) if lower else max(values)


def _ppl_margin(g, challenger="LATA", others=BASELINES) -> float:
    """The lowest perplexity among ``others`` over ``challenger``'s, minus 1 (> 0: challenger lowest)."""
    return _best(g, others, "ppl", lower=True) / _best(g, challenger, "ppl", lower=True) - 1.0


def _wins(g, challenger="LATA", others=BASELINES, tolerance: float = 0.0) -> list[bool]:
    """Per task metric: does ``challenger`` beat every one of ``others`` (strictly; or reach
    (1 − tolerance) × their best when ``tolerance`` > 0)?"""
    out = []
    for m in _tasks_present(g):
        best, mine = _best(g, others, m), _best(g, challenger, m)
        out.append(mine >= best * (1 - tolerance) if tolerance else mine > best)
    return out


def _worst_setting_ppl(rows) -> dict:
    return by_seed(rows, lambda r: min(_ppl_margin(g) for g in _settings(r)))


def _task_share(rows, tolerance: float = 0.0) -> dict:
    return by_seed(rows, lambda r: share(w for g in _settings(r) for w in _wins(g, tolerance=tolerance)))


@CLAIMS.register("table3_best_utility", ("table3",), anchor="lata_learning.html#table3",
                 how="per task set: the lowest baseline perplexity over LATA's − 1 (> 0 in the worst set: "
                     "'across all settings … lowest perplexity'); share of (task set, task) pairs where LATA's score "
                     "beats every baseline's (> ½: 'most target tasks')")
def table3_best_utility(ev):
    rows = ev["table3"]
    parts = [verdict_on("table3_best_utility/ppl", "min over task sets of (lowest baseline ppl / LATA ppl − 1)",
                        _worst_setting_ppl, rows, "higher"),
             verdict_on("table3_best_utility/tasks", "share of (set, task) pairs where LATA beats every baseline",
                        _task_share, rows, "higher", 0.5)]
    return all_of("table3_best_utility", "LATA has the lowest perplexity in every task set and beats the baselines on most tasks", parts)


def _decline(r05, r10, metric) -> float:
    """How much a score gets worse from λ = 0.5 to 1.0: relative for perplexity, absolute otherwise."""
    return r10 / r05 - 1.0 if metric == "ppl" else r05 - r10


def _robustness(rows) -> dict:
    """Mean over (task set, measure) of the baselines' mean decline minus LATA's (> 0: LATA's smaller)."""
    def one(r):
        by = group_by(r, "table", "tasks")
        diffs = []
        for tasks in [t for (table, t) in by if table == "table5" and ("table6", t) in by]:
            a, b = by[("table5", tasks)], by[("table6", tasks)]
            for metric in ["ppl"] + [m for m in ("math", "code") if m in _tasks_present(a)]:
                base = statistics.fmean(_decline(_value(a, m, metric), _value(b, m, metric), metric) for m in BASELINES)
                diffs.append(base - _decline(_value(a, "LATA", metric), _value(b, "LATA", metric), metric))
        return statistics.fmean(diffs)
    return by_seed(rows, one)


def _table5_with_math_code(ev) -> Evidence:
    """Table 5 with Table 3's Math + Code runs, which its caption says are the λ = 0.5 setting
    ("Since the settings and results of 'Math + Code' are identical to those in Table 3, we do not
    repeat them here", line 708)."""
    t3 = ev["table3"]
    keep = (t3.rows["tasks"] == "Math + Code").to_numpy()
    rows = t3.rows[keep].assign(table="table5")
    items = [it for it, k in zip(t3.items, keep) if k] if t3.items else []
    return Evidence.concat([ev["table5"], Evidence(rows, items)])


@CLAIMS.register("tables5_6_robust", ("table5", "table6", "table3"), anchor="lata_learning.html#table5",
                 how="over Tables 5 and 6 (Table 5's Math + Code being Table 3's, as its caption says): LATA's perplexity lowest in every task set ('consistently'); share of "
                     "(table, set, task) pairs where LATA beats every baseline (> ½); the baselines' mean decline from "
                     "λ = 0.5 to 1.0 minus LATA's, mean over sets and measures (ppl relative, maths/code absolute; > 0)")
def tables5_6_robust(ev):
    rows = Evidence.concat([_table5_with_math_code(ev), ev["table6"]])
    parts = [verdict_on("tables5_6_robust/utility", "min over (table, set) of (lowest baseline ppl / LATA ppl − 1)",
                        _worst_setting_ppl, rows, "higher"),
             verdict_on("tables5_6_robust/tasks", "share of (table, set, task) pairs where LATA beats every baseline",
                        _task_share, rows, "higher", 0.5),
             verdict_on("tables5_6_robust/robust", "baselines' mean decline λ 0.5 → 1.0 minus LATA's",
                        _robustness, rows, "higher")]
    return all_of("tables5_6_robust", "LATA: best utility throughout, best on over half the tasks, smaller drop at λ = 1.0", parts)


def _in(g, table, method, metric):
    """The score of ``method`` in ``table`` within a task-set group (an error naming the run when missing)."""
    return _value([r for r in g if r["table"] == table], method, metric)


def _vs_alone(combos, worse: bool):
    """Share of (set, combination, task) cases where the combination is worse than LATA alone
    (Table 3), or, with ``worse=False``, of (set, combination) cases where it has lower perplexity
    than the method it adds to LATA (Table 3)."""
    def one(r):
        flags = []
        for g in group_by([x for x in r if x["table"] in ("table3", "table4")], "tasks").values():
            for combo in combos:
                if worse:
                    flags += [_in(g, "table4", combo, m) < _in(g, "table3", "LATA", m) for m in _tasks_present(g)]
                else:
                    flags.append(_in(g, "table4", combo, "ppl") < _in(g, "table3", combo.removeprefix("LATA + "), "ppl"))
        return share(flags)
    return one


@CLAIMS.register("table4_lata_alone_best", ("table4", "table3"), anchor="lata_learning.html#table4",
                 how="share of (task set, combination, task) cases in which LATA + TIES / + DARE / + DARE + TIES "
                     "scores below LATA alone (Table 3) (> ½: 'in most cases … worse than LATA alone')")
def table4_lata_alone_best(ev):
    rows = Evidence.concat([ev["table4"], ev["table3"]])
    return verdict_on("table4_lata_alone_best", "share of (set, combination, task) cases where the combination scores below LATA alone",
                      lambda r: by_seed(r, _vs_alone(COMBOS, worse=True)), rows, "higher", 0.5)


def _three_vs_two(rows) -> dict:
    """Share of (set, measure) cases where LATA+DARE+TIES is worse than LATA+DARE or than LATA+TIES
    (than at least one of them: "underperforms LATA+DARE or LATA+TIES")."""
    def one(r):
        flags = []
        for g in group_by([x for x in r if x["table"] == "table4"], "tasks").values():
            for m in ["ppl"] + _tasks_present(g):
                three, two = _value(g, "LATA + DARE + TIES", m), [_value(g, c, m) for c in COMBOS[:2]]
                flags.append(three > min(two) if m == "ppl" else three < max(two))
        return share(flags)
    return by_seed(rows, one)


@CLAIMS.register("table4_combo_utility", ("table4", "table3"), anchor="lata_learning.html#table4",
                 how="share of (task set, method) cases where LATA + X has lower perplexity than X alone (Table 3) "
                     "(> ½: 'often yields superior utility'); share of (task set, measure) cases where LATA + DARE + TIES "
                     "is worse than LATA + DARE or than LATA + TIES (> ½: 'typically underperforms')")
def table4_combo_utility(ev):
    rows = Evidence.concat([ev["table4"], ev["table3"]])
    parts = [verdict_on("table4_combo_utility/utility", "share of (set, X) where LATA + X has lower ppl than X",
                        lambda r: by_seed(r, _vs_alone(COMBOS, worse=False)), rows, "higher", 0.5),
             verdict_on("table4_combo_utility/three", "share of (set, measure) where LATA+DARE+TIES is worse than one of the pairs",
                        _three_vs_two, rows, "higher", 0.5)]
    return all_of("table4_combo_utility", "LATA + X beats X on utility; LATA + DARE + TIES is the weakest combination", parts)


@CLAIMS.register("table7_llama", ("table7",), anchor="lata_learning.html#table7",
                 how="mean over task sets of (lowest baseline ppl / LATA ppl − 1) (> 0: 'superior overall utility'); "
                     f"share of (set, task) pairs where LATA reaches {1 - COMPETITIVE:.0%} of the best baseline's score "
                     "(> ⅓: 'competitive or best scores in several tasks')")
def table7_llama(ev):
    rows = ev["table7"]
    parts = [verdict_on("table7_llama/utility", "mean over task sets of (lowest baseline ppl / LATA ppl − 1)",
                        lambda r: by_seed(r, lambda s: statistics.fmean(_ppl_margin(g) for g in _settings(s))),
                        rows, "higher"),
             verdict_on("table7_llama/tasks", f"share of (set, task) pairs with LATA ≥ {1 - COMPETITIVE:.0%} of the best baseline",
                        lambda r: _task_share(r, tolerance=COMPETITIVE), rows, "higher", 1 / 3)]
    return all_of("table7_llama", "LATA has the better utility overall and is competitive or best on several tasks", parts)


def _setting_lowest_ppl(column, value):
    """Share of (table, task set) groups where the setting ``column = value`` has the lowest perplexity."""
    def is_it(r):
        return present(r[column]) and round(float(r[column]), 3) == round(float(value), 3)

    def lowest(rows):
        if not rows or not all(present(x["ppl"]) for x in rows):
            raise ValueError(f"runs of {rows[0]['table'] if rows else '?'}: a setting is missing or has no ppl score")
        return min(x["ppl"] for x in rows)

    def one(r):
        return share(lowest([x for x in g if is_it(x)]) < lowest([x for x in g if not is_it(x)]) for g in _settings(r))
    return lambda rows: by_seed(rows, one)


def _register_setting_claim(claim_id, tables, column, value, what, anchor):
    @CLAIMS.register(claim_id, tables, anchor=anchor,
                     how=f"share of (table, task set) groups in which {what} has the lowest perplexity of the settings "
                         "(the paper's evidence: utility) (> ½)")
    def test(ev):
        rows = Evidence.concat([ev[t] for t in tables])
        return verdict_on(claim_id, f"share of (table, set) where {what} has the lowest perplexity",
                          _setting_lowest_ppl(column, value), rows, "higher", 0.5)
    return test


_register_setting_claim("dare_p03_best_gemma", ("table8", "table9"), "p", 0.3, "DARE p = 0.3", "lata_learning.html#table8")
_register_setting_claim("ties_k07_best_gemma", ("table10", "table11"), "k", 0.7, "TIES k = 0.7", "lata_learning.html#table10")
_register_setting_claim("dareties_best_gemma", ("table12",), "p", 0.1, "DARE+TIES (p, k) = (0.1, 0.9)", "lata_learning.html#table12")
_register_setting_claim("dare_p03_best_llama", ("table13",), "p", 0.3, "DARE p = 0.3", "lata_learning.html#table13")
_register_setting_claim("ties_k07_best_llama", ("table14",), "k", 0.7, "TIES k = 0.7", "lata_learning.html#table14")
_register_setting_claim("dareties_best_llama", ("table15",), "p", 0.1, "DARE+TIES (p, k) = (0.1, 0.9)", "lata_learning.html#table15")


def _overlap_diffs(r) -> dict:
    """LATA (Table 3): per task, its score when merged with the other skill (Math + Code,
    UA + Math + Code) minus its score in the UA + task merge."""
    la = {x["tasks"]: x for x in r if x["table"] == "table3" and x["method"] == "LATA"}
    single = {"math": "UA + Math", "code": "UA + Code"}
    return {(m, multi): la[multi][m] - la[single[m]][m] for m in ("math", "code")
            for multi in ("Math + Code", "UA + Math + Code")}


def _multi_minus_single(rows) -> dict:
    return by_seed(rows, lambda r: min(_overlap_diffs(r).values()))


def _code_more(rows) -> dict:
    def one(r):
        d = _overlap_diffs(r)
        return statistics.fmean(v for (m, _), v in d.items() if m == "code") - statistics.fmean(v for (m, _), v in d.items() if m == "math")
    return by_seed(rows, one)


def _rank_correlation(layers) -> dict:
    import numpy as np

    def one(g):
        ranks = {e: [x["rank"] for x in sorted(rows, key=lambda x: x["layer"])] for e, rows in group_by(g, "expert").items()}
        return float(np.corrcoef(ranks["math"], ranks["code"])[0, 1])
    return by_seed(layers, one)


@CLAIMS.register("math_code_overlap", ("table3",), optional=("layers",), anchor="lata_learning.html#fig-5-which-layers-carry-the-task",
                 how="LATA in Table 3: maths and code scores in Math + Code and UA + Math + Code minus their scores in "
                     "UA + Math / UA + Code (the smallest of the four differences > 0: 'both tasks outperform'); the mean "
                     "code gain minus the mean maths gain (> 0: 'particularly for code'); with the layer table, Pearson "
                     "correlation of the maths and code ranks (> 0: 'overlap in similarity rankings')")
def math_code_overlap(ev):
    rows = ev["table3"]
    parts = [verdict_on("math_code_overlap/both", "min over tasks and merges of (multi-task score − single-task score)",
                        _multi_minus_single, rows, "higher"),
             verdict_on("math_code_overlap/code", "mean code gain − mean maths gain", _code_more, rows, "higher")]
    if "layers" in ev:
        parts.append(verdict_on("math_code_overlap/ranks", "correlation of the maths and code layer ranks",
                                _rank_correlation, ev["layers"], "higher"))
    return all_of("math_code_overlap", "maths and code rank layers alike, and merging both helps both (code more)", parts)


def _late_share(depth_fraction: float):
    """Share of the least instruction-like half of the blocks lying beyond ``depth_fraction`` of the depth."""
    def one(g):
        shares = []
        for e in group_by(g, "expert").values():
            L = len(e)
            low = sorted(e, key=lambda x: -x["rank"])[:math.ceil(L / 2)]     # the least similar half (highest ranks)
            shares.append(sum(x["layer"] >= depth_fraction * L for x in low) / len(low))
        return statistics.fmean(shares)
    return lambda layers: by_seed(layers, one)


@CLAIMS.register("fig5_late_layers", ("layers",), anchor="lata_learning.html#fig-5-which-layers-carry-the-task",
                 how="share of each expert's least instruction-like half of the blocks lying beyond 20/42 of the depth "
                     "(Gemma-2-9B's layer 20 of 42), mean over experts, above the share of all blocks lying there "
                     "(what a ranking unrelated to depth gives; ½ for 8 blocks)")
def fig5_late_layers(ev):
    records = ev["layers"].records()
    L = len(next(iter(group_by(records, "seed", "expert").values())))
    chance = sum(i >= 20 / 42 * L for i in range(L)) / L
    return verdict_on("fig5_late_layers", "share of the least similar half of the blocks beyond 20/42 of the depth",
                      _late_share(20 / 42), ev["layers"], "higher", chance)


def _per_language(fn, agg=min):
    """{seed: agg over languages of fn(that language's records by method kind)}."""
    def one(g):
        return agg(fn({x["kind"]: x for x in lg}) for lg in group_by(g, "language").values())
    return lambda rows: by_seed(rows, one)


@CLAIMS.register("forgetting_harm", ("fig4",), anchor="lata_forgetting.html#fig-4-harm-and-language-quality-before-and-after-forgetting",
                 how="per language: the lowest harm of the other methods minus LATA's (> 0 in every language: "
                     "'consistently outperforms'); LATA's highest harm over languages (< 2: 'below 2 for all tested "
                     f"languages'); LATA's largest relative perplexity increase (< {ON_PAR:.0%}: 'utility on par')")
def forgetting_harm(ev):
    rows = ev["fig4"]
    others = [k for k in dict.fromkeys(rows.rows["kind"]) if k not in ("original", "LATA")]
    parts = []
    if others:
        parts.append(verdict_on("forgetting_harm/vs_methods", "min over languages of (lowest other harm − LATA harm)",
                                _per_language(lambda k: min(k[o]["harm"] for o in others) - k["LATA"]["harm"]), rows, "higher"))
    parts.append(verdict_on("forgetting_harm/below_2", "max over languages of LATA's harm",
                            _per_language(lambda k: k["LATA"]["harm"], max), rows, "lower", 2.0))
    if "ppl" in rows.rows:
        parts.append(verdict_on("forgetting_harm/utility", "max over languages of LATA ppl / original ppl − 1",
                                _per_language(lambda k: k["LATA"]["ppl"] / k["original"]["ppl"] - 1, max),
                                rows, "lower", ON_PAR))
    return all_of("forgetting_harm", "LATA removes the most harm in every language, to below 2, at unchanged utility", parts)


@CLAIMS.register("ten_percent_beats_ta", ("fig4",), anchor="lata_forgetting.html#fig-4-harm-and-language-quality-before-and-after-forgetting",
                 how="mean over languages of (TA negation's harm − LATA's harm) (> 0: 'surpassing that of the original TA method')")
def ten_percent_beats_ta(ev):
    if "TA" not in set(ev["fig4"].rows["kind"]):
        return None                      # the paper prints no TA-negation number
    return verdict_on("ten_percent_beats_ta", "mean over languages of (TA negation harm − LATA harm)",
                      _per_language(lambda k: k["TA"]["harm"] - k["LATA"]["harm"], statistics.fmean),
                      ev["fig4"], "higher")


@CLAIMS.register("ten_percent_layers", ("ua_layers",), anchor="lata_forgetting.html#how-much-of-the-ua-vector-does-the-threshold-keep",
                 how="share of the UA vector's blocks with cosine below σ = 0.95 (< 0.2: 'only about 10% … retained')")
def ten_percent_layers(ev):
    return verdict_on("ten_percent_layers", "share of UA blocks below σ (kept as pure vectors)",
                      lambda r: by_seed(r, lambda g: share(x["cosine"] < 0.95 for x in g)), ev["ua_layers"], "lower", 0.2)


def control_verdict(ev: dict) -> object:
    """Not a paper claim: does layer awareness carry LATA's effect? LATA minus its matched control
    on Table 3's task sets, per measure: task score (mean over the set's tasks, harm rescaled to
    0–1) and relative perplexity."""
    rows = Evidence.concat([ev["table3"], ev["control"]])

    def task_gap(r):
        diffs = []
        for g in group_by(r, "tasks").values():
            diffs.append(statistics.fmean(_unit(_in(g, "table3", "LATA", m), m) - _unit(_in(g, "control", CONTROL, m), m)
                                          for m in _tasks_present(g)))
        return statistics.fmean(diffs)

    def ppl_gap(r):
        return statistics.fmean(_in(g, "table3", "LATA", "ppl") / _in(g, "control", CONTROL, "ppl") - 1
                                for g in group_by(r, "tasks").values())

    parts = [verdict_on("control/tasks", "LATA − matched control, task score (0–1)", lambda r: by_seed(r, task_gap), rows, "higher"),
             verdict_on("control/ppl", "LATA ppl / matched control ppl − 1", lambda r: by_seed(r, ppl_gap), rows, "lower")]
    return all_of("layer_awareness", "LATA's ranks beat flat block weights of the same mean (tasks and perplexity)", parts)


def _unit(value, metric) -> float:
    """A task score on a 0–1 scale (harm 1–5 rescaled)."""
    return (value - 1.0) / 4.0 if metric == "harm" else value


REPEATS = {"dare_p03_best_llama": "dare_p03_best_gemma", "ties_k07_best_llama": "ties_k07_best_gemma",
           "dareties_best_llama": "dareties_best_gemma"}


def shared_evidence(evidence: dict[str, Evidence]) -> dict[str, str]:
    """Llama appendix claims whose runs are all runs of the Gemma claim they mirror (on one zoo
    Tables 13–15 rerun the configurations of Tables 8, 10 and 12): claim id → the claim it repeats.
    They keep their verdict but are not counted again."""
    def keys(claim_id):
        rows = Evidence.concat([evidence[t] for t in CLAIMS.claims[claim_id].evidence]).rows
        cols = ["tasks", "method", "variant", "lambda", "p", "k", "seed"]
        return set(map(tuple, rows[cols].astype(str).itertuples(index=False)))

    present = lambda c: all(t in evidence for t in CLAIMS.claims[c].evidence)  # noqa: E731
    return {a: b for a, b in REPEATS.items() if present(a) and present(b) and keys(a) <= keys(b)}
