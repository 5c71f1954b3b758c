"""Where things are: the project root, notebook path parameters, and the code's git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_path(path: str | Path) -> Path:
    """A notebook's path parameter: absolute, or relative to the working directory when it exists
    there, else relative to the project root (so defaults work from papermill, ``make`` and
    JupyterLab, whose working directory is ``notebooks/``)."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return ROOT / path


def git_commit() -> str:
    """Short commit of the checkout, with ``+changes`` when tracked files differ from it."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+changes" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
