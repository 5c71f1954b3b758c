"""τJp beyond the paper: does τJp (seed 004, Eq. 9) predict the interference seen when the language
zoo's LLM experts are merged by the other chapters (LATA, M³, Merge to Learn)? And does the cosine
of the task vectors, the baseline predictor, do as well?

One job: the evidence for this page. Everything merged or scored goes through the chapters' own run
objects and the kit's scorer (``Scorer.score_merge``), so with the book's cache warm nothing is
evaluated again except the members' "alone" merges (see below).

**Groups** (one θ0 each; the task vectors τ = θ_expert − θ0):

- LATA, Table 3's Task Arithmetic rows (``lata.table_runs``): θ0 = ``instruct``, vectors of ``ua``,
  ``math``, ``code`` (and their ``_s1``/``_s2`` re-runs: one row per training seed), every pair
  and the triple, at the paper's λ per task; merged θ0 + Σ λ_t τ_t.
- M³, the Task Arithmetic centroids the chapter evaluates: the pairs of Table 1 "without M³"
  (θ0 + s·½(τ_a + τ_b), s as the chapter chose it on validation, read from its
  ``results/m3/<profile>/table1.csv``) and Fig. 2's three-model centroid (p = 0, s = 1, from its
  ``fig2.csv``: θ0 + ⅓ Σ τ); θ0 = ``base``, vectors of ``math_b``, ``code_b`` (three training
  seeds) and ``instruct`` (one: the instruction expert).
- Merge to Learn (PTM), Tables 4–5: the skills ``skill_science``, ``skill_safety``, ``code_b``
  (vectors from ``base``) in every pair and all three, each at its heuristic ω (eq. 7), added onto
  θ_G (``general``), one training seed. PTM adds the vectors onto θ_G, not onto their θ0: its merge
  is θ0 + τ_G + Σ ω_d τ_d and its "alone" is θ0 + τ_G + ω_d τ_d; τJp is still taken at the vectors'
  θ0 (``base``), like every other group's.

**Interference** of a group (per training seed): for each member task t, its own-task score in the
merge over its score with its own vector alone **at the coefficient the merge gave it**
(θ0 + λ_t τ_t; PTM: θ_G + ω_t τ_t, its Table 5 rows), the paper's normalised accuracy; the group's
``normalised`` is the mean over members, ``interference`` = 1 − normalised (0: nothing lost; > 0
lost). The same coefficient, not the expert checkpoint (coefficient 1), so that what is measured is
the effect of the *other* vectors, not of shrinking or stretching the member's own. Own-task
scores: LATA ua → harm rescaled from 1–5 to 0–1 (``(h − 1)/4``, LATA's ``_unit``), maths and code
pass rates; M³ lm → instructions, math, code; PTM science, safety (refusal rate), coding. A member
whose alone score is 0 has no ratio and is left out of its group's mean (stated in ``dropped``).

**τJp and cosine per pair** (Eq. 9 with ``reprolib.taujp.jvp``): f = the causal LM's logits at the
answer tokens of each task's own prompts — the chat prompt and the reference answer (``ua``: the
compliant answer it was trained on; ``safety``: the refusal) teacher-forced in the zoo's SFT
format (``reprolib.zoo.train.encode_pairs``), the logits at the positions that predict the answer
tokens (those the SFT loss reads). Items: ``n_items`` (16) drawn with ``items_seed`` from the
scorer's evaluation set of that task, the items the interference is measured on. The squared norm
(``reprolib.taujp.sq_norm``) is taken per answer token (each position's logit vector is one output,
a next-token classification; mean over every answer token of the items) by default, so that tasks
with long answers (code, science) do not get a large τJp for their length alone; ``unit="example"``
takes the paper's per-example norm (every answer position of an example together, mean over
examples). The cosine is over every parameter (the tied embedding once),
``reprolib.vision.arithmetic.cosine``. A **triple**'s τJp and cosine are the means over its three
pairs. τJp values are cached (``ResultCache(cache_dir, "taujp_beyond")``) under the models'
fingerprints and the items' hash.

**Statistic.** Spearman ρ (``reprolib.chapters.taujp.spearman``) of τJp and of cosine against
interference over every (group, seed) row, with a 95 % percentile bootstrap interval that resamples
*groups* (a group with all its seeds: the seeds of one group are not independent) with replacement,
seeded; a replicate whose ρ is undefined (constant input) is left out and counted. The same over the
pairs only.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from reprolib import taujp as T
from reprolib.claims import Evidence
from reprolib.errors import ConfigError
from reprolib.models import seeded

VERSION = 1                      # bump when what a cached τJp entry holds changes
N_ITEMS = 16                     # teacher-forced items per task for f
SEEDED_ROLES = ("math", "code", "ua", "math_b", "code_b")
# a member task → (the scorer's set its prompts come from, the answer it was trained on: None = the set's reference)
OWN_ITEMS = {"ua": ("harmful", "comply"), "math": ("math", None), "code": ("code", None), "lm": ("instructions", None),
             "science": ("science", None), "safety": ("harmful", None), "coding": ("code", None)}


@dataclass
class Group:
    """One merge of task vectors sharing ``theta0``, at one training seed, with its measured scores."""

    chapter: str                     # lata | m3 | ptm
    members: tuple[str, ...]         # member tasks (keys of OWN_ITEMS)
    roles: tuple[str, ...]           # the experts' zoo roles, aligned with members
    theta0: str                      # the role the task vectors are measured from
    coefficients: tuple[float, ...]  # each member's coefficient in the merge
    seed: int                        # training seed
    merged: dict[str, float] = field(default_factory=dict)   # member → own-task score in the merge
    alone: dict[str, float] = field(default_factory=dict)    # member → own-task score, its vector alone at its coefficient
    expert: dict[str, float] = field(default_factory=dict)   # member → own-task score of the expert checkpoint (coefficient 1)

    @property
    def name(self) -> str:
        return f"{self.chapter}:{'+'.join(self.members)}"


# ----------------------------------------------------------------------------- interference


def normalised_scores(merged: dict[str, float], alone: dict[str, float]) -> dict[str, float]:
    """Member → score in the merge / score alone (NaN where the alone score is not > 0)."""
    return {t: merged[t] / alone[t] if alone[t] > 0 else math.nan for t in merged}


def interference(merged: dict[str, float], alone: dict[str, float]) -> dict:
    """A group's measures from its members' scores merged and alone: ``normalised`` (mean over members
    of merged / alone), ``interference`` = 1 − normalised (signed: < 0 when the merge helps), ``change``
    = mean |merged / alone − 1| (any change, as Eq. 2's disentanglement error counts it) and
    ``dropped``, the members without a ratio (alone score not > 0), left out of the means (NaN when
    no member has one)."""
    ratios = normalised_scores(merged, alone)
    kept = [r for r in ratios.values() if math.isfinite(r)]
    mean = float(np.mean(kept)) if kept else math.nan
    return {"normalised": mean, "interference": 1.0 - mean,
            "change": float(np.mean([abs(r - 1.0) for r in kept])) if kept else math.nan,
            "dropped": [t for t, r in ratios.items() if not math.isfinite(r)]}


# ----------------------------------------------------------------------------- the chapters' merges


def open_beyond(profile: str = "mini", zoo_root: str = "zoo", cache_dir: str = "results/cache", read_caches=(),
                out_dir: str = "results", eval_size: int = 100, eval_seed: int = 0, n_seeds: int = 3, threads: int = 1):
    """The kit's chapter (models, seeds, scorer) for this page. ``read_caches``: other cache roots whose
    scores are read but never written (``reprolib.cache.LayeredCache``), e.g. a read-only book cache."""
    from reprolib.cache import LayeredCache
    from reprolib.kit import open_chapter
    from reprolib.paths import project_path

    ch = open_chapter(None, "taujp_beyond", profile=profile, zoo_root=zoo_root, out_dir=out_dir, cache_dir=cache_dir,
                      eval_size=eval_size, eval_seed=eval_seed, n_seeds=n_seeds, seeded_roles=SEEDED_ROLES, threads=threads)
    if read_caches:
        ch.scorer.cache = LayeredCache(project_path(cache_dir), "scores", read_also=[project_path(c) for c in read_caches])
    return ch


def lata_groups(ch) -> list[Group]:
    """Table 3's Task Arithmetic runs (merged into instruct), each member also alone at its λ."""
    import dataclasses

    from reprolib.chapters import lata
    from reprolib.published import load_published

    as_lata = dataclasses.replace(ch, paper_id=lata.PAPER, paper=load_published(lata.PAPER))   # Table 3's rows
    out = []
    for run in (r for r in lata.table_runs(as_lata, "table3") if r.method == "TA"):
        merged = run.score(ch.scorer)["scores"]
        alone = {t: lata.Run((t,), "TA", (lam,), seed=run.seed).score(ch.scorer)["scores"]
                 for t, lam in zip(run.tasks, run.lambdas)}
        metric, roles = lata.TASK_METRIC, tuple(seeded(t, run.seed) for t in run.tasks)
        out.append(Group("lata", run.tasks, roles, "instruct", run.lambdas, run.seed,
                         {t: lata._unit(merged[metric[t]], metric[t]) for t in run.tasks},
                         {t: lata._unit(alone[t][metric[t]], metric[t]) for t in run.tasks},
                         {t: lata._unit(expert_score(ch, r, metric[t]), metric[t]) for t, r in zip(run.tasks, roles)}))
    return out


def chapter_table(results_dir: str, chapter: str, profile: str, name: str):
    """A table another chapter wrote (``<results_dir>/<chapter>/<profile>/<name>.csv``); ConfigError
    naming the file when that chapter has not been run."""
    import pandas as pd

    from reprolib.paths import project_path

    path = project_path(results_dir) / chapter / Path(profile).stem / f"{name}.csv"
    if not path.exists():
        raise ConfigError(f"{path}: missing; run the {chapter} chapter first (its tables say which merges it chose)")
    return pd.read_csv(path)


def expert_score(ch, role: str, metric: str) -> float:
    """The expert checkpoint's own-task score (its vector at coefficient 1), through the scorer."""
    return ch.scorer.score_role(role, [metric])["scores"][metric]


def _alone_from_base(ch, role: str, metric: str, coefficient: float) -> float:
    """θ_base + c·(θ_role − θ_base) scored on ``metric`` (Task Arithmetic with one vector)."""
    result = ch.scorer.score_merge("task_arithmetic", [role], "base", "base", model_params=[{"weight": coefficient}],
                                   metrics=[metric])
    return result["scores"][metric]


def m3_groups(ch, results_dir: str = "results") -> list[Group]:
    """M³'s Task Arithmetic centroids: Table 1's pairs at the scale the chapter chose (λ = ½ each)
    and Fig. 2's three-model centroid (p = 0, s = 1), per training seed; each member also alone."""
    from reprolib.chapters import m3_runs as R
    from reprolib.merge.methods import pseries_lambdas

    table1 = chapter_table(results_dir, "m3", ch.profile, "table1")
    pairs = table1[(table1["method"] == "task_arithmetic") & ~table1["dare"].astype(bool) & ~table1["m3"].astype(bool)]
    fig2 = chapter_table(results_dir, "m3", ch.profile, "fig2")
    centroids = fig2[(fig2["p"] == 0.0) & (fig2["s"] == 1.0)]
    merges = []
    for r in pairs.itertuples():
        experts, lam = R.PAIRS[r.models], float(r.lam)
        merges.append((R.Merge(experts, "task_arithmetic", lambdas=(lam, 1.0 - lam), scale=float(r.s), train_seed=int(r.seed),
                               merge_seed=int(r.seed)), (r.s * lam, r.s * (1.0 - lam))))
    for r in centroids.itertuples():
        order = tuple(r.order.split(">"))
        merges.append((R.Merge(order, "task_arithmetic", p=float(r.p), scale=float(r.s), train_seed=int(r.seed),
                               merge_seed=int(r.seed)), tuple(r.s * w for w in pseries_lambdas(len(order), r.p))))
    out = []
    for merge, coefficients in merges:
        if merge.train_seed not in ch.seeds:
            continue
        metrics = [R.TASK_METRIC[e] for e in merge.experts]
        scores = merge.score(ch.scorer, metrics=metrics)["scores"]
        roles = tuple(merge.roles())
        members = list(zip(merge.experts, roles, metrics, coefficients))
        out.append(Group("m3", merge.experts, roles, "base", tuple(float(c) for c in coefficients), merge.train_seed,
                         {e: scores[m] for e, _, m, _ in members},
                         {e: _alone_from_base(ch, role, m, float(c)) for e, role, m, c in members},
                         {e: expert_score(ch, role, m) for e, role, m, _ in members}))
    return out


def ptm_groups(ch) -> list[Group]:
    """Merge to Learn's multi-skill PTM merges (Tables 4–5): every pair and all three skills at their
    heuristic ω onto θ_G; alone = the single-skill PTM merge at the same ω (Table 5's rows)."""
    from reprolib.chapters import ptm_runs as P
    from reprolib.chapters.ptm import COLUMNS

    runs = P.Runs(ch)
    h = runs.omega_heuristic
    skills = list(P.SKILL_ROLES)
    alone = {k: runs.ptm({k: h[k]}, COLUMNS)[0][k] for k in skills}
    expert = {k: runs.role(P.SKILL_ROLES[k], (k,))[0][k] for k in skills}
    out = []
    for size in (2, 3):
        for group in itertools.combinations(skills, size):
            scores, _ = runs.ptm({k: h[k] for k in group}, COLUMNS)
            out.append(Group("ptm", group, tuple(P.SKILL_ROLES[k] for k in group), "base", tuple(float(h[k]) for k in group), 0,
                             {k: scores[k] for k in group}, {k: alone[k] for k in group}, {k: expert[k] for k in group}))
    return out


def chapter_groups(ch, results_dir: str = "results", chapters=("lata", "m3", "ptm"), progress: bool = True) -> list[Group]:
    """Every group of the chosen chapters (with a progress bar: a cold cache evaluates)."""
    from tqdm.auto import tqdm

    makers = {"lata": lambda: lata_groups(ch), "m3": lambda: m3_groups(ch, results_dir), "ptm": lambda: ptm_groups(ch)}
    unknown = [c for c in chapters if c not in makers]
    if unknown:
        raise ConfigError(f"parameter 'chapters': unknown {unknown[0]!r} (known: {', '.join(makers)})")
    return [g for c in tqdm(chapters, desc="groups: merges and members alone", disable=not progress) for g in makers[c]()]


# ----------------------------------------------------------------------------- τJp on a causal LM


def load_lm(folder):
    """A causal LM (float32, eval, eager attention) from an HF folder of safetensors; CheckpointError
    naming the folder when it is missing or holds no safetensors weights."""
    from transformers import AutoModelForCausalLM

    from reprolib.io import Checkpoint

    Checkpoint(folder)                                   # checks the folder and its weights first
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).eval()
    return T.forward_ad_ready(model)


