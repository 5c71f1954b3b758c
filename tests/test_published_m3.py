"""Re-read every transcribed M³ number from the seed text at its cited line.

``reprolib/papers/published/m3.yaml`` transcribes "Mixup Model Merge" (seed
``003_4ec0af696ed1b0fa.txt``) with the conventions of the LATA transcription; the seed lookup, the
claim check (verbatim near the line, modulo margin line-number residues) and the figure check are
those of ``tests/test_published_seed.py``, imported from it. The tables differ in shape from LATA's,
so each M³ table names its ``label_columns`` and ``value_columns`` and how a null value is printed
(``cells``). Rules, decided by reading the seed's table lines:

* A table line is tab-separated; underline markup (``<u>86.24</u>``) is dropped before comparing.
  The fields drift left or right on some lines (OCR), so values are located by what they are, not by
  a fixed field index:
  - ``dash`` (Tables 1, 7): the tokens of the line are its fields that are a number or ``-``; the last
    ``len(value_columns)`` tokens are the value cells, compared by position (``-`` = null, a number
    must equal the YAML value as a float); any tokens before them must be ``-`` and no more than the
    row's null labels (a base model's printed ``-`` method / "Use M^3").
  - ``empty`` (Tables 2, 5, 6): null values are empty cells; the line's number fields, in order, are
    exactly the row's non-null values in column order.
  - ``inline`` (Tables 3, 4): the numbers inside the text cells, in order, are the row's values
    (lists flattened) in column order.
  In ``dash`` and ``empty`` tables nothing but empty fields follows the last value cell, unless the
  table sets ``labels_after_values`` (label cells printed after the numbers, PTM's Table 1). A value
  cell may carry a sign and thousands commas ("-32.5", "1,005"; PTM).
* Every other non-empty field is a label: it must be part of one of the row's label values (booleans
  print as Yes / No; "LM" and "& Math" are parts of "LM & Math") or be quoted ('...') in the row's
  doubt, which is where a reading that overrides the printed labels (Table 6) is documented.
* ``label_columns`` + ``value_columns`` + ``line`` are exactly the table's columns, so no cell goes
  unchecked. Every seed line between a table's header and its caption that carries data (a tab field
  starting with a digit) is a transcribed row or is named ("line N") in ``ocr_artifacts``; the caption
  line reads as the transcribed caption.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

from reprolib.published import load_published

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module, under any import mode
from test_published_seed import NUMBER, check_claims, check_figures, check_table_lines, line_at, norm  # noqa: E402

MARKUP = re.compile(r"</?u>|\*\*")
NUMBER_CELL = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")   # signed, thousands commas (PTM)


@pytest.fixture(scope="module")
def data() -> dict:
    return load_published("m3")


# --------------------------------------------------------------------------- tables


def cells_of(line: str) -> list[str]:
    return [MARKUP.sub("", f).strip() for f in line.split("\t")]


def printed_label(value):
    return {True: "Yes", False: "No"}.get(value, value) if isinstance(value, bool) else value


def flat(values) -> list:
    out = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def same(printed: str, value) -> bool:
    """A printed number ("1,005", "-32.5") equals the transcribed value."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(float(printed.replace(",", "")) - value) < 1e-9


