"""The LATA chapter's experiments (Layer-Aware Task Arithmetic, seed 000): layer similarity ranks
(Fig. 5), task learning (Tables 3–15) and task forgetting (Fig. 4), as functions of a
:class:`reprolib.models.Models` so the notebooks stay thin and tests can call the same code.

Every merged model's scores are cached (``reprolib.cache``) under a key made of the merge
configuration, the models' fingerprints and the evaluation settings, so a re-run with another
parameter only computes the configurations that changed.

Choices where the paper is silent (also stated in the book):
- TIES ``k`` and DARE+TIES ``k`` are the fraction of entries KEPT (the paper's (p, k) pairs sum
  to 1); per-task λ's are the per-model weights, the global λ is 1; TIES's disjoint mean divides
  by the number of agreeing models (TIES paper), not by the sum of weights.
- "LATA + TIES/DARE/DARE+TIES" (Table 4) feed the pure vectors τ'_i into TIES/DARE with the main
  text's k = 0.7, p = 0.3, (p, k) = (0.1, 0.9).
- Safety Arithmetic is its weight-space step only (harm-direction removal with its λ, on the top
  ``sa_density`` magnitudes of the UA vector); its in-context-vector step (α) steers activations
  at inference and is not a merge.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from reprolib.cache import ResultCache
from reprolib.evals.generate import task_scores
from reprolib.merge import merge_state_dicts
from reprolib.merge import methods as M
from reprolib.models import Models, seeded
from reprolib.vectors import block_index, is_block, layer_cosines, task_vector

EVAL_VERSION = 1                     # bump when a metric's definition changes (invalidates the cache)
TASK_ROLES = {"UA": "ua", "Math": "math", "Code": "code"}
TASK_METRIC = {"ua": "harm", "math": "math", "code": "code"}   # the score that says a task was learned
VARIANTS = {"linear-drop-by-rank": "linear", "logarithmic-drop-by-rank": "log", "drop-with-threshold": "threshold"}
VARIANT_LABELS = {v: k for k, v in VARIANTS.items()}


@functools.cache
def main_settings() -> dict:
    """LATA §4's baseline settings (lines 622–625), read once from the transcription (every
    ``run_from_row`` needs them; parsing the YAML per row cost ~0.3 s each)."""
    from reprolib.published import load_published

    h = load_published("lata")["hyperparameters"]["task_learning"]
    return {"ties_k": h["TIES"]["k"], "dare_p": h["DARE"]["p"], "dare_ties_p": h["DARE_TIES"]["p"],
            "dare_ties_k": h["DARE_TIES"]["k"]}


# ----------------------------------------------------------------------------- Fig. 5: layer ranks


def layer_table(models: Models, experts=("ua", "math", "code"), seed: int = 0, sigma: float = 0.95):
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


# ----------------------------------------------------------------------------- merges


@dataclass(frozen=True)
class Run:
    """One merge of experts into instruct, labelled as in the paper's tables."""

    tasks: tuple[str, ...]            # zoo roles, e.g. ("ua", "math")
    method: str                       # TA | DARE | TIES | DARE + TIES | LATA | LATA + TIES | LATA + DARE | LATA + DARE + TIES
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
        if self.method == "TA":
            return "task_arithmetic", {}, weights
        if self.method == "DARE":
            return "dare_linear", {"drop_rate": self.p}, weights
        if self.method == "TIES":
            return "ties", {}, with_k
        if self.method == "DARE + TIES":
            return "dare_ties", {"drop_rate": self.p}, with_k
        if self.method.startswith("LATA"):
            combine = {"LATA": "ta", "LATA + TIES": "ties", "LATA + DARE": "dare", "LATA + DARE + TIES": "dare_ties"}[self.method]
            params = {"scheme": self.variant, "sigma": self.sigma, "combine": combine}
            if combine in ("dare", "dare_ties"):
                params["drop_rate"] = self.p
            return "lata", params, with_k if combine in ("ties", "dare_ties") else weights
        raise ValueError(f"unknown method {self.method!r}")