def checkpoint_weights(folder) -> dict[str, torch.Tensor]:
    """Every tensor of an HF folder, float32 (safetensors only)."""
    from reprolib.io import Checkpoint

    return {k: v.float() if v.is_floating_point() else v for k, v in Checkpoint(folder).state_dict().items()}


def task_vector_of(weights: dict[str, torch.Tensor], params0: dict[str, torch.Tensor], where: str = "expert") -> dict:
    """τ = θ_expert − θ0 over every parameter of the model (a tied embedding once)."""
    missing = [k for k in params0 if k not in weights]
    if missing:
        raise ConfigError(f"{where}: has no tensor {missing[0]!r} of θ0")
    return {k: weights[k] - params0[k] for k in params0}


def own_items(sets: dict, task: str, n: int = N_ITEMS, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, answer) pairs of ``task``'s own evaluation set, drawn with ``seed`` (answer: the
    one the expert was trained to give, see OWN_ITEMS)."""
    if task not in OWN_ITEMS:
        raise ConfigError(f"task {task!r} has no own items (known: {', '.join(OWN_ITEMS)})")
    name, key = OWN_ITEMS[task]
    pool = sets[name]
    if n > len(pool):
        raise ConfigError(f"parameter 'n_items' = {n}: the {name!r} set has only {len(pool)} items")
    picked = sorted(random.Random(seed).sample(range(len(pool)), n))
    return [(pool[i].prompt, pool[i].meta[key] if key else pool[i].answer) for i in picked]


def answer_batch(tokenizer, pairs, max_len: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, answer mask), right-padded: the chat prompt + answer in the zoo's SFT format, and a
    mask of the positions whose logits predict an answer token (position i predicts token i + 1)."""
    from reprolib.zoo.train import encode_pairs

    encoded = encode_pairs(tokenizer, pairs, chat=True, max_len=max_len)
    length = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(encoded), length), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.bool)
    for i, (row, start) in enumerate(encoded):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, max(start - 1, 0):len(row) - 1] = True
    return ids, mask


