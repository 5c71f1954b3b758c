"""Registry: method name → pure functions + parameter schema + validation.

A method is described by
* ``params`` (global) and ``model_params`` (per model, e.g. ``weight``, ``density``) with ranges;
* ``vectors(block)`` — the task vectors it works on, e.g. τ_i, DARE-masked τ_i or LATA's pure
  vectors (computed per row block, so top-k thresholds can be streamed over exactly these);
* ``density(params, model_params)`` — the fraction kept by a magnitude trim, or None when the
  method does not trim;
* ``combine(block, vectors)`` — the merged parameters of the block.

Both the streaming engine (:mod:`reprolib.merge.engine`) and the in-memory path
(:func:`reprolib.merge.engine.merge_state_dicts`) drive methods only through this interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from reprolib.errors import ConfigError
from reprolib.merge import methods as M


@dataclass(frozen=True)
class Param:
    """One parameter: type, default and allowed range (``low``/``high`` inclusive unless open).

    ``omit_default``: :meth:`Method.resolve` leaves the parameter out while it has its default, so
    a parameter added later (whose default is the arithmetic from before it existed) changes no
    resolved parameter set, hence no results-cache key (:func:`reprolib.kit.scorer.resolved`).
    """

    name: str
    kind: type
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple | None = None
    omit_default: bool = False

    def validate(self, value: Any, where: str) -> Any:
        if value is None and self.default is None:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise ConfigError(f"{where}: parameter '{self.name}' = an integer of about "
                                  f"{int(value.bit_length() * math.log10(2)) + 1} digits is too large") from None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: parameter '{self.name}' must be true/false, got {value!r}")
            return value
        if not isinstance(value, self.kind) or isinstance(value, bool):
            raise ConfigError(f"{where}: parameter '{self.name}' must be {self.kind.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where}: parameter '{self.name}' = {value!r} is not one of {list(self.choices)}")
        if self.kind in (int, float):
            if self.kind is float and not math.isfinite(value):
                raise ConfigError(f"{where}: parameter '{self.name}' = {value!r} is not finite")
            lo_bad = self.low is not None and (value <= self.low if self.open_low else value < self.low)
            hi_bad = self.high is not None and (value >= self.high if self.open_high else value > self.high)
            if lo_bad or hi_bad:
                lo = "-inf" if self.low is None else f"{'(' if self.open_low else '['}{self.low}"
                hi = "inf" if self.high is None else f"{self.high}{')' if self.open_high else ']'}"
                raise ConfigError(f"{where}: parameter '{self.name}' = {value!r} is outside {lo}, {hi}")
        return value


@dataclass
class Block:
    """A row block of one tensor, with everything a method needs to merge it (all float32)."""

    name: str
    numel: int            # elements of the whole tensor
    start: int            # flat range of this block within the tensor
    end: int
    base: torch.Tensor | None
    target: torch.Tensor | None
    models: list[torch.Tensor]
    params: dict
    model_params: list[dict]
    seed: int = 0
    instruct: torch.Tensor | None = None          # LATA: θ_instruct
    layer_weights: list[float] | None = None       # LATA: weight of this tensor's layer, per model
    thresholds: list[float | None] = field(default_factory=list)
    extra: dict = field(default_factory=dict)      # method-level constants (e.g. M³'s λ)
    cached_task_vectors: list[torch.Tensor] | None = None   # τ_i computed once for a sweep (read-only)

    def task_vectors(self) -> list[torch.Tensor]:
        if self.cached_task_vectors is not None:
            return list(self.cached_task_vectors)
        return [m - self.base for m in self.models]

    def weights(self) -> list[float]:
        return [mp["weight"] for mp in self.model_params]

    def dare_masked(self, vectors: Sequence[torch.Tensor], drop_rate: float) -> list[torch.Tensor]:
        """DARE each vector with this block's masks; p = 0 returns them unchanged (no masks drawn)."""
        if drop_rate == 0.0:
            return list(vectors)
        keep = 1.0 - drop_rate
        return [
            M.dare(v, drop_rate, M.dare_mask(self.name, self.numel, keep, self.seed, self.start, self.end, model=i))
            for i, v in enumerate(vectors)
        ]


