"""Re-read every transcribed Merge to Learn (PTM) number from the seed text at its cited line.

``reprolib/papers/published/ptm.yaml`` transcribes seed ``002_1420d8ae625d8274.txt`` with the
conventions of the M³ transcription, and is checked by the same machinery (``tests/test_published_m3.py``:
every table in ``dash`` mode, a printed ``-`` is null, signed and comma-grouped numbers as printed;
``labels_after_values`` for Table 1, whose domain column follows the numbers). Beyond the cells, the
step counts the paper prints are re-derived from its dataset sizes (Table 1) under the accounting its
Section 2 states, which is what the chapter's compute comparison reuses.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from reprolib.published import load_published

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, under any import mode
from test_published_m3 import check_tables  # noqa: E402
from test_published_m3 import test_every_claim_is_quoted_from_its_line  # noqa: E402,F401  (collected here, on this data)
from test_published_m3 import test_every_table_cell_matches_the_seed  # noqa: E402,F401
from test_published_seed import check_claims, check_figures, line_at  # noqa: E402


@pytest.fixture(scope="module")
def data() -> dict:
    return load_published("ptm")


def rows_of(data: dict, tid: str) -> list[dict]:
    return next(t for t in data["tables"] if t["id"] == tid)["rows"]


def test_every_figure_caption_is_on_its_line(data, seed):
    mismatches, checked = check_figures(data, seed)
    assert len(data["figures"]) == 6
    assert not mismatches, "\n".join(mismatches)


def test_hyperparameter_source_lines_are_in_the_seed(data, seed):
    hp = data["hyperparameters"]
    assert all(line_at(seed, n) for n in hp["source_lines"])
    assert "0.2, 0.4, 0.6, 0.8, and 1.0" in seed[159] and hp["omega_grid_selection"] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert "Effective batch size: 128" in seed[342] and hp["batch_size"] == 128
    assert "\\omega = \\frac{|D|}{|G|}" in seed[208]


def test_the_printed_step_counts_follow_from_the_dataset_sizes(data):
    """PTM = |D|, CFT = Σ|D_i|, RT = 5|G| + Σ|D_i| (Sections 2.1–2.3), sizes in steps of 128 examples:
    every step count of Tables 2 and 3 and CFT (All 3) of Table 4 is re-derived; RT (All 3)'s is not
    (its doubt says so)."""
    from reprolib.chapters.ptm import paper_steps

    sizes = {r["dataset"].split(" ")[0]: r["training_set_size"] for r in rows_of(data, "table1")}
    steps = paper_steps(sizes["Tülu"], {"science": sizes["SciRIFF"], "safety": sizes["Safety"], "coding": sizes["CodeFeedback"]},
                        cft_totals={"science": 1005, "safety": 1551, "coding": 3669}, batch=data["hyperparameters"]["batch_size"])
    t3 = {r["model"]: r["training_steps"] for r in rows_of(data, "table3")}
    for skill, name in (("science", "Science"), ("safety", "Safety"), ("coding", "Coding")):
        assert steps[skill]["ptm"] == t3[f"Best PTM ({name})"]
        assert abs(steps[skill]["rt"] - t3[f"Best RT ({name})"]) <= 1          # 5 × 2,152.06 rounds to 10,760 or 10,761
    t2 = {r["model"]: r["training_steps"] for r in rows_of(data, "table2")}
    assert (t2["Best PTM"], t2["Best CFT"]) == (steps["science"]["ptm"], steps["science"]["cft"])
    t4 = {r["model"]: r for r in rows_of(data, "table4")}
    assert t4["CFT (All 3)"]["additional_training_steps"] == round(sum(sizes[k] for k in ("SciRIFF", "Safety", "CodeFeedback")) / 128)
    assert "4,371" in t4["RT (All 3)"]["doubt"]


def test_checker_catches_wrong_cells_and_claims(data, seed):
    broken = copy.deepcopy(data)
    t3 = next(t for t in broken["tables"] if t["id"] == "table3")
    t3["rows"][0]["delta_general"] = 32.5          # line 164 prints -32.5
    t3["rows"][1]["training_steps"] = 11767        # line 165 prints 11,766
    t2 = next(t for t in broken["tables"] if t["id"] == "table2")
    t2["rows"][0]["training_steps"] = 0            # line 146 prints '-'
    broken["claims"][5]["text"] = broken["claims"][5]["text"].replace("4%", "5%")
    mismatches, _ = check_tables(broken, seed)
    text = "\n".join(mismatches)
    assert "table3 row line 164, column delta_general: expected 32.5, seed cell '-32.5'" in text
    assert "table3 row line 165, column training_steps: expected 11767, seed cell '11,766'" in text
    assert "table2 row line 146, column training_steps: expected 0, seed cell '-'" in text
    assert len(mismatches) == 3, text
    claim_mismatches, _ = check_claims(broken, seed)
    assert len(claim_mismatches) == 1 and "table2_vs_rt" in claim_mismatches[0]
