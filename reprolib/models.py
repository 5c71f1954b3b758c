"""Where a chapter's checkpoints come from: a zoo profile (``mini``, ``tiny``; built on demand) or a
paper profile (a YAML mapping roles to local HF folders, see ``reprolib.zoo.profiles``).

Roles are the zoo's names (``base``, ``instruct``, ``math``, ``code``, ``ua``, ``lang_a`` …). A
training-seed replicate of a role is ``<role>_s<k>``; seed 0 is the role itself. Chapters ask
``models.has(role)`` before using a replicate, so a paper profile with one checkpoint per role
runs with one seed (and its claims say so).

Weights are only ever read from safetensors (``Checkpoint``, ``from_pretrained(use_safetensors=True)``).
A model's fingerprint, its identity in cache keys, includes the sha256 of its weight and side files
(config, tokenizer), so two checkpoints with the same shapes, sizes and dates never share a cached
score; digests are remembered by ``reprolib.cache.FileHashes`` so unchanged files are hashed once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from reprolib.cache import FileHashes
from reprolib.errors import ConfigError


def seeded(role: str, seed: int) -> str:
    """The zoo name of ``role`` trained with training seed ``seed`` (0 → the role itself)."""
    return role if seed == 0 else f"{role}_s{seed}"


def eval_device() -> str:
    """Where the scorer evaluates: ``REPROLIB_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``), else the
    first GPU when torch sees one (a Ray task given a GPU sees exactly that one), else the CPU."""
    import os

    chosen = os.environ.get("REPROLIB_DEVICE", "").strip()
    if chosen:
        if chosen != "cpu" and not (chosen.startswith("cuda") and torch.cuda.is_available()):
            raise ConfigError(f"REPROLIB_DEVICE = {chosen!r}: use 'cpu', or 'cuda[:N]' where a GPU is visible")
        return chosen
    return "cuda" if torch.cuda.is_available() else "cpu"


class Models:
    """Checkpoints by role, loaded once and kept as float32 state dicts (the zoo is small; for
    paper-scale checkpoints use the streaming engine, ``reprolib.merge.merge``)."""

    def __init__(self, profile: str = "mini", root: str | Path = "zoo", progress: bool = True,
                 hashes: str | Path | None = None):
        """``hashes``: a sidecar file remembering the weight files' sha256 across runs (else in memory)."""
        from reprolib.zoo.build import PROFILES, Zoo

        self.profile = profile
        self._sds: dict[str, dict[str, torch.Tensor]] = {}
        self._fingerprints: dict[str, str] = {}
        self._hashes = FileHashes(hashes)
        if profile in PROFILES:
            self.zoo, self.roles, self.lm_eval = Zoo(profile, root=root, progress=progress), None, {}
        else:
            from reprolib.paths import project_path
            from reprolib.zoo.profiles import load_paper_profile, load_profile_evals

            profile = str(project_path(profile))
            if not Path(profile).exists():
                raise ConfigError(f"parameter 'profile' = {profile!r} is neither a zoo profile "
                                  f"({', '.join(PROFILES)}) nor a paper-profile YAML file")
            self.zoo, self.roles = None, load_paper_profile(profile)
            self.lm_eval = load_profile_evals(profile)   # metrics scored by lm-eval tasks instead of the zoo's sets

    def __getstate__(self) -> dict:
        """Pickled (a Ray task's scorer) without the loaded state dicts: a worker reads its own."""
        return {**self.__dict__, "_sds": {}}

    @property
    def is_zoo(self) -> bool:
        return self.zoo is not None

    def has(self, role: str) -> bool:
        return role in self.zoo.recipes if self.is_zoo else role in self.roles

    def path(self, role: str) -> Path:
        if not self.has(role):
            known = sorted(self.zoo.recipes) if self.is_zoo else sorted(self.roles)
            raise ConfigError(f"profile {self.profile!r} has no model {role!r} (known: {', '.join(known)})")
        return self.zoo.path(role) if self.is_zoo else self.roles[role]

    def build(self, roles) -> None:
        for role in roles:
            self.path(role)

    def tokenizer(self, role: str = "instruct"):
        if self.is_zoo:
            return self.zoo.tokenizer()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path(role))

    def load(self, role: str, device: str = "cpu"):
        """A fresh ``AutoModelForCausalLM`` (float32, eval mode), from safetensors only, on ``device``
        (the scorer passes :func:`eval_device`)."""
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.path(role), dtype=torch.float32, use_safetensors=True).eval()
        return model.to(device)

    def state_dict(self, role: str) -> dict[str, torch.Tensor]:
        """The role's weights as float32 tensors (cached; treat as read-only)."""
        if role not in self._sds:
            from reprolib.io import Checkpoint

            ck = Checkpoint(self.path(role))
            self._sds[role] = {k: v.float() if v.is_floating_point() else v for k, v in ck.state_dict().items()}
        return self._sds[role]

    def training(self, role: str) -> dict | None:
        """The role's recorded training (``steps``, ``tokens``, ``flops``, ``seconds``) from its
        ``provenance.json``: every zoo model has one; a paper checkpoint has none unless its folder
        carries one in the zoo's layout (then None: compute cannot be read off a checkpoint)."""
        path = Path(self.path(role)) / "provenance.json"
        if not path.exists():
            return None
        train = json.loads(path.read_text()).get("train")
        return dict(train) if isinstance(train, dict) and "steps" in train else None

    def fingerprint(self, role: str) -> str:
        """A short identity of the role's weights for cache keys: the sha256 of its safetensors and
        side files (config, tokenizer), and for a zoo model its recipe hash too."""
        if role not in self._fingerprints:
            from reprolib.io import SIDE_FILES, Checkpoint

            folder = Path(self.path(role))
            files = Checkpoint(folder).files + [folder / f for f in ("model.safetensors.index.json", *SIDE_FILES)
                                                 if (folder / f).exists()]
            ident = {"files": {f.relative_to(folder).as_posix(): self._hashes.sha256(f) for f in sorted(set(files))}}
            if self.is_zoo:
                ident["recipe"] = self.zoo.model_hash(role)
            self._fingerprints[role] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        return self._fingerprints[role]

    def describe(self) -> dict:
        """The scale a page ran at: profile, architecture and size of the instruct model."""
        cfg = json.loads((Path(self.path("instruct")) / "config.json").read_text())
        n_params = sum(v.numel() for v in self.state_dict("instruct").values())
        kind = f"{self.profile} zoo (built here from generated data)" if self.is_zoo else f"paper profile {self.profile}"
        return {"profile": self.profile, "kind": kind, "architecture": cfg.get("architectures", ["?"])[0],
                "layers": cfg.get("num_hidden_layers"), "hidden": cfg.get("hidden_size"),
                "vocab": cfg.get("vocab_size"), "parameters": n_params}
