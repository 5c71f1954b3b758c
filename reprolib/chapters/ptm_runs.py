"""The Merge to Learn chapter's runs on the kit: the zoo's PTM group (or a paper profile's roles)
scored, as Evidence whose rows have the columns ``reprolib.chapters.ptm``'s claims read.

Roles. ``general`` is θ_G (trained on the general mix G from ``base`` = θ_pre); ``skill_science``,
``skill_safety`` and ``code_b`` are θ_D, each trained from ``base`` on all of its skill data D;
``cft_<skill><amount>`` continues θ_G on a subsample D_i and ``rt_<skill><amount>`` retrains from
``base`` on G + D_i (amounts ``_25``, ``_50`` and ``""`` for ¼, ½ and all of D; the paper trains five);
``cft_all`` / ``rt_all`` use all three skills (Table 4), ``cft_science_mix`` CFT on science plus a
matching amount of G (Fig. 2).

Merges (the engine's methods, through the kit's scorer):

- PTM, eq. 1–2: θ_G + Σ_d ω_d (θ_D − θ_pre) (``ptm`` onto ``general``, vectors from ``base``);
- linear interpolation, eq. 4: θ_pre + ω τ_D + (1 − ω) τ_G = ω θ_D + (1 − ω) θ_G (``linear``);
- WiSE-FT, eq. 5–6: θ_G + ω (θ_CFT − θ_G) (``wise_ft`` with α = ω);
- Table 6's TIES and DARE PTM (settings not stated in the paper; ours): θ_G + TIES/DARE of the ω_d-
  weighted skill vectors, TIES with density ``TIES_DENSITY``, weighted sign election and no
  division (mergekit's ``normalize: false``, which a weighted PTM needs: with mergekit's default
  division a vector alone on an entry would get weight 1, not ω); DARE (``dare_linear``) with drop
  rate ``DARE_DROP`` and the same weights.

ω heuristic (eq. 7): |D| / |G| from the recorded training steps of the skill model and θ_G
(``Models.training``); a checkpoint without a record takes ``heuristic`` from the caller.

Scores are in percent (the paper's unit): ``general`` is the mean over every item of the general
mix's three evaluations (instructions, sentiment, acceptability, equal item counts), ``safety`` the
refusal rate on unsafe prompts, ``exref`` the compliance rate on safe look-alike prompts (100 −
exaggerated refusal), ``science`` and ``coding`` their metrics. Selection: Table 2 picks each
method's best by science on a validation split (the training split's generator, disjoint from every
test item), as the paper picks on SciRIFF's validation set; Table 3 picks by the mean of the two
percentage changes over the baseline on the evaluations themselves, as the paper does (line 181).
"""

from __future__ import annotations

import itertools

from reprolib.claims import Evidence
from reprolib.errors import ConfigError

SKILL_ROLES = {"science": "skill_science", "safety": "skill_safety", "coding": "code_b"}
ZOO_NAME = {"science": "science", "safety": "safety", "coding": "code"}     # the skill's name in cft_/rt_ roles
SKILL_METRIC = {"science": "science", "safety": "refusal", "coding": "code"}
GENERAL_METRICS = ("instructions", "sentiment", "acceptability")
AMOUNTS = ("_25", "_50", "")                 # role suffixes: ¼, ½ and all of D
OMEGA_GRID = (0.2, 0.4, 0.6, 0.8, 1.0)       # line 159: the five ω of Tables 2–3, and the alternatives' curves
OMEGA_CURVE = tuple(round(0.1 * k, 1) for k in range(1, 11))   # Fig. 1: 10 evenly spaced ω (line 188)
TIES_DENSITY = 0.7
DARE_DROP = 0.3
ALL_METRICS = GENERAL_METRICS + ("science", "refusal", "over_refusal", "code")


def cft_role(skill: str, amount: str = "") -> str:
    return f"cft_{ZOO_NAME[skill]}{amount}"


def rt_role(skill: str, amount: str = "") -> str:
    return f"rt_{ZOO_NAME[skill]}{amount}"


def check_grid(name: str, values, low: float = 0.0, high: float = 1.0) -> list[float]:
    """A ω grid as floats in [low, high]; ConfigError names the parameter otherwise."""
    values = list(values)
    if not values:
        raise ConfigError(f"parameter '{name}' is empty: give at least one ω")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high]
    if bad:
        raise ConfigError(f"parameter '{name}': {bad[0]!r} is not a number in [{low:g}, {high:g}]")
    return sorted({float(v) for v in values})


# ----------------------------------------------------------------------------- scores in the paper's units


