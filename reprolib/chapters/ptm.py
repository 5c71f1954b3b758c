"""The Merge to Learn chapter (PTM, seed 002): its claims, tested on the paper's printed numbers and
on our runs (``reprolib.chapters.ptm_runs``), which give Evidence with the same columns.

Every score is in percent, higher = better (the paper's convention): ``general`` (the general
model's skills), ``science``, ``safety`` (refusal of unsafe prompts), ``coding`` and ``exref``
(compliance on safe look-alike prompts: 100 − exaggerated refusal). Evidence ids:

- ``table2`` (science, the best of each method by science validation): ``method`` (base | cft | rt
  | ptm), ``general``, ``science``, ``steps`` (training steps to build the method's pool of models).
- ``table3`` (every setting): ``setting`` (science | safety | coding | exref), ``method`` (base |
  cft | rt | ptm), the setting's two evaluations ``TABLE3[setting]`` (general and the skill; for
  ``exref`` compliance and safety, as the paper's Ex. Ref. rows; the other columns are empty), and
  ``steps``. The paper prints percentage changes; its rows carry them as ``100 + change`` over a
  base row of 100.
- ``table4`` (three skills at once: base | cft | rt | ptm), ``table5`` (``skills``: "" for the base,
  else the skills merged with PTM, e.g. "safety+coding"), ``table6`` (``method``: ptm | ties | dare):
  ``general``, ``science``, ``coding``, ``safety``, ``exref``.
- ``fig1`` (PTM's ω curve per skill): ``skill``, ``omega`` (0 = the general model), ``heuristic``,
  ``general`` and the skill's column (``exref`` too for safety).
- ``fig2`` (WiSE-FT, science): ``data`` (skill | mix), ``omega``, ``general``, ``science``.
- ``fig3`` (three PTM methods): ``skill``, ``method`` (ptm | linear | wise_ft), ``omega``, ``general``
  and the skill's column.
- ``fig6`` (every checkpoint): ``setting``, ``method`` (base | cft | rt | ptm), ``general`` and the
  setting's column (``exref`` for exaggerated refusals).

A column always holds one evaluation, so every row's per-item values of a column are the same test
items (the paired bootstrap of ``reprolib.claims``).

Readings of the paper's words (each claim's ``how`` repeats its own): comparable / competitive /
similar = within ``COMPARABLE`` points; nearly all = loses less than ``NEARLY_ALL`` % of the
baseline; a few points = under ``FEW``; a substantial drop = more than ``SUBSTANTIAL`` %; strong /
substantially / much higher = more than ``STRONG`` points; very similar = within ``VERY_SIMILAR`` %
(relative); a large drop = more than ``LARGE`` % (relative). Relative changes take a baseline under
``FLOOR`` points as ``FLOOR``.
"""

from __future__ import annotations

import math

from reprolib.claims import ClaimRegistry, Evidence, all_of, by_seed, group_by, only, printed_evidence, seed_verdict, verdict_on
from reprolib.published import table_rows

PAPER = "ptm"
PAGE = "ptm.html"
SETTINGS = ("science", "safety", "coding", "exref")
SKILLS = SETTINGS[:3]
COLUMNS = ("general", "science", "coding", "safety", "exref")
FLOATS = COLUMNS + ("steps", "omega")
TABLE3 = {"science": ("general", "science"), "safety": ("general", "safety"), "coding": ("general", "coding"),
          "exref": ("exref", "safety")}      # Table 3's two columns per setting (caption, line 177)

COMPARABLE = 2.0      # points
NEARLY_ALL = 5.0      # % of the baseline's general score
MOST = 10.0           # "most, if not all": loses under 10 %
FEW = 5.0             # "a few points"
SUBSTANTIAL = 5.0     # % drop
STRONG = 10.0         # points
SUBSTANTIAL_GAIN = 10.0   # % (relative): "substantially improving" a skill
VERY_SIMILAR = 10.0   # % (relative)
LARGE = 10.0          # % (relative)

