"""The streaming merge engine, and the in-memory path it is tested against.

``merge(spec, out)`` reads every input one block at a time (a flat range of ``block_elems``
entries per model, whatever the tensor's shape), computes in float32 on ``device``, casts to the output dtype and streams the block into a
pre-planned shard. Peak memory is a few blocks per model plus the interpreter, whatever the model
size. Statistics that need a whole tensor or the whole model (top-k thresholds, LATA's per-layer
cosines) are gathered in extra read passes with bounded memory (:mod:`reprolib.merge.topk`).
Everything is written to a temporary folder that is renamed to ``out`` only when complete.

``merge_state_dicts`` does the same on in-memory state dicts with whole tensors and
``torch.kthvalue`` thresholds; tests require both paths to agree bit for bit.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from reprolib.errors import ConfigError, TensorMismatchError
from reprolib.io import (
    BackgroundWriter,
    FLOAT_DTYPES,
    OpenFiles,
    Checkpoint,
    ShardedWriter,
    TensorInfo,
    atomic_output_dir,
    check_output_path,
    checkpoint_hashes,
    read_tensor_range,
    package_versions,
)
from reprolib.merge import methods as M
from reprolib.merge.registry import Block, Method, get_method
from reprolib.merge.topk import TopKSelector, magnitude_threshold
from reprolib.vectors import LayerCosine, layer_of

OUT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# config.json keys that must agree between merged checkpoints
ARCH_KEYS = ("model_type", "architectures", "vocab_size", "hidden_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "intermediate_size")
TIED_HEAD = ("lm_head.weight", "model.embed_tokens.weight")


@dataclass
class MergeSpec:
    """A resolved merge: method, inputs by role, parameters, output dtype and seed."""

    method: str
    models: list[str]
    model_params: list[dict] = field(default_factory=list)
    base_model: str | None = None
    target_model: str | None = None     # PTM θ_G / Safety Arithmetic's target; default: base_model
    instruct_model: str | None = None   # LATA θ_instruct
    params: dict = field(default_factory=dict)
    dtype: str | None = None            # output dtype; default: the reference model's
    seed: int = 0

    def __post_init__(self):
        if not self.model_params:
            self.model_params = [{} for _ in self.models]
        if len(self.model_params) != len(self.models):
            raise ConfigError("models and model_params differ in length")
        if self.dtype is not None and self.dtype not in OUT_DTYPES:
            raise ConfigError(f"parameter 'dtype' = {self.dtype!r} is not one of {sorted(OUT_DTYPES)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"parameter 'seed' = {self.seed!r} must be a non-negative integer")


# ----------------------------------------------------------------------------- preparation


@dataclass
class _Inputs:
    method: Method
    params: dict
    model_params: list[dict]
    models: list            # Checkpoints (streaming) or state dicts (in memory)
    base: Any
    target: Any
    instruct: Any

    @property
    def reference_role(self) -> str:
        """The role whose tensor names, dtypes and side files the output follows."""
        return "target" if self.target is not None else ("base" if self.base is not None else "models[0]")

    @property
    def reference(self) -> Checkpoint:
        return dict(self.roles())[self.reference_role]

    def roles(self) -> Iterator[tuple[str, Checkpoint]]:
        for role in ("base", "target", "instruct"):
            ck = getattr(self, role)
            if ck is not None:
                yield role, ck
        for i, ck in enumerate(self.models):
            yield f"models[{i}]", ck


def _open_inputs(spec: MergeSpec) -> _Inputs:
    method = get_method(spec.method)
    params, model_params = method.resolve(spec.params, spec.model_params, where=f"method '{spec.method}'")
    for role, needed in (("base_model", method.needs_base), ("instruct_model", method.needs_instruct)):
        if needed and not getattr(spec, role):
            raise ConfigError(f"method '{spec.method}' needs '{role}'")
    for role, used in (("target_model", method.needs_target), ("instruct_model", method.needs_instruct),
                       ("base_model", method.needs_base or method.needs_target)):
        if getattr(spec, role) and not used:
            raise ConfigError(f"method '{spec.method}' does not use '{role}'; remove it (it would be ignored)")
    if method.needs_target and not (spec.target_model or spec.base_model):
        raise ConfigError(f"method '{spec.method}' needs 'target_model' (or 'base_model')")
    base = Checkpoint(spec.base_model) if spec.base_model else None
    instruct = Checkpoint(spec.instruct_model) if method.needs_instruct else None
    target = None
    if method.needs_target:
        default = instruct if method.default_target == "instruct" else base
        target = Checkpoint(spec.target_model) if spec.target_model else default
    models = [Checkpoint(m) for m in spec.models]
    inputs = _Inputs(method, params, model_params, models, base if method.needs_base else None, target, instruct)
    _check_architectures(inputs)
    return inputs


def _check_architectures(inputs: _Inputs) -> None:
    ref = inputs.reference
    for role, ck in inputs.roles():
        if not ck.config or not ref.config:
            continue
        for key in ARCH_KEYS:
            a, b = ref.config.get(key), ck.config.get(key)
            if a is not None and b is not None and a != b:
                raise TensorMismatchError(
                    f"{role} {ck.path}: config '{key}' = {b!r} differs from {ref.path}'s {a!r}; "
                    "these checkpoints are not the same architecture"
                )


def _tied(ck: Checkpoint) -> bool:
    return bool(ck.config.get("tie_word_embeddings", False))


def _lookup(ck: Checkpoint, name: str, role: str) -> TensorInfo:
    """The tensor ``name`` of ``ck``; a missing tied ``lm_head.weight`` reads the input embedding."""
    if name in ck.tensors:
        return ck.tensors[name]
    if name == TIED_HEAD[0] and _tied(ck) and TIED_HEAD[1] in ck.tensors:
        return ck.tensors[TIED_HEAD[1]]
    raise TensorMismatchError(f"{role} {ck.path}: tensor '{name}' is missing (the reference model has it)")


def _plan(inputs: _Inputs, out_dtype: str | None) -> list[tuple[str, dict[str, TensorInfo], torch.dtype]]:
    """For each output tensor: the input TensorInfo per role and the output dtype; checks shapes/dtypes."""
    ref = inputs.reference
    for role, ck in inputs.roles():
        extra = sorted(set(ck.tensors) - set(ref.tensors))
        if extra:
            raise TensorMismatchError(
                f"{role} {ck.path}: tensor '{extra[0]}' is not in {ref.path}"
                + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            )
    plan = []
    for name in ref.tensors:
        infos = {}
        ref_info = ref.tensors[name]
        for role, ck in inputs.roles():
            info = _lookup(ck, name, role)
            if info.shape != ref_info.shape:
                raise TensorMismatchError(
                    f"tensor '{name}': shape {list(info.shape)} in {role} {ck.path} differs from "
                    f"{list(ref_info.shape)} in {ref.path}"
                )
            if info.dtype != ref_info.dtype:
                raise TensorMismatchError(
                    f"tensor '{name}': dtype {info.dtype} in {role} {ck.path} differs from "
                    f"{ref_info.dtype} in {ref.path}"
                )
            infos[role] = info
        is_float = ref_info.dtype in FLOAT_DTYPES
        dtype = OUT_DTYPES[out_dtype] if (out_dtype and is_float) else ref_info.dtype
        plan.append((name, infos, dtype))
    # widest dtypes first (stable): every tensor starts at a multiple of its own element size, as
    # the safetensors writer lays them out, so mmap readers can use the data in place
    plan.sort(key=lambda entry: -entry[2].itemsize)
    return plan


# ----------------------------------------------------------------------------- reading blocks


def _read_f32(info: TensorInfo, start: int, end: int, role: str, device: str, files=None) -> torch.Tensor:
    """A block as float32 on ``device``. To a GPU the block crosses in its stored dtype (half the
    bytes of float32 for bf16/fp16) and is widened there; on the CPU it is widened in place."""
    raw = read_tensor_range(info, start, end, files)
    x = raw.to(torch.float32) if device == "cpu" else raw.to(device).to(torch.float32)
    _check_finite(x, info, role)
    return x


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite: one sum (NaN and ±Inf propagate through it), and only
    when that sum is not finite (a NaN/Inf, or an overflow of finite values) the exact elementwise
    test. About 30× cheaper than ``isfinite(x).all()`` on the usual all-finite block."""
    if x.numel() == 0 or not x.is_floating_point():
        return True
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check_finite(x: torch.Tensor, info: TensorInfo, role: str) -> None:
    if not all_finite(x):
        raise TensorMismatchError(f"{role} {info.file}: tensor '{info.name}' contains NaN or Inf")


