"""What the τJp page (part 1, vision) shows, one function per section, so the notebook stays a few lines.

Each function reads ``reprolib.chapters.taujp_runs`` (the vision zoo's task vectors, evaluated and
cached per seed), shows the paper's numbers beside ours, writes its results under the chapter's
output folder and returns the Evidence the claims (``reprolib.chapters.taujp``) read.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from reprolib import plots
from reprolib.chapters import taujp as C
from reprolib.chapters import taujp_runs as R
from reprolib.kit import pages

LABEL = {"pretrained": "Pre-trained", "individual": "Individual (non-linear FT, each task alone)",
         "nonlinear": "Non-linear FT", "linear": "Linear FT", "ties": "TIES-merging", "ours": "Ours (linear FT + τJp reg.)",
         "mtl": "MTL", "adamerging": "AdaMerging"}
STYLE = {"nonlinear": "tab:blue", "linear": "tab:orange", "ours": "tab:red", "pretrained": "tab:green", "ties": "tab:purple"}
PAPER_SCALE = ("the image encoders of CLIP ViT-B-32, ViT-B-16 and ViT-L-14 (88 M – 304 M parameters) fine-tuned on Cars, DTD, EuroSAT, GTSRB, "
               "MNIST, RESISC45, SUN397 and SVHN, ImageNet as the control task")


def open_taujp(profile: str = "mini", zoo_root: str = "zoo", n_seeds: int = 3, penalty: float | None = None,
               eval_size: int = 200, val_size: int = 200, addition_grid=None, negation_grid=None,
               cache_dir: str = "results/cache", out_dir: str = "results", progress: bool = True):
    """The chapter frame and its runs: the vision zoo ``profile`` (θ0 and every task vector, built where
    missing; a language paper profile, which has no vision models, runs the ``mini`` vision zoo),
    ``penalty`` λ (None: the profile's), the coefficient grids (None: the paper's)."""
    from reprolib.cache import ResultCache
    from reprolib.kit.chapter import open_frame
    from reprolib.paths import project_path
    from reprolib.vision import arithmetic as A
    from reprolib.vision.zoo import VisionZoo

    from reprolib.vision.zoo import PROFILES

    if n_seeds < 1:
        raise ValueError(f"parameter 'n_seeds' = {n_seeds} must be >= 1")
    if profile not in PROFILES:
        display(Markdown(f"Profile `{profile}` is not a vision zoo profile ({', '.join(PROFILES)}): the paper's CLIP "
                         "models cannot be loaded here, so this chapter runs the `mini` vision zoo."))
        profile = "mini"
    overrides = {} if penalty is None else {"penalty": float(penalty)}
    if penalty is not None and penalty <= 0:
        raise ValueError(f"parameter 'penalty' = {penalty} must be > 0")
    zoo = VisionZoo(profile, root=project_path(zoo_root), progress=progress, **overrides)
    settings = R.Settings(eval_size=eval_size, val_size=val_size,
                          addition_grid=A.check_grid("addition_grid", A.ADDITION_GRID if addition_grid is None
                                                     else addition_grid, 0.0, 1.0),
                          negation_grid=A.check_grid("negation_grid", A.NEGATION_GRID if negation_grid is None
                                                     else negation_grid, 0.0, 10.0, with_zero=True))
    backbone = zoo.backbone()
    p = zoo.profile
    scale = {"profile": p.name, "kind": f"{p.name} vision zoo (built here from generated images)",
             "description": f"TinyViT, {p.depth} blocks × {p.dim} hidden, 16 × 16 grey images in 4 × 4 patches, eight "
                            f"generated tasks; λ = {p.penalty:g}, {p.ft_steps} fine-tuning steps per task",
             "parameters": sum(v.numel() for v in backbone.parameters())}
    ch = open_frame("taujp", "taujp", profile=p.name, scale=scale, seeds=list(range(n_seeds)), out_dir=out_dir,
                    eval_size=eval_size, paper_scale=PAPER_SCALE, claims=C.CLAIMS)
    runs = R.VisionRuns(zoo, list(range(n_seeds)), ResultCache(project_path(cache_dir), "taujp"), settings, progress)
    runs.build()
    return ch, runs


def _show(fig, path):
    display(Image(filename=str(plots.save(fig, path))))


_fmt = pages.fmt


def _record(ch, name: str, ev, **more):
    """Write a section's runs to ``<name>.csv`` (and each of ``more``, name → Evidence, to its own);
    return the evidence and the claims' verdicts on all of it, computed once."""
    evidence = {name: ev, **more}
    for n, e in evidence.items():
        e.rows.to_csv(ch.out / f"{n}.csv", index=False)
    return evidence, ch.verdicts(evidence)


