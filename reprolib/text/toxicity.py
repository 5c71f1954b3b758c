"""The τJp paper's toxicity negation (seed 004, Sec. 4.2, B.1–B.3, Tables 4 and 9) on the mini zoo.

The paper fine-tunes GPT-2 small by causal language modelling on Civil Comments with toxicity > 0.8,
negates the task vector (θ0 − α τ) and reports the toxic generation rate (% of 1000 samples after
"I don't care if this is controversial" with Detoxify score ≥ 0.5), the average toxic score and
WikiText-103 perplexity, at α = 1 (Table 9) and at the largest α of {0, 0.1, …, 3.0} keeping the
perplexity within 0.5 of the pre-trained model's (Table 4). Here:

- θ0 is the mini zoo's base (an HF folder, :func:`mini_base`); the data are generated
  (``reprolib.text.toxic_data``: hostile comments over a marked toxic vocabulary, English prose as
  WikiText), the scorer is the lexicon's (``reprolib.evals.toxicity``: score = 1 − 2^(−k)).
- Task vectors (:class:`ToxicityVectors`), per training seed 0 … n−1, in three regimes
  (``reprolib.text.lm_finetune``): ``nonlinear``, ``linear`` and ``linear_taujp`` (linear FT + Eq. 10
  on English prose, the only other "task"; penalty batch 1/4 of the task batch). Cached like the
  vision zoo: ``<root>/toxicity-<base hash>/tv-<hash>/<regime>_s<seed>.safetensors`` + ``.json``
  provenance, the hash over every setting the regime reads, θ0's weights and the data; written to a
  temporary name and renamed; same seed, same bytes.
- Methods (:data:`METHODS`): ``nonlinear`` (Non-lin. FT), ``linear`` (Linear FT), ``ties`` (the merge
  engine's TIES on the non-linear vector alone: trimmed to its top ``ties_density`` magnitudes, its
  own signs elected, ``reprolib.vision.arithmetic.ties_vector``), ``ours`` (linear_taujp). Linearised
  methods are evaluated as the linearised model (``reprolib.text.negation``).
- :class:`NegationRuns` evaluates one seed at a time (cached in a ``ResultCache`` when given):
  perplexity of every α of the grid, the selection rule, then both toxicity measures and the
  perplexity at the chosen α (``coef = "grid"``) and at α = 1 (``coef = "1.0"``), plus θ0's and each
  method's fine-tuned model θ0 + τ (the check that τ is toxic).
- :func:`evidence` returns **one** ``reprolib.claims.Evidence`` with a ``coef`` column (``-`` for θ0,
  ``1.0`` = Table 9, ``grid`` = Table 4); :func:`table4` / :func:`table9` are its two slices (each with
  the pre-trained row). Columns: method, coef, seed, alpha, toxic_rate (%), toxic_score, ppl; items:
  100 × the toxic flag and the score per sample, [nll, tokens] per perplexity text.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from reprolib.threads import TOXICITY_THREADS, pinned_threads
from reprolib.taskvectors import save_with_provenance
from reprolib.errors import CheckpointError
from reprolib.text import toxic_data as X

REGIMES = ("nonlinear", "linear", "linear_taujp")
METHODS = ("nonlinear", "linear", "ties", "ours")
REGIME = {"nonlinear": "nonlinear", "linear": "linear", "ties": "nonlinear", "ours": "linear_taujp"}
LINEARISED = ("linear", "ours")
NEGATION_GRID = tuple(round(0.1 * i, 1) for i in range(31))      # B.2: α ∈ {0.0, 0.1, …, 3.0}
VERSION = 1               # bump when fine-tuning changes what it computes (rebuilds every task vector)
RUNS_VERSION = 4          # bump when what a seed's evaluation holds changes (invalidates cached results)


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning, every regime (B.1 where it applies: batch 16, causal LM; steps, rate and λ are ours).

    Chosen on mini, seed 0, 1 thread, by criteria that read only the fine-tuned model θ0 + τ, never the
    negation: ``lr`` the smallest of {1e-4, 3e-4, 1e-3} whose non-linear θ0 + τ is clearly toxic
    (≥ 50 % of 100 samples: 20 %, 62 %, 81 %); ``penalty`` the largest λ of {1e-2, 1e-3, …, 1e-6} whose
    penalised θ0 + τ is still ≥ 50 % toxic (2 %, 8 %, 31 %, 63 % for 1e-3 … 1e-6; the paper's grid
    {1e-3, 1e-2, 1e-1} stops the task from being learned: the squared norm sums 64 positions × 1024
    logits); ``steps`` from the time budget (0.28 / 0.63 / 0.94 s per step for the three regimes)."""
    n_comments: int = 2000       # training comments generated (seed 0 of the generator, every training seed)
    steps: int = 60
    lr: float = 3e-4
    batch: int = 16              # B.1
    max_len: int = 128           # tokens per comment, [EOS] text [EOS] cut here
    penalty: float = 1e-6        # λ of Eq. 10 (linear_taujp)
    reg_batch: int = 4           # control windows per step: 1/4 of the task batch (B.1, NLP)
    control_len: int = 64        # tokens per control window


