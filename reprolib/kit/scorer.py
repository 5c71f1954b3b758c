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

import uuid
from collections import OrderedDict
from typing import Callable, Iterable

from reprolib.cache import ResultCache
from reprolib.evals.suite import evaluate
from reprolib.kit.executors import run_jobs

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


_LIVE: dict[str, "Scorer"] = {}   # scorers of this process by token: unpickled copies (Ray tasks) share their state


class Scorer:
    """Merges and scores on one model object (loaded once). A merge is written into the model's
    parameters in place from a :class:`~reprolib.merge.PreparedMerge` kept per (method, roles):
    the roles' task vectors are computed once and a grid over a method's parameters (λ, ω, ρ, α, ...)
    only re-runs the method. ``executor`` ('local' or 'ray') is how :meth:`grid` runs its jobs."""

    PREPARED_KEEP = 2     # prepared merges kept (each holds float32 task vectors of its experts)

    def __init__(self, models, sets: dict, cache: ResultCache, settings: dict, judge=None, reference: str = "instruct",
                 executor: str = "local"):
        self.models, self.sets, self.cache, self.judge = models, sets, cache, judge
        self.executor = executor
        self._prepared: OrderedDict = OrderedDict()
        self._token = uuid.uuid4().hex
        self.lm_eval = getattr(models, "lm_eval", None) or {}
        self.settings = {**settings, "version": EVAL_VERSION, **({"lm_eval": self.lm_eval} if self.lm_eval else {})}
        from reprolib.models import eval_device

        if eval_device() != "cpu":    # GPU scores differ in the last bits: their own cache entries
            self.settings["device"] = "cuda"
        self.reference = reference
        self.tok = models.tokenizer(reference)
        self._model = None
        self._sets_label = sets_label(sets)

    def __getstate__(self) -> dict:
        """Pickled for a Ray task: without the loaded model and prepared merges (rebuilt in the worker)."""
        return {**self.__dict__, "_model": None, "_prepared": OrderedDict()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        live = _LIVE.setdefault(self._token, self)
        if live is not self:    # a later task in the same worker process: reuse its loaded model and merges
            self.models, self._model, self._prepared = live.models, live._model, live._prepared

    @property
    def model(self):
        if self._model is None:
            from reprolib.models import eval_device

            self._model = self.models.load(self.reference, eval_device())
        return self._model

    def _load(self, sd: dict) -> None:
        self._fit(*self.model.load_state_dict(sd, strict=False))

    def _fit(self, missing, unexpected) -> None:
        """After weights were written into the model: none may be missing (but a tied head) or
        unexpected; a tied head is re-tied."""
        tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"merged weights do not fit the model: missing {sorted(missing)}, "
                               f"unexpected {sorted(unexpected)}")
        if tied:
            self.model.tie_weights()

    # ------------------------------------------------------------------ merging

    def prepared(self, method: str, experts: list[str], vectors_from: str, into: str | None = None,
                 base_role: str = "base"):
        """(PreparedMerge, offset) for these roles, built once and kept (the last ``PREPARED_KEEP``).
        ``offset`` is θ_into − θ_from for a method without a target of its own, else None."""
        from reprolib.merge import PreparedMerge
        from reprolib.merge.registry import get_method

        into = into or vectors_from
        key = (method, tuple(experts), vectors_from, into, base_role)
        if key in self._prepared:
            self._prepared.move_to_end(key)
            return self._prepared[key]
        sd = self.models.state_dict
        m = get_method(method)
        base = sd(base_role) if m.needs_instruct else sd(vectors_from)
        prepared = PreparedMerge(method, [sd(r) for r in experts], base=base,
                                 target=sd(into) if m.needs_target else None,
                                 instruct=sd(vectors_from) if m.needs_instruct else None)
        offset = None
        if into != vectors_from and not m.needs_target:
            moved, origin = sd(into), sd(vectors_from)
            offset = {k: moved[k] - origin[k] for k, v in origin.items() if v.is_floating_point()}
        self._prepared[key] = (prepared, offset)
        while len(self._prepared) > self.PREPARED_KEEP:
            self._prepared.popitem(last=False)
        return self._prepared[key]

    def merged(self, method: str, experts: list[str], vectors_from: str, into: str | None = None,
               params: dict | None = None, model_params: list[dict] | None = None, seed: int = 0,
               base_role: str = "base", out: dict | None = None) -> dict:
        """The merged state dict (see the module docstring for ``vectors_from`` / ``into``). A
        method that also needs the base (LATA's cosines) reads it from ``base_role``. With ``out``
        (a model's state dict) the weights are written into those tensors in place."""
        prepared, offset = self.prepared(method, experts, vectors_from, into, base_role)
        merged, _ = prepared.merge(params or {}, model_params, seed, offset=offset, out=out)
        return merged

    def _merge_into_model(self, *args) -> None:
        """Write a merge into the scorer's model in place (no state dict built, nothing re-read)."""
        targets = self.model.state_dict()
        merged = self.merged(*args, out=targets)
        self._fit(set(targets) - set(merged), set(merged) - set(targets))

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
            weights = make_weights()
            if weights is not None:     # None: make_weights wrote them into the model itself
                self._load(weights)
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
        return self.evaluate(key, lambda: self._merge_into_model(method, experts, vectors_from, into, params,
                                                                 model_params, seed, base_role), metrics, **eval_kw)

    def score_role(self, role: str, metrics: Iterable[str], **eval_kw) -> dict:
        """A checkpoint as it is (cached)."""
        key = {"kind": "model", "role": role, "model": self.models.fingerprint(role)}
        return self.evaluate(key, lambda: self.models.state_dict(role), metrics, **eval_kw)

    def grid(self, jobs: list[Callable[[], dict]], desc: str = "merging + scoring", progress: bool = True,
             executor: str | None = None) -> list[dict]:
        """Run score jobs (zero-argument callables, e.g. ``functools.partial(scorer.score_merge, ...)``)
        in order here, or as one Ray task each (``executor='ray'``; see :mod:`reprolib.kit.executors`).
        Either way every result lands in the same cache and the results come back in job order."""
        return run_jobs(jobs, executor or self.executor, desc=desc, progress=progress)

    def sweep(self, method: str, experts: list[str], vectors_from: str, points: list[dict], into: str | None = None,
              metrics: Iterable[str] = ("ppl",), base_role: str = "base", desc: str | None = None,
              progress: bool = True, executor: str | None = None, **eval_kw) -> list[dict]:
        """Score one method over a grid of ``points`` (each a dict of ``params``, ``model_params``
        and/or ``seed``): the experts' task vectors are prepared once, each point is merged in place
        into the model, evaluated and cached."""
        import functools

        jobs = [functools.partial(self.score_merge, method, experts, vectors_from, into, p.get("params"),
                                  p.get("model_params"), p.get("seed", 0), metrics, base_role, **eval_kw)
                for p in points]
        return self.grid(jobs, desc or f"{method} sweep", progress, executor)