def metrics_for(columns) -> list[str]:
    """Our metrics behind the paper's columns."""
    need = {"general": GENERAL_METRICS, "science": ("science",), "safety": ("refusal",), "coding": ("code",),
            "exref": ("over_refusal",)}
    return sorted({m for c in columns for m in need[c]})


def percent(result: dict, columns) -> tuple[dict, dict]:
    """A scorer result as the paper's columns in percent, with per-item values in the same unit."""
    items = result["items"]
    out, per_item = {}, {}
    for c in columns:
        if c == "general":
            counts = {m: len(items[m]) for m in GENERAL_METRICS}
            if len(set(counts.values())) != 1:
                raise ValueError(f"general: the mean over every item equals the mean of the three evaluations only with "
                                 f"equal item counts, got {counts}")
            values = [v for m in GENERAL_METRICS for v in items[m]]
        elif c == "exref":
            values = [1.0 - v for v in items["over_refusal"]]
        else:
            values = list(items[{"science": "science", "safety": "refusal", "coding": "code"}[c]])
        per_item[c] = [100.0 * v for v in values]
        out[c] = sum(per_item[c]) / len(per_item[c])
    return out, per_item


class Runs:
    """The chapter's scored checkpoints and merges (each cached by the kit's scorer)."""

    def __init__(self, ch, heuristic: dict | None = None, amounts=AMOUNTS):
        self.ch, self.scorer, self.models = ch, ch.scorer, ch.models
        self.amounts = tuple(amounts)
        missing = [r for r in self.roles() if not ch.models.has(r)]
        if missing:
            raise ConfigError(f"the profile has no role {missing[0]!r} (the PTM chapter needs {', '.join(self.roles())})")
        self.omega_heuristic = heuristic or {k: self.heuristic(k) for k in SKILL_ROLES}

    def roles(self) -> list[str]:
        return (["base", "general", *SKILL_ROLES.values()] + [f(k, a) for k in SKILL_ROLES for a in self.amounts
                                                              for f in (cft_role, rt_role)]
                + ["cft_all", "rt_all", "cft_science_mix"])

    # ------------------------------------------------------------------ compute

    def recorded_steps(self, role: str) -> int | None:
        record = self.models.training(role)
        return None if record is None else int(record["steps"])

    def steps(self, role: str) -> int:
        steps = self.recorded_steps(role)
        if steps is None:
            raise ConfigError(f"role {role!r} has no recorded training (provenance.json): give 'heuristic' and "
                              "read the compute from the paper profile's notes")
        return steps

    def heuristic(self, skill: str) -> float:
        """ω = |D| / |G| (eq. 7) from the recorded steps of the skill model and of θ_G."""
        from reprolib.merge.methods import omega_heuristic

        return omega_heuristic(self.steps(SKILL_ROLES[skill]), self.steps("general"))

    def compute(self, unit: str = "steps") -> dict:
        """Training cost each method needs for its pool of models (Sections 2.1–2.3), from the record
        (``unit``: steps, or flops): PTM = the skill model's; CFT = Σ over its amounts; RT = Σ over its
        amounts (each |G| + |D_i|)."""
        cost = self.steps if unit == "steps" else (lambda role: float(self.models.training(role)[unit]))
        out = {}
        for k in SKILL_ROLES:
            out[k] = {"ptm": cost(SKILL_ROLES[k]), "cft": sum(cost(cft_role(k, a)) for a in self.amounts),
                      "rt": sum(cost(rt_role(k, a)) for a in self.amounts), "general": cost("general")}
        return out

    # ------------------------------------------------------------------ scoring

    def role(self, role: str, columns, sets=None) -> tuple[dict, dict]:
        return percent(self.scorer.score_role(role, metrics_for(columns), sets=sets), columns)

    def ptm(self, weights: dict, columns, sets=None) -> tuple[dict, dict]:
        """θ_G + Σ ω_d τ_d over the skills in ``weights`` (skill → ω)."""
        skills = list(weights)
        result = self.scorer.score_merge("ptm", [SKILL_ROLES[k] for k in skills], "base", "general",
                                         model_params=[{"weight": float(weights[k])} for k in skills],
                                         metrics=metrics_for(columns), sets=sets)
        return percent(result, columns)

    def linear(self, skill: str, omega: float, columns) -> tuple[dict, dict]:
        result = self.scorer.score_merge("linear", [SKILL_ROLES[skill], "general"], "base",
                                         model_params=[{"weight": omega}, {"weight": 1.0 - omega}], metrics=metrics_for(columns))
        return percent(result, columns)

    def wise_ft(self, cft: str, omega: float, columns) -> tuple[dict, dict]:
        result = self.scorer.score_merge("wise_ft", [cft], "general", params={"alpha": omega}, metrics=metrics_for(columns))
        return percent(result, columns)

    def sparse_ptm(self, method: str, weights: dict, columns) -> tuple[dict, dict]:
        """Table 6: TIES or DARE over the ω-weighted skill vectors, onto θ_G (see the module docstring)."""
        skills = list(weights)
        if method == "ties":
            params = {"divisor": "none", "elect": "weighted"}
            model_params = [{"weight": float(weights[k]), "density": TIES_DENSITY} for k in skills]
            name = "ties"
        else:
            params, model_params, name = {"drop_rate": DARE_DROP}, [{"weight": float(weights[k])} for k in skills], "dare_linear"
        result = self.scorer.score_merge(name, [SKILL_ROLES[k] for k in skills], "base", "general", params, model_params,
                                         seed=0, metrics=metrics_for(columns))
        return percent(result, columns)


