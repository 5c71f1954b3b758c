"""The book runner and the results cache under hostile input: malformed params files, parameter
values of the wrong type, corrupt cache entries, and profiles that fail.

Every error is one line naming the culprit (file, parameter, notebook, profile), raised before any
notebook runs, and nothing in book/ changes unless the build succeeds."""

from __future__ import annotations

import json
import logging
import re
import shutil

import nbformat
import pytest

from reprolib import book
from reprolib.cache import ResultCache


@pytest.fixture
def book_dir(tmp_path, monkeypatch):
    """A copy of book/ (sources and generated pages) that the runner writes to; nothing may run."""
    src = tmp_path / "book"
    shutil.copytree(book.BOOK, src, ignore=shutil.ignore_patterns("_build", "executed", "_static", ".staging-*",
                                                                  ".html-*"))
    (src / "_generated").mkdir(exist_ok=True)
    (src / "_generated" / "build.md").write_text("previous banner\n")
    monkeypatch.setattr(book, "BOOK", src)
    monkeypatch.setattr(book, "EXECUTED", src / "executed")
    monkeypatch.setattr(book, "run_notebooks", lambda *a, **k: pytest.fail("a notebook ran"))
    monkeypatch.setattr(book, "build_html", lambda *a, **k: pytest.fail("the HTML was built"))
    return src


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def _fails(argv, capsys, *patterns) -> str:
    """Run ``reprolib book argv``: exit 1 with a one-line error matching every pattern."""
    assert book.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("reprolib book: error: "), err
    for p in patterns:
        assert re.search(p, err), (p, err)
    return err


@pytest.mark.parametrize("text, kind", [("- eval_size\n- 3\n", "list"), ("3\n", "int"), ("just words\n", "str")])
def test_params_file_that_is_not_a_mapping(book_dir, tmp_path, capsys, text, kind):
    f = tmp_path / "params.yaml"
    f.write_text(text)
    before = _tree(book_dir)
    _fails(["--only", "zoo", "-f", str(f)], capsys, re.escape(f"params file {f}: must be a YAML mapping"), f"got a {kind}")
    assert _tree(book_dir) == before


def test_params_file_with_malformed_yaml(book_dir, tmp_path, capsys):
    f = tmp_path / "params.yaml"
    f.write_text("eval_size: [1, 2\nsigma: 0.9\n")
    before = _tree(book_dir)
    _fails(["--only", "zoo", "-f", str(f)], capsys, re.escape(f"params file {f}: unreadable"))
    assert _tree(book_dir) == before


@pytest.mark.parametrize("name, value, expected", [
    ("eval_size", "abc", "expected an int, got 'abc'"),
    ("eval_size", "2.5", "expected an int"),
    ("n_seeds", "-3", "a count or size must be an int of at least 1, got -3"),
    ("eval_size", "0", "at least 1"),
    ("sigma", "high", r"expected a float \(or int\)"),
    ("sigma", "nan", "expected a finite float"),
])
def test_cli_value_of_the_wrong_type_is_refused_before_anything_runs(book_dir, capsys, name, value, expected):
    before = _tree(book_dir)
    _fails(["--only", "lata_learning", "-p", name, value], capsys,
           rf"parameter '{name}' of notebook lata_learning \(from -p; default", expected)
    assert _tree(book_dir) == before


@pytest.mark.parametrize("line, expected", [
    ("eval_size: 2.5", r"parameter 'eval_size' of notebook lata_learning \(from params file .*\): expected an int"),
    ("sigma: true", r"parameter 'sigma' of notebook lata_learning .*expected a float \(or int\), got True"),
    ("tables: [table3]", r"parameter 'tables' of notebook lata_learning .*expected a str, got \['table3'\]"),
    ("n_seeds: 0", r"parameter 'n_seeds' of notebook lata_learning .*at least 1"),
])
def test_params_file_value_of_the_wrong_type(book_dir, tmp_path, capsys, line, expected):
    f = tmp_path / "params.yaml"
    f.write_text(line + "\n")
    before = _tree(book_dir)
    err = _fails(["--only", "lata_learning", "-f", str(f)], capsys, expected)
    assert str(f) in err
    assert _tree(book_dir) == before


@pytest.mark.parametrize("args, expected", [
    (["-f", "{file}"], r"params file {file}: parameter\(s\) \['sigmaa'\] are not declared"),
    (["-p", "nosuch", "1"], r"-p: parameter\(s\) \['nosuch'\] are not declared"),
    (["-p", "profile", "tiny"], r"-p: give the profile with --profile"),
])
def test_unknown_parameter_names_are_refused(book_dir, tmp_path, capsys, args, expected):
    f = tmp_path / "params.yaml"
    f.write_text("sigma: 0.9\nsigmaa: 0.8\n")
    before = _tree(book_dir)
    _fails(["--only", "lata_learning", *[a.format(file=f) for a in args]], capsys,
           expected.format(file=re.escape(str(f))))
    assert _tree(book_dir) == before


