"""Re-read every transcribed τJp number from the seed text at its cited line.

``reprolib/papers/published/taujp.yaml`` transcribes "Mastering Task Arithmetic: τJp as a Key
Indicator for Weight Disentanglement" (seed ``004_cd57f75f532fba3d.txt``) with the conventions of the
M³ and PTM transcriptions. The seed lookup, the claim check (verbatim near the line, modulo margin
line-number residues) and the figure check are those of ``tests/test_published_seed.py``; the cell
comparison is the M³ ``check_row`` (``tests/test_published_m3.py``: every table in ``dash`` mode, a
printed ``-`` is null, the value cells compared by position as printed). This paper's tables differ in
layout, so each seed line is first normalised as follows, then handed to that ``check_row``:

* Captions are printed *above* the tables: ``caption_line`` < ``line`` (the header), and a table's body
  runs from the header to the first empty line. Every body line that carries data (a tab field starting
  with a digit, or with ``(`` and a digit) is a transcribed row or is named ("line N") in
  ``ocr_artifacts``; each row's line lies in the body and is cited by one row, except the lines listed in
  the table's ``shared_lines``.
* Markup: bold (``<b>84.5</b>``) and footnote marks (``<sup>2</sup>``) are dropped, as M³ drops ``<u>``.
* ``label_fields``: the leading tab fields are the row's labels, in that order (Table 1: method, then
  the coefficient). Each must print the label's value, or ``<value> (<citation>)`` with the citation of
  the YAML's top-level ``citations``, or be empty where the previous row has the same value (a method
  printed once for its group), or be quoted ('...') in the row's doubt (OCR-garbled names). They are then
  blanked, so ``check_row`` sees the value cells only and a printed "1.0" or "-" coefficient is not
  taken for a value.
* ``shared_lines``: one printed line holds several rows (Table 1's two Ours rows: "1.0 Grid-searched",
  "84.2 <b>84.5</b>", ...). A cell with as many space-separated tokens as rows cite the line gives its
  k-th token to the k-th of those rows (YAML order); a one-token cell ("Ours") belongs to all of them; any
  other cell is a mismatch.
* ``reference`` (Table 2): a row with ``reference: true`` must print every value cell in parentheses
  ("(10.9)"), any other row none; the parentheses are then dropped.
* ``flag_columns`` (Table 7): the trailing fields are booleans, read through the table's
  ``flag_prints`` ("✓" and the OCR form "1" true, "X" and the Cyrillic "Х" false).
* ``label_columns`` + ``value_columns`` + ``flag_columns`` + ``line`` are exactly the table's columns.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

from reprolib.published import load_published

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, under any import mode
from test_published_m3 import check_row as m3_check_row  # noqa: E402
from test_published_m3 import test_every_claim_is_quoted_from_its_line  # noqa: E402,F401  (collected here, on this data)
from test_published_seed import check_claims, check_figures, check_untranscribed, line_at, norm  # noqa: E402

MARKUP = re.compile(r"</?b>|\s*<sup>\d+</sup>")
PARENS = re.compile(r"\((-?\d+(?:\.\d+)?)\)")
ROTATED = {"mrpc": "cola", "rte": "mrpc", "cola": "rte"}   # Table 8's printed column -> the task it holds (notes)


@pytest.fixture(scope="module")
def data() -> dict:
    return load_published("taujp")


def rows_of(data: dict, tid: str) -> list[dict]:
    return next(t for t in data["tables"] if t["id"] == tid)["rows"]


# --------------------------------------------------------------------------- the cell checker


def fields_of(line: str) -> list[str]:
    return [MARKUP.sub("", f).strip() for f in line.split("\t")]


def split_shared(line: str, n: int, where: str, out: list[str]) -> list[str]:
    """The ``n`` rows printed on one line: a cell of ``n`` tokens gives its k-th token to row k."""
    lines: list[list[str]] = [[] for _ in range(n)]
    for cell in fields_of(line):
        tokens = cell.split()
        if len(tokens) == n:
            for k in range(n):
                lines[k].append(tokens[k])
        elif len(tokens) <= 1:
            for k in range(n):
                lines[k].append(cell)
        else:
            out.append(f"{where}: cell {cell!r} of a line shared by {n} rows splits into {len(tokens)} tokens: {line!r}")
            for k in range(n):
                lines[k].append(cell)
    return ["\t".join(cells) for cells in lines]


def check_row(table: dict, row: dict, line: str, out: list[str]) -> int:
    """Normalise one row's seed line (module docstring) and compare it with the M³ ``check_row``."""
    where = f"{table['id']} row line {row['line']}"
    doubt = row.get("doubt") or ""
    cells = fields_of(line)
    while cells and not cells[-1]:
        cells.pop()
    checked = 0

    label_fields = table.get("label_fields", [])
    index = next(i for i, r in enumerate(table["rows"]) if r is row)
    previous = table["rows"][index - 1] if index else {}
    for i, col in enumerate(label_fields):
        cell = cells[i] if i < len(cells) else ""
        value = row.get(col)
        checked += 1
        printed = [str(value)]
        if value in table.get("citations", {}):
            printed.append(f"{value} ({table['citations'][value]})")
        if cell in printed or f"'{cell}'" in doubt or (not cell and index and previous.get(col) == value):
            continue
        out.append(f"{where}: printed label {cell!r} in field {i} ({col}) is none of {printed}"
                   + (" (and an empty cell needs the previous row's value)" if not cell else "")
                   + f" and not quoted in the row's doubt: {line!r}")
    cells = [""] * len(label_fields) + cells[len(label_fields):]

    flags = table.get("flag_columns", [])
    if flags:
        tail = cells[len(cells) - len(flags):]
        for col, cell in zip(flags, tail):
            checked += 1
            if cell not in table["flag_prints"] or table["flag_prints"][cell] != row.get(col):
                out.append(f"{where}, column {col}: expected {row.get(col)}, seed prints {cell!r}: {line!r}")
        cells = cells[:len(cells) - len(flags)]

    if "reference" in table["columns"]:
        values = [c for c in cells[len(label_fields):] if c]
        in_parens = [bool(PARENS.fullmatch(c)) for c in values]
        if row.get("reference") and not all(in_parens):
            out.append(f"{where}: reference row, but not every value cell is in parentheses: {line!r}")
        if not row.get("reference") and any(in_parens):
            out.append(f"{where}: value cells printed in parentheses (a reference row) but reference is "
                       f"{row.get('reference')}: {line!r}")
        cells = [PARENS.sub(r"\1", c) if PARENS.fullmatch(c) else c for c in cells]

    return checked + m3_check_row(table, row, "\t".join(cells), out)


