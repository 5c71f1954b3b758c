"""Probe for issue 12's "skills that generalise" (not used by the book): does a compositional maths
generator, whose held-out *template families* form the OOD split, give an expert that keeps its
skill out of distribution? It swaps ``reprolib.zoo.data.math_problems`` for the generator below in
this process only, builds base → instruct and base → math_b in a scratch zoo, and scores them on
the new test and OOD splits and on today's OOD templates (new cue words).

    python bench/experiments/math_families_probe.py     # ~10 min on 2 cores; writes <root>/result.json

Result on 2026-12-01 (mini profile, seed 0, 200 items each): math_b test 0.785, held-out families
0.90, today's OOD templates 0.175; instruct 0.41 / 0.505 / 0.06 (the varied maths text in the
base's pre-training lifts instruct's maths too). Families are (opening sentence, question) pairings;
one in four is held out; cue phrases are shared across families; question-first order is trained
in 30 % of training items and absent from the OOD split."""
import json, random, sys, time
import reprolib.zoo.data as D
from reprolib.evals.items import Example

NAMES, ITEMS = D.NAMES, D.ITEMS
START = ["{n} has {a} {it}.", "{n} starts with {a} {it}.", "At first, {n} owns {a} {it}.", "{n} had {a} {it} in the morning.",
         "There are {a} {it} in {n}'s bag.", "{n} keeps {a} {it} in a box."]
CUE = {"add": ["{n} gets {b} more {it}.", "Then {n} finds {b} more {it}.", "{n} buys another {b} {it}.",
               "A friend gives {n} {b} more {it}.", "Later {n} collects {b} extra {it}.", "{n} wins {b} more {it}."],
       "sub": ["{n} gives away {b} {it}.", "Then {n} loses {b} {it}.", "{n} sells {b} {it}.", "{n} eats {b} of the {it}.",
               "Later {n} drops {b} {it}.", "{n} uses up {b} {it}."]}
QUESTION = ["How many {it} does {n} have now?", "What is the number of {it} now?", "Count the {it} {n} has at the end.",
            "How many {it} are there now?", "Now how many {it} does {n} own?", "How many {it} remain with {n}?"]
MUL_SETUP = ["{n} has {a} bags with {b} {it} in each bag.", "{n} buys {a} boxes of {b} {it}.",
             "There are {a} rows with {b} {it} in each row.", "{a} friends each bring {b} {it}.",
             "{n} fills {a} jars with {b} {it} each.", "Each of {a} shelves holds {b} {it}."]
MUL_Q = ["How many {it} are there in all?", "What is the total number of {it}?", "How many {it} altogether?",
         "Count all the {it}.", "How many {it} does that make?", "What is the total count of {it}?"]


def family_ood(*ids) -> bool:
    """Held-out families: one in four (start/setup, question) pairings, by a fixed rule."""
    return (ids[0] * 7 + ids[1] * 3) % 4 == 0


def math_problems(n, seed=0, split="train", max_operand=20):
    D._check_split(split)

    def make(rng):
        op = rng.choice(["add", "sub", "mul"])
        if op == "mul":
            a, b = rng.randint(1, 10), rng.randint(1, 10)
            i, j = rng.randrange(6), rng.randrange(6)
            fam = ("mul", i, j)
            text_parts = [MUL_SETUP[i], MUL_Q[j]]
        else:
            a, b = rng.randint(1, max_operand), rng.randint(1, max_operand)
            if op == "sub" and b > a:
                a, b = b, a
            i, c, j = rng.randrange(6), rng.randrange(6), rng.randrange(6)
            fam = (op, i, j)
            text_parts = [START[i], CUE[op][c], QUESTION[j]]
            if rng.random() < 0.3 and split != "ood":  # question-first variant in training
                text_parts = [text_parts[2]] + text_parts[:2]
        held = family_ood(fam[1], fam[2])
        if (split == "ood") != held:
            return None
        if split != "ood" and not D._accept(split, "math", op, a, b):
            return None
        value = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        text = " ".join(text_parts).format(n=rng.choice(NAMES), it=rng.choice(ITEMS), a=a, b=b)
        return Example(text, f"{a} {D.MATH_SYMBOLS[op]} {b} = {value}", "math", split,
                       {"op": op, "operands": [a, b], "value": str(value)})

    return D._draw(n, seed, make)


old_ood = D.math_problems(200, 0, "ood")
D.math_problems = math_problems
import reprolib.zoo.build as B
B.D.math_problems = math_problems  # same module object
from reprolib.zoo.build import Zoo
from reprolib.evals.suite import evaluate
from transformers import AutoModelForCausalLM, AutoTokenizer
import torch

torch.set_num_threads(2)
ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/genexp"
zoo = Zoo("mini", root=f"{ROOT}/zoo", progress=False)
t = time.time()
out = {}
for name in ("base", "instruct", "math_b"):
    zoo.path(name)
    print(name, "built", round(time.time() - t), flush=True)
sets = {"test": math_problems(200, 0, "test"), "ood": math_problems(200, 0, "ood"), "old_ood": old_ood}
print("examples", sets["test"][0].prompt, "|", sets["ood"][0].prompt, flush=True)
for name in ("instruct", "math_b"):
    model = AutoModelForCausalLM.from_pretrained(zoo.path(name)).eval()
    tok = AutoTokenizer.from_pretrained(zoo.path(name))
    for split, exs in sets.items():
        out[f"{name}/{split}"] = evaluate(model, tok, {"math": exs}, ["math"])["scores"]["math"]
        print(name, split, out[f"{name}/{split}"], flush=True)
json.dump(out, open(f"{ROOT}/result.json", "w"), indent=1)
