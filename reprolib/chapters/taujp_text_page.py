"""What the τJp text page shows, one function per section: task addition on four GLUE-like tasks (the
paper's Tables 3 and 8; runs: ``reprolib.chapters.taujp_variants.AdditionRuns`` on the text zoo,
``reprolib.text.zoo``) and toxicity negation (Tables 4 and 9; runs: ``reprolib.text.toxicity``); the
claims are ``reprolib.chapters.taujp_text``'s."""

from __future__ import annotations

from IPython.display import Markdown, display

from reprolib.chapters import taujp_text as X
from reprolib.kit import pages

LABEL = {"pretrained": "Pre-trained θ0", "individual": "Individual (non-linear FT, each task alone)", "nonlinear": "Non-linear FT", "linear": "Linear FT", "ties": "TIES-merging",
         "ours": "Ours (linear FT + τJp reg.)"}
STYLE = {"nonlinear": "tab:blue", "linear": "tab:orange", "ties": "tab:purple", "ours": "tab:red"}
PAPER_SCALE = ("T5-small (60 M parameters) fine-tuned on MRPC, RTE, CoLA and SST-2 (task addition); GPT-2 small (124 M "
               "parameters) fine-tuned on Civil Comments with toxicity > 0.8, 1000 generations scored by Detoxify, "
               "WikiText-103 perplexity (negation)")
GLUE_METHODS = ("nonlinear", "linear", "ties", "ours")
TASK_NAME = {"mrpc": "MRPC", "rte": "RTE", "cola": "CoLA", "sst2": "SST-2", "avg": "Avg."}


def open_text(profile: str = "mini", zoo_root: str = "zoo", n_seeds: int = 3, n_samples: int = 200, ppl_texts: int = 24,
              grid=None, cache_dir: str = "results/cache", out_dir: str = "results", progress: bool = True,
              eval_size: int = 200, addition_grid=None):
    """The page's frame and both tracks on the language zoo's ``profile`` base, task vectors built where
    missing (cached by hash), every seed evaluated (cached): toxicity negation (``n_samples``,
    ``ppl_texts``, ``grid``) and four-task addition (``eval_size`` test and as many validation prompts
    per task, ``addition_grid``). Returns (chapter, toxicity track, addition runs)."""
    from reprolib.cache import ResultCache
    from reprolib.chapters.taujp_runs import Settings
    from reprolib.chapters.taujp_variants import AdditionRuns
    from reprolib.kit.chapter import open_frame
    from reprolib.paths import project_path
    from reprolib.text.toxicity import open_toxicity
    from reprolib.text.zoo import TextZoo
    from reprolib.vision.arithmetic import ADDITION_GRID, NEGATION_GRID, check_grid

    from reprolib.zoo.build import PROFILES

    if profile not in PROFILES:
        display(Markdown(f"Profile `{profile}` is not a language zoo profile ({', '.join(PROFILES)}): GPT-2 and Civil "
                         "Comments cannot be loaded here, so this page negates toxicity on the `mini` zoo's base."))
        profile = "mini"
    grid = check_grid("grid", NEGATION_GRID if grid is None else grid, 0.0, 10.0, with_zero=True)
    for name, value in (("n_samples", n_samples), ("ppl_texts", ppl_texts), ("n_seeds", n_seeds)):
        if value < 1:
            raise ValueError(f"parameter {name!r} = {value} must be >= 1")
    addition_grid = check_grid("addition_grid", ADDITION_GRID if addition_grid is None else addition_grid, 0.0, 1.0)
    if eval_size < 1:
        raise ValueError(f"parameter 'eval_size' = {eval_size} must be >= 1")
    tox = open_toxicity(profile, zoo_root, n_seeds, cache_dir=cache_dir, progress=progress, grid=grid,
                        n_samples=n_samples, ppl_texts=ppl_texts, score_samples=min(16, n_samples))
    tox.build()
    text = TextZoo(profile, root=project_path(zoo_root), progress=progress)     # text profiles mirror the language zoo's
    model = tox.vectors.model()
    t, f = tox.vectors.settings, text.profile
    scale = {"profile": profile, "kind": f"{profile} language zoo's base (built here from generated text)",
             "description": f"Llama-style causal LM, {model.config.num_hidden_layers} layers × {model.config.hidden_size} "
                            f"hidden; four task vectors fine-tuned {f.ft_steps} steps each on generated GLUE-like "
                            f"tasks, a toxicity vector {t.steps} steps on generated hostile comments",
             "parameters": sum(p.numel() for p in model.parameters())}
    ch = open_frame("taujp", "taujp_text", profile=profile, scale=scale, seeds=list(range(n_seeds)), out_dir=out_dir,
                    eval_size=eval_size, paper_scale=PAPER_SCALE, claims=X.CLAIMS)
    glue = AdditionRuns(text, list(range(n_seeds)), ResultCache(project_path(cache_dir), "taujp"),
                        Settings(eval_size=eval_size, val_size=eval_size, addition_grid=addition_grid), GLUE_METHODS,
                        progress, pairs=True)
    glue.build()
    tox.evaluate()
    return ch, tox, glue