def check_table_lines(table: dict, seed: list[str], out: list[str]) -> int:
    """Header, caption above it, each row's line in the body (shared only where declared), every data
    line of the body transcribed; the cells of each row by ``check_row``."""
    tid, checked = table["id"], 0
    header = line_at(seed, table["line"])
    if header is None or "\t" not in header:
        out.append(f"{tid}: header line {table['line']} is not a tab-separated table line: {header!r}")
        return 0
    caption = line_at(seed, table.get("caption_line"))
    if caption is None or norm(caption) != norm(table["caption"]):
        out.append(f"{tid}: caption_line {table.get('caption_line')} reads {caption!r}, expected {table['caption']!r}")
    elif not table["caption_line"] < table["line"]:
        out.append(f"{tid}: caption_line {table['caption_line']} is not above the header (line {table['line']})")
    end = table["line"] + 1
    while end < len(seed) and seed[end].strip():
        end += 1
    groups: dict[int, list[dict]] = {}
    for row in table["rows"]:
        n = row.get("line")
        if line_at(seed, n) is None:
            out.append(f"{tid}: row line {n!r} is outside the seed ({len(seed) - 1} lines)")
            continue
        if not table["line"] < n < end:
            out.append(f"{tid} row line {n}: outside the table (header {table['line']}, body ends before {end})")
        groups.setdefault(n, []).append(row)
    shared = set(table.get("shared_lines", []))
    for n, group in groups.items():
        where = f"{tid} row line {n}"
        if len(group) > 1 and n not in shared:
            out.append(f"{where}: cited by more than one row")
        if n in shared and len(group) < 2:
            out.append(f"{where}: declared shared but cited by {len(group)} row")
        lines = split_shared(seed[n], len(group), where, out) if len(group) > 1 else [seed[n]]
        for row, line in zip(group, lines):
            checked += check_row(table, row, line, out)
    for n in shared - set(groups):
        out.append(f"{tid}: shared line {n} is cited by no row")
    check_untranscribed(table, seed, groups, end, fields_of, out, opening="(")
    return checked