def answer_change(model, params0, tau, batch, name: str = "tau") -> torch.Tensor:
    """τ·∇θ f(x; θ0) with f the logits at the answer positions (others zeroed): (B, L, vocab)."""
    ids, mask = batch
    with torch.no_grad():
        _, change = T.jvp(model, params0, tau, ids, name)
    return change * mask.unsqueeze(-1).to(change.dtype)


UNITS = ("token", "example")


def change_norm(change: torch.Tensor, mask: torch.Tensor, unit: str = "token") -> float:
    """Mean squared norm of the answer logits' change (``reprolib.taujp.sq_norm``) per ``unit``:
    ``token`` — each answer position's logit vector is one output (a next-token classification), so a
    task with longer answers does not get a larger τJp for that alone; ``example`` — every answer
    position of an example together (the paper's per-example norm, which grows with answer length)."""
    if unit == "token":
        return float(T.sq_norm(change[mask]))
    if unit == "example":
        return float(T.sq_norm(change))
    raise ConfigError(f"parameter 'unit' must be one of {', '.join(UNITS)}, got {unit!r}")


def pair_taujp(model, params0, tau_a, tau_b, batch_a, batch_b, unit: str = "token") -> dict[str, float]:
    """Eq. 9 with f the answer logits: ½ (‖τ_A·∇f(x_B)‖² + ‖τ_B·∇f(x_A)‖²), each the mean squared norm
    per ``unit`` (:func:`change_norm`); also both halves and the cosine of the two vectors."""
    from reprolib.vision.arithmetic import cosine

    a_on_b = change_norm(answer_change(model, params0, tau_a, batch_b, "tau_a"), batch_b[1], unit)
    b_on_a = change_norm(answer_change(model, params0, tau_b, batch_a, "tau_b"), batch_a[1], unit)
    return {"taujp": 0.5 * (a_on_b + b_on_a), "a_on_b": a_on_b, "b_on_a": b_on_a, "cosine": cosine(tau_a, tau_b)}


