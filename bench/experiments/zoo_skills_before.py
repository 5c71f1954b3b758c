"""Record the zoo's skills *before* data version 3 (issue 12, "skills that generalise").

Data version 2 (commit 5c918d3) had seven maths templates, two code phrasings and one instruction
phrasing per operation; its `ood` split was a handful of other phrasings. This script measures, on
that zoo, the same two tables the Zoo page shows for the current one: each expert's test vs OOD
score (`chapters.zoo.generalisation`) and TA's retention of each pair's gains
(`chapters.zoo.merge_retention`). It was run once in a worktree of 5c918d3 with this commit's
`reprolib/chapters/zoo.py` copied in and the data-v2 models already built:

    git worktree add /tmp/wt-before 5c918d3 && cp reprolib/chapters/zoo.py /tmp/wt-before/reprolib/chapters/
    cd /tmp/wt-before && ln -s /work/main/zoo zoo
    PYTHONPATH=. python /work/main/bench/experiments/zoo_skills_before.py 5c918d3 /work/main/results/zoo/mini-skills-v2.json

The Zoo page reads the JSON it writes (`chapters.zoo.recorded_before`) and shows it beside today's.
"""
import json, sys, time
from reprolib.kit import open_chapter
from reprolib.chapters.zoo import generalisation, merge_retention
from reprolib.zoo.build import DATA_VERSION
ch = open_chapter(None, "zoo", profile="mini", zoo_root="zoo", eval_size=100, cache_dir="/tmp/before-cache",
                  paper_scale="-")
groups = ("core", "lata", "m3")
g = generalisation(ch.models, ch.scorer, groups)
r = merge_retention(ch.models, ch.scorer, groups, progress=False)
print(g.to_string()); print(r.to_string())
out = {"data_version": DATA_VERSION, "commit": sys.argv[1], "measured": time.strftime("%Y-%m-%d"),
       "eval_size": 100, "models": {n: ch.models.fingerprint(n) for n in ("base", "instruct", "math", "code", "math_b", "code_b")},
       "generalisation": g.to_dict("records"), "retention": r.to_dict("records")}
json.dump(out, open(sys.argv[2], "w"), indent=1, default=str)
