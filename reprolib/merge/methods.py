"""Merge methods: one short pure function each, over float32 tensors of one shape.

Notation: θ_base the model task vectors start from, τ_i = θ_i − θ_base, w_i a per-model weight,
λ a global scale, ρ (``density``) the fraction of entries KEPT, p (``drop_rate``) the fraction
DROPPED. Functions are elementwise given their thresholds/masks, so the streaming engine can call
them on row blocks and get the same bits as on whole tensors.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch

from reprolib.merge.topk import magnitude_threshold

Tensor = torch.Tensor


def _weighted_sum(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Σ_i w_i t_i, products rounded before each addition, accumulated in order (one buffer; ~50×
    faster than a stacked reduction over dim 0 on CPU, and the same values)."""
    out = None
    for t, w in zip(tensors, weights):
        term = t * w
        out = term if out is None else out.add_(term)
    if out is None:
        raise ValueError("_weighted_sum: no tensors")
    return out


def _sum0(stacked: Tensor) -> Tensor:
    """``stacked.sum(dim=0)`` (booleans counted as float32), accumulated slice by slice: the same
    values as torch's reduction over dim 0, which on CPU is ~50× slower for a few large slices."""
    out = stacked[0].float() if stacked.dtype == torch.bool else stacked[0].clone()
    for part in stacked[1:]:
        out.add_(part)
    return out


# ----------------------------------------------------------------------------- linear family


def weighted_average(params: Sequence[Tensor], weights: Sequence[float], normalize: bool = True) -> Tensor:
    """Linear interpolation / model soup: Σ w_i θ_i / Σ w_i (Wortsman et al. 2022, "model soups").

    With θ_D, θ_G and weights (ω, 1 − ω) this is Merge to Learn's linear interpolation
    θ_pre + ω τ_D + (1 − ω) τ_G (PTM eq. 4).
    ``normalize=False`` returns the plain weighted sum.
    """
    out = _weighted_sum(params, weights)
    if normalize:
        total = float(sum(weights))
        if total == 0.0:
            raise ValueError("weighted_average: weights sum to zero")
        out = out / total
    return out


def task_arithmetic(base: Tensor, task_vectors: Sequence[Tensor], weights: Sequence[float], scale: float = 1.0) -> Tensor:
    """θ = θ_base + λ Σ_i w_i τ_i (task arithmetic, Ilharco et al. 2023 §2, with per-task weights)."""
    return base + scale * _weighted_sum(task_vectors, weights)


def wise_ft(theta_zero: Tensor, theta_ft: Tensor, alpha: float) -> Tensor:
    """WiSE-FT: θ = (1 − α) θ_0 + α θ_ft (Wortsman et al. 2022b); with θ_0 = θ_G and θ_ft = θ_CFT
    this is Merge to Learn's θ_G + ω τ_CFT (PTM eq. 5–6, α = ω)."""
    return (1.0 - alpha) * theta_zero + alpha * theta_ft


def ptm(general: Tensor, skill_vectors: Sequence[Tensor], omegas: Sequence[float]) -> Tensor:
    """Parallel-train-then-merge: θ = θ_G + Σ_d ω_d τ_d, τ_d = θ_D − θ_pre (PTM eq. 1–2; the
    multi-skill sum is described in the paper's text, not numbered)."""
    return general + _weighted_sum(skill_vectors, omegas)


def omega_heuristic(skill_size: float, general_size: float) -> float:
    """Merge to Learn's weight heuristic ω = |D| / |G| (PTM eq. 7).

    The paper's |D| and |G| are training steps at a fixed batch size (128), i.e. the ratio of
    example counts; pass both sizes in one unit.
    """
    if skill_size <= 0 or general_size <= 0:
        raise ValueError(f"omega_heuristic: sizes must be positive (|D|={skill_size}, |G|={general_size})")
    return skill_size / general_size


# ----------------------------------------------------------------------------- pruning and TIES