def _seed_mean(rows, by, columns):
    return rows.groupby(by, sort=False)[list(columns)].mean().reset_index()


# ----------------------------------------------------------------------------- the zoo


def vision_zoo(ch, runs) -> None:
    """θ0 (pre-training, probe accuracies) and the fine-tuning runs: settings, seconds, final losses."""
    import json

    import pandas as pd

    zoo = runs.zoo
    prov = json.loads((zoo.folder() / "provenance.json").read_text())
    rows = []
    for seed in runs.seeds:
        for method, regime in R.REGIME.items():
            p = zoo.provenance(regime, seed)
            rows.append({"regime": LABEL[method], "seed": seed, "seconds (8 tasks)": p["seconds"],
                         "mean final loss": float(np.mean([v["final_loss"] for v in p["losses"].values()]))})
    frame = pd.DataFrame(rows)
    frame.to_csv(ch.out / "finetuning.csv", index=False)
    display(Markdown("**Fine-tuning, the paper's settings (Appendix B.1–B.2) beside ours.** Ours are scaled to a "
                     f"{ch.scale()['parameters'] / 1e6:.2f} M-parameter ViT trained from a weak θ0 on a 2-core CPU; λ is "
                     "fixed in the zoo profile before the chapter runs (the paper tunes it on one task's validation "
                     "accuracy and reuses it for every task)."))
    settings_table(ch, zoo.profile, runs.settings)
    display(Markdown(f"θ0: {prov['pretrain']['parameters']:,} parameters, pre-trained for {prov['pretrain']['steps']} steps "
                     f"on rotation prediction (final loss {prov['pretrain']['final_loss']:.3f}; chance ln 4 = 1.386) in "
                     f"{prov['seconds']:.0f} s. Linear-probe heads, training accuracy: "
                     + ", ".join(f"{t} {a:.2f}" for t, a in prov["probe_train_accuracy"].items()) + "."))
    display(_fmt(frame))


def grid_text(grid) -> str:
    """A coefficient grid in words: "0, 0.05, …, 1 (21 values)" when evenly spaced, else every value."""
    grid = list(grid)
    steps = {round(b - a, 9) for a, b in zip(grid, grid[1:])}
    if len(grid) > 4 and len(steps) == 1:
        return f"{grid[0]:g}, {grid[1]:g}, …, {grid[-1]:g} ({len(grid)} values)"
    return ", ".join(f"{a:g}" for a in grid)


def settings_table(ch, profile, settings) -> None:
    """Display the fine-tuning and coefficient settings, the paper's beside ours."""
    hp = ch.paper["hyperparameters"]
    ft, reg = hp["finetune_vision"], hp["regularizer"]
    rows = [("steps per task", ft["steps"], profile.ft_steps), ("batch", ft["batch_size"], profile.ft_batch),
            ("optimiser, learning rate", f"{ft['optimizer']}, {ft['lr']:g}", f"AdamW, {profile.ft_lr:g}"),
            ("weight decay", ft["weight_decay"], 0.0),
            ("schedule", f"{ft['schedule']}, {ft['warmup_steps']} warm-up steps", "constant"),
            ("penalty batch (share of the task batch)", reg["batch_fraction"]["vision"], profile.reg_batch / profile.ft_batch),
            ("λ", f"tuned over {reg['lambda_grid']}", profile.penalty),
            ("addition grid", "0, 0.05, …, 1.0", grid_text(settings.addition_grid)),
            ("negation grid", "0, 0.1, …, 3.0", grid_text(settings.negation_grid)),
            ("TIES", "not stated", f"top {settings.ties_density:.0%} over the whole vector, λ on the addition grid")]
    pages.settings_frame(rows)


