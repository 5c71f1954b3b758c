"""Exact top-k magnitude thresholds, in memory or streamed over blocks in bounded memory.

``magnitude_threshold(x, density)`` is the k-th largest |x| with k = int(density · numel) (the
PEFT/mergekit count). ``TopKSelector`` finds the same value for a vector that arrives in blocks
(one large tensor read a block of rows at a time, or a whole model for TIES's global trim) by a
two-level radix select on the float32 bit pattern of |x|: non-negative IEEE floats order like
their bit patterns, so a 65,536-bin histogram of the high 16 bits locates the bin holding the
k-th largest value and a second pass over that bin's low 16 bits pins it exactly. Memory is two
histograms, whatever the vector's size; the result equals ``torch.kthvalue`` bit for bit.
"""

from __future__ import annotations

import math

import torch

_BINS = 1 << 16


def keep_count(numel: int, density: float) -> int:
    """k = int(density · numel), the number of entries TIES/magnitude pruning keeps."""
    return int(density * numel)


def magnitude_threshold(x: torch.Tensor, density: float) -> float:
    """k-th largest |x| for k = int(density·numel); +inf when k = 0, 0 when k = numel."""
    n = x.numel()
    k = keep_count(n, density)
    if k <= 0:
        return math.inf
    if k >= n:
        return 0.0
    return float(torch.kthvalue(x.detach().abs().float().reshape(-1).cpu(), n - k + 1).values)


def _bits(x: torch.Tensor) -> torch.Tensor:
    """The float32 bit patterns of |x| as int32 (non-negative: the sign bit is clear). Histograms
    run on int32 directly: widening to int64 first made each pass ~9× slower."""
    return x.detach().abs().float().reshape(-1).contiguous().view(torch.int32)


class TopKSelector:
    """Streaming exact k-th largest |x| over blocks: feed every block to ``add`` once per pass.

    Usage::

        sel = TopKSelector(total_numel, density)
        while sel.needs_pass():
            for block in blocks(): sel.add(block)
            sel.end_pass()
        threshold = sel.threshold
    """

    def __init__(self, numel: int, density: float):
        self.numel = numel
        self.k = keep_count(numel, density)
        self.pass_no = 0
        self.high_bin: int | None = None
        self.k_in_bin = 0
        self.threshold: float | None = None
        if self.k <= 0:
            self.threshold = math.inf
        elif self.k >= numel:
            self.threshold = 0.0
        self.hist = torch.zeros(_BINS, dtype=torch.int64)

    def needs_pass(self) -> bool:
        return self.threshold is None

    def add(self, block: torch.Tensor) -> None:
        bits = _bits(block)
        if self.pass_no == 0:
            self.hist += torch.bincount(bits >> 16, minlength=_BINS).cpu()
        else:
            low = bits[(bits >> 16) == self.high_bin] & 0xFFFF
            self.hist += torch.bincount(low, minlength=_BINS).cpu()

    @staticmethod
    def _select(hist: torch.Tensor, k: int) -> tuple[int, int]:
        """Bin b holding the k-th largest entry, and the rank of that entry within bin b."""
        above = torch.cumsum(hist.flip(0), 0).flip(0)  # above[b] = count of entries in bins >= b
        b = int(torch.nonzero(above >= k).max())
        larger = int(above[b + 1]) if b + 1 < _BINS else 0
        return b, k - larger

    def end_pass(self) -> None:
        if self.pass_no == 0:
            self.high_bin, self.k_in_bin = self._select(self.hist, self.k)
        else:
            low, _ = self._select(self.hist, self.k_in_bin)
            bits = torch.tensor([(self.high_bin << 16) | low], dtype=torch.int32)
            self.threshold = float(bits.view(torch.float32)[0])
        self.hist = torch.zeros(_BINS, dtype=torch.int64)
        self.pass_no += 1
