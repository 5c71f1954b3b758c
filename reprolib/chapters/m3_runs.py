"""The M³ chapter's runs on the kit: merges of experts fine-tuned from one base, scored, as Evidence
whose rows have the columns ``reprolib.chapters.m3``'s claims read (see its docstring).

- **Two models (Table 1, Table 7).** For each pair, method (Task Arithmetic, TIES, each also with
  DARE, p = 0.2, line 261; Table 1's "DARE" is Task Arithmetic + DARE) and training seed: *without M³* is the centroid λ = 0.5 at the
  scaling term chosen on the validation split from the paper's grid (Table 3; s = 2t for two
  models; for TIES then the retain ratio of Table 3's grid at that scale, trimmed over the whole
  task vector as M³'s code does); *with M³* draws λ ~ Beta(α, α) (eq. 3) for every α of the grid, ``n_draws`` times each,
  at that same scale (and ratio), and keeps the draw with the best validation score (the paper selects on
  validation data). Both are then scored on the test split. Every draw's validation score is kept
  (the distribution of Table 1's search).
- **Three models (Figs. 2–4).** The p-series direction (eq. 4) over a (p, s) grid, the models in an
  order of dominance; (p = 0, s = 1) is Task Arithmetic's centroid. The chosen point is the best on
  validation. Fig. 3: the same at one (p, s) for every order of the three experts.
- **Prompt attacks (Tables 2, 5, 6).** The pair merges with and without M³, scored on the sentiment
  (SST-2 stand-in) and acceptability (CoLA stand-in) test sets, clean and under each attack; PDR is
  eq. 7 of the paired scores.

Validation uses the training split's generators (the zoo has no third split; train and test items
are disjoint by construction), so selection never sees a test item. Our metrics sit in the columns
of the benchmarks they stand for (``BENCHMARK_OF``); scores are fractions (0–1), the paper's are
percentages, and every claim reads differences, shares or ratios.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from reprolib.claims import Evidence
from reprolib.errors import ConfigError
from reprolib.merge.methods import derive_seed, m3_beta_lambda, pseries_lambdas
from reprolib.models import seeded

EXPERT_ROLES = {"lm": "instruct", "math": "math_b", "code": "code_b"}   # WizardLM / WizardMath / code-alpaca stand-ins
SEEDED_ROLES = ("math_b", "code_b")                                      # instruct has one training seed
PAIRS = {"lm_math": ("lm", "math"), "lm_code": ("lm", "code"), "math_code": ("math", "code")}
TASK_METRIC = {"lm": "instructions", "math": "math", "code": "code"}
BENCHMARK_OF = {"instructions": "alpacaeval", "math": "gsm8k", "code": "humaneval"}
# dare: Task Arithmetic + DARE; ties_dare: TIES + DARE; average: the centroid of the experts' weights (s = 1, no search)
METHODS = ("average", "task_arithmetic", "ties", "average_dare", "dare", "ties_dare")
LABELS = {"average": ("average", False), "task_arithmetic": ("task_arithmetic", False), "ties": ("ties", False),
          "average_dare": ("average", True), "dare": ("task_arithmetic", True),
          "ties_dare": ("ties", True)}                                   # method → (merging method, DARE) of the tables
DARE_METHODS = ("average_dare", "dare", "ties_dare")
TIES_METHODS = ("ties", "ties_dare")
ALPHAS = (0.2, 0.4, 0.5, 1.0, 2.0, 3.0, 5.0)                             # line 186
SCALING_TERMS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)                           # Table 3 (line 620): t; s = n·t
DARE_P = 0.2                                                             # line 261
TIES_KS = (0.5, 0.7, 0.9)                                                # TIES retain ratio grid (Table 3, line 621)
TIES_K = 0.7                                                             # Table 4's most common choice
P_GRID = (0.0, 1.0, 2.0, 3.0)                                            # line 186
S_GRID = (0.5, 1.0, 1.5, 2.0)                                            # s ∈ [0.5, 2] (line 186; its step is not stated)
ATTACK_SETS = {"sst2": "sentiment", "cola": "acceptability"}


def check_params(alphas=ALPHAS, n_draws: int = 1, scaling_terms=SCALING_TERMS, p_grid=P_GRID, s_grid=S_GRID,
                 attacks=(), ties_ks=TIES_KS, dare_p: float = DARE_P) -> None:
    """Refuse bad sweep parameters before any merge runs; ConfigError names the parameter."""
    from reprolib.evals.attacks import ATTACKS

    def grid(name, values, ok, need):
        values = list(values)
        if not values:
            raise ConfigError(f"parameter '{name}' is empty: give at least one value")
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v)]
        if bad:
            raise ConfigError(f"parameter '{name}': {bad[0]!r} is not {need}")

    grid("alphas", alphas, lambda a: a > 0, "> 0 (Beta(α, α) needs α > 0)")
    grid("scaling_terms", scaling_terms, lambda t: t > 0, "> 0")
    grid("p_grid", p_grid, lambda p: p >= 0, ">= 0 (the p-series exponent)")
    grid("s_grid", s_grid, lambda s: s >= 0, ">= 0 (the magnitude s)")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ConfigError(f"parameter 'n_draws' = {n_draws!r} must be an int >= 1")
    grid("ties_ks", ties_ks, lambda k: 0 < k <= 1, "in (0, 1] (the share of entries TIES keeps)")
    if not 0 <= dare_p < 1:
        raise ConfigError(f"parameter 'dare_p' = {dare_p!r} must be in [0, 1)")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ConfigError(f"parameter 'attacks': unknown attack {unknown[0]!r} (known: {', '.join(ATTACKS)})")


def lambda_draws(alphas, n_draws: int, seed: int) -> list[tuple[float, int, float]]:
    """(α, merge seed, λ) for ``n_draws`` draws of every α: the merge seed is what the ``m3`` method
    draws its λ from (``m3_beta_lambda``), derived from the training seed, α and the draw's index."""
    out = []
    for alpha, k in itertools.product(alphas, range(n_draws)):
        merge_seed = derive_seed(seed, "m3-draw", float(alpha), k)
        out.append((float(alpha), merge_seed, m3_beta_lambda(alpha, merge_seed)))
    return out


