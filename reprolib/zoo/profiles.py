"""Paper profiles: YAML files mapping each zoo role to a local checkpoint of the papers' models.

    name: paper-lata-llama3-8b
    model_type: llama            # every role's config.json must say this
    roles: {base: /models/Meta-Llama-3-8B, instruct: ..., math: ..., code: ..., ua: ...}
    allow_pickle_files: [ua]     # optional: roles whose folders may also hold pickle files (never read)
    lm_eval:                     # optional: score these metrics with lm-eval tasks, not the zoo's sets
      include_path: /data/tasks  # optional folder of task YAMLs (local data)
      metrics:
        math: {task: gsm8k, metric: exact_match}
        ppl: {task: wikitext, metric: word_perplexity}

A relative path (a role's folder, ``include_path``) is relative to the profile file's folder.

``load_paper_profile`` checks every path before any notebook spends time on it: the folder exists,
holds safetensors weights in the layout ``transformers`` loads (``model.safetensors``, or the
shards of ``model.safetensors.index.json``), and its ``config.json`` has the profile's model type
and the base's vocabulary and depth. Only safetensors are ever read. A folder that also holds
pickle files (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, ``*.pkl``: unpickling can execute code)
is refused, so a ``pytorch_model.bin`` beside the safetensors can never be the weights evaluated,
unless its role is listed under ``allow_pickle_files``; even then the pickle files are ignored.
Shipped examples live beside this module.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from reprolib.errors import CheckpointError, ConfigError
from reprolib.io import PICKLE_SUFFIXES, Checkpoint

SHIPPED = Path(__file__).with_name("paper_profiles")
MATCH_BASE = ("vocab_size", "num_hidden_layers", "hidden_size")
SAFE_WEIGHTS, SAFE_INDEX = "model.safetensors", "model.safetensors.index.json"   # what transformers loads


def _read(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: unreadable paper profile ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a paper profile must be a YAML mapping, got {type(raw).__name__}")
    return raw


def _relative_to(path: Path, value: str) -> Path:
    """``value`` as a path; a relative one is taken from the folder of the profile ``path``."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (path.absolute().parent / p).resolve()


def _allowed_pickle(path: Path, raw: dict) -> set[str]:
    allowed = raw.get("allow_pickle_files") or []
    if not isinstance(allowed, list) or not all(isinstance(r, str) for r in allowed):
        raise ConfigError(f"{path}: 'allow_pickle_files' must be a list of role names, got {allowed!r}")
    unknown = sorted(set(allowed) - set(raw["roles"]))
    if unknown:
        raise ConfigError(f"{path}: 'allow_pickle_files' names {unknown}, which are not roles of the profile "
                          f"({', '.join(map(str, raw['roles']))})")
    return set(allowed)


def _check_weights(where: str, folder: Path, ckpt: Checkpoint, pickle_ok: bool) -> None:
    """The folder's weights are exactly the safetensors both ``Checkpoint`` and ``transformers`` read,
    and it holds no pickle file unless ``pickle_ok``."""
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())
    if pickled and not pickle_ok:
        raise CheckpointError(f"{where}: {folder} also holds pickle files ({', '.join(pickled)}); unpickling can "
                              "execute code, so reprolib refuses the folder. Remove them, or list the role under "
                              "'allow_pickle_files' in the profile (its safetensors are still the only weights read)")
    names = sorted(p.name for p in folder.glob("*.safetensors"))
    has_index = (folder / SAFE_INDEX).exists()
    if has_index and SAFE_WEIGHTS in names:
        raise CheckpointError(f"{where}: {folder} holds both {SAFE_WEIGHTS} and {SAFE_INDEX}; transformers and "
                              "reprolib's merge engine would read different weights: keep one")
    if not has_index and names != [SAFE_WEIGHTS]:
        raise CheckpointError(f"{where}: {folder} holds {', '.join(names)}, but transformers loads only "
                              f"{SAFE_WEIGHTS} (or the shards listed in {SAFE_INDEX}): rename or remove the others")
    named = ckpt.config.get("transformers_weights")
    if named is not None and named != (SAFE_INDEX if has_index else SAFE_WEIGHTS):
        raise CheckpointError(f"{where}: {folder}/config.json sets transformers_weights = {named!r}; remove it so "
                              f"the weights loaded are the validated {SAFE_INDEX if has_index else SAFE_WEIGHTS}")


def load_paper_profile(path: str | Path) -> dict[str, Path]:
    """Validated ``{role: checkpoint folder}``; ConfigError/CheckpointError name the role and path."""
    path = Path(path)
    raw = _read(path)
    if not isinstance(raw.get("roles"), dict) or not raw["roles"]:
        raise ConfigError(f"{path}: a paper profile needs a mapping 'roles: {{role: checkpoint path}}'")
    allowed = _allowed_pickle(path, raw)
    model_type = raw.get("model_type")
    roles: dict[str, Path] = {}
    configs: dict[str, dict] = {}
    for role, folder in raw["roles"].items():
        if not isinstance(folder, str):
            raise ConfigError(f"{path}: role '{role}' must map to a path, got {folder!r}")
        folder = _relative_to(path, folder)
        where = f"{path}: role '{role}'"
        if not folder.exists():
            raise CheckpointError(f"{where}: checkpoint {folder} does not exist")
        if not folder.is_dir():
            raise CheckpointError(f"{where}: checkpoint {folder} is not a folder (an HF folder with config.json "
                                  f"and {SAFE_WEIGHTS})")
        try:
            ckpt = Checkpoint(folder)
        except CheckpointError as e:
            raise CheckpointError(f"{where}: {e}") from None
        if not ckpt.config:
            raise CheckpointError(f"{where}: {folder} has no config.json")
        _check_weights(where, folder, ckpt, role in allowed)
        if model_type and ckpt.config.get("model_type") != model_type:
            raise CheckpointError(f"{where}: {folder} is model_type "
                                  f"{ckpt.config.get('model_type')!r}, the profile expects {model_type!r}")
        roles[role], configs[role] = folder, ckpt.config
    base = configs.get("base")
    if base:
        for role, cfg in configs.items():
            for key in MATCH_BASE:
                if key in base and key in cfg and cfg[key] != base[key]:
                    raise CheckpointError(f"{path}: role '{role}': {key} = {cfg[key]} differs from the base's {base[key]}")
    return roles


def load_profile_evals(path: str | Path) -> dict:
    """The profile's ``lm_eval`` section, validated (``{}`` when it has none): metric names must be
    reprolib's, each with a ``task`` and a ``metric``; ``include_path`` must exist (returned absolute)."""
    from reprolib.evals.metrics import METRICS

    path = Path(path)
    spec = _read(path).get("lm_eval") or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("metrics", {}), dict):
        raise ConfigError(f"{path}: 'lm_eval' must be a mapping with 'metrics: {{metric: {{task, metric}}}}'")
    for name, s in spec.get("metrics", {}).items():
        if name not in METRICS:
            raise ConfigError(f"{path}: lm_eval metric {name!r} is not one of reprolib's ({', '.join(METRICS)})")
        if not isinstance(s, dict) or not s.get("task") or not s.get("metric"):
            raise ConfigError(f"{path}: lm_eval metric {name!r} needs 'task' and 'metric' (e.g. task: gsm8k, metric: exact_match)")
    if spec.get("include_path"):
        include = _relative_to(path, str(spec["include_path"]))
        if not include.is_dir():
            raise ConfigError(f"{path}: lm_eval include_path {include} is not a folder")
        spec = {**spec, "include_path": str(include)}
    return spec
