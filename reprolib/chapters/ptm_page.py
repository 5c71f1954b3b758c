"""What the Merge to Learn page shows, one function per section, so the notebook stays a few lines.

Each function runs through ``reprolib.chapters.ptm_runs`` (checkpoints and merges scored on the
kit), shows the paper's numbers beside ours (both in percent), writes its results under the
chapter's output folder and returns the Evidence the claims (``reprolib.chapters.ptm``) read.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display

from reprolib import plots
from reprolib.chapters import ptm as C
from reprolib.chapters import ptm_runs as R
from reprolib.kit import pages
from reprolib.kit.pareto import front_curve

METHOD_STYLE = {"cft": ("CFT", "tab:red", "s"), "rt": ("RT", "tab:blue", "D"), "ptm": ("PTM (task arithmetic)", "tab:green", "o"),
                "linear": ("linear interpolation", "tab:purple", "^"), "wise_ft": ("WiSE-FT", "tab:orange", "v"),
                "base": ("θ_G (general model)", "black", "*")}
AMOUNT_LABEL = {"_25": "¼ D", "_50": "½ D", "": "all of D"}      # CFT / RT role suffixes
AXIS = {"general": "general (%)", "science": "science (%)", "safety": "safety: unsafe prompts refused (%)",
        "coding": "coding pass@1 (%)", "exref": "safe look-alikes complied with (%)"}


def open_ptm(**params):
    from reprolib.kit.chapter import open_chapter

    return open_chapter("ptm", "ptm", claims=C.CLAIMS, n_seeds=1,
                        paper_scale="Llama 2 7B fine-tuned on Tulu V2 (general), SciRIFF, an internal refusal set and "
                                    "CodeFeedback", **params)


def _number(x: float) -> str:
    """4 significant digits, but whole numbers of steps in full (11766, not 1.177e+04)."""
    return f"{x:.0f}" if abs(x) >= 1e4 and float(x).is_integer() else f"{x:.4g}"


def _fmt(frame):
    return pages.fmt(frame, _number)


def _show(fig, path):
    display(Image(filename=str(plots.save(fig, path))))


# ----------------------------------------------------------------------------- compute


def compute(ch, runs) -> dict:
    """Training steps of each method's pool, from the recorded steps, beside the paper's (Table 3)."""
    import pandas as pd

    ours, flops = runs.compute(), runs.compute("flops")
    paper = {r["model"]: r["training_steps"] for r in ch.table("table3")["rows"]}
    names = {"science": "Science", "safety": "Safety", "coding": "Coding"}
    rows = []
    for skill, c in ours.items():
        p = {m: paper[f"Best {m.upper()} ({names[skill]})"] for m in ("ptm", "cft", "rt")}
        rows.append({"skill": skill, "|G| steps": c["general"], "PTM steps (|D|)": c["ptm"], "CFT steps (Σ|D_i|)": c["cft"],
                     "RT steps (n|G| + Σ|D_i|)": c["rt"], "ω = |D|/|G|": runs.omega_heuristic[skill],
                     "PTM / RT % ours": C.ratio(c["ptm"], c["rt"]), "PTM / RT % paper": C.ratio(p["ptm"], p["rt"]),
                     "PTM / RT % ours (FLOPs)": C.ratio(flops[skill]["ptm"], flops[skill]["rt"]),
                     "PTM / CFT % ours": C.ratio(c["ptm"], c["cft"]), "PTM / CFT % paper": C.ratio(p["ptm"], p["cft"])})
    frame = pd.DataFrame(rows)
    frame.to_csv(ch.out / "compute.csv", index=False)
    display(Markdown(f"<a id=\"compute\"></a>\n\n### Compute (training steps, recorded by the zoo)\n\n*Each method's pool "
                     f"of models, as the paper counts it (Sections 2.1–2.3): PTM trains one skill model on all of D and "
                     f"sweeps ω for free; CFT trains {len(runs.amounts)} subsamples D_i from θ_G; RT retrains from θ_pre "
                     f"on G + D_i for each. The paper trains 5 amounts; its ratios are from Table 3's step counts.*"))
    display(_fmt(frame))
    return ours


# ----------------------------------------------------------------------------- Table 2 and Fig. 1


def science(ch, runs, sweep, omega_grid, val_size: int, computed: dict) -> dict:
    """Table 2 (the best of each method by science validation) and Fig. 1 (PTM's ω curves)."""
    import pandas as pd

    table2, val = R.table2(runs, omega_grid, val_size, computed)
    fig1 = R.fig1(runs, sweep)
    table2.rows.to_csv(ch.out / "table2.csv", index=False)
    fig1.rows.to_csv(ch.out / "fig1.csv", index=False)
    evidence = {"table2": table2, "fig1": fig1}
    verdicts = ch.verdicts(evidence)
    table = ch.table("table2")
    frame = pages.beside(C._table2(ch.paper), table2.rows, ["method"], ["general", "science", "steps"])
    pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] +
                     f" Ours: chosen on {val_size} validation items per candidate (science), scored on the test split; "
                     "steps = the method's pool.", _fmt(frame), pages.table_notes(table),
                     pages.claim_line(ch, verdicts, "table2", evidence), anchor="table2")
    display(Markdown("Validation scores of every candidate (what Table 2 chose from):"))
    display(_fmt(pd.DataFrame(val)))
    display(Markdown('<a id="fig1"></a>\n\n### Fig. 1 — trade-offs managed through ω\n\n*General against skill score '
                     "along PTM's ω curve (ω = 0 is θ_G; labels are ω), the heuristic ω = |D|/|G| starred.*"))
    _show(_curves_figure(fig1.rows, runs.omega_heuristic), ch.out / "fig1.png")
    display(Markdown(pages.claim_line(ch, verdicts, "fig1", evidence) or ""))
    return evidence