DESIGN = ("This ratio is set by the zoo's recipe (three amounts of D where the paper has five; |G| = 4|D|), not by "
          "any training result: a design comparison, reported beside the paper's.")

NOT_TESTED = {
    "fig6 (line 370)": "its sentences repeat table3_cft_drop (PTM against CFT) and fig4_exref (exaggerated refusals) on "
                       "the same checkpoints; the Pareto fronts are drawn on the page",
    "conclusion (line 264)": "'much better trade-offs between model safety and capability' is fig4_exref's test",
    "Table 3 caption (line 177)": "'improves skill-specific performance in every scenario' and 'improves safety as much as "
                                  "RT while taking 4% the compute' repeat intro_general_preserved, table3_safety_vs_rt and "
                                  "table2_vs_rt on the same rows",
    "Fig. 6 caption (line 370)": "'comparable performance to many RT checkpoints' has no stated measure of 'many'",
    "introduction (line 39)": "'PTM is consistently a better choice than CFT' summarises table3_cft_drop and "
                              "intro_general_preserved; 'comparable performance tradeoffs' to RT is table3_safety_vs_rt",
}


# ----------------------------------------------------------------------------- compute accounting


def paper_steps(general_size: int, skill_sizes: dict, cft_totals: dict, batch: int = 128, n_amounts: int = 5) -> dict:
    """The paper's step counts from its dataset sizes (Sections 2.1–2.3): PTM trains once on all of D
    (|D| steps; its ω sweep costs nothing), CFT trains on each of ``n_amounts`` subsamples (Σ|D_i|,
    ``cft_totals``, not derivable from Table 1), RT retrains on G + D_i for each (n|G| + Σ|D_i|).
    A size in examples is ``size / batch`` steps."""
    g = general_size / batch
    return {k: {"ptm": round(d / batch), "cft": cft_totals[k], "rt": round(n_amounts * g + cft_totals[k])}
            for k, d in skill_sizes.items()}


def ratio(part: float, whole: float) -> float:
    """``part / whole`` in %, e.g. PTM's training steps as a share of RT's."""
    return 100.0 * part / whole


# ----------------------------------------------------------------------------- the paper's numbers


METHOD_OF = {"Tülu Only": "base", "Tulu Only": "base", "Best CFT": "cft", "Best RT": "rt", "Best PTM": "ptm",
             "CFT (All 3)": "cft", "RT (All 3)": "rt", "PTM (All 3)": "ptm", "TIES PTM (All 3)": "ties",
             "DARE PTM (All 3)": "dare"}
SETTING_OF = {"Science": "science", "Safety": "safety", "Coding": "coding", "Ex. Ref.": "exref"}


def _scores(r: dict) -> dict:
    return {"general": r["general"], "science": r["science"], "coding": r["coding"], "safety": r["safety"],
            "exref": r["exaggerated_refusals"]}


def _table2(paper):
    return [{"table": "table2", "method": METHOD_OF[r["model"]], "general": r["general"], "science": r["science"],
             "steps": r["training_steps"]} for r in table_rows(paper, "table2")]


def _table3(paper):
    """Percentage changes as ``100 + change`` over a base row of 100 per setting (the statistics
    recompute the changes, so the paper's rows and ours go through the same code)."""
    empty = {c: None for c in COLUMNS}
    out = [{"table": "table3", "setting": s, "method": "base", **empty, **dict.fromkeys(TABLE3[s], 100.0), "steps": None}
           for s in SETTINGS]
    for r in table_rows(paper, "table3"):
        name, setting = r["model"].rstrip(")").split(" (", 1)
        gen, spec = TABLE3[SETTING_OF[setting]]
        out.append({"table": "table3", "setting": SETTING_OF[setting], "method": METHOD_OF[name], **empty,
                    gen: 100.0 + r["delta_general"], spec: 100.0 + r["delta_specialized"], "steps": r["training_steps"]})
    return out


def _table4(paper):
    return [{"table": "table4", "method": METHOD_OF[r["model"]], **_scores(r), "steps": r["additional_training_steps"]}
            for r in table_rows(paper, "table4")]


