"""mergekit-style YAML → :class:`MergeSpec`.

Accepted keys (mergekit's, for the methods both tools share)::

    merge_method: ties                # any name in reprolib.merge.registry.REGISTRY
    base_model: path/to/base
    models:
      - model: path/to/expert_a
        parameters: {weight: 1.0, density: 0.7}
      - model: path/to/expert_b
    parameters: {lambda: 1.0}         # global parameters; also defaults for per-model ones
    dtype: bfloat16                   # output dtype (default: the inputs')

reprolib's own keys: ``seed`` (DARE masks, M³ draws), ``target_model`` (PTM's θ_G, Safety
Arithmetic's target), ``instruct_model`` (LATA's θ_instruct). A ``models`` entry equal to
``base_model`` is dropped, as mergekit does. mergekit's ``normalize`` for ``ties``/``dare_ties``
maps to ``divisor: weights`` (true) or ``divisor: none`` (false); reprolib's default is the TIES
paper's count of agreeing models.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from reprolib.errors import ConfigError
from reprolib.merge.engine import MergeSpec

TOP_KEYS = {"merge_method", "base_model", "models", "parameters", "dtype", "seed", "target_model",
            "instruct_model", "tokenizer_source", "name"}
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def load_config(path: str | Path) -> MergeSpec:
    """Read and validate a merge YAML; raise ConfigError naming the file and key on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read merge config ({e})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: unreadable YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a merge config must be a YAML mapping, got {type(raw).__name__}")
    return spec_from_dict(raw, where=str(path))


def spec_from_dict(raw: dict, where: str = "config") -> MergeSpec:
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(TOP_KEYS))})")
    if "merge_method" not in raw:
        raise ConfigError(f"{where}: missing key 'merge_method'")
    method = raw["merge_method"]
    base = _path(raw.get("base_model"), "base_model", where)
    entries = raw.get("models") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: 'models' must be a list")
    models, model_params = [], []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, dict) or "model" not in entry:
            raise ConfigError(f"{where}: models[{i}] must be a path or a mapping with key 'model'")
        extra = sorted(set(entry) - {"model", "parameters"})
        if extra:
            raise ConfigError(f"{where}: models[{i}]: unknown key '{extra[0]}'")
        model = _path(entry["model"], f"models[{i}].model", where)
        if base is not None and model == base:
            continue
        models.append(model)
        model_params.append(dict(entry.get("parameters") or {}))
    params = dict(raw.get("parameters") or {})
    if method in ("ties", "dare_ties") and "normalize" in params:
        params["divisor"] = "weights" if params.pop("normalize") else "none"
    dtype = raw.get("dtype")
    if dtype is not None:
        dtype = DTYPE_ALIASES.get(str(dtype), str(dtype))
    seed = raw.get("seed", 0)
    return MergeSpec(method=method, models=models, model_params=model_params, base_model=base,
                     target_model=_path(raw.get("target_model"), "target_model", where),
                     instruct_model=_path(raw.get("instruct_model"), "instruct_model", where),
                     params=params, dtype=dtype, seed=seed)


def _path(value, key: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' must be a path string, got {value!r}")
    return value
