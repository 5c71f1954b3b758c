"""The vision zoo's eight tasks (τJp chapter groundwork): deterministic bytes, shapes and ranges,
balanced labels, test images never trained on, distinct tasks, clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from reprolib.vision import tasks as V


@pytest.mark.parametrize("task", list(V.TASKS))
def test_every_task_is_deterministic_well_formed_and_balanced(task):
    x, y = V.make_task(task, 120, seed=3, split="train")
    again, y2 = V.make_task(task, 120, seed=3, split="train")
    assert hashlib.sha256(x.tobytes()).digest() == hashlib.sha256(again.tobytes()).digest() and (y == y2).all()
    assert x.shape == (120, 1, V.SIZE, V.SIZE) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) == set(range(V.TASKS[task]))
    counts = np.bincount(y, minlength=V.TASKS[task])
    assert counts.max() - counts.min() <= 1                       # balanced: the classes in turn
    other, _ = V.make_task(task, 120, seed=4, split="train")
    assert not np.array_equal(x, other)
    prefix, _ = V.make_task(task, 30, seed=3, split="train")
    assert np.array_equal(prefix, x[:30])                       # image i depends on (task, split, seed, i) only


def test_digit_test_images_are_never_trained_on():
    train, test = set(V._digit_indices("train").tolist()), set(V._digit_indices("test").tolist())
    assert not train & test and len(train | test) == 1797 and 0.15 < len(test) / 1797 < 0.25


def test_procedural_train_and_test_differ_and_tasks_are_distinct():
    for task in ("shapes", "counts"):
        a, _ = V.make_task(task, 50, 0, "train")
        b, _ = V.make_task(task, 50, 0, "test")
        assert not np.array_equal(a, b)
    means = {t: float(V.make_task(t, 200, 0, "test")[0].mean()) for t in V.TASKS}
    assert len({round(m, 3) for m in means.values()}) == len(V.TASKS)
    # the cluttered digits are the digits inverted on a background: a different input distribution, the same labels
    assert means["digits_clutter"] > means["digits"]


@pytest.mark.parametrize("kwargs, match", [({"task": "cars"}, "unknown vision task 'cars'"),
                                           ({"task": "digits", "split": "dev"}, "split must be one of"),
                                           ({"task": "digits", "n": 0}, "'n' = 0")])
def test_bad_arguments_are_refused_by_name(kwargs, match):
    args = {"task": "digits", "n": 5, "seed": 0, "split": "train", **kwargs}
    with pytest.raises(ValueError, match=match):
        V.make_task(**args)