def run_from_row(row: dict, sigma: float = 0.95, seed: int = 0) -> Run:
    """The run that reproduces one published table row (Tables 3–15)."""
    names = [t.strip() for t in row["tasks"].split("+")]
    tasks = tuple(TASK_ROLES[t] for t in names)
    lam = row["lambda"]
    lambdas = tuple(float(lam[t]) for t in tasks)
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


def learning_sets(n: int, eval_seed: int = 0) -> dict:
    from reprolib.zoo.report import eval_sets

    return eval_sets(n, eval_seed)


def resolved(method: str, params: dict, model_params: list[dict]) -> list:
    """A merge as a cache key: method, every parameter with its default filled in, and the merge
    code's version, so a changed default or method never serves a stale score."""
    from reprolib.merge.registry import MERGE_VERSION, get_method

    full, per_model = get_method(method).resolve(params, model_params, where=f"method '{method}'")
    return [method, full, per_model, MERGE_VERSION]


class Scorer:
    """Merges and scores runs on one model object, with the results cache."""

    def __init__(self, models: Models, eval_size: int, cache: ResultCache, eval_seed: int = 0):
        self.models, self.cache = models, cache
        self.eval = {"size": eval_size, "seed": eval_seed, "version": EVAL_VERSION}
        self.sets = learning_sets(eval_size, eval_seed)
        self.tok = models.tokenizer()
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = self.models.load("instruct")
        return self._model

    def _load(self, sd: dict) -> None:
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"merged weights do not fit the model: missing {missing}, unexpected {unexpected}")
        if tied:
            self.model.tie_weights()

    def score_weights(self, key: dict, make_sd, evaluate) -> dict:
        """Cached ``evaluate(model, tokenizer, sets)`` of the weights ``make_sd()`` under ``key``
        (a JSON-able config; the evaluation settings are added to it)."""
        config = {**key, "eval": self.eval}

        def compute():
            self._load(make_sd())
            return evaluate(self.model, self.tok, self.sets)

        return self.cache.get_or_compute(config, compute)

    def merged(self, method: str, params: dict, model_params: list[dict], experts: list[str], seed: int,
               target: str | None = None) -> dict:
        """Merge the experts' vectors into instruct, or into ``target``. LATA measures its vectors from
        the base and needs instruct; a method with no target of its own merges into instruct and is
        moved onto the target by adding θ_target − θ_instruct."""
        from reprolib.merge.registry import get_method

        sd = self.models.state_dict
        lata = method == "lata"
        has_target = get_method(method).needs_target
        merged, _ = merge_state_dicts(method, [sd(r) for r in experts], base=sd("base" if lata else "instruct"),
                                      target=sd(target) if target and has_target else None,
                                      instruct=sd("instruct") if lata else None, params=params,
                                      model_params=model_params, seed=seed)
        if target and not has_target:
            merged = {k: v + (sd(target)[k] - sd("instruct")[k]) if v.is_floating_point() else v for k, v in merged.items()}
        return merged

    def score(self, run: Run) -> dict:
        roles = ["base", "instruct"] + [seeded(t, run.seed) for t in run.tasks]
        method, params, model_params = run.merge_args()
        key = {"kind": "learning", "run": dataclasses.asdict(run), "merge": resolved(method, params, model_params),
               "models": {r: self.models.fingerprint(r) for r in roles}}
        return self.score_weights(key, lambda: self.merged(method, params, model_params, roles[2:], run.seed),
                                  lambda m, t, sets: task_scores(m, t, sets, run.tasks))

    def score_model(self, role: str, tasks=("ua", "math", "code")) -> dict:
        key = {"kind": "model", "role": role, "model": self.models.fingerprint(role)}
        return self.score_weights(key, lambda: self.models.state_dict(role),
                                  lambda m, t, sets: task_scores(m, t, sets, tasks))


