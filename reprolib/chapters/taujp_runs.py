"""The τJp chapter's runs (part 1, the eight-task vision setting): the vision zoo's task vectors
evaluated in task addition, task negation and per pair, per training seed, cached, and turned into
Evidence with the columns ``reprolib.chapters.taujp``'s claims read.

Methods: ``nonlinear`` (non-linear FT, evaluated at θ0 + Σ α τ), ``linear`` (linearised FT,
evaluated as the linearised model), ``ours`` (linearised FT with the cyclical τJp penalty, Eq. 11),
``ties`` (TIES-merging of the non-linear task vectors: trim to ``ties_density`` per tensor, elect,
disjoint mean, then θ0 + λ τ_m; the paper does not state its TIES settings, ours are the TIES paper's:
the top 20 % of each vector's magnitudes over the whole vector, λ on the same grid). Coefficients: ``1.0`` (α = 1 for every vector, λ = 1 for TIES) or
``grid`` (the unified α chosen on the validation split, ``reprolib.vision.arithmetic``).

Per seed, everything is computed once and cached (the kit's result cache, keyed by the task vectors'
hash, the seed and every setting); per-item correctness is kept for the claims' bootstrap.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from reprolib.claims import Evidence
from reprolib.vision import arithmetic as A
from reprolib.vision import tasks as V

RUNS_VERSION = 5          # bump when what a seed's result holds changes (invalidates the cache)
REGIME = {"nonlinear": "nonlinear", "linear": "linear", "ours": "linear_taujp"}
METHODS = ("nonlinear", "linear", "ties", "ours")
PAIR_METHODS = ("linear", "ours")                                 # Figs. 1, 2, 6–8: the linearised regimes
MAP_ALPHAS = tuple(round(-2.0 + 0.5 * i, 1) for i in range(11))   # Fig. 1's (α_A, α_B) grid, −2 … 3
TASKS = tuple(V.TASKS)


@dataclass(frozen=True)
class Settings:
    eval_size: int = 200                 # test images per task (and of the control task)
    val_size: int = 200                  # validation images per task, for choosing coefficients
    addition_grid: tuple = A.ADDITION_GRID
    negation_grid: tuple = A.NEGATION_GRID
    ties_density: float = 0.2
    map_alphas: tuple = MAP_ALPHAS
    eval_seed: int = 0


@dataclass
class VisionRuns:
    """The vision zoo's task vectors for ``seeds``, evaluated (``result(seed)``, cached in ``cache``)."""

    zoo: "object"                         # reprolib.vision.zoo.VisionZoo
    seeds: list[int]
    cache: "object"                       # reprolib.cache.ResultCache
    settings: Settings = field(default_factory=Settings)
    progress: bool = True

    def __post_init__(self):
        self.backbone, self.heads = self.zoo.pretrained()
        s = self.settings
        self.test = _sets(self.zoo, "test", s.eval_seed, s.eval_size)
        self.val = _sets(self.zoo, "val", s.eval_seed + 1, s.val_size)
        self._results: dict[int, dict] = {}

    def build(self) -> None:
        """Every seed's task vectors (fine-tuned where missing) and results, with a progress bar."""
        for seed in tqdm(self.seeds, desc="τJp: fine-tuning and evaluating seeds", disable=not self.progress):
            self.result(seed)

    def key(self, seed: int) -> dict:
        return {"kind": "taujp-vision", "task_vectors": self.zoo.tv_keys(), "seed": seed,
                "settings": asdict(self.settings), "version": RUNS_VERSION}

    def result(self, seed: int) -> dict:
        if seed not in self._results:
            self._results[seed] = self.cache.get_or_compute(self.key(seed), lambda: self._compute(seed))
        return self._results[seed]

    # ------------------------------------------------------------------ one seed

    def _outputs(self, method: str, seed: int, split: dict, vectors=None) -> A.Outputs:
        if method == "pretrained":
            vectors = {}
        elif vectors is None:
            vectors = self.zoo.task_vectors(REGIME[method], seed)
        return A.Outputs(self.backbone, self.heads, vectors, split, linear=method in ("linear", "ours"))

    def _compute(self, seed: int) -> dict:
        s = self.settings
        pre_test = self._outputs("pretrained", seed, self.test)
        out = {"pretrained": {t: _items(pre_test.correct(t, {})) for t in (*TASKS, V.CONTROL)},
               "single": {}, "addition": {}, "negation": {}, "pairs": {}}
        nonlinear = self.zoo.task_vectors("nonlinear", seed)
        params0 = self.backbone.state_dict()
        single_val = {}
        for method in METHODS:
            if method == "ties":
                merged = {"ties": A.ties_vector(params0, nonlinear, s.ties_density)}
                test, val = (self._outputs("ties", seed, d, merged) for d in (self.test, self.val))
                out["addition"]["ties"] = _addition(test, val, s.addition_grid, vectors=["ties"],
                                                    single_val=single_val["nonlinear"])
                out["negation"]["ties"] = self._ties_negation(seed, nonlinear, params0)
                continue
            test, val = self._outputs(method, seed, self.test), self._outputs(method, seed, self.val)
            out["single"][method] = {t: _items(test.correct(t, {t: 1.0})) for t in TASKS}
            single_val[method] = A.individual(val, TASKS)
            out["addition"][method] = _addition(test, val, s.addition_grid, single_val=single_val[method])
            out["negation"][method] = {t: _negation(test, val, t, s.negation_grid) for t in TASKS}
            if method in PAIR_METHODS:
                out["pairs"][method] = self._pairs(test, val, out["single"][method], single_val[method])
                out.setdefault("own", {})[method] = {t: test.own(t) for t in TASKS}
        return out

    def _ties_negation(self, seed: int, nonlinear: dict, params0: dict) -> dict:
        """TIES on one task vector alone is that vector trimmed to ``ties_density`` (its own signs
        elected); negation subtracts it: θ0 − α τ̂_t."""
        out = {}
        for t in TASKS:
            trimmed = {t: A.ties_vector(params0, {t: nonlinear[t]}, self.settings.ties_density)}
            test, val = (self._outputs("ties", seed, d, trimmed) for d in (self.test, self.val))
            out[t] = _negation(test, val, t, self.settings.negation_grid)
        return out

    def _pairs(self, test: A.Outputs, val: A.Outputs, single: dict, single_val: dict) -> list[dict]:
        """Every pair: τJp and cosine, the pair's task addition (α chosen on validation, normalised
        accuracy per item) and its weight-disentanglement map over ``map_alphas`` (test split)."""
        from reprolib import taujp as T

        rows = []
        acc = {t: float(np.mean(single[t])) for t in TASKS}            # fractions: 100 · correct / acc is in %
        for a, b in itertools.combinations(TASKS, 2):
            alpha = A.select_addition(val, [a, b], self.settings.addition_grid, single=single_val)
            grid = T.disentanglement_grid(lambda x, y: test.predict(a, {a: x, b: y}),
                                          lambda x, y: test.predict(b, {a: x, b: y}), self.settings.map_alphas)
            rows.append({"a": a, "b": b, "taujp": test.taujp(a, b), "cosine": A.cosine(test.vectors[a], test.vectors[b]),
                         "alpha": alpha, "norm_items": _items(np.concatenate(
                             [100.0 * test.correct(t, {a: alpha, b: alpha}) / max(acc[t], 1e-9) for t in (a, b)])),
                         "map": [r["error"] for r in grid], "map_mean": float(np.mean([r["error"] for r in grid]))})
        return rows


