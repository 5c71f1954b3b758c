"""τJp (seed 004, "Mastering Task Arithmetic: τJp as a Key Indicator for Weight Disentanglement"):
the τ-Jacobian product, the linearised model and its regulariser, in plain ``torch.func``.

Everything is a Jacobian-vector product (forward-mode AD over ``functional_call``): the Jacobian
∇θ f(x; θ0) is never materialised, so memory stays a small multiple of one forward pass.

- :func:`jvp` — f(x; θ0) and τ·∇θ f(x; θ0), the change of the outputs along the direction τ.
- :func:`taujp` — Eq. 9: ½ (‖τ_A·∇θ f(x_B; θ0)‖² + ‖τ_B·∇θ f(x_A; θ0)‖²). The squared norm is over
  every output entry of an example; the paper does not say how examples are combined, and we take
  the **mean over the batch** (``reduction="mean"``; ``"sum"`` is available), so the value does not
  grow with the batch size.
- :class:`LinearizedModel` — f_lin(x; θ) = f(x; θ0) + (θ − θ0)·∇θ f(x; θ0) (Eq. 3 / 5), trainable θ.
- :func:`penalty` — Eq. 10's regulariser Σ_t ‖(θ − θ0)·∇θ f_lin(x_t; θ0)‖² over other tasks' inputs
  (no labels), and :func:`cyclical_tasks` — Eq. 11's schedule, one other task per step, i mod |T_orth|.
- :func:`disentanglement_grid` / :func:`disentanglement_error` — Eq. 2 with dist = 1(ŷ1 ≠ ŷ2)
  (classification), over an (α_A, α_B) grid.

CPU by default; every function runs on the device its tensors are on.
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.func import jvp as _jvp

Params = Mapping[str, Tensor]


def _outputs(out) -> Tensor:
    """A model's output as one tensor (an HF output's ``logits``)."""
    return out.logits if hasattr(out, "logits") else out


def params_of(model: nn.Module) -> dict[str, Tensor]:
    """The model's parameters, detached (θ0 for the functions here)."""
    return {k: v.detach() for k, v in model.named_parameters()}


def _check_tangent(params0: Params, tangent: Params, name: str) -> dict[str, Tensor]:
    missing = [k for k in params0 if k not in tangent]
    extra = [k for k in tangent if k not in params0]
    if missing or extra:
        raise ValueError(f"{name}: tensors do not match the model's parameters (missing {missing[:3]}, unknown {extra[:3]})")
    bad = [k for k in params0 if tangent[k].shape != params0[k].shape]
    if bad:
        raise ValueError(f"{name}: tensor {bad[0]!r} has shape {tuple(tangent[bad[0]].shape)}, "
                         f"the parameter {tuple(params0[bad[0]].shape)}")
    return {k: tangent[k].to(params0[k]) for k in params0}


def forward_ad_ready(model: nn.Module) -> nn.Module:
    """Switch a ``transformers`` model to eager attention: PyTorch's fused attention kernels (SDPA,
    flash) have no forward-mode derivative, eager attention computes the same softmax(QKᵀ/√d)V."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", "eager") != "eager":
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        else:
            config._attn_implementation = "eager"
    return model


def jvp(model: nn.Module, params0: Params, tangent: Params, inputs, name: str = "tangent") -> tuple[Tensor, Tensor]:
    """(f(x; θ0), τ·∇θ f(x; θ0)) for ``inputs`` x and direction ``tangent`` τ (same keys as θ0). A
    ``transformers`` model is switched to eager attention first (:func:`forward_ad_ready`)."""
    forward_ad_ready(model)
    tangent = _check_tangent(params0, tangent, name)
    keys = list(params0)

    def f(*values):
        return _outputs(functional_call(model, dict(zip(keys, values)), (inputs,)))

    return _jvp(f, tuple(params0[k] for k in keys), tuple(tangent[k] for k in keys))


def sq_norm(out: Tensor, reduction: str = "mean") -> Tensor:
    """‖out_i‖² per example i (every entry of it), averaged (``"mean"``) or summed over the batch."""
    per_example = out.reshape(out.shape[0], -1).pow(2).sum(-1)
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    raise ValueError(f"parameter 'reduction' must be 'mean' or 'sum', got {reduction!r}")


def taujp(model: nn.Module, params0: Params, tau_a: Params, tau_b: Params, x_a, x_b, reduction: str = "mean") -> float:
    """Eq. 9: ½ (‖τ_A·∇θ f(x_B; θ0)‖² + ‖τ_B·∇θ f(x_A; θ0)‖²); 0 when the two task vectors do not
    move each other's outputs (the weight-disentanglement condition, Eq. 8)."""
    with torch.no_grad():
        _, a_on_b = jvp(model, params0, tau_a, x_b, "tau_a")
        _, b_on_a = jvp(model, params0, tau_b, x_a, "tau_b")
        return float(0.5 * (sq_norm(a_on_b, reduction) + sq_norm(b_on_a, reduction)))