def check_row(table: dict, row: dict, line: str, out: list[str]) -> int:
    """Compare one row with its seed line; append mismatches to ``out``; return cells checked."""
    where = f"{table['id']} row line {row['line']}"
    doubt = row.get("doubt") or ""
    labels = [printed_label(row.get(c)) for c in table["label_columns"]]
    value_cols = table["value_columns"]
    values = [row.get(c) for c in value_cols]
    cells = cells_of(line)
    mode = table["cells"]
    checked = 0
    value_at: set[int] = set()

    if mode == "inline":
        printed = NUMBER.findall(line)
        expected = flat(values)
        checked += len(expected)
        if len(printed) != len(expected) or not all(same(p, v) for p, v in zip(printed, expected)):
            out.append(f"{where}: numbers {printed} on the line, transcribed {expected}: {line!r}")
    else:
        dash = mode == "dash"
        tokens = [(i, c) for i, c in enumerate(cells) if NUMBER_CELL.fullmatch(c) or (dash and c == "-")]
        if dash:
            if len(tokens) < len(values):
                out.append(f"{where}: {len(tokens)} value cells, expected {len(values)}: {line!r}")
                return checked
            head, tail = tokens[:-len(values)], tokens[-len(values):]
            n_null_labels = sum(label is None for label in labels)
            if any(c != "-" for _, c in head) or len(head) > n_null_labels:
                out.append(f"{where}: unexpected cells {[c for _, c in head]} before the values "
                           f"({n_null_labels} null labels): {line!r}")
            for col, value, (_, cell) in zip(value_cols, values, tail):
                checked += 1
                if value is None and cell != "-":
                    out.append(f"{where}, column {col}: YAML null but the seed prints {cell!r}: {line!r}")
                elif value is not None and (cell == "-" or not same(cell, value)):
                    out.append(f"{where}, column {col}: expected {value}, seed cell {cell!r}: {line!r}")
            value_at = {i for i, _ in tokens}
        else:
            if any(c == "-" for c in cells):
                out.append(f"{where}: a '-' cell in a table whose nulls are empty cells: {line!r}")
            printed = [c for _, c in tokens]
            expected = flat(values)
            checked += len(values)
            if len(printed) != len(expected) or not all(same(p, v) for p, v in zip(printed, expected)):
                out.append(f"{where}: numbers {printed} on the line, transcribed "
                           f"{dict(zip(value_cols, values))}: {line!r}")
            value_at = {i for i, _ in tokens}
        filled = [i for i, c in enumerate(cells) if c]
        if filled and filled[-1] not in value_at and not table.get("labels_after_values"):
            out.append(f"{where}: {cells[filled[-1]]!r} follows the value cells: {line!r}")

    for i, cell in enumerate(cells):
        if not cell or i in value_at:
            continue
        checked += 1
        if any(isinstance(lab, str) and norm(cell) in norm(lab) for lab in labels) or f"'{cell}'" in doubt:
            continue
        out.append(f"{where}: printed label {cell!r} is none of the row's labels {labels} "
                   f"and not quoted in its doubt: {line!r}")
    return checked


def check_tables(data: dict, seed: list[str]) -> tuple[list[str], int]:
    out: list[str] = []
    checked = 0
    for table in data["tables"]:
        declared = set(table["label_columns"]) | set(table["value_columns"]) | {"line"}
        if declared != set(table["columns"]):
            out.append(f"{table['id']}: label_columns + value_columns + line {sorted(declared)} "
                       f"!= columns {sorted(table['columns'])}")
        checked += check_table_lines(table, seed, out, check_row, fields=cells_of)
    return out, checked


def test_every_table_cell_matches_the_seed(data, seed):
    mismatches, checked = check_tables(data, seed)
    n_values = sum(len(t["value_columns"]) * len(t["rows"]) for t in data["tables"] if t["cells"] != "inline")
    assert checked >= n_values, "fewer cells checked than the transcription holds"
    assert not mismatches, f"{len(mismatches)} mismatch(es) in {checked} cells checked:\n" + "\n".join(mismatches)


# --------------------------------------------------------------------------- claims and figures


def test_every_claim_is_quoted_from_its_line(data, seed):
    mismatches, checked = check_claims(data, seed)
    assert checked >= 10
    assert not mismatches, f"{len(mismatches)} of {checked} claims not found:\n" + "\n".join(mismatches)


def test_every_figure_value_is_printed_on_its_line(data, seed):
    mismatches, checked = check_figures(data, seed)
    assert checked, "no figure value with a line was checked"
    assert not mismatches, f"{len(mismatches)} of {checked} figure values not found:\n" + "\n".join(mismatches)


def test_hyperparameter_source_lines_are_in_the_seed(data, seed):
    hp = data["hyperparameters"]
    assert all(line_at(seed, n) for n in hp["source_lines"])
    assert "0.2, 0.4, 0.5, 1, 2, 3, 5" in seed[185]
    assert hp["two_model_merging"]["alpha_grid"] == [0.2, 0.4, 0.5, 1, 2, 3, 5]
    assert "p \\in \\{0, 1, 2, 3\\}" in seed[186] and "s \\in [0.5, 2.0]" in seed[186]
    assert "fixed drop rate of 0.2" in seed[261] and hp["dare"]["drop_rate"] == 0.2