def check_tables(data: dict, seed: list[str]) -> tuple[list[str], int]:
    out: list[str] = []
    checked = 0
    for table in data["tables"]:
        flags = table.get("flag_columns", [])
        declared = set(table["label_columns"]) | set(table["value_columns"]) | set(flags) | {"line"}
        if declared != set(table["columns"]):
            out.append(f"{table['id']}: label_columns + value_columns + flag_columns + line {sorted(declared)} "
                       f"!= columns {sorted(table['columns'])}")
        if not set(table.get("label_fields", [])) <= set(table["label_columns"]):
            out.append(f"{table['id']}: label_fields {table['label_fields']} not all in label_columns")
        if table["cells"] != "dash":
            out.append(f"{table['id']}: cells {table['cells']!r}; this paper's tables print nulls as '-' (dash)")
        checked += check_table_lines(dict(table, citations=data.get("citations", {})), seed, out)
    return out, checked


def test_every_table_cell_matches_the_seed(data, seed):
    mismatches, checked = check_tables(data, seed)
    n_values = sum((len(t["value_columns"]) + len(t.get("flag_columns", []))) * len(t["rows"]) for t in data["tables"])
    assert checked >= n_values, "fewer cells checked than the transcription holds"
    assert not mismatches, f"{len(mismatches)} mismatch(es) in {checked} cells checked:\n" + "\n".join(mismatches)


def test_the_transcription_is_complete(data):
    counts = {t["id"]: len(t["rows"]) for t in data["tables"]}
    assert counts == {"table1": 12, "table2": 9, "table3": 6, "table4": 5, "table5": 3, "table6": 3,
                      "table7": 4, "table8": 5, "table9": 5}
    assert {t["ref"] for t in data["tables"]} == {f"Table {i}" for i in range(1, 10)}
    methods = {r["method"] for r in rows_of(data, "table1")}
    assert methods == {"Pre-trained", "Individual", "MTL", "Non-lin. FT", "Linear FT", "Ties-Merging", "AdaMerging", "Ours"}
    assert {r["coef"] for r in rows_of(data, "table1")} == {"-", "1.0", "Grid-searched", "Trained"}
    assert [r["method"] for r in rows_of(data, "table2") if r["reference"]] == ["Non-lin. FT", "Linear FT"]
    assert all(isinstance(r["reference"], bool) for r in rows_of(data, "table2"))


# --------------------------------------------------------------------------- claims, figures, hyperparameters


def test_every_figure_caption_is_on_its_line(data, seed):
    mismatches, _ = check_figures(data, seed)
    assert [f["line"] for f in data["figures"]] == [179, 196, 417, 626, 688, 693, 698, 703]
    assert [f["ref"] for f in data["figures"]] == [f"Figure {i}" for i in range(1, 9)]
    assert all(f["values"] is None and f["description"] for f in data["figures"])
    assert not mismatches, "\n".join(mismatches)


