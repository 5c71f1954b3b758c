"""Seeded ancestral sampling from a causal LM, for the original network at any weights and for its
**linearised** version f_lin(x; θ0 + c τ) = f(x; θ0) + c τ·∇θ f(x; θ0) (seed 004, Eq. 3 / 5).

Every continuation has the same prompt (the toxicity prefix), so the n samples form one batch without
padding. Each step feeds only the new token and keeps the key/value cache; for the linearised model
the forward pass runs on **dual numbers** (``torch.autograd.forward_ad``: parameters θ0 with tangent
τ), so the cache carries each key's and value's tangent as well and one pass gives f and τ·∇θ f of
the new position: the JVP of the whole sequence at every decoding step, at the cost of a cached
step. (``tests/test_text_toxicity.py`` holds it equal to :func:`reprolib.taujp.jvp` on the full
sequence.)

Sampling: temperature ``temperature`` over the full vocabulary (no top-k / top-p), a fixed number of
new tokens, a ``torch.Generator`` seeded by ``seed``; the same arguments give the same tokens.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.func import functional_call


class StepLogits:
    """Next-token logits of ``model`` at weights ``params``, fed one chunk of tokens at a time (cached).

    With ``tangent`` τ the logits are those of the linearised model, f(θ0) + ``scale`` · τ·∇θ f(θ0), at
    θ0 = ``params``; without, the network's own logits at ``params``."""

    def __init__(self, model: nn.Module, params: Mapping[str, Tensor], tangent: Mapping[str, Tensor] | None = None,
                 scale: float = 0.0):
        from reprolib import taujp as T

        self.model, self.params, self.scale = model.eval(), dict(params), float(scale)
        self.tangent = None if tangent is None else T._check_tangent(self.params, tangent, "tangent")
        if self.tangent is not None:
            T.forward_ad_ready(model)
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far (a new sequence starts)."""
        self.cache, self._dual = None, None

    @torch.no_grad()
    def __call__(self, ids: Tensor) -> Tensor:
        """Logits (batch, vocab) of the position after ``ids`` (batch, new tokens), given everything fed
        before. A linearised model must be called inside one ``forward_ad.dual_level()`` for the whole
        sequence (:func:`sample` opens it): its cache holds dual tensors."""
        if self.tangent is None:
            out = functional_call(self.model, self.params, (ids,), {"use_cache": True, "cache": self.cache})
            self.cache = out.cache
            return out.logits[:, -1].float()
        if self._dual is None:
            self._dual = {k: fwAD.make_dual(v, self.tangent[k]) for k, v in self.params.items()}
        out = functional_call(self.model, self._dual, (ids,), {"use_cache": True, "cache": self.cache})
        self.cache = out.cache
        primal, change = fwAD.unpack_dual(out.logits[:, -1])[:2]
        return (primal + self.scale * change).float()


@torch.no_grad()
def sample(step: StepLogits, prompt_ids: Sequence[int], n: int, new_tokens: int, seed: int,
           temperature: float = 1.0) -> Tensor:
    """``n`` continuations of ``prompt_ids`` of exactly ``new_tokens`` sampled tokens each (n, new_tokens)."""
    if n < 1 or new_tokens < 1 or temperature <= 0:
        raise ValueError(f"sample: n = {n} and new_tokens = {new_tokens} must be ≥ 1 and temperature = {temperature} > 0")
    generator = torch.Generator().manual_seed(seed)
    step.reset()
    ids = torch.tensor([list(prompt_ids)] * n, dtype=torch.long)
    out = []
    with fwAD.dual_level():
        for _ in range(new_tokens):
            probs = torch.softmax(step(ids) / temperature, dim=-1)
            ids = torch.multinomial(probs, 1, generator=generator)
            out.append(ids)
    return torch.cat(out, dim=1)
