"""The vision zoo's backbone and heads (τJp groundwork): the ViT's shapes and forward-mode AD, a cached
byte-identical build, frozen heads, clear errors."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from reprolib import taujp as T
from reprolib.vision import tasks as V
from reprolib.vision.model import Classifier, TinyViT
from reprolib.vision.zoo import VisionZoo, rotations


def test_tinyvit_shapes_and_a_jvp_through_its_attention():
    torch.manual_seed(0)
    model = Classifier(TinyViT(dim=16, depth=2, heads=2, mlp=32), torch.nn.Linear(16, 10)).double()
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    assert model(x).shape == (3, 10)
    p0 = T.params_of(model)
    tau = {k: 0.01 * torch.randn_like(v) for k, v in p0.items()}
    _, change = T.jvp(model, p0, tau, x)
    eps = 1e-6
    moved = torch.func.functional_call(model, {k: v + eps * tau[k] for k, v in p0.items()}, (x,))
    assert torch.allclose((moved - model(x)) / eps, change, atol=1e-5)
    assert not any(p.requires_grad for p in model.head.parameters())
    with pytest.raises(ValueError, match="multiple of patch"):
        TinyViT(size=15)


def test_rotations_label_each_quarter_turn():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    rotated, labels = rotations(x)
    assert labels.tolist() == [0, 1, 2, 3] and torch.equal(rotated[2], torch.rot90(x[0], 2, dims=(1, 2)))


def test_pretrained_backbone_and_heads_are_cached_and_byte_identical(tmp_path):
    zoo = VisionZoo("tiny", root=tmp_path / "a", progress=False)
    backbone, heads = zoo.pretrained()
    folder = zoo.folder()
    prov = json.loads((folder / "provenance.json").read_text())
    assert set(heads) == {*V.TASKS, V.CONTROL} and all(h.out_features == {**V.TASKS, V.CONTROL: 4}[t] for t, h in heads.items())
    assert all(not p.requires_grad for h in heads.values() for p in h.parameters())
    assert prov["hash"] == zoo.key() and set(prov["probe_train_accuracy"]) == set(V.TASKS)
    assert prov["machine"]["cpu_capability"]
    again = VisionZoo("tiny", root=tmp_path / "b", progress=False)
    again.pretrained()
    for name in ("model.safetensors", "heads.safetensors"):
        assert hashlib.sha256((folder / name).read_bytes()).digest() == \
            hashlib.sha256((again.folder() / name).read_bytes()).digest(), name
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    zoo.pretrained()                                              # cached: not rebuilt
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert not list(folder.parent.glob("*.tmp-*"))
    x, _ = V.make_task("digits", 4, 0, "test")
    assert Classifier(backbone, heads["digits"])(torch.from_numpy(x)).shape == (4, 10)