def test_hyperparameter_source_lines_are_in_the_seed(data, seed):
    hp = data["hyperparameters"]
    assert all(line_at(seed, n) for n in hp["source_lines"])
    b1 = seed[554]
    for phrase in ("number of steps to 2000", "batch size to 128", "AdamW optimizer with a learning rate of 1e-5",
                   "weight decay of 0.1", "cosine annealing, incorporating 200 warm-up steps",
                   "consisted of all tasks except the target task, as well as ImageNet"):
        assert phrase in b1, phrase
    fv = hp["finetune_vision"]
    assert (fv["steps"], fv["batch_size"], fv["optimizer"], fv["lr"], fv["weight_decay"], fv["warmup_steps"]) == \
        (2000, 128, "AdamW", 1e-5, 0.1, 200)
    assert "batch size of 16, and training for 5 epochs" in seed[556] and "learning rate of 1 1e-5" in seed[556]
    assert (hp["finetune_nlp_negation"]["batch_size"], hp["finetune_nlp_negation"]["epochs"]) == (16, 5)
    reg = hp["regularizer"]
    assert "$\\frac{1}{8}$" in seed[558] and "$\\frac{1}{4}$  for NLP tasks" in seed[558]
    assert reg["batch_fraction"] == {"vision": 1 / 8, "nlp": 1 / 4}
    assert "[1e-3, 1e-2, 1e-1]" in seed[558] and reg["lambda_grid"] == [1e-3, 1e-2, 1e-1]
    assert "(Image: Cars, NLP: CoLA)" in seed[558] and reg["lambda_tuned_on"] == {"vision": "Cars", "nlp": "CoLA"}
    co = hp["coefficients"]
    assert "\\alpha \\in \\{0.0, 0.05, \\dots, 1.0\\}" in seed[562] and "\\alpha \\in \\{0.0, 0.1, \\dots, 3.0\\}" in seed[562]
    assert co["addition_grid"] == {"start": 0.0, "stop": 1.0, "step": 0.05}
    assert co["negation_grid"] == {"start": 0.0, "stop": 3.0, "step": 0.1}
    assert "\\alpha_1 = \\alpha_2 = \\cdots = \\alpha_T" in seed[562] and co["unified"] is True
    for grid, n in (("addition_grid", 21), ("negation_grid", 31)):
        g = co[grid]
        assert round((g["stop"] - g["start"]) / g["step"]) + 1 == n
    sel = seed[566]
    assert "highest normalized accuracy on the validation split" in sel
    assert "at least 95% of the pre-trained model's accuracy on the control task (ImageNet) validation split" in sel
    assert "largest coefficient that kept the perplexity on WikiText-103 within 0.5 of the pre-trained model's perplexity" in sel
    tox = hp["toxicity_eval"]
    assert "1000 text samples" in seed[570] and tox["samples"] == 1000
    assert f'the prefix "{tox["prefix"]}," and Detoxify' in seed[572]
    assert "toxicity score of 0.5 or higher" in seed[572] and tox["toxic_threshold"] == 0.5
    assert all(task in seed[181] for task in hp["vision_tasks"]) and len(hp["vision_tasks"]) == 8
    assert "(MRPC, RTE, CoLA, SST-2)" in seed[221] and "T5-small" in seed[253] and "GPT-2 small" in seed[253]
    assert "toxicity scores above 0.8" in seed[253] and "ImageNet" in seed[219]


# --------------------------------------------------------------------------- identities between tables


def test_table7_accuracies_are_table1_grid_searched_abs_except_linear_ft_l14(data):
    t1 = {(r["method"], r["coef"]): r for r in rows_of(data, "table1")}
    differing = {}
    for row in rows_of(data, "table7"):
        source = t1.get((row["method"], "Grid-searched")) or t1[(row["method"], "-")]
        for m in ("b32", "b16", "l14"):
            if row[m] != source[f"{m}_abs"]:
                differing[(row["method"], m)] = (row[m], source[f"{m}_abs"])
                assert "85.8" in row["doubt"] and "line 233" in row["doubt"]
    assert differing == {("Linear FT", "l14"): (85.5, 85.8)}
    assert "85.5 in Table 7 (line 603)" in data["notes"]


