"""Paper profiles: YAML files mapping each zoo role to a local checkpoint of the papers' models.

    name: paper-lata-llama3-8b
    model_type: llama            # every role's config.json must say this
    roles: {base: /models/Meta-Llama-3-8B, instruct: ..., math: ..., code: ..., ua: ...}
    lm_eval:                     # optional: score these metrics with lm-eval tasks, not the zoo's sets
      include_path: /data/tasks  # optional folder of task YAMLs (local data)
      metrics:
        math: {task: gsm8k, metric: exact_match}
        ppl: {task: wikitext, metric: word_perplexity}

``load_paper_profile`` checks every path before any notebook spends time on it: the folder exists,
holds safetensors weights (pickle is refused), and its ``config.json`` has the profile's model type
and the base's vocabulary and depth. Shipped examples live beside this module.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from reprolib.errors import CheckpointError, ConfigError
from reprolib.io import Checkpoint

SHIPPED = Path(__file__).with_name("paper_profiles")
MATCH_BASE = ("vocab_size", "num_hidden_layers", "hidden_size")


def load_paper_profile(path: str | Path) -> dict[str, Path]:
    """Validated ``{role: checkpoint folder}``; ConfigError/CheckpointError name the role and path."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: unreadable paper profile ({e})") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("roles"), dict) or not raw["roles"]:
        raise ConfigError(f"{path}: a paper profile needs a mapping 'roles: {{role: checkpoint path}}'")
    model_type = raw.get("model_type")
    roles: dict[str, Path] = {}
    configs: dict[str, dict] = {}
    for role, folder in raw["roles"].items():
        if not isinstance(folder, str):
            raise ConfigError(f"{path}: role '{role}' must map to a path, got {folder!r}")
        folder = Path(folder).expanduser()
        if not folder.exists():
            raise CheckpointError(f"{path}: role '{role}': checkpoint {folder} does not exist")
        try:
            ckpt = Checkpoint(folder)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: role '{role}': {e}") from None
        if not ckpt.config:
            raise CheckpointError(f"{path}: role '{role}': {folder} has no config.json")
        if model_type and ckpt.config.get("model_type") != model_type:
            raise CheckpointError(f"{path}: role '{role}': {folder} is model_type "
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
    reprolib's, each with a ``task`` and a ``metric``; ``include_path`` must exist."""
    from reprolib.evals.metrics import METRICS

    path = Path(path)
    spec = (yaml.safe_load(path.read_text()) or {}).get("lm_eval") or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("metrics", {}), dict):
        raise ConfigError(f"{path}: 'lm_eval' must be a mapping with 'metrics: {{metric: {{task, metric}}}}'")
    for name, s in spec.get("metrics", {}).items():
        if name not in METRICS:
            raise ConfigError(f"{path}: lm_eval metric {name!r} is not one of reprolib's ({', '.join(METRICS)})")
        if not isinstance(s, dict) or not s.get("task") or not s.get("metric"):
            raise ConfigError(f"{path}: lm_eval metric {name!r} needs 'task' and 'metric' (e.g. task: gsm8k, metric: exact_match)")
    if spec.get("include_path") and not Path(spec["include_path"]).expanduser().is_dir():
        raise ConfigError(f"{path}: lm_eval include_path {spec['include_path']} is not a folder")
    return spec
