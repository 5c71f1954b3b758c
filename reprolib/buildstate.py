"""Whether a stage of ``make book`` can be skipped: the key of what it reads, and the files it wrote.

A stage's **key** is the sha256 of its command, the bytes of the project's code (every file under
``reprolib/``), the stage's own sources (its notebook, the profile's parameters, the book's pages: glob
patterns relative to the project root), the installed packages with their versions, the evaluation
device, and the keys of the stages it waits for. So a change to the code re-runs every stage (a zoo
stage then only checks that its models exist: their folders are named by their own hashes), a change to
one notebook re-runs that notebook and the HTML, and an edited page of the book re-runs the HTML only.

A stage's **outputs** are the files under :data:`WATCHED` that it created or changed (size or
modification time) while it ran, plus the files under every path it reported with :func:`note_output`
(a zoo model found already built is still that stage's output). A file written by a later stage
belongs to that stage from then on, unless the two ran at the same time (then both keep it).

A stage is **fresh**, and skipped, when the last build ran it to success under the same key, every
one of its outputs is still there with the size and modification time it had, and none of the stages
it waits for ran in this build (a stage re-run to restore a lost output may write other bytes: a
timing, a date). Deleting an output (a model folder, ``book/executed/<notebook>.ipynb``, a results
table) therefore re-runs its stage and every stage after it; ``make book FORCE=1`` re-runs everything.
With several lanes, a file written while two stages ran side by side is counted as both stages' output. A stage marked not reusable (a paper profile's chapters: they
read checkpoints outside the project) always runs, and so do the stages after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

WATCHED = ("results", "zoo", "book/executed")    # where stages write (results/cache and results/build excepted)
UNWATCHED = ("results/cache", "results/build")
HTML_PAGES = "book/_build/html"                  # the HTML stage's output: its top-level pages
OUTPUTS_ENV = "REPROLIB_STAGE_OUTPUTS"           # the file a stage appends the paths it reports to


def note_output(path: str | os.PathLike) -> None:
    """Report ``path`` (a file or folder) as an output of the running ``make book`` stage, whether or not
    this run wrote it; nothing happens outside a stage."""
    target = os.environ.get(OUTPUTS_ENV)
    if target:
        with open(target, "a") as f:
            f.write(os.path.abspath(path) + "\n")


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def files_under(path: Path, root: Path, skip: tuple[Path, ...] = ()) -> dict[str, list[int]]:
    """{path relative to ``root``: [size, mtime_ns]} of every file under ``path`` (or ``path`` itself),
    skipping hidden names (temporary files before their rename) and the folders in ``skip``."""
    out: dict[str, list[int]] = {}
    if path.is_file():
        return {str(path.relative_to(root)): _stat(path)}
    for folder, dirs, files in os.walk(path):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d not in skip)
        for name in files:
            if not name.startswith("."):
                f = here / name
                try:
                    out[str(f.relative_to(root))] = _stat(f)
                except FileNotFoundError:      # removed while we looked (a stage running beside this one)
                    pass
    return out


def snapshot(root: Path, skip_also: tuple[Path, ...] = ()) -> dict[str, list[int]]:
    """The files stages write, with their sizes and modification times (none under ``skip_also``: the
    build's own logs and record)."""
    skip = tuple(root / p for p in UNWATCHED) + tuple(Path(os.path.abspath(p)) for p in skip_also)
    out: dict[str, list[int]] = {}
    for top in WATCHED:
        if (root / top).exists():
            out.update(files_under(root / top, root, skip))
    pages = root / HTML_PAGES
    if pages.is_dir():
        out.update({str(p.relative_to(root)): _stat(p) for p in sorted(pages.glob("*.html"))})
    return out


def written(before: dict, after: dict) -> dict[str, list[int]]:
    """The files of ``after`` that are new or changed since ``before``."""
    return {p: v for p, v in after.items() if before.get(p) != v}


def noted(report: Path, root: Path) -> dict[str, list[int]]:
    """The files under the paths a stage reported with :func:`note_output`."""
    if not report.exists():
        return {}
    out: dict[str, list[int]] = {}
    for line in sorted(set(report.read_text().splitlines())):
        p = Path(line)
        if not line or not p.exists():
            continue
        for path, base in ((p, root), (p.resolve(), root.resolve())):   # as reported, else through symlinks
            try:
                out.update(files_under(path, base))
                break
            except ValueError:        # outside the project: not ours to check
                pass
    return out


def still_there(outputs: dict, root: Path) -> bool:
    """Every output exists with the size and modification time recorded."""
    for rel, stamp in outputs.items():
        try:
            if _stat(root / rel) != list(stamp):
                return False
        except FileNotFoundError:
            return False
    return True


def _digest_files(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def code_digest(root: Path) -> str:
    """sha256 of every file under ``<root>/reprolib`` (byte code caches excepted), 16 hex digits."""
    files = sorted(p for p in (root / "reprolib").rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix != ".pyc" and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return _digest_files(files, root)[:16]


def sources_digest(patterns: tuple[str, ...], root: Path) -> dict[str, str]:
    """{pattern: sha256 of the files it matches under ``root``} ("none" where it matches nothing)."""
    out = {}
    for pattern in patterns:
        files = sorted(p for p in root.glob(pattern) if p.is_file())
        out[pattern] = _digest_files(files, root)[:16] if files else "none"
    return out


INSTALLERS = {"pip", "setuptools", "wheel"}     # their versions decide no result


def environment() -> dict:
    """What besides the project's files decides a stage's bytes: Python, every installed package with its
    version (the installers excepted), where the chapters evaluate (``reprolib.models.eval_device``), and
    which sandbox runs the generated code (bubblewrap, or root's fallback)."""
    import shutil
    from importlib.metadata import distributions

    from reprolib.models import eval_device

    packages = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions()
                       if d.metadata["Name"] and d.metadata["Name"].lower() not in INSTALLERS})
    return {"python": sys.version.split()[0], "packages": packages, "device": eval_device(),
            "sandbox": "bubblewrap" if shutil.which("bwrap") else ("root" if os.geteuid() == 0 else "none")}


def stage_keys(stages, root: Path, env: dict | None = None) -> dict[str, str]:
    """Each stage's key (see the module's docstring); ``stages`` listed with a stage after those it waits for."""
    env = environment() if env is None else env
    code = code_digest(root)
    keys: dict[str, str] = {}
    for s in stages:
        unknown = [a for a in s.after if a not in keys]
        if unknown:
            raise ValueError(f"stage {s.name!r} waits for {unknown}, which are not listed before it")
        if not getattr(s, "reusable", True):
            keys[s.name] = f"always-{uuid.uuid4().hex[:12]}"     # never matches: it runs, and so do the stages after it
            continue
        command = ["python" if c == sys.executable else c for c in s.command]
        body = {"command": command, "code": code, "sources": sources_digest(tuple(getattr(s, "sources", ())), root),
                "environment": env, "after": [keys[a] for a in s.after]}
        keys[s.name] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return keys


def fresh(previous: dict | None, key: str, root: Path) -> bool:
    """The last build ran this stage to success under ``key`` and its outputs are as it left them (the
    runner also re-runs a stage when one it waits for ran in this build)."""
    return bool(previous) and previous.get("returncode") == 0 and previous.get("key") == key \
        and isinstance(previous.get("outputs"), dict) and still_there(previous["outputs"], root)