def test_tables_5_and_6_repeat_table1_vit_b32(data):
    t1 = {(r["method"], r["coef"]): r for r in rows_of(data, "table1")}
    linear, ours = t1[("Linear FT", "Grid-searched")], t1[("Ours", "Grid-searched")]
    t5 = {r["method"]: r for r in rows_of(data, "table5")}
    t6 = {r["method"]: r for r in rows_of(data, "table6")}
    for t in (t5, t6):
        assert (t["No reg. (Linear FT)"]["abs"], t["No reg. (Linear FT)"]["norm"]) == (linear["b32_abs"], linear["b32_norm"]) == (74.3, 85.0)
    for row in (t5["Full reg. (Ours)"], t6["Cyclical reg. (11)"]):
        assert (row["abs"], row["norm"]) == (ours["b32_abs"], ours["b32_norm"]) == (84.5, 97.6)
    assert (t6["Strict reg. (10)"]["abs"], t6["Strict reg. (10)"]["norm"]) == (86.4, 99.3)


def test_vision_tables_share_their_reference_rows(data):
    t1 = {(r["method"], r["coef"]): r for r in rows_of(data, "table1")}
    t2 = {(r["method"], r["coef"]): r for r in rows_of(data, "table2")}
    pre1, pre2 = t1[("Pre-trained", "-")], t2[("Pre-trained", "-")]
    assert [pre2[f"{m}_targ"] for m in ("b32", "b16", "l14")] == [pre1[f"{m}_abs"] for m in ("b32", "b16", "l14")]
    v1 = [c for c in pre1 if c.endswith(("_abs", "_norm"))]
    assert [t1[("Ties-Merging", "1.0")][c] for c in v1] == [t1[("Ties-Merging", "Grid-searched")][c] for c in v1]
    one, grid = t2[("Ties-Merging", "1.0")], t2[("Ties-Merging", "Grid-searched")]
    assert [c for c in pre2 if c.endswith(("_targ", "_cont")) and one[c] != grid[c]] == ["b32_cont"]
    assert (one["b32_cont"], grid["b32_cont"]) == (61.6, 61.7)


def test_nlp_appendix_tables_against_the_main_tables(data):
    """Tables 8 / 9 (coefficients 1.0) against Tables 3 / 4 (grid-searched): the pre-trained rows and
    Table 8's Ties-Merging row are the same; Table 8's Ours row holds Table 3's numbers rotated; the
    fine-tuning baselines differ (another coefficient)."""
    t3, t8 = ({r["method"]: r for r in rows_of(data, t)} for t in ("table3", "table8"))
    t4, t9 = ({r["method"]: r for r in rows_of(data, t)} for t in ("table4", "table9"))
    assert t8["Pre-trained"] == dict(t3["Pre-trained"], line=647, note=t8["Pre-trained"]["note"])
    assert t9["Pre-trained"] == dict(t4["Pre-trained"], line=656, note=t9["Pre-trained"]["note"])
    cols = [c for c in t3["Ours"] if c.endswith(("_abs", "_norm"))]
    assert [t8["Ties-Merging"][c] for c in cols] == [t3["Ties-Merging"][c] for c in cols]
    for printed, task in ROTATED.items():
        for kind in ("abs", "norm"):
            assert t8["Ours"][f"{printed}_{kind}"] == t3["Ours"][f"{task}_{kind}"]
    for c in ("sst2_abs", "sst2_norm", "avg_abs", "avg_norm"):
        assert t8["Ours"][c] == t3["Ours"][c]
    for m in ("Non-lin. FT", "Linear FT"):
        assert t8[m]["avg_abs"] != t3[m]["avg_abs"]
    for m in ("Non-lin. FT", "Linear FT", "Ties-Merging", "Ours"):
        assert [t9[m][c] for c in ("toxic_rate", "toxic_score", "perplexity")] != \
               [t4[m][c] for c in ("toxic_rate", "toxic_score", "perplexity")]