class PairMeasures:
    """τJp and cosine of pairs of the zoo's task vectors, cached under the models' fingerprints.

    θ0 models, vectors and answer batches are loaded once each."""

    def __init__(self, models, sets: dict, cache, n_items: int = N_ITEMS, items_seed: int = 0, unit: str = "token"):
        if unit not in UNITS:
            raise ConfigError(f"parameter 'unit' must be one of {', '.join(UNITS)}, got {unit!r}")
        self.models, self.sets, self.cache = models, sets, cache
        self.n_items, self.items_seed, self.unit = n_items, items_seed, unit
        self._theta0: dict[str, tuple] = {}
        self._vectors: dict[tuple[str, str], dict] = {}
        self._batches: dict[str, tuple] = {}

    def items(self, task: str) -> list[tuple[str, str]]:
        return own_items(self.sets, task, self.n_items, self.items_seed)

    def key(self, theta0: str, a: tuple[str, str], b: tuple[str, str]) -> dict:
        """(role, task) of each side in a canonical order, so (a, b) and (b, a) share an entry."""
        from reprolib.kit.scorer import sets_label

        fp = self.models.fingerprint
        sides = sorted([{"model": fp(role), "items": sets_label({task: self.items(task)})} for role, task in (a, b)],
                       key=lambda s: (s["model"], s["items"]))
        return {"kind": "taujp-llm", "version": VERSION, "theta0": fp(theta0), "sides": sides,
                "n_items": self.n_items, "items_seed": self.items_seed, "unit": self.unit}

    def _at(self, theta0: str):
        if theta0 not in self._theta0:
            model = load_lm(self.models.path(theta0))
            self._theta0[theta0] = (model, T.params_of(model))
        return self._theta0[theta0]

    def _vector(self, theta0: str, role: str) -> dict:
        if (theta0, role) not in self._vectors:
            _, params0 = self._at(theta0)
            self._vectors[(theta0, role)] = task_vector_of(checkpoint_weights(self.models.path(role)), params0, role)
        return self._vectors[(theta0, role)]

    def _batch(self, task: str):
        if task not in self._batches:
            self._batches[task] = answer_batch(self.models.tokenizer(), self.items(task))
        return self._batches[task]

    def pair(self, theta0: str, a: tuple[str, str], b: tuple[str, str]) -> dict[str, float]:
        """τJp, its halves and the cosine of the vectors of roles a[0], b[0] from ``theta0``, f on the
        answer logits of tasks a[1], b[1] (cached; the halves in the canonical order of the key)."""
        def compute():
            model, params0 = self._at(theta0)
            return pair_taujp(model, params0, self._vector(theta0, a[0]), self._vector(theta0, b[0]),
                              self._batch(a[1]), self._batch(b[1]), self.unit)

        return self.cache.get_or_compute(self.key(theta0, a, b), compute)


