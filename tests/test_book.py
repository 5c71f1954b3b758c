"""The book pipeline: every chapter notebook executed through papermill on the tiny zoo with
non-default parameters (assertions on what it wrote), the runner's staging and failure handling,
parameter layering, and the LATA run mapping the notebooks rely on."""

from __future__ import annotations

import json

import nbformat
import pytest
import torch

from reprolib import book, lata
from reprolib.published import load_published


NOTEBOOK_PARAMS = {   # non-default parameters of each chapter notebook
    "lata_learning": {"tables": "table3", "sigma": 0.9, "n_seeds": 3},
    "lata_forgetting": {"sigma": 0.999, "lam_ta": 0.6, "languages": "lang_a,lang_c"},
    "zoo": {"eval_size": 4, "groups": "core,lata,m3"},
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_zoo):
    """Every chapter notebook executed once through papermill on the tiny zoo: {stem: (notebook, results dir)}."""
    tmp = tmp_path_factory.mktemp("book")
    out = {}
    for stem in book.chapter_notebooks():
        common = {"profile": "tiny", "zoo_root": str(tiny_zoo.root.parent), "cache_dir": str(tmp / "cache"),
                  "out_dir": str(tmp / "results"), "eval_size": 6}
        declared = book.declared_parameters(stem)
        params = {k: v for k, v in {**common, **NOTEBOOK_PARAMS.get(stem, {})}.items() if k in declared}
        path = tmp / "executed" / f"{stem}.ipynb"
        path.parent.mkdir(exist_ok=True)
        book.execute(stem, params, path, timeout=900)
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.papermill.parameters == params
        out[stem] = (nb, tmp / "results" / "tiny")
    return out


def _outputs(nb, mime):
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and mime in o.get("data", {})]


def test_every_chapter_notebook_is_tested():
    assert set(book.chapter_notebooks()) == {"zoo", "lata_learning", "lata_forgetting"}


def test_lata_learning_notebook(executed, tiny_zoo):
    nb, results = executed["lata_learning"]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["sigma"] == 0.9 and summary["tables"] == ["table3"] and summary["seeds"] == [0, 1, 2]
    # Fig. 5: 8 blocks x 3 experts x 3 seeds, ranks a permutation of 1..8, threshold weights follow sigma = 0.9
    layers = summary["layers"]
    assert len(layers) == 8 * 3 * 3
    for expert in ("ua", "math", "code"):
        ranks = sorted(r["rank"] for r in layers if r["expert"] == expert and r["seed"] == 0)
        assert ranks == list(range(1, 9))
    assert all(r["w_threshold"] == (0.0 if r["cosine"] >= 0.9 else 1.0) for r in layers)
    # Table 3: the paper's 20 rows for each of the 3 seeds, each scored on exactly the metrics of its tasks
    rows = summary["results"]["table3"]
    assert len(rows) == 20 * 3 and [r["seed"] for r in rows] == [0] * 20 + [1] * 20 + [2] * 20
    paper = next(t for t in load_published("lata")["tables"] if t["id"] == "table3")
    assert [(r["tasks"], r["method"]) for r in rows[:20]] == [(p["tasks"], p["method"].replace(" (Ours)", "")) for p in paper["rows"]]
    for r in rows:
        assert r["ppl"] > 1
        assert (r["harm"] is not None) == ("UA" in r["tasks"]) and (r["harm"] is None or 1 <= r["harm"] <= 5)
        assert (r["math"] is not None) == ("Math" in r["tasks"])   # strict JSON: a metric that does not apply is null
    # the stored TA score equals an independent merge + evaluation of the same models
    models = lata.Models("tiny", root=tiny_zoo.root.parent, progress=False)
    sd = models.state_dict
    from reprolib.evals.generate import task_scores
    from reprolib.merge.methods import task_arithmetic

    merged = {k: task_arithmetic(sd("instruct")[k], [sd("ua")[k] - sd("instruct")[k], sd("math")[k] - sd("instruct")[k]], [1.5, 0.5])
              for k in sd("instruct")}
    model = models.load("instruct")
    model.load_state_dict(merged, strict=False)
    model.tie_weights()
    ours = task_scores(model, models.tokenizer(), lata.learning_sets(6), ("ua", "math"))
    assert rows[0]["ppl"] == pytest.approx(ours["ppl"], rel=1e-5) and rows[0]["math"] == ours["math"]
    verdicts = {v["claim"]: v for v in summary["verdicts"]}
    assert set(verdicts) == {"fig5_late_layers", "table3_best_utility"}
    assert all(v["verdict"] in ("reproduced", "not reproduced", "inconclusive") and v["n"] == 3 for v in verdicts.values())
    assert (results / "fig5_layers.png").read_bytes()[:4] == b"\x89PNG"
    # the page shows the banner, the paper's numbers beside ours, and a figure
    html = "\n".join(_outputs(nb, "text/html"))
    assert "ppl paper" in html and "ppl ours" in html and "11.46" in html   # Table 3's first TA perplexity
    assert any("Scale of this page: tiny zoo" in m for m in _outputs(nb, "text/markdown"))
    assert _outputs(nb, "image/png")