def validation_sets(n: int, seed: int = 0) -> dict[str, list]:
    """The pair metrics' items from the training split (disjoint from every test item)."""
    from reprolib.zoo import data as D

    return {"math": D.math_problems(n, seed, "train"), "code": D.code_tasks(n, seed, "train"),
            "instructions": D.instructions(n, seed, "train")}


@dataclass(frozen=True)
class Merge:
    """One M³-family merge of experts (roles of ``EXPERT_ROLES``) fine-tuned from the base."""

    experts: tuple[str, ...]          # e.g. ("math", "code")
    method: str                       # a key of METHODS
    lambdas: tuple[float, ...] | None = None  # fixed λ (else drawn from Beta(α, α), or the p-series)
    alpha: float | None = None        # Beta(α, α) (eq. 3), two models
    p: float | None = None            # p-series exponent (eq. 4), experts in their order of dominance
    scale: float = 1.0
    train_seed: int = 0
    merge_seed: int = 0               # λ draw and DARE masks
    ties_k: float = TIES_K
    dare_p: float = DARE_P

    def args(self) -> tuple[dict, list[dict]]:
        params = {"combine": {"average": "ta", "task_arithmetic": "ta", "ties": "ties", "average_dare": "dare", "dare": "dare",
                              "ties_dare": "dare_ties"}[self.method], "scale": self.scale}
        if self.p is not None:
            params.update(direction="pseries", p=self.p)
        elif self.lambdas is None:
            params.update(direction="beta", alpha=self.alpha)
        elif len(self.lambdas) == 2:
            params["interpolation"] = self.lambdas[0]
        else:
            raise ValueError("three or more models: use pseries weights (PSeries)")
        if self.method in DARE_METHODS:
            params["drop_rate"] = self.dare_p
        if self.method in TIES_METHODS:
            params["topk_scope"] = "model"        # M³'s code trims over the whole task vector (merge-methods page)
        model_params = [{"density": self.ties_k} if self.method in TIES_METHODS else {} for _ in self.experts]
        return params, model_params

    def roles(self) -> list[str]:
        return [seeded(EXPERT_ROLES[e], self.train_seed) if EXPERT_ROLES[e] in SEEDED_ROLES else EXPERT_ROLES[e]
                for e in self.experts]

    def score(self, scorer, sets: dict | None = None, metrics=None) -> dict:
        metrics = metrics or [TASK_METRIC[e] for e in self.experts]
        params, model_params = self.args()
        return scorer.score_merge("m3", self.roles(), "base", "base", params, model_params, self.merge_seed, metrics,
                                  sets=sets)


def _mean(result: dict, metrics) -> float:
    return sum(result["scores"][m] for m in metrics) / len(metrics)