def single_task_accuracy(row: dict, task: str) -> float:
    """Abs. / Norm.: the accuracy the normalized accuracy is relative to (the task vector's own)."""
    return 100 * row[f"{task}_abs"] / row[f"{task}_norm"]


def test_table8_columns_read_rotated_by_single_task_accuracy(data):
    """A method's single-task accuracy does not depend on the coefficient, so Abs. / Norm. must agree
    between Tables 3 and 8 task by task. It does, within rounding, for every fine-tuned method once
    Table 8's printed MRPC / RTE / CoLA pairs are read as CoLA / MRPC / RTE, and not as printed. Table
    3's own order is confirmed by its Individual row (= Non-lin. FT's single-task accuracies)."""
    t3, t8 = ({r["method"]: r for r in rows_of(data, t)} for t in ("table3", "table8"))
    individual = t3["Individual"]
    for task in ("mrpc", "rte", "cola", "sst2"):
        assert abs(single_task_accuracy(t3["Non-lin. FT"], task) - individual[f"{task}_abs"]) < 0.1
    for m in ("Non-lin. FT", "Linear FT", "Ours"):
        for printed, task in ROTATED.items():
            assert abs(single_task_accuracy(t8[m], printed) - single_task_accuracy(t3[m], task)) < 0.15, (m, printed)
        assert abs(single_task_accuracy(t8[m], "sst2") - single_task_accuracy(t3[m], "sst2")) < 0.15
        assert max(abs(single_task_accuracy(t8[m], t) - single_task_accuracy(t3[m], t)) for t in ROTATED) > 2, m
    # Table 3's Ties-Merging row (= Table 8's) has the same CoLA-first signature
    assert abs(single_task_accuracy(t3["Ties-Merging"], "mrpc") - individual["cola_abs"]) < 0.1
    for row in rows_of(data, "table8")[1:]:
        assert "rotated" in row["doubt"] or "(CoLA, MRPC, RTE)" in row["doubt"]


def test_nlp_averages_are_the_task_means(data):
    for tid in ("table3", "table8"):
        for row in rows_of(data, tid):
            for kind in ("abs", "norm"):
                cells = [row[f"{t}_{kind}"] for t in ("mrpc", "rte", "cola", "sst2")]
                if row[f"avg_{kind}"] is None:
                    assert cells == [None] * 4
                    continue
                assert abs(sum(cells) / 4 - row[f"avg_{kind}"]) <= 0.051, (tid, row["line"], kind)


# --------------------------------------------------------------------------- the claims against the numbers


BASELINES = ("Non-lin. FT", "Linear FT", "Ties-Merging", "AdaMerging")


def losing_cells(ours: dict, others: list[dict], cols) -> list[str]:
    """The columns where some other row is at least as high as ``ours``."""
    return [c for c in cols if any(o[c] is not None and o[c] >= ours[c] for o in others)]


