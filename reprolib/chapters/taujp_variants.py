"""The τJp chapter's runs for the regulariser's variants (seed 004, Tables 5–7, Fig. 3, Appendix C),
on the vision zoo, per training seed, cached, and turned into Evidence for ``reprolib.chapters.taujp``.

- :class:`AdditionRuns` — eight-task addition (α = 1 and α grid-searched on validation, as Table 1) for
  any of the zoo's regimes: ``incremental`` (T_orth = the tasks learned before, Table 5), ``strict``
  (Eq. 10, every other task at every step, Table 6), ``mtl`` (one model trained on every task, Table 7;
  no coefficient) and the three of Table 1 (``nonlinear``, ``linear``, ``ours``) on another model size.
- :func:`continued_training` — Fig. 3: the linear-FT task vectors of the pair with the largest τJp
  trained further with the penalty, each against the other task's inputs; τJp and the pair's
  normalised accuracy (α = 1) traced every ``every`` steps.
- :func:`time_iterations` — Table 6's seconds per iteration, measured here, on this machine, whenever
  the chapter runs (never cached): linear FT, the cyclical penalty (Eq. 11, one other task per step),
  the strict penalty as the zoo builds it (one JVP over every other task's batch) and term by term
  (one JVP per task, Eq. 10 as written).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from reprolib import taujp as T
from reprolib.chapters import taujp_runs as R
from reprolib.claims import Evidence
from reprolib.vision import arithmetic as A

VERSION = 3          # 2: θ0's accuracy, TIES, pairs, any zoo's tasks; 3: pairs of the linearised methods only
REGIME = {**R.REGIME, "ties": "nonlinear", "incremental": "linear_taujp_incremental", "strict": "linear_taujp_strict",
          "mtl": "mtl"}
LINEARISED = ("linear", "ours", "incremental", "strict")
SINGLE = {"ties": "nonlinear"}          # whose fine-tuned accuracies a merged vector is normalised by
TASKS = R.TASKS
FIG3_EVERY = 10          # steps between two points of Fig. 3's curves
FIRST_STEPS = 100        # "within the first 100 steps" (line 412)


@dataclass
class AdditionRuns:
    """Task addition for ``methods`` on one task-vector zoo (vision or text: anything with
    ``pretrained()``, ``eval_sets(split, n, seed)``, ``task_vectors(regime, seed)``, ``tv_keys``), every
    task of its evaluation sets; ``result(seed)``, cached in ``cache``. ``ties`` merges the non-linear
    vectors (:func:`reprolib.vision.arithmetic.ties_vector`, ``settings.ties_density``); ``pairs``: also
    τJp and cosine of every pair of task vectors of each linearised method (test inputs)."""

    zoo: "object"
    seeds: list[int]
    cache: "object"
    settings: R.Settings
    methods: tuple[str, ...]
    progress: bool = True
    pairs: bool = False

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in REGIME]
        if unknown:
            raise ValueError(f"AdditionRuns: unknown method(s) {unknown} (known: {', '.join(REGIME)})")
        if "ties" in self.methods and "nonlinear" not in self.methods:
            raise ValueError("AdditionRuns: method 'ties' merges the non-linear vectors and is normalised by their "
                             "accuracies; add 'nonlinear' to the methods")
        self.backbone, self.heads = self.zoo.pretrained()
        s = self.settings
        self.test = self.zoo.eval_sets("test", s.eval_size, s.eval_seed)
        self.val = self.zoo.eval_sets("val", s.val_size, s.eval_seed + 1)
        self.tasks = tuple(self.test)
        self._results: dict[int, dict] = {}

    def key(self, seed: int) -> dict:
        s = self.settings
        return {"kind": "taujp-addition", "task_vectors": self.zoo.tv_keys(sorted({REGIME[m] for m in self.methods})),
                "seed": seed, "methods": list(self.methods), "eval_size": s.eval_size, "val_size": s.val_size,
                "addition_grid": list(s.addition_grid), "eval_seed": s.eval_seed, "pairs": self.pairs,
                "ties_density": s.ties_density if "ties" in self.methods else None, "version": VERSION}

    def build(self) -> None:
        for seed in tqdm(self.seeds, desc=f"τJp addition ({self.zoo.KIND} {self.zoo.profile.name}): seeds",
                         disable=not self.progress):
            self.result(seed)

    def result(self, seed: int) -> dict:
        if seed not in self._results:
            self._results[seed] = self.cache.get_or_compute(self.key(seed), lambda: self._compute(seed))
        return self._results[seed]

    def _compute(self, seed: int) -> dict:
        tasks, grid = self.tasks, self.settings.addition_grid
        pre = A.Outputs(self.backbone, self.heads, {}, self.test, linear=False)
        out = {"pretrained": {t: R._items(pre.correct(t, {})) for t in tasks}, "single": {}, "addition": {}, "pairs": {}}
        single_val, loaded = {}, {}
        for method in sorted(self.methods, key=lambda m: m == "ties"):     # TIES reads the non-linear singles
            if REGIME[method] not in loaded:                               # TIES' vectors are non-linear FT's: read once
                loaded[REGIME[method]] = self.zoo.task_vectors(REGIME[method], seed)
            vectors = loaded[REGIME[method]]
            if method == "ties":
                vectors = {"ties": A.ties_vector(T.params_of(self.backbone), vectors, self.settings.ties_density)}
            linear = method in LINEARISED
            test, val = (A.Outputs(self.backbone, self.heads, vectors, d, linear) for d in (self.test, self.val))
            if method == "mtl":                 # one model for every task: its accuracy, no coefficient
                out["single"]["mtl"] = {t: R._items(test.correct(t, {"mtl": 1.0})) for t in tasks}
                continue
            if method == "ties":
                out["addition"]["ties"] = R._addition(test, val, grid, vectors=["ties"], tasks=tasks,
                                                      single_val=single_val["nonlinear"])
                continue
            out["single"][method] = {t: R._items(test.correct(t, {t: 1.0})) for t in tasks}
            single_val[method] = A.individual(val, tasks)
            out["addition"][method] = R._addition(test, val, grid, single_val=single_val[method], tasks=tasks)
            if self.pairs and linear:          # the JVPs are there already (linearised evaluation)
                out["pairs"][method] = A.pair_table(test, tasks)
        return out


# ----------------------------------------------------------------------------- Fig. 3


def fig3_pair(runs: R.VisionRuns, seed: int) -> tuple[str, str]:
    """The pair of linear-FT task vectors with the largest τJp (the paper's 'where interference was
    particularly severe', chosen by the interference measure itself, which reads no labels)."""
    top = max(runs.result(seed)["pairs"]["linear"], key=lambda p: p["taujp"])
    return top["a"], top["b"]


def continued_training(runs: R.VisionRuns, seed: int, steps: int | None = None, every: int = FIG3_EVERY) -> dict:
    """Fig. 3 for one seed, cached: the pair's linear-FT vectors trained ``steps`` more steps (default:
    the profile's fine-tuning steps) with the τJp penalty (λ of the profile), T_orth = the other task of
    the pair; every ``every`` steps: τJp (test inputs) and per item the pair's normalised accuracy under
    θ0 + τ_A + τ_B (α = 1: no coefficient is tuned along the curve), each task over its current vector's
    own accuracy."""
    zoo, p = runs.zoo, runs.zoo.profile
    steps = p.ft_steps if steps is None else int(steps)
    if steps < 1 or every < 1:
        raise ValueError(f"continued_training: 'steps' = {steps} and 'every' = {every} must be >= 1")
    a, b = fig3_pair(runs, seed)
    key = {"kind": "taujp-fig3", "task_vectors": zoo.tv_keys(), "seed": seed, "pair": [a, b], "steps": steps,
           "every": every, "eval_size": runs.settings.eval_size, "eval_seed": runs.settings.eval_seed,
           "version": VERSION}
    return runs.cache.get_or_compute(key, lambda: _trace(runs, seed, a, b, steps, every))


def _trace(runs: R.VisionRuns, seed: int, a: str, b: str, steps: int, every: int) -> dict:
    from reprolib.vision.finetune import finetune
    from reprolib.vision.zoo import _training_data

    zoo, p = runs.zoo, runs.zoo.profile
    start = zoo.task_vectors("linear", seed)
    data, _ = _training_data(p.n_train, p.seed)
    kept = {}
    for i, (task, other) in enumerate(((a, b), (b, a))):
        kept[task] = {}
        finetune(runs.backbone, runs.heads[task], *data[task], "linear_taujp", steps=steps, lr=p.ft_lr,
                 seed=seed * 1000 + 500 + i, batch=p.ft_batch, others=[data[other][0]], penalty=p.penalty,
                 reg_batch=p.reg_batch, init=start[task],
                 callback=lambda step, tau, task=task: kept[task].__setitem__(step, tau) if step % every == 0 else None)
    points = []
    sets = {t: runs.test[t] for t in (a, b)}
    for step in sorted(kept[a]):
        out = A.Outputs(runs.backbone, runs.heads, {a: kept[a][step], b: kept[b][step]}, sets, linear=True)
        norm = np.concatenate([100.0 * out.correct(t, {a: 1.0, b: 1.0}) / max(float(out.correct(t, {t: 1.0}).mean()), 1e-9)
                               for t in (a, b)])
        points.append({"step": step, "taujp": out.taujp(a, b), "norm_items": R._items(norm)})
    return {"a": a, "b": b, "points": points}


def fig3(runs: R.VisionRuns, steps: int | None = None) -> Evidence:
    """Fig. 3's curves per seed: ``step``, ``taujp``, ``norm`` (%, per item), ``a``, ``b``."""
    import pandas as pd

    rows, items = [], []
    for seed in tqdm(runs.seeds, desc="τJp Fig. 3: continued training", disable=not runs.progress):
        trace = continued_training(runs, seed, steps)
        for point in trace["points"]:
            rows.append({"seed": seed, "a": trace["a"], "b": trace["b"], "step": point["step"], "taujp": point["taujp"],
                         "norm": float(np.mean(point["norm_items"]))})
            items.append({"norm": point["norm_items"]})
    return Evidence(pd.DataFrame(rows), items)


# ----------------------------------------------------------------------------- Table 6's timing


TIMED = {"linear": ("linear", "cyclical", True), "ours": ("linear_taujp", "cyclical", True),
         "strict": ("linear_taujp", "strict", True), "strict_loop": ("linear_taujp", "strict", False)}


def machine() -> str:
    """This machine in words (CPU model, cores, PyTorch threads), for the page."""
    from reprolib.io import cpu_model

    return (f"{cpu_model()}, {os.cpu_count()} logical cores, PyTorch {torch.__version__} on CPU with "
            f"{torch.get_num_threads()} threads")


def time_iterations(zoo, task: str = TASKS[0], n_iter: int = 20, repeats: int = 3, warmup: int = 3) -> Evidence:
    """Seconds per fine-tuning iteration of each of :data:`TIMED` on this machine: ``repeats`` rounds
    (the ``seed`` column), each timing every method for ``n_iter`` steps after ``warmup`` untimed ones
    and keeping the median step (a step slowed by another process does not count), the methods
    interleaved within a round so that a slow spell of the machine hits all of them."""
    import pandas as pd

    from reprolib.vision.finetune import finetune
    from reprolib.vision.zoo import _training_data
    from reprolib.vision import tasks as V

    if n_iter < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"time_iterations: n_iter = {n_iter}, repeats = {repeats} must be >= 1, warmup >= 0")
    p = zoo.profile
    backbone, heads = zoo.pretrained()
    data, control = _training_data(p.n_train, p.seed)
    others = [data[t][0] for t in V.TASKS if t != task] + [control]
    rows = []
    for r in range(repeats):
        for method, (regime, schedule, batched) in TIMED.items():
            marks = []
            penalised = regime == "linear_taujp"
            finetune(backbone, heads[task], *data[task], regime, steps=warmup + n_iter, lr=p.ft_lr, seed=r,
                     batch=p.ft_batch, others=others if penalised else [], penalty=p.penalty if penalised else 0.0,
                     reg_batch=p.reg_batch, schedule=schedule, batched=batched,
                     callback=lambda step, tau: marks.append(time.perf_counter()) if step >= warmup else None)
            rows.append({"seed": r, "method": method, "sec_per_iter": float(np.median(np.diff(marks)))})
    return Evidence(pd.DataFrame(rows))


