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
``base_model`` is dropped for methods that start from the base, as mergekit does. mergekit's
``normalize`` for ``ties``/``dare_ties`` maps to ``divisor: weights`` (true) or ``divisor: none``
(false); reprolib's default is the TIES paper's count of agreeing models.

mergekit's ``density`` for ``dare_ties`` and ``dare_linear`` is DARE's *keep* rate. When such a
config gives ``density`` and no ``drop_rate``, it is read the mergekit way: ``drop_rate = 1 − density``
and no magnitude trim (``density`` then means TIES's k only when ``drop_rate`` is given too, as in
the LATA paper's DARE+TIES p = 0.1, k = 0.9).
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
    if not isinstance(method, str):
        raise ConfigError(f"{where}: 'merge_method' must be a name, got {method!r}")
    from reprolib.merge.registry import get_method

    uses_base = get_method(method).needs_base
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
        if uses_base and base is not None and model == base:
            continue
        models.append(model)
        model_params.append(_mapping(entry.get("parameters"), f"models[{i}].parameters", where))
    params = _mapping(raw.get("parameters"), "parameters", where)
    if method in ("ties", "dare_ties") and "normalize" in params:
        params["divisor"] = "weights" if params.pop("normalize") else "none"
    if method in ("dare_ties", "dare_linear") and "drop_rate" not in params:
        _mergekit_dare_density(params, model_params, where)
    dtype = raw.get("dtype")
    if dtype is not None:
        dtype = DTYPE_ALIASES.get(str(dtype), str(dtype))
    seed = raw.get("seed", 0)
    return MergeSpec(method=method, models=models, model_params=model_params, base_model=base,
                     target_model=_path(raw.get("target_model"), "target_model", where),
                     instruct_model=_path(raw.get("instruct_model"), "instruct_model", where),
                     params=params, dtype=dtype, seed=seed)


def _mapping(value, key: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping of parameter names to values, got {value!r}")
    return dict(value)


def _mergekit_dare_density(params: dict, model_params: list[dict], where: str) -> None:
    """mergekit's DARE ``density`` (keep rate, possibly per model) → reprolib's global ``drop_rate``."""
    densities = {mp.pop("density") for mp in model_params if "density" in mp}
    if "density" in params:
        densities.add(params.pop("density"))
    if not densities:
        return
    if len(densities) > 1:
        raise ConfigError(f"{where}: per-model DARE densities {sorted(densities)} differ; reprolib uses one "
                          "'drop_rate' for all models")
    keep = densities.pop()
    if not isinstance(keep, (int, float)) or isinstance(keep, bool) or not 0 < keep <= 1:
        raise ConfigError(f"{where}: parameter 'density' (DARE keep rate) = {keep!r} must be in (0, 1]")
    params["drop_rate"] = 1.0 - float(keep)


def _path(value, key: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' must be a path string, got {value!r}")
    return value