def _table5(paper):
    def skills(model):
        if model.startswith("Tulu"):
            return ""
        inner = model[model.index("(") + 1:-1].replace("Coding", "coding").replace("Science", "science").replace("Safety", "safety")
        return "+".join(inner.split(" and "))
    return [{"table": "table5", "skills": skills(r["model"]), **_scores(r)} for r in table_rows(paper, "table5")]


def _table6(paper):
    return [{"table": "table6", "method": METHOD_OF[r["model"]], **_scores(r)} for r in table_rows(paper, "table6")]


def _fig1_from_table5(paper):
    """Fig. 1 is a plot; the heuristic's point of each single-skill curve is printed in Table 5
    (line 187: 'scores for using our heuristic for each skill individually'), over the base row."""
    t5 = {r["skills"]: r for r in _table5(paper)}
    base = t5[""]
    out = []
    for skill in SKILLS:
        empty = dict.fromkeys(SKILLS)
        out.append({"table": "fig1", "skill": skill, "omega": 0.0, "heuristic": False, **empty, "general": base["general"],
                    skill: base[skill]})
        out.append({"table": "fig1", "skill": skill, "omega": math.nan, "heuristic": True, **empty,
                    "general": t5[skill]["general"], skill: t5[skill][skill]})
    return out


def paper_evidence(paper: dict, ids, n_seeds: int = 3) -> dict[str, Evidence]:
    """The paper's numbers as if they were our results, by evidence id (table2–table6, and fig1 from
    Table 5's heuristic points); the plotted figures (fig2, fig3, fig6) print no numbers."""
    build = {"table2": _table2, "table3": _table3, "table4": _table4, "table5": _table5, "table6": _table6,
             "fig1": _fig1_from_table5}
    out = {}
    for evidence_id in ids:
        if evidence_id in build:
            rows = build[evidence_id](paper)
            out[evidence_id] = printed_evidence(rows, n_seeds, [c for c in FLOATS if c in rows[0]])
    return out


# ----------------------------------------------------------------------------- helpers over one seed's records


FLOOR = 1.0           # a baseline under 1 % counts as 1 % in a relative change (a change over 0 is undefined)


def _change(value: float, base: float) -> float:
    """Percentage change over the baseline (Table 3's unit); a baseline under ``FLOOR`` points is
    taken as ``FLOOR`` (our general model scores 0 on coding: a relative change over 0 is undefined)."""
    return 100.0 * (value - base) / max(base, FLOOR)


def _outside(value: float, low: float, high: float) -> float:
    """How far ``value`` lies outside [low, high] (negative inside): a stated range as one statistic."""
    return max(low - value, value - high)


def _exref_outside(g, low: float, high: float) -> float:
    """Table 3's Ex. Ref. rows: how far PTM's compliance advantage over CFT and RT (points of change)
    falls outside [low, high], the worse of the two."""
    d = _deltas(g, "exref")
    return max(_outside(d["ptm"][0] - d[m][0], low, high) for m in ("cft", "rt"))


def _deltas(g, setting: str) -> dict:
    """Table 3: method → (change in gen, change in spec) for one setting, in %."""
    gen, spec = TABLE3[setting]
    rows = [r for r in g if r["setting"] == setting]
    base = only(rows, f"table3 {setting}", method="base")
    return {r["method"]: (_change(r[gen], base[gen]), _change(r[spec], base[spec])) for r in rows if r["method"] != "base"}


def _by_method(g, where: str) -> dict:
    return {m: only(g, where, method=m) for m in {r["method"] for r in g}}


CLAIMS = ClaimRegistry(PAPER)
_v = seed_verdict          # a statistic of one seed's records → verdict over seeds and items


# ----------------------------------------------------------------------------- claims: Table 2 (science, best by validation)


@CLAIMS.register("intro_competitive_efficient", ("table2",), anchor=f"{PAGE}#table2",
                 how=f"Table 2: PTM's science − the best RT's (> −{COMPARABLE:g}: 'competitive'); the smallest training-step "
                     "saving of PTM over CFT and RT, 100 (1 − PTM / other) (> 50 %: '50–95% improvement in training efficiency'). "
                     + DESIGN)