class LinearizedModel(nn.Module):
    """f_lin(x; θ) = f(x; θ0) + (θ − θ0)·∇θ f(x; θ0) (Eq. 3 / 5): the first-order Taylor expansion of
    ``model`` at its current weights θ0, trainable in θ (which starts at θ0; a parameter that was frozen
    in ``model``, e.g. a classification head, stays frozen). ``task_vector()`` is θ − θ0; the model
    the linearised task vector is added to is ``model`` at θ0."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        trainable = {k for k, p in model.named_parameters() if p.requires_grad}   # a frozen head stays frozen in θ
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.keys = [k for k, _ in model.named_parameters()]
        self.params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
        self.theta = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.clone(), requires_grad=k in trainable)
                                       for k, v in self.params0.items()})

    def task_vector(self) -> dict[str, Tensor]:
        return {k: self.theta[k.replace(".", "__")] - self.params0[k] for k in self.keys}

    def forward(self, inputs) -> Tensor:
        out, change = jvp(self.model, self.params0, self.task_vector(), inputs, "θ − θ0")
        return out + change


def penalty(lin: LinearizedModel, inputs_of_others: Sequence, batched: bool = False) -> Tensor:
    """Eq. 10's regulariser Σ_t ‖(θ − θ0)·∇θ f(x_t; θ0)‖² (mean over each batch's examples) over the
    other tasks' inputs; differentiable in θ. For a linearised model ∇θ f_lin(x; θ0) = ∇θ f(x; θ0).

    ``batched``: one JVP over every task's inputs at once (concatenated; each task's examples still
    averaged separately, so the value is the same sum up to float rounding) instead of one JVP per task:
    the same regulariser at a fraction of the cost when there are many tasks (the strict schedule)."""
    tau = lin.task_vector()
    if batched and len(inputs_of_others) > 1:
        sizes = [len(x) for x in inputs_of_others]
        _, change = jvp(lin.model, lin.params0, tau, torch.cat(list(inputs_of_others)), "θ − θ0")
        per_example = change.reshape(change.shape[0], -1).pow(2).sum(-1)
        return sum(part.mean() for part in per_example.split(sizes))
    total = torch.zeros((), device=next(iter(lin.params0.values())).device)
    for x in inputs_of_others:
        _, change = jvp(lin.model, lin.params0, tau, x, "θ − θ0")
        total = total + sq_norm(change, "mean")
    return total


def cyclical_tasks(task: int, n_tasks: int, steps: int) -> Iterator[int]:
    """Eq. 11: at step i the penalty reads only other task number i mod |T_orth|, so every other task is
    visited once per cycle of n_tasks − 1 steps."""
    others = [t for t in range(n_tasks) if t != task]
    if not others:
        raise ValueError(f"cyclical_tasks: task {task} has no other task among {n_tasks}")
    for i in range(steps):
        yield others[i % len(others)]


def disentanglement_grid(predict_a: Callable[[float, float], Tensor], predict_b: Callable[[float, float], Tensor],
                         alphas: Sequence[float]) -> list[dict]:
    """Eq. 2 over the (α_A, α_B) grid from ``predict_t(α_A, α_B)``, task t's predicted labels on its own
    inputs under θ0 + α_A τ_A + α_B τ_B: ξ = Σ_t E 1(ŷ_t(α_t alone) ≠ ŷ_t(both)). One record per
    (α_A, α_B): ``alpha_a``, ``alpha_b``, ``error`` (0 … 2)."""
    out = []
    with torch.no_grad():
        for a in alphas:
            alone_a = predict_a(a, 0.0)
            for b in alphas:
                error = ((alone_a != predict_a(a, b)).float().mean()
                         + (predict_b(0.0, b) != predict_b(a, b)).float().mean())
                out.append({"alpha_a": float(a), "alpha_b": float(b), "error": float(error)})
    return out


def disentanglement_error(predict: Callable[[dict, object], Tensor], params0: Params, tau_a: Params, tau_b: Params,
                          x_a, x_b, alphas: Sequence[float]) -> list[dict]:
    """Eq. 2 with dist = 1(ŷ1 ≠ ŷ2) (classification) for a model given as ``predict(params, x)`` (the
    predicted labels): :func:`disentanglement_grid` with θ = θ0 + α_A τ_A + α_B τ_B."""
    tau_a, tau_b = _check_tangent(params0, tau_a, "tau_a"), _check_tangent(params0, tau_b, "tau_b")

    def at(wa: float, wb: float) -> dict:
        return {k: params0[k] + wa * tau_a[k] + wb * tau_b[k] for k in params0}

    return disentanglement_grid(lambda a, b: predict(at(a, b), x_a), lambda a, b: predict(at(a, b), x_b), alphas)