def _sets(zoo, split: str, seed: int, n: int) -> dict:
    """The vision zoo's evaluation sets of ``split`` and the control task's."""
    return {**zoo.eval_sets(split, n, seed), V.CONTROL: tuple(map(torch.from_numpy, V.control_set(n, seed, split)))}


def _items(correct) -> list[float]:
    return [float(x) for x in np.asarray(correct)]


def _addition(test: A.Outputs, val: A.Outputs, grid, vectors=None, single_val=None, tasks=TASKS) -> dict:
    """Task addition of ``tasks`` at α = 1 and at the α chosen on validation (``single_val``: the
    single-task validation accuracies it normalises by): per task the correct items."""
    alpha = A.select_addition(val, tasks, grid, vectors, single_val)
    out = {}
    for coef, a in (("1.0", 1.0), ("grid", alpha)):
        coeffs = {v: a for v in (vectors or tasks)}
        out[coef] = {"alpha": a, "correct": {t: _items(test.correct(t, coeffs)) for t in tasks}}
    return out


def _negation(test: A.Outputs, val: A.Outputs, target: str, grid) -> dict:
    """θ0 − α τ_target at α = 1 and at the α chosen on validation: the target's and the control's
    correct items on the test split (Table 2's 95 % rule reads the row mean, in :func:`table2`)."""
    out = {}
    for coef, a in (("1.0", 1.0), ("grid", A.select_negation(val, target, V.CONTROL, grid))):
        coeffs = {target: -a}
        out[coef] = {"alpha": a, "target": _items(test.correct(target, coeffs)),
                     "control": _items(test.correct(V.CONTROL, coeffs))}
    return out


# ----------------------------------------------------------------------------- evidence


def _mean(correct) -> float:
    """Accuracy in % of per-item 0/1 correctness."""
    return 100.0 * float(np.mean(correct))


def _pct(items) -> list[float]:
    return [100.0 * x for x in items]


def _norm_items(correct: dict, single: dict) -> list[float]:
    """Per item 100 · correct / (the task's single-model accuracy), over every task of ``correct``: their
    mean is the mean normalised accuracy (the single-model accuracy is taken as fixed)."""
    out = []
    for t in correct:
        s = float(np.mean(single[t]))
        out += [100.0 * x / max(s, 1e-9) for x in correct[t]]
    return out


