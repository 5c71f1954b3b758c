"""The transcribed published numbers load, validate and keep their references to the paper."""

from __future__ import annotations

import pytest

from reprolib.errors import ConfigError
from reprolib.published import load_published, published_table


def test_lata_transcription_is_complete_and_referenced():
    data = load_published("lata")
    refs = {t["ref"] for t in data["tables"]}
    assert {f"Table {i}" for i in range(1, 16)} <= refs
    assert all(isinstance(t["line"], int) and t["line"] > 0 for t in data["tables"])
    assert all(isinstance(r.get("line"), int) for t in data["tables"] for r in t["rows"])
    assert data["claims"] and all(c["text"] and c["line"] for c in data["claims"])


def test_lata_table3_reads_as_printed():
    df = published_table("lata", "table3")
    ta = df[(df["method"] == "TA") & (df["tasks"] == "UA + Math")].iloc[0]
    assert ta["ppl"] == pytest.approx(11.4631) and ta["harm"] == pytest.approx(3.7091)


def test_unknown_paper_and_table():
    with pytest.raises(ConfigError, match="known: lata"):
        load_published("nope")
    with pytest.raises(ConfigError, match="no table 'table99'"):
        published_table("lata", "table99")