def test_lata_forgetting_notebook(executed, tiny_zoo):
    nb, results = executed["lata_forgetting"]
    summary = json.loads((results / "forgetting_summary.json").read_text())
    assert summary["languages"] == ["lang_a", "lang_c"] and summary["lam_ta"] == 0.6
    rows = summary["forgetting"]
    assert len(rows) == 2 * 5 * 3
    assert {r["method"] for r in rows} == {"original", "TA negation (λ=0.6)", "DARE negation (λ=0.6, p=0.3)",
                                           "Safety Arithmetic (λ=0.5, top 10%)", "LATA threshold (σ=0.999, λ=1)"}
    assert all(1 <= r["harm"] <= 5 and r["ppl"] > 1 for r in rows)
    # 'original' is the language target itself, scored independently here
    from reprolib.zoo.report import language_scores

    models = lata.Models("tiny", root=tiny_zoo.root.parent, progress=False)
    direct = language_scores(models.load("lang_a"), models.tokenizer(), lata.learning_sets(6), "lang_a")
    orig = next(r for r in rows if r["method"] == "original" and r["language"] == "lang_a" and r["seed"] == 0)
    assert orig["ppl"] == pytest.approx(direct["ppl"], rel=1e-5) and orig["harm"] == direct["harm_score"]
    # σ = 0.999 is above every tiny UA cosine, so the pure vector holds every block of the UA vector
    assert all(v == 1.0 for v in summary["retained_below_sigma"].values())
    # ... and LATA's merge equals TA negation at λ = 1 on every block tensor, leaving the embeddings alone
    from reprolib.merge import merge_state_dicts

    sd = models.state_dict
    lata_sd, _ = merge_state_dicts("lata", [sd("ua")], base=sd("base"), target=sd("lang_a"), instruct=sd("instruct"),
                                   params={"scheme": "threshold", "sigma": 0.999}, model_params=[{"weight": -1.0}])
    for k, v in lata_sd.items():
        expected = sd("lang_a")[k] - (sd("ua")[k] - sd("instruct")[k]) if ".layers." in k else sd("lang_a")[k]
        assert torch.allclose(v, expected, atol=1e-6), k
    assert summary["verdicts"][0]["claim"] == "forgetting_harm"
    assert _outputs(nb, "image/png")


def test_zoo_notebook(executed, tiny_zoo):
    nb, _ = executed["zoo"]
    html = "\n".join(_outputs(nb, "text/html"))
    assert "<td>ptm</td>" not in html and "<td>general</td>" not in html
    for name in tiny_zoo.names(("core", "lata", "m3")):
        assert f"<td>{name}</td>" in html or f">{name}</th>" in html


def test_html_build_is_complete_and_offline(executed, tmp_path, monkeypatch):
    """jupyter-book on the executed notebooks: every page built, banner, tables, figures and math
    present, no external asset; a second build replaces the first only when it succeeds."""
    import shutil

    from reprolib.bookassets import check_offline

    src = tmp_path / "book"
    shutil.copytree(book.BOOK, src, ignore=shutil.ignore_patterns("_build", "executed", ".staging-*", ".html-*"))
    (src / "executed").mkdir()
    for stem, (nb, _) in executed.items():
        nbformat.write(nb, src / "executed" / f"{stem}.ipynb")
    monkeypatch.setattr(book, "BOOK", src)
    monkeypatch.setattr(book, "EXECUTED", src / "executed")
    book.generated_pages("tiny")
    index = book.build_html(log=lambda *_: None)
    html = index.parent
    assert check_offline(html) == []
    page = (html / "executed" / "lata_learning.html").read_text()
    assert "Scale of this page: tiny zoo" in page and "ppl paper" in page and "<img" in page
    assert "mathjax/tex-mml-chtml.js" in page and "cdn" not in page.split("mathjax/tex-mml-chtml.js")[0][-200:]
    for stem in executed:
        assert (html / "executed" / f"{stem}.html").exists()
    assert "This build" in (html / "reproduce.html").read_text()
    # a failing HTML build (a page with an unknown directive: a warning, an error under -W) leaves the previous one
    (src / "reproduce.md").write_text((src / "reproduce.md").read_text() + "\n```{no-such-directive}\n```\n")
    with pytest.raises(book.NotebookError):
        book.build_html(log=lambda *_: None)
    assert index.exists() and "Scale of this page" in (html / "executed" / "lata_learning.html").read_text()