def _curves_figure(rows, heuristic):
    plots.style()
    panels = [(s, s) for s in C.SKILLS] + [("safety", "exref")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (skill, col) in zip(axes, panels):
        d = rows[rows.skill == skill].sort_values("omega")
        ax.plot(d[col], d.general, "-o", color="tab:green", ms=4)
        for _, r in d.iterrows():
            ax.annotate(f"{r.omega:g}", (r[col], r.general), fontsize=6, xytext=(2, 2), textcoords="offset points")
        h = d[d.heuristic]
        ax.scatter(h[col], h.general, marker="*", s=220, c="gold", edgecolors="k", zorder=5,
                   label=f"heuristic ω = {heuristic[skill]:.3g}")
        ax.set(xlabel=AXIS[col], ylabel=AXIS["general"], title=f"{skill}" + (" (exaggerated refusals)" if col == "exref" else ""))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Fig. 2


def wise_ft(ch, runs, omega_grid) -> dict:
    fig2 = R.fig2(runs, omega_grid)
    fig2.rows.to_csv(ch.out / "fig2.csv", index=False)
    plots.style()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for data, colour in (("skill", "tab:orange"), ("mix", "tab:brown")):
        d = fig2.rows[fig2.rows.data == data].sort_values("omega")
        ax.plot(d.science, d.general, "-o", color=colour, label={"skill": "CFT on science only", "mix": "CFT on science + matching G"}[data])
        for _, r in d.iterrows():
            ax.annotate(f"{r.omega:g}", (r.science, r.general), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel=AXIS["science"], ylabel=AXIS["general"], title="Fig. 2: WiSE-FT θ_G + ω τ_CFT")
    ax.legend(fontsize=7)
    display(Markdown('<a id="fig2"></a>\n\n### Fig. 2 — WiSE-FT with and without general data'))
    _show(fig, ch.out / "fig2.png")
    display(_fmt(fig2.rows.pivot_table(index="omega", columns="data", values=["general", "science"])))
    evidence = {"fig2": fig2}
    display(Markdown(pages.claim_line(ch, ch.verdicts(evidence), "fig2", evidence) or ""))
    return evidence


# ----------------------------------------------------------------------------- Table 3, Figs. 3–6


def settings(ch, runs, sweep, computed) -> dict:
    """Table 3 (percentage changes, best of each method), Figs. 4–5 (general vs exaggerated
    refusals), Fig. 6 (every checkpoint with each method's Pareto front) and Fig. 3 (three PTM methods)."""
    import pandas as pd

    table3, candidates = R.table3(runs, sweep, computed)
    fig6, fig3 = R.fig6(sweep), R.fig3(sweep)
    for name, ev in (("table3", table3), ("fig6", fig6), ("fig3", fig3)):
        ev.rows.to_csv(ch.out / f"{name}.csv", index=False)
    pd.DataFrame(candidates).to_csv(ch.out / "table3_candidates.csv", index=False)
    evidence = {"table3": table3, "fig6": fig6, "fig3": fig3}
    verdicts = ch.verdicts(evidence)
    table = ch.table("table3")
    ours = {(s, m): d for s in C.SETTINGS for m, d in C._deltas(table3.records(), s).items()}
    rows = []
    for r in table["rows"]:
        name, setting = r["model"].rstrip(")").split(" (", 1)
        key = (C.SETTING_OF[setting], C.METHOD_OF[name])
        first, second = C.TABLE3[key[0]]
        picked = table3.rows[(table3.rows.setting == key[0]) & (table3.rows.method == key[1])].iloc[0]
        rows.append({"model": r["model"], "columns": f"{first} / {second}",
                     "% Δ first paper": r["delta_general"], "% Δ first ours": ours[key][0],
                     "% Δ second paper": r["delta_specialized"], "% Δ second ours": ours[key][1],
                     "steps paper": r["training_steps"], "steps ours": picked.steps,
                     "ours: chosen": AMOUNT_LABEL.get(picked.amount, picked.amount) if isinstance(picked.amount, str)
                     else f"ω = {picked.omega:g}"})
    base = {c: float(v) for c, v in table3.rows[table3.rows.method == "base"][list(C.COLUMNS)].max().items() if v == v}
    pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] +
                     " Ours: the best of each method by the mean of its two changes (line 181) among the amounts "
                     "(CFT, RT) and ω ∈ omega_grid (PTM), chosen on the evaluation items themselves as the paper's rule "
                     "reads (the claims' intervals do not include that choice); steps = the method's pool. Our θ_G scores "
                     + ", ".join(f"{c} {v:.3g} %" for c, v in base.items()) + ": a change over a small baseline is "
                     f"large (a baseline under {C.FLOOR:g} % counts as {C.FLOOR:g} %).", _fmt(pd.DataFrame(rows)),
                     pages.table_notes(table), pages.claim_line(ch, verdicts, "table3", evidence), anchor="table3")
    display(Markdown('<a id="fig6"></a>\n\n### Figs. 4–6 — general against specialised skill, every checkpoint\n\n'
                     "*Each CFT and RT amount and each PTM ω, with each method's Pareto front (the points no other point "
                     "of that method beats on both axes); the last panel is Figs. 4–5: general against exaggerated "
                     "refusals, the heuristic's point starred.*"))
    _show(_pareto_figure(fig6.rows, runs.omega_heuristic), ch.out / "fig6.png")
    display(Markdown(pages.claim_line(ch, verdicts, "fig6", evidence) or ""))
    display(Markdown('<a id="fig3"></a>\n\n### Fig. 3 — three PTM methods\n\n*Task arithmetic (PTM), linear '
                     "interpolation (eq. 4) and WiSE-FT (eq. 6) along omega_grid, all of D in each.*"))
    _show(_methods_figure(fig3.rows), ch.out / "fig3.png")
    display(Markdown(pages.claim_line(ch, verdicts, "fig3", evidence) or ""))
    return evidence


