"""Build the book: execute the chapter notebooks with papermill, then jupyter-book (execution off).

    python -m reprolib book [--profile mini] [--only lata_learning] [-p sigma 0.9] [-f params.yaml] [--no-html]

Parameters of a notebook come, later ones winning, from ``notebooks/params/<profile>.yaml``
(``all:`` then the notebook's own section), then ``-f`` files, then ``-p name value`` pairs. A
parameter given in a ``-f`` file or with ``-p`` must be declared by at least one selected notebook.
Every value is checked, before anything runs, against the type of the parameter's default in the
notebook's ``parameters`` cell: an int stays an int, a float accepts an int, a bool is only
true/false, a str is taken as written; lists and mappings come only from ``-f`` files. A count or
size (``n_*``, ``num_*``, ``*_size``, ``*_count``) must be at least 1. The profile is checked
first too (a zoo profile name, or a paper profile whose every checkpoint is valid).

Notebooks run into a staging folder; only when every selected notebook succeeded are they moved
into ``book/executed/``. The generated pages (``book/_generated``) are written to a staging folder
and swapped in only then, and put back as they were if the HTML build fails. The HTML is built
into a staging folder too and swapped into ``book/_build`` only when jupyter-book succeeds, so a
failure never leaves a half-built book.
"""

from __future__ import annotations

import ast
import math
import os
import re
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


TYPES = (bool, int, float, str, list, dict)
COUNT = re.compile(r"^(n|num)_|_(size|count)$")      # names of counts and sizes: at least 1


def parameter_types(declared: dict) -> dict[str, type | None]:
    """Each parameter's type: that of its default in the ``parameters`` cell, else its annotation's
    (None: unchecked, e.g. a default of None)."""
    types = {}
    for name, spec in declared.items():
        try:
            kind = type(ast.literal_eval(spec.get("default") or ""))
        except (ValueError, SyntaxError, TypeError):
            kind = None
        if kind not in TYPES:
            kind = {t.__name__: t for t in TYPES}.get(spec.get("inferred_type_name"))
        types[name] = kind
    return types


def _kind_name(kind: type) -> str:
    return {bool: "a bool (true or false)", int: "an int", float: "a float (or int)", str: "a str",
            list: "a list", dict: "a mapping"}[kind]


def _from_cli(raw: str, kind: type | None, where: str):
    """A ``-p`` value (always a string) read as ``kind``."""
    if kind is None:
        return _coerce(raw)
    if kind is str:
        return raw
    if kind is bool and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if kind is int and re.fullmatch(r"[+-]?[0-9]+", raw.strip()):
        return int(raw)
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            pass
    if kind in (list, dict):
        raise ConfigError(f"{where}: a {kind.__name__} parameter; give it in a -f YAML file, not with -p")
    raise ConfigError(f"{where}: expected {_kind_name(kind)}, got {raw!r}")


def check_parameter(stem: str, name: str, value, spec: dict, kind: type | None, source: str):
    """``value`` of parameter ``name`` (from ``source``) for notebook ``stem``, checked against the
    notebook's declaration; ConfigError names the parameter, the notebook and the expected type."""
    where = f"parameter '{name}' of notebook {stem} (from {source}; default {spec.get('default')})"
    if source == "-p" and isinstance(value, str):
        value = _from_cli(value, kind, where)
    if kind is None:
        return value
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{where}: expected {_kind_name(kind)}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite float, got {value!r}")
    if kind is int and COUNT.search(name) and value < 1:
        raise ConfigError(f"{where}: a count or size must be an int of at least 1, got {value!r}")
    return value


def _params_file(f: str | Path, sections: bool = False) -> dict:
    """A YAML file of ``{name: value}`` (``sections``: ``{notebook or 'all': {name: value}}``)."""
    try:
        raw = yaml.safe_load(Path(f).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"params file {f}: unreadable ({' '.join(str(e).split())})") from e
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        shape = "{notebook: {name: value}}" if sections else "{name: value}"
        raise ConfigError(f"params file {f}: must be a YAML mapping {shape}, got a {type(raw).__name__}")
    mappings = {"": raw}
    if sections:
        for section, values in raw.items():
            if values is not None and not isinstance(values, dict):
                raise ConfigError(f"params file {f}: section {section!r} must be a mapping {{name: value}}, "
                                  f"got a {type(values).__name__}")
        mappings.update({str(k): v for k, v in raw.items() if v})
    for d in mappings.values():
        bad = [k for k in d if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"params file {f}: names must be strings, got {bad[0]!r}")
    return raw


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def notebook_parameters(stems: list[str], profile: str, cli: dict, files=()) -> dict[str, dict]:
    """Per notebook: the parameters to inject (only the ones it declares), each checked
    (``check_parameter``). ``cli``: ``-p`` values (strings, read by type) or already-typed values."""
    profile_file = NOTEBOOKS / "params" / f"{Path(profile).name}.yaml"
    layered = _params_file(profile_file, sections=True) if profile_file.exists() else {}
    given = [(f"params file {f}", _params_file(f)) for f in files] + [("-p", dict(cli))]
    declared = {stem: declared_parameters(stem) for stem in stems}
    known = set().union(*declared.values())
    for source, values in given:
        if "profile" in values:
            raise ConfigError(f"{source}: give the profile with --profile (checked before anything runs), "
                              "not as a parameter")
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: parameter(s) {unknown} are not declared by notebook(s) {stems}; "
                              f"see `papermill --help-notebook notebooks/<name>.ipynb`")
    out = {}
    for stem in stems:
        types = parameter_types(declared[stem])
        where = _shown(profile_file)
        layers = [("--profile", {"profile": profile}), (f"{where} all:", layered.get("all") or {}),
                  (f"{where} {stem}:", layered.get(stem) or {}), *given]
        params = {}
        for source, values in layers:
            for name, value in values.items():
                if name in declared[stem]:
                    params[name] = check_parameter(stem, name, value, declared[stem][name], types[name], source)
        out[stem] = params
    return out