def intro_competitive_efficient(ev):
    rows = ev["table2"]
    parts = [_v("intro_competitive_efficient/competitive", "PTM science − best RT science",
                lambda g: only(g, "table2", method="ptm")["science"] - only(g, "table2", method="rt")["science"], rows,
                margin=-COMPARABLE),
             _v("intro_competitive_efficient/efficiency", "smallest step saving of PTM over CFT and RT (%)",
                lambda g: min(100 - ratio(only(g, "table2", method="ptm")["steps"], only(g, "table2", method=m)["steps"])
                              for m in ("cft", "rt")), rows, margin=50.0)]
    return all_of("intro_competitive_efficient", "PTM is competitive with RT on the skill at a 50–95 % saving", parts)


@CLAIMS.register("table2_vs_rt", ("table2",), anchor=f"{PAGE}#table2",
                 how="Table 2: |100 · PTM steps / RT steps − 4| (< 1: 'about 4%'); PTM science − RT science (> 0: 'edges out'); "
                     f"RT general − PTM general (< {FEW:g}: 'within a few points'). " + DESIGN)
def table2_vs_rt(ev):
    rows = ev["table2"]
    ptm, rt = (lambda g: only(g, "table2", method="ptm")), (lambda g: only(g, "table2", method="rt"))
    parts = [_v("table2_vs_rt/compute", "|PTM steps as % of RT's − 4|", lambda g: abs(ratio(ptm(g)["steps"], rt(g)["steps"]) - 4),
                rows, "lower", 1.0),
             _v("table2_vs_rt/science", "PTM science − RT science", lambda g: ptm(g)["science"] - rt(g)["science"], rows),
             _v("table2_vs_rt/general", "RT general − PTM general", lambda g: rt(g)["general"] - ptm(g)["general"], rows,
                "lower", FEW)]
    return all_of("table2_vs_rt", "PTM costs about 4 % of RT, edges it on science, within a few points on general", parts)


@CLAIMS.register("table2_vs_cft", ("table2",), anchor=f"{PAGE}#table2",
                 how=f"Table 2: CFT science − PTM science (< {FEW:g}: 'within a few points'); PTM general − CFT general (> 13); "
                     "PTM steps / CFT steps (< 50 %). " + DESIGN)
def table2_vs_cft(ev):
    rows = ev["table2"]
    ptm, cft = (lambda g: only(g, "table2", method="ptm")), (lambda g: only(g, "table2", method="cft"))
    parts = [_v("table2_vs_cft/science", "CFT science − PTM science", lambda g: cft(g)["science"] - ptm(g)["science"], rows,
                "lower", FEW),
             _v("table2_vs_cft/general", "PTM general − CFT general", lambda g: ptm(g)["general"] - cft(g)["general"], rows,
                margin=13.0),
             _v("table2_vs_cft/compute", "PTM steps as % of CFT's", lambda g: ratio(ptm(g)["steps"], cft(g)["steps"]), rows,
                "lower", 50.0)]
    return all_of("table2_vs_cft", "PTM within a few points of CFT on science, 13+ points better on general, < half the steps",
                  parts)


# ----------------------------------------------------------------------------- claims: Table 3 (every setting)


@CLAIMS.register("intro_general_preserved", ("table3",), anchor=f"{PAGE}#table3",
                 how=f"Table 3, science/safety/coding: PTM's smallest general change (> −{NEARLY_ALL:g} %: 'nearly all'); "
                     "how far CFT's general drops fall outside 10–40 % (< 0: inside the range); the smallest of PTM's skill "
                     "change − ½ CFT's (> 0: 'similar skill-specific performance', read as at least half of CFT's gain)")
