"""Task arithmetic on the vision zoo (seed 004, Sec. 3–4 and Appendix B.2): what θ0 + Σ_t α_t τ_t
predicts on each task, task addition and negation with the paper's coefficient selection, τJp and
cosine between task vectors, and weight-disentanglement maps.

:class:`Outputs` holds one regime's task vectors and the images of one split. A **linearised** regime
(``linear``, ``linear_taujp``) is evaluated as the paper evaluates it (Ortiz-Jimenez et al.'s
implementation): as the linearised model f_lin(x; θ0 + Σ α_t τ_t) = f(x; θ0) + Σ_t α_t τ_t·∇θ f(x; θ0),
whose outputs are linear in the coefficients, so each task vector's JVP on each set is computed
once and every grid point is a weighted sum. The **non-linear** regime is evaluated by running the
network at θ0 + Σ α_t τ_t. The JVPs also give τJp (Eq. 9) in every regime: ½ (E_{x_B}‖τ_A·∇θ f(x_B; θ0)‖²
+ E_{x_A}‖τ_B·∇θ f(x_A; θ0)‖²), f the backbone's features (see ``reprolib.vision.finetune``).

Coefficients are unified across tasks, as the paper's grid search (B.2): task addition picks the α
of {0, 0.05, …, 1} with the highest mean normalised accuracy on the validation split; negation picks,
per target task, the α of {0, 0.1, …, 3} with the lowest target accuracy that keeps ≥ 95 % of θ0's
control accuracy on the validation split. Normalised accuracy is a task's accuracy after the
arithmetic over its accuracy with its own task vector alone at α = 1 (the fine-tuned model), in %.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from reprolib import taujp as T

ADDITION_GRID = tuple(round(0.05 * i, 2) for i in range(21))     # α ∈ {0.0, 0.05, …, 1.0} (B.2)
NEGATION_GRID = tuple(round(0.1 * i, 1) for i in range(31))      # α ∈ {0.0, 0.1, …, 3.0} (B.2)
CONTROL_KEEP = 0.95                                               # negation keeps ≥ 95 % of θ0's control accuracy

Vectors = Mapping[str, Mapping[str, Tensor]]


def check_grid(name: str, grid: Sequence[float], low: float, high: float, with_zero: bool = False) -> tuple[float, ...]:
    """A coefficient grid as sorted floats within [low, high] (holding 0 if ``with_zero``: θ0 itself, the
    negation rule's fallback); an empty or out-of-range grid is an error naming it."""
    try:
        values = sorted(float(a) for a in grid)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} = {grid!r} must be a list of numbers") from None
    if not values or values[0] < low or values[-1] > high or (with_zero and 0.0 not in values):
        raise ValueError(f"parameter {name!r} = {list(grid)} must be a non-empty list of numbers in [{low:g}, {high:g}]"
                         + (" holding 0" if with_zero else ""))
    return tuple(values)


class Outputs:
    """Predictions of θ0 + Σ_t α_t τ_t on named sets (``sets``: name → (images, labels), each scored
    with ``heads[name]``), for the task vectors ``vectors`` (task → τ over the backbone)."""

    def __init__(self, backbone: nn.Module, heads: Mapping[str, nn.Module], vectors: Vectors,
                 sets: Mapping[str, tuple[Tensor, Tensor]], linear: bool):
        self.backbone, self.heads, self.linear = backbone.eval(), heads, linear
        self.params0 = T.params_of(backbone)
        for task, tau in vectors.items():
            T._check_tangent(self.params0, tau, f"task vector {task!r}")
        self.vectors, self.sets = dict(vectors), dict(sets)
        missing = [s for s in self.sets if s not in heads]
        if missing:
            raise ValueError(f"no head for the evaluation set(s) {missing} (heads: {', '.join(heads)})")
        self._features: dict[str, Tensor] = {}
        self._jvp: dict[tuple[str, str], Tensor] = {}
        self._merged: tuple = (None, None)

    # ------------------------------------------------------------------ raw outputs

    def features(self, name: str) -> Tensor:
        """f(x; θ0) on set ``name`` (the backbone's features)."""
        if name not in self._features:
            with torch.no_grad():
                self._features[name] = self.backbone(self.sets[name][0])
        return self._features[name]

    def jvp(self, name: str, task: str) -> Tensor:
        """τ_task·∇θ f(x; θ0) on set ``name``: the first-order change of its features along τ_task."""
        if (name, task) not in self._jvp:
            with torch.no_grad():
                _, change = T.jvp(self.backbone, self.params0, self.vectors[task], self.sets[name][0], f"task vector {task!r}")
            self._jvp[name, task] = change
        return self._jvp[name, task]

    def _params(self, coeffs: Mapping[str, float]) -> dict[str, Tensor]:
        key = tuple(sorted(coeffs.items()))
        if self._merged[0] != key:
            params = {k: v.clone() for k, v in self.params0.items()}
            for task, alpha in coeffs.items():
                if alpha:
                    for k, v in self.vectors[task].items():
                        params[k] += alpha * v
            self._merged = (key, params)
        return self._merged[1]

    def logits(self, name: str, coeffs: Mapping[str, float]) -> Tensor:
        """Set ``name``'s logits under θ0 + Σ_t coeffs[t] τ_t (linearised or not, as the regime is)."""
        unknown = [t for t in coeffs if t not in self.vectors]
        if unknown:
            raise ValueError(f"coefficients for unknown task vector(s) {unknown} (known: {', '.join(self.vectors)})")
        with torch.no_grad():
            if self.linear:
                feats = self.features(name).clone()
                for task, alpha in coeffs.items():
                    if alpha:
                        feats += alpha * self.jvp(name, task)
            else:
                feats = functional_call(self.backbone, self._params(coeffs), (self.sets[name][0],))
            return self.heads[name](feats)

    def predict(self, name: str, coeffs: Mapping[str, float]) -> Tensor:
        return self.logits(name, coeffs).argmax(-1)

    def correct(self, name: str, coeffs: Mapping[str, float]) -> np.ndarray:
        """Per test item, 1.0 if predicted right (the claims' bootstrap resamples these)."""
        return (self.predict(name, coeffs) == self.sets[name][1]).double().numpy()

    def accuracy(self, name: str, coeffs: Mapping[str, float]) -> float:
        """In %."""
        return 100.0 * float(self.correct(name, coeffs).mean())

    # ------------------------------------------------------------------ τJp

    def taujp(self, a: str, b: str) -> float:
        """Eq. 9 between task vectors ``a`` and ``b`` on sets ``a`` and ``b`` (mean over each set's examples)."""
        return 0.5 * float(T.sq_norm(self.jvp(b, a)) + T.sq_norm(self.jvp(a, b)))

    def own(self, task: str) -> float:
        """‖τ_t·∇θ f(x_t; θ0)‖² on the task's own set (the diagonal of Fig. 6)."""
        return float(T.sq_norm(self.jvp(task, task)))


