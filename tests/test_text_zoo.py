"""The τJp text track on the tiny language zoo's base: the encoder (last-token features, padding, JVPs),
label-word heads, the text zoo's cached task vectors and its error for a missing base."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from reprolib import taujp as T
from reprolib.errors import CheckpointError
from reprolib.text import tasks as X
from reprolib.text.model import PAD, load_encoder
from reprolib.text.zoo import PROFILES, TextZoo, main


@pytest.fixture(scope="module")
def lm_root(tmp_path_factory):
    """A root holding only the tiny language zoo's base (and its tokenizer)."""
    from reprolib.zoo.build import Zoo

    root = tmp_path_factory.mktemp("lm")
    Zoo("tiny", root=root, progress=False).path("base")
    return root


@pytest.fixture(scope="module")
def zoo(lm_root):
    return TextZoo("tiny", root=lm_root, progress=False)


def test_last_token_features_ignore_right_padding(zoo):
    encoder, _ = zoo.pretrained()
    ids, _ = zoo.data("val", 6)["sst2"]
    lengths = (ids != PAD).sum(1)
    assert lengths.min() < ids.shape[1]                            # some rows are padded
    with torch.no_grad():
        batch = encoder(ids)
        for i, n in enumerate(lengths.tolist()):
            alone = encoder(ids[i, :n].unsqueeze(0))[0]             # the unpadded sequence by itself
            more = encoder(torch.cat([ids[i, :n], torch.full((5,), PAD)]).unsqueeze(0))[0]
            assert torch.allclose(batch[i], alone, atol=1e-5) and torch.allclose(more, alone, atol=1e-5)
    with pytest.raises(ValueError, match="on the right"):
        encoder(torch.tensor([[PAD, 5, 6]]))


def test_heads_are_the_lm_logits_of_the_label_words(zoo, lm_root):
    from transformers import AutoModelForCausalLM

    from reprolib.text.model import label_token

    encoder, heads = zoo.pretrained()
    assert set(heads) == set(X.TASKS) and all(not p.requires_grad for h in heads.values() for p in h.parameters())
    lm = AutoModelForCausalLM.from_pretrained(zoo.base_folder(), dtype=torch.float32).eval()
    ids, _ = zoo.data("test", 3)["rte"]
    tok = zoo.tokenizer()
    with torch.no_grad():
        row = ids[0][ids[0] != PAD].unsqueeze(0)
        next_token = lm(row).logits[0, -1]
        words = [label_token(tok, w) for w in X.LABEL_WORDS["rte"]]
        assert torch.allclose(heads["rte"](encoder(row))[0], next_token[words], atol=1e-4)


def test_jvp_matches_finite_differences_and_linearised_model_starts_at_theta0(zoo):
    encoder = load_encoder(zoo.base_folder()).double()
    ids, _ = zoo.data("val", 4)["mrpc"]
    p0 = T.params_of(encoder)
    torch.manual_seed(0)
    tau = {k: 0.01 * torch.randn_like(v) for k, v in p0.items()}
    out, change = T.jvp(encoder, p0, tau, ids)
    # Llama's RMSNorm computes in float32 even in a float64 model, so rounding (~1e-7 / eps) bounds how
    # small eps can be: at 1e-3 it and the central difference's O(eps²) error are both ~1e-4
    eps = 1e-3
    plus = torch.func.functional_call(encoder, {k: v + eps * tau[k] for k, v in p0.items()}, (ids,))
    minus = torch.func.functional_call(encoder, {k: v - eps * tau[k] for k, v in p0.items()}, (ids,))
    assert torch.allclose((plus - minus) / (2 * eps), change, atol=1e-3)
    assert change.abs().max() > 0.1                               # a change well above that tolerance
    assert torch.allclose(out, encoder(ids))
    lin = T.LinearizedModel(encoder)
    assert torch.allclose(lin(ids), encoder(ids))


def test_task_vectors_cached_byte_identical_and_keyed_by_their_settings(zoo, lm_root, tmp_path):
    from reprolib.vision.arithmetic import Outputs, individual

    encoder, heads = zoo.pretrained()
    for regime in zoo.REGIMES:
        vectors = zoo.task_vectors(regime, 0)
        assert set(vectors) == set(X.TASKS)
        assert set(vectors["rte"]) == {k for k, _ in encoder.named_parameters()}
        prov = zoo.provenance(regime, 0)
        assert prov["hash"] == zoo.tv_key(regime) and prov["settings"] == zoo.settings(regime)
    assert "penalty" in zoo.provenance("linear_taujp", 0)["settings"]
    assert "penalty" not in zoo.provenance("linear", 0)["settings"]
    # a second root with the same base: the same bytes
    shutil.copytree(lm_root / "tiny", tmp_path / "tiny")
    again = TextZoo("tiny", root=tmp_path, progress=False)
    again.build([0], ("nonlinear", "linear_taujp"))
    for regime in ("nonlinear", "linear_taujp"):
        assert hashlib.sha256(zoo.tv_file(regime, 0).read_bytes()).digest() == \
            hashlib.sha256(again.tv_file(regime, 0).read_bytes()).digest(), regime
    mtime = zoo.tv_file("linear", 0).stat().st_mtime_ns
    zoo.build([0])                                                  # cached: nothing rebuilt
    assert zoo.tv_file("linear", 0).stat().st_mtime_ns == mtime
    assert not [f for f in zoo.root.rglob(".*") if f.is_file()]    # no temporary file left
    # another λ re-keys only the penalised regime; another learning rate every regime
    other_penalty = TextZoo("tiny", root=lm_root, progress=False, penalty=0.5)
    assert other_penalty.tv_key("linear") == zoo.tv_key("linear")
    assert other_penalty.tv_key("linear_taujp") != zoo.tv_key("linear_taujp")
    assert all(TextZoo("tiny", root=lm_root, progress=False, ft_lr=0.5).tv_key(r) != zoo.tv_key(r) for r in zoo.REGIMES)
    # the vision track's evaluation reads them: linearised outputs at α = 1
    sets = {t: v for t, v in zoo.data("test", 8).items()}
    out = Outputs(encoder, heads, zoo.task_vectors("linear", 0), sets, linear=True)
    acc = individual(out, list(X.TASKS))
    assert all(0 <= a <= 100 for a in acc.values()) and out.taujp("mrpc", "rte") >= 0


def test_missing_base_and_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"tiny/base-[0-9a-f]{12}.*python -m reprolib.zoo build --profile tiny"):
        TextZoo("tiny", root=tmp_path / "empty", progress=False).pretrained()
    with pytest.raises(CheckpointError, match="missing"):
        main(["--profile", "tiny", "--root", str(tmp_path / "empty"), "--seeds", "1"])
    assert not (tmp_path / "empty").exists()                        # nothing written
    with pytest.raises(ValueError, match="unknown text profile"):
        TextZoo("huge")
    with pytest.raises(ValueError, match="cannot be overridden"):
        TextZoo("tiny", n_train=3)
    assert set(PROFILES) >= {"tiny", "mini"}