def intro_general_preserved(ev):
    rows = ev["table3"]
    parts = [_v("intro_general_preserved/ptm_general", "PTM's smallest general change (%)",
                lambda g: min(_deltas(g, s)["ptm"][0] for s in SKILLS), rows, margin=-NEARLY_ALL),
             _v("intro_general_preserved/cft_range", "distance of CFT's general drops outside 10–40 % (points)",
                lambda g: max(_outside(-_deltas(g, s)["cft"][0], 10, 40) for s in SKILLS), rows, "lower"),
             _v("intro_general_preserved/similar_skill", "smallest PTM skill change − ½ CFT's",
                lambda g: min(_deltas(g, s)["ptm"][1] - 0.5 * _deltas(g, s)["cft"][1] for s in SKILLS), rows)]
    return all_of("intro_general_preserved", "PTM keeps the general skills, CFT loses 10–40 %, the skill gain is similar",
                  parts)


@CLAIMS.register("intro_safety", ("table3",), anchor=f"{PAGE}#table3",
                 how=f"Table 3: PTM's safety change (Safety rows, > 0); its general change (> −{NEARLY_ALL:g} %); how far PTM's "
                     "exaggerated-refusal advantage over CFT and RT (Ex. Ref. rows, points of change) falls outside 30–80 (< 0)")
def intro_safety(ev):
    rows = ev["table3"]

    parts = [_v("intro_safety/refusal", "PTM's safety change (%)", lambda g: _deltas(g, "safety")["ptm"][1], rows),
             _v("intro_safety/general", "PTM's general change, safety (%)", lambda g: _deltas(g, "safety")["ptm"][0], rows,
                margin=-NEARLY_ALL),
             _v("intro_safety/exref_range", "distance of PTM's exaggerated-refusal advantage outside 30–80",
                lambda g: _exref_outside(g, 30, 80), rows,
                "lower")]
    return all_of("intro_safety", "PTM raises refusals, keeps general skills, cuts exaggerated refusals by 30–80 %", parts)


@CLAIMS.register("table3_cft_drop", ("table3",), anchor=f"{PAGE}#table3",
                 how="Table 3, all four settings: the smallest (PTM − CFT) first-column change (> 0: PTM keeps more; 'much' "
                     f"is not quantified); CFT's largest first-column change (< −{SUBSTANTIAL:g} %: 'consistently … a substantial drop')")
def table3_cft_drop(ev):
    rows = ev["table3"]
    parts = [_v("table3_cft_drop/ptm_keeps_more", "smallest PTM − CFT first-column change (general; Ex. Ref.: compliance)",
                lambda g: min(_deltas(g, s)["ptm"][0] - _deltas(g, s)["cft"][0] for s in SETTINGS), rows),
             _v("table3_cft_drop/cft_drops", "CFT's largest first-column change (general; Ex. Ref.: compliance) (%)",
                lambda g: max(_deltas(g, s)["cft"][0] for s in SETTINGS), rows, "lower", -SUBSTANTIAL)]
    return all_of("table3_cft_drop", "PTM keeps more general skill than CFT, which drops in every setting", parts)


@CLAIMS.register("table3_safety_vs_rt", ("table3",), anchor=f"{PAGE}#table3",
                 how=f"Table 3, Safety rows: PTM − RT change in general and in safety (each > −{COMPARABLE:g}: 'comparable or better')")
def table3_safety_vs_rt(ev):
    rows = ev["table3"]
    parts = [_v(f"table3_safety_vs_rt/{name}", f"PTM − RT {name} change, safety", lambda g, i=i: _deltas(g, "safety")["ptm"][i]
                - _deltas(g, "safety")["rt"][i], rows, margin=-COMPARABLE) for i, name in enumerate(("general", "safety"))]
    return all_of("table3_safety_vs_rt", "PTM's general and safety are comparable to RT's or better", parts)


@CLAIMS.register("exref_points", ("table3",), anchor=f"{PAGE}#table3",
                 how="Table 3, Ex. Ref. rows: how far PTM's compliance advantage over CFT and RT (points of change over the "
                     "baseline) falls outside 30–50 (< 0); the 'similar safety and general performance' part is "
                     "table3_safety_vs_rt's test")
