"""Where a grid's jobs run: here, one after another ('local'), or one Ray task each ('ray').

A job is a zero-argument callable that merges, evaluates and caches one grid point (e.g.
``functools.partial(scorer.score_merge, ...)``). With Ray each job is pickled (cloudpickle) with its
scorer, which leaves its loaded model behind; a worker process loads the model once and keeps it
for its later tasks. Every worker writes its result into the scorer's cache folder, so on a
cluster that folder must be on a filesystem every node sees (``-p cache_dir /shared/...``); the
results also come back to the caller, in job order.

Ray is found by ``ray.init``'s usual rules: ``RAY_ADDRESS`` (e.g. ``ray://head:10001`` or
``auto``) joins a running cluster, otherwise a local Ray instance starts on this machine.
Per-task resources: ``REPROLIB_RAY_CPUS`` (default 1; also the task's torch threads) and
``REPROLIB_RAY_GPUS`` (default 0; with 1 each task gets a GPU of its own and evaluates on it).
"""

from __future__ import annotations

import os
from typing import Callable

from tqdm.auto import tqdm

EXECUTORS = ("local", "ray")


def check_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        from reprolib.errors import ConfigError

        raise ConfigError(f"parameter 'executor' = {executor!r} is not one of {list(EXECUTORS)}")
    return executor


def run_jobs(jobs: list[Callable[[], dict]], executor: str = "local", desc: str = "jobs",
             progress: bool = True) -> list[dict]:
    """Run ``jobs`` and return their results in order (see the module docstring)."""
    if check_executor(executor) == "local" or not jobs:
        return [job() for job in tqdm(jobs, desc=desc, disable=not progress)]
    return _run_ray(jobs, desc, progress)


def _resources() -> tuple[float, float]:
    def number(name: str, default: float) -> float:
        raw = os.environ.get(name, "")
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = -1.0
        if value < 0:
            from reprolib.errors import ConfigError

            raise ConfigError(f"environment variable {name} = {raw!r} must be a non-negative number")
        return value

    return number("REPROLIB_RAY_CPUS", 1.0), number("REPROLIB_RAY_GPUS", 0.0)


def _task(job: Callable[[], dict], threads: int) -> dict:
    import torch

    torch.set_num_threads(max(1, threads))
    return job()


def _run_ray(jobs: list[Callable[[], dict]], desc: str, progress: bool) -> list[dict]:
    try:
        import ray
    except ImportError as e:
        from reprolib.errors import ConfigError

        raise ConfigError("executor 'ray' needs the package 'ray' (pip install 'ray>=2.40')") from e
    cpus, gpus = _resources()
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(_task)
    refs = [task.remote(job, int(cpus) or 1) for job in jobs]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=len(refs), desc=f"{desc} (ray)", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[index[ref]] = ray.get(ref)
                bar.update(1)
    return results
