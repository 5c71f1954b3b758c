"""The papers' published numbers, transcribed into ``reprolib/papers/published/<paper>.yaml``.

Each file lists the paper's tables (``ref`` as printed, ``line`` in the seed text, ``columns``,
``rows`` with one dict per printed row, ``doubt`` where OCR made a cell uncertain), its figures
and its headline claims. Chapters show these numbers beside their own, never in place of them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from reprolib.errors import ConfigError

PUBLISHED = Path(__file__).with_name("papers") / "published"


def load_published(paper: str) -> dict:
    """The validated transcription of ``paper`` (e.g. ``"lata"``); ConfigError names the problem."""
    path = PUBLISHED / f"{paper}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PUBLISHED.glob("*.yaml"))
        raise ConfigError(f"no published numbers for paper {paper!r} (known: {', '.join(known)})")
    data = yaml.safe_load(path.read_text())
    for table in data.get("tables", []):
        for key in ("id", "ref", "line", "columns", "rows"):
            if key not in table:
                raise ConfigError(f"{path}: table {table.get('id', '?')!r} lacks {key!r}")
        for i, row in enumerate(table["rows"]):
            extra = set(row) - set(table["columns"]) - {"doubt", "gibberish", "note"}
            if extra:
                raise ConfigError(f"{path}: {table['ref']} row {i} has columns {sorted(extra)} not in its header")
    return data


def table_rows(data: dict, table_id: str) -> list[dict]:
    """The rows of one table of a loaded transcription (``load_published``)."""
    for table in data.get("tables", []):
        if table["id"] == table_id:
            return table["rows"]
    raise ConfigError(f"paper {data.get('short_name', '?')!r} has no table {table_id!r}")


def published_table(paper: str, table_id: str):
    """One table as a pandas DataFrame (columns as transcribed)."""
    import pandas as pd

    return pd.DataFrame(table_rows(load_published(paper), table_id))