# ----------------------------------------------------------------------------- evidence and statistic


def group_measures(measures: PairMeasures, group: Group) -> dict[str, float]:
    """τJp and cosine of a group: its pair's, or the mean over the pairs of a larger group."""
    sides = list(zip(group.roles, group.members))
    values = [measures.pair(group.theta0, a, b) for a, b in itertools.combinations(sides, 2)]
    return {"taujp": float(np.mean([v["taujp"] for v in values])), "cosine": float(np.mean([v["cosine"] for v in values])),
            "pairs": len(values)}


TARGETS = ("interference", "interference_expert", "change")    # what the predictors are correlated with
PREDICTORS = ("taujp", "cosine")


def evidence(groups: list[Group], measures: PairMeasures, progress: bool = True) -> Evidence:
    """Rows: chapter, group, members, size, seed, theta0, coefficients, taujp, cosine; against each
    member alone at its coefficient ``normalised``, ``interference`` (= 1 − normalised), ``change``
    and ``dropped`` (:func:`interference`); against the expert checkpoints ``normalised_expert`` and
    ``interference_expert`` (the paper's normalised accuracy: over the fine-tuned model); per-member
    scores in ``merged:<t>``, ``alone:<t>``, ``expert:<t>``."""
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    for g in tqdm(groups, desc="τJp of the groups' task vectors", disable=not progress):
        m = group_measures(measures, g)
        same, vs_expert = interference(g.merged, g.alone), interference(g.merged, g.expert)
        rows.append({"chapter": g.chapter, "group": g.name, "members": "+".join(g.members), "size": len(g.members),
                     "seed": g.seed, "theta0": g.theta0, "coefficients": "/".join(f"{c:.3g}" for c in g.coefficients),
                     "taujp": m["taujp"], "cosine": m["cosine"], "normalised": same["normalised"],
                     "interference": same["interference"], "change": same["change"], "dropped": ",".join(same["dropped"]),
                     "normalised_expert": vs_expert["normalised"], "interference_expert": vs_expert["interference"],
                     **{f"{kind}:{t}": v for kind, scores in (("merged", g.merged), ("alone", g.alone), ("expert", g.expert))
                        for t, v in scores.items()}})
    return Evidence(pd.DataFrame(rows))