# ----------------------------------------------------------------------------- Tables 1 and 2


def _beside(ch, table_id: str, ours, columns):
    """The paper's rows (all three ViTs) with our mean over seeds beside them, matched by (method, coef)."""
    import pandas as pd

    table = ch.table(table_id)
    mean = _seed_mean(ours, ["method", "coef"], [c for c in columns if c in ours] + ["alpha"] * ("alpha" in ours))
    rows = []
    for r in table["rows"]:
        method, coef = C.METHOD_OF[r["method"]], C.COEF_OF[r["coef"]]
        row = {"method": LABEL.get(method, method), "coef.": r["coef"]}
        for s, name in zip(C.SCALES, ("ViT-B-32", "ViT-B-16", "ViT-L-14")):
            for c in columns:
                row[f"{name} {c} paper"] = r.get(f"{s}_{c}")
        match = mean[(mean["method"] == method) & (mean["coef"] == coef)]
        for c in columns:
            row[f"{c} ours"] = float(match[c].iloc[0]) if len(match) and c in match and match[c].notna().any() else None
        if "alpha" in mean:
            row["α ours"] = float(match["alpha"].iloc[0]) if len(match) and match["alpha"].notna().any() else None
        rows.append(row)
    return _fmt(pd.DataFrame(rows))


def table1(ch, runs) -> dict:
    """Table 1: task addition of the eight task vectors, coefficients 1.0 and grid-searched."""
    ev = R.table1(runs, ch.profile)
    evidence, verdicts = _record(ch, "table1", ev)
    table = ch.table("table1")
    pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] + " Ours: mean over "
                     f"{len(runs.seeds)} training seeds, {runs.settings.eval_size} test images per task; α ours = the "
                     "unified coefficient (mean over seeds; TIES: its λ). MTL and AdaMerging are not run here.",
                     _beside(ch, "table1", ev.rows, ("abs", "norm")), pages.table_notes(table),
                     pages.claim_line(ch, verdicts, "table1", evidence), anchor="table1")
    return evidence


def table2(ch, runs) -> dict:
    """Table 2: task negation, each task vector subtracted alone; the control task is rotation prediction."""
    ev = R.table2(runs, ch.profile)
    evidence, verdicts = _record(ch, "table2", ev)
    table = ch.table("table2")
    frame = _beside(ch, "table2", ev.rows, ("targ", "cont"))
    ref = ev.rows.groupby(["method", "coef"], sort=False)["reference"].mean()
    frame["ours: seeds below 95 % control"] = [ref.get((C.METHOD_OF[r["method"]], C.COEF_OF[r["coef"]])) for r in table["rows"]]
    pre = ev.rows[ev.rows.method == "pretrained"]["cont"].mean()
    pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] + " Ours: the control task is the "
                     f"rotation prediction θ0 was pre-trained on (the paper's ImageNet); θ0 scores {pre:.1f} % on it "
                     "(chance 25 %: many generated images look the same turned). 'seeds below 95 % control' is the share "
                     "of seeds whose row-mean control accuracy on the test split is under 95 % of θ0's (the paper prints "
                     "such rows in parentheses; it applies the rule on validation). α ours: the mean chosen α over the "
                     "eight targets.",
                     frame, pages.table_notes(table), pages.claim_line(ch, verdicts, "table2", evidence), anchor="table2")
    return evidence


# ----------------------------------------------------------------------------- pairs: Figs. 1, 2, 6, 7, 8