@dataclass(frozen=True)
class Method:
    name: str
    doc: str
    combine: Callable[[Block, list[torch.Tensor]], torch.Tensor]
    vectors: Callable[[Block], list[torch.Tensor]] = Block.task_vectors
    params: tuple[Param, ...] = ()
    model_params: tuple[Param, ...] = ()
    density: Callable[[dict, dict], float | None] | None = None
    min_models: int = 1
    max_models: int | None = None
    needs_base: bool = True
    needs_target: bool = False     # PTM / Safety Arithmetic add to a model other than the base
    needs_instruct: bool = False   # LATA
    random: bool = False
    setup: Callable[[dict, int, int], dict] | None = None   # (params, n_models, seed) -> Block.extra
    # LATA: (params, per-model {layer: cosine}) -> per-model {layer: weight}
    layer_weights: Callable[[dict, list[dict]], list[dict]] | None = None
    default_target: str = "base"   # the model merged vectors are added to when no target_model is given
    check: Callable[[dict, list[dict]], None] | None = None   # cross-parameter validation
    # (weights, scale) such that combine(b, task_vectors) == b.base + scale · Σ_i weights_i τ_i exactly
    # (methods._weighted_sum); a prepared merge then caches the sum across a sweep over the scale
    scaled_sum: Callable[[Block], tuple[list[float], float]] | None = None

    def resolve(self, params: dict, model_params: list[dict], where: str = "config") -> tuple[dict, list[dict]]:
        """Validate parameters, fill defaults; unknown names are errors."""
        known = {p.name: p for p in self.params}
        per_model = {p.name: p for p in self.model_params}
        out = {}
        for key in params:
            if key not in known and key not in per_model:
                raise ConfigError(f"{where}: method '{self.name}' has no parameter '{key}' (known: {sorted(known) + sorted(per_model)})")
        for p in self.params:
            value = p.validate(params.get(p.name, p.default), where)
            if not (p.omit_default and value == p.default):
                out[p.name] = value
        resolved_models = []
        for i, mp in enumerate(model_params):
            for key in mp:
                if key not in per_model:
                    raise ConfigError(f"{where}: models[{i}]: method '{self.name}' has no per-model parameter '{key}' (known: {sorted(per_model)})")
            r = {}
            for p in self.model_params:
                r[p.name] = p.validate(mp.get(p.name, params.get(p.name, p.default)), f"{where}: models[{i}]")
            resolved_models.append(r)
        n = len(resolved_models)
        if n < self.min_models or (self.max_models is not None and n > self.max_models):
            want = f"{self.min_models}" if self.max_models == self.min_models else f"{self.min_models}..{self.max_models or 'n'}"
            raise ConfigError(f"{where}: method '{self.name}' takes {want} models, got {n}")
        if self.check is not None:
            try:
                self.check(out, resolved_models)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
        return out, resolved_models


# Bump when any method's arithmetic or a parameter default changes: results caches key on it.
MERGE_VERSION = 1

REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown merge method '{name}' (known: {', '.join(sorted(REGISTRY))})") from None


# ----------------------------------------------------------------------------- common parameters

WEIGHT = Param("weight", float, 1.0, "per-model weight w_i")
DENSITY = Param("density", float, 1.0, "fraction of entries KEPT by the magnitude trim (TIES k)", low=0.0, high=1.0)
SCALE = Param("lambda", float, 1.0, "global scale λ of the merged task vector")
SCOPE = Param("topk_scope", str, "tensor",
              "'tensor': top-k within each tensor (mergekit/PEFT); 'model': over the whole task vector (TIES paper)",
              choices=("tensor", "model"))
DIVISOR = Param("divisor", str, "count", "disjoint-mean divisor: 'count' (TIES paper), 'weights' or 'none' (mergekit normalize "
                "true/false; a mergekit YAML without 'normalize' gets mergekit's default: weights for ties, none for dare_ties)",
                choices=("count", "weights", "none"))
ELECT = Param("elect", str, "unweighted",
              "TIES sign election from Σ of the 'unweighted' trimmed τ_i (TIES paper, PEFT) or of the 'weighted' "
              "w_i·τ_i (mergekit; a mergekit YAML's default)", choices=("unweighted", "weighted"), omit_default=True)
DROP = Param("drop_rate", float, 0.0, "DARE drop rate p (fraction DROPPED)", low=0.0, high=1.0, open_high=True)


def _per_model_density(params: dict, mp: dict) -> float:
    return mp["density"]