def settings_table(ch, tox) -> None:
    hp = ch.paper["hyperparameters"]
    t, s = tox.vectors.settings, tox.runs.settings
    rows = [("model", hp["models"]["nlp_negation"], ch.scale()["description"]),
            ("fine-tuning data", hp["finetune_nlp_negation"]["data"], f"{t.n_comments} generated hostile comments over a "
             "marked toxic lexicon (invented insults and the base's negative words)"),
            ("learning rate, batch", f"{hp['finetune_nlp_negation']['lr']:g}, {hp['finetune_nlp_negation']['batch_size']}",
             f"{t.lr:g}, {t.batch}"),
            ("λ (ours)", f"tuned over {hp['regularizer']['lambda_grid']}", f"{t.penalty:g} (T_orth: English prose)"),
            ("samples, prefix", f"{hp['toxicity_eval']['samples']}, '{hp['toxicity_eval']['prefix']}'",
             f"{s.n_samples} ({s.pretrained_samples} for θ0's rate) × {s.new_tokens} tokens, the same prefix"),
            ("toxicity scorer", f"{hp['toxicity_eval']['scorer']}, toxic if ≥ {hp['toxicity_eval']['toxic_threshold']}",
             "toxic rate: a toxic-lexicon word in the sample; score: the model's probability of emitting one along "
             f"its sampled continuation (first {s.score_samples} samples)"),
            ("control", hp["toxicity_eval"]["control"], f"perplexity of {s.ppl_texts} held-out English paragraphs (α "
             f"chosen on {s.ppl_texts} others)"),
            ("coefficient rule", hp["coefficients"]["nlp_negation_selection"], f"the same, +{s.ppl_tolerance:g}, on "
             f"{len(s.grid)} values {s.grid[0]:g} … {s.grid[-1]:g}")]
    display(Markdown("**Settings of the negation track, the paper's beside ours.**"))
    pages.settings_frame(rows)


# ----------------------------------------------------------------------------- Tables 3 and 8


