"""Paper profiles and model fingerprints under hostile input: pickle files beside the weights,
safetensors transformers would not load, relative paths, and checkpoints that look alike.

Every error must name the culprit (role, folder, file or key) and leave nothing behind."""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import time

import pytest
import torch
import yaml

import reprolib.cache
from reprolib.cache import HASHES_FILE, FileHashes
from reprolib.errors import CheckpointError, ConfigError
from reprolib.models import Models
from reprolib.zoo.profiles import load_paper_profile, load_profile_evals


class _Evil:
    """Unpickling this creates the folder ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _re(x) -> str:
    return re.escape(str(x))


def _profile(folder, roles: dict, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "profile.yaml"
    f.write_text(yaml.safe_dump({"name": "t", "model_type": "llama", "roles": {k: str(v) for k, v in roles.items()},
                                 **extra}))
    return f


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _flip_byte(path, offset_from_end: int = 5) -> None:
    """Change one byte of the tensor data in place (header, size and, restored, mtime unchanged)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(st.st_size - offset_from_end)
        b = f.read(1)
        f.seek(st.st_size - offset_from_end)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "optimizer.pth", "last.ckpt", "state.pkl"])
def test_pickle_beside_safetensors_is_refused(family, tmp_path, name):
    math = _copy(family["math"], tmp_path / "math")
    (math / name).write_bytes(pickle.dumps(_Evil(tmp_path / "pwned")))
    profile = _profile(tmp_path, {"base": family["base"], "math": math})
    before = _tree(tmp_path)
    with pytest.raises(CheckpointError, match=rf"{_re(profile)}: role 'math': {_re(math)} also holds pickle files \({_re(name)}\).*allow_pickle_files"):
        load_paper_profile(profile)
    with pytest.raises(CheckpointError, match=rf"role 'math'.*{_re(name)}"):
        Models(str(profile))
    assert not (tmp_path / "pwned").exists()
    assert _tree(tmp_path) == before


def test_allowed_pickle_files_are_never_loaded(family, tmp_path):
    """``allow_pickle_files`` accepts the folder, but the model evaluated is its safetensors."""
    from safetensors.torch import load_file

    math = _copy(family["math"], tmp_path / "math")
    (math / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil(tmp_path / "pwned")))
    profile = _profile(tmp_path, {"base": family["base"], "math": math}, allow_pickle_files=["math"])
    models = Models(str(profile))
    model = models.load("math")
    stored = load_file(math / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, stored[k].float()), k
    assert not (tmp_path / "pwned").exists()
    clean = _profile(tmp_path / "clean", {"base": family["base"], "math": family["math"]})
    assert models.fingerprint("math") == Models(str(clean)).fingerprint("math")    # the pickle is not part of it


@pytest.mark.parametrize("allowed, message", [
    (["math", "nosuch"], r"'allow_pickle_files' names \['nosuch'\], which are not roles"),
    ("math", r"'allow_pickle_files' must be a list of role names, got 'math'"),
])
def test_allow_pickle_files_must_list_roles(family, tmp_path, allowed, message):
    profile = _profile(tmp_path, {"base": family["base"], "math": family["math"]}, allow_pickle_files=allowed)
    before = _tree(tmp_path)
    with pytest.raises(ConfigError, match=rf"{_re(profile)}: {message}"):
        load_paper_profile(profile)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("allowed", [[], ["math"]])
def test_folder_without_safetensors_names_role_and_folder(family, tmp_path, allowed):
    math = tmp_path / "math"
    math.mkdir()
    shutil.copy(family["math"] / "config.json", math)
    torch.save({"x": torch.zeros(2)}, math / "pytorch_model.bin")
    profile = _profile(tmp_path, {"base": family["base"], "math": math}, allow_pickle_files=allowed)
    before = _tree(tmp_path)
    with pytest.raises(CheckpointError, match=rf"{_re(profile)}: role 'math': {_re(math)}: only pickle weights found \(pytorch_model.bin\)"):
        load_paper_profile(profile)
    assert _tree(tmp_path) == before


