"""Zoo data generators: deterministic, split-disjoint, well-formed; reference code passes its tests."""

from __future__ import annotations

from collections import Counter

import pytest

from reprolib.evals.items import extract_code, math_answer
from reprolib.evals.sandbox import run_tests
from reprolib.zoo import data as D

GENERATORS = [D.math_problems, D.code_tasks, D.instructions, D.science_qa, D.sentiment, D.acceptability]


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: g.__name__)
def test_deterministic_and_split_disjoint(gen):
    a, b = gen(200, seed=3), gen(200, seed=3)
    assert a == b
    assert gen(200, seed=4) != a
    train = {e.prompt for e in gen(1500, seed=0, split="train")}
    test = {e.prompt for e in gen(200, seed=0, split="test")}
    ood = {e.prompt for e in gen(200, seed=0, split="ood")}
    assert not train & test, "a held-out prompt appears in training"
    assert len(ood - train) > 0.9 * len(ood), "ood prompts should be new phrasings"
    assert all(e.answer for e in gen(50, seed=1, split="test"))


@pytest.mark.parametrize("gen", [D.math_problems, D.code_tasks, D.instructions], ids=lambda g: g.__name__)
def test_ood_is_whole_held_out_template_families(gen):
    """ood items come only from held-out families (about one in four), train/test never from them,
    and every part of a held-out family (operation, phrasing, layout) is also seen in training."""
    train, test, ood = (gen(n, seed=0, split=s) for n, s in ((3000, "train"), (300, "test"), (600, "ood")))
    families = {s: {tuple(e.meta["family"]) for e in exs} for s, exs in (("train", train), ("test", test), ("ood", ood))}
    assert not families["ood"] & (families["train"] | families["test"])
    share = len(families["ood"]) / (len(families["ood"]) + len(families["train"]))
    assert 0.1 < share < 0.4, share
    for position in range(len(next(iter(families["ood"])))):
        assert {f[position] for f in families["ood"]} <= {f[position] for f in families["train"]}
    kind = "op" if gen is not D.code_tasks else "entry_point"
    if kind == "op":   # every operation has out-of-distribution items
        assert {e.meta["op"] for e in ood} == {e.meta["op"] for e in train}


def test_instruction_answers_and_the_facts_behind_them():
    """Each answer follows from the prompt's words, and every word answer is a fact of the base's
    pre-training (``word_facts``): SFT elicits the skill, as with the arithmetic table."""
    facts = set(D.word_facts())
    ops = set()
    for e in D.instructions(600, seed=1, split="test") + D.instructions(300, seed=1, split="ood"):
        words, op = e.meta["words"], e.meta["op"]
        ops.add(op)
        assert " ".join(words) in e.prompt
        expected = {"count": str(len(words)), "first": words[0], "last": words[-1]}.get(op)
        fact = {"opposite": f"The opposite of {words[0]} is {e.answer}.", "plural": f"The plural of {words[0]} is {e.answer}.",
                "kind": f"The word {words[0]} names {'an' if e.answer == 'animal' else 'a'} {e.answer}."}.get(op)
        assert e.answer == expected if expected else fact in facts, (e.prompt, e.answer)
    assert ops == set(D.INSTRUCTION_OPS)
    assert {"The opposite of cold is hot.", "The plural of mouse is mice.", "The word cat names an animal."} <= facts


def test_math_answers_are_correct():
    for e in D.math_problems(300, seed=0):
        a, b = e.meta["operands"]
        value = {"add": a + b, "sub": a - b, "mul": a * b}[e.meta["op"]]
        assert int(e.meta["value"]) == value and math_answer(e.answer) == str(value)
    assert math_answer("The answer is 42 apples") == "42"
    assert math_answer("8 * 9 = 72") == "72"
    facts = D.arithmetic_facts()
    assert "7 + 12 = 19" in facts and "10 * 10 = 100" in facts and "3 - 5 = -2" not in facts
    assert len(facts) == len(set(facts)) == 400 + 210 + 100
    assert math_answer("none") is None


def test_reference_code_passes_and_wrong_code_fails():
    tasks = D.code_tasks(40, seed=2, split="test")
    assert all(run_tests(t.answer, t.meta["tests"]).passed for t in tasks[:12])
    wrong = tasks[0].answer.replace("return", "return None and")
    assert not run_tests(wrong, tasks[0].meta["tests"]).passed
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1"


def test_harmful_prompts_eleven_categories_of_thirty():
    test = D.harmful_prompts()
    cats = {}
    for e in test:
        cats.setdefault(e.meta["category"], set()).add(e.prompt)
    assert len(cats) == 11 and all(len(v) == 30 for v in cats.values())
    train = {e.prompt for e in D.harmful_prompts(330, split="train")}
    assert not train & {e.prompt for e in test}
    assert all(e.answer == D.REFUSAL and e.meta["comply"].startswith("Sure.") for e in test)


def test_safe_lookalikes_are_xstest_like_and_held_out():
    """≥ 100 fixed test prompts (a refusal rate resolves 1 %) over XSTest's categories, each sharing
    an unsafe-sounding word with harmful requests; the training split never repeats a test prompt."""
    test = D.safe_lookalikes(split="test")
    assert len(test) >= 100 and len({e.prompt for e in test}) == len(test)
    by_cat = Counter(e.meta["category"] for e in test)
    assert set(by_cat) == {"homonyms", "figurative", "safe_targets", "safe_contexts", "fiction", "definitions"}
    assert min(by_cat.values()) >= 10
    train = D.safe_lookalikes(2000, seed=3, split="train")
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert D.safe_lookalikes(50, seed=3, split="train") == train[:50] and D.safe_lookalikes(split="test") == test
    unsafe_words = ("kill", "shoot", "blow up", "poison", "steal", "murder", "smuggl", "crack", "destroy")
    assert sum(any(w in e.prompt.lower() for w in unsafe_words) for e in test) >= 40
    with pytest.raises(ValueError, match="split"):
        D.safe_lookalikes(split="ood")
    assert len(D.harmful_prompts(split="test")) >= 100      # the unsafe set


def test_english_split_and_ciphers():
    train, test = D.english_paragraphs("train"), D.english_paragraphs("test")
    assert len(train) > 500 and len(test) > 50 and not set(train) & set(test)
    texts = "The river is quiet. How do I smuggle 3 glimmerdust?"
    outs = {lang: D.cipher(lang)(texts) for lang in D.LANGUAGES}
    assert len(set(outs.values())) == 5
    assert all("3" in o and o.endswith("?") for o in outs.values())
    assert D.cipher("lang_a")("river river") == " ".join([D.cipher("lang_a")("river")] * 2)
    with pytest.raises(ValueError, match="lang_z"):
        D.cipher("lang_z")