def _columns(skill: str) -> tuple[str, ...]:
    return ("general", skill) + (("exref",) if skill == "safety" else ())


def _evidence(rows: list[dict], items: list[dict]) -> Evidence:
    import pandas as pd

    return Evidence(pd.DataFrame(rows), items)


# ----------------------------------------------------------------------------- per skill: every checkpoint (Fig. 1, 3, 6; Table 3)


def skill_runs(runs: Runs, omega_curve=OMEGA_CURVE, omega_grid=OMEGA_GRID, progress: bool = True) -> dict:
    """For each skill: the general model, CFT and RT at every amount, PTM along ``omega_curve`` plus
    the heuristic, linear interpolation and WiSE-FT along ``omega_grid``. Returns ``points``: one
    record per (skill, method, amount or ω) with its scores and per-item values, the raw material of
    Figs. 1, 3, 6 and Table 3."""
    from tqdm.auto import tqdm

    omega_curve = check_grid("omega_curve", omega_curve)
    omega_grid = check_grid("omega_grid", omega_grid)
    jobs = []
    for k in SKILL_ROLES:
        cols = _columns(k)
        jobs.append((k, "base", None, lambda cols=cols: runs.role("general", cols)))
        for a in runs.amounts:
            jobs.append((k, "cft", a, lambda k=k, a=a, cols=cols: runs.role(cft_role(k, a), cols)))
            jobs.append((k, "rt", a, lambda k=k, a=a, cols=cols: runs.role(rt_role(k, a), cols)))
        for w in sorted(set(omega_curve) | set(omega_grid) | {runs.omega_heuristic[k]}):
            jobs.append((k, "ptm", w, lambda k=k, w=w, cols=cols: runs.ptm({k: w}, cols)))
        for w in omega_grid:
            jobs.append((k, "linear", w, lambda k=k, w=w, cols=cols: runs.linear(k, w, cols)))
            jobs.append((k, "wise_ft", w, lambda k=k, w=w, cols=cols: runs.wise_ft(cft_role(k), w, cols)))
    points = []
    for skill, method, where, job in tqdm(jobs, desc="PTM checkpoints and merges", disable=not progress):
        scores, items = job()
        point = {"skill": skill, "method": method, "amount": where if method in ("cft", "rt") else None,
                 "omega": where if method not in ("cft", "rt", "base") else (0.0 if method == "base" else None),
                 "steps": runs.recorded_steps((cft_role if method == "cft" else rt_role)(skill, where))
                 if method in ("cft", "rt") else None,
                 "scores": scores, "items": items}
        points.append(point)
    return {"points": points, "omega_curve": omega_curve, "omega_grid": omega_grid}


def _row(table: str, labels: dict, scores: dict, seed: int = 0) -> dict:
    return {"table": table, **labels, "seed": seed, **scores}


def _picked(p: dict, columns) -> tuple[dict, dict]:
    return {c: p["scores"][c] for c in columns}, {c: p["items"][c] for c in columns}


def fig1(runs: Runs, sweep: dict) -> Evidence:
    """PTM's ω curve per skill (ω = 0 is θ_G), the heuristic's point marked (kept once where it is
    also a point of the curve)."""
    rows, items, seen = [], [], {}
    for p in sweep["points"]:
        skill, h = p["skill"], runs.omega_heuristic[p["skill"]]
        on_curve = p["method"] == "ptm" and (p["omega"] in sweep["omega_curve"] or p["omega"] == h)
        if p["method"] != "base" and not on_curve or (skill, p["omega"]) in seen:
            continue
        seen[(skill, p["omega"])] = True
        scores, item = _picked(p, _columns(skill))
        rows.append(_row("fig1", {"skill": skill, "omega": p["omega"], "heuristic": on_curve and p["omega"] == h}, scores))
        items.append(item)
    return _evidence(rows, items)