def _benchmarks(result: dict) -> tuple[dict, dict]:
    """A result's scores and per-item values under the names of the benchmarks our metrics stand for."""
    scores = {BENCHMARK_OF[m]: v for m, v in result["scores"].items() if m in BENCHMARK_OF}
    items = {BENCHMARK_OF[m]: v for m, v in result["items"].items() if m in BENCHMARK_OF}
    return scores, items


def _row(table: str, merge: Merge, m3: bool, lam: float | None, result: dict, pair: str) -> tuple[dict, dict]:
    """A Table 1 / 7 row (benchmark columns) and its per-item values under the same names."""
    scores, items = _benchmarks(result)
    method, dare = LABELS[merge.method]
    row = {"table": table, "method": method, "dare": dare, "m3": m3, "models": pair, "lam": lam, "alpha": merge.alpha,
           "s": merge.scale, "k": merge.ties_k if merge.method in TIES_METHODS else None,
           "seed": merge.train_seed, **scores}
    return row, items


def pair_runs(ch, pairs=tuple(PAIRS), methods=METHODS, alphas=ALPHAS, n_draws: int = 1, scaling_terms=SCALING_TERMS,
              val_size: int = 40, ties_ks=TIES_KS, dare_p: float = DARE_P, progress: bool = True):
    """Table 1 / Table 7 evidence and the search's draws.

    Returns ``(evidence, draws, chosen)``: ``evidence`` has one row per (seed, pair, method, M³)
    scored on the test split; ``draws`` a DataFrame of every candidate's validation score (the
    baseline's scale search and M³'s λ draws); ``chosen`` the Merge behind each evidence row."""
    import pandas as pd
    from tqdm.auto import tqdm

    check_params(alphas, n_draws, scaling_terms, ties_ks=ties_ks, dare_p=dare_p)
    unknown = [m for m in methods if m not in METHODS] + [p for p in pairs if p not in PAIRS]
    if unknown:
        raise ConfigError(f"parameter 'methods'/'pairs': unknown {unknown[0]!r} (known: {', '.join(METHODS + tuple(PAIRS))})")
    val = validation_sets(val_size, seed=0)
    rows, items, draws, chosen = [], [], [], []
    searched: dict[tuple, Merge] = {}     # (seed, pair, method) → the centroid its search chose
    without_dare = {dare: plain for plain, dare in (("average", "average_dare"), ("task_arithmetic", "dare"),
                                                    ("ties", "ties_dare"))}
    # the methods without DARE first, so that a DARE run can take their settings (line 638)
    methods = sorted(methods, key=lambda m: m in DARE_METHODS)
    cells = list(itertools.product(ch.seeds, pairs, methods))
    for seed, pair, method in tqdm(cells, desc="M³ two-model search", disable=not progress):
        experts = PAIRS[pair]
        metrics = [TASK_METRIC[e] for e in experts]
        pair_val = {m: val[m] for m in metrics}
        base = functools.partial(Merge, experts, method, train_seed=seed, merge_seed=seed, dare_p=dare_p)
        # without M³: the centroid at the scale the validation split prefers (s = 2t, Table 3's t; TIES
        # at Table 4's usual ratio 0.7), then, for TIES, the retain ratio of Table 3's grid at that scale;
        # Average Merging has no hyperparameters (line 636): s = 1, the mean of the experts' weights.
        # A DARE run takes the settings searched for its method without DARE, as the paper does
        # ("These settings are further applied to model merging experiments involving M^3 and DARE",
        # line 638); it searches only when that method is not run.
        best = None
        ties = method in TIES_METHODS
        plain = searched.get((seed, pair, without_dare.get(method)))
        if plain is not None:
            candidates = [(plain.scale / 2, plain.ties_k)]
        elif LABELS[method][0] == "average":
            candidates = [(0.5, TIES_K)]
        else:
            candidates = [(t, TIES_K) for t in scaling_terms]
        for _ in ("scale", "ratio"):
            for t, k in candidates:
                merge = base(lambdas=(0.5, 0.5), scale=2 * t, ties_k=k)
                score = _mean(merge.score(ch.scorer, pair_val), metrics)
                draws.append({"seed": seed, "models": pair, "method": method, "search": "scale", "alpha": None,
                              "lam": 0.5, "s": 2 * t, "k": k if ties else None, "validation": score})
                if best is None or score > best[0]:
                    best = (score, merge)
            if not ties or plain is not None:
                break
            candidates = [(best[1].scale / 2, k) for k in ties_ks if k != best[1].ties_k]
        centroid = searched[(seed, pair, method)] = best[1]
        # with M³: λ ~ Beta(α, α) at that scale, the best draw on validation
        best = None
        for alpha, merge_seed, lam in lambda_draws(alphas, n_draws, seed):
            merge = base(alpha=alpha, scale=centroid.scale, ties_k=centroid.ties_k, merge_seed=merge_seed)
            score = _mean(merge.score(ch.scorer, pair_val), metrics)
            draws.append({"seed": seed, "models": pair, "method": method, "search": "m3", "alpha": alpha,
                          "lam": lam, "s": centroid.scale, "k": centroid.ties_k if ties else None, "validation": score})
            if best is None or score > best[0]:
                best = (score, merge, lam)
        for merge, m3, lam in ((centroid, False, 0.5), (best[1], True, best[2])):
            row, item = _row("table1", merge, m3, lam, merge.score(ch.scorer), pair)
            rows.append(row)
            items.append(item)
            chosen.append(merge)
    return Evidence(pd.DataFrame(rows), items), pd.DataFrame(draws), chosen


