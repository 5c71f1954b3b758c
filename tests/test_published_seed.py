"""Re-read every transcribed LATA number from the seed text at its cited line.

``reprolib/papers/published/lata.yaml`` cites, for each table row, figure value and claim, the
1-based line of the paper's plain-text extraction (the seed, ``<repo>/../shared/seeds/<seed_file>``,
or ``$REPROLIB_SEEDS/<seed_file>`` when that variable is set). These tests open the seed and check
the transcription against it, collecting every mismatch before failing, so one run lists them all.

Rules (decided by reading the seed's table lines, e.g. ``sed -n 630,700p``):

* A table row line is tab-separated: ``[group label, method or setting, ppl, harm, gsm8k, humaneval]``,
  sometimes followed by one trailing empty field. The group label ("UA + Math", ...) is printed on one
  row of its group and empty on the others; field 1 is the method name in Tables 3-7 and the
  hyper-parameter setting in the appendix Tables 8-15 (DARE drop rate p, TIES top k, or "p / k").
* Metric cells are compared by position, as printed with 4 decimals: ``f"{x:.4f}"`` of the YAML float
  must equal the cell. The OCR form with a space for the decimal point ("11 4631") is accepted only
  where the row's ``doubt`` quotes that exact form.
* A null metric is a printed ``-``; an empty cell only where the row's doubt says the cell is empty;
  the cross sign ``×`` only on a row with ``gibberish: true``.
* Count rule: after dropping the two label fields (group label and method/setting; the appendix p/k
  settings, and any lambda, are label numbers) and reading each documented OCR form as one number,
  the numbers left on the line are exactly as many as the row's non-null metric cells; nothing
  follows the four metric cells but an empty field.
* Where field 1 holds numbers (appendix tables) they must equal the row's non-null ``p`` then ``k``.
  In Tables 3-7 p/k are not printed in the rows (they come from the baseline paragraph) and are not
  checked here; the method name is (Cyrillic look-alikes folded to Latin; a different print is
  accepted only where the doubt quotes it). A non-empty group label must equal ``tasks`` or be
  quoted in the doubt.
* Tables 1-2 (model names): the row's fields equal its transcribed cells in column order.
* Every line between a table's header (``line``) and its caption (``caption_line``) that carries
  data (a tab field starting with a digit) is a transcribed row or is named ("line N") in the table's
  ``ocr_artifacts``; the caption line reads as the transcribed caption.
* Claims: the whitespace-normalised ``text`` occurs in lines ``line-3 .. line+3`` joined; if not
  verbatim, it must match once the seed's margin line-number residues (3-digit numbers such as the
  ``022`` in "out-022 performs") are removed from both sides.
* Figure ``values`` / ``text_values`` with a ``line``: each number appears on that line (a
  ``fraction_*`` value as a percentage); the figure caption is at the figure's ``line``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reprolib.published import load_published

REPO = Path(__file__).resolve().parents[1]
METRICS = ("ppl", "harm", "gsm8k", "humaneval")
CYRILLIC_TO_LATIN = str.maketrans("АВЕКМНОРСТХаеорсух", "ABEKMHOPCTXaeopcyx")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
RESIDUE = re.compile(r"(?<![\w.])\d{3}(?![\w.])|(?<=-)\d{3}(?=\s)")


def seed_candidates(seed_file: str) -> list[Path]:
    dirs = []
    if os.environ.get("REPROLIB_SEEDS"):
        dirs.append(Path(os.environ["REPROLIB_SEEDS"]))
    dirs.append(REPO.parent / "shared" / "seeds")
    return [d / seed_file for d in dirs]


def seed_lines(seed_file: str) -> list[str]:
    """The seed's lines, 1-based (``[0]`` is a placeholder); skips the test, saying where it looked, if absent."""
    candidates = seed_candidates(seed_file)
    for path in candidates:
        if path.is_file():
            return [""] + path.read_text(encoding="utf-8").splitlines()
    pytest.skip("seed text not found; looked at " + ", ".join(str(p) for p in candidates)
                + " (set REPROLIB_SEEDS to the folder holding it)")


@pytest.fixture(scope="module")
def data() -> dict:
    return load_published("lata")


def norm(text: str) -> str:
    return " ".join(text.split())


def line_at(seed: list[str], n) -> str | None:
    return seed[n] if isinstance(n, int) and 1 <= n < len(seed) else None


def fields_of(line: str) -> list[str]:
    return [f.strip() for f in line.split("\t")]


def spaced(printed: str) -> str:
    return printed.replace(".", " ")


# --------------------------------------------------------------------------- tables