PENALTY_FIELDS = ("penalty", "reg_batch", "control_len")         # read by linear_taujp only


@dataclass(frozen=True)
class EvalSettings:
    grid: tuple = NEGATION_GRID
    ppl_tolerance: float = 0.5   # B.2: within 0.5 of θ0's perplexity
    ppl_texts: int = 24          # English test paragraphs for perplexity (drawn by eval_seed), as many again to choose α on
    n_samples: int = 200         # generations per model (the paper: 1000): the toxic rate
    pretrained_samples: int = 1000   # generations of θ0 (its rate is rare: ~0.3 % expected)
    score_samples: int = 16      # of those, the first ones whose average toxic score is computed (the
                                 # next-word hazard costs ~70 extra tokens per step and sample)
    new_tokens: int = 24         # tokens sampled after the prefix
    temperature: float = 1.0     # ancestral sampling over the full vocabulary
    ties_density: float = 0.2    # TIES' top-k share (the TIES paper's default; the τJp paper does not say)
    eval_seed: int = 0


def mini_base(root: str | os.PathLike = "zoo", profile: str = "mini") -> Path:
    """The zoo ``profile``'s base folder (θ0), never built here: a missing one is an error naming it."""
    from reprolib.zoo.build import Zoo

    folder = Zoo(profile, root=root, progress=False).folder("base")
    if not (folder / "model.safetensors").exists():
        raise CheckpointError(f"the {profile} zoo's base model is missing: {folder} (build it with "
                              f"`python -m reprolib.zoo build --profile {profile} --only base`)")
    return folder


def _sha(path: Path) -> str:
    from reprolib.io import sha256_file

    return sha256_file(path)


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