def _reader(infos: dict[str, TensorInfo], start: int, end: int, device: str, files=None):
    """``get(role)`` → that role's float32 entries [start, end); a file region shared by two roles
    (the target is the base or the instruct model) is read once."""
    cache: dict[tuple, torch.Tensor] = {}

    def get(role: str) -> torch.Tensor:
        info = infos[role]
        key = (info.file, info.start)
        if key not in cache:
            cache[key] = _read_f32(info, start, end, role, device, files)
        return cache[key]

    return get


def _ranges(numel: int, block_elems: int) -> list[tuple[int, int]]:
    """Flat [start, end) blocks of a tensor; one empty block for an empty tensor."""
    return [(s, min(s + block_elems, numel)) for s in range(0, numel, block_elems)] or [(0, 0)]


def _make_block(inputs: _Inputs, name: str, get, start: int, end: int, numel: int,
                seed: int, extra: dict, thresholds: list) -> Block:
    """Assemble a Block; ``get(role)`` returns that role's float32 entries [start, end)."""
    lw = extra.get("layer_weights")
    return Block(
        name=name, numel=numel, start=start, end=end,
        base=get("base") if inputs.base is not None else None,
        target=get("target") if inputs.target is not None else None,
        instruct=get("instruct") if inputs.instruct is not None else None,
        models=[get(f"models[{i}]") for i in range(len(inputs.models))],
        params=inputs.params, model_params=inputs.model_params, seed=seed, extra=extra,
        layer_weights=[w[layer_of(name)] for w in lw] if lw else None,
        thresholds=thresholds,
    )