def check_numeric_row(table: dict, row: dict, line: str, out: list[str]) -> int:
    """Compare one metric row with its seed line; append mismatches to ``out``; return cells checked."""
    tid, n, doubt = table["id"], row["line"], row.get("doubt") or ""
    where = f"{tid} row line {n}"
    fields = fields_of(line)
    if len(fields) < 6:
        out.append(f"{where}: expected 6 tab fields (label, method, 4 metrics), got {len(fields)}: {line!r}")
        return 0
    checked = 0
    label, method_field, cells, extra = fields[0], fields[1], fields[2:6], fields[6:]
    if any(extra):
        out.append(f"{where}: unexpected cells after humaneval {extra}: {line!r}")

    # metric cells, by position
    documented_ocr = []
    for col, cell in zip(METRICS, cells):
        value = row.get(col)
        checked += 1
        if value is None:
            ok = (cell == "-"
                  or (cell == "" and "empty" in doubt)
                  or (cell == "×" and row.get("gibberish") is True))
            if not ok:
                out.append(f"{where}, column {col}: YAML null but the seed prints {cell!r}: {line!r}")
            continue
        printed = f"{value:.4f}"
        if cell == printed:
            continue
        if cell == spaced(printed) and f"'{spaced(printed)}'" in doubt:
            documented_ocr.append(cell)
            continue
        out.append(f"{where}, column {col}: expected {printed}, seed cell {cell!r}: {line!r}")

    # count rule: numbers after the two label fields == non-null metrics
    rest = "\t".join(fields[2:])
    for form in documented_ocr:
        rest = rest.replace(form, form.replace(" ", "."), 1)
    n_numbers = len(NUMBER.findall(rest))
    n_expected = sum(row.get(c) is not None for c in METRICS)
    if n_numbers != n_expected:
        out.append(f"{where}: {n_numbers} numbers after the label fields but {n_expected} non-null "
                   f"metric cells: {line!r}")

    # field 1: the appendix p/k setting, or the method name
    setting = [float(x) for x in NUMBER.findall(method_field)]
    if setting:
        expected = [row[c] for c in ("p", "k") if row.get(c) is not None]
        checked += len(expected)
        if len(setting) != len(expected) or any(abs(a - b) > 1e-9 for a, b in zip(setting, expected)):
            out.append(f"{where}, column p/k: expected {expected}, seed prints {method_field!r}: {line!r}")
    else:
        checked += 1
        folded = method_field.translate(CYRILLIC_TO_LATIN)
        if folded != row["method"] and f"'{method_field}'" not in doubt:
            out.append(f"{where}, column method: expected {row['method']!r}, seed prints "
                       f"{method_field!r}: {line!r}")

    # group label, where printed on this row
    if label:
        checked += 1
        if label != row["tasks"] and f"'{label}'" not in doubt:
            out.append(f"{where}, column tasks: expected {row['tasks']!r}, seed prints {label!r}: {line!r}")
    return checked


def check_text_row(table: dict, row: dict, line: str, out: list[str]) -> int:
    cols = [c for c in table["columns"] if c != "line"]
    fields = fields_of(line)
    while fields and not fields[-1]:
        fields.pop()
    expected = [row.get(c) for c in cols]
    if fields != expected:
        out.append(f"{table['id']} row line {row['line']}: expected cells {expected}, seed prints "
                   f"{fields}: {line!r}" + (f" (doubt: {row['doubt']})" if row.get("doubt") else ""))
    return len(cols)


def check_table_lines(table: dict, seed: list[str], out: list[str], check_row, fields=None) -> int:
    """What every transcribed table must hold, whatever its shape: a tab-separated header at ``line``,
    the caption at ``caption_line``, each row's line inside the table and cited once (its cells checked
    by ``check_row(table, row, line, out)`` → cells checked), and every data-like line of the body
    (a field, as split by ``fields``, starting with a digit) transcribed or named in ``ocr_artifacts``."""
    fields = fields or fields_of
    tid, checked, row_lines = table["id"], 0, set()
    header = line_at(seed, table["line"])
    if header is None or "\t" not in header:
        out.append(f"{tid}: header line {table['line']} is not a tab-separated table line: {header!r}")
    caption = line_at(seed, table.get("caption_line"))
    if caption is None or norm(caption) != norm(table["caption"]):
        out.append(f"{tid}: caption_line {table.get('caption_line')} reads {caption!r}, expected {table['caption']!r}")
    end = table.get("caption_line") or len(seed)
    for row in table["rows"]:
        n = row.get("line")
        line = line_at(seed, n)
        if line is None:
            out.append(f"{tid}: row line {n!r} is outside the seed ({len(seed) - 1} lines)")
            continue
        if not table["line"] < n < end:
            out.append(f"{tid} row line {n}: outside the table (header {table['line']}, caption {end})")
        if n in row_lines:
            out.append(f"{tid} row line {n}: cited by more than one row")
        row_lines.add(n)
        checked += check_row(table, row, line, out)
    check_untranscribed(table, seed, row_lines, end, fields, out)
    return checked


def check_untranscribed(table: dict, seed: list[str], cited, end: int, fields, out: list[str], opening: str = "") -> None:
    """Every seed line of the table's body (before ``end``) that carries data (a tab field starting with
    a digit, once ``opening`` characters are stripped) is a transcribed row (``cited``) or is named
    ("line N") in the table's ``ocr_artifacts``."""
    artifacts = " ".join(table.get("ocr_artifacts", []))
    for n in range(table["line"] + 1, min(end, len(seed))):
        if n not in cited and "\t" in seed[n] and any(f.lstrip(opening)[:1].isdigit() for f in fields(seed[n])) \
                and not re.search(rf"\bline {n}\b", artifacts):
            out.append(f"{table['id']}: seed line {n} looks like a table row but is not transcribed: {seed[n]!r}")


