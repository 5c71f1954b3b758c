"""θ0 − α τ for a causal LM, as the τJp paper evaluates task negation (seed 004, Sec. 4.2, B.2–B.3,
Tables 4 and 9): perplexity over a coefficient grid, the paper's selection rule, and samples for the
toxicity measures.

:class:`LMNegation` holds θ0, one task vector τ and whether the regime is **linearised**. A linearised
regime is evaluated as the linearised model (Ortiz-Jimenez et al.'s implementation, as
``reprolib.vision.arithmetic.Outputs``): logits(α) = f(x; θ0) − α τ·∇θ f(x; θ0), linear in α, so f and
the JVP are computed once per window and every grid point is a weighted sum; generation runs the
linearised model too (the JVP at every decoding step, ``reprolib.evals.sampling``). A non-linear
regime (non-linear FT, TIES) runs the network at θ0 − α τ.

Perplexity reads lm-eval's rolling windows exactly as ``reprolib.evals.ppl.perplexity`` does (its
``rolling_windows`` and ``prefix_id``), windows batched with right padding (causal attention keeps the
padding out of the scored positions); per text it keeps ``[nll, tokens]``, the items the claims'
bootstrap resamples (``reprolib.evals.suite.resample``: ppl = exp(Σ nll / Σ tokens)).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from reprolib import taujp as T
from reprolib.evals.ppl import prefix_id, rolling_windows
from reprolib.evals.sampling import StepLogits, WordTrie, sample_scored


def select_alpha(curve: Mapping[float, float], ppl0: float, tolerance: float = 0.5) -> float:
    """B.2 / Table 4: the **largest** α of the grid whose perplexity is ≤ θ0's + ``tolerance`` (taken
    literally: the largest such α, even if a smaller one exceeds the bound). α = 0 is θ0 itself and
    always qualifies, so the grid must hold 0."""
    if 0.0 not in curve:
        raise ValueError(f"select_alpha: the grid {sorted(curve)} must hold 0 (θ0, the rule's fallback)")
    if not tolerance >= 0:
        raise ValueError(f"parameter 'tolerance' = {tolerance!r} must be ≥ 0")
    return max(a for a, p in curve.items() if a == 0.0 or p <= ppl0 + tolerance)


def ppl_of(items: Sequence[Sequence[float]]) -> float:
    """exp(Σ nll / Σ tokens) of per-text [nll, tokens] items."""
    return math.exp(sum(i[0] for i in items) / max(sum(i[1] for i in items), 1))


class LMNegation:
    """θ0 − α τ of ``model`` (whose current weights are θ0), linearised or not."""

    def __init__(self, model: nn.Module, tokenizer, tau: Mapping[str, Tensor] | None, linear: bool, batch: int = 16):
        self.model, self.tokenizer, self.linear, self.batch = T.forward_ad_ready(model).eval(), tokenizer, linear, batch
        self.params0 = T.params_of(model)
        self.tau = None if tau is None else T._check_tangent(self.params0, tau, "task vector")

    def params(self, alpha: float) -> dict[str, Tensor]:
        """θ0 − α τ."""
        if self.tau is None or alpha == 0:
            return dict(self.params0)
        return {k: v - alpha * self.tau[k] for k, v in self.params0.items()}

    # ------------------------------------------------------------------ perplexity

    def _windows(self, texts: Sequence[str]) -> list[tuple[int, list[int], list[int]]]:
        max_len = self.model.config.max_position_embeddings
        prefix = prefix_id(self.tokenizer)
        out = []
        for i, text in enumerate(texts):
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            done = 0
            for window, n_pred in rolling_windows(ids, prefix, max_len):
                out.append((i, window, ids[done:done + n_pred]))
                done += n_pred
        return sorted(out, key=lambda w: len(w[1]))          # similar lengths share a batch

    def _batches(self, windows):
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for s in range(0, len(windows), self.batch):
            part = windows[s:s + self.batch]
            width = max(len(w) for _, w, _ in part)
            ids = torch.full((len(part), width), pad, dtype=torch.long)
            for j, (_, w, _) in enumerate(part):
                ids[j, :len(w)] = torch.tensor(w)
            yield part, ids

    @staticmethod
    def _nll(logits: Tensor, part) -> list[float]:
        """Summed NLL of each window's targets (its last n_pred positions, before any padding)."""
        out = []
        for j, (_, w, targets) in enumerate(part):
            scored = logits[j, len(w) - len(targets):len(w)].float()
            out.append(float(nn.functional.cross_entropy(scored, torch.tensor(targets), reduction="sum")))
        return out

    @torch.no_grad()
    def ppl_items(self, texts: Sequence[str], alphas: Sequence[float]) -> dict[float, list[list[float]]]:
        """α → per-text [nll, tokens] of θ0 − α τ on ``texts``, for every α of ``alphas``."""
        windows = self._windows(texts)
        nll = {float(a): [0.0] * len(texts) for a in alphas}
        tokens = [0] * len(texts)
        for i, _, targets in windows:
            tokens[i] += len(targets)
        if self.linear and self.tau is not None:
            for part, ids in self._batches(windows):
                f0, change = T.jvp(self.model, self.params0, self.tau, ids, "task vector")
                for a in nll:
                    for (i, _, _), v in zip(part, self._nll(f0 - a * change, part)):
                        nll[a][i] += v
        else:
            for a in nll:
                params = self.params(a)
                for part, ids in self._batches(windows):
                    logits = functional_call(self.model, params, (ids,)).logits
                    for (i, _, _), v in zip(part, self._nll(logits, part)):
                        nll[a][i] += v
        return {a: [[n, t] for n, t in zip(values, tokens)] for a, values in nll.items()}

    # ------------------------------------------------------------------ generation

    def samples(self, alpha: float, prefix: str, n: int, new_tokens: int, seed: int, temperature: float = 1.0) -> list[str]:
        """``n`` sampled continuations of ``prefix`` (after the EOS that stands for BOS) under θ0 − α τ,
        each cut at its first EOS; only the continuation is returned."""
        return self.generate(alpha, prefix, n, new_tokens, seed, temperature)[0]

    def generate(self, alpha: float, prefix: str, n: int, new_tokens: int, seed: int, temperature: float = 1.0,
                 words=None, scored: int = 0) -> tuple[list[str], list[list[float]]]:
        """(:meth:`samples`' texts, per scored sample its next-word hazards q_t of ``words``): the first
        ``scored`` samples' hazards at every step, from the same decoding pass
        (``reprolib.evals.sampling.sample_scored``); the texts do not depend on ``words``. Steps after
        a sample's first EOS have hazard 0 (its text ends there)."""
        trie = WordTrie.of_words(self.tokenizer, words) if scored else None
        if self.linear and self.tau is not None and alpha != 0:
            step = StepLogits(self.model, self.params0, self.tau, scale=-alpha)
        else:
            step = StepLogits(self.model, self.params(alpha))
        eos = self.tokenizer.eos_token_id
        prompt = [prefix_id(self.tokenizer)] + self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
        tokens, hazard = sample_scored(step, prompt, n, new_tokens, seed, temperature, trie, scored)
        out, cuts = [], []
        for row in tokens.tolist():
            cut = row.index(eos) if eos in row else len(row)
            out.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True))
            cuts.append(cut)
        return out, [[q if t <= cut else 0.0 for t, q in enumerate(row)] for row, cut in zip(hazard.tolist(), cuts)]