# ----------------------------------------------------------------------------- evidence


def _addition_rows(runs: AdditionRuns, scale: str, methods=None) -> tuple[list, list]:
    """Table 1's columns (``abs``, ``norm`` per item) for ``runs``' methods at α = 1 and grid-searched;
    MTL (no coefficient, ``coef`` "-", no normalised accuracy)."""
    rows, items = [], []
    for seed in runs.seeds:
        r = runs.result(seed)
        for method in methods or runs.methods:
            if method == "mtl":
                a = [x for t in runs.tasks for x in R._pct(r["single"]["mtl"][t])]
                rows.append({"scale": scale, "method": "mtl", "coef": "-", "seed": seed, "abs": float(np.mean(a)),
                             "norm": math.nan, "alpha": math.nan})
                items.append({"abs": a})
                continue
            for coef in ("1.0", "grid"):
                run = r["addition"][method][coef]
                a = [x for t in runs.tasks for x in R._pct(run["correct"][t])]
                n = R._norm_items(run["correct"], r["single"][SINGLE.get(method, method)])
                rows.append({"scale": scale, "method": method, "coef": coef, "seed": seed, "abs": float(np.mean(a)),
                             "norm": float(np.mean(n)), "alpha": run["alpha"]})
                items.append({"abs": a, "norm": n})
    return rows, items