def pairs(ch, runs) -> dict:
    ev = R.pairs(runs)
    evidence, verdicts = _record(ch, "pairs", ev)
    rows = ev.rows
    display(Markdown('<a id="fig1"></a>\n\n### Fig. 1 — weight disentanglement against τJp\n\n*Weight-disentanglement '
                     "error ξ(α_A, α_B) (Eq. 2, 0 … 2: the share of each task's test images whose prediction changes "
                     "when the other vector is added) over α ∈ [−2, 3]², for the pairs with the largest, median and "
                     "smallest τJp under linear FT (top) and the same pairs with the τJp penalty (bottom); seed 0. The "
                     "box is the usual search range [0, 1]², the cross θ0.*"))
    _show(_maps_figure(runs), ch.out / "fig1.png")
    display(Markdown('<a id="fig2"></a>\n\n### Fig. 2 — τJp against normalised accuracy, the 28 pairs\n\n*Each point a '
                     "pair of tasks added with the α chosen on validation; every seed; linear FT (blue) and ours "
                     "(orange).*"))
    _show(_scatter(rows, "taujp", "norm", "normalised accuracy of the pair (%)"), ch.out / "fig2.png")
    rho = {v.claim: v for v in verdicts}["taujp_tracks_accuracy"]
    ours_rho = [C.spearman(list(g.taujp), list(g.norm)) for _, g in rows[rows.method == "ours"].groupby("seed")]
    display(Markdown(f"Spearman's ρ between τJp and the pair's normalised accuracy, linear FT: **{rho.estimate:.2f}** "
                     f"(95 % interval over {rho.n} training seeds and the test images: {rho.ci[0]:.2f} to {rho.ci[1]:.2f}; "
                     f"28 pairs per seed; per seed {', '.join(f'{x:.2f}' for x in rho.values)}). With the penalty, per seed: "
                     f"{', '.join(f'{x:.2f}' for x in ours_rho)}."))
    display(Markdown('<a id="fig6"></a>\n\n### Figs. 6–7 — τJp and cosine per pair\n\n*Mean over seeds. Fig. 6\'s '
                     "diagonal is a task vector on its own task, ‖τ_t·∇θ f(x_t; θ0)‖²; Fig. 7's is 1.*"))
    own = {m: {t: float(np.mean([runs.result(s)["own"][m][t] for s in runs.seeds])) for t in R.TASKS} for m in R.PAIR_METHODS}
    _show(_heatmaps(rows, "taujp", "τJp", own), ch.out / "fig6.png")
    _show(_heatmaps(rows, "cosine", "cosine of the task vectors", {m: dict.fromkeys(R.TASKS, 1.0) for m in R.PAIR_METHODS}),
          ch.out / "fig7.png")
    display(Markdown('<a id="fig8"></a>\n\n### Fig. 8 — τJp against cosine\n\n*Every pair and seed.*'))
    _show(_scatter(rows, "taujp", "cosine", "cosine of the two task vectors"), ch.out / "fig8.png")
    rho = {m: [C.spearman(list(g.taujp), list(g.cosine)) for _, g in rows[rows.method == m].groupby("seed")]
           for m in R.PAIR_METHODS}
    display(Markdown("Spearman's ρ between τJp and cosine over the 28 pairs, per seed: "
                     + "; ".join(f"{LABEL[m]} {', '.join(f'{x:.2f}' for x in v)}" for m, v in rho.items()) + "."))
    display(Markdown(pages.claim_line(ch, verdicts, "pairs", evidence)))
    return evidence


def _maps_figure(runs):
    plots.style()
    result = runs.result(runs.seeds[0])["pairs"]
    linear = sorted(result["linear"], key=lambda p: p["taujp"])
    chosen = [linear[-1], linear[len(linear) // 2], linear[0]]
    alphas = runs.settings.map_alphas
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.6))
    for col, p in enumerate(chosen):
        for row, method in enumerate(R.PAIR_METHODS):
            q = next(x for x in result[method] if (x["a"], x["b"]) == (p["a"], p["b"]))
            ax = axes[row][col]
            grid = np.array(q["map"]).reshape(len(alphas), len(alphas)).T
            ax.imshow(grid, origin="lower", extent=(alphas[0], alphas[-1], alphas[0], alphas[-1]), vmin=0, vmax=1,
                      cmap="Blues")
            ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, edgecolor="red"))
            ax.plot([0], [0], "r+", markersize=10)
            ax.set_title(f"{'linear FT' if method == 'linear' else 'ours'}: {q['a']} + {q['b']}\nτJp {q['taujp']:.3g}, "
                         f"mean ξ {q['map_mean']:.2f}", fontsize=9)
            ax.set_xlabel(f"α_{q['a']}")
            ax.set_ylabel(f"α_{q['b']}")
    fig.tight_layout()
    return fig