def magnitude_prune(x: Tensor, density: float, threshold: float | None = None) -> Tensor:
    """Keep entries with |x| ≥ the k-th largest |x|, k = int(ρ·numel); zero the rest.

    ``threshold`` may be supplied (whole-model top-k, or a streamed exact value). With ties at the
    threshold more than k entries survive (PEFT's ``topk`` keeps exactly k); on continuous values
    the two agree exactly.
    """
    if threshold is None:
        threshold = magnitude_threshold(x, density)
    if threshold == 0.0:
        return x
    return x * (x.abs() >= threshold)


def elect_sign_mask(trimmed: Tensor) -> Tensor:
    """TIES "elect sign" (Yadav et al. 2023, Alg. 1 step 2): γ = sgn(Σ_t τ̂_t) by total mass; γ = +1 where the sum is 0.

    ``trimmed`` is stacked on dim 0. Returns the mask of entries that agree with γ (zeros never agree).
    """
    elected = torch.where(_sum0(trimmed) >= 0, 1.0, -1.0)
    return trimmed.sign() == elected


def disjoint_mean(values: Tensor, agree: Tensor, weights: Sequence[float] | None = None,
                  divisor: str = "count") -> Tensor:
    """TIES "disjoint merge" (Alg. 1 step 3): Σ over models whose entry agrees with the elected sign, divided by

    ``"count"`` — the number of agreeing models (TIES paper, PEFT; the default);
    ``"weights"`` — Σ w_i over agreeing models (mergekit ``normalize: true``; where that sum is
    below 1e-8 in magnitude the entry is not divided, as mergekit does where it is exactly 0);
    ``"none"`` — no division (mergekit ``normalize: false``).
    """
    kept = _sum0(values * agree)
    if divisor == "none":
        return kept
    if divisor == "weights":
        w = torch.tensor(list(weights), dtype=values.dtype, device=values.device)
        total = _sum0(agree * w.view((-1,) + (1,) * (values.dim() - 1)))
        return kept / torch.where(total.abs() < 1e-8, torch.ones_like(total), total)
    return kept / torch.clamp(_sum0(agree), min=1.0)


def ties_vector(task_vectors: Sequence[Tensor], weights: Sequence[float], density: float,
                thresholds: Sequence[float] | None = None, divisor: str = "count",
                elect: str = "unweighted") -> Tensor:
    """TIES merged task vector τ_m (Yadav et al. 2023, Alg. 1): trim, elect sign, disjoint mean.

    Conventions (PEFT's, which the TIES paper's unweighted case reduces to): the sign is elected
    from the *unweighted* trimmed vectors; weights multiply the values in the disjoint mean's
    numerator; the divisor is the count of agreeing models (see :func:`disjoint_mean`).
    ``elect="weighted"`` elects from the weighted trimmed vectors w_i·τ̂_i instead, and an entry
    agrees when the sign of w_i·τ̂_i is the elected one (mergekit's ``consensus_method: sum``).
    """
    if elect not in ("unweighted", "weighted"):
        raise ValueError(f"parameter 'elect' = {elect!r} is not one of ['unweighted', 'weighted']")
    if thresholds is None:
        thresholds = [None] * len(task_vectors)
    trimmed = torch.stack([magnitude_prune(t, density, thr) for t, thr in zip(task_vectors, thresholds)])
    w = torch.tensor(list(weights), dtype=trimmed.dtype, device=trimmed.device)
    weighted = trimmed * w.view((-1,) + (1,) * (trimmed.dim() - 1))
    agree = elect_sign_mask(weighted if elect == "weighted" else trimmed)
    return disjoint_mean(weighted, agree, weights, divisor)


def ties(base: Tensor, task_vectors: Sequence[Tensor], weights: Sequence[float], density: float,
         scale: float = 1.0, thresholds: Sequence[float] | None = None, divisor: str = "count",
         elect: str = "unweighted") -> Tensor:
    """θ = θ_base + λ τ_m with τ_m from :func:`ties_vector` (TIES Alg. 1 step 4)."""
    return base + scale * ties_vector(task_vectors, weights, density, thresholds, divisor, elect)


