"""The τJp text track's four generated GLUE-like tasks: determinism, balanced labels, held-out splits,
padding, label words that the tiny language zoo's tokenizer keeps apart."""

from __future__ import annotations

import numpy as np
import pytest

from reprolib.text import tasks as X


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from reprolib.zoo.build import Zoo

    return Zoo("tiny", root=tmp_path_factory.mktemp("lm"), progress=False).tokenizer()


def test_same_seed_same_bytes_other_seed_other_items(tokenizer):
    for task in X.TASKS:
        a = X.make_task(task, 40, 3, "train", tokenizer=tokenizer)
        b = X.make_task(task, 40, 3, "train", tokenizer=tokenizer)
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes(), task
        assert X.make_texts(task, 40, 4, "train")[0] != X.make_texts(task, 40, 3, "train")[0], task


def test_labels_balanced_and_padding_on_the_right(tokenizer):
    for task in X.TASKS:
        ids, labels = X.make_task(task, 30, 0, "val", tokenizer=tokenizer)
        assert ids.dtype == np.int64 and labels.dtype == np.int64 and ids.shape[0] == 30
        assert labels.tolist() == [i % 2 for i in range(30)], task
        real = ids != X.PAD
        assert real[:, 0].all() and not (real[:, 1:] & ~real[:, :-1]).any(), task      # right-padded
        assert real.sum(1).max() == ids.shape[1] and (ids[real] >= 0).all()
        prompts, _ = X.make_texts(task, 30, 0, "val")
        row = ids[0][real[0]].tolist()
        assert row == tokenizer(prompts[0], add_special_tokens=False)["input_ids"]
        assert all(p.endswith("?\n") for p in prompts)


def test_splits_are_disjoint_and_fixed_by_the_item():
    for task in X.TASKS:
        seen = {split: set(X.make_texts(task, 300, 0, split)[0]) for split in X.SPLITS}
        assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"] and not seen["val"] & seen["test"]
        other_seed = set(X.make_texts(task, 300, 1, "train")[0])
        assert not other_seed & seen["test"], task                  # a test prompt is never trained on, any seed
        assert all(X.split_of(task, p) == "test" for p in seen["test"])


def test_label_semantics_of_a_few_generated_items():
    prompts, labels = X.make_texts("mrpc", 60, 0, "train")
    facts = lambda s: sorted(w for w in s.replace(".", "").split() if w in X.NAMES or w in X.ITEMS or w.isdigit())  # noqa: E731
    for p, y in zip(prompts, labels):
        first, second = p.splitlines()[:2]
        if y == 1:                                                   # equivalent: the same who, how many and what
            assert facts(first) == facts(second), p
    prompts, labels = X.make_texts("cola", 200, 0, "train")
    good = {p for p, y in zip(prompts, labels) if y == 1}
    bad = {p for p, y in zip(prompts, labels) if y == 0}
    assert not good & bad
    prompts, labels = X.make_texts("sst2", 200, 0, "train")
    for p, y in zip(prompts, labels):
        if " not " in p:
            assert any(w in p for w in (X.NEGATIVE if y else X.POSITIVE))          # negation flips the adjective


def test_label_words_are_told_apart_by_their_first_token(tokenizer):
    from reprolib.text.model import label_token

    for task, words in X.LABEL_WORDS.items():
        assert len(words) == X.TASKS[task] == 2
        assert len({label_token(tokenizer, w) for w in words}) == 2, task


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown text task"):
        X.make_texts("qnli", 4)
    with pytest.raises(ValueError, match="split must be one of"):
        X.make_texts("rte", 4, split="ood")
    with pytest.raises(ValueError, match="'n' = 0"):
        X.make_texts("rte", 0)