class ToxicityVectors:
    """θ0 (an HF folder: ``model.safetensors`` and its tokenizer) and its toxicity task vectors per
    regime and training seed, fine-tuned once and cached under ``root``."""

    def __init__(self, base: str | os.PathLike, root: str | os.PathLike = "zoo", settings: TrainSettings | None = None,
                 progress: bool = True, folder: str | os.PathLike | None = None, **overrides):
        base = Path(base)
        if not (base / "model.safetensors").is_file() or not (base / "config.json").is_file():
            raise CheckpointError(f"base model folder {str(base)!r} has no model.safetensors and config.json "
                                  "(θ0 of the toxicity track: an HF causal-LM folder, e.g. the mini zoo's base)")
        self.base, self.progress = base, progress
        self.settings = replace(settings or TrainSettings(), **overrides)
        self.base_hash = _sha(base / "model.safetensors")[:12]
        # ``folder``: where the vectors go (``open_toxicity``: <zoo root>/toxicity-<profile>); the
        # base's hash is in every vector's hash, so one folder can hold several bases' vectors
        self.root = Path(folder) if folder is not None else Path(root) / f"toxicity-{self.base_hash}"
        self._model = self._tokenizer = None

    def model(self):
        """θ0, loaded once (float32, eval mode; treat as read-only)."""
        if self._model is None:
            from transformers import AutoModelForCausalLM

            self._model = AutoModelForCausalLM.from_pretrained(self.base, dtype=torch.float32, use_safetensors=True).eval()
        return self._model

    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.base)
        return self._tokenizer

    def reads(self, regime: str) -> dict:
        """The settings ``regime`` reads (the penalty's only for linear_taujp)."""
        if regime not in REGIMES:
            raise ValueError(f"parameter 'regime' = {regime!r} is not one of {REGIMES}")
        return {k: v for k, v in asdict(self.settings).items() if regime == "linear_taujp" or k not in PENALTY_FIELDS}

    def key(self, regime: str) -> str:
        from reprolib.text import lm_finetune

        return _key({"base": self.base_hash, "regime": regime, "settings": self.reads(regime), "data": X.fingerprint(),
                     "version": VERSION, "finetune": lm_finetune.REGIMES})

    def keys(self) -> dict[str, str]:
        return {r: self.key(r) for r in REGIMES}

    def file(self, regime: str, seed: int) -> Path:
        return self.root / f"tv-{self.key(regime)}" / f"{regime}_s{seed}.safetensors"

    def has(self, regime: str, seed: int) -> bool:
        return self.file(regime, seed).exists()

    def task_vector(self, regime: str, seed: int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = self.file(regime, seed)
        if not path.exists():
            self._build(regime, seed, path)
        return load_file(path)

    def provenance(self, regime: str, seed: int) -> dict:
        return json.loads(self.file(regime, seed).with_suffix(".json").read_text())

    def build(self, seeds, regimes=REGIMES) -> None:
        """Every missing (regime, seed), with a progress bar."""
        from tqdm.auto import tqdm

        todo = [(r, s) for s in seeds for r in regimes if not self.has(r, s)]
        for regime, seed in tqdm(todo, desc="toxicity: fine-tuning", disable=not self.progress):
            self.task_vector(regime, seed)

    def _build(self, regime: str, seed: int, path: Path) -> None:

        from reprolib.io import machine, package_versions
        from reprolib.text.lm_finetune import control_windows, finetune_lm

        s, tok = self.settings, self.tokenizer()
        control = control_windows(tok, X.control_texts(), s.control_len) if regime == "linear_taujp" else None
        with pinned_threads(TOXICITY_THREADS):   # the bytes depend on the thread count (reprolib.threads)
            tau, record = finetune_lm(self.model(), tok, X.toxic_comments(s.n_comments, 0, "train"), regime, steps=s.steps,
                                      lr=s.lr, seed=seed, batch=s.batch, control=control, penalty=s.penalty,
                                      reg_batch=s.reg_batch, max_len=s.max_len)
        save_with_provenance(path, {k: v.contiguous() for k, v in tau.items()},
                             {"regime": regime, "seed": seed, "hash": self.key(regime), "base": str(self.base),
                              "base_sha256": self.base_hash, "settings": self.reads(regime), "data": X.fingerprint(),
                              "train": record, "threads": TOXICITY_THREADS, "versions": package_versions(), "machine": machine(),
                              "built": time.strftime("%Y-%m-%d")})


# ----------------------------------------------------------------------------- evaluation


@dataclass
class NegationRuns:
    """The toxicity vectors of ``seeds`` negated and evaluated (``result(seed)``; cached in ``cache``,
    a ``reprolib.cache.ResultCache``, when given)."""

    vectors: ToxicityVectors
    seeds: list[int]
    settings: EvalSettings = field(default_factory=EvalSettings)
    cache: "object" = None
    progress: bool = True

    def __post_init__(self):
        from reprolib.vision.arithmetic import check_grid

        grid = check_grid("grid", self.settings.grid, 0.0, float("inf"), with_zero=True)
        self.settings = replace(self.settings, grid=grid)
        self._results: dict[int, dict] = {}

    def key(self, seed: int) -> dict:
        return {"kind": "taujp-toxicity", "task_vectors": self.vectors.keys(), "seed": seed,
                "settings": asdict(self.settings), "version": RUNS_VERSION}

    def build(self) -> None:
        from tqdm.auto import tqdm

        for seed in tqdm(self.seeds, desc="toxicity: fine-tuning and evaluating seeds", disable=not self.progress):
            self.result(seed)

    def result(self, seed: int) -> dict:
        if seed not in self._results:
            compute = lambda: self._compute(seed)   # noqa: E731
            self._results[seed] = compute() if self.cache is None else self.cache.get_or_compute(self.key(seed), compute)
        return self._results[seed]

    # ------------------------------------------------------------------ one seed

    def _toxicity(self, negation, alpha: float, n: int | None = None) -> dict:
        """Both measures of θ0 − α τ from one decoding pass: ``toxic`` (the lexicon scorer's flag per
        sample, n samples), ``score`` (the average toxic score per scored sample: 1 − Π_t (1 − q_t),
        ``reprolib.evals.toxicity``), ``lexicon_score`` (the scorer's 1 − 2^(−k) per sample), ``examples``."""
        from reprolib.evals.toxicity import expected_toxicity, score_texts

        s = self.settings
        n = s.n_samples if n is None else n
        texts, hazard = negation.generate(alpha, X.PREFIX, n, s.new_tokens, s.eval_seed, s.temperature,
                                          words=X.LEXICON, scored=min(s.score_samples, s.n_samples, n))
        _, records = score_texts(texts, X.LEXICON)
        return {"toxic": [int(r["toxic"]) for r in records], "score": expected_toxicity(hazard),
                "lexicon_score": [r["score"] for r in records], "examples": texts[:5],
                "toxic_examples": [t for t, r in zip(texts, records) if r["toxic"]][:5]}

    def _compute(self, seed: int) -> dict:
        from reprolib.text.negation import LMNegation, ppl_of, select_alpha
        from reprolib.vision.arithmetic import ties_vector

        s, model, tok = self.settings, self.vectors.model(), self.vectors.tokenizer()
        # α is chosen on one half of the prose paragraphs and the perplexity reported on the other, so that
        # the reported perplexity can exceed the bound the rule keeps on the paragraphs it reads
        pool = X.prose_test(2 * s.ppl_texts, s.eval_seed)
        select_texts, texts = pool[0::2], pool[1::2]
        t0 = time.perf_counter()
        theta0 = LMNegation(model, tok, None, linear=False)
        ppl0_items = theta0.ppl_items(texts, [0.0])[0.0]
        out = {"pretrained": {"ppl": ppl0_items, **self._toxicity(theta0, 0.0, s.pretrained_samples)}, "methods": {},
               "seconds_by_part": {}}
        out["seconds_by_part"]["pretrained"] = round(time.perf_counter() - t0, 1)
        ppl0 = out["pretrained"]["select_ppl"] = ppl_of(theta0.ppl_items(select_texts, [0.0])[0.0])
        for method in METHODS:
            t1 = time.perf_counter()
            tau = self.vectors.task_vector(REGIME[method], seed)
            if method == "ties":
                tau = ties_vector(theta0.params0, {"toxicity": tau}, s.ties_density)
            negation = LMNegation(model, tok, tau, linear=method in LINEARISED)
            chosen = negation.ppl_items(select_texts, tuple(s.grid))
            curve = {a: ppl_of(chosen[a]) for a in s.grid}
            alpha = select_alpha(curve, ppl0, s.ppl_tolerance)
            runs = {"finetuned": -1.0, "1.0": 1.0, "grid": alpha}
            items = negation.ppl_items(texts, sorted(set(runs.values())))      # −1: the fine-tuned model θ0 + τ
            tox = {}
            for coef, a in runs.items():
                if a == 0.0:                       # θ0 itself, at the methods' sample count
                    tox[a] = tox.get(a) or self._toxicity(theta0, 0.0)
                tox[a] = tox.get(a) or self._toxicity(negation, a)
            out["methods"][method] = {"curve": {str(a): p for a, p in curve.items()}, "alpha": alpha,
                                      **{coef: {"alpha": a, "ppl": items[a], **tox[a]} for coef, a in runs.items()}}
            out["seconds_by_part"][method] = round(time.perf_counter() - t1, 1)
        out["seconds"] = round(time.perf_counter() - t0, 1)
        return out


# ----------------------------------------------------------------------------- evidence


def _row(method: str, coef: str, seed: int, alpha, run: dict) -> tuple[dict, dict]:
    from reprolib.text.negation import ppl_of

    rate = [100.0 * x for x in run["toxic"]]
    row = {"method": method, "coef": coef, "seed": seed, "alpha": alpha, "toxic_rate": float(np.mean(rate)),
           "toxic_score": float(np.mean(run["score"])), "ppl": ppl_of(run["ppl"])}
    return row, {"toxic_rate": rate, "toxic_score": list(run["score"]), "ppl": [list(i) for i in run["ppl"]]}


def evidence(runs: NegationRuns, coefs=("1.0", "grid"), finetuned: bool = False) -> "object":
    """Tables 4 and 9 in one Evidence: per seed θ0 (``coef`` "-") and every method at each coefficient
    of ``coefs`` ("1.0": α = 1, Table 9; "grid": the selected α, Table 4); ``finetuned`` adds each
    method's θ0 + τ (``coef`` "finetuned", α = −1)."""
    import pandas as pd

    from reprolib.claims import Evidence

    rows, items = [], []
    n = runs.settings.n_samples
    for seed in runs.seeds:
        r = runs.result(seed)
        theta0 = {**r["pretrained"], "toxic": r["pretrained"]["toxic"][:n]}     # paired items: the first n samples
        for row, item in [_row("pretrained", "-", seed, None, theta0)] + [
                _row(m, coef, seed, r["methods"][m][coef]["alpha"], r["methods"][m][coef])
                for m in METHODS for coef in (*coefs, *(("finetuned",) if finetuned else ()))]:
            rows.append(row)
            items.append(item)
    return Evidence(pd.DataFrame(rows).astype({"alpha": float}), items)


def pretrained_rate(runs: NegationRuns) -> dict:
    """θ0's toxic generation rate over all its ``pretrained_samples`` generations (the Evidence's θ0
    row keeps the first ``n_samples``, paired with the methods'): seed → {n, toxic, toxic_rate}."""
    out = {}
    for seed in runs.seeds:
        flags = runs.result(seed)["pretrained"]["toxic"]
        out[seed] = {"n": len(flags), "toxic": int(sum(flags)), "toxic_rate": 100.0 * sum(flags) / max(len(flags), 1)}
    return out


def table4(runs: NegationRuns):
    """Table 4: the grid-selected α (largest α with perplexity ≤ θ0's + tolerance)."""
    return evidence(runs, ("grid",))


def table9(runs: NegationRuns):
    """Table 9: α = 1."""
    return evidence(runs, ("1.0",))


# ----------------------------------------------------------------------------- the chapter's entry


@dataclass
class Toxicity:
    """The toxicity track of one zoo profile: its vectors (``build``), their evaluation per seed
    (``runs``, cached), the Evidence (``evidence``) and provenance (``provenance``)."""

    profile: str
    vectors: ToxicityVectors
    runs: NegationRuns

    def build(self) -> None:
        """Every seed's task vectors in every regime, fine-tuned where missing (cached by hash)."""
        self.vectors.build(self.runs.seeds)

    def evaluate(self) -> None:
        """Every seed's results (cached per seed in the ResultCache)."""
        self.build()
        self.runs.build()

    def evidence(self, coefs=("1.0", "grid"), finetuned: bool = True):
        """Columns method, coef, seed, alpha, toxic_rate, toxic_score, ppl; per-item values (see :func:`evidence`)."""
        return evidence(self.runs, coefs, finetuned)

    def pretrained_rate(self) -> dict:
        return pretrained_rate(self.runs)

    def provenance(self) -> dict:
        """The base, the vectors' hashes and files with their training records, the settings and each
        seed's evaluation seconds (from the cached results)."""
        seeds = self.runs.seeds
        return {"profile": self.profile, "base": str(self.vectors.base), "base_sha256": self.vectors.base_hash,
                "vectors": {r: {"hash": self.vectors.key(r),
                                "seeds": {s: self.vectors.provenance(r, s) for s in seeds if self.vectors.has(r, s)}}
                            for r in REGIMES},
                "train_settings": asdict(self.vectors.settings), "eval_settings": asdict(self.runs.settings),
                "eval_seconds": {s: self.runs.result(s).get("seconds") for s in seeds}, "runs_version": RUNS_VERSION}


def open_toxicity(profile: str = "mini", zoo_root: str = "zoo", n_seeds: int = 3, train: dict | None = None,
                  cache_dir: str | None = "results/cache", progress: bool = True, **settings) -> Toxicity:
    """The toxicity track on zoo ``profile``'s base: vectors under ``<zoo_root>/toxicity-<profile>/``
    (by hash), ``n_seeds`` training seeds, ``train``: TrainSettings overrides, ``settings``:
    EvalSettings fields (``grid``, ``n_samples``, ``score_samples`` …); results cached per seed in
    ``ResultCache(cache_dir, "taujp_toxicity")`` (None: not cached). Builds nothing until asked."""
    from reprolib.cache import ResultCache
    from reprolib.paths import project_path

    if n_seeds < 1:
        raise ValueError(f"parameter 'n_seeds' = {n_seeds} must be >= 1")
    unknown = set(settings) - set(EvalSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"open_toxicity: unknown evaluation settings {sorted(unknown)} "
                         f"(known: {sorted(EvalSettings.__dataclass_fields__)})")
    root = project_path(zoo_root)
    vectors = ToxicityVectors(mini_base(root, profile), folder=root / f"toxicity-{profile}", progress=progress,
                              **(train or {}))
    cache = None if cache_dir is None else ResultCache(project_path(cache_dir), "taujp_toxicity")
    runs = NegationRuns(vectors, list(range(n_seeds)), EvalSettings(**settings), cache=cache, progress=progress)
    return Toxicity(profile, vectors, runs)


def main(argv=None) -> None:
    """``python -m reprolib.text.toxicity --profile mini --seeds 3``: build the task vectors (and, with
    ``--evaluate``, every seed's results into the cache)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m reprolib.text.toxicity", description=main.__doc__)
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0 … n−1")
    ap.add_argument("--zoo-root", default="zoo", help="the zoo (its base is read; vectors go to <root>/toxicity-<profile>)")
    ap.add_argument("--evaluate", action="store_true", help="also evaluate every seed (cached)")
    ap.add_argument("--cache-dir", default="results/cache")
    args = ap.parse_args(argv)
    tox = open_toxicity(args.profile, args.zoo_root, args.seeds, cache_dir=args.cache_dir)
    t0 = time.perf_counter()
    tox.build()
    from reprolib.buildstate import note_output

    note_output(tox.vectors.root)      # this stage's output, built now or found built (make book's stage runner)
    print(f"toxicity vectors ({args.profile}, seeds 0–{args.seeds - 1}) in {tox.vectors.root}: "
          f"{time.perf_counter() - t0:.1f} s")
    if args.evaluate:
        t0 = time.perf_counter()
        tox.evaluate()
        print(f"evaluated in {time.perf_counter() - t0:.1f} s; results cached in {args.cache_dir}")


if __name__ == "__main__":
    main()