def expert_rows(ch, progress: bool = False) -> Evidence:
    """Each expert on its own (Table 1's first rows) on every pair metric, per training seed (the
    instruction expert has one training seed: the same checkpoint stands in every seed's rows)."""
    import pandas as pd

    rows, items = [], []
    for seed in ch.seeds:
        for name, role in EXPERT_ROLES.items():
            role_seeded = seeded(role, seed) if role in SEEDED_ROLES else role
            scores, item = _benchmarks(ch.scorer.score_role(role_seeded, list(BENCHMARK_OF)))
            rows.append({"table": "table1", "method": "expert", "dare": False, "m3": False, "models": name, "lam": None,
                         "alpha": None, "s": None, "k": None, "seed": seed,
                         **scores})
            items.append(item)
    return Evidence(pd.DataFrame(rows), items)


# ----------------------------------------------------------------------------- three models (Figs. 2–4)


def pseries_runs(ch, order=("math", "lm", "code"), p_grid=P_GRID, s_grid=S_GRID, val_size: int = 40,
                 progress: bool = True):
    """Fig. 4's (p, s) surface and Fig. 2's comparison: every grid point scored on the test split,
    ``selected`` the point with the best validation mean (the centroid is p = 0, s = 1).
    Returns ``(fig4, fig2)`` Evidence (fig2: the centroid and the selected point per seed)."""
    import pandas as pd
    from tqdm.auto import tqdm

    check_params(p_grid=p_grid, s_grid=s_grid)
    if sorted(order) != sorted(EXPERT_ROLES):
        raise ConfigError(f"parameter 'order' = {order!r} must name each of {sorted(EXPERT_ROLES)} once")
    metrics = [TASK_METRIC[e] for e in order]
    val = validation_sets(val_size, seed=0)
    points = list(itertools.product(ch.seeds, p_grid, s_grid))
    rows, items = [], []
    for seed, p, scale in tqdm(points, desc="M³ p-series grid", disable=not progress):
        merge = Merge(tuple(order), "task_arithmetic", p=float(p), scale=float(scale), train_seed=seed, merge_seed=seed)
        validation = _mean(merge.score(ch.scorer, val, metrics), metrics)
        scores, item = _benchmarks(merge.score(ch.scorer, metrics=metrics))
        rows.append({"table": "fig4", "order": ">".join(order), "p": float(p), "s": float(scale), "seed": seed,
                     "weights": "/".join(f"{w:.3f}" for w in pseries_lambdas(3, p)), "validation": validation, **scores})
        items.append(item)
    frame = pd.DataFrame(rows)
    frame["selected"] = frame.index.isin(frame.groupby("seed")["validation"].idxmax())
    fig4 = Evidence(frame, items)
    keep = [i for i, r in enumerate(fig4.records()) if r["selected"] or (r["p"] == 0 and r["s"] == 1)]
    fig2 = Evidence(frame.iloc[keep].assign(table="fig2").reset_index(drop=True), [items[i] for i in keep])
    return fig4, fig2


def order_runs(ch, p: float = 1.0, scale: float = 1.5, progress: bool = True) -> Evidence:
    """Fig. 3: the p-series at one (p, s) for every order of dominance of the three experts."""
    import pandas as pd
    from tqdm.auto import tqdm

    check_params(p_grid=(p,), s_grid=(scale,))
    jobs = list(itertools.product(ch.seeds, itertools.permutations(EXPERT_ROLES)))
    rows, items = [], []
    for seed, order in tqdm(jobs, desc="M³ dominance orders", disable=not progress):
        merge = Merge(order, "task_arithmetic", p=float(p), scale=float(scale), train_seed=seed, merge_seed=seed)
        scores, item = _benchmarks(merge.score(ch.scorer, metrics=[TASK_METRIC[e] for e in order]))
        rows.append({"table": "fig3", "order": ">".join(order), "p": p, "s": scale, "seed": seed, **scores})
        items.append(item)
    return Evidence(pd.DataFrame(rows), items)