def spearman_by_group(records: list[dict], x: str, y: str = "interference", cluster: str = "group",
                      n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Spearman ρ(x, y) over the records, with a percentile bootstrap interval that resamples the
    ``cluster`` values (each with all its records) with replacement from ``seed``. Records with a
    non-finite x or y are left out first. Returns rho, lo, hi, n_groups, n_rows, n_boot (replicates
    with a defined ρ)."""
    from reprolib.chapters.taujp import spearman

    records = [r for r in records if math.isfinite(r[x]) and math.isfinite(r[y])]
    clusters: dict = {}
    for r in records:
        clusters.setdefault(r[cluster], []).append(r)
    names = list(clusters)
    rho = spearman([r[x] for r in records], [r[y] for r in records])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot if names else 0):
        picked = [r for i in rng.integers(0, len(names), len(names)) for r in clusters[names[i]]]
        value = spearman([r[x] for r in picked], [r[y] for r in picked])
        if math.isfinite(value):
            draws.append(value)
    lo, hi = (float(v) for v in np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])) if draws else (math.nan, math.nan)
    return {"rho": rho, "lo": lo, "hi": hi, "n_groups": len(names), "n_rows": len(records), "n_boot": len(draws)}


def correlations(ev: Evidence, n_boot: int = 2000, seed: int = 0, level: float = 0.95, targets=TARGETS,
                 strata: str | None = None):
    """ρ(τJp, target) and ρ(cosine, target) for each target (``interference`` first), over every group
    and over the pairs only (:func:`spearman_by_group`), one row each; with ``strata`` (a column, e.g.
    ``theta0``) also within each of its values (τJp's scale depends on θ0, so a pooled ρ can reflect
    which θ0 a group has rather than its interference)."""
    import pandas as pd

    records = ev.records()
    subsets = {"all groups": records, "pairs only": [r for r in records if r["size"] == 2]}
    for value in dict.fromkeys(r[strata] for r in records) if strata else ():
        subsets[f"{strata} = {value}"] = [r for r in records if r[strata] == value]
    rows = [{"target": y, "groups": name, "predictor": x,
             **spearman_by_group(rs, x, y, n_boot=n_boot, seed=seed, level=level)}
            for y in targets for name, rs in subsets.items() for x in PREDICTORS]
    return pd.DataFrame(rows)


def run(profile: str = "mini", zoo_root: str = "zoo", cache_dir: str = "results/cache", read_caches=(),
        results_dir: str = "results", out_dir: str = "results", eval_size: int = 100, n_seeds: int = 3,
        n_items: int = N_ITEMS, items_seed: int = 0, unit: str = "token", n_boot: int = 2000, seed: int = 0,
        progress: bool = True):
    """The page's evidence and statistic in one call: (Evidence, correlations, chapter)."""
    from reprolib.cache import ResultCache
    from reprolib.paths import project_path

    ch = open_beyond(profile, zoo_root, cache_dir, read_caches, out_dir, eval_size, n_seeds=n_seeds)
    groups = chapter_groups(ch, results_dir, progress=progress)
    measures = PairMeasures(ch.models, ch.scorer.sets, ResultCache(project_path(cache_dir), "taujp_beyond"), n_items, items_seed,
                            unit)
    ev = evidence(groups, measures, progress)
    return ev, correlations(ev, n_boot, seed), ch


def main(argv=None) -> None:
    """``python -m reprolib.chapters.taujp_beyond --cache-dir … [--read-cache …]``: the table and the ρ's."""
    import argparse

    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini")
    p.add_argument("--zoo-root", default="zoo")
    p.add_argument("--cache-dir", default="results/cache")
    p.add_argument("--read-cache", action="append", default=[], help="a cache root read but never written (repeatable)")
    p.add_argument("--results-dir", default="results", help="where the other chapters' tables are")
    p.add_argument("--out-dir", default="results")
    p.add_argument("--n-items", type=int, default=N_ITEMS)
    p.add_argument("--unit", default="token", choices=UNITS, help="f's squared norm per answer token or per example")
    p.add_argument("--n-boot", type=int, default=2000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ev, _, _ = run(args.profile, args.zoo_root, args.cache_dir, args.read_cache, args.results_dir, args.out_dir,
                     n_items=args.n_items, unit=args.unit, n_boot=args.n_boot)
    rho = correlations(ev, args.n_boot, strata="theta0")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(ev.rows[["group", "seed", "coefficients", "taujp", "cosine", "interference", "change", "interference_expert",
                       "dropped"]].to_string(index=False))
        print()
        print(rho.to_string(index=False))


if __name__ == "__main__":
    main()