def exref_points(ev):
    return _v("exref_points", "distance of PTM's XSTest-Safe advantage outside 30–50 points",
              lambda g: _exref_outside(g, 30, 50), ev["table3"], "lower")


# ----------------------------------------------------------------------------- claims: several skills (Tables 4–6)


@CLAIMS.register("table4_exref", ("table4",), anchor=f"{PAGE}#table4",
                 how=f"Table 4: PTM's exaggerated-refusal compliance − CFT's and − RT's (each > {STRONG:g} points: 'strong "
                     "improvement'; the paper's own gains are 77 and 56)")
def table4_exref(ev):
    rows = ev["table4"]
    parts = [_v(f"table4_exref/over_{m}", f"PTM − {m.upper()} exaggerated-refusal compliance",
                lambda g, m=m: _by_method(g, "table4")["ptm"]["exref"] - _by_method(g, "table4")[m]["exref"], rows,
                margin=STRONG) for m in ("cft", "rt")]
    return all_of("table4_exref", "three-skill PTM complies far more on safe look-alikes than CFT and RT", parts)


@CLAIMS.register("multi_skill_best", ("table4",), anchor=f"{PAGE}#table4",
                 how=f"Table 4: PTM general − the better of CFT and RT (> 0: 'best overall general'); PTM compliance − the "
                     f"better of CFT and RT (> {STRONG:g}: 'substantially improving')")
def multi_skill_best(ev):
    rows = ev["table4"]

    def over_best(g, col):
        m = _by_method(g, "table4")
        return m["ptm"][col] - max(m["cft"][col], m["rt"][col])

    parts = [_v("multi_skill_best/general", "PTM general − best of CFT, RT", lambda g: over_best(g, "general"), rows),
             _v("multi_skill_best/exref", "PTM compliance − best of CFT, RT", lambda g: over_best(g, "exref"), rows,
                margin=STRONG)]
    return all_of("multi_skill_best", "three-skill PTM has the best general score and far fewer exaggerated refusals", parts)


@CLAIMS.register("multi_skill_similar", ("table4", "table5"), anchor=f"{PAGE}#table4",
                 how=f"PTM (All 3) of Table 4 against the single-skill PTM rows of Table 5: the larger relative gap on coding "
                     f"and safety (< {VERY_SIMILAR:g} %: 'very similar'); the relative science drop (> {LARGE:g} %: 'a large drop')")
def multi_skill_similar(ev):
    both = Evidence.concat([ev["table4"], ev["table5"]])    # one Evidence: a replicate resamples the items of both

    def split(g):
        all3 = only([r for r in g if r["table"] == "table4"], "table4", method="ptm")
        return all3, {r["skills"]: r for r in g if r["table"] == "table5"}

    def gap(g):
        all3, single = split(g)
        return max(100 * abs(all3[c] - single[c][c]) / max(single[c][c], FLOOR) for c in ("coding", "safety"))

    def drop(g):
        all3, single = split(g)
        return -_change(all3["science"], single["science"]["science"])

    parts = [_v("multi_skill_similar/coding_safety", "largest relative gap, coding and safety (%)", gap, both, "lower",
                VERY_SIMILAR),
             _v("multi_skill_similar/science_drop", "relative science drop of PTM (All 3) (%)", drop, both, margin=LARGE)]
    return all_of("multi_skill_similar", "coding and safety as in single-skill PTM, science drops", parts)


@CLAIMS.register("table5_interference", ("table5",), anchor=f"{PAGE}#table5",
                 how="Table 5: the science of PTM (Safety and Coding) below the lowest of the baseline and the two pairs with "
                     f"science, relative to it (> {LARGE:g} %: 'the large difference')")
def table5_interference(ev):
    def gap(g):
        t = {r["skills"]: r["science"] for r in g}
        lowest = min(t[""], t["science+safety"], t["science+coding"])
        return -_change(t["safety+coding"], lowest)

    return _v("table5_interference", "relative science gap of safety+coding below the baseline and the science pairs (%)",
              gap, ev["table5"], margin=LARGE)