def test_values_take_the_type_of_the_notebook_default(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("lam_ta: 1\n")
    params = book.notebook_parameters(["lata_learning", "lata_forgetting"], "mini",
                                      {"sigma": "1", "tables": "3", "eval_size": "7", "languages": "yes"}, [f])
    learning, forgetting = params["lata_learning"], params["lata_forgetting"]
    assert learning["sigma"] == 1.0 and isinstance(learning["sigma"], float)
    assert learning["tables"] == "3" and learning["eval_size"] == 7 and forgetting["languages"] == "yes"
    assert forgetting["lam_ta"] == 1.0 and isinstance(forgetting["lam_ta"], float)


def test_bool_list_and_count_parameters(tmp_path, monkeypatch):
    """bool only from true/false, lists only from -f files, counts at least 1, checked per notebook."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("flag = False\nitems = [1]\nn_rows = 2\nlabel = None")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbs / "toy.ipynb")
    monkeypatch.setattr(book, "NOTEBOOKS", nbs)
    params = lambda cli, *files: book.notebook_parameters(["toy"], "mini", cli, files)["toy"]  # noqa: E731
    assert params({"flag": "TRUE", "label": "3"}) == {"flag": True, "label": 3}        # label: default None, unchecked
    with pytest.raises(book.ConfigError, match=r"parameter 'flag' of notebook toy \(from -p; default False\): expected a bool \(true or false\), got 'yes'"):
        params({"flag": "yes"})
    with pytest.raises(book.ConfigError, match=r"parameter 'items' of notebook toy .*give it in a -f YAML file"):
        params({"items": "[1, 2]"})
    f = tmp_path / "p.yaml"
    f.write_text("items: [1, 2]\nn_rows: 3\n")
    assert params({}, f)["items"] == [1, 2]
    f.write_text("flag: 1\n")
    with pytest.raises(book.ConfigError, match=rf"parameter 'flag' of notebook toy \(from params file {re.escape(str(f))}.*expected a bool"):
        params({}, f)
    f.write_text("n_rows: -1\n")
    with pytest.raises(book.ConfigError, match=r"parameter 'n_rows' of notebook toy .*at least 1, got -1"):
        params({}, f)


@pytest.mark.parametrize("content", [b"", b'{"config": {"method": "ti', b"[1, 2]", b'{"config": {"method": "ties"}}',
                                     b'{"config": {"method": "ties"}, "result": null}', b"\xff\xfe\x00garbage"])
def test_corrupt_cache_entry_is_a_logged_miss_and_replaced(tmp_path, caplog, content):
    cache = ResultCache(tmp_path, "ns")
    cfg = {"method": "ties"}
    entry = cache.path(cfg)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(content)
    calls = []
    with caplog.at_level(logging.WARNING, logger="reprolib.cache"):
        assert cache.get_or_compute(cfg, lambda: calls.append(1) or {"score": 0.5}) == {"score": 0.5}
    assert calls == [1] and cache.misses == 1
    assert str(entry) in caplog.text and "corrupt" in caplog.text
    stored = json.loads(entry.read_text())
    assert stored["config"] == cfg and stored["result"] == {"score": 0.5}
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]          # no temporary file left
    assert cache.get_or_compute(cfg, lambda: pytest.fail("recomputed")) == {"score": 0.5}


@pytest.mark.parametrize("extra", [[], ["--html-only"], ["--no-html"]])
def test_bogus_profile_writes_nothing(book_dir, capsys, extra):
    before = _tree(book_dir)
    _fails(["--profile", "bogus", *extra], capsys, r"--profile 'bogus' is neither a zoo profile \(.*mini.*\) nor a paper-profile")
    assert _tree(book_dir) == before


def test_invalid_paper_profile_writes_nothing(book_dir, family, tmp_path, capsys):
    from foreign import write_paper_profile

    math = tmp_path / "math"
    shutil.copytree(family["math"], math)
    (math / "pytorch_model.bin").write_bytes(b"pickle")
    profile = write_paper_profile(tmp_path / "paper.yaml", {"base": family["base"], "math": math})
    before = _tree(book_dir)
    _fails(["--profile", str(profile), "--only", "lata_learning"], capsys,
           re.escape(f"{profile}: role 'math': {math} also holds pickle files (pytorch_model.bin)"))
    assert _tree(book_dir) == before


def test_failed_notebook_leaves_the_generated_pages(book_dir, capsys, monkeypatch):
    def fail(stems, params, log=print):
        raise book.NotebookError("notebook notebooks/zoo.ipynb failed in cell 3")

    monkeypatch.setattr(book, "run_notebooks", fail)
    before = _tree(book_dir)
    _fails(["--profile", "tiny", "--only", "zoo"], capsys, "notebooks/zoo.ipynb failed in cell 3")
    assert _tree(book_dir) == before


@pytest.mark.parametrize("had_pages", [True, False])
def test_failed_html_build_puts_the_generated_pages_back(book_dir, capsys, monkeypatch, had_pages):
    def fail(log=print):
        assert "Profile **tiny**" in (book_dir / "_generated" / "build.md").read_text()   # the build sees the new pages
        raise book.NotebookError("jupyter-book build failed (exit 1); book/_build is unchanged")

    if not had_pages:
        shutil.rmtree(book_dir / "_generated")
    monkeypatch.setattr(book, "build_html", fail)
    before = _tree(book_dir)
    _fails(["--profile", "tiny", "--html-only"], capsys, "jupyter-book build failed")
    assert _tree(book_dir) == before


def test_generated_pages_are_swapped_in_when_the_build_succeeds(book_dir, capsys, monkeypatch):
    seen = []

    def build_html(log=print):  # what jupyter-book would read: no staged or previous pages inside book/
        seen.extend(p.name for p in book_dir.iterdir() if p.name.startswith(".") and p.is_dir())
        return book_dir / "_build" / "html" / "index.html"

    monkeypatch.setattr(book, "build_html", build_html)
    assert book.main(["--profile", "tiny", "--html-only"]) == 0
    assert seen == []
    gen = book_dir / "_generated"
    assert "Profile **tiny**" in (gen / "build.md").read_text()
    assert sorted(p.name for p in gen.iterdir()) == ["build.md", "methods.md", "scoreboard.md"]
    assert not [p for p in book_dir.parent.iterdir() if p.name.startswith(".book-generated")]