def _pareto_figure(rows, heuristic):
    plots.style()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, setting in zip(axes, C.SETTINGS):
        d = rows[rows.setting == setting]
        for method in ("cft", "rt", "ptm"):
            label, colour, marker = METHOD_STYLE[method]
            m = d[d.method == method]
            ax.scatter(m[setting], m.general, c=colour, marker=marker, s=22, label=label, alpha=0.8)
            if len(m):
                front = front_curve(list(zip(m[setting], m.general)))
                ax.plot([p[0] for p in front], [p[1] for p in front], color=colour, lw=1.2)
        b = d[d.method == "base"]
        ax.scatter(b[setting], b.general, c="black", marker="*", s=120, label=METHOD_STYLE["base"][0])
        if setting == "exref":
            skill = "safety"
            h = d[(d.method == "ptm") & ((d.omega - heuristic[skill]).abs() < 1e-9)]
            ax.scatter(h[setting], h.general, marker="*", s=220, c="gold", edgecolors="k", zorder=5, label="heuristic ω")
        ax.set(xlabel=AXIS[setting], ylabel=AXIS["general"], title=setting)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _methods_figure(rows):
    plots.style()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, skill in zip(axes, C.SKILLS):
        for method in ("ptm", "linear", "wise_ft"):
            label, colour, marker = METHOD_STYLE[method]
            d = rows[(rows.skill == skill) & (rows.method == method)].sort_values("omega")
            ax.plot(d[skill], d.general, "-", marker=marker, color=colour, label=label, ms=4)
        ax.set(xlabel=AXIS[skill], ylabel=AXIS["general"], title=skill)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Tables 4–6