@CLAIMS.register("table6_no_help", ("table6",), anchor=f"{PAGE}#table6",
                 how=f"Table 6: TIES's and DARE's science − PTM's (< {COMPARABLE:g}: 'do not mitigate interference … on "
                     f"science'); the largest |method − PTM| over every column (< {COMPARABLE:g}: 'similar performance across all "
                     "skills')")
def table6_no_help(ev):
    rows = ev["table6"]

    def diffs(g, cols):
        m = _by_method(g, "table6")
        return [m[k][c] - m["ptm"][c] for k in ("ties", "dare") for c in cols]

    parts = [_v("table6_no_help/science", "largest science gain of TIES / DARE over PTM", lambda g: max(diffs(g, ("science",))),
                rows, "lower", COMPARABLE),
             _v("table6_no_help/similar", "largest |TIES / DARE − PTM| over the columns",
                lambda g: max(abs(d) for d in diffs(g, COLUMNS)), rows, "lower", COMPARABLE)]
    return all_of("table6_no_help", "TIES and DARE neither fix science nor change the other skills", parts)


# ----------------------------------------------------------------------------- claims: the ω curves (Figs. 1–3)


def _heuristic_points(g):
    """(skill, general change %, skill change %) at the heuristic's ω of each curve."""
    out = []
    for skill, rows in group_by(g, "skill").items():
        base = only(rows, f"fig1 {skill}", omega=0.0)
        h = only(rows, f"fig1 {skill}", heuristic=True)
        out.append((skill, _change(h["general"], base["general"]), _change(h[skill], base[skill])))
    return out


@CLAIMS.register("intro_heuristic", ("table5",), anchor=f"{PAGE}#table5",
                 how=f"Table 5, single-skill PTM at ω = |D|/|G|: the smallest general change (> −{NEARLY_ALL:g} %: 'preserving "
                     "general performance') and the smallest change on the skill merged (> 0: 'good performance on new skills')")
def intro_heuristic(ev):
    rows = ev["table5"]

    def changes(g, i):
        t = {r["skills"]: r for r in g}
        return [(_change(t[s]["general"], t[""]["general"]), _change(t[s][s], t[""][s]))[i] for s in SKILLS]

    parts = [_v("intro_heuristic/general", "smallest general change at the heuristic (%)", lambda g: min(changes(g, 0)), rows,
                margin=-NEARLY_ALL),
             _v("intro_heuristic/skill", "smallest skill change at the heuristic (%)", lambda g: min(changes(g, 1)), rows)]
    return all_of("intro_heuristic", "ω = |D|/|G| adds the skill and keeps the general skills", parts)


@CLAIMS.register("heuristic_curve", ("fig1",), anchor=f"{PAGE}#fig1",
                 how=f"Fig. 1 (the paper: Table 5's heuristic points): the smallest general change at the heuristic's ω (> "
                     f"−{MOST:g} %: 'most, if not all'); the smallest relative skill change there (> {SUBSTANTIAL_GAIN:g} %: "
                     "'substantially improving')")
def heuristic_curve(ev):
    rows = ev["fig1"]
    parts = [_v("heuristic_curve/general", "smallest general change at the heuristic (%)",
                lambda g: min(p[1] for p in _heuristic_points(g)), rows, margin=-MOST),
             _v("heuristic_curve/skill", "smallest skill change at the heuristic (%)",
                lambda g: min(p[2] for p in _heuristic_points(g)), rows, margin=SUBSTANTIAL_GAIN)]
    return all_of("heuristic_curve", "the heuristic's point keeps most of the general skills and adds the skill", parts)


def _trade_off(row: dict, base: dict, columns) -> float:
    """Table 3's selection score: the mean of the percentage changes of ``columns`` over the baseline (line 181)."""
    return sum(_change(row[c], base[c]) for c in columns) / len(columns)