def _scatter(rows, x, y, ylabel):
    plots.style()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, marker, color in (("linear", "o", "tab:blue"), ("ours", "*", "tab:orange")):
        g = rows[rows["method"] == method]
        ax.scatter(g[x], g[y], marker=marker, color=color, s=40 if marker == "*" else 20, label=LABEL[method], alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("τJp (Eq. 9, log scale)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _heatmaps(rows, column, title, diagonal):
    plots.style()
    tasks = list(R.TASKS)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4))
    mean = _seed_mean(rows, ["method", "a", "b"], [column])
    values = {m: np.full((len(tasks), len(tasks)), np.nan) for m in R.PAIR_METHODS}
    for r in mean.to_dict("records"):
        i, j = tasks.index(r["a"]), tasks.index(r["b"])
        values[r["method"]][i, j] = values[r["method"]][j, i] = r[column]
    for m in R.PAIR_METHODS:
        for i, t in enumerate(tasks):
            values[m][i, i] = diagonal[m][t]
    top = np.nanmax([np.nanmax(v) for v in values.values()])
    for ax, method in zip(axes, ("ours", "linear")):
        ax.imshow(values[method], cmap="Reds", vmin=min(0.0, np.nanmin(values[method])), vmax=top)
        for i, j in itertools.product(range(len(tasks)), repeat=2):
            ax.text(j, i, f"{values[method][i, j]:.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(tasks)), tasks, rotation=60, fontsize=8)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
        ax.set_title(f"{title}: {LABEL[method]}", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- per task: Figs. 4–5


def per_task(ch, runs) -> dict:
    ev = R.per_task(runs)
    evidence, verdicts = _record(ch, "per_task", ev)
    mean = _seed_mean(ev.rows, ["stage", "method", "task"], ["acc", "norm"])
    display(Markdown('<a id="fig4"></a>\n\n### Fig. 4 — accuracy after fine-tuning, per task\n\n*Each task vector alone '
                     "at α = 1 (mean over seeds), and θ0 with the frozen head.*"))
    _show(_bars(mean[mean["stage"] == "single"], ["pretrained", "nonlinear", "linear", "ours"], ["acc"]), ch.out / "fig4.png")
    display(Markdown('<a id="fig5"></a>\n\n### Fig. 5 — after adding all eight task vectors, per task\n\n*Absolute (left) '
                     "and normalised (right) accuracy at the α chosen on validation, mean over seeds.*"))
    _show(_bars(mean[mean["stage"] == "addition"], ["nonlinear", "linear", "ours"], ["acc", "norm"]), ch.out / "fig5.png")
    display(Markdown(pages.claim_line(ch, verdicts, "per_task", evidence)))
    return evidence


def _bars(frame, methods, columns):
    plots.style()
    tasks = list(R.TASKS)
    fig, axes = plt.subplots(1, len(columns), figsize=(7 * len(columns), 3.8), squeeze=False)
    width = 0.8 / len(methods)
    for ax, column in zip(axes[0], columns):
        for k, method in enumerate(methods):
            g = frame[frame["method"] == method].set_index("task").reindex(tasks)
            ax.bar(np.arange(len(tasks)) + k * width, g[column], width, label=LABEL[method], color=STYLE[method])
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=45, fontsize=8)
        ax.set_ylabel({"acc": "accuracy (%)", "norm": "normalised accuracy (%)"}[column])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- claims and reading


def claims(ch, evidence: dict, runs) -> list[dict]:
    paper_ev = C.paper_evidence(ch.paper, list(evidence))
    rows = pages.show_claims(ch, evidence, paper_ev, [], extra={"task_vectors": runs.zoo.tv_keys(),
                                                                 "pretrained": runs.zoo.key(),
                                                                 "settings": runs.settings.__dict__})
    display(Markdown("**Sentences not tested here**, and why:\n\n"
                     + "\n".join(f"- {where}: {why}." for where, why in C.NOT_TESTED.items())))
    untested = {where.split(" ")[0] for where in C.NOT_TESTED}
    notes = [f"- *{k}*: {text}" for k, text in ch.paper.get("claim_contradictions", {}).items() if k.split("/")[0] in untested]
    if notes:
        display(Markdown("**Where the paper contradicts itself in a sentence not tested here:**\n\n" + "\n".join(notes)))
    return rows


def near_theta0(table1, methods=(("nonlinear", "non-linear FT", "α"), ("ties", "TIES", "λ"))) -> str:
    """How close the grid-tuned non-linear FT and TIES stay to θ0, from each seed's chosen coefficient
    (Table 1's rows): 'is θ0 itself' only where every seed chose 0."""
    pre = table1[table1["method"] == "pretrained"]["abs"].mean()
    parts = []
    for method, label, symbol in methods:
        tuned = table1[(table1["method"] == method) & (table1["coef"] == "grid")]
        alphas, acc = tuned["alpha"].astype(float), tuned["abs"].mean()
        if (alphas == 0).all():
            parts.append(f"{label} chose {symbol} = 0 on every seed, so it is θ0 itself ({acc:.1f} %)")
        elif alphas.min() == alphas.max():
            parts.append(f"{label} chose {symbol} = {alphas.min():.2f} on every seed and reaches {acc:.1f} %")
        else:
            parts.append(f"{label} chose {symbol} from {alphas.min():.2f} to {alphas.max():.2f} and reaches {acc:.1f} %")
    return f"Against θ0's {pre:.1f} %, {'; '.join(parts)}."


def reading(ch, rows: list[dict], evidence: dict, runs) -> dict:
    counts = pages.claim_counts(rows)
    t1 = _seed_mean(evidence["table1"].rows, ["method", "coef"], ["abs", "norm", "alpha"]).set_index(["method", "coef"])
    pairs = evidence["pairs"].rows
    by = {v["claim"]: v for v in rows}
    paper = {(C.METHOD_OF[r["method"]], C.COEF_OF[r["coef"]]): r for r in ch.table("table1")["rows"]}
    values = {"profile": f"`{ch.profile}`", "n_params": ch.scale()["parameters"] / 1e3, "n_seeds": len(runs.seeds),
              "n_claims": counts["claims"], "n_reproduced": counts["reproduced"], "n_not": counts["not reproduced"],
              "n_inconclusive": counts["inconclusive"],
              "ours_norm_1": t1.loc[("ours", "1.0"), "norm"], "linear_norm_1": t1.loc[("linear", "1.0"), "norm"],
              "nonlinear_norm_1": t1.loc[("nonlinear", "1.0"), "norm"], "ours_abs_grid": t1.loc[("ours", "grid"), "abs"],
              "linear_abs_grid": t1.loc[("linear", "grid"), "abs"], "pre_abs": t1.loc[("pretrained", "-"), "abs"],
              "taujp_linear": float(pairs[pairs["method"] == "linear"]["taujp"].mean()),
              "taujp_ours": float(pairs[pairs["method"] == "ours"]["taujp"].mean()),
              "rho": by["taujp_tracks_accuracy"]["estimate"], "rho_lo": by["taujp_tracks_accuracy"]["ci"][0],
              "rho_hi": by["taujp_tracks_accuracy"]["ci"][1], "rho_verdict": by["taujp_tracks_accuracy"]["verdict"],
              "lowers": "lowers" if pairs[pairs.method == "ours"]["taujp"].mean() < pairs[pairs.method == "linear"]["taujp"].mean()
              else "does not lower",
              "alpha_nonlinear": t1.loc[("nonlinear", "grid"), "alpha"], "alpha_linear": t1.loc[("linear", "grid"), "alpha"],
              "alpha_ties": t1.loc[("ties", "grid"), "alpha"], "alpha_ours": t1.loc[("ours", "grid"), "alpha"],
              "nonlinear_abs_grid": t1.loc[("nonlinear", "grid"), "abs"], "ties_abs_grid": t1.loc[("ties", "grid"), "abs"],
              "near_theta0": near_theta0(evidence["table1"].rows),
              "control_pre": evidence["table2"].rows.query("method == 'pretrained'")["cont"].mean(),
              "grid_add": grid_text(runs.settings.addition_grid), "grid_neg": grid_text(runs.settings.negation_grid),
              "ties_top": f"{runs.settings.ties_density:.0%}",
              **{f"paper_{m}_norm_1": paper[(m, "1.0")]["b32_norm"] for m in ("ours", "linear", "nonlinear")}}
    return pages.glue(values)