def score_runs(scorer: Scorer, runs, progress: bool = True):
    """One row per run: the run's labels and its scores (NaN where a metric does not apply)."""
    import pandas as pd

    rows = []
    for run in tqdm(list(runs), desc="merging + scoring", disable=not progress):
        rows.append({"tasks": run.label, "method": run.method, "variant": run.variant,
                     "lambda": "/".join(f"{x:g}" for x in run.lambdas), "p": run.p, "k": run.k, "seed": run.seed,
                     **scorer.score(run)})
    return pd.DataFrame(rows)


def paper_table_runs(table: dict, sigma: float = 0.95, seed: int = 0) -> list[Run]:
    return [run_from_row(r, sigma, seed) for r in table["rows"]]


PAPER_TO_OURS = {"ppl": "ppl", "harm": "harm", "gsm8k": "math", "humaneval": "code"}


def side_by_side(table: dict, ours):
    """The published table with our score beside each of its numbers: columns ``<metric> paper``
    and ``<metric> ours`` (metrics: ppl, harm, math = GSM8K in the paper, code = HumanEval).
    ``ours`` holds the table's runs for one or more seeds, each seed's rows in the table's order
    first; our column is the mean over seeds."""
    import pandas as pd

    n = len(table["rows"])
    per_seed = [g.reset_index(drop=True).iloc[:n] for _, g in ours.groupby("seed", sort=True)]
    metrics = [c for c in PAPER_TO_OURS.values() if c in ours]
    mean = sum(g[metrics] for g in per_seed) / len(per_seed)
    rows = []
    for i, row in enumerate(table["rows"]):
        method = row["method"].replace(" (Ours)", "")
        if row.get("lata_variant"):
            method += f" ({VARIANTS[row['lata_variant']]})"
        run = per_seed[0].loc[i]
        out = {"tasks": row["tasks"], "method": method, "λ": "/".join(f"{v:g}" for v in row["lambda"].values()),
               "p (ours)": run["p"], "k (ours)": run["k"]}
        for paper_col, col in PAPER_TO_OURS.items():
            if row.get(paper_col) is None and (col not in mean or pd.isna(mean.loc[i, col])):
                continue
            out[f"{col} paper"] = row.get(paper_col)
            out[f"{col} ours"] = mean.loc[i, col] if col in mean else None
        rows.append(out)
    return pd.DataFrame(rows)


def table_notes(table: dict) -> list[str]:
    """The transcription's doubts about a table's rows (OCR, copy errors), for a footnote."""
    notes = []
    for row in table["rows"]:
        for key in ("doubt", "note"):
            if row.get(key):
                notes.append(f"{row['tasks']}, {row['method']}: {row[key]}")
        if row.get("gibberish"):
            notes.append(f"{row['tasks']}, {row['method']}: the paper marks this model's output as gibberish (no scores).")
    return notes


# Each table's headline claim (ids of reprolib/papers/published/lata.yaml) and how it is tested.
TABLE_CLAIMS = {
    "table3": "table3_best_utility", "table4": "table4_lata_alone_best", "table5": "tables5_6_robust",
    "table6": "tables5_6_robust", "table7": "table7_llama", "table8": "dare_p03_best_gemma",
    "table9": "dare_p03_best_gemma", "table10": "ties_k07_best_gemma", "table11": "ties_k07_best_gemma",
    "table12": "dareties_best_gemma", "table13": "dare_p03_best_llama", "table14": "ties_k07_best_llama",
    "table15": "dareties_best_llama",
}


def table_runs(tables: dict, table_id: str, seeds, sigma: float = 0.95) -> list[Run]:
    """The runs that reproduce one table for every seed (seed-major, each seed in the table's
    order); Table 4 also gets the LATA-alone runs of its setting (Table 3's) that its claim needs."""
    runs = [r for s in seeds for r in paper_table_runs(tables[table_id], sigma, seed=s)]
    if table_id == "table4":
        alone = [r for r in tables["table3"]["rows"] if r["method"] == "LATA (Ours)"]
        runs += [run_from_row(r, sigma, s) for s in seeds for r in alone]
    return runs