# ----------------------------------------------------------------------------- prompt attacks (Tables 2, 5, 6)

ATTACK_TABLES = {"stresstest": "table2", "deepwordbug": "table5", "bertattack": "table6"}


def attack_runs(ch, chosen: list[Merge], evidence: Evidence, attacks=tuple(ATTACK_TABLES), datasets=tuple(ATTACK_SETS),
                n: int = 100, candidates: int = 1, progress: bool = True) -> dict[str, Evidence]:
    """PDR (eq. 7) of the Task Arithmetic pair merges with and without M³ (``chosen`` and the
    ``evidence`` rows of ``pair_runs``), per attack: the task metric on the test set clean and with
    the attacked instruction (``candidates`` seeded perturbations, the worst kept)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from reprolib.evals.attacks import worst_attack
    from reprolib.zoo import data as D

    check_params(attacks=attacks)
    unknown = [d for d in datasets if d not in ATTACK_SETS]
    if unknown:
        raise ConfigError(f"parameter 'datasets': unknown dataset {unknown[0]!r} (known: {', '.join(ATTACK_SETS)})")
    generators = {"sst2": D.sentiment, "cola": D.acceptability}
    sets = {d: generators[d](n, ch.scorer.settings.get("seed", 0), "test") for d in datasets}
    runs = [(merge, r) for merge, r in zip(chosen, evidence.records()) if r["method"] == "task_arithmetic" and not r["dare"]]
    out = {a: ([], []) for a in attacks}
    for (merge, r), dataset in tqdm(list(itertools.product(runs, datasets)), desc="M³ prompt attacks", disable=not progress):
        metric, examples = ATTACK_SETS[dataset], sets[dataset]
        clean = merge.score(ch.scorer, {metric: examples}, [metric])
        for attack in attacks:
            worst, _ = worst_attack(lambda exs: merge.score(ch.scorer, {metric: exs}, [metric]), examples, attack,
                                    r["seed"], candidates, value=lambda result: result["scores"][metric])
            c_score, a_score = clean["scores"][metric], worst["scores"][metric]
            rows, items = out[attack]
            rows.append({"table": ATTACK_TABLES[attack], "attack": attack, "models": r["models"], "dataset": dataset,
                         "m3": r["m3"], "seed": r["seed"], "clean": c_score, "attacked": a_score,
                         "pdr": 100 * (c_score - a_score) / c_score if c_score else float("nan")})
            items.append({"clean": clean["items"][metric], "attacked": worst["items"][metric]})
    return {ATTACK_TABLES[a]: Evidence(pd.DataFrame(rows), items) for a, (rows, items) in out.items()}


# ----------------------------------------------------------------------------- out of distribution (Fig. 5)


def ood_runs(ch, chosen: list[Merge], evidence: Evidence, n: int = 100, progress: bool = True) -> Evidence:
    """Fig. 5: the pair merges of Average Merging, Task Arithmetic and TIES, with and without M³ (``chosen`` and the
    ``evidence`` rows of ``pair_runs``), on the OOD split of the pair's tasks. ``ood`` is the mean
    over the pair's metrics (equal item counts, so its items are the two metrics' items together)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from reprolib.zoo.report import ood_sets

    sets = ood_sets(n, ch.scorer.settings.get("seed", 0))
    runs = [(m, r) for m, r in zip(chosen, evidence.records()) if not r["dare"]]
    rows, items = [], []
    for merge, r in tqdm(runs, desc="M³ out of distribution", disable=not progress):
        metrics = [TASK_METRIC[e] for e in merge.experts]
        result = merge.score(ch.scorer, {m: sets[m] for m in metrics}, metrics)
        scores, _ = _benchmarks(result)
        rows.append({"table": "fig5", "method": r["method"], "models": r["models"], "m3": r["m3"], "seed": r["seed"],
                     "ood": _mean(result, metrics), **{f"ood_{b}": v for b, v in scores.items()}})
        items.append({"ood": [v for m in metrics for v in result["items"][m]]})
    return Evidence(pd.DataFrame(rows), items)

