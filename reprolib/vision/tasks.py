"""Eight image-classification tasks for the τJp chapter (seed 004's eight-task vision setting),
built offline and deterministically: 16 × 16 grey images, each task with its own label space.

The paper's tasks are Cars, DTD, EuroSAT, GTSRB, MNIST, RESISC45, SUN397 and SVHN; ours stand in for
their *kinds*, not their content:

=============  =======  =====================================================================
task           classes  images
=============  =======  =====================================================================
digits         10       scikit-learn's bundled handwritten digits (8 × 8, upsampled), MNIST-like
digits_clutter 10       the same digits inverted on a textured background, shifted: SVHN-like,
                        so that it interferes with ``digits`` as SVHN does with MNIST
shapes         6        one outline shape (circle, square, triangle, cross, diamond, bar) — GTSRB-like
textures       6        a full-image texture (stripes in 4 directions, checks, dots) — DTD-like
counts         6        1–6 blobs
orientation    4        a bar at 0°, 45°, 90°, 135°
quadrant       4        a blob in one of four quadrants — a coarse scene layout
sizes          4        one square of side 3, 5, 7 or 9
=============  =======  =====================================================================

``make_task(task, n, seed, split)`` returns ``(images float32 [n, 1, 16, 16] in [0, 1], labels
int64 [n])``. Each image is a pure function of (task, split, seed, index), so the same arguments give
the same bytes on every machine. Procedural tasks draw train and test from disjoint seed streams;
the digits split scikit-learn's 1,797 images by a fixed hash of their index (one in five to test),
so no test image is ever trained on. The ``val`` split (coefficient selection) draws fresh procedural
images from its own stream; for the digits it re-draws the *training* digits with other shifts and
noise (scikit-learn ships too few images for a third split), so a digits validation score runs high.

``control_set(n, seed, split)`` is the control task of the negation experiments (the paper's
ImageNet): images of all eight tasks, each turned by 0°, 90°, 180° or 270°, labelled with the turn,
the pre-training objective of θ0 (``reprolib.vision.zoo``), so θ0 has a skill there that fine-tuning
on a task can erode. Its ceiling is low: many images look the same turned (a square, stripes, a
centred blob), so θ0 is well above chance (25 %) but far from 100 %; the τJp page states θ0's score.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

SIZE = 16
TASKS = {"digits": 10, "digits_clutter": 10, "shapes": 6, "textures": 6, "counts": 6, "orientation": 4,
         "quadrant": 4, "sizes": 4}
SPLITS = ("train", "val", "test")
CONTROL = "rotation"          # the control task of task negation (4 classes)


def _rng(task: str, split: str, seed: int, index: int) -> np.random.Generator:
    key = hashlib.sha256(f"{task}:{split}:{seed}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(key[:8], "little"))


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.float32) / 16.0
    up = images.repeat(2, axis=1).repeat(2, axis=2)              # 8 × 8 → 16 × 16, nearest neighbour
    return up, d.target.astype(np.int64)


def _digit_indices(split: str) -> np.ndarray:
    _, labels = _digits()
    test = np.array([hashlib.sha256(f"digit:{i}".encode()).digest()[0] % 5 == 0 for i in range(len(labels))])
    return np.flatnonzero(test if split == "test" else ~test)


def _shift(img: np.ndarray, rng: np.random.Generator, most: int = 2) -> np.ndarray:
    """The image moved by up to ``most`` pixels each way, filled with 0 (no wrap-around)."""
    dy, dx = (int(v) for v in rng.integers(-most, most + 1, size=2))
    out = np.zeros_like(img)
    out[max(dy, 0):SIZE + min(dy, 0), max(dx, 0):SIZE + min(dx, 0)] = img[max(-dy, 0):SIZE - max(dy, 0), max(-dx, 0):SIZE - max(dx, 0)]
    return out


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _blob(img: np.ndarray, cy: float, cx: float, r: float) -> None:
    yy, xx = _grid()
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1.0


def _shape(label: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((SIZE, SIZE), np.float32)
    yy, xx = _grid()
    c, r = 7.5 + rng.uniform(-1.5, 1.5, size=2), rng.uniform(4.0, 6.0)
    dy, dx = yy - c[0], xx - c[1]
    if label == 0:                                               # circle outline
        d = np.sqrt(dy ** 2 + dx ** 2)
        img[np.abs(d - r) < 0.8] = 1
    elif label == 1:                                             # square outline
        d = np.maximum(np.abs(dy), np.abs(dx))
        img[np.abs(d - r) < 0.8] = 1
    elif label == 2:                                             # triangle (filled)
        img[(dy <= r * 0.8) & (np.abs(dx) <= (dy + r) * 0.55)] = 1
    elif label == 3:                                             # cross
        img[(np.abs(dy) < 1.0) & (np.abs(dx) <= r) | (np.abs(dx) < 1.0) & (np.abs(dy) <= r)] = 1
    elif label == 4:                                             # diamond outline
        d = np.abs(dy) + np.abs(dx)
        img[np.abs(d - r) < 0.8] = 1
    else:                                                        # filled disc
        img[dy ** 2 + dx ** 2 <= (r * 0.7) ** 2] = 1
    return img


def _texture(label: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid()
    period, phase = int(rng.integers(3, 5)), float(rng.uniform(0, 6))
    wave = {0: yy, 1: xx, 2: yy + xx, 3: yy - xx}
    if label in wave:                                            # stripes: horizontal, vertical, two diagonals
        img = (np.sin(2 * np.pi * (wave[label] + phase) / period) > 0).astype(np.float32)
    elif label == 4:                                             # checks
        img = (((yy + phase) // 2 + (xx + phase) // 2) % 2).astype(np.float32)
    else:                                                        # dots
        img = ((np.floor(yy + phase) % period == 0) & (np.floor(xx + phase) % period == 0)).astype(np.float32)
    return img


def _image(task: str, label: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((SIZE, SIZE), np.float32)
    if task == "shapes":
        img = _shape(label, rng)
    elif task == "textures":
        img = _texture(label, rng)
    elif task == "counts":
        centres: list[tuple[float, float]] = []
        while len(centres) < label + 1:
            c = tuple(rng.uniform(2, 13, size=2))
            if all((c[0] - a) ** 2 + (c[1] - b) ** 2 > 16 for a, b in centres):
                centres.append(c)
        for cy, cx in centres:
            _blob(img, cy, cx, 1.3)
    elif task == "orientation":
        yy, xx = _grid()
        angle = np.deg2rad(45 * label + rng.uniform(-8, 8))
        cy, cx = 7.5 + rng.uniform(-1, 1, size=2)
        along = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
        across = -(yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
        img[(np.abs(across) < 1.0) & (np.abs(along) < 6)] = 1
    elif task == "quadrant":
        cy = (4.0 if label < 2 else 11.0) + rng.uniform(-1.5, 1.5)
        cx = (4.0 if label % 2 == 0 else 11.0) + rng.uniform(-1.5, 1.5)
        _blob(img, cy, cx, rng.uniform(1.5, 2.5))
    elif task == "sizes":
        side = 3 + 2 * label
        y, x = (int(v) for v in rng.integers(0, SIZE - side + 1, size=2))
        img[y:y + side, x:x + side] = 1
    else:
        raise ValueError(f"unknown vision task {task!r} (known: {', '.join(TASKS)})")
    return img


def check_request(kind: str, task: str, tasks, split: str, splits, n: int) -> None:
    """A clear error for an unknown task or split, or n < 1 (shared by the vision and text tasks)."""
    if task not in tasks:
        raise ValueError(f"unknown {kind} task {task!r} (known: {', '.join(tasks)})")
    if split not in splits:
        raise ValueError(f"split must be one of {splits}, got {split!r}")
    if n < 1:
        raise ValueError(f"parameter 'n' = {n} must be >= 1")


def make_task(task: str, n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of ``task`` from ``split``, the labels cycling through the classes (balanced; a
    digit is drawn from the split's images of its class), with mild noise."""
    check_request("vision", task, TASKS, split, SPLITS, n)
    images = np.empty((n, 1, SIZE, SIZE), np.float32)
    labels = np.empty(n, np.int64)
    if task.startswith("digits"):
        digits, targets = _digits()
        pool = _digit_indices(split)
        by_class = [pool[targets[pool] == c] for c in range(TASKS[task])]
    for i in range(n):
        rng = _rng(task, split, seed, i)
        label = i % TASKS[task]                                 # balanced: the classes in turn
        if task.startswith("digits"):
            j = int(by_class[label][rng.integers(len(by_class[label]))])
            img = _shift(digits[j], rng)
            if task == "digits_clutter":
                background = 0.5 * _texture(int(rng.integers(6)), rng)
                img = np.clip(1.0 - img, 0, 1) * 0.6 + background * 0.4
        else:
            img = _image(task, label, rng)
        images[i, 0] = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
        labels[i] = label
    return images, labels


def control_set(n: int, seed: int = 0, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The control task: ``n`` images, the eight tasks in turn, image i turned by (i mod 4) quarter
    turns and labelled with it (balanced). Drawn from another seed stream than the tasks' own sets."""
    if n < len(TASKS):
        raise ValueError(f"parameter 'n' = {n} must be >= {len(TASKS)} (one image of each task)")
    per = -(-n // len(TASKS))
    pools = [make_task(task, per, seed + 100_003, split)[0] for task in TASKS]
    images = np.stack([pools[i % len(TASKS)][i // len(TASKS)] for i in range(n)])
    labels = np.arange(n, dtype=np.int64) % 4
    turned = np.stack([np.rot90(img, int(k), axes=(1, 2)) for img, k in zip(images, labels)])
    return np.ascontiguousarray(turned), labels
