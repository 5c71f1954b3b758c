"""The scoreboard: every claim of every chapter, from the chapters' JSON summaries
(``results/<chapter>/<profile>/*summary.json``, written by ``kit.pages.claim_rows``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

PAPER_NAMES = {"lata": "LATA", "ptm": "Merge to Learn (PTM)", "m3": "M³", "taujp": "τJp"}


def collect(results: Path, profile: str) -> list[dict]:
    """Claim records of every chapter summary for ``profile`` (one per claim id)."""
    rows, seen = [], set()
    paths = Path(results).glob(f"*/{Path(profile).stem}/*summary.json")
    for path in sorted(paths, key=lambda p: (p.parent.parent.name, p.name != "summary.json", p.name)):   # a chapter's first page first
        for claim in json.loads(path.read_text()).get("claims", []):
            key = (claim["paper"], claim["claim"])
            if key in seen:
                raise ValueError(f"{path}: claim {claim['claim']!r} of {claim['paper']} appears on two pages")
            seen.add(key)
            rows.append({**claim, "summary": str(path)})
    return rows


def _interval(c: dict) -> str:
    if c["parts"]:
        return "; ".join(f"{p['part'].split('/')[-1]} {p['estimate']:.3g} [{p['ci'][0]:.3g}, {p['ci'][1]:.3g}]"
                         for p in c["parts"])
    if c["estimate"] is None or (isinstance(c["estimate"], float) and math.isnan(c["estimate"])):
        return ""
    return f"{c['estimate']:.3g} [{c['ci'][0]:.3g}, {c['ci'][1]:.3g}]"


def markdown(rows: list[dict], profile: str) -> str:
    """The scoreboard page body: per paper, a table of claims (sentence, verdict, interval, link)."""
    if not rows:
        return (f"No chapter summary for profile **{profile}** yet: run `make book` (the chapters write "
                "`results/<chapter>/<profile>/summary.json`).\n")
    out = []
    for paper in dict.fromkeys(r["paper"] for r in rows):
        mine = [r for r in rows if r["paper"] == paper]
        counted = [r for r in mine if r["counted"]]
        tally = ", ".join(f"{sum(r['verdict'] == v for r in counted)} {v}" for v in ("reproduced", "not reproduced", "inconclusive"))
        out += [f"## {PAPER_NAMES.get(paper, paper)}", "",
                f"{len(counted)} claims counted: {tally}. Interval: 95 % over training seeds and test items "
                "(estimate [low, high] per part).", "",
                "| claim | the paper says (line) | ours | paper's own numbers | estimate [95 % interval] | where |",
                "|---|---|---|---|---|---|"]
        for r in mine:
            sentence = r["sentence"].replace("|", "/")
            note = "" if r["counted"] else f" (same runs as `{r['repeats']}`; not counted)"
            own = r["paper_numbers"] + (" — contradicts itself" if r["contradicted_by_paper"] else "")
            anchor = r["anchor"].replace(".html", "") if r["anchor"] else ""
            link = f"<a href=\"executed/{r['anchor']}\">{anchor.split('#')[0]}</a>" if anchor else ""
            out.append(f"| `{r['claim']}` | *{sentence}* ({r['line']}) | **{r['verdict']}**{note} | {own} | {_interval(r)} | {link} |")
        out.append("")
    return "\n".join(out)