def several_skills(ch, runs) -> dict:
    evidence = R.multi_skill(runs)
    verdicts = ch.verdicts(evidence)
    build = {"table4": (C._table4, ["method"]), "table5": (C._table5, ["skills"]), "table6": (C._table6, ["method"])}
    for tid, ev in evidence.items():
        ev.rows.to_csv(ch.out / f"{tid}.csv", index=False)
        rows_of, labels = build[tid]
        table = ch.table(tid)
        frame = pages.beside(rows_of(ch.paper), ev.rows, labels, list(C.COLUMNS))
        extra = (f" Ours: PTM with ω = |D|/|G| per skill ({', '.join(f'{k} {w:.3g}' for k, w in runs.omega_heuristic.items())}), "
                 f"from the recorded steps." + (f" TIES: density {R.TIES_DENSITY}, weighted sign election, no division "
                                                f"(mergekit normalize: false); DARE: drop rate {R.DARE_DROP}, same weights."
                                                if tid == "table6" else ""))
        pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] + extra, _fmt(frame),
                         pages.table_notes(table), pages.claim_line(ch, verdicts, tid, evidence), anchor=tid)
    return evidence


# ----------------------------------------------------------------------------- claims and reading


def claims(ch, evidence: dict, runs) -> list[dict]:
    """Every claim (``heuristic_curve`` reruns ``intro_heuristic``'s merges: shown, not counted again),
    then the sentences left untested and why."""
    paper_ev = C.paper_evidence(ch.paper, list(evidence))
    rows = pages.show_claims(ch, evidence, paper_ev, runs.roles(), repeats={"heuristic_curve": "intro_heuristic"},
                             extra={"omega_heuristic": runs.omega_heuristic, "compute": runs.compute()})
    display(Markdown("**Sentences not tested on their own**, and why:\n\n"
                     + "\n".join(f"- {where}: {why}." for where, why in C.NOT_TESTED.items())))
    return rows


def reading(ch, rows: list[dict], evidence: dict, computed: dict) -> dict:
    counts = pages.claim_counts(rows)
    t3 = evidence["table3"].records()
    deltas = {s: C._deltas(t3, s) for s in C.SETTINGS}
    paper = {r["model"]: r["training_steps"] for r in ch.table("table2")["rows"]}
    from pathlib import Path

    values = {"profile": f"`{Path(ch.profile).stem}`", "n_params": ch.scale()["parameters"] / 1e6, "n_amounts": len(R.AMOUNTS),
              "paper_rt_pct": C.ratio(paper["Best PTM"], paper["Best RT"]),
              "paper_cft_pct": C.ratio(paper["Best PTM"], paper["Best CFT"]), "n_claims": counts["claims"], "n_reproduced": counts["reproduced"], "n_not": counts["not reproduced"],
              "n_inconclusive": counts["inconclusive"],
              "ptm_rt_pct": C.ratio(computed["science"]["ptm"], computed["science"]["rt"]),
              "ptm_cft_pct": C.ratio(computed["science"]["ptm"], computed["science"]["cft"]),
              "cft_gen_drop": -min(deltas[s]["cft"][0] for s in C.SKILLS),
              "ptm_gen_change": min(deltas[s]["ptm"][0] for s in C.SKILLS),
              "exref_ptm": deltas["exref"]["ptm"][0], "exref_cft": deltas["exref"]["cft"][0],
              "exref_rt": deltas["exref"]["rt"][0]}
    return pages.glue(values)