# ----------------------------------------------------------------------------- between task vectors


def flat(tau: Mapping[str, Tensor]) -> Tensor:
    return torch.cat([tau[k].reshape(-1) for k in sorted(tau)])


def cosine(tau_a: Mapping[str, Tensor], tau_b: Mapping[str, Tensor]) -> float:
    """Cosine similarity of two task vectors, flattened over every parameter."""
    return float(torch.nn.functional.cosine_similarity(flat(tau_a).double(), flat(tau_b).double(), dim=0))


def pair_table(outputs: Outputs, tasks: Sequence[str]) -> list[dict]:
    """τJp and cosine for every pair of ``tasks`` (one record per unordered pair)."""
    return [{"a": a, "b": b, "taujp": outputs.taujp(a, b), "cosine": cosine(outputs.vectors[a], outputs.vectors[b])}
            for a, b in itertools.combinations(tasks, 2)]


def ties_vector(params0: Mapping[str, Tensor], vectors: Vectors, density: float) -> dict[str, Tensor]:
    """The TIES-merged task vector τ_m of ``vectors`` (Yadav et al.: keep each vector's top ``density`` of
    magnitudes over the whole vector, elect signs, disjoint mean; the engine's ``ties`` method at λ = 1 with
    ``topk_scope: model``), so that θ0 + λ τ_m is TIES at scale λ."""
    from reprolib.merge import merge_state_dicts

    experts = [{k: params0[k] + tau[k] for k in params0} for tau in vectors.values()]
    merged, _ = merge_state_dicts("ties", experts, base=dict(params0), params={"lambda": 1.0, "topk_scope": "model"},
                                  model_params=[{"density": density} for _ in experts])
    return {k: merged[k] - params0[k] for k in params0}


# ----------------------------------------------------------------------------- task addition and negation


def individual(outputs: Outputs, tasks: Sequence[str]) -> dict[str, float]:
    """Each task's accuracy (%) with its own task vector alone at α = 1: the fine-tuned model."""
    return {t: outputs.accuracy(t, {t: 1.0}) for t in tasks}


def addition_scores(outputs: Outputs, tasks: Sequence[str], alpha: float, single: Mapping[str, float],
                    vectors: Sequence[str] | None = None) -> dict:
    """Every task's accuracy (%) and normalised accuracy (% of ``single``) under θ0 + α Σ τ (``vectors``:
    the task vectors added, default ``tasks``)."""
    coeffs = {t: alpha for t in (vectors or tasks)}
    acc = {t: outputs.accuracy(t, coeffs) for t in tasks}
    norm = {t: 100.0 * acc[t] / max(single[t], 1e-9) for t in tasks}
    return {"alpha": alpha, "acc": acc, "norm": norm, "abs_mean": float(np.mean(list(acc.values()))),
            "norm_mean": float(np.mean(list(norm.values())))}


def select_addition(val: Outputs, tasks: Sequence[str], grid: Sequence[float] = ADDITION_GRID,
                    vectors: Sequence[str] | None = None, single: Mapping[str, float] | None = None) -> float:
    """The unified α with the highest mean normalised accuracy on the validation split (B.2; ties: the
    smaller α). ``single``: each task's validation accuracy with its own vector alone (default: from
    ``val``; a merged vector such as TIES' passes its ingredients')."""
    single = individual(val, tasks) if single is None else single
    scores = [(addition_scores(val, tasks, a, single, vectors)["norm_mean"], -a) for a in grid]
    return -max(scores)[1]


def select_negation(val: Outputs, target: str, control: str, grid: Sequence[float] = NEGATION_GRID) -> float | None:
    """The α of ``grid`` with the lowest target accuracy on the validation split among those keeping the
    control accuracy ≥ 95 % of θ0's (θ0 − α τ_target; ties: the smaller α). None when no α does."""
    floor = CONTROL_KEEP * val.accuracy(control, {})
    ok = [(val.accuracy(target, {target: -a}), a) for a in grid if val.accuracy(control, {target: -a}) >= floor]
    return min(ok)[1] if ok else None