def glue_settings(ch, glue) -> None:
    """The text track's settings, the paper's beside ours."""
    hp, p, s = ch.paper["hyperparameters"], glue.zoo.profile, glue.settings
    rows = [("model", hp["models"]["nlp_addition"], f"the {p.lm_profile} language zoo's base as an encoder (the normed "
             "last hidden state at the prompt's last token)"),
            ("tasks", ", ".join(hp["nlp_addition_tasks"]), "generated paraphrase, entailment, acceptability and "
             "sentiment tasks (reprolib.text.tasks), named after them"),
            ("heads", "T5's label words (text-to-text)", "frozen rows of the LM's output embedding for T5's label words"),
            ("fine-tuning", hp["finetune_nlp_addition"], f"{p.ft_steps} steps × batch {p.ft_batch} of {p.n_train} "
             f"prompts per task, AdamW at {p.ft_lr:g}"),
            ("λ, penalty batch (ours)", f"tuned over {hp['regularizer']['lambda_grid']} on "
             f"{hp['regularizer']['lambda_tuned_on']['nlp']}, {hp['regularizer']['batch_fraction']['nlp']:g} of the "
             "task batch", f"{p.penalty:g} (chosen on validation as the paper's), {p.reg_batch} prompts "
             f"({p.reg_batch / p.ft_batch:g} of the batch), the other three tasks in turn (Eq. 11)"),
            ("TIES", "settings not stated", f"top {s.ties_density:.0%} of the non-linear vectors' magnitudes, elect, "
             "disjoint mean, then θ0 + λ τ_m"),
            ("coefficients", "grid-searched (Table 3) or 1.0 (Table 8)", f"one α for every vector on {len(s.addition_grid)} "
             f"values {s.addition_grid[0]:g} … {s.addition_grid[-1]:g}, the highest mean Norm. on {s.val_size} validation "
             f"prompts per task (Table 3), or 1.0 (Table 8)"),
            ("test set", "GLUE validation splits", f"{s.eval_size} held-out prompts per task (never trained on)")]
    display(Markdown("**Settings of the task-addition track, the paper's beside ours.**"))
    pages.settings_frame(rows)


def _glue_means(ev):
    """Per (method, coef, task) the means over seeds, with each method's average over the four tasks."""
    import pandas as pd

    by_task = ev.rows.groupby(["method", "coef", "task"], sort=False)[["abs", "norm"]].mean()
    avg = ev.rows.groupby(["method", "coef", "seed"], sort=False)[["abs", "norm"]].mean().groupby(["method", "coef"],
                                                                                                    sort=False).mean()
    avg.index = pd.MultiIndex.from_tuples([(m, c, "avg") for m, c in avg.index], names=by_task.index.names)
    return pd.concat([by_task, avg])


def tables3_8(ch, glue) -> dict:
    """Tables 3 (α grid-searched) and 8 (α = 1): per method and task, the paper's Abs./Norm. beside ours
    (means over seeds) and the α chosen; the per-task runs go to ``glue.csv``."""
    import pandas as pd

    from reprolib.chapters.taujp_page import _record
    from reprolib.chapters.taujp_variants import per_task

    evidence, verdicts = _record(ch, "glue", per_task(glue))
    mean = _glue_means(evidence["glue"])
    alpha = {m: [glue.result(seed)["addition"][m]["grid"]["alpha"] for seed in glue.seeds] for m in GLUE_METHODS}
    for table_id, coef in (("table3", "grid"), ("table8", "1.0")):
        table = ch.table(table_id)
        rows = []
        for r in table["rows"]:
            m = X.METHOD_OF[r["method"]]
            c = "-" if m in ("pretrained", "individual") else coef
            for task in (*X.GLUE_TASKS, "avg"):
                ours = mean.loc[(m, c, task)] if (m, c, task) in mean.index else None
                rows.append({"method": LABEL.get(m, m), "task": TASK_NAME[task], "Abs. paper": r[f"{task}_abs"],
                             "Abs. ours": None if ours is None else ours["abs"], "Norm. paper": r.get(f"{task}_norm"),
                             "Norm. ours": None if ours is None else ours["norm"]})
        if coef == "grid":
            note = " Ours' α (mean over seeds): " + ", ".join(f"{LABEL[m]} {sum(a) / len(a):.2f}" for m, a in alpha.items())
        else:
            note = ""
        caption = table["caption"] + (f" Ours: mean over {len(glue.seeds)} training seeds, {glue.settings.eval_size} test "
                                      "prompts per task; Norm. = Abs. over the task's own fine-tuned model's (TIES: the "
                                      f"non-linear ones).{note}")
        pages.show_table(f"{table['ref']} (paper line {table['line']})", caption, pages.fmt(pd.DataFrame(rows)),
                         pages.table_notes(table), pages.claim_line(ch, [v for v in verdicts if v.claim.startswith(table_id)],
                                                                    "glue", evidence), anchor=table_id)
    glue_figure(ch, mean)
    return evidence


