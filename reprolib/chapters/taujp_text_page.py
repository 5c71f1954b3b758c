"""What the τJp text page shows (toxicity negation, the paper's Tables 4 and 9), one function per
section; the runs are ``reprolib.text.toxicity``'s, the claims ``reprolib.chapters.taujp_text``'s."""

from __future__ import annotations

from IPython.display import Markdown, display

from reprolib.chapters import taujp_text as X
from reprolib.kit import pages

LABEL = {"pretrained": "Pre-trained θ0", "nonlinear": "Non-linear FT", "linear": "Linear FT", "ties": "TIES-merging",
         "ours": "Ours (linear FT + τJp reg.)"}
PAPER_SCALE = ("GPT-2 small (124 M parameters) fine-tuned on Civil Comments with toxicity > 0.8, 1000 generations "
               "scored by Detoxify, WikiText-103 perplexity")


def open_text(profile: str = "mini", zoo_root: str = "zoo", n_seeds: int = 3, n_samples: int = 200, ppl_texts: int = 24,
              grid=None, cache_dir: str = "results/cache", out_dir: str = "results", progress: bool = True):
    """The page's frame and the toxicity track on the language zoo's ``profile`` base: task vectors
    built where missing (cached by hash), every seed evaluated (cached)."""
    from reprolib.kit.chapter import open_frame
    from reprolib.text.toxicity import open_toxicity
    from reprolib.vision.arithmetic import NEGATION_GRID, check_grid

    from reprolib.zoo.build import PROFILES

    if profile not in PROFILES:
        display(Markdown(f"Profile `{profile}` is not a language zoo profile ({', '.join(PROFILES)}): GPT-2 and Civil "
                         "Comments cannot be loaded here, so this page negates toxicity on the `mini` zoo's base."))
        profile = "mini"
    grid = check_grid("grid", NEGATION_GRID if grid is None else grid, 0.0, 10.0, with_zero=True)
    for name, value in (("n_samples", n_samples), ("ppl_texts", ppl_texts), ("n_seeds", n_seeds)):
        if value < 1:
            raise ValueError(f"parameter {name!r} = {value} must be >= 1")
    tox = open_toxicity(profile, zoo_root, n_seeds, cache_dir=cache_dir, progress=progress, grid=grid,
                        n_samples=n_samples, ppl_texts=ppl_texts, score_samples=min(16, n_samples))
    tox.build()
    model = tox.vectors.model()
    t = tox.vectors.settings
    scale = {"profile": profile, "kind": f"{profile} language zoo's base (built here from generated text)",
             "description": f"Llama-style causal LM, {model.config.num_hidden_layers} layers × {model.config.hidden_size} "
                            f"hidden; toxicity vector fine-tuned {t.steps} steps on generated hostile comments",
             "parameters": sum(p.numel() for p in model.parameters())}
    ch = open_frame("taujp", "taujp_text", profile=profile, scale=scale, seeds=list(range(n_seeds)), out_dir=out_dir,
                    eval_size=n_samples, paper_scale=PAPER_SCALE, claims=X.CLAIMS)
    tox.evaluate()
    return ch, tox


def settings_table(ch, tox) -> None:
    import pandas as pd

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
    display(Markdown("**Settings, the paper's beside ours.**"))
    display(pd.DataFrame([{"setting": k, "paper": str(p), "ours": str(o)} for k, p, o in rows]))


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


def claims(ch, evidence: dict, tox) -> list[dict]:
    paper_ev = X.paper_evidence(ch.paper, list(evidence))
    rows = pages.show_claims(ch, evidence, paper_ev, [], extra={"toxicity": tox.provenance()})
    display(Markdown("**Not built yet:** the text-classification half of the text experiments (Tables 3 and 8, task "
                     "addition on four GLUE-like tasks) and its claims table3_outperforms, table3_sst2, "
                     "table8_outperforms. **Sentences not tested here**, and why:\n\n"
                     + "\n".join(f"- {where}: {why}." for where, why in X.NOT_TESTED.items())))
    return rows


def reading(ch, rows: list[dict], evidence: dict, tox) -> dict:
    counts = pages.claim_counts(rows)
    m = evidence["toxicity"].rows.groupby(["method", "coef"])[["alpha", "toxic_rate", "toxic_score", "ppl"]].mean()
    values = {"profile": f"`{ch.profile}`", "n_claims": counts["claims"], "n_reproduced": counts["reproduced"],
              "n_not": counts["not reproduced"], "n_inconclusive": counts["inconclusive"],
              "ppl0": m.loc[("pretrained", "-"), "ppl"], "score0": m.loc[("pretrained", "-"), "toxic_score"],
              **{f"{k}_ft_rate": m.loc[(k, "finetuned"), "toxic_rate"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_ppl1": m.loc[(k, "1.0"), "ppl"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_alpha": m.loc[(k, "grid"), "alpha"] for k in ("nonlinear", "linear", "ties", "ours")},
              **{f"{k}_score_grid": m.loc[(k, "grid"), "toxic_score"] for k in ("nonlinear", "linear", "ties", "ours")}}
    return pages.glue(values)