def test_safetensors_transformers_would_not_load_are_refused(family, tmp_path):
    """weights.safetensors beside pytorch_model.bin: transformers would evaluate the .bin."""
    math = _copy(family["math"], tmp_path / "math")
    os.rename(math / "model.safetensors", math / "weights.safetensors")
    torch.save({"x": torch.zeros(2)}, math / "pytorch_model.bin")
    profile = _profile(tmp_path, {"base": family["base"], "math": math}, allow_pickle_files=["math"])
    before = _tree(tmp_path)
    with pytest.raises(CheckpointError, match=rf"role 'math': {_re(math)} holds weights.safetensors, but transformers loads only model.safetensors"):
        load_paper_profile(profile)
    assert _tree(tmp_path) == before


def test_relative_role_paths_resolve_against_the_profile_folder(family, tmp_path, monkeypatch):
    project = tmp_path / "project"
    for role in ("base", "math"):
        _copy(family[role], project / "models" / role)
    profile = _profile(project / "profiles", {"base": "../models/base", "math": "../models/math"})
    decoy = tmp_path / "cwd" / "sub"
    (tmp_path / "cwd" / "models" / "base").mkdir(parents=True)     # what '../models/base' means from the cwd: empty
    decoy.mkdir()
    monkeypatch.chdir(decoy)
    roles = load_paper_profile(os.path.relpath(profile))
    assert roles == {"base": project / "models" / "base", "math": project / "models" / "math"}
    assert Models(os.path.relpath(profile)).path("math") == project / "models" / "math"


def test_relative_missing_path_is_reported_where_it_was_looked_for(family, tmp_path, monkeypatch):
    profile = _profile(tmp_path / "profiles", {"base": str(family["base"]), "math": "../models/nowhere"})
    monkeypatch.chdir(family["base"])
    with pytest.raises(CheckpointError, match=rf"role 'math': checkpoint {_re(tmp_path / 'models' / 'nowhere')} does not exist"):
        load_paper_profile(profile)
    assert not (tmp_path / "models").exists()


def test_relative_include_path_resolves_against_the_profile_folder(family, tmp_path, monkeypatch):
    (tmp_path / "profiles" / "tasks").mkdir(parents=True)
    spec = {"include_path": "tasks", "metrics": {"math": {"task": "t", "metric": "exact_match"}}}
    profile = _profile(tmp_path / "profiles", {"base": family["base"]}, lm_eval=spec)
    monkeypatch.chdir(family["base"])
    assert load_profile_evals(profile)["include_path"] == str(tmp_path / "profiles" / "tasks")
    bad = _profile(tmp_path / "other", {"base": family["base"]}, lm_eval={**spec, "include_path": "tasks"})
    with pytest.raises(ConfigError, match=rf"{_re(bad)}: lm_eval include_path {_re(tmp_path / 'other' / 'tasks')} is not a folder"):
        load_profile_evals(bad)


def test_lookalike_checkpoints_get_different_fingerprints(family, tmp_path):
    """Same header, size and mtime, one byte of weights different: different fingerprints (and so
    different cache entries); an identical copy elsewhere shares the fingerprint."""
    a = _copy(family["math"], tmp_path / "a")
    b = _copy(family["math"], tmp_path / "b")
    c = _copy(family["math"], tmp_path / "c")
    _flip_byte(b / "model.safetensors")
    st_a, st_b = (a / "model.safetensors").stat(), (b / "model.safetensors").stat()
    os.utime(b / "model.safetensors", ns=(st_a.st_atime_ns, st_a.st_mtime_ns))
    assert st_a.st_size == st_b.st_size and (b / "model.safetensors").stat().st_mtime_ns == st_a.st_mtime_ns
    models = Models(str(_profile(tmp_path, {"base": family["base"], "math": a, "code": b, "ua": c})))
    assert models.fingerprint("math") != models.fingerprint("code")
    assert models.fingerprint("math") == models.fingerprint("ua")
    assert not list(tmp_path.rglob(f"*{HASHES_FILE}"))           # no sidecar unless one is asked for