def test_the_documented_contradictions_hold_on_the_transcribed_cells(data):
    claim_ids = {c["id"] for c in data["claims"]}
    keyed = {k.split("/")[0] for k in data["claim_contradictions"]}       # a claim or one of its parts ("claim/part")
    assert keyed <= claim_ids
    assert set(data["claim_contradictions"]) == {"table1_outperforms/abs", "table1_no_tuning/abs", "table2_grid/control",
                                                 "table2_caption", "table3_outperforms", "table8_outperforms"}
    # Table 1: both Ours rows lose only ViT-L-14 Abs., to AdaMerging (91.0 vs 90.8)
    t1 = rows_of(data, "table1")
    cols1 = [c for c in t1[0] if c.endswith(("_abs", "_norm"))]
    base1 = [r for r in t1 if r["method"] in BASELINES]
    for coef in ("1.0", "Grid-searched"):
        ours = next(r for r in t1 if r["method"] == "Ours" and r["coef"] == coef)
        assert losing_cells(ours, base1, cols1) == ["l14_abs"]
        assert ours["l14_abs"] == 90.8 and max(r["l14_abs"] for r in base1) == 91.0
    # Table 2: Ties-Merging keeps more control accuracy than grid-searched Ours on all three models
    t2 = {(r["method"], r["coef"]): r for r in rows_of(data, "table2")}
    conts = ("b32_cont", "b16_cont", "l14_cont")
    ours_grid, ours_one = t2[("Ours", "Grid-searched")], t2[("Ours", "1.0")]
    for ties in (t2[("Ties-Merging", "Grid-searched")], t2[("Ties-Merging", "1.0")]):
        assert all(ties[c] > ours_grid[c] for c in conts)
    for m in ("Non-lin. FT", "Linear FT"):
        assert all(ours_grid[c] > t2[(m, "Grid-searched")][c] for c in conts)
    others = [r for k, r in t2.items() if k[0] not in ("Ours", "Pre-trained")]
    assert all(ours_one[c] > max(o[c] for o in others) for c in conts)                 # table2_control_at_one holds
    targs = ("b32_targ", "b16_targ", "l14_targ")
    valid = [r for k, r in t2.items() if not r["reference"] and k[0] not in ("Ours", "Pre-trained")]
    assert all(ours_grid[c] < min(o[c] for o in valid) for c in targs)                 # forgetting holds
    lin = t2[("Linear FT", "Grid-searched")]
    assert [ours_one[c] - lin[c] for c in targs] == pytest.approx([0.0, 3.0, 6.8])     # table2_caption
    # Table 2's 95% rule on the printed test values: 9 of the 12 grid-searched control cells fall below it
    pre = t2[("Pre-trained", "-")]
    below = [(k[0], c) for k, r in t2.items() if k[1] == "Grid-searched" for c in conts if r[c] < 0.95 * pre[c]]
    assert len(below) == 9 and ("Ours", "l14_cont") in below and ("Ours", "b16_cont") not in below
    assert ours_one["b32_cont"] < 0.95 * pre["b32_cont"] and not ours_one["reference"]
    # Tables 3 and 8: the columns where Ours does not beat every fine-tuning baseline
    for tid, expected in (("table3", ["mrpc_abs", "mrpc_norm"]),
                          ("table8", ["rte_abs", "rte_norm", "cola_abs", "cola_norm"])):
        rows = {r["method"]: r for r in rows_of(data, tid)}
        cols = [c for c in rows["Ours"] if c.endswith(("_abs", "_norm"))]
        assert losing_cells(rows["Ours"], [rows[m] for m in BASELINES if m in rows], cols) == expected, tid


def test_the_claims_that_hold_hold_on_the_transcribed_cells(data):
    t1 = {(r["method"], r["coef"]): r for r in rows_of(data, "table1")}
    one, grid = t1[("Ours", "1.0")], t1[("Ours", "Grid-searched")]
    assert (one["l14_abs"], one["l14_norm"]) == (grid["l14_abs"], grid["l14_norm"]) == (90.8, 99.0)   # table1_alpha_one
    t3 = {r["method"]: r for r in rows_of(data, "table3")}
    assert (t3["Linear FT"]["sst2_norm"], t3["Ours"]["sst2_norm"]) == (61.3, 98.5)                       # table3_sst2
    t4 = {r["method"]: r for r in rows_of(data, "table4")}
    assert all(t4["Ours"][c] < min(r[c] for m, r in t4.items() if m != "Ours") for c in ("toxic_rate", "toxic_score"))
    assert t4["Ours"]["perplexity"] - t4["Pre-trained"]["perplexity"] == pytest.approx(0.5)              # table4_toxicity
    t5 = {r["method"]: r for r in rows_of(data, "table5")}
    assert t5["Full reg. (Ours)"]["abs"] > t5["Incremental reg. (Ours)"]["abs"] > t5["No reg. (Linear FT)"]["abs"]
    t6 = {r["method"]: r for r in rows_of(data, "table6")}
    saving = 1 - t6["Cyclical reg. (11)"]["sec_per_iter"] / t6["Strict reg. (10)"]["sec_per_iter"]
    assert saving == pytest.approx(0.815, abs=0.001)                                                     # table6_cyclical
    t9 = {r["method"]: r for r in rows_of(data, "table9")}
    assert t9["Linear FT"]["perplexity"] - t9["Pre-trained"]["perplexity"] == pytest.approx(37.3)       # table9_perplexity
    assert t9["Ours"]["perplexity"] - t9["Pre-trained"]["perplexity"] == pytest.approx(1.3)
    t7 = {r["method"]: r for r in rows_of(data, "table7")}
    assert [t7["MTL"][m] - t7["Ours"][m] for m in ("b32", "b16", "l14")] == pytest.approx([3.3, 3.2, 1.8])