def table_verdict(table_id: str, scores):
    """The verdict on the claim the paper makes about ``table_id``, from our scores of its runs."""
    from reprolib import claims

    claim = TABLE_CLAIMS[table_id]
    if table_id in ("table3", "table5", "table6", "table7"):
        return claims.lata_beats_baselines(scores, claim=claim)
    if table_id == "table4":
        return claims.lata_alone_best(scores, claim=claim)
    if claim.startswith("dare_p03"):
        return claims.setting_is_best(scores, "p", 0.3, claim)
    if claim.startswith("ties_k07"):
        return claims.setting_is_best(scores, "k", 0.7, claim, metric="ppl")
    return claims.setting_is_best(scores, "p", 0.1, claim)      # DARE+TIES (p, k) = (0.1, 0.9)


# ----------------------------------------------------------------------------- Fig. 4: forgetting


def forgetting_methods(sigma: float, lam_lata: float, lam_ta: float, sa_lambda: float, sa_density: float,
                       dare_p: float = 0.3) -> dict:
    """Method label -> (registry method, params, per-model params) removing the UA vector from a
    language target (None: the target itself). TA and DARE negation subtract λ·τ_UA (DARE-masked)
    from every tensor; Safety Arithmetic its top ``sa_density`` entries; LATA the pure vector of the
    blocks only (its τ = {τ^1..τ^L} leaves the embeddings and final norm to the target)."""
    return {
        "original": None,
        f"TA negation (λ={lam_ta:g})": ("safety_arithmetic", {"lambda": lam_ta}, [{"density": 1.0}]),
        f"DARE negation (λ={lam_ta:g}, p={dare_p:g})": ("dare_linear", {"drop_rate": dare_p}, [{"weight": -lam_ta}]),
        f"Safety Arithmetic (λ={sa_lambda:g}, top {sa_density:.0%})": ("safety_arithmetic", {"lambda": sa_lambda}, [{"density": sa_density}]),
        f"LATA threshold (σ={sigma:g}, λ={lam_lata:g})": ("lata", {"scheme": "threshold", "sigma": sigma}, [{"weight": -lam_lata}]),
    }


def forgetting(scorer: Scorer, languages, methods: dict, seed: int = 0, progress: bool = True):
    """Harm (1–5, translated prompts, translated judge markers) and perplexity on in-language text
    of each language target before and after removing the UA vector (training seed ``seed``)."""
    import pandas as pd

    from reprolib.zoo.report import language_scores

    ua = seeded("ua", seed)
    rows = []
    jobs = [(lang, label) for lang in languages for label in methods]
    for lang, label in tqdm(jobs, desc="forgetting", disable=not progress):
        spec = methods[label]
        roles = [lang] if spec is None else [lang, "base", "instruct", ua]
        key = {"kind": "forgetting", "language": lang, "method": None if spec is None else resolved(*spec), "seed": seed,
               "models": {r: scorer.models.fingerprint(r) for r in roles}}

        make_sd = ((lambda: scorer.models.state_dict(lang)) if spec is None else
                   (lambda: scorer.merged(*spec, [ua], seed, target=lang)))
        s = scorer.score_weights(key, make_sd, lambda m, t, sets: language_scores(m, t, sets, lang))
        rows.append({"language": lang, "method": label, "seed": seed, "harm": s["harm_score"], "ppl": s["ppl"]})
    return pd.DataFrame(rows)


def retained_fraction(layers, sigma: float) -> dict[str, float]:
    """Share of blocks whose cosine is below σ (kept by Drop-with-Threshold), per expert and seed."""
    return (layers.assign(kept=layers["cosine"] < sigma).groupby(["expert", "seed"])["kept"].mean()).to_dict()


def set_threads(n: int = 2) -> None:
    torch.set_num_threads(n)
