"""Thread counts for torch: the one a build stage was given, and the fixed ones that keep bytes stable.

Some of the project's training gives different bytes with another thread count (float reductions are
split differently); the models' hashes name no thread count, so that training runs with a fixed one.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

THREADS_ENV = "REPROLIB_THREADS"


def stage_threads(default: int = 2) -> int:
    """Threads for this process's tensor math: ``REPROLIB_THREADS`` when the stage runner set it, else ``default``."""
    raw = os.environ.get(THREADS_ENV, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {THREADS_ENV}={raw!r} is not a whole number of threads") from None
    if value < 1:
        raise ValueError(f"environment variable {THREADS_ENV}={raw!r} must be at least 1")
    return value


# The vision and text task vectors (and the vision θ0) train with 2 threads, the toxicity vectors with 1,
# whatever the caller set: their float reductions differ with the thread count (a 1-thread vision θ0
# differs from a 2-thread one in every tensor), and a model's hash does not name one, so a fixed count
# keeps their bytes the same on any machine and schedule. The counts are those `make book` has always
# used (the command lines' defaults), so the book's recorded results stand.
VECTOR_THREADS = 2       # vision θ0, vision and text task vectors
TOXICITY_THREADS = 1     # the toxicity vectors


@contextmanager
def pinned_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
