"""Fine-tuning a task on the vision zoo's θ0 in the paper's three regimes (seed 004, Sec. 4–5):

- ``nonlinear``: ordinary fine-tuning of the backbone (the head frozen);
- ``linear``: fine-tuning the linearised model f_lin(x; θ) = f(x; θ0) + (θ − θ0)·∇θ f(x; θ0) (Eq. 5);
- ``linear_taujp``: the same plus Eq. 10's penalty λ ‖(θ − θ0)·∇θ f(x_t; θ0)‖² on other tasks' inputs,
  one other task per step (Eq. 11, the cyclical form the paper's experiments use), on a batch of
  ``reg_batch`` of that task's images (the paper: 1/8 of the task batch for vision).

Each returns the task vector θ − θ0 over the backbone (the head is frozen and shared) and the loss
per step. Batches and the cycle are seeded: the same seed gives the same bytes.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from reprolib import taujp as T
from reprolib.vision.model import Classifier, TinyViT

REGIMES = ("nonlinear", "linear", "linear_taujp")


def finetune(backbone: TinyViT, head: nn.Linear, images: Tensor, labels: Tensor, regime: str, *, steps: int, lr: float,
             seed: int, batch: int = 32, others: list[Tensor] = (), penalty: float = 0.0,
             reg_batch: int = 4) -> tuple[dict[str, Tensor], list[float]]:
    """Fine-tune a copy of ``backbone`` on (images, labels) with ``head`` frozen; returns (τ, losses)."""
    if regime not in REGIMES:
        raise ValueError(f"parameter 'regime' = {regime!r} is not one of {REGIMES}")
    if regime == "linear_taujp" and (not others or penalty <= 0):
        raise ValueError("regime 'linear_taujp' needs the other tasks' images ('others') and a 'penalty' > 0")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Classifier(copy.deepcopy(backbone).train(), copy.deepcopy(head))
    theta0 = {k: v.detach().clone() for k, v in model.backbone.named_parameters()}
    net = model if regime == "nonlinear" else T.LinearizedModel(model)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    schedule = T.cyclical_tasks(len(others), len(others) + 1, steps) if regime == "linear_taujp" else None
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=generator)
        loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        if schedule is not None:
            other = others[next(schedule)]
            pick = torch.randint(0, len(other), (reg_batch,), generator=generator)
            loss = loss + penalty * T.penalty(net, [other[pick]])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    if regime == "nonlinear":
        tau = {k: v.detach() - theta0[k] for k, v in model.backbone.named_parameters()}
    else:
        full = net.task_vector()
        tau = {k: full[f"backbone.{k}"].detach() for k in theta0}
    return tau, losses