def _cast(merged: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    out = merged.to(dtype)
    _check_merged(out, merged, name)
    return out


def _check_merged(out: torch.Tensor, merged: torch.Tensor, name: str) -> None:
    """``out`` (``merged`` in the output dtype) must be finite."""
    if not all_finite(out):
        raise TensorMismatchError(f"merged tensor '{name}' overflows {out.dtype} (|value| up to "
                                  f"{float(merged.abs().max()):.3g}); choose dtype bfloat16 or float32")


# ----------------------------------------------------------------------------- statistics passes


def _float_blocks(inputs: _Inputs, plan, block_elems: int, device: str, seed: int, extra: dict,
                  desc: str, progress: bool, files=None) -> Iterator[tuple[str, Block]]:
    """Every block of every float tensor, as (tensor name, Block without thresholds)."""
    for name, infos, _ in tqdm(plan, desc=desc, unit="tensor", disable=not progress):
        ref = infos["models[0]"]
        if ref.dtype not in FLOAT_DTYPES:
            continue
        for start, end in _ranges(ref.numel, block_elems):
            yield name, _make_block(inputs, name, _reader(infos, start, end, device, files),
                                    start, end, ref.numel, seed, extra, [])


def _layer_weights(inputs: _Inputs, blocks: Iterator[tuple[str, Block]], extra: dict) -> None:
    """LATA: per-layer cos(τ_comp,i, τ_instr) per model over ``blocks``, then the method's layer
    weights, into ``extra`` (shared by the streaming and the in-memory path)."""
    accs = [LayerCosine() for _ in inputs.models]
    for name, blk in blocks:
        instr = blk.instruct - blk.base
        for acc, v in zip(accs, blk.task_vectors()):
            acc.add(name, v, instr)
    extra["layer_cosines"] = [acc.cosines() for acc in accs]
    extra["layer_weights"] = inputs.method.layer_weights(inputs.params, extra["layer_cosines"])


def _densities(inputs: _Inputs) -> list[float] | None:
    """Per-model fraction kept by the method's magnitude trim, or None when it does not trim."""
    if inputs.method.density is None:
        return None
    densities = [inputs.method.density(inputs.params, mp) for mp in inputs.model_params]
    return None if any(d is None for d in densities) else densities


def _select(selectors: list[TopKSelector], blocks_of_vectors) -> list[float]:
    """Run read passes (``blocks_of_vectors()`` yields each block's per-model vectors) until every
    selector has its exact threshold."""
    while any(s.needs_pass() for s in selectors):
        for vectors in blocks_of_vectors():
            for s, v in zip(selectors, vectors):
                if s.needs_pass():
                    s.add(v)
        for s in selectors:
            if s.needs_pass():
                s.end_pass()
    return [s.threshold for s in selectors]


def _statistics(inputs: _Inputs, plan, seed: int, float_blocks) -> tuple[dict, list | None, list | None]:
    """What both drivers (streaming ``merge`` and in-memory ``merge_state_dicts``) need before the
    combine pass: the method's setup, LATA's layer weights, the trim densities and, for
    ``topk_scope: model``, exact whole-model thresholds (TIES paper). ``float_blocks(desc, extra)``
    yields (tensor name, Block without thresholds) over every float tensor."""
    method = inputs.method
    extra = method.setup(inputs.params, len(inputs.models), seed) if method.setup else {}
    if method.needs_instruct:
        _layer_weights(inputs, float_blocks("layer cosines", {}), extra)
    densities = _densities(inputs)
    global_thr = None
    if densities is not None and inputs.params.get("topk_scope") == "model":
        total = sum(infos["models[0]"].numel for _, infos, _ in plan if infos["models[0]"].dtype in FLOAT_DTYPES)
        global_thr = _select([TopKSelector(total, d) for d in densities],
                             lambda: (method.vectors(blk) for _, blk in float_blocks("global top-k", extra)))
        extra["global_thresholds"] = global_thr
    return extra, densities, global_thr


# ----------------------------------------------------------------------------- the streaming merge


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"parameter 'device' = {device!r} is not a device (use 'cpu' or 'cuda[:N]')") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"parameter 'device' = {device!r} but no CUDA device is available; use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"parameter 'device' = {device!r} but only {torch.cuda.device_count()} GPU(s) exist")
    elif dev.type != "cpu":
        raise ConfigError(f"parameter 'device' = {device!r}: only 'cpu' and 'cuda[:N]' are supported")


