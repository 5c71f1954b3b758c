"""What a chapter page shows: the scale banner, paper-vs-ours tables, doubts under tables, the
claims table, glued reading values and the JSON summary."""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path

from reprolib.paths import git_commit


def banner_text(scale: dict, seeds, paper_scale: str) -> str:
    """The honesty banner every chapter page starts with (Markdown)."""
    size = f"{scale['parameters'] / 1e6:.2f} M parameters" if scale.get("parameters") else "size unknown"
    arch = (f"{scale['description']}, {size}" if "description" in scale else
            f"{scale['architecture']}, {scale['layers']} layers × {scale['hidden']} hidden, vocabulary {scale['vocab']}, {size}")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f"```{{admonition}} Scale of this page: {scale['kind']}\n:class: warning\n"
            f"**Models:** {arch}. The paper used {paper_scale}.\n\n"
            f"**Seeds:** {', '.join(map(str, seeds))}. **Run:** {when}, reprolib {git_commit()}.\n\n"
            "Columns marked *paper* are transcribed from the publication; every other number was computed "
            "in this run at the scale above and is **not** the paper's number.\n```")


def banner(scale: dict, seeds, paper_scale: str):
    from IPython.display import Markdown

    return Markdown(banner_text(scale, seeds, paper_scale))


def side_by_side(table: dict, ours, metrics: dict[str, str], labels) -> "object":
    """The published ``table`` with our score beside each of its numbers: columns ``<ours> paper``
    and ``<ours> ours`` for each ``metrics`` item (paper column → our metric). ``ours`` holds the
    table's runs for one or more seeds, each seed's rows in the table's order; our column is the
    mean over seeds. ``labels(row, our_row)`` gives a row's label columns."""
    import pandas as pd

    n = len(table["rows"])
    per_seed = [g.reset_index(drop=True).iloc[:n] for _, g in ours.groupby("seed", sort=True)]
    present = [c for c in metrics.values() if c in ours]
    mean = sum(g[present] for g in per_seed) / len(per_seed)
    rows = []
    for i, row in enumerate(table["rows"]):
        out = labels(row, per_seed[0].loc[i])
        for paper_col, col in metrics.items():
            if row.get(paper_col) is None and (col not in mean or pd.isna(mean.loc[i, col])):
                continue
            out[f"{col} paper"] = row.get(paper_col)
            out[f"{col} ours"] = mean.loc[i, col] if col in mean else None
        rows.append(out)
    return pd.DataFrame(rows)


def beside(paper_rows: list[dict], ours, labels, columns, scale: float = 1.0, unscaled=()):
    """Paper rows (in our labels) with our mean over seeds beside each printed column: ``<c> paper``
    and ``<c> ours``, matched by the ``labels`` columns (not by position); ours ×``scale`` except the
    ``unscaled`` columns. A column the paper leaves empty and we do not score is left out of the row."""
    import pandas as pd

    paper = pd.DataFrame(paper_rows)
    columns = (*unscaled, *columns)
    mean = ours.groupby(list(labels), dropna=False)[[c for c in columns if c in ours]].mean()
    mean = mean.assign(**{c: mean[c] * scale for c in mean if c not in unscaled})
    out = []
    for _, row in paper.iterrows():
        key = tuple(row[k] for k in labels) if len(labels) > 1 else row[labels[0]]
        record = {k: row[k] for k in labels}
        for c in columns:
            if pd.isna(row.get(c)) and (c not in mean or key not in mean.index):
                continue
            record[f"{c} paper"] = row.get(c)
            record[f"{c} ours"] = mean.loc[key, c] if key in mean.index and c in mean else None
        out.append(record)
    return pd.DataFrame(out)


def table_notes(table: dict) -> list[str]:
    """The transcription's doubts about a table's rows (OCR, copy errors), for a footnote."""
    notes = []
    for row in table["rows"]:
        label = " ".join(str(row.get(k)) for k in ("tasks", "method", "models", "model", "dataset") if row.get(k))
        for key in ("doubt", "note"):
            if row.get(key):
                notes.append(f"{label}: {row[key]}")
        if row.get("gibberish"):
            notes.append(f"{label}: the paper marks this model's output as gibberish (no scores).")
    return notes


