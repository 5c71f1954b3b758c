"""Build the book: execute the chapter notebooks with papermill, then jupyter-book (execution off).

    python -m reprolib book [--profile mini] [--only lata_learning] [-p sigma 0.9] [-f params.yaml] [--no-html]

Parameters of a notebook come, later ones winning, from ``notebooks/params/<profile>.yaml``
(``all:`` then the notebook's own section), then ``-f`` files, then ``-p name value`` pairs. A
parameter given on the command line must be declared by at least one selected notebook.

Notebooks run into a staging folder; only when every selected notebook succeeded are they moved
into ``book/executed/``. The HTML is built into a staging folder too and swapped into
``book/_build`` only when jupyter-book succeeds, so a failure never leaves a half-built book.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from reprolib.errors import ConfigError, ReprolibError
from reprolib.paths import ROOT, git_commit

NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
EXECUTED = BOOK / "executed"


class NotebookError(ReprolibError):
    """A chapter notebook failed; the message names the notebook, the cell and the error."""


# ----------------------------------------------------------------------------- parameters


def chapter_notebooks() -> list[str]:
    """Stems of the notebooks the book shows, in table-of-contents order."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    stems = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file", "")
            if f.startswith("executed/"):
                stems.append(f.split("/", 1)[1].removesuffix(".ipynb"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return stems


def declared_parameters(stem: str) -> dict:
    import papermill

    return papermill.inspect_notebook(str(NOTEBOOKS / f"{stem}.ipynb"))


def _coerce(value: str):
    """-p values: YAML scalars (numbers, booleans, lists) else the string itself."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def notebook_parameters(stems: list[str], profile: str, cli: dict, files=()) -> dict[str, dict]:
    """Per notebook: the parameters to inject (only the ones it declares)."""
    profile_file = NOTEBOOKS / "params" / f"{profile}.yaml"
    layered = yaml.safe_load(profile_file.read_text()) if profile_file.exists() else {}
    from_files = {}
    for f in files:
        try:
            from_files.update(yaml.safe_load(Path(f).read_text()) or {})
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"params file {f}: unreadable ({e})") from e
    out, used = {}, set()
    for stem in stems:
        declared = declared_parameters(stem)
        params = {"profile": profile, **(layered.get("all") or {}), **(layered.get(stem) or {}), **from_files, **cli}
        out[stem] = {k: v for k, v in params.items() if k in declared}
        used |= set(declared)
    unknown = set(cli) - used
    if unknown:
        raise ConfigError(f"parameter(s) {sorted(unknown)} are not declared by notebook(s) {stems}; "
                          f"see `papermill --help-notebook notebooks/<name>.ipynb`")
    return out


# ----------------------------------------------------------------------------- execution


def execute(stem: str, params: dict, out: Path, timeout: int = 3 * 3600) -> float:
    """Run ``notebooks/<stem>.ipynb`` into ``out``; NotebookError names the failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    src = NOTEBOOKS / f"{stem}.ipynb"
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(str(src), str(out), parameters=params, cwd=str(ROOT), kernel_name="python3",
                                   progress_bar=False, execution_timeout=timeout)
    except PapermillExecutionError as e:
        first_line = ""
        try:  # papermill writes the failed notebook too: quote the failing cell's first line
            import nbformat

            failed = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
            first_line = failed[0].source.strip().splitlines()[0]
        except Exception:  # noqa: BLE001 - the message is still useful without the quote
            pass
        raise NotebookError(f"notebook {src.relative_to(ROOT)} failed in cell {e.cell_index + 1} "
                            f"(execution count {e.exec_count}; it begins `{first_line}`): {e.ename}: {e.evalue}") from None
    import nbformat

    nb = nbformat.read(out, as_version=4)
    nb.metadata["reprolib"] = {"commit": git_commit(), "executed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "parameters": params}
    nbformat.write(nb, out)
    return time.perf_counter() - t0


def stale_pages() -> dict[str, str]:
    """Executed chapters whose code commit differs from the working tree's: {stem: their commit}."""
    import nbformat

    now, out = git_commit(), {}
    for stem in chapter_notebooks():
        path = EXECUTED / f"{stem}.ipynb"
        if path.exists():
            commit = nbformat.read(path, as_version=4).metadata.get("reprolib", {}).get("commit", "unknown")
            if commit != now:
                out[stem] = commit
    return out


def run_notebooks(stems: list[str], params: dict[str, dict], log=print) -> dict[str, float]:
    """Execute into a staging folder; move into book/executed only if all succeed."""
    staging = BOOK / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    times = {}
    try:
        for stem in stems:
            log(f"[book] executing notebooks/{stem}.ipynb with {params[stem]}")
            times[stem] = execute(stem, params[stem], staging / f"{stem}.ipynb")
            log(f"[book]   done in {times[stem]:.0f} s")
        EXECUTED.mkdir(exist_ok=True)
        for stem in stems:
            os.replace(staging / f"{stem}.ipynb", EXECUTED / f"{stem}.ipynb")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return times


def build_html(log=print) -> Path:
    """jupyter-book build into a staging folder, then swap it into book/_build."""
    missing = [s for s in chapter_notebooks() if not (EXECUTED / f"{s}.ipynb").exists()]
    if missing:
        raise NotebookError(f"book/executed lacks {missing}: run them first (python -m reprolib book --only …)")
    from reprolib.bookassets import check_offline, vendor_mathjax

    for stem, commit in stale_pages().items():
        log(f"[book] WARNING: book/executed/{stem}.ipynb was executed at reprolib {commit}, not at {git_commit()}; "
            f"re-run it (python -m reprolib book --only {stem}) for a page that matches the code")

    vendor_mathjax(BOOK / "_static")
    staging = BOOK / f".html-{uuid.uuid4().hex[:8]}"
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(BOOK), "--config", str(ROOT / "_config.yml"), "--path-output", str(staging),
           "-W", "--keep-going"]
    log(f"[book] {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, cwd=ROOT)
        if proc.returncode != 0:
            raise NotebookError(f"jupyter-book build failed (exit {proc.returncode}); book/_build is unchanged")
        external = check_offline(staging / "_build" / "html")
        if external:
            raise NotebookError("the pages load external assets (the book must read offline); book/_build is unchanged:\n  "
                                + "\n  ".join(external[:20]))
        old = BOOK / f".old-{uuid.uuid4().hex[:8]}"
        if (BOOK / "_build").exists():
            os.replace(BOOK / "_build", old)
        os.replace(staging / "_build", BOOK / "_build")
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BOOK / "_build" / "html" / "index.html"


def generated_pages(profile: str) -> None:
    """Pages made from code: the methods table, and the build banner included by the Markdown pages."""
    from reprolib.kit import scoreboard
    from reprolib.merge.registry import methods_markdown

    gen = BOOK / "_generated"
    gen.mkdir(exist_ok=True)
    (gen / "methods.md").write_text(methods_markdown() + "\n")
    (gen / "scoreboard.md").write_text(scoreboard.markdown(scoreboard.collect(ROOT / "results", profile), profile) + "\n")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (gen / "build.md").write_text(
        f"```{{admonition}} This build\n:class: note\nProfile **{profile}**, built {when} from reprolib {git_commit()}. "
        "Every chapter page states the scale its numbers were computed at; numbers marked *paper* are the "
        "publications' own, transcribed.\n```\n")


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="reprolib book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="mini", help="zoo profile (mini, tiny) or a paper-profile YAML")
    ap.add_argument("--only", nargs="*", help="notebooks to (re-)execute (default: all chapters)")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a notebook parameter")
    ap.add_argument("-f", action="append", default=[], metavar="YAML", help="a YAML file of notebook parameters")
    ap.add_argument("--no-html", action="store_true", help="execute notebooks only")
    ap.add_argument("--html-only", action="store_true", help="rebuild the HTML from book/executed only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if not args.html_only:
            stems = args.only or chapter_notebooks()
            unknown = [s for s in stems if not (NOTEBOOKS / f"{s}.ipynb").exists()]
            if unknown:
                raise ConfigError(f"no notebook(s) {unknown} in notebooks/ (known: {sorted(p.stem for p in NOTEBOOKS.glob('*.ipynb'))})")
            cli = {name: _coerce(value) for name, value in args.p}
            run_notebooks(stems, notebook_parameters(stems, args.profile, cli, args.f))
        generated_pages(args.profile)          # after the notebooks: the scoreboard reads their summaries
        if not args.no_html:
            index = build_html()
            print(f"[book] built {index} in {time.perf_counter() - t0:.0f} s")
    except ReprolibError as e:
        print(f"reprolib book: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
