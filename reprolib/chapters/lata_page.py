"""What the two LATA pages show, one function per section, so the notebooks stay a few lines each.

Each function computes through ``reprolib.chapters.lata`` (runs, claims) and the kit (scorer,
pages), displays its table / figure / verdicts, writes its results under the chapter's output
folder and returns what later sections need.
"""

from __future__ import annotations

import statistics

from IPython.display import Image, Markdown, display

from reprolib import plots
from reprolib.chapters import lata as L
from reprolib.claims import Evidence, verdict_table
from reprolib.kit import pages


_fmt = pages.fmt


# ----------------------------------------------------------------------------- page 1: learning


def fig5(ch, sigma: float = 0.95):
    """Layer cosines and ranks (Fig. 5): figure, the seed-0 table and the paper's text."""
    layers = L.layers_for(ch, sigma=sigma)
    layers.to_csv(ch.out / "layers.csv", index=False)
    fig = plots.layer_rank_plot(layers, title=f"LATA Fig. 5 at {ch.profile} scale")
    display(Image(filename=str(plots.save(fig, ch.out / "fig5_layers.png"))))
    display(_fmt(layers[layers.seed == ch.seeds[0]].pivot(index="layer", columns="expert", values=["cosine", "rank"])))
    f = ch.figure("fig5")["text_values"]
    kept = L.retained_fraction(layers, sigma)
    display(Markdown(
        f"**Paper (Fig. 5, line {f['important_layers']['line']}):** no per-layer values are printed; the least similar "
        f"layers lie after layer {f['important_layers']['after_layer']} of Gemma-2-9B's {ch.paper['model_layers']['gemma_2_9b']}. "
        f"**Ours:** blocks below σ = {sigma:g}: " + ", ".join(f"{e} (seed {s}) {v:.0%}" for (e, s), v in sorted(kept.items())) + "."))
    return layers


def learning(ch, layers, tables: str = "all", sigma: float = 0.95):
    """Tables 3–15: every table's runs over the seeds, shown beside the paper's numbers, with the
    claims that rest on it. Returns the evidence by table (plus the matched control and the layers)."""
    wanted = [t["id"] for t in ch.paper["tables"] if t["id"] not in ("table1", "table2")]
    if tables != "all":
        wanted = [t.strip() for t in tables.split(",")]
    evidence = {**L.learning_evidence(ch, wanted, sigma), "layers": Evidence(layers)}
    verdicts = ch.verdicts(evidence)
    for table_id in wanted:
        table = ch.table(table_id)
        evidence[table_id].rows.to_csv(ch.out / f"{table_id}.csv", index=False)
        pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] +
                         f" Ours: mean over {len(ch.seeds)} training seed(s) of the experts.",
                         _fmt(L.side_by_side(ch, table_id, evidence[table_id])), pages.table_notes(table),
                         pages.claim_line(ch, verdicts, table_id), anchor=table_id)
    return evidence


def control(ch, evidence):
    """The matched control beside LATA on Table 3's task sets, and its verdict."""
    if "control" not in evidence:
        display(Markdown("*(Table 3 was not computed with these parameters, so there is no control.)*"))
        return None
    rows = Evidence.concat([evidence["table3"], evidence["control"]]).rows
    rows = rows[rows["method"].isin(["LATA", L.CONTROL, "TA"])]
    rank = {**{t: i for i, t in enumerate(dict.fromkeys(rows["tasks"]))}, "TA": 0, "LATA": 1, L.CONTROL: 2}
    mean = rows.groupby(["tasks", "method"], sort=False)[["ppl", *L.TASKS]].mean()
    display(_fmt(mean.sort_index(key=lambda level: level.map(rank))))      # per task set: TA, LATA, control
    verdict = L.control_verdict(evidence)
    display(verdict_table([verdict]))
    return verdict


def variants(ch, sigma: float = 0.95):
    """LATA's three variants on Table 3's task sets (ours only; seed 0)."""
    t3 = ch.table("table3")["rows"]
    runs = [L.run_from_row(r, sigma, ch.seeds[0]) for r in t3 if r["method"] == "TA"]
    runs += [L.run_from_row({**r, "lata_variant": v}, sigma, ch.seeds[0]) for r in t3 if r["method"].startswith("LATA")
             for v in L.VARIANTS]
    frame = L.score_runs(ch, runs, "variants").rows
    frame.to_csv(ch.out / "variants.csv", index=False)
    display(_fmt(frame.drop(columns=["table", "p", "k", "seed"])))


def claims(ch, evidence: dict, summary_name: str = "summary.json") -> list[dict]:
    """Every claim of the page: our verdict, the paper's own numbers through the same test, where
    the paper contradicts itself; the JSON summary; returns the claim records."""
    paper_ev = L.paper_evidence(ch.paper, [t for t in evidence if t.startswith("table") or t == "fig4"])
    return pages.show_claims(ch, evidence, paper_ev, ("base", "instruct", "ua", "math", "code"), summary_name,
                             L.shared_evidence(evidence))