def show_table(title: str, caption: str, frame, notes=(), claim: str | None = None, anchor: str = "") -> None:
    """Display a paper-vs-ours table with its caption, the doubts under it and the claim it bears
    on; ``anchor`` is an HTML id the scoreboard links to."""
    from IPython.display import Markdown, display

    target = f'<a id="{anchor}"></a>\n\n' if anchor else ""
    display(Markdown(f"{target}### {title}\n\n*{caption}*"))
    display(frame)
    if notes:
        display(Markdown("Notes on the paper's numbers:\n\n" + "\n".join(f"- {n}" for n in notes)))
    if claim:
        display(Markdown(claim))


def fmt(frame, number=None):
    """``frame`` for display, floats at 4 significant digits (or ``number(x)``): sets pandas' display
    format, which every page table uses."""
    import pandas as pd

    pd.options.display.float_format = number or "{:.4g}".format
    return frame


def settings_frame(rows) -> None:
    """Display (setting, paper, ours) triples as a table whose text cells are shown whole (pandas cuts
    a cell at 50 characters by default)."""
    import pandas as pd
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None):
        display(pd.DataFrame([{"setting": k, "paper": str(a), "ours": str(b)} for k, a, b in rows]))


def glue(values: dict) -> dict:
    """Glue reading values for the page's Markdown (``{glue:text}`key:.3f``` for numbers,
    ``{glue:md}`key``` for words); returns ``values``. Outside a notebook it only returns them."""
    from IPython.display import Markdown

    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst-nb ships with jupyter-book
        return values
    for key, value in values.items():
        if hasattr(value, "item") and not isinstance(value, str):
            value = value.item()              # numpy scalars: their repr would not format as a number
        _glue(key, Markdown(value) if isinstance(value, str) else value, display=False)
    return values