def per_task(runs: AdditionRuns) -> Evidence:
    """Tables 3 and 8's cells: per seed, method, coefficient and task, ``abs`` and ``norm`` (%, per item:
    the task's accuracy over its fine-tuned model's, :func:`reprolib.chapters.taujp_runs._norm_items`),
    with θ0 (``pretrained``) and the non-linear fine-tuned models (``individual``) as references."""
    import pandas as pd

    rows, items = [], []

    def add(seed, method, coef, task, correct, single=None):
        a = R._pct(correct)
        n = R._norm_items({task: correct}, {task: single}) if single is not None else None
        rows.append({"method": method, "coef": coef, "task": task, "seed": seed, "abs": float(np.mean(a)),
                     "norm": float(np.mean(n)) if n else math.nan})
        items.append({"abs": a, **({"norm": n} if n else {})})

    for seed in runs.seeds:
        r = runs.result(seed)
        for t in runs.tasks:
            add(seed, "pretrained", "-", t, r["pretrained"][t])
            if "nonlinear" in r["single"]:
                add(seed, "individual", "-", t, r["single"]["nonlinear"][t])
        for method in (m for m in runs.methods if m != "mtl"):
            single = r["single"][SINGLE.get(method, method)]
            for coef in ("1.0", "grid"):
                for t in runs.tasks:
                    add(seed, method, coef, t, r["addition"][method][coef]["correct"][t], single[t])
    return Evidence(pd.DataFrame(rows), items)