def glue_figure(ch, mean) -> None:
    """Normalised accuracy per task after addition (grid-searched α): bars ours, dots the paper's Table 3."""
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.display import Image

    from reprolib import plots

    paper = {X.METHOD_OF[r["method"]]: r for r in ch.table("table3")["rows"]}
    tasks = (*X.GLUE_TASKS, "avg")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(GLUE_METHODS)
    for i, m in enumerate(GLUE_METHODS):
        x = np.arange(len(tasks)) + (i - (len(GLUE_METHODS) - 1) / 2) * width
        ax.bar(x, [mean.loc[(m, "grid", t), "norm"] for t in tasks], width, label=f"{LABEL[m]} (ours)",
               color=STYLE[m], alpha=0.8)
        ax.scatter(x, [paper[m][f"{t}_norm"] for t in tasks], color="black", marker="_", s=120, zorder=3,
                   label="the paper's Table 3" if i == 0 else None)
    ax.set_xticks(range(len(tasks)), [TASK_NAME[t] for t in tasks])
    ax.set_ylabel("normalised accuracy (%)")
    ax.axhline(100, color="grey", lw=0.6)
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    ax.set_title(f"Four-task addition, α grid-searched ({ch.profile} text zoo; black: T5-small in the paper)", fontsize=9)
    display(Image(filename=str(plots.save(fig, ch.out / "table3_norm.png"))))


def pair_interference(ch, glue) -> dict:
    """τJp (Eq. 9, on the test prompts) and cosine of every pair of task vectors, linear FT and ours, means
    over seeds; the CoLA–SST-2 row is the paper's conjecture (line 291). Returns the glued values."""
    import pandas as pd

    from reprolib.chapters.taujp_variants import pair_rows

    rows = pair_rows(glue)
    rows.to_csv(ch.out / "glue_pairs.csv", index=False)
    mean = rows.groupby(["a", "b", "method"], sort=False)[["taujp", "cosine"]].mean().unstack("method")
    table = pd.DataFrame({"pair": [f"{TASK_NAME[a]}–{TASK_NAME[b]}" for a, b in mean.index]})
    for column in ("taujp", "cosine"):
        for m in ("linear", "ours"):
            table[f"{'τJp' if column == 'taujp' else column} {LABEL[m]}"] = mean[(column, m)].to_numpy()
    display(pages.fmt(table))
    rank = mean[("taujp", "linear")].rank(ascending=False)
    return {"cola_sst2_rank": int(rank.loc[("cola", "sst2")]), "n_pairs": len(rank),
            "cola_sst2_linear": float(mean.loc[("cola", "sst2"), ("taujp", "linear")]),
            "cola_sst2_ours": float(mean.loc[("cola", "sst2"), ("taujp", "ours")])}


# ----------------------------------------------------------------------------- Tables 4 and 9