# ----------------------------------------------------------------------------- DARE

DARE_BLOCK = 1 << 20  # mask entries drawn per generator; fixes the byte layout of every mask


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from (seed, keys...) via sha256: independent of iteration order and process."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def dare_mask(name: str, numel: int, keep: float, seed: int, start: int = 0, end: int | None = None,
              model: str | int = 0) -> Tensor:
    """Bernoulli(keep) mask for flat entries [start, end) of tensor ``name`` of model ``model``.

    Entries are drawn in fixed blocks of ``DARE_BLOCK``; block b uses a generator seeded with
    ``derive_seed(seed, model, name, b)``. The mask therefore depends only on (seed, model, tensor
    name, position): not on tensor order, block size of the reader or the number of threads.
    """
    end = numel if end is None else end
    parts = []
    for b in range(start // DARE_BLOCK, (max(end, 1) - 1) // DARE_BLOCK + 1):
        lo, hi = b * DARE_BLOCK, min((b + 1) * DARE_BLOCK, numel)
        g = torch.Generator().manual_seed(derive_seed(seed, model, name, b))
        block = torch.bernoulli(torch.full((hi - lo,), float(keep)), generator=g)
        parts.append(block[max(start, lo) - lo: min(end, hi) - lo])
    return torch.cat(parts) if parts else torch.empty(0)


def dare(task_vector: Tensor, drop_rate: float, mask: Tensor) -> Tensor:
    """DARE drop-and-rescale (Yu et al. 2024 §3): τ̃ = (m ⊙ τ) / (1 − p), m ~ Bernoulli(1 − p) given as ``mask``."""
    if drop_rate == 0.0:
        return task_vector
    return task_vector * mask.reshape(task_vector.shape).to(task_vector.device) / (1.0 - drop_rate)


# ----------------------------------------------------------------------------- safety arithmetic


def safety_arithmetic(target: Tensor, harm_vector: Tensor, scale: float, density: float = 1.0,
                      threshold: float | None = None) -> Tensor:
    """Safety Arithmetic's parameter-space step, harm direction removal (Hazra et al. 2024, §3).

    θ_safe = θ_target − λ · τ_H', with τ_H = θ_harmful − θ_base and τ_H' its top-ρ magnitude
    entries (ρ = ``density``; 1.0 keeps all, i.e. plain task-arithmetic negation). The LATA paper
    uses it as a baseline without restating the formula; its second step (in-context activation
    steering with strength α) acts on activations at inference and is not a weight merge.
    """
    return target - scale * magnitude_prune(harm_vector, density, threshold)




# ----------------------------------------------------------------------------- LATA


def lata_ranks(cosines: dict[str, float]) -> dict[str, int]:
    """LATA ranks r_i ∈ 1..L (§3 Step 3): the layer MOST similar to the instruction vector gets
    rank 1, the least similar rank L. Equal cosines are ranked by layer order (earlier → lower rank)."""
    order = sorted(cosines, key=lambda layer: -cosines[layer])  # stable: ties keep layer order
    return {layer: i + 1 for i, layer in enumerate(order)}


def lata_layer_weights(cosines: dict[str, float], scheme: str, sigma: float = 0.95) -> dict[str, float]:
    """Per-layer weights of LATA's pure vector from cos(τ_comp^i, τ_instr^i) (eq. 6).

    ``linear`` — Linear-Drop-by-Rank, w_i = r_i / L (eq. 8);
    ``log`` — Logarithmic-Drop-by-Rank, w_i = log_L(r_i) (eq. 9; the most similar layer gets 0);
    ``threshold`` — Drop-with-Threshold, w_i = 0 if cos ≥ σ else 1 (eq. 10).
    ``cosines`` holds the layers that are ranked (L = len(cosines)).
    """
    if scheme == "threshold":
        return {layer: 0.0 if c >= sigma else 1.0 for layer, c in cosines.items()}
    ranks = lata_ranks(cosines)
    L = len(ranks)
    if scheme == "linear":
        return {layer: r / L for layer, r in ranks.items()}
    if scheme == "log":
        if L == 1:
            return {layer: 1.0 for layer in ranks}
        return {layer: math.log(r) / math.log(L) for layer, r in ranks.items()}
    raise ValueError(f"parameter 'scheme' = {scheme!r} is not one of ['linear', 'log', 'threshold']")


def lata_pure_vector(tau: Tensor, layer_weight: float) -> Tensor:
    """τ'^i = w_i τ^i with τ = θ_ft − θ_pre (LATA eq. 7–10) for the tensors of layer i."""
    return tau * layer_weight


# ----------------------------------------------------------------------------- M³


def m3_beta_lambda(alpha: float, seed: int) -> float:
    """λ ~ Beta(α, α) (M³ eq. 3), drawn from a generator seeded by ``derive_seed(seed, 'm3')``."""
    import numpy as np

    if not alpha > 0:
        raise ValueError(f"parameter 'alpha' = {alpha!r} must be > 0")
    return float(np.random.default_rng(derive_seed(seed, "m3")).beta(alpha, alpha))


def m3_dirichlet_lambdas(alpha: float, n: int, seed: int) -> list[float]:
    """λ ~ Dirichlet(α, …, α): the n-model extension of eq. 3 that the M³ paper mentions (§3.3)
    but replaces by the p-series; offered for completeness, not used by the paper."""
    import numpy as np

    return [float(x) for x in np.random.default_rng(derive_seed(seed, "m3")).dirichlet([alpha] * n)]


def pseries_lambdas(n: int, p: float) -> list[float]:
    """λ_k = k^(−p) / Σ_j j^(−p), k = 1..n, models sorted by task dominance (M³ eq. 4)."""
    raw = [k ** (-p) for k in range(1, n + 1)]
    total = sum(raw)
    return [r / total for r in raw]


def m3_merge(base: Tensor, task_vectors: Sequence[Tensor], lambdas: Sequence[float], scale: float = 1.0) -> Tensor:
    """θ_M = θ_pre + s Σ_k λ_k δ_k with Σ λ_k = 1 (M³ eq. 2; eq. 3 for two models)."""
    return base + scale * _weighted_sum(task_vectors, lambdas)


def m3_ties(base: Tensor, task_vectors: Sequence[Tensor], lambdas: Sequence[float], scale: float = 1.0,
            thresholds: Sequence[float] | None = None, density: float = 1.0) -> Tensor:
    """TIES with M³'s disjoint merge (M³ App. H, Fig. 6): trim and elect signs as TIES does; where
    both vectors keep an entry it becomes λ τ_1 + (1 − λ) τ_2, where only one does it keeps that
    value ("we preserve their original values"). For n models: Σ_{k agrees} λ_k τ_k / Σ_{k agrees} λ_k,
    and the plain mean of the agreeing entries where their λ sum to 0 (so an entry kept by one model
    is its value whatever λ is). The result is scaled by s (TIES's scaling term)."""
    if thresholds is None:
        thresholds = [None] * len(task_vectors)
    trimmed = torch.stack([magnitude_prune(t, density, thr) for t, thr in zip(task_vectors, thresholds)])
    agree = elect_sign_mask(trimmed)
    lam = torch.tensor(list(lambdas), dtype=trimmed.dtype, device=trimmed.device).view((-1,) + (1,) * (trimmed.dim() - 1))
    lam_total = _sum0(agree * lam)
    interpolated = _sum0(trimmed * agree * lam) / torch.where(lam_total > 0, lam_total, torch.ones_like(lam_total))
    mean = disjoint_mean(trimmed, agree)
    return base + scale * torch.where(lam_total > 0, interpolated, mean)