def check_profile(profile: str) -> str:
    """The ``--profile`` value, checked before anything runs: a zoo profile's name, or the absolute
    path of a paper-profile YAML whose every checkpoint passes ``load_paper_profile``."""
    from reprolib.paths import project_path
    from reprolib.zoo.build import PROFILES
    from reprolib.zoo.profiles import load_paper_profile, load_profile_evals

    if profile in PROFILES:
        return profile
    path = project_path(profile)
    if not path.is_file():
        raise ConfigError(f"--profile {profile!r} is neither a zoo profile ({', '.join(PROFILES)}) "
                          "nor a paper-profile YAML file")
    load_paper_profile(path)
    load_profile_evals(path)
    return str(path.absolute())


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

    from reprolib.buildstate import code_digest

    nb = nbformat.read(out, as_version=4)
    nb.metadata["reprolib"] = {"commit": git_commit(), "code": code_digest(ROOT),
                               "executed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "parameters": params}
    nbformat.write(nb, out)
    return time.perf_counter() - t0


def stale_pages() -> dict[str, str]:
    """Executed chapters run on other code than the working tree's ``reprolib/`` (by its digest; by the
    commit for pages executed before the digest was recorded): {stem: the commit they ran at}."""
    import nbformat

    from reprolib.buildstate import code_digest

    commit, code, out = git_commit(), code_digest(ROOT), {}
    for stem in chapter_notebooks():
        path = EXECUTED / f"{stem}.ipynb"
        if path.exists():
            meta = nbformat.read(path, as_version=4).metadata.get("reprolib", {})
            if (meta["code"] != code) if "code" in meta else (meta.get("commit", "unknown") != commit):
                out[stem] = meta.get("commit", "unknown")
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
        log(f"[book] WARNING: book/executed/{stem}.ipynb was executed at reprolib {commit}, on other code than this "
            f"checkout's ({git_commit()}); "
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


def generated_pages(profile: str, gen: Path | None = None) -> Path:
    """Pages made from code, into ``gen`` (default ``book/_generated``): the methods table, the
    scoreboard, and the build banner included by the Markdown pages."""
    from reprolib.kit import scoreboard
    from reprolib.merge.registry import methods_markdown

    gen = gen or BOOK / "_generated"
    gen.mkdir(exist_ok=True)
    (gen / "methods.md").write_text(methods_markdown() + "\n")
    (gen / "scoreboard.md").write_text(scoreboard.markdown(scoreboard.collect(ROOT / "results", profile), profile) + "\n")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (gen / "build.md").write_text(
        f"```{{admonition}} This build\n:class: note\nProfile **{profile}**, built {when} from reprolib {git_commit()}. "
        "Every chapter page states the scale its numbers were computed at; numbers marked *paper* are the "
        "publications' own, transcribed.\n```\n")
    return gen


def publish(profile: str, html: bool = True, log=print) -> Path | None:
    """Generate the pages into a staging folder and swap them into ``book/_generated``; with
    ``html``, build the book, and put the previous pages back if the build fails."""
    gen, tag = BOOK / "_generated", uuid.uuid4().hex[:8]
    # beside book/, not in it: jupyter-book would read any folder of pages inside book/ as documents
    staged, old = BOOK.parent / f".book-generated-{tag}", BOOK.parent / f".book-generated-old-{tag}"
    try:
        generated_pages(profile, staged)
        if gen.exists():
            os.replace(gen, old)
        try:
            os.replace(staged, gen)
            return build_html(log) if html else None
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)
            if old.exists():
                os.replace(old, gen)
            raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="reprolib book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="mini", help="zoo profile (mini, tiny) or a paper-profile YAML")
    ap.add_argument("--only", nargs="*", help="notebooks to (re-)execute (default: all chapters)")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a notebook parameter")
    ap.add_argument("-f", action="append", default=[], metavar="YAML", help="a YAML file of notebook parameters")
    ap.add_argument("--no-html", action="store_true", help="execute notebooks only")
    ap.add_argument("--html-only", action="store_true", help="rebuild the HTML from book/executed only")
    ap.add_argument("--execute-only", action="store_true",
                    help="execute notebooks into book/executed and write no page (several may run at once: "
                         "python -m reprolib.stages)")
    ap.add_argument("--executor", choices=["local", "ray"], default=None,
                    help="where the chapters' merge+evaluation grids run: here (default) or one Ray task per "
                         "point (RAY_ADDRESS joins a cluster; see reprolib.kit.executors)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.executor:
        os.environ["REPROLIB_EXECUTOR"] = args.executor    # read by open_chapter in every notebook's kernel
    try:
        profile = check_profile(args.profile)   # before anything runs or is written
        if not args.html_only:
            stems = args.only or chapter_notebooks()
            unknown = [s for s in stems if not (NOTEBOOKS / f"{s}.ipynb").exists()]
            if unknown:
                raise ConfigError(f"no notebook(s) {unknown} in notebooks/ (known: {sorted(p.stem for p in NOTEBOOKS.glob('*.ipynb'))})")
            run_notebooks(stems, notebook_parameters(stems, profile, dict(args.p), args.f))
        if args.execute_only:
            return 0
        index = publish(args.profile, html=not args.no_html)   # after the notebooks: the scoreboard reads their summaries
        if index:
            print(f"[book] built {index} in {time.perf_counter() - t0:.0f} s")
    except ReprolibError as e:
        print(f"reprolib book: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