def tables4_9(ch, tox) -> dict:
    """Tables 4 (α chosen by the perplexity rule) and 9 (α = 1), the paper's rows beside ours."""
    import pandas as pd

    from reprolib.text.toxicity import evidence as tox_evidence

    ev = tox_evidence(tox.runs, finetuned=True)
    ev.rows.to_csv(ch.out / "toxicity.csv", index=False)
    evidence = {"toxicity": ev}
    verdicts = ch.verdicts(evidence)
    mean = ev.rows.groupby(["method", "coef"])[["alpha", "toxic_rate", "toxic_score", "ppl"]].mean()
    rate0 = tox.pretrained_rate()
    for table_id, coef, anchor in (("table4", "grid", "table4"), ("table9", "1.0", "table9")):
        table = ch.table(table_id)
        rows = []
        for r in table["rows"]:
            m = X.METHOD_OF[r["method"]]
            key = (m, "-" if m == "pretrained" else coef)
            ours = mean.loc[key] if key in mean.index else None
            rows.append({"method": LABEL.get(m, m), "toxic rate % paper": r["toxic_rate"],
                         "toxic score paper": r["toxic_score"], "perplexity paper": r["perplexity"],
                         "toxic rate % ours": None if ours is None else ours["toxic_rate"],
                         "toxic score ours": None if ours is None else ours["toxic_score"],
                         "perplexity ours": None if ours is None else ours["ppl"],
                         "α ours": None if ours is None or m == "pretrained" else ours["alpha"]})
        for m in ("nonlinear", "linear", "ties", "ours"):
            if (m, "finetuned") in mean.index and coef == "1.0":
                f = mean.loc[(m, "finetuned")]
                rows.append({"method": f"{LABEL[m]}: θ0 + τ (the fine-tuned model)", "toxic rate % ours": f["toxic_rate"],
                             "toxic score ours": f["toxic_score"], "perplexity ours": f["ppl"], "α ours": -1.0})
        caption = table["caption"] + (f" Ours: mean over {len(ch.seeds)} training seeds; θ0's toxic rate over all its "
                                      f"{sum(v['n'] for v in rate0.values()) // max(len(rate0), 1)} generations: "
                                      + ", ".join(f"{v['toxic_rate']:.2f} %" for v in rate0.values()) + " per seed.")
        pages.show_table(f"{table['ref']} (paper line {table['line']})", caption, pages.fmt(pd.DataFrame(rows)),
                         pages.table_notes(table), pages.claim_line(ch, verdicts, "toxicity", evidence), anchor=anchor)
    return evidence


def claims(ch, evidence: dict, tox, glue) -> list[dict]:
    from dataclasses import asdict

    paper_ev = X.paper_evidence(ch.paper, list(evidence))
    extra = {"toxicity": tox.provenance(),
             "glue": {"text_zoo": str(glue.zoo.root), "theta0": glue.zoo.key(), "task_vectors": glue.zoo.tv_keys(),
                      "settings": asdict(glue.settings), "methods": list(glue.methods)}}
    rows = pages.show_claims(ch, evidence, paper_ev, [], extra=extra)
    display(Markdown("**Sentences not tested here**, and why:\n\n"
                     + "\n".join(f"- {where}: {why}." for where, why in X.NOT_TESTED.items())))
    return rows


def reading(ch, rows: list[dict], evidence: dict, tox, pairs: dict) -> dict:
    counts = pages.claim_counts(rows)
    g = _glue_means(evidence["glue"])
    glue_values = {"glue_pre": g.loc[("pretrained", "-", "avg"), "abs"], "glue_ind": g.loc[("individual", "-", "avg"), "abs"],
                   **{f"glue_{m}_{c}_{col}": g.loc[(m, coef, "avg"), col] for m in GLUE_METHODS
                      for c, coef in (("grid", "grid"), ("one", "1.0")) for col in ("abs", "norm")},
                   "glue_sst2_linear": g.loc[("linear", "grid", "sst2"), "norm"],
                   "glue_sst2_ours": g.loc[("ours", "grid", "sst2"), "norm"], **pairs}
    m = evidence["toxicity"].rows.groupby(["method", "coef"])[["alpha", "toxic_rate", "toxic_score", "ppl"]].mean()
    values = {**glue_values, "profile": f"`{ch.profile}`", "n_claims": counts["claims"], "n_reproduced": counts["reproduced"],
              "n_not": counts["not reproduced"], "n_inconclusive": counts["inconclusive"],
              "ppl0": m.loc[("pretrained", "-"), "ppl"], "score0": m.loc[("pretrained", "-"), "toxic_score"],
              **{f"{k}_ft_rate": m.loc[(k, "finetuned"), "toxic_rate"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_ppl1": m.loc[(k, "1.0"), "ppl"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_alpha": m.loc[(k, "grid"), "alpha"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_score_grid": m.loc[(k, "grid"), "toxic_score"] for k in ("nonlinear", "linear", "ties", "ours")}}
    return pages.glue(values)