def fig3(sweep: dict) -> Evidence:
    """Three PTM methods per skill along ``omega_grid`` (PTM's points are taken from the curve)."""
    rows, items = [], []
    for p in sweep["points"]:
        if p["method"] in ("ptm", "linear", "wise_ft") and p["omega"] in sweep["omega_grid"]:
            scores, item = _picked(p, ("general", p["skill"]))
            rows.append(_row("fig3", {"skill": p["skill"], "method": p["method"], "omega": p["omega"]}, scores))
            items.append(item)
    return _evidence(rows, items)


def _setting_points(sweep: dict, setting: str, omegas):
    """The checkpoints of one setting (the safety skill's for ``exref``): base, CFT and RT at every
    amount, PTM at ``omegas``."""
    skill = "safety" if setting == "exref" else setting
    for p in sweep["points"]:
        if p["skill"] == skill and p["method"] in ("base", "cft", "rt", "ptm") and (p["method"] != "ptm" or p["omega"] in omegas):
            yield p


def table3(runs: Runs, sweep: dict, compute: dict | None) -> tuple[Evidence, list[dict]]:
    """Table 3: per setting, the baseline and each method's best checkpoint by the mean of the two
    percentage changes (line 181), among CFT's and RT's amounts and PTM's ``omega_grid``; ``steps`` is
    the method's pool (``compute``). Returns the Evidence and every candidate's score (for the page)."""
    from reprolib.chapters.ptm import SETTINGS, TABLE3, _trade_off

    rows, items, candidates = [], [], []
    for setting in SETTINGS:
        columns = TABLE3[setting]
        pts = list(_setting_points(sweep, setting, sweep["omega_grid"]))
        base = next(p for p in pts if p["method"] == "base")
        best: dict[str, tuple] = {}
        for p in pts:
            if p["method"] == "base":
                continue
            score = _trade_off(p["scores"], base["scores"], columns)
            candidates.append({"setting": setting, "method": p["method"], "amount": p["amount"], "omega": p["omega"],
                               **{c: p["scores"][c] for c in columns}, "selection score": score})
            if p["method"] not in best or score > best[p["method"]][0]:
                best[p["method"]] = (score, p)
        skill = "safety" if setting == "exref" else setting
        for method, p in [("base", base)] + [(m, best[m][1]) for m in ("cft", "rt", "ptm")]:
            steps = compute[skill][method] if compute and method != "base" else None
            scores, item = _picked(p, columns)
            rows.append(_row("table3", {"setting": setting, "method": method, "amount": p["amount"], "omega": p["omega"],
                                        "steps": steps}, scores))
            items.append(item)
    return _evidence(rows, items), candidates


def fig6(sweep: dict) -> Evidence:
    """Every checkpoint per setting (the general model, CFT and RT amounts, PTM's ``omega_curve``):
    general against the setting's score, for the Pareto curves of Figs. 4 and 6."""
    rows, items = [], []
    for setting in ("science", "safety", "coding", "exref"):
        for p in _setting_points(sweep, setting, sweep["omega_curve"]):
            scores, item = _picked(p, ("general", setting) + (("safety",) if setting == "exref" else ()))
            rows.append(_row("fig6", {"setting": setting, "method": p["method"], "amount": p["amount"], "omega": p["omega"]},
                             scores))
            items.append(item)
    return _evidence(rows, items)


# ----------------------------------------------------------------------------- Table 2: science, selected on validation


def validation_sets(n: int, test: list, seed: int = 1) -> dict:
    """Science validation items like the test split's (held-out organism, site and method combinations,
    as SciRIFF's validation and test sets are both held out), drawn with another seed, leaving out
    every prompt of the ``test`` items, so selection never sees a test item."""
    from reprolib.zoo import data as D

    taken = {e.prompt for e in test}
    out = [e for e in D.science_qa(4 * n, seed, "test") if e.prompt not in taken]
    if len(out) < n:
        raise ConfigError(f"parameter 'val_size' = {n}: only {len(out)} science items outside the test set")
    return {"science": out[:n]}


