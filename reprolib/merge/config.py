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
``base_model`` is dropped for methods that start from the base, as mergekit does.

**A YAML config means mergekit's semantics.** For the methods both tools have (``linear``,
``task_arithmetic``, ``ties``, ``dare_ties``, ``dare_linear``) a config read here merges as mergekit
(0.1.5, ``merge_methods/registry.py`` and ``generalized_task_arithmetic.py``) merges it, also when a
mergekit key is absent; tests/test_mergekit_reference.py holds the outputs equal to recorded
mergekit outputs. Where the two tools' defaults differ, an absent key takes mergekit's default:

* ``normalize`` (mergekit's default: true for ``ties``, false for ``dare_ties``, ``task_arithmetic``
  and ``dare_linear``). For ``ties``/``dare_ties`` it is reprolib's ``divisor``: true → ``weights``
  (Σ w_i of the agreeing models), false → ``none``. For ``task_arithmetic``/``dare_linear``, true
  divides every model's weight by Σ w_i (unchanged when that sum is 0). ``linear``'s ``normalize``
  has the same default (true) in both tools.
* the TIES sign election: mergekit elects from the *weighted* trimmed deltas, so ``ties`` and
  ``dare_ties`` from YAML get ``elect: weighted``.
* ``int8_mask`` (the dtype of mergekit's sign mask; no effect on the values) is accepted and dropped.

reprolib's own keys keep their documented defaults and, when given, win: ``divisor: count`` and
``elect: unweighted`` give the TIES paper's rule from a YAML (``divisor`` and ``normalize`` together
are an error). The Python API (:func:`reprolib.merge.merge_state_dicts`, :class:`MergeSpec` built
directly) is not a mergekit config and keeps the paper defaults (``divisor: count``,
``elect: unweighted``). Not reproduced: mergekit's DARE rescale (an L1-norm ratio; reprolib rescales
by 1/(1 − p)), its DARE masks (one global random stream), ``rescale: false``, a missing ``weight``
(an error in mergekit, 1.0 here) and list-valued (per-layer gradient) parameters (an error here).

mergekit's ``density`` for ``dare_ties`` and ``dare_linear`` is DARE's *keep* rate. When such a
config gives ``density`` and no ``drop_rate``, it is read the mergekit way: ``drop_rate = 1 − density``
and no magnitude trim (``density`` then means TIES's k only when ``drop_rate`` is given too, as in
the LATA paper's DARE+TIES p = 0.1, k = 0.9).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from reprolib.errors import ConfigError
from reprolib.merge.engine import MergeSpec

TOP_KEYS = {"merge_method", "base_model", "models", "parameters", "dtype", "seed", "target_model",
            "instruct_model", "name"}
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int):
        super().__init__(f"line {line}: duplicate key {key!r}")
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' may be overridden by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: SafeLoader reports it
                continue
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> MergeSpec:
    """Read and validate a merge YAML; raise ConfigError naming the file and key on any problem."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: merge config is not a regular file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read merge config ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: merge config is not UTF-8 text "
                          f"(byte {e.object[e.start]:#04x} at offset {e.start})") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: line {e.line}: duplicate key '{e.key}'") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: unreadable YAML ({' '.join(str(e).split())})") from e
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise ConfigError(f"{path}: unreadable YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a merge config must be a YAML mapping, got {type(raw).__name__}")
    return spec_from_dict(raw, where=str(path))


def spec_from_dict(raw: dict, where: str = "config") -> MergeSpec:
    if "tokenizer_source" in raw:
        raise ConfigError(f"{where}: key 'tokenizer_source' is not supported: the output always gets the "
                          "tokenizer files of the model it is built on (the target, else the base, else the first "
                          "model); remove the key")
    unknown = sorted(set(raw) - TOP_KEYS, key=str)
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
        if uses_base and base is not None and _same_path(model, base):
            continue
        models.append(model)
        model_params.append(_mapping(entry.get("parameters"), f"models[{i}].parameters", where))
    params = _mapping(raw.get("parameters"), "parameters", where)
    _mergekit_defaults(method, params, model_params, where)
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


# mergekit 0.1.5's `normalize` default per method it shares with reprolib (its generalized task
# arithmetic methods; mergekit's `linear` defaults to true, as reprolib's does)
MERGEKIT_NORMALIZE = {"ties": True, "dare_ties": False, "task_arithmetic": False, "dare_linear": False}


def _mergekit_defaults(method: str, params: dict, model_params: list[dict], where: str) -> None:
    """mergekit's meaning for its keys, present or absent (see the module docstring), in reprolib's terms."""
    if method not in MERGEKIT_NORMALIZE:
        return
    for key in ("normalize", "int8_mask"):
        if key in params and not isinstance(params[key], bool):
            raise ConfigError(f"{where}: parameter '{key}' must be true/false, got {params[key]!r}")
    params.pop("int8_mask", None)   # int8 or float sign mask: the same merge
    given = "normalize" in params
    normalize = params.pop("normalize", MERGEKIT_NORMALIZE[method])
    if method in ("ties", "dare_ties"):
        if given and "divisor" in params:
            raise ConfigError(f"{where}: give 'normalize' (mergekit) or 'divisor' (reprolib), not both")
        params.setdefault("divisor", "weights" if normalize else "none")
        params.setdefault("elect", "weighted")
    elif normalize:
        _normalize_weights(params, model_params, where)


def _normalize_weights(params: dict, model_params: list[dict], where: str) -> None:
    """mergekit's ``normalize: true`` without sign consensus: Σ w_i τ_i / Σ w_i, as weights w_i / Σ w_i."""
    weights = [mp.get("weight", params.get("weight", 1.0)) for mp in model_params]
    for i, w in enumerate(weights):
        if not isinstance(w, (int, float)) or isinstance(w, bool):
            raise ConfigError(f"{where}: models[{i}]: parameter 'weight' must be float, got {w!r}")
    total = float(sum(weights))
    if abs(total) < 1e-8:           # mergekit then divides by 1
        return
    params.pop("weight", None)
    for mp, w in zip(model_params, weights):
        mp["weight"] = float(w) / total


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


def _same_path(a: str, b: str) -> bool:
    """Whether two model paths name the same folder ('base', 'base/', './base', a symlink to it)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return os.path.normpath(a) == os.path.normpath(b)


def _path(value, key: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' must be a path string, got {value!r}")
    return value
