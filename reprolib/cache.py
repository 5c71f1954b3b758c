"""On-disk cache of computed results, keyed by the sha256 of their configuration.

A configuration is any JSON-able dict that determines the result: the merge (method, parameters,
per-model weights, seed), the models' fingerprints and the evaluation (sets, sizes, code version).
Each entry is ``<root>/<namespace>/<key>.json`` holding the config, the result and provenance
(package versions, date, seconds spent), written to a temporary file and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Callable

DEFAULT_ROOT = Path(os.environ.get("REPROLIB_CACHE", "results/cache"))


def config_key(config: dict) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys, no whitespace), 16 hex digits."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultCache:
    def __init__(self, root: str | Path = DEFAULT_ROOT, namespace: str = "default", enabled: bool = True):
        self.dir = Path(root) / namespace
        self.enabled = enabled
        self.hits = self.misses = 0

    def path(self, config: dict) -> Path:
        return self.dir / f"{config_key(config)}.json"

    def get(self, config: dict) -> dict | None:
        p = self.path(config)
        if not self.enabled or not p.exists():
            return None
        entry = json.loads(p.read_text())
        if entry.get("config") != json.loads(json.dumps(config, default=str)):
            return None  # a hash collision or a hand-edited file: recompute
        return entry["result"]

    def put(self, config: dict, result: dict, seconds: float | None = None) -> Path:
        from reprolib.io import package_versions

        p = self.path(config)
        p.parent.mkdir(parents=True, exist_ok=True)
        entry = {"config": config, "result": result,
                 "provenance": {"versions": package_versions(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                "seconds": seconds}}
        tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:6]}")
        tmp.write_text(json.dumps(entry, indent=1, sort_keys=True, default=str) + "\n")
        os.replace(tmp, p)
        return p

    def get_or_compute(self, config: dict, compute: Callable[[], dict]) -> dict:
        """The cached result of ``config`` or ``compute()`` (then stored)."""
        hit = self.get(config)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        t0 = time.perf_counter()
        result = compute()
        if self.enabled:
            self.put(config, result, time.perf_counter() - t0)
        return json.loads(json.dumps(result, default=str))
