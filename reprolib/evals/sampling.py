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
new tokens, by inverse CDF from uniforms drawn per sample: sample i's uniforms come from its own
``torch.Generator`` seeded by (``seed``, i), so a sample does not depend on how many are drawn beside
it: the first 200 of 1000 samples are the 200 samples of a run of 200, which pairs them item by item
across models. (Their hazards agree up to the last bits of the batched forward, and a token whose
uniform falls within those bits of a boundary could differ.) The same arguments give the same tokens.

**Next-word hazard** (:func:`sample_scored`, for the average toxic score of
``reprolib.evals.toxicity``): along each sampled path, at every step t, the exact probability q_t
that the sampler's next tokens *begin with* one of a set of words (a :class:`WordTrie` of their token
sequences), q_t = Σ_w Π_j p(w_j | path_<t, w_<j), computed from the same decoding pass: the step's
logits give each word's first token, and the words' later tokens are fed, level by level of the
trie's non-terminal nodes fed as one token tree after the path's key/value cache (tree attention: a
custom 4-D mask, one forward per step; dual numbers for the linearised model, so the hazard is the
linearised model's own).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.func import functional_call


class WordTrie:
    """The token sequences of a set of words as a trie (node 0 is the root).

    A node ending a word is *terminal*; the descendants of a terminal node are dropped (the hazard is a
    prefix probability: "awful" + "s" is already inside "awful"). ``levels[d]``: the nodes at depth
    d + 1; a node's ``parent``, ``token`` and ``terminal`` are lists indexed by node."""

    def __init__(self, sequences):
        self.parent, self.token, self.terminal, self.children = [-1], [-1], [False], [{}]
        for seq in sequences:
            seq = [int(t) for t in seq]
            if not seq:
                raise ValueError("WordTrie: an empty token sequence")
            node = 0
            for tok in seq:
                if self.terminal[node]:
                    break                                   # a shorter word is a prefix: already counted
                if tok not in self.children[node]:
                    self.parent.append(node), self.token.append(tok), self.terminal.append(False)
                    self.children.append({})
                    self.children[node][tok] = len(self.token) - 1
                node = self.children[node][tok]
            else:
                self.terminal[node] = True
                self.children[node] = {}                    # longer words through it are inside it
        self.levels, frontier = [], [0]
        while True:
            frontier = [c for n in frontier for c in self.children[n].values()]
            if not frontier:
                break
            self.levels.append(frontier)

    @classmethod
    def of_words(cls, tokenizer, words, forms=(" {w}", " {w}s")):
        """The trie of ``words`` in each of ``forms`` (default: the lower-case word after a space, and
        its plural), tokenised without special tokens."""
        seqs = [tokenizer(f.format(w=w.lower()), add_special_tokens=False)["input_ids"] for w in words for f in forms]
        return cls(seqs)

    def tree(self) -> tuple[list[int], Tensor, Tensor]:
        """(the non-terminal nodes in breadth-first order, their ancestor-or-self mask (fed × fed, bool:
        [i, j] when node j is node i or an ancestor of it), their depths (1 for the first tokens))."""
        if not hasattr(self, "_tree"):
            fed = [n for level in self.levels for n in level if not self.terminal[n]]
            where = {n: j for j, n in enumerate(fed)}
            mask = torch.zeros(len(fed), len(fed), dtype=torch.bool)
            depth = torch.zeros(len(fed), dtype=torch.long)
            for i, n in enumerate(fed):
                a = n
                while a:
                    mask[i, where[a]] = True
                    depth[i] += 1
                    a = self.parent[a]
            self._tree = (fed, mask, depth)
        return self._tree

    def first_tokens(self) -> list[int]:
        return [self.token[n] for n in self.levels[0]] if self.levels else []


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
        logits, self.cache = self._forward(ids, self.cache)
        return logits

    def _forward(self, ids: Tensor, cache, last: bool = True, **kwargs) -> tuple[Tensor, object]:
        """(logits of the last position, or of every position when not ``last``; the cache after
        ``ids``) from ``cache`` (not necessarily the step's own); ``kwargs`` go to the model."""
        kw = {"use_cache": True, "cache": cache, **kwargs}
        if self.tangent is None:
            out = functional_call(self.model, self.params, (ids,), kw)
            logits = out.logits[:, -1] if last else out.logits
            return logits.float(), out.cache
        if self._dual is None:
            self._dual = {k: fwAD.make_dual(v, self.tangent[k]) for k, v in self.params.items()}
        out = functional_call(self.model, self._dual, (ids,), kw)
        primal, change = fwAD.unpack_dual(out.logits[:, -1] if last else out.logits)[:2]
        return (primal + self.scale * change).float(), out.cache

    @torch.no_grad()
    def hazard(self, logits: Tensor, trie: WordTrie, rows: int, temperature: float = 1.0) -> Tensor:
        """q (rows,): for the first ``rows`` sequences, the probability that the sampler's next tokens
        begin with a word of ``trie``, given everything fed so far; ``logits`` are this step's (the
        position after the fed tokens). The trie's non-terminal nodes are fed in **one** forward as a
        token tree after the cached path (each node attends to the path and to its own ancestors, at
        position path length + depth − 1), on a new cache over the same tensors: the step's own cache
        is not changed."""
        from transformers import DynamicCache

        logp = torch.log_softmax(logits[:rows] / temperature, dim=-1)
        fed, mask, depth = trie.tree()
        tree_logp = None
        if fed:
            past = self.cache.get_seq_length()
            cache = DynamicCache(ddp_cache_data=[(layer.keys[:rows], layer.values[:rows]) for layer in self.cache.layers])
            full = torch.zeros(len(fed), past + len(fed))
            full[:, past:] = torch.where(mask, 0.0, torch.finfo(torch.float32).min)
            ids = torch.tensor([trie.token[n] for n in fed]).expand(rows, -1)
            out, _ = self._forward(ids, cache, last=False, attention_mask=full.expand(rows, 1, -1, -1),
                                   position_ids=(past + depth - 1).expand(rows, -1))
            tree_logp = torch.log_softmax(out / temperature, dim=-1)
        where = {n: j for j, n in enumerate(fed)}
        q, acc = torch.zeros(rows), {0: 0.0}
        for level in trie.levels:
            for node in level:
                p = trie.parent[node]
                lp = logp if p == 0 else tree_logp[:, where[p]]
                acc[node] = acc[p] + lp[:, trie.token[node]]
                if trie.terminal[node]:
                    q += acc[node].exp()
        return q.clamp(0.0, 1.0)


@torch.no_grad()
def sample(step: StepLogits, prompt_ids: Sequence[int], n: int, new_tokens: int, seed: int,
           temperature: float = 1.0) -> Tensor:
    """``n`` continuations of ``prompt_ids`` of exactly ``new_tokens`` sampled tokens each (n, new_tokens)."""
    return sample_scored(step, prompt_ids, n, new_tokens, seed, temperature)[0]


def sample_uniforms(seed: int, n: int, steps: int) -> Tensor:
    """(n, steps) uniforms in [0, 1), float64; row i from a generator seeded by (``seed``, i) alone."""
    rows = [torch.rand(steps, dtype=torch.float64, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
            for i in range(n)]
    return torch.stack(rows)


def inverse_cdf(probs: Tensor, u: Tensor) -> Tensor:
    """(n, 1) token ids: per row, the first token whose cumulative probability exceeds u · total (the
    total, 1 up to rounding, keeps the threshold inside the row, so the token drawn has probability > 0)."""
    cdf = torch.cumsum(probs, dim=-1)
    return torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True)


@torch.no_grad()
def sample_scored(step: StepLogits, prompt_ids: Sequence[int], n: int, new_tokens: int, seed: int,
                  temperature: float = 1.0, trie: WordTrie | None = None, scored: int = 0) -> tuple[Tensor, Tensor]:
    """(tokens (n, new_tokens), q (scored, new_tokens)): ``n`` continuations of ``prompt_ids``, and for
    the first ``scored`` of them the next-word hazard q_t of ``trie`` at every step t (before token t is
    drawn; :meth:`StepLogits.hazard`). The tokens do not depend on ``trie`` or ``scored``: the hazard
    draws nothing from the generator."""
    if n < 1 or new_tokens < 1 or temperature <= 0:
        raise ValueError(f"sample: n = {n} and new_tokens = {new_tokens} must be ≥ 1 and temperature = {temperature} > 0")
    if not 0 <= scored <= n or (scored and trie is None):
        raise ValueError(f"sample: 'scored' = {scored} must be in [0, n = {n}] (and > 0 only with a trie)")
    uniforms = sample_uniforms(seed, n, new_tokens)
    step.reset()
    ids = torch.tensor([list(prompt_ids)] * n, dtype=torch.long)
    out, hazards = [], []
    with fwAD.dual_level():
        for t in range(new_tokens):
            logits = step(ids)
            if scored:
                hazards.append(step.hazard(logits, trie, scored, temperature))
            probs = torch.softmax(logits.detach().double() / temperature, dim=-1)
            ids = inverse_cdf(probs, uniforms[:, t])
            out.append(ids)
    return torch.cat(out, dim=1), (torch.stack(hazards, 1) if scored else torch.zeros(0, new_tokens))
