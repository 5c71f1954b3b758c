"""Task vectors cached on disk, shared by the τJp chapter's zoos (``reprolib.vision.zoo.VisionZoo``,
``reprolib.text.zoo.TextZoo``): one file mechanism, whatever the model and the tasks.

``<root>/tv-<hash>/<regime>_s<seed>.safetensors`` holds every vector of one regime and training seed
(keys ``<task>.<parameter>``) beside a ``.json`` of its provenance (losses, seconds, settings). The
hash is the sha256 of :meth:`TaskVectorStore.tv_config` (θ0's identity, the fine-tuning settings the
regime reads, the fine-tuning code's version …): one hash per regime, so changing the penalty λ
re-fine-tunes only the penalised regimes. Files are written under a temporary name and renamed,
the ``.json`` first and the ``.safetensors`` last, so a ``.safetensors`` marks a complete pair.

A zoo subclasses :class:`TaskVectorStore` and supplies ``profile`` (a dataclass), ``root`` (a Path),
``progress``, ``REGIMES`` / ``ALL_REGIMES`` / ``READS`` (the settings each regime reads), ``key()``
(θ0's hash), ``tv_config(regime)`` and ``_finetune_all(regime, seed)`` (yields (name, (τ, losses))).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import torch

from reprolib.threads import VECTOR_THREADS, pinned_threads


def config_hash(config: Mapping) -> str:
    """The 12-hex-digit sha256 of a JSON-able config (sorted keys): the zoos' cache keys."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def save_with_provenance(path: Path, tensors: dict, provenance: dict) -> None:
    """``tensors`` to ``path`` (safetensors) and ``provenance`` beside it (``.json``), each written under a
    temporary name and renamed, the ``.json`` first: the ``.safetensors`` marks a complete pair, and a
    failure leaves nothing half-written."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    tmp, tmp_json = path.with_name(f".{path.name}.{tag}"), path.with_name(f".{path.stem}.{tag}.json")
    try:
        save_file(tensors, tmp)
        tmp_json.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_json, path.with_suffix(".json"))
        os.replace(tmp, path)
    except BaseException:
        for f in (tmp, tmp_json):
            f.unlink(missing_ok=True)
        raise


def resolve_profile(kind: str, profile, profiles: Mapping, fields, overrides: dict):
    """A zoo's profile by name (or as given) with ``overrides`` of the fine-tuning ``fields`` applied; an
    unknown name or field is an error naming it."""
    from dataclasses import replace

    if isinstance(profile, str) and profile not in profiles:
        raise ValueError(f"unknown {kind} profile {profile!r} (known: {', '.join(profiles)})")
    profile = profiles[profile] if isinstance(profile, str) else profile
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"{kind} zoo: {unknown} cannot be overridden (fine-tuning settings: {', '.join(fields)})")
    return replace(profile, **overrides)


class TaskVectorStore:
    """Task vectors per (regime, seed), fine-tuned once and cached (see the module docstring)."""

    REGIMES: tuple[str, ...] = ()
    ALL_REGIMES: tuple[str, ...] = ()
    READS: Mapping[str, tuple[str, ...]] = {}
    KIND = "zoo"                      # the progress bar's and the CLI's name for the zoo

    profile: object
    root: Path
    progress: bool

    # ------------------------------------------------------------------ what a zoo supplies

    def key(self) -> str:
        """θ0's hash."""
        raise NotImplementedError

    def tv_config(self, regime: str) -> dict:
        """Everything the regime's task vectors depend on (hashed into :meth:`tv_key`)."""
        raise NotImplementedError

    def _finetune_all(self, regime: str, seed: int) -> Iterator[tuple[str, tuple[dict, list]]]:
        """(name, (τ, losses per step)) for every vector of ``regime`` and training ``seed``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared mechanics

    def settings(self, regime: str) -> dict:
        """The fine-tuning settings ``regime`` reads (the penalty's only for the penalised regimes)."""
        if regime not in self.ALL_REGIMES:
            raise ValueError(f"parameter 'regime' = {regime!r} is not one of {self.ALL_REGIMES}")
        return {k: getattr(self.profile, k) for k in self.READS[regime]}

    def tv_key(self, regime: str) -> str:
        """One regime's task vectors' hash (another λ re-fine-tunes only the penalised regimes)."""
        return config_hash(self.tv_config(regime))

    def tv_keys(self, regimes=None) -> dict[str, str]:
        return {r: self.tv_key(r) for r in (self.REGIMES if regimes is None else regimes)}

    def tv_file(self, regime: str, seed: int) -> Path:
        return self.root / f"tv-{self.tv_key(regime)}" / f"{regime}_s{seed}.safetensors"

    def has(self, regime: str, seed: int) -> bool:
        return self.tv_file(regime, seed).exists()

    def task_vectors(self, regime: str, seed: int) -> dict[str, dict[str, torch.Tensor]]:
        """{task: τ} for ``regime`` and training ``seed`` (fine-tuned and cached when missing)."""
        from safetensors.torch import load_file

        path = self.tv_file(regime, seed)
        if not path.exists():
            self._build_vectors(regime, seed, path)
        out: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in load_file(path).items():
            task, name = key.split(".", 1)
            out.setdefault(task, {})[name] = value
        return out

    def provenance(self, regime: str, seed: int) -> dict:
        return json.loads(self.tv_file(regime, seed).with_suffix(".json").read_text())

    def build(self, seeds, regimes=None) -> None:
        """Every missing (regime, seed), with a progress bar."""
        from tqdm.auto import tqdm

        regimes = self.ALL_REGIMES if regimes is None else regimes
        todo = [(r, s) for s in seeds for r in regimes if not self.has(r, s)]
        for regime, seed in tqdm(todo, desc=f"{self.KIND} {self.profile.name}: fine-tuning", disable=not self.progress):
            self.task_vectors(regime, seed)

    def _build_vectors(self, regime: str, seed: int, path: Path) -> None:
        from reprolib.io import machine, package_versions

        t0 = time.perf_counter()
        flat, record = {}, {}
        with pinned_threads(VECTOR_THREADS):   # the bytes depend on the thread count (reprolib.threads)
            for name, (tau, losses) in self._finetune_all(regime, seed):
                flat.update({f"{name}.{k}": v.contiguous() for k, v in tau.items()})
                record[name] = {"first_loss": losses[0], "final_loss": float(np.mean(losses[-20:]))}
        save_with_provenance(path, flat, {"regime": regime, "seed": seed, "hash": self.tv_key(regime),
                                          "pretrained": self.key(), "settings": self.settings(regime), "losses": record,
                                          "threads": VECTOR_THREADS,
                                          "seconds": round(time.perf_counter() - t0, 1), "versions": package_versions(),
                                          "machine": machine(),
                                          "built": time.strftime("%Y-%m-%d")})


def main(zoo_class, profiles: Mapping, prog: str, description: str, argv=None) -> None:
    """The command line of a task-vector zoo (``--profile``, ``--root``, ``--seeds``, ``--regimes``): it
    prepares θ0, fine-tunes whatever is missing and prints the task vectors' hashes. The training runs
    with ``reprolib.threads.VECTOR_THREADS`` threads, so that its bytes never depend on the machine."""
    import argparse

    regimes_all = zoo_class.ALL_REGIMES
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--profile", default="mini", choices=sorted(profiles))
    parser.add_argument("--root", default="zoo")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0 … n−1")
    parser.add_argument("--regimes", default=",".join(regimes_all),
                        help=f"comma-separated, of {', '.join(regimes_all)} (default: all)")
    args = parser.parse_args(argv)
    regimes = tuple(r for r in args.regimes.split(",") if r)
    unknown = sorted(set(regimes) - set(regimes_all))
    if unknown:
        parser.error(f"--regimes: unknown {unknown} (known: {', '.join(regimes_all)})")
    t0 = time.perf_counter()
    zoo = zoo_class(args.profile, root=args.root)
    zoo.pretrained()
    zoo.build(range(args.seeds), regimes)
    from reprolib.buildstate import note_output

    # this stage's outputs, built now or found built (make book's stage runner): θ0 and each task-vector pair
    if hasattr(zoo, "folder"):
        note_output(zoo.folder())
    for regime in regimes:
        for seed in range(args.seeds):
            note_output(zoo.tv_file(regime, seed))
            note_output(zoo.tv_file(regime, seed).with_suffix(".json"))
    print(f"{zoo.KIND} {args.profile}: ready in {time.perf_counter() - t0:.0f} s ({zoo.root}, task vectors "
          + ", ".join(f"{r} tv-{k}" for r, k in zoo.tv_keys(regimes).items()) + ")")
