"""The scorer every chapter uses: merge any method, evaluate with the one evaluation suite, cache.

A merge takes task vectors ``θ_e − θ_from`` of the ``experts`` measured from the role
``vectors_from`` and puts the result into the role ``into``. A method with a target of its own
(LATA, Safety Arithmetic) merges into ``into`` directly; any other merges onto ``vectors_from`` and
is moved onto ``into`` by adding ``θ_into − θ_from`` (PTM: θ_G + ω·(θ_D − θ_pre) is
``vectors_from='base', into='general'``). The merge itself is ``reprolib.merge.merge_state_dicts``,
the engine's in-memory path (same validation, layer weights, thresholds and combine as
``reprolib merge``).

Every score is cached under the sha256 of: the resolved merge (method, every parameter with its
default, per-model parameters, merge-code version), the roles and their fingerprints, the seed,
the metrics and the evaluation settings. A cached result holds the scores, the per-item values (for
the claims' bootstrap) and the first prompt each metric rendered.
"""

from __future__ import annotations

from typing import Callable, Iterable

from tqdm.auto import tqdm

from reprolib.cache import ResultCache
from reprolib.evals.suite import evaluate

EVAL_VERSION = 2      # bump when a metric's definition or the result layout changes (invalidates the cache)


def sets_label(sets: dict) -> str:
    """The evaluation sets as a cache label: the sha256 of every item (prompt, answer, tests and the
    rest of its record; a text set's strings), so a changed item can never be served a stale score."""
    import hashlib

    text = "\n".join(f"{k}:{e!r}" for k in sorted(sets) for e in sets[k])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def resolved(method: str, params: dict, model_params: list[dict]) -> list:
    """A merge as a cache key: method, every parameter with its default filled in, and the merge
    code's version, so a changed default or method never serves a stale score."""
    from reprolib.merge.registry import MERGE_VERSION, get_method

    full, per_model = get_method(method).resolve(params, model_params, where=f"method '{method}'")
    return [method, full, per_model, MERGE_VERSION]


class Scorer:
    """Merges and scores on one model object (loaded once; each merge's weights are loaded into it)."""

    def __init__(self, models, sets: dict, cache: ResultCache, settings: dict, judge=None, reference: str = "instruct"):
        self.models, self.sets, self.cache, self.judge = models, sets, cache, judge
        self.lm_eval = getattr(models, "lm_eval", None) or {}
        self.settings = {**settings, "version": EVAL_VERSION, **({"lm_eval": self.lm_eval} if self.lm_eval else {})}
        self.reference = reference
        self.tok = models.tokenizer(reference)
        self._model = None
        self._sets_label = sets_label(sets)

    @property
    def model(self):
        if self._model is None:
            self._model = self.models.load(self.reference)
        return self._model

    def _load(self, sd: dict) -> None:
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"merged weights do not fit the model: missing {missing}, unexpected {unexpected}")
        if tied:
            self.model.tie_weights()

    # ------------------------------------------------------------------ merging

    def merged(self, method: str, experts: list[str], vectors_from: str, into: str | None = None,
               params: dict | None = None, model_params: list[dict] | None = None, seed: int = 0,
               base_role: str = "base") -> dict:
        """The merged state dict (see the module docstring for ``vectors_from`` / ``into``). A
        method that also needs the base (LATA's cosines) reads it from ``base_role``."""
        from reprolib.merge import merge_state_dicts
        from reprolib.merge.registry import get_method

        sd = self.models.state_dict
        m = get_method(method)
        into = into or vectors_from
        own_target = m.needs_target
        base = sd(base_role) if m.needs_instruct else sd(vectors_from)
        merged, _ = merge_state_dicts(method, [sd(r) for r in experts], base=base,
                                      target=sd(into) if own_target else None,
                                      instruct=sd(vectors_from) if m.needs_instruct else None,
                                      params=params or {}, model_params=model_params, seed=seed)
        if into != vectors_from and not own_target:
            moved, origin = sd(into), sd(vectors_from)
            merged = {k: v + (moved[k] - origin[k]) if v.is_floating_point() else v for k, v in merged.items()}
        return merged

    # ------------------------------------------------------------------ scoring

    def _label(self, sets: dict | None) -> str:
        """The key's name of the sets scored: the scorer's own (through lm-eval where the profile
        names tasks) or others, each by the hash of its items."""
        if sets is not None:
            return sets_label(sets)
        return f"lm_eval+{self._sets_label}" if self.lm_eval else self._sets_label

    def evaluate(self, key: dict, make_weights: Callable[[], dict], metrics: Iterable[str], sets: dict | None = None,
                 judge=None) -> dict:
        """Cached evaluation of the weights ``make_weights()`` under ``key`` (a JSON-able config to
        which the metrics, the evaluation settings and the hash of the sets' items are added).
        ``sets``/``judge`` override the scorer's (e.g. a translated set)."""
        from reprolib.evals.judge import judge_id

        metrics = sorted(metrics)
        config = {**key, "metrics": metrics,
                  "eval": {**self.settings, "sets": self._label(sets), "judge": judge_id(judge or self.judge),
                           "reference": self.models.fingerprint(self.reference)}}

        def compute():
            self._load(make_weights())
            return evaluate(self.model, self.tok, sets or self.sets, metrics, judge=judge or self.judge,
                            lm_eval=self.lm_eval if sets is None else None)

        return self.cache.get_or_compute(config, compute)

    def score_merge(self, method: str, experts: list[str], vectors_from: str, into: str | None = None,
                    params: dict | None = None, model_params: list[dict] | None = None, seed: int = 0,
                    metrics: Iterable[str] = ("ppl",), base_role: str = "base", **eval_kw) -> dict:
        """Merge, then evaluate (cached)."""
        from reprolib.merge.registry import get_method

        params, model_params = params or {}, model_params or [{} for _ in experts]
        roles = set(experts) | {vectors_from, into or vectors_from}
        if get_method(method).needs_instruct:
            roles.add(base_role)
        key = {"kind": "merge", "merge": resolved(method, params, model_params), "experts": list(experts),
               "vectors_from": vectors_from, "into": into or vectors_from, "base_role": base_role, "seed": seed,
               "models": {r: self.models.fingerprint(r) for r in sorted(roles)}}
        return self.evaluate(key, lambda: self.merged(method, experts, vectors_from, into, params, model_params, seed,
                                                      base_role), metrics, **eval_kw)

    def score_role(self, role: str, metrics: Iterable[str], **eval_kw) -> dict:
        """A checkpoint as it is (cached)."""
        key = {"kind": "model", "role": role, "model": self.models.fingerprint(role)}
        return self.evaluate(key, lambda: self.models.state_dict(role), metrics, **eval_kw)

    def grid(self, jobs: list[Callable[[], dict]], desc: str = "merging + scoring", progress: bool = True) -> list[dict]:
        """Run score jobs (zero-argument callables) with a progress bar."""
        return [job() for job in tqdm(jobs, desc=desc, disable=not progress)]