def table1(runs: VisionRuns, scale: str = "mini") -> Evidence:
    """Task addition (Table 1): pretrained, individual (non-linear FT alone), and each method at α = 1
    and grid-searched: ``abs`` and ``norm`` (%, means over the eight tasks) with per-item values."""
    import pandas as pd

    rows, items = [], []
    for seed in runs.seeds:
        r = runs.result(seed)
        pre = [x for t in TASKS for x in _pct(r["pretrained"][t])]
        ind = [x for t in TASKS for x in _pct(r["single"]["nonlinear"][t])]
        for method, values in (("pretrained", pre), ("individual", ind)):
            rows.append({"scale": scale, "method": method, "coef": "-", "seed": seed, "abs": float(np.mean(values)),
                         "norm": None, "alpha": None})
            items.append({"abs": values})
        for method in METHODS:
            single = r["single"]["nonlinear" if method == "ties" else method]
            for coef in ("1.0", "grid"):
                run = r["addition"][method][coef]
                a = [x for t in TASKS for x in _pct(run["correct"][t])]
                n = _norm_items(run["correct"], single)
                rows.append({"scale": scale, "method": method, "coef": coef, "seed": seed, "abs": float(np.mean(a)),
                             "norm": float(np.mean(n)), "alpha": run["alpha"]})
                items.append({"abs": a, "norm": n})
    return Evidence(pd.DataFrame(rows).astype({"abs": float, "norm": float}), items)


def table2(runs: VisionRuns, scale: str = "mini") -> Evidence:
    """Task negation (Table 2): per method and coefficient the mean target accuracy over the eight
    negated tasks (``targ``) and the mean control accuracy (``cont``), %, with per-item values;
    ``reference``: the row's mean control accuracy is below 95 % of θ0's (the paper's parentheses, on
    the test split); ``alpha``: the mean chosen α over the targets. The control items are the control
    images, each scored as the mean over the eight negated models (one image is one item)."""
    import pandas as pd

    rows, items = [], []
    for seed in runs.seeds:
        r = runs.result(seed)
        pre_t = [x for t in TASKS for x in _pct(r["pretrained"][t])]
        pre_c = _pct(r["pretrained"][V.CONTROL])
        rows.append({"scale": scale, "method": "pretrained", "coef": "-", "seed": seed, "targ": float(np.mean(pre_t)),
                     "cont": float(np.mean(pre_c)), "reference": False, "alpha": None})
        items.append({"targ": pre_t, "cont": pre_c})
        for method in METHODS:
            for coef in ("1.0", "grid"):
                runs_t = [r["negation"][method][t][coef] for t in TASKS]
                targ = [x for run in runs_t for x in _pct(run["target"])]
                cont = list(np.mean([_pct(run["control"]) for run in runs_t], axis=0))
                rows.append({"scale": scale, "method": method, "coef": coef, "seed": seed, "targ": float(np.mean(targ)),
                             "cont": float(np.mean(cont)),
                             "reference": bool(np.mean(cont) < 100.0 * A.CONTROL_KEEP * np.mean(r["pretrained"][V.CONTROL])),
                             "alpha": float(np.mean([run["alpha"] for run in runs_t]))})
                items.append({"targ": targ, "cont": cont})
    return Evidence(pd.DataFrame(rows), items)


def pairs(runs: VisionRuns) -> Evidence:
    """Every pair of tasks (Figs. 1, 2, 6–8), linear FT and ours: ``taujp``, ``cosine``, ``dis`` (mean
    weight-disentanglement error over Fig. 1's grid) and ``norm`` (the pair's normalised accuracy, %,
    per item)."""
    import pandas as pd

    rows, items = [], []
    for seed in runs.seeds:
        for method in PAIR_METHODS:
            for p in runs.result(seed)["pairs"][method]:
                rows.append({"method": method, "a": p["a"], "b": p["b"], "seed": seed, "taujp": p["taujp"],
                             "cosine": p["cosine"], "dis": p["map_mean"], "alpha": p["alpha"],
                             "norm": float(np.mean(p["norm_items"]))})
                items.append({"norm": p["norm_items"]})
    return Evidence(pd.DataFrame(rows), items)


def per_task(runs: VisionRuns) -> Evidence:
    """Per task (Figs. 4–5): ``stage`` single (after fine-tuning; ``pretrained`` too) or addition
    (grid-searched α): ``acc`` and, after addition, ``norm`` (%), per item."""
    import pandas as pd

    rows, items = [], []
    for seed in runs.seeds:
        r = runs.result(seed)
        for t in TASKS:
            rows.append({"stage": "single", "method": "pretrained", "task": t, "seed": seed,
                         "acc": _mean(r["pretrained"][t]), "norm": None})
            items.append({"acc": _pct(r["pretrained"][t])})
            for method in ("nonlinear", "linear", "ours"):
                single = r["single"][method][t]
                rows.append({"stage": "single", "method": method, "task": t, "seed": seed, "acc": _mean(single),
                             "norm": None})
                items.append({"acc": _pct(single)})
                after = r["addition"][method]["grid"]["correct"][t]
                s = max(float(np.mean(single)), 1e-9)
                rows.append({"stage": "addition", "method": method, "task": t, "seed": seed, "acc": _mean(after),
                             "norm": 100.0 * float(np.mean(after)) / s})
                items.append({"acc": _pct(after), "norm": [100.0 * x / s for x in after]})
    return Evidence(pd.DataFrame(rows).astype({"norm": float}), items)