# --------------------------------------------------------------------------- the readings documented in the YAML


def rows_of(data: dict, tid: str) -> list[dict]:
    return next(t for t in data["tables"] if t["id"] == tid)["rows"]


def test_attack_tables_pair_up_and_their_pdr_recomputes(data):
    """Tables 5-6 read as (no attack, attack) pairs: each printed PDR is 100 (a - b) / a of its pair.

    This is what fixes Table 6's reading, whose printed labels are misplaced from line 721 on."""
    for tid, tol in (("table5", 0.06), ("table6", 0.03)):
        rows = rows_of(data, tid)
        assert len(rows) % 2 == 0
        for clean, attacked in zip(rows[::2], rows[1::2]):
            key = ("model", "dataset", "use_m3")
            assert [clean[k] for k in key] == [attacked[k] for k in key], (tid, clean["line"])
            assert (clean["use_attack"], attacked["use_attack"], attacked["pdr"]) == (False, True, None)
            if clean["pdr"] is not None:
                pdr = 100 * (clean["metric"] - attacked["metric"]) / clean["metric"]
                assert abs(pdr - clean["pdr"]) <= tol, (tid, clean["line"], pdr, clean["pdr"])
            else:
                assert "PDR cell empty" in clean["doubt"]
    assert len(rows_of(data, "table6")) == 22 and "missing" in next(
        t for t in data["tables"] if t["id"] == "table6")


def test_table1_rows_reappear_in_table7_except_the_documented_cells(data):
    metrics = ("alpacaeval", "gsm8k", "math", "humaneval", "mbpp")
    t7 = rows_of(data, "table7")
    differing = {}
    for row in rows_of(data, "table1"):
        if row["method"] is None or (row["method"] != "DARE" and not row["use_m3"]):
            continue
        if row["method"] == "DARE":       # Table 1's DARE rows are Task Arithmetic + DARE
            key = ("Task Arithmetic", row["models"], row["use_m3"], True)
        else:
            key = (row["method"], row["models"], True, False)
        [other] = [r for r in t7 if (r["method"], r["models"], r["use_m3"], r["use_dare"]) == key]
        diff = [m for m in metrics if row[m] != other[m]]
        if diff:
            differing[row["line"]] = diff
            assert row.get("doubt") and f"line {other['line']}" in row["doubt"]
    assert differing == {215: ["math"], 219: ["math", "humaneval"]}


# --------------------------------------------------------------------------- the checker itself


def test_checker_catches_wrong_cells_labels_and_claims(data, seed):
    broken = copy.deepcopy(data)
    t1, t5, t6, t3 = (next(t for t in broken["tables"] if t["id"] == i) for i in ("table1", "table5", "table6", "table3"))
    t1["rows"][7]["mbpp"] = 8.61                # line 207 prints 8.60
    t1["rows"][1]["alpacaeval"] = 1.0           # line 201 prints '-'
    t1["rows"][4]["lambda"] = None              # line 204 prints 0.34
    t5["rows"][1]["pdr"] = 12.0                 # line 664 prints no PDR
    t6["rows"][2]["doubt"] = ""                 # line 721 prints 'CoLA' for a row read as SST2
    t3["rows"][1]["retain_ratio"] = [0.5, 0.9]  # line 621 prints [0.5, 0.7, 0.9]
    broken["claims"][0]["text"] = broken["claims"][0]["text"].replace("three", "four")
    mismatches, _ = check_tables(broken, seed)
    text = "\n".join(mismatches)
    assert "table1 row line 207, column mbpp: expected 8.61, seed cell '8.60'" in text
    assert "table1 row line 201, column alpacaeval: expected 1.0, seed cell '-'" in text
    assert "table1 row line 204, column lambda: YAML null but the seed prints '0.34'" in text
    assert "table5 row line 664: numbers ['50.92'] on the line" in text
    assert "table6 row line 721: printed label 'CoLA'" in text
    assert "table3 row line 621: numbers" in text
    assert len(mismatches) == 6, text
    claim_mismatches, _ = check_claims(broken, seed)
    assert len(claim_mismatches) == 1 and "abstract_outperforms" in claim_mismatches[0]