def _with_dare(block: Block) -> list[torch.Tensor]:
    return block.dare_masked(block.task_vectors(), block.params["drop_rate"])


# ----------------------------------------------------------------------------- linear family

def _check_linear(params: dict, model_params: list[dict]) -> None:
    if params["normalize"] and sum(mp["weight"] for mp in model_params) == 0:
        raise ConfigError("parameter 'weight': the models' weights sum to 0, so 'normalize' would divide by zero")


register(Method(
    "linear", M.weighted_average.__doc__,
    combine=lambda b, _: M.weighted_average(b.models, b.weights(), b.params["normalize"]),
    vectors=lambda b: [],
    params=(Param("normalize", bool, True, "divide by Σ w_i"),),
    model_params=(WEIGHT,), needs_base=False, check=_check_linear,
))

register(Method(
    "task_arithmetic", M.task_arithmetic.__doc__,
    combine=lambda b, vs: M.task_arithmetic(b.base, vs, b.weights(), b.params["lambda"]),
    params=(SCALE,), model_params=(WEIGHT,),
    scaled_sum=lambda b: (b.weights(), b.params["lambda"]),
))

register(Method(
    "wise_ft", M.wise_ft.__doc__,
    combine=lambda b, _: M.wise_ft(b.base, b.models[0], b.params["alpha"]),
    vectors=lambda b: [],
    params=(Param("alpha", float, 0.5, "mixing coefficient α (0 = θ_0, 1 = θ_ft)", low=0.0, high=1.0),),
    min_models=1, max_models=1,
))

register(Method(
    "ptm", M.ptm.__doc__,
    combine=lambda b, vs: M.ptm(b.target, vs, b.weights()),
    model_params=(Param("weight", float, 1.0, "ω_d, e.g. omega_heuristic(|D|, |G|)"),),
    needs_target=True,
))

register(Method(
    "safety_arithmetic", M.safety_arithmetic.__doc__,
    combine=lambda b, vs: M.safety_arithmetic(b.target, vs[0], b.params["lambda"], b.model_params[0]["density"], b.thresholds[0]),
    params=(SCALE, SCOPE), model_params=(DENSITY,),
    density=_per_model_density, min_models=1, max_models=1, needs_target=True,
))

# ----------------------------------------------------------------------------- sparsifying family

register(Method(
    "magnitude_prune",
    "θ = θ_base + λ Σ w_i trim_ρ(τ_i): magnitude pruning of each task vector, then task arithmetic (PEFT `magnitude_prune`).",
    combine=lambda b, vs: b.base + b.params["lambda"] * M._weighted_sum(
        [M.magnitude_prune(v, mp["density"], t) for v, mp, t in zip(vs, b.model_params, b.thresholds)], b.weights()),
    params=(SCALE, SCOPE), model_params=(WEIGHT, DENSITY), density=_per_model_density,
))


def _ties_combine(b: Block, vs: list[torch.Tensor], origin: torch.Tensor | None = None) -> torch.Tensor:
    """TIES over ``vs`` with the per-model trim thresholds the engine computed (per tensor or whole
    model), added to ``origin`` (default: the base)."""
    return M.ties(b.base if origin is None else origin, vs, b.weights(), density=1.0, scale=b.params["lambda"],
                  thresholds=b.thresholds, divisor=b.params["divisor"], elect=b.params.get("elect", "unweighted"))


register(Method(
    "ties", M.ties_vector.__doc__ + "\n\nθ = θ_base + λ τ_m (TIES Alg. 1).",
    combine=_ties_combine,
    params=(SCALE, SCOPE, DIVISOR, ELECT), model_params=(WEIGHT, DENSITY), density=_per_model_density, min_models=1,
))

register(Method(
    "dare_linear", M.dare.__doc__ + "\n\nθ = θ_base + λ Σ w_i DARE_p(τ_i).",
    combine=lambda b, vs: M.task_arithmetic(b.base, vs, b.weights(), b.params["lambda"]),
    vectors=_with_dare, params=(SCALE, DROP), model_params=(WEIGHT,), random=True,
))

register(Method(
    "dare_ties",
    "DARE, then TIES (Yu et al. 2024 §4): each τ_i is DARE-masked and rescaled with drop rate p, then "
    "trimmed to its top-k magnitudes (k = ``density``; 1.0 = no trim, PEFT's `dare_ties`), signs are "
    "elected and the disjoint mean is scaled by λ.",
    combine=_ties_combine, vectors=_with_dare,
    params=(SCALE, DROP, SCOPE, DIVISOR, ELECT), model_params=(WEIGHT, DENSITY), density=_per_model_density, random=True,
))