def _tiny_notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x: int = 1  # a number"), nbformat.v4.new_code_cell(source)]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_names_cell_and_keeps_previous_build(tmp_path, monkeypatch):
    nbs, executed = tmp_path / "notebooks", tmp_path / "book" / "executed"
    nbs.mkdir()
    executed.mkdir(parents=True)
    _tiny_notebook(nbs / "good.ipynb", "print(x * 2)")
    _tiny_notebook(nbs / "bad.ipynb", "y = x\n1 / 0")
    (executed / "good.ipynb").write_text("previous build")
    monkeypatch.setattr(book, "NOTEBOOKS", nbs)
    monkeypatch.setattr(book, "BOOK", tmp_path / "book")
    monkeypatch.setattr(book, "EXECUTED", executed)
    monkeypatch.setattr(book, "ROOT", tmp_path)
    with pytest.raises(book.NotebookError, match=r"notebooks/bad.ipynb failed in cell 2 \(execution count 2; it begins `y = x`\): ZeroDivisionError"):
        book.run_notebooks(["good", "bad"], {"good": {"x": 3}, "bad": {}}, log=lambda *_: None)
    assert (executed / "good.ipynb").read_text() == "previous build"
    assert not (executed / "bad.ipynb").exists()
    assert not list((tmp_path / "book").glob(".staging-*"))
    book.run_notebooks(["good"], {"good": {"x": 3}}, log=lambda *_: None)
    nb = nbformat.read(executed / "good.ipynb", as_version=4)
    assert nb.cells[-1].outputs[0]["text"].strip() == "6"
    assert nb.metadata.reprolib.parameters == {"x": 3} and nb.metadata.reprolib.commit


def test_parameters_are_layered_and_checked(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("sigma: 0.8\nlam_ta: 0.7\n")
    params = book.notebook_parameters(["lata_forgetting", "lata_learning"], "mini", {"sigma": 0.9}, [f])
    assert params["lata_forgetting"]["sigma"] == 0.9 and params["lata_forgetting"]["lam_ta"] == 0.7
    assert "lam_ta" not in params["lata_learning"] and params["lata_learning"]["eval_size"] == 100
    with pytest.raises(book.ConfigError, match="not declared"):
        book.notebook_parameters(["zoo"], "mini", {"sigma": 0.9})
    assert book._coerce("0.9") == 0.9 and book._coerce("lang_a,lang_b") == "lang_a,lang_b"


@pytest.mark.parametrize("method,registry,params,model_params", [
    ("TA", "task_arithmetic", {}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("DARE", "dare_linear", {"drop_rate": 0.3}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("TIES", "ties", {}, [{"weight": 1.5, "density": 0.7}, {"weight": 0.5, "density": 0.7}]),
    ("DARE + TIES", "dare_ties", {"drop_rate": 0.1}, [{"weight": 1.5, "density": 0.9}, {"weight": 0.5, "density": 0.9}]),
    ("LATA (Ours)", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "ta"}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("LATA + TIES", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "ties"},
     [{"weight": 1.5, "density": 0.7}, {"weight": 0.5, "density": 0.7}]),
    ("LATA + DARE + TIES", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "dare_ties", "drop_rate": 0.1},
     [{"weight": 1.5, "density": 0.9}, {"weight": 0.5, "density": 0.9}]),
])
def test_paper_rows_map_to_registry_merges(method, registry, params, model_params):
    row = {"tasks": "UA + Math", "method": method, "lambda": {"ua": 1.5, "math": 0.5},
           "p": {"DARE": 0.3, "DARE + TIES": 0.1}.get(method), "k": {"TIES": 0.7, "DARE + TIES": 0.9}.get(method),
           "lata_variant": "linear-drop-by-rank" if method.startswith("LATA") else None}
    run = lata.run_from_row(row)
    assert run.tasks == ("ua", "math") and run.label == "UA + Math"
    assert run.merge_args() == (registry, params, model_params)
    from reprolib.merge.registry import get_method

    get_method(registry).resolve(params, model_params)   # every mapped configuration validates


def test_every_published_row_maps_to_a_run():
    for table in load_published("lata")["tables"][2:]:
        for run in lata.paper_table_runs(table):
            assert run.merge_args()[0] in ("task_arithmetic", "dare_linear", "ties", "dare_ties", "lata")


def test_table_runs_and_verdicts_cover_every_table():
    tables = {t["id"]: t for t in load_published("lata")["tables"]}
    assert set(lata.TABLE_CLAIMS) == {f"table{i}" for i in range(3, 16)}
    claim_ids = {c["id"] for c in load_published("lata")["claims"]}
    assert set(lata.TABLE_CLAIMS.values()) <= claim_ids
    runs = lata.table_runs(tables, "table4", seeds=[0, 1, 2])
    assert len(runs) == 12 * 3 + 4 * 3 and {r.method for r in runs[36:]} == {"LATA"}
    assert [r.seed for r in runs[:13]] == [0] * 12 + [1]