def pair_rows(runs: AdditionRuns) -> "object":
    """τJp and cosine of every pair of task vectors, per seed and method (a DataFrame)."""
    import pandas as pd

    return pd.DataFrame([{"seed": seed, "method": method, **p} for seed in runs.seeds
                         for method, pairs in runs.result(seed)["pairs"].items() for p in pairs])


def _select(ev: Evidence, **labels) -> Evidence:
    """The rows (and their items) of ``ev`` whose columns match ``labels`` (a tuple: any of)."""
    keep = [i for i, r in enumerate(ev.records())
            if all(r[k] in (v if isinstance(v, tuple) else (v,)) for k, v in labels.items())]
    return Evidence(ev.rows.iloc[keep], [ev.items[i] for i in keep] if ev.items else [])


def variants(table1: Evidence, runs: AdditionRuns, scale: str) -> Evidence:
    """Tables 5–6: linear FT and ours (Table 1's rows) with the incremental and strict penalties, both
    coefficient settings."""
    import pandas as pd

    rows, items = _addition_rows(runs, scale, [m for m in runs.methods if m != "mtl"])
    ours = _select(table1, method=("linear", "ours"))
    return Evidence.concat([ours, Evidence(pd.DataFrame(rows), items)])


def table7(table1: Evidence, runs: AdditionRuns, others: dict[str, AdditionRuns]) -> Evidence:
    """Table 7 (grid-searched Abs.): the chapter's model (Table 1's rows, MTL from ``runs``) and every
    other model size in ``others`` (scale → runs of nonlinear, linear, ours, mtl)."""
    import pandas as pd

    scale = table1.rows["scale"].iloc[0]
    parts = [_select(table1, method=("nonlinear", "linear", "ours"), coef="grid")]
    rows, items = _addition_rows(runs, scale, ["mtl"])
    parts.append(Evidence(pd.DataFrame(rows), items))
    for other_scale, other in others.items():
        rows, items = _addition_rows(other, other_scale)
        parts.append(_select(Evidence(pd.DataFrame(rows), items), coef=("grid", "-")))
    out = Evidence.concat(parts)
    out.rows = out.rows.drop(columns=["norm"])
    out.items = [{"abs": i["abs"]} for i in out.items]
    return out



def mean_sec(timing: Evidence) -> dict[str, float]:
    """Method → mean seconds per iteration over the timing rounds."""
    return {m: statistics.fmean(g["sec_per_iter"]) for m, g in timing.rows.groupby("method")}