def test_file_rewritten_in_place_with_its_old_mtime_is_hashed_again(family, tmp_path, monkeypatch):
    monkeypatch.setattr(reprolib.cache, "RACY_SECONDS", 0)
    math = _copy(family["math"], tmp_path / "math")
    profile = _profile(tmp_path, {"base": family["base"], "math": math})
    sidecar = tmp_path / "cache" / HASHES_FILE
    before = Models(str(profile), hashes=sidecar).fingerprint("math")
    time.sleep(0.05)                                              # past the file system's timestamp tick
    _flip_byte(math / "model.safetensors")
    after = Models(str(profile), hashes=sidecar).fingerprint("math")
    assert after != before
    fresh = FileHashes().sha256(math / "model.safetensors")
    assert fresh in sidecar.read_text()
    assert sorted(p.name for p in sidecar.parent.iterdir()) == [HASHES_FILE]    # no temporary file left


def test_digests_are_remembered_and_a_corrupt_sidecar_is_skipped(family, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(reprolib.cache, "RACY_SECONDS", 0)
    calls = []
    digest = FileHashes._digest
    monkeypatch.setattr(FileHashes, "_digest", staticmethod(lambda p: calls.append(p) or digest(p)))
    profile = _profile(tmp_path, {"base": family["base"], "math": family["math"]})
    sidecar = tmp_path / "cache" / HASHES_FILE
    first = Models(str(profile), hashes=sidecar).fingerprint("math")
    hashed = len(calls)
    assert hashed >= 2                                            # weights and config
    assert Models(str(profile), hashes=sidecar).fingerprint("math") == first and len(calls) == hashed
    sidecar.write_text(sidecar.read_text()[:-20])                 # truncated mid-line
    with caplog.at_level(logging.WARNING, logger="reprolib.cache"):
        assert Models(str(profile), hashes=sidecar).fingerprint("math") == first
    assert str(sidecar) in caplog.text and len(calls) == hashed + 1
    assert sorted(p.name for p in sidecar.parent.iterdir()) == [HASHES_FILE]


def test_freshly_written_files_are_not_remembered(family, tmp_path):
    """A file changed within RACY_SECONDS could change again without its stamp changing."""
    math = _copy(family["math"], tmp_path / "math")
    sidecar = tmp_path / "cache" / HASHES_FILE
    hashes = FileHashes(sidecar)
    first = hashes.sha256(math / "model.safetensors")
    _flip_byte(math / "model.safetensors")                        # same tick possibly: same stamp
    assert hashes.sha256(math / "model.safetensors") != first
    assert not sidecar.exists()


def test_rebuilt_zoo_checkpoint_gets_a_new_fingerprint(family, tmp_path, monkeypatch):
    """A zoo model's fingerprint holds its weights' hash, not only its recipe's: a checkpoint rebuilt
    into the same folder (same names, sizes and mtime) is not served the old one's scores."""
    from reprolib.zoo.build import Zoo

    monkeypatch.setattr(reprolib.cache, "RACY_SECONDS", 0)
    root, sidecar = tmp_path / "zoo", tmp_path / "cache" / HASHES_FILE
    folder = Zoo("tiny", root=root, progress=False).folder("base")
    _copy(family["base"], folder)
    (folder / "provenance.json").write_text("{}")                  # marks it built: nothing is trained here
    old = Models("tiny", root=root, progress=False, hashes=sidecar)
    fp = old.fingerprint("base")
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    shutil.rmtree(folder)                                         # the rebuild: a new folder renamed into place
    time.sleep(0.05)
    _copy(family["math"], folder)
    (folder / "provenance.json").write_text("{}")
    os.utime(folder / "model.safetensors", ns=(mtime, mtime))
    new = Models("tiny", root=root, progress=False, hashes=sidecar)
    assert new.zoo.model_hash("base") == old.zoo.model_hash("base")
    assert new.fingerprint("base") != fp
    assert sorted(p.name for p in sidecar.parent.iterdir()) == [HASHES_FILE]