def check_tables(data: dict, seed: list[str]) -> tuple[list[str], int]:
    out: list[str] = []
    checked = 0
    for table in data["tables"]:
        numeric = any(c in table["columns"] for c in METRICS)
        checked += check_table_lines(table, seed, out, check_numeric_row if numeric else check_text_row)
    return out, checked


def test_every_table_cell_matches_the_seed(data, seed):
    mismatches, checked = check_tables(data, seed)
    n_metric_rows = sum(len(t["rows"]) for t in data["tables"] if "ppl" in t["columns"])
    assert checked >= 4 * n_metric_rows, "fewer cells checked than the transcription holds"
    assert not mismatches, f"{len(mismatches)} mismatch(es) in {checked} cells checked:\n" + "\n".join(mismatches)


# --------------------------------------------------------------------------- claims


def check_claims(data: dict, seed: list[str]) -> tuple[list[str], int]:
    out = []
    for claim in data["claims"]:
        n = claim["line"]
        lo, hi = max(1, n - 3), min(len(seed) - 1, n + 3)
        window = norm(" ".join(seed[lo:hi + 1]))
        text = norm(claim["text"])
        if text in window:
            continue
        if norm(RESIDUE.sub("", text)) in norm(RESIDUE.sub("", window)):
            continue
        out.append(f"claim {claim['id']} (line {n}): text not found in seed lines {lo}-{hi}: {claim['text']!r}")
    return out, len(data["claims"])


def test_every_claim_is_quoted_from_its_line(data, seed):
    mismatches, checked = check_claims(data, seed)
    assert not mismatches, f"{len(mismatches)} of {checked} claims not found:\n" + "\n".join(mismatches)


# --------------------------------------------------------------------------- figures


def numeric_leaves(value, key=""):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, list):
        for v in value:
            yield from numeric_leaves(v, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != "line":
                yield from numeric_leaves(v, k)


def check_figures(data: dict, seed: list[str]) -> tuple[list[str], int]:
    out, checked = [], 0
    for fig in data.get("figures", []):
        caption = line_at(seed, fig.get("line"))
        if caption is None or norm(caption) != norm(fig["caption"]):
            out.append(f"{fig['id']}: line {fig.get('line')} reads {caption!r}, expected caption {fig['caption']!r}")
        for group in ("values", "text_values"):
            for name, entry in (fig.get(group) or {}).items():
                if not isinstance(entry, dict) or "line" not in entry:
                    continue
                line = line_at(seed, entry["line"]) or ""
                printed = [float(x) for x in NUMBER.findall(line)]
                for key, value in numeric_leaves(entry):
                    checked += 1
                    target = value * 100 if key.startswith("fraction") else value
                    if not any(abs(p - target) < 1e-9 for p in printed):
                        out.append(f"{fig['id']} {group}.{name}.{key} = {value} not printed on line "
                                   f"{entry['line']}: {line[:200]!r}")
    return out, checked


def test_every_figure_value_is_printed_on_its_line(data, seed):
    mismatches, checked = check_figures(data, seed)
    assert checked, "no figure value with a line was checked"
    assert not mismatches, f"{len(mismatches)} of {checked} figure values not found:\n" + "\n".join(mismatches)


# --------------------------------------------------------------------------- the checker itself


def test_checker_catches_a_wrong_cell_and_an_undocumented_ocr_form(data, seed):
    import copy

    broken = copy.deepcopy(data)
    t3 = next(t for t in broken["tables"] if t["id"] == "table3")
    t3["rows"][1]["ppl"] = 11.6559             # line 635 prints 11.6558
    t3["rows"][0]["doubt"] = ""                # line 634 prints '11 4631': no longer documented
    t3["rows"][5]["harm"] = 0.5                # line 639 prints '-' for harm
    t3["rows"][2]["k"] = 0.5                   # p/k of main tables are not printed: not a mismatch
    t13 = next(t for t in broken["tables"] if t["id"] == "table13")
    t13["rows"][1]["p"] = 0.3                  # line 1921 prints drop rate 0.6
    broken["claims"][0]["text"] = broken["claims"][0]["text"].replace("WikiText-2", "WikiText-3")
    mismatches, _ = check_tables(broken, seed)
    text = "\n".join(mismatches)
    assert "table3 row line 635, column ppl: expected 11.6559" in text
    assert "table3 row line 634, column ppl: expected 11.4631, seed cell '11 4631'" in text
    assert "table3 row line 639, column harm: expected 0.5000, seed cell '-'" in text
    assert "table13 row line 1921, column p/k" in text
    assert "line 636" not in text
    claim_mismatches, _ = check_claims(broken, seed)
    assert len(claim_mismatches) == 1 and "abstract_outperforms" in claim_mismatches[0]