def write_summary(path: str | Path, summary: dict) -> Path:
    """Write a page's results as strict JSON (NaN → null), atomically, with provenance (commit,
    package versions, the code sandbox's isolation, time); the models' fingerprints and the settings
    are the caller's part."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
            return clean(x.item())
        return x

    from reprolib.evals.sandbox import describe
    from reprolib.io import machine, package_versions

    path = Path(path)
    summary = {**summary, "provenance": {"commit": git_commit(), "versions": package_versions(), "machine": machine(), "code_sandbox": describe(),
                                         "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    tmp.write_text(json.dumps(clean(summary), indent=1, allow_nan=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def claim_rows(registry, verdicts, paper_verdicts=(), contradictions=None, repeats=None) -> list[dict]:
    """One record per claim: its sentence and line, how it is tested, our verdict and interval, the
    verdict the paper's own numbers get through the same test, where the paper contradicts itself,
    and whether it is counted (a claim that reruns another's runs is not)."""
    paper = {v.claim: v for v in paper_verdicts}
    contradictions, repeats = contradictions or {}, repeats or {}
    out = []
    for v in verdicts:
        c = registry.claims[v.claim]
        parts = [{"part": p.claim, "text": p.text, "verdict": p.verdict, "estimate": p.estimate, "ci": list(p.ci),
                  "values": p.values, "claimed": f"{'>' if p.better == 'higher' else '<'} {p.margin:g}"} for p in v.parts]
        notes = [f"{k}: {t}" for k, t in contradictions.items() if k == v.claim or k.startswith(v.claim + "/")]
        out.append({"paper": registry.paper, "claim": v.claim, "sentence": c.sentence, "line": c.line, "how": c.how,
                    "anchor": c.anchor, "verdict": v.verdict, "estimate": v.estimate, "ci": list(v.ci), "seeds": v.n,
                    "values": v.values, "parts": parts,
                    "paper_numbers": paper[v.claim].verdict if v.claim in paper else "no numbers printed",
                    "contradicted_by_paper": notes, "repeats": repeats.get(v.claim), "counted": v.claim not in repeats})
    return out


def claims_markdown(rows: list[dict], link: bool = False) -> str:
    """The claims as Markdown: quoted sentence, line, how tested, verdicts (ours, the paper's numbers)."""
    lines = []
    for r in rows:
        ci = (f" (estimate {r['estimate']:.3g}, 95 % CI [{r['ci'][0]:.3g}, {r['ci'][1]:.3g}])"
              if not r["parts"] and not math.isnan(r["estimate"]) else "")
        where = f" — [table/figure]({r['anchor']})" if link and r["anchor"] else ""
        lines.append(f"- **{r['claim']}** (line {r['line']}){where}: *\"{r['sentence']}\"*  \n"
                     f"  ours: **{r['verdict']}**{ci}; the paper's own numbers through the same test: "
                     f"**{r['paper_numbers']}**." + ("" if r["counted"] else f" Same runs as `{r['repeats']}` here; not counted again."))
        for p in r["parts"]:
            lines.append(f"  - {p['text']} ({p['claimed']}): {p['verdict']}, {p['estimate']:.3g} "
                         f"[{p['ci'][0]:.3g}, {p['ci'][1]:.3g}]")
        for note in r["contradicted_by_paper"]:
            lines.append(f"  - *The paper contradicts itself here* — {note}")
    return "\n".join(lines)


def claim_line(ch, verdicts, evidence_id: str, available=None) -> str:
    """The claims whose first evidence is ``evidence_id``, quoted with our verdict (under a table).
    ``available``: the evidence ids computed so far; a claim that also reads others gets its verdict
    in the claims section only (a verdict on part of its evidence would differ from the final one)."""
    out = []
    for v in verdicts:
        c = ch.claims.claims[v.claim]
        if evidence_id != c.evidence[0]:
            continue
        missing = [e for e in c.evidence if available is not None and e not in available]
        verdict = (f"its verdict also reads {', '.join(missing)} and is given" if missing
                   else f"ours: **{v.verdict}** (the whole claim is tested")
        out.append(f"**The paper's claim (line {c.line}):** *\"{c.sentence}\"* — {verdict} in *The claims* below"
                   + ("." if missing else ")."))
    return "\n\n".join(out)


def show_claims(ch, evidence: dict, paper_evidence: dict, roles, summary_name: str = "summary.json",
                repeats: dict | None = None, extra: dict | None = None) -> list[dict]:
    """A page's claims section: our verdicts on ``evidence``, the paper's own numbers
    (``paper_evidence``) through the same tests, where the paper contradicts itself; displayed as
    Markdown and written, with every result row, the models' fingerprints (``roles``) and
    ``extra``, to ``ch.out / summary_name``. Returns the claim records."""
    from IPython.display import Markdown, display

    verdicts = ch.verdicts(evidence)
    paper_verdicts = ch.claims.run(paper_evidence, only=[v.claim for v in verdicts])
    rows = claim_rows(ch.claims, verdicts, paper_verdicts, ch.paper.get("claim_contradictions"), repeats)
    display(Markdown(claims_markdown(rows)))
    summary = {"chapter": ch.claims.paper, "profile": ch.profile, "seeds": ch.seeds, "eval_size": ch.eval_size,
               "scale": ch.scale(), "models": {r: ch.models.fingerprint(r) for r in roles if ch.models and ch.models.has(r)},
               "claims": rows, "counts": claim_counts(rows), **(extra or {}),
               "results": {k: v.rows.to_dict("records") for k, v in evidence.items()}}
    write_summary(ch.out / summary_name, summary)
    return rows


def claim_counts(rows: list[dict]) -> dict:
    """Counted claims by verdict (claims that rerun another claim's runs are left out)."""
    counted = [r for r in rows if r["counted"]]
    return {"claims": len(counted), **{v: sum(r["verdict"] == v for r in counted)
                                        for v in ("reproduced", "not reproduced", "inconclusive")}}