def merge(spec: MergeSpec, out: str | Path, device: str = "cpu", block_elems: int = 1 << 20,
          max_shard_bytes: int = 2 * 1024**3, progress: bool = True, hash_inputs: bool = True) -> Path:
    """Merge the checkpoints of ``spec`` into the new HF folder ``out``; return its path.

    Writes weights (sharded safetensors + index when over ``max_shard_bytes``), the reference
    model's config/tokenizer files (``torch_dtype`` set to the output dtype) and ``provenance.json``
    (input sha256, method, resolved parameters, seed, derived statistics, package versions).
    Refuses an existing or uncreatable ``out`` before any work; everything is written to a
    temporary sibling folder that is renamed to ``out`` only when complete.
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_output_path(out)
    _check_device(device)
    if block_elems < 1:
        raise ConfigError(f"parameter 'block_elems' = {block_elems} must be positive")
    if not isinstance(max_shard_bytes, int) or isinstance(max_shard_bytes, bool) or max_shard_bytes < 1:
        raise ConfigError(f"parameter 'max_shard_bytes' = {max_shard_bytes!r} must be a positive integer")
    with atomic_output_dir(out) as tmp:
        n = _merge_into(tmp, spec, device, block_elems, max_shard_bytes, progress, hash_inputs)
    if progress:
        tqdm.write(f"merged {n} tensors into {out} in {time.perf_counter() - t0:.1f} s")
    return out


def _merge_into(tmp: Path, spec: MergeSpec, device: str, block_elems: int, max_shard_bytes: int,
                progress: bool, hash_inputs: bool) -> int:
    """The body of :func:`merge`, writing into the (temporary) folder ``tmp``; returns the tensor count."""
    inputs = _open_inputs(spec)
    plan = _plan(inputs, spec.dtype)
    hashes = _hash_in_background(inputs) if hash_inputs else None
    with OpenFiles() as files:
        extra = _combine_pass(tmp, spec, inputs, plan, device, block_elems, max_shard_bytes, progress, files)
    _copy_side_files(inputs.reference, tmp, spec.dtype)
    prov = _provenance(spec, inputs, extra, hashes() if hashes else None)
    (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True, default=str) + "\n")
    return len(plan)


def _hash_in_background(inputs: _Inputs):
    """Start hashing every input in a thread (sha256 releases the GIL, so it overlaps the merge);
    returns a function that waits for and returns {role: {file: sha256}}, raising its error if any."""
    import threading

    result: dict = {}

    def run():
        try:
            result["hashes"] = {role: checkpoint_hashes(ck) for role, ck in inputs.roles()}
        except BaseException as e:  # handed to the caller
            result["error"] = e

    thread = threading.Thread(target=run, name="reprolib-hash", daemon=True)
    thread.start()

    def wait() -> dict:
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["hashes"]

    return wait


def _combine_pass(tmp: Path, spec: MergeSpec, inputs: _Inputs, plan, device: str, block_elems: int,
                  max_shard_bytes: int, progress: bool, files) -> dict:
    """Statistics, then every output tensor block by block into the shards in ``tmp``; returns the
    statistics (``extra``) for the provenance."""
    method = inputs.method
    extra, densities, global_thr = _statistics(inputs, plan, spec.seed, lambda desc, ex: _float_blocks(
        inputs, plan, block_elems, device, spec.seed, ex, desc, progress, files))
    ref_role = inputs.reference_role
    writer = BackgroundWriter(ShardedWriter(tmp, [(n, d, infos[ref_role].shape) for n, infos, d in plan],
                                            max_shard_bytes=max_shard_bytes, metadata={"reprolib_method": spec.method}))
    try:
        for name, infos, out_dt in tqdm(plan, desc=f"merge ({spec.method})", unit="tensor", disable=not progress):
            ref = infos[ref_role]
            ranges = _ranges(ref.numel, block_elems)
            if ref.dtype not in FLOAT_DTYPES:  # integer buffers: copied from the reference model
                for j, (start, end) in enumerate(ranges):
                    writer.write(name, read_tensor_range(ref, start, end, files), last=j == len(ranges) - 1)
                continue

            def block_at(start, end, thresholds):
                return _make_block(inputs, name, _reader(infos, start, end, device, files),
                                   start, end, ref.numel, spec.seed, extra, thresholds)

            thresholds = _tensor_thresholds(inputs, densities, global_thr, ranges, ref.numel, block_at)
            for j, (start, end) in enumerate(ranges):
                blk = block_at(start, end, thresholds)
                merged = _cast(method.combine(blk, method.vectors(blk)), out_dt, name)
                writer.write(name, merged.cpu(), last=j == len(ranges) - 1)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return extra


def _copy_side_files(ref: Checkpoint, folder: Path, dtype: str | None) -> None:
    """Copy the reference model's config and tokenizer files; with an output ``dtype``, config.json's
    ``torch_dtype`` (and transformers 5's ``dtype``) say it."""
    for f in ref.side_files():
        if f.name == "config.json" and dtype is not None:
            config = _with_dtype(ref.config, dtype)
            if config != ref.config:
                (folder / f.name).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
                continue
        shutil.copy2(f, folder / f.name)


def _with_dtype(config: dict, dtype: str) -> dict:
    """A copy of an HF config whose dtype keys (top level and sub-configs) name ``dtype``."""
    def fix(cfg: dict) -> dict:
        out = {k: fix(v) if isinstance(v, dict) else v for k, v in cfg.items()}
        for key in ("torch_dtype", "dtype"):
            if isinstance(out.get(key), str):
                out[key] = dtype
        return out

    config = fix(config)
    if "torch_dtype" not in config and "dtype" not in config:
        config["torch_dtype"] = dtype
    return config


def _tensor_thresholds(inputs: _Inputs, densities, global_thr, ranges, numel: int, block_at) -> list:
    """Per-model trim thresholds for one tensor: global ones, or exact per-tensor top-k."""
    if densities is None:
        return []
    if global_thr is not None:
        return list(global_thr)
    if len(ranges) == 1:  # whole tensor in one block: direct kthvalue
        blk = block_at(*ranges[0], [])
        return [magnitude_threshold(v, d) for v, d in zip(inputs.method.vectors(blk), densities)]
    return _select([TopKSelector(numel, d) for d in densities],
                   lambda: (inputs.method.vectors(block_at(start, end, [])) for start, end in ranges))


def _provenance(spec: MergeSpec, inputs: _Inputs, extra: dict, hashes: dict | None) -> dict:
    models = []
    for role, ck in inputs.roles():
        entry = {"role": role, "path": str(ck.path)}
        if hashes is not None:
            entry["sha256"] = hashes[role]
        models.append(entry)
    stats = {k: v for k, v in extra.items() if k in ("layer_cosines", "layer_weights", "lambdas", "global_thresholds")}
    return {
        "method": spec.method,
        "parameters": inputs.params,
        "model_parameters": inputs.model_params,
        "spec": asdict(spec),
        "inputs": models,
        "seed": spec.seed,
        "statistics": stats,
        "versions": package_versions(),
    }


# ----------------------------------------------------------------------------- in-memory path


class _MemoryCheckpoint:
    """A state dict seen through the Checkpoint interface (names, shapes, dtypes), so the
    in-memory path runs the same validation as the streaming engine."""

    def __init__(self, sd: dict[str, torch.Tensor], label: str):
        self.sd, self.path, self.config = sd, Path(f"<{label}>"), {}
        self.tensors = {n: TensorInfo(n, self.path, t.dtype, tuple(t.shape), 0, 0) for n, t in sd.items()}


class PreparedMerge:
    """One method's in-memory inputs, prepared once for many merges (a sweep over λ, ω, ρ, ...).

    Validation (names, shapes, dtypes, NaN/Inf), float32 copies and the task vectors τ_i = θ_i − θ_base
    are computed once; each :meth:`merge` runs only the method's own steps (``_statistics``,
    ``_tensor_thresholds``, combine) on whole tensors. With ``out`` (e.g. a model's parameters) the
    result is copied into those tensors in place, so a sweep never re-reads a checkpoint nor builds
    a state dict. Values equal :func:`merge_state_dicts`'s bit for bit (it is this class, used once).
    Treat the input state dicts as read-only while the object lives (it keeps references to them).
    """

    def __init__(self, method: str, models: list[dict[str, torch.Tensor]], base: dict | None = None,
                 target: dict | None = None, instruct: dict | None = None):
        m = get_method(method)
        for role, sd, needed in (("base", base, m.needs_base), ("instruct", instruct, m.needs_instruct)):
            if needed and sd is None:
                raise ConfigError(f"method '{method}' needs a {role} state dict")
        wrap = lambda sd, label: None if sd is None else _MemoryCheckpoint(sd, label)  # noqa: E731
        base_ck, instruct_ck = wrap(base, "base"), wrap(instruct, "instruct")
        target_ck = wrap(target, "target") if target is not None else (
            instruct_ck if m.default_target == "instruct" else base_ck)
        self.name, self.method = method, m
        self._roles = ([wrap(sd, f"models[{i}]") for i, sd in enumerate(models)], base_ck if m.needs_base else None,
                       target_ck if m.needs_target else None, instruct_ck if m.needs_instruct else None)
        inputs = self._inputs({}, [{} for _ in models])
        self.plan = _plan(inputs, None)
        self.checkpoints = dict(inputs.roles())
        self.floats = [(name, infos) for name, infos, _ in self.plan if infos["models[0]"].dtype in FLOAT_DTYPES]
        self._f32: dict[tuple[str, str], torch.Tensor] = {}
        converted: dict[int, torch.Tensor] = {}     # one float32 copy per source tensor (the target may be the base)
        for name, infos in self.floats:
            for role, info in infos.items():
                src = self.checkpoints[role].sd[info.name]
                if id(src) not in converted:
                    converted[id(src)] = src.float()
                    _check_finite(converted[id(src)], info, role)
                self._f32[(role, name)] = converted[id(src)]
        self._tvs = {name: [self._f32[(f"models[{i}]", name)] - self._f32[("base", name)] for i in range(len(models))]
                     for name, infos in self.floats if "base" in infos}
        self._sums: dict[str, torch.Tensor] = {}     # Σ w_i τ_i per tensor for the weights in _sums_for
        self._sums_for: tuple | None = None
        self._scratch: dict[str, torch.Tensor] = {}  # per-tensor buffers of the in-place path

    def _inputs(self, params: dict, model_params: list[dict]) -> _Inputs:
        models, base, target, instruct = self._roles
        return _Inputs(self.method, params, model_params, models, base, target, instruct)

    def merge(self, params: dict | None = None, model_params: list[dict] | None = None, seed: int = 0,
              out_dtype: torch.dtype | None = None, out: dict[str, torch.Tensor] | None = None,
              offset: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        """(merged state dict, statistics) for these parameters. ``offset[name]`` is added to a merged
        float tensor after its cast (the scorer's θ_into − θ_from). With ``out``, each merged tensor
        is copied into ``out[name]`` (cast to its dtype) and the returned dict holds those tensors."""
        m, n = self.method, len(self._roles[0])
        params, mps = m.resolve(params or {}, model_params or [{} for _ in range(n)], where=f"method '{self.name}'")
        inputs = self._inputs(params, mps)

        def whole(name, infos, extra, thresholds=()):
            numel = infos["models[0]"].numel
            blk = _make_block(inputs, name, lambda role: self._f32[(role, name)], 0, numel, numel, seed, extra,
                              list(thresholds))
            blk.cached_task_vectors = self._tvs.get(name)
            return blk

        extra, densities, global_thr = _statistics(
            inputs, self.plan, seed, lambda desc, ex: ((name, whole(name, infos, ex)) for name, infos in self.floats))
        ref_sd = self.checkpoints[inputs.reference_role].sd
        merged = {}
        for name, infos, dtype in self.plan:
            if infos["models[0]"].dtype not in FLOAT_DTYPES:
                value = ref_sd[name] if out is not None and name in out else ref_sd[name].clone()
            else:
                numel = infos["models[0]"].numel
                thresholds = _tensor_thresholds(inputs, densities, global_thr, [(0, numel)], numel,
                                                lambda start, end, thr: whole(name, infos, extra, thr))
                blk = whole(name, infos, extra, thresholds)
                dest = out.get(name) if out is not None and offset is None else None
                if dest is not None and dest.dtype == (out_dtype or dtype) and self._into(name, blk, dest):
                    merged[name] = dest
                    continue
                value = _cast(self._combine(name, blk), out_dtype or dtype, name)
                if offset is not None:
                    value = value + offset[name]
            if out is not None and name in out:
                merged[name] = out[name].copy_(value)
            else:
                merged[name] = value
        return merged, extra

    def _scaled(self, name: str) -> bool:
        """Whether tensor ``name`` merges as θ_base + scale · Σ w_i τ_i (``Method.scaled_sum``)."""
        return self.method.scaled_sum is not None and name in self._tvs

    def _into(self, name: str, blk: Block, dest: torch.Tensor) -> bool:
        """θ_base + scale · Σ w_i τ_i written straight into ``dest`` (a model's parameter, float32 like the
        sum) through a scratch buffer kept per tensor: the same two roundings as :meth:`_combine`, no
        allocation per sweep point. False when the method is not of that form (the caller combines)."""
        if not self._scaled(name) or dest.dtype != torch.float32:
            return False
        total = self._sum(name, blk)
        scale = self.method.scaled_sum(blk)[1]
        scratch = self._scratch.get(name)
        if scratch is None or scratch.device != dest.device:
            scratch = self._scratch[name] = torch.empty_like(total, device=dest.device)
        torch.mul(total.to(dest.device), scale, out=scratch)
        torch.add(blk.base.to(dest.device), scratch, out=dest.view_as(scratch))
        _check_merged(dest, dest, name)
        return True

    def _sum(self, name: str, blk: Block) -> torch.Tensor:
        """Σ w_i τ_i of tensor ``name`` for the block's weights, kept while the weights stay the same."""
        weights, _ = self.method.scaled_sum(blk)
        if self._sums_for != tuple(weights):
            self._sums, self._sums_for = {}, tuple(weights)
        if name not in self._sums:
            self._sums[name] = M._weighted_sum(self.method.vectors(blk), weights)
        return self._sums[name]

    def _combine(self, name: str, blk: Block) -> torch.Tensor:
        """The method's combine; for a method that is θ_base + scale · Σ w_i τ_i (``Method.scaled_sum``)
        the sum is kept for the weights last used, so a sweep over the scale adds one product per point."""
        m = self.method
        if not self._scaled(name):
            return m.combine(blk, m.vectors(blk))
        return blk.base + m.scaled_sum(blk)[1] * self._sum(name, blk)


def merge_state_dicts(method: str, models: list[dict[str, torch.Tensor]], base: dict | None = None,
                      target: dict | None = None, instruct: dict | None = None, params: dict | None = None,
                      model_params: list[dict] | None = None, seed: int = 0,
                      out_dtype: torch.dtype | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Merge in-memory state dicts with whole tensors; return (merged state dict, statistics).

    The fast path for small models, on the streaming engine's own steps (``_statistics``: setup,
    layer weights, densities, exact whole-model thresholds; ``_tensor_thresholds``; the method's
    combine) with every tensor as one block: per-tensor thresholds are ``torch.kthvalue`` on the
    whole tensor. Float tensors are merged in float32 and cast back to ``out_dtype`` or their own
    dtype. Inputs are validated as in :func:`merge` (names, shapes, dtypes, NaN/Inf). For many merges
    of the same inputs use :class:`PreparedMerge` (this function is one use of it).
    """
    prepared = PreparedMerge(method, models, base=base, target=target, instruct=instruct)
    return prepared.merge(params, model_params, seed, out_dtype)