@CLAIMS.register("omega_below_one", ("fig1",), anchor=f"{PAGE}#fig1",
                 how="Fig. 1: per skill, the heuristic's ω (eq. 7, chosen before looking) minus ω = 1, scored by the mean of the "
                     "general and skill changes (Table 3's selection score); the smallest over the skills (> 0). The best ω < 1 "
                     "of the curve would be biased upwards (a maximum over ten noisy points)")
def omega_below_one(ev):
    def gap(g):
        out = []
        for skill, rows in group_by(g, "skill").items():      # the heuristic's point is a point of the curve too
            base = only(rows, f"fig1 {skill}", omega=0.0)
            heuristic = only(rows, f"fig1 {skill}", heuristic=True)
            one = only(rows, f"fig1 {skill}", omega=1.0)
            out.append(_trade_off(heuristic, base, ("general", skill)) - _trade_off(one, base, ("general", skill)))
        return min(out)

    if not any(r["omega"] == 1.0 and not r["heuristic"] for r in ev["fig1"].records()):
        return None                      # the paper prints no point of the curve but the heuristic's
    return _v("omega_below_one", "smallest (heuristic ω − ω = 1) over the skills", gap, ev["fig1"])


@CLAIMS.register("wiseft_mix", ("fig2",), anchor=f"{PAGE}#fig2",
                 how="Fig. 2: mean over ω of WiSE-FT (science + matching general data) − WiSE-FT (science only), on science "
                     "and on general (each > 0; 'much smaller' is not quantified)")
def wiseft_mix(ev):
    rows = ev["fig2"]

    def gain(g, col):
        by = {(r["data"], r["omega"]): r[col] for r in g}
        omegas = sorted({w for d, w in by if d == "mix"})
        return sum(by[("mix", w)] - by[("skill", w)] for w in omegas) / len(omegas)

    parts = [_v(f"wiseft_mix/{col}", f"mean over ω of mix − skill-only, {col}", lambda g, col=col: gain(g, col), rows)
             for col in ("science", "general")]
    return all_of("wiseft_mix", "the general data in the mix helps the skill and the general skills", parts)


@CLAIMS.register("alternatives_degrade", ("fig3",), anchor=f"{PAGE}#fig3",
                 how="Fig. 3: per skill and alternative (linear interpolation, WiSE-FT), PTM's general score at its best skill "
                     "point − the alternative's at its own; the smallest (> 0: 'consistently … degradation in general "
                     "performance compared to PTM'; 'dramatic' is not quantified)")
def alternatives_degrade(ev):
    def gap(g):
        out = []
        for skill, rows in group_by(g, "skill").items():
            best = {m: max(rs, key=lambda r: (r[skill], r["general"])) for m, rs in group_by(rows, "method").items()}
            out += [best["ptm"]["general"] - best[m]["general"] for m in ("linear", "wise_ft")]
        return min(out)

    return _v("alternatives_degrade", "smallest PTM − alternative general score at the best skill point", gap, ev["fig3"])


@CLAIMS.register("fig4_exref", ("fig6",), anchor=f"{PAGE}#fig6",
                 how=f"Fig. 4/6, exaggerated refusals: for each CFT and RT checkpoint, the best PTM compliance among PTM points "
                     f"whose general score is at least the checkpoint's − {COMPARABLE:g} ('for the same general performance') and "
                     f"whose safety is at least the checkpoint's − {COMPARABLE:g} (a point that has not learnt to refuse does not "
                     f"count), minus the checkpoint's; the smallest (> {STRONG:g}: 'much higher'; −100 when no PTM point qualifies)")
def fig4_exref(ev):
    def gap(g):
        rows = [r for r in g if r["setting"] == "exref"]
        ptm = [r for r in rows if r["method"] == "ptm"]
        out = []
        for r in (r for r in rows if r["method"] in ("cft", "rt")):
            close = [p["exref"] for p in ptm if p["general"] >= r["general"] - COMPARABLE
                     and p["safety"] >= r["safety"] - COMPARABLE]
            out.append(max(close) - r["exref"] if close else -100.0)
        return min(out)

    return _v("fig4_exref", "smallest PTM compliance advantage at the same general score", gap, ev["fig6"], margin=STRONG)