def learning_reading(ch, rows: list[dict], evidence, control_verdict) -> dict:
    """Values the page's Reading glues in (numbers and verdict words)."""
    by = {r["claim"]: r for r in rows}
    counts = pages.claim_counts(rows)
    layers = evidence["layers"].rows
    spread = (layers.groupby(["expert", "seed"]).cosine.max() - layers.groupby(["expert", "seed"]).cosine.min()).max()
    values = {"n_claims": counts["claims"], "n_reproduced": counts["reproduced"],
              "n_not": counts["not reproduced"], "n_inconclusive": counts["inconclusive"],
              "n_paper_contradicts": sum(bool(r["contradicted_by_paper"]) for r in rows),
              "cos_min": float(layers.cosine.min()), "cos_max": float(layers.cosine.max()), "cos_spread": float(spread),
              "blocks": ch.scale()["layers"], "paper_layers": ch.paper["model_layers"]["gemma_2_9b"]}
    for cid in ("fig5_late_layers", "table3_best_utility", "tables5_6_robust", "table4_lata_alone_best"):
        if cid in by:
            values[f"{cid}_verdict"] = by[cid]["verdict"]
    if "fig5_late_layers" in by:
        values["late_share"] = by["fig5_late_layers"]["estimate"]
    if "table3_best_utility" in by:
        for p in by["table3_best_utility"]["parts"]:
            values[f"t3_{p['part'].split('/')[-1]}"] = p["estimate"]
    if control_verdict is not None:
        values["control_verdict"] = control_verdict.verdict
        values["control_tasks"], values["control_ppl"] = (p.estimate for p in control_verdict.parts)
    return pages.glue(values)


# ----------------------------------------------------------------------------- page 2: forgetting


def ua_layers(ch, sigma: float = 0.95):
    """The UA vector's block cosines and the share Drop-with-Threshold keeps (a data frame)."""
    layers = L.layers_for(ch, experts=("ua",), sigma=sigma)
    kept = L.retained_fraction(layers, sigma)
    display(_fmt(layers.pivot(index="layer", columns="seed", values="cosine")))
    paper_kept = ch.figure("fig5")["text_values"]["forgetting_threshold"]
    display(Markdown(f"Blocks with cosine below σ = {sigma:g} (subtracted): " +
                     ", ".join(f"seed {s}: {v:.0%}" for (_, s), v in sorted(kept.items())) +
                     f" (paper, line {paper_kept['line']}: about {paper_kept['fraction_layers_retained']:.0%})."))
    return layers


def forgetting(ch, ua_layers, languages: str, sigma: float, lam_lata: float, lam_ta: float, sa_density: float,
               dare_p: float):
    """Fig. 4: harm and in-language perplexity per language target and method, and the claims
    under it. Returns the evidence (``fig4``, ``ua_layers``)."""
    from reprolib.zoo.data import LANGUAGES

    langs = list(LANGUAGES) if languages == "all" else [x.strip() for x in languages.split(",")]
    ev = L.forgetting_evidence(ch, langs, sigma, lam_lata, lam_ta, sa_density, dare_p)
    ev.rows.to_csv(ch.out / "forgetting.csv", index=False)
    fig = plots.forgetting_plot(ev.rows, title=f"LATA Fig. 4 at {ch.profile} scale (mean over {len(ch.seeds)} UA seeds, bars: min–max)")
    display(Image(filename=str(plots.save(fig, ch.out / "fig4_forgetting.png"))))
    display(_fmt(ev.rows.groupby(["language", "method"], sort=False)[["harm", "ppl"]].mean().unstack("method")))
    sa = L.main_settings()["sa_lambda"]
    display(Markdown("Safety Arithmetic λ per target (the paper's per-language λ, line 626): " +
                     ", ".join(f"{lang} ({L.PAPER_LANGUAGES[lang]}) {sa[L.PAPER_LANGUAGES[lang]]:g}" for lang in langs) + "."))
    german = ch.figure("fig4")["values"]["german_harm"]
    display(Markdown(f"**Paper (Fig. 4, line {ch.figure('fig4')['line']}; one value is printed):** German harm "
                     f"{german['before']:.2f} before, {german['after_lata']:.2f} after LATA."))
    evidence = {"fig4": ev, "ua_layers": Evidence(ua_layers)}
    display(Markdown(pages.claim_line(ch, ch.verdicts(evidence), "fig4")))
    return evidence


def forgetting_reading(ch, rows: list[dict], evidence, sigma: float) -> dict:
    ev, layers = evidence["fig4"], evidence["ua_layers"].rows
    mean = ev.rows.groupby("kind")[["harm", "ppl"]].mean()
    by = {r["claim"]: r for r in rows}
    kept = statistics.fmean(L.retained_fraction(layers, sigma).values())
    values = {"harm_original": mean.loc["original", "harm"], "harm_lata": mean.loc["LATA", "harm"],
              "harm_ta": mean.loc["TA", "harm"], "ppl_original": mean.loc["original", "ppl"],
              "ppl_lata": mean.loc["LATA", "ppl"], "ppl_ta": mean.loc["TA", "ppl"], "kept_share": kept,
              "paper_kept": ch.figure("fig5")["text_values"]["forgetting_threshold"]["fraction_layers_retained"],
              "forgetting_verdict": by["forgetting_harm"]["verdict"],
              "beats_ta_verdict": by.get("ten_percent_beats_ta", {}).get("verdict", "not tested"),
              "kept_note": ("no block is below σ, so LATA subtracts nothing" if kept == 0 else
                            "every block is below σ, so LATA subtracts the UA vector of every block (not its embedding change)"
                            if kept == 1 else "LATA subtracts the UA vector of those blocks only (not its embedding change)")}
    return pages.glue(values)