def table2(runs: Runs, omega_grid=OMEGA_GRID, val_size: int = 40, compute: dict | None = None,
           progress: bool = True) -> tuple[Evidence, list[dict]]:
    """Table 2: each method's best science checkpoint on validation (CFT and RT amounts, PTM's
    ``omega_grid``), scored on the test split, with the steps of its pool."""
    from tqdm.auto import tqdm

    val = validation_sets(val_size, runs.scorer.sets["science"])
    candidates = [("cft", a, None) for a in runs.amounts] + [("rt", a, None) for a in runs.amounts] + \
                 [("ptm", None, w) for w in check_grid("omega_grid", omega_grid)]
    scored = []
    for method, amount, w in tqdm(candidates, desc="PTM Table 2 selection", disable=not progress):
        if method == "ptm":
            v, _ = runs.ptm({"science": w}, ("science",), sets=val)
        else:
            v, _ = runs.role((cft_role if method == "cft" else rt_role)("science", amount), ("science",), sets=val)
        scored.append({"method": method, "amount": amount, "omega": w, "validation science": v["science"]})
    rows, items = [], []
    cols = ("general", "science")
    best = {}
    for c in scored:
        if c["method"] not in best or c["validation science"] > best[c["method"]]["validation science"]:
            best[c["method"]] = c
    for method in ("base", "cft", "rt", "ptm"):
        if method == "base":
            scores, item = runs.role("general", cols)
            labels = {"amount": None, "omega": None}
        else:
            c = best[method]
            labels = {"amount": c["amount"], "omega": c["omega"]}
            scores, item = (runs.ptm({"science": c["omega"]}, cols) if method == "ptm"
                            else runs.role((cft_role if method == "cft" else rt_role)("science", c["amount"]), cols))
        steps = compute["science"][method] if compute and method != "base" else None
        rows.append(_row("table2", {"method": method, **labels, "steps": steps}, scores))
        items.append(item)
    return _evidence(rows, items), scored


# ----------------------------------------------------------------------------- several skills: Tables 4–6


def multi_skill(runs: Runs, progress: bool = True) -> dict[str, Evidence]:
    """Table 4 (base, CFT / RT on all three skills, PTM with the heuristic ω of each), Table 5 (PTM
    of every single skill and every pair, heuristic ω), Table 6 (PTM, TIES and DARE of all three)."""
    from tqdm.auto import tqdm

    from reprolib.chapters.ptm import COLUMNS

    h = runs.omega_heuristic
    skills = list(SKILL_ROLES)
    subsets = [(k,) for k in skills] + list(itertools.combinations(skills, 2))
    jobs = [("table4", {"method": "base"}, lambda: runs.role("general", COLUMNS)),
            ("table4", {"method": "cft"}, lambda: runs.role("cft_all", COLUMNS)),
            ("table4", {"method": "rt"}, lambda: runs.role("rt_all", COLUMNS)),
            ("table4", {"method": "ptm"}, lambda: runs.ptm({k: h[k] for k in skills}, COLUMNS))]
    jobs += [("table5", {"skills": "+".join(s)}, lambda s=s: runs.ptm({k: h[k] for k in s}, COLUMNS)) for s in subsets]
    jobs += [("table6", {"method": m}, lambda m=m: runs.sparse_ptm(m, {k: h[k] for k in skills}, COLUMNS))
             for m in ("ties", "dare")]
    out: dict[str, tuple[list, list]] = {t: ([], []) for t in ("table4", "table5", "table6")}
    for table, labels, job in tqdm(jobs, desc="PTM several skills", disable=not progress):
        scores, items = job()
        out[table][0].append(_row(table, labels, scores))
        out[table][1].append(items)
    # the rows the tables share: Table 5's baseline and Table 6's PTM are Table 4's
    t4 = {r["method"]: (r, i) for r, i in zip(*out["table4"])}
    for table, labels, src in (("table5", {"skills": ""}, "base"), ("table6", {"method": "ptm"}, "ptm")):
        r, i = t4[src]
        out[table][0].insert(0, {**{k: v for k, v in r.items() if k != "method"}, "table": table, **labels})
        out[table][1].insert(0, i)
    return {t: _evidence(rows, items) for t, (rows, items) in out.items()}


# ----------------------------------------------------------------------------- Fig. 2: WiSE-FT with and without general data


def fig2(runs: Runs, omega_grid=OMEGA_GRID, progress: bool = True) -> Evidence:
    """WiSE-FT θ_G + ω (θ_CFT − θ_G) of CFT on science only and on science + a matching amount of G."""
    from tqdm.auto import tqdm

    rows, items = [], []
    cols = ("general", "science")
    jobs = list(itertools.product((("skill", cft_role("science")), ("mix", "cft_science_mix")), check_grid("omega_grid", omega_grid)))
    for (data, role), w in tqdm(jobs, desc="PTM WiSE-FT (Fig. 2)", disable=not progress):
        scores, item = runs.wise_ft(role, w, cols)
        rows.append(_row("fig2", {"data": data, "omega": w}, scores))
        items.append(item)
    return _evidence(rows, items)
