"""On-disk cache of computed results, keyed by the sha256 of their configuration.

A configuration is any JSON-able dict that determines the result: the merge (method, parameters,
per-model weights, seed), the models' fingerprints and the evaluation (sets, sizes, code version).
Each entry is ``<root>/<namespace>/<key>.json`` holding the config, the result and provenance
(package versions, date, seconds spent), written to a temporary file and renamed. An entry that
cannot be read back (truncated, empty, not the layout above) is logged as a warning with its path
and treated as a miss: the result is recomputed and replaces it.

``FileHashes`` gives the sha256 of (checkpoint) files, hashing each file once: the digest is
remembered with the file's size, modification and change times, inode and device, in memory and
optionally in a JSON-lines sidecar (``<cache root>/file-hashes.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable

DEFAULT_ROOT = Path(os.environ.get("REPROLIB_CACHE", "results/cache"))
HASHES_FILE = "file-hashes.jsonl"
RACY_SECONDS = 2   # a file changed this recently is hashed again next time: its stamp could still repeat
log = logging.getLogger(__name__)


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
        """The stored result of ``config``; None when absent, corrupt (logged) or not this config's."""
        p = self.path(config)
        if not self.enabled or not p.exists():
            return None
        try:
            entry = json.loads(p.read_text())
            if not isinstance(entry, dict) or "config" not in entry or not isinstance(entry.get("result"), dict):
                raise ValueError("not a cache entry (needs 'config' and a 'result' mapping)")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            log.warning("cache entry %s is corrupt (%s); recomputing it", p, e)
            return None
        if entry["config"] != json.loads(json.dumps(config, default=str)):
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
        """The cached result of ``config`` or ``compute()`` (then stored). Either way the result comes back
        as a hit reads it (JSON, keys sorted at every level), so whatever iterates over it (columns, sums over
        tasks, the claims' bootstrap) sees the same order, and gives the same bytes, cold or warm."""
        hit = self.get(config)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        t0 = time.perf_counter()
        result = compute()
        if self.enabled:
            self.put(config, result, time.perf_counter() - t0)
        return json.loads(json.dumps(result, sort_keys=True, default=str))


class FileHashes:
    """sha256 of files, each hashed once while it is unchanged.

    A digest is kept with the file's stamp (size, mtime_ns, ctime_ns, inode, device). Rewriting,
    replacing or rebuilding a file (e.g. a zoo checkpoint renamed into place), or copying another
    over it with its modification time preserved, changes its change time or inode, so it is
    hashed again. A file changed in the last ``RACY_SECONDS`` is not remembered (file times are
    coarse: a second change within the same tick could leave the stamp as it was). With
    ``sidecar`` the digests persist across runs (rewritten atomically; an unreadable line is skipped).
    """

    def __init__(self, sidecar: str | Path | None = None):
        self.sidecar = Path(sidecar) if sidecar else None
        self._known: dict[str, dict] = self._read() if self.sidecar else {}

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]

    def _read(self) -> dict[str, dict]:
        known = {}
        try:
            lines = self.sidecar.read_text().splitlines()
        except FileNotFoundError:
            return known
        except (OSError, UnicodeDecodeError) as e:
            log.warning("file-hash cache %s is unreadable (%s); hashing again", self.sidecar, e)
            return known
        for line in lines:
            try:
                e = json.loads(line)
                known[e["path"]] = {"stamp": list(e["stamp"]), "sha256": str(e["sha256"])}
            except (ValueError, KeyError, TypeError):
                log.warning("file-hash cache %s: skipping a corrupt line", self.sidecar)
        return known

    def _write(self) -> None:
        self.sidecar.parent.mkdir(parents=True, exist_ok=True)
        merged = {**{k: v for k, v in self._read().items() if Path(k).exists()}, **self._known}   # keep other runs' entries
        tmp = self.sidecar.with_name(f".{self.sidecar.name}.{uuid.uuid4().hex[:6]}")
        try:
            tmp.write_text("".join(json.dumps({"path": k, **v}, sort_keys=True) + "\n" for k, v in sorted(merged.items())))
            os.replace(tmp, self.sidecar)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _digest(path: Path) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()

    def sha256(self, path: str | Path) -> str:
        """Hex sha256 of the file's bytes."""
        path = Path(path).resolve()
        stamp = self._stamp(path)
        known = self._known.get(str(path))
        if known and known["stamp"] == stamp:
            return known["sha256"]
        digest = self._digest(path)
        settled = time.time_ns() - stamp[2] > RACY_SECONDS * 1e9
        if settled and self._stamp(path) == stamp:   # not changed while read, nor too recently: remember it
            self._known[str(path)] = {"stamp": stamp, "sha256": digest}
            if self.sidecar:
                try:
                    self._write()
                except OSError as e:             # the digest is still right; only the next run hashes again
                    log.warning("cannot update the file-hash cache %s (%s)", self.sidecar, e)
        return digest


class LayeredCache(ResultCache):
    """A :class:`ResultCache` that also reads other caches' entries, never writing to them: ``get``
    serves its own entry, else the first hit among ``read_also`` (roots, same namespace); whatever
    ``get_or_compute`` computes is stored in its own directory only. For a run next to a book whose
    cache it may read but must not change (a read-only results/cache)."""

    def __init__(self, root: str | Path, namespace: str = "default", read_also=(), enabled: bool = True):
        super().__init__(root, namespace, enabled)
        self.read_also = [ResultCache(r, namespace, enabled) for r in read_also]

    def get(self, config: dict) -> dict | None:
        hit = super().get(config)
        for other in self.read_also:
            if hit is not None:
                break
            hit = other.get(config)
        return hit