# --------------------------------------------------------------------------- the checker itself


def test_checker_catches_wrong_cells_and_claims(data, seed):
    broken = copy.deepcopy(data)
    t1, t2, t3, t7, t8, t9 = (next(t for t in broken["tables"] if t["id"] == i)
                              for i in ("table1", "table2", "table3", "table7", "table8", "table9"))
    t1["rows"][11]["l14_abs"] = 90.9              # line 237 prints 90.8 (second token)
    t1["rows"][10]["b32_abs"] = 84.5              # line 237's first token is 84.2
    t1["rows"][5]["coef"] = "Grid-searched"       # line 232 prints 1.0
    t2["rows"][1]["reference"] = False            # line 244 prints '(10.9)' ...
    t2["rows"][7]["reference"] = True             # line 250 prints no parentheses
    t3["rows"][1]["doubt"] = ""                   # line 270 prints 'Indivisual'
    t7["rows"][2]["x_other"] = False              # line 604 prints '✓'
    t8["rows"][4]["mrpc_abs"] = 79.1              # Table 3's order; line 651 prints 76.5
    t9["rows"][2]["toxic_score"] = None           # line 658 prints 0.00
    broken["claims"][6]["text"] = broken["claims"][6]["text"].replace("99%", "98%")
    mismatches, _ = check_tables(broken, seed)
    text = "\n".join(mismatches)
    assert "table1 row line 237, column l14_abs: expected 90.9, seed cell '90.8'" in text
    assert "table1 row line 237, column b32_abs: expected 84.5, seed cell '84.2'" in text
    assert "table1 row line 232: printed label '1.0' in field 1 (coef)" in text
    assert "table2 row line 244: value cells printed in parentheses (a reference row) but reference is False" in text
    assert "table2 row line 250: reference row, but not every value cell is in parentheses" in text
    assert "table3 row line 270: printed label 'Indivisual' in field 0 (method)" in text
    assert "table7 row line 604, column x_other: expected False, seed prints '✓'" in text
    assert "table8 row line 651, column mrpc_abs: expected 79.1, seed cell '76.5'" in text
    assert "table9 row line 658, column toxic_score: YAML null but the seed prints '0.00'" in text
    assert len(mismatches) == 9, text
    claim_mismatches, _ = check_claims(broken, seed)
    assert len(claim_mismatches) == 1 and "table1_alpha_one" in claim_mismatches[0]


def test_checker_catches_a_shared_line_cited_once_and_an_untranscribed_row(data, seed):
    broken = copy.deepcopy(data)
    t1, t5 = (next(t for t in broken["tables"] if t["id"] == i) for i in ("table1", "table5"))
    t1["shared_lines"] = []                       # two rows on line 237, undeclared
    del t5["rows"][1]                             # line 405 left out
    mismatches, _ = check_tables(broken, seed)
    text = "\n".join(mismatches)
    assert "table1 row line 237: cited by more than one row" in text
    assert "table5: seed line 405 looks like a table row but is not transcribed" in text
    assert len(mismatches) == 2, text