# ----------------------------------------------------------------------------- LATA

COMBINE = Param("combine", str, "ta", "how the vectors are merged: ta | ties | dare | dare_ties",
                choices=("ta", "ties", "dare", "dare_ties"))


def _trims(params: dict, mp: dict) -> float | None:
    return mp["density"] if params["combine"] in ("ties", "dare_ties") else None


def _check_combine(params: dict, model_params: list[dict]) -> None:
    """density only with a TIES combine, drop_rate only with a DARE one."""
    if params["combine"] not in ("ties", "dare_ties") and any(mp["density"] != 1.0 for mp in model_params):
        raise ConfigError(f"parameter 'density' needs combine: ties or dare_ties (combine is '{params['combine']}')")
    if params["combine"] not in ("dare", "dare_ties") and params["drop_rate"] != 0.0:
        raise ConfigError(f"parameter 'drop_rate' needs combine: dare or dare_ties (combine is '{params['combine']}')")


def _lata_weights(params: dict, cosines: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per model: LATA weights of the transformer blocks; non-block groups (embed, head, other)
    get weight 0 (``non_block: drop``, the default: LATA's task vector is τ = {τ^1, …, τ^L} over
    the L blocks, so the target keeps its own embeddings, final norm and head), 1 (``keep``) or
    are ranked like blocks (``rank``, L = blocks + non-block groups)."""
    from reprolib.vectors import is_block

    out = []
    for cos in cosines:
        if not any(is_block(k) for k in cos):
            raise ConfigError("LATA found no transformer blocks in the parameter names (groups: "
                              f"{', '.join(sorted(cos))}); see reprolib.vectors.layer_of for the recognised patterns")
        ranked = cos if params["non_block"] == "rank" else {k: v for k, v in cos.items() if is_block(k)}
        weights = M.lata_layer_weights(ranked, params["scheme"], params["sigma"])
        if params["flatten"]:   # the matched control: every ranked layer gets the scheme's mean weight
            mean = sum(weights.values()) / len(weights)
            weights = {layer: mean for layer in weights}
        fill = 0.0 if params["non_block"] == "drop" else 1.0
        out.append({layer: weights.get(layer, fill) for layer in cos})
    return out


def _lata_vectors(b: Block) -> list[torch.Tensor]:
    """Pure vectors (DARE'd when drop_rate > 0, which _check_combine allows only with a DARE combine)."""
    pure = [M.lata_pure_vector(m - b.instruct, w) for m, w in zip(b.models, b.layer_weights)]
    return b.dare_masked(pure, b.params["drop_rate"])


def _lata_combine(b: Block, vs: list[torch.Tensor]) -> torch.Tensor:
    """θ' = θ_target + λ Σ_i λ_i τ'_i (LATA eq. 11; eq. 12 with a negative weight), or TIES on τ'."""
    if b.params["combine"] in ("ties", "dare_ties"):
        return _ties_combine(b, vs, origin=b.target)
    return M.task_arithmetic(b.target, vs, b.weights(), b.params["lambda"])


register(Method(
    "lata",
    "Layer-Aware Task Arithmetic (LATA §3): τ_instr = θ_pre − θ_base (eq. 4), τ_comp = θ_ft − θ_base "
    "(eq. 5), per-block cos(τ_comp^i, τ_instr^i) (eq. 6) → weights by rank or threshold (eq. 8–10) "
    "applied to τ = θ_ft − θ_pre (eq. 7), merged into θ_target (eq. 11; default θ_pre) by TA, or by "
    "TIES/DARE/DARE+TIES on the pure vectors. Forgetting (eq. 12) is a negative per-model weight "
    "with target_model = the model to unlearn from.",
    combine=_lata_combine, vectors=_lata_vectors,
    params=(
        Param("scheme", str, "linear", "linear (eq. 8) | log (eq. 9) | threshold (eq. 10)", choices=("linear", "log", "threshold")),
        Param("sigma", float, 0.95, "Drop-with-Threshold σ: blocks with cos ≥ σ are dropped", low=-1.0, high=1.0),
        Param("flatten", bool, False, "matched control: give every block the mean of the scheme's block weights "
              "(same average weight, no layer awareness)"),
        Param("non_block", str, "drop", "embeddings, final norm, head: drop (weight 0; the paper's τ = {τ^1..τ^L}) | keep (1) | rank (as blocks)",
              choices=("keep", "drop", "rank")),
        COMBINE, SCALE, DROP, SCOPE, DIVISOR,
    ),
    model_params=(Param("weight", float, 1.0, "λ_i of pure vector i (negative to forget, eq. 12)"), DENSITY),
    density=_trims, needs_target=True, needs_instruct=True, default_target="instruct",
    layer_weights=_lata_weights, check=_check_combine,
))


# ----------------------------------------------------------------------------- M³


def _m3_setup(params: dict, n: int, seed: int) -> dict:
    direction = params["direction"]
    if params["interpolation"] is not None:
        if n != 2:
            raise ConfigError(f"parameter 'interpolation' fixes λ for two models, got {n} models")
        return {"lambdas": [params["interpolation"], 1.0 - params["interpolation"]]}
    if direction == "beta":
        if n != 2:
            raise ConfigError(f"parameter 'direction' = 'beta' needs two models (eq. 3), got {n}; use pseries or dirichlet")
        lam = M.m3_beta_lambda(params["alpha"], seed)
        return {"lambdas": [lam, 1.0 - lam]}
    if direction == "dirichlet":
        return {"lambdas": M.m3_dirichlet_lambdas(params["alpha"], n, seed)}
    return {"lambdas": M.pseries_lambdas(n, params["p"])}


def _m3_combine(b: Block, vs: list[torch.Tensor]) -> torch.Tensor:
    lambdas, s = b.extra["lambdas"], b.params["scale"]
    if b.params["combine"] in ("ties", "dare_ties"):
        return M.m3_ties(b.base, vs, lambdas, s, thresholds=b.thresholds)
    return M.m3_merge(b.base, vs, lambdas, s)


register(Method(
    "m3",
    "Mixup Model Merge (M³ §3): θ_M = θ_pre + s Σ_k λ_k δ_k, Σ λ_k = 1 (eq. 2); two models: "
    "λ ~ Beta(α, α) (eq. 3); n models: p-series λ_k ∝ k^−p in the models' order of dominance (eq. 4). "
    "combine: ta (eq. 2), dare (DARE on δ_k first), ties / dare_ties (App. H: the disjoint mean becomes "
    "the λ-interpolation of the agreeing entries). One λ draw per merge, from the merge's seed.",
    combine=_m3_combine, vectors=_with_dare,
    params=(
        Param("direction", str, "beta", "beta (2 models, eq. 3) | pseries (eq. 4) | dirichlet (extension)",
              choices=("beta", "pseries", "dirichlet")),
        Param("alpha", float, 0.5, "Beta(α, α) / Dirichlet concentration", low=0.0, open_low=True),
        Param("p", float, 1.0, "p-series exponent (0 = uniform)", low=0.0),
        Param("interpolation", float, None, "fix λ instead of sampling (two models)", low=0.0, high=1.0),
        Param("scale", float, 1.0, "magnitude s (eq. 2); s = n·t matches task arithmetic's scaling t", low=0.0, open_low=True),
        COMBINE, DROP, SCOPE,
    ),
    model_params=(DENSITY,), density=_trims, random=True, min_models=2,
    setup=_m3_setup, check=_check_combine,
))


def methods_markdown() -> str:
    """One Markdown table of every registered method's parameters (the book includes it)."""
    rows = ["| method | parameter | scope | type | default | allowed | meaning |", "|---|---|---|---|---|---|---|"]
    for name, m in sorted(REGISTRY.items()):
        for scope, params in (("global", m.params), ("per model", m.model_params)):
            for p in params:
                if p.choices:
                    allowed = " / ".join(map(str, p.choices))
                elif p.low is not None or p.high is not None:
                    lo = "−∞" if p.low is None else f"{'(' if p.open_low else '['}{p.low:g}"
                    hi = "∞" if p.high is None else f"{p.high:g}{')' if p.open_high else ']'}"
                    allowed = f"{lo}, {hi}"
                else:
                    allowed = "any"
                doc = p.doc.replace("|", "/")
                rows.append(f"| `{name}` | `{p.name}` | {scope} | {p.kind.__name__} | `{p.default!r}` | {allowed} | {doc} |")
    return "\n".join(rows)
