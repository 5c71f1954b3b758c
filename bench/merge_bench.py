"""reprolib's streaming merge engine side by side with mergekit 0.1.5 on synthetic Llama-shaped checkpoints.

    python bench/merge_bench.py                       # the default matrix (~40-60 min on 2 cores)
    python bench/merge_bench.py --sizes 0.02 0.05 --detail-size 0.05 --fp32-size 0 \\
        --mergekit-python /tmp/mkv/bin/python --data /tmp/mb/data --work /tmp/mb/out --results /tmp/mb/results
    python bench/merge_bench.py --plot-only bench/results/merge_vs_mergekit-YYYYMMDD-2cpu.json

mergekit lives in its own virtual environment, ``bench/.venv-mergekit`` (created here when missing:
``python -m venv``, then ``pip install -c <torch pin from requirements.txt> torch==… mergekit==0.1.5``,
which takes the CPU torch wheel; ~1 min, ~1.6 GB), or the one ``--mergekit-python`` names.

The matrix (every checkpoint a family from bench/synth.py: a base and experts = base + 5 % noise):

* the curve: ``--sizes`` (GB per checkpoint; default 0.1 0.5 1.5 3.0) in bf16, ``--methods``
  (task_arithmetic, ties) with 2 experts;
* at ``--detail-size`` (1.5 GB bf16): also ``--detail-methods`` (dare_ties, linear) with 2 experts,
  and the curve's methods with ``--detail-experts`` (3) experts;
* an fp32 family of ``--fp32-size`` GB (1.5) for the curve's methods (0 skips it).

Parameters: task_arithmetic λ = 0.5, ties density 0.7, dare_ties density 0.7 (mergekit's keep rate;
reprolib reads a mergekit config the same way), linear equal weights; every model weight 1.0; output
dtype = input dtype. Both tools get the same YAML file. Each merge runs in a fresh process:
``python -m reprolib merge CFG --out OUT --no-progress --no-hash`` (``--hash`` keeps reprolib's sha256
of the inputs; mergekit has none) and ``mergekit-yaml CFG OUT --quiet --no-copy-tokenizer`` (CPU, its
default lazy settings). The parent samples ``/proc/<pid>/status`` (RssAnon, RssFile, RssShmem, VmHWM)
and ``/proc/<pid>/io`` every 20 ms, keeps the maxima of the former and the final values of the
latter (read from the exited, not yet reaped process), and takes CPU times and ru_maxrss from
``wait4``. ``sync`` runs before every run, outputs are deleted after it, and each family's inputs are
read once before its first run, so every run finds its inputs in the page cache.

The I/O floor of an input set: a fresh process reads every input safetensors file sequentially
(16 MB ``readinto``) and writes one file of the output's size, measured like a merge.

The agreement check (at ``--agree-size``, default the smallest size): task_arithmetic, ties and
linear merged by both tools, mergekit with ``dtype: float32, out_dtype: <input dtype>`` so that both
compute in float32; the outputs are compared tensor by tensor (bit-identical fraction, max |diff|,
distance in ulps of the output dtype). For ties, every differing entry is checked for a tie of
magnitudes at the top-k boundary (mergekit keeps exactly k entries by argsort; reprolib keeps all
entries ≥ the k-th largest |τ|).

Results: bench/results/merge_vs_mergekit-<YYYYMMDD>-<ncpu>cpu.{json,md} and
merge_vs_mergekit-<YYYYMMDD>.png; ``load_latest(results_dir)`` and ``plot(report, path)`` are the
entry points for other code (the book's Performance page).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import synth  # noqa: E402

from reprolib.benchmarks import SHORT, _ratio  # noqa: E402  (the Performance page's labels and ratios)

MERGEKIT_VERSION = "0.1.5"
# model widths by checkpoint size (GB per checkpoint); the layer count comes from synth.layers_for
DIMS = [  # (smallest size in GB this row applies to, dims)
    (0.3, {"hidden": 2048, "inter": 5632, "vocab": 32000}),
    (0.08, {"hidden": 1024, "inter": 2816, "vocab": 16000}),
    (0.0, {"hidden": 512, "inter": 1408, "vocab": 8000}),   # trial runs only
]
ITEMSIZE = {"bfloat16": 2, "float16": 2, "float32": 4}
METHOD_PARAMS = {
    "task_arithmetic": {"lambda": 0.5},
    "ties": {"density": 0.7},
    "dare_ties": {"density": 0.7},
    "linear": {},
}
AGREE_METHODS = ("task_arithmetic", "ties", "linear")
STATUS_KEYS = ("RssAnon", "RssFile", "RssShmem", "VmHWM")
IO_KEYS = ("rchar", "wchar", "read_bytes", "write_bytes", "cancelled_write_bytes")
SUBPROCESS_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

FLOOR_CODE = """
import sys
out, size, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
buf = bytearray(16 << 20)
view = memoryview(buf)
for f in files:
    with open(f, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass
with open(out, "wb", buffering=0) as fh:
    left = size
    while left > 0:
        left -= fh.write(view[:min(left, len(buf))])
"""


# ----------------------------------------------------------------------------- mergekit's environment

def ensure_mergekit(venv: Path) -> Path:
    """``venv``'s python, with torch (the project's pin, CPU wheel) and mergekit 0.1.5 installed when missing."""
    py = venv / "bin" / "python"
    if (venv / "bin" / "mergekit-yaml").exists():
        return py
    pin = next((line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
                if line.strip().startswith("torch==")), "torch==2.13.0")
    print(f"creating {venv} with {pin} and mergekit=={MERGEKIT_VERSION} (~1 min, ~1.6 GB)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(pin + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(constraints), pin,
                    f"mergekit=={MERGEKIT_VERSION}"], check=True)
    return py


def versions(python: str | Path) -> dict:
    code = ("import importlib.metadata as m, torch, platform; "
            "print(m.version('mergekit'), torch.__version__, platform.python_version())")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=SUBPROCESS_ENV)
    mk, torch_v, py_v = out.stdout.split()
    return {"mergekit": mk, "torch": torch_v, "python": py_v}


# ----------------------------------------------------------------------------- measurement

def _read_proc(pid: int, name: str, keys, unit: int = 1) -> dict[str, int]:
    """The ``keys`` of ``/proc/<pid>/<name>`` ("key: value ..." lines) as integers × ``unit``
    ({} once the process is gone). status: RssAnon/RssFile/RssShmem/VmHWM in kB; io: byte counters."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            lines = f.readlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = int(value.split()[0]) * unit
    return out


def _read_status(pid: int) -> dict[str, int]:
    return _read_proc(pid, "status", STATUS_KEYS, 1024)


def _read_io(pid: int) -> dict[str, int]:
    return _read_proc(pid, "io", IO_KEYS)


def measure(cmd: list[str], log: Path, interval: float = 0.02) -> dict:
    """Run ``cmd`` in a fresh process; wall time, peak RSS by kind, I/O counters and CPU times.

    RSS kinds are the maxima of samples every ``interval`` s (each kind's maximum may come from a
    different sample; spikes shorter than the interval can be missed); ``peak_rss_mib`` is the
    kernel's high-water mark of all kinds together (VmHWM) at the last sample. (wait4's ru_maxrss
    is not used: Linux starts it at the RSS of the parent at fork.) I/O counters are read after the
    process exited, before it is reaped, so they are its totals (``io_final``), else the last sample.
    """
    os.sync()
    peaks = dict.fromkeys(STATUS_KEYS, 0)
    io: dict[str, int] = {}
    t0 = time.perf_counter()
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, env=SUBPROCESS_ENV)
    pid = proc.pid
    while True:
        for key, value in _read_status(pid).items():
            peaks[key] = max(peaks[key], value)
        io = _read_io(pid) or io
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(interval)
    wall = time.perf_counter() - t0
    final = _read_io(pid)
    _, status, usage = os.wait4(pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    mib = 1 / 2**20
    result = {"wall_s": round(wall, 2), "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
              "peak_rss_mib": round(peaks["VmHWM"] * mib, 1),
              "peak_anon_mib": round(peaks["RssAnon"] * mib, 1), "peak_file_mib": round(peaks["RssFile"] * mib, 1),
              "peak_shmem_mib": round(peaks["RssShmem"] * mib, 1),
              **{k: (final or io).get(k) for k in IO_KEYS}, "io_final": bool(final),
              "returncode": proc.returncode}
    if proc.returncode != 0:
        result["error"] = log.read_text(errors="replace")[-2000:]
    return result


def summarize(runs: list[dict]) -> dict:
    """Median of every numeric field over the successful runs, plus the minimum wall time."""
    ok = [r for r in runs if r.get("returncode") == 0]
    if not ok:
        return {"runs": runs, "error": runs[-1].get("error", "failed") if runs else "no runs"}
    out = {}
    for key, value in ok[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "returncode":
            values = [r[key] for r in ok if r.get(key) is not None]
            out[key] = round(statistics.median(values), 2) if values else None
    out["wall_s_min"] = min(r["wall_s"] for r in ok)
    out["reps"] = len(ok)
    out["runs"] = runs
    return out


# ----------------------------------------------------------------------------- families and configs

def dims_for(size_gb: float) -> dict:
    return next(d for low, d in DIMS if size_gb >= low)


def family_root(data: Path, size_gb: float, dtype: str) -> Path:
    return data / f"{SHORT[dtype]}-{size_gb:g}"


def ensure_family(data: Path, size_gb: float, dtype: str, n_experts: int) -> dict:
    """Base + ``n_experts`` experts of ~``size_gb`` GB each (reused when there); role → folder, and the sizes."""
    d = dims_for(size_gb)
    layers = synth.layers_for(size_gb * 1e9, d["vocab"], d["hidden"], d["inter"], ITEMSIZE[dtype])
    root = family_root(data, size_gb, dtype)
    want = {"hidden_size": d["hidden"], "intermediate_size": d["inter"], "vocab_size": d["vocab"],
            "num_hidden_layers": layers, "torch_dtype": dtype}
    for cfg_path in root.glob("*/config.json"):
        have = json.loads(cfg_path.read_text())
        if any(have.get(k) != v for k, v in want.items()):
            raise SystemExit(f"{cfg_path.parent} holds another model ({ {k: have.get(k) for k in want} }, "
                             f"wanted {want}); remove {root} or pass another --data")
    missing = [i for i in range(n_experts + 1)
               if not (root / ("base" if i == 0 else f"expert_{i}") / "config.json").exists()]
    if missing:
        print(f"generating {root} ({len(missing)} checkpoints, {layers} layers, hidden {d['hidden']}, {dtype})",
              flush=True)
        t0 = time.perf_counter()
    paths = synth.family(root, n_experts, d["vocab"], d["hidden"], d["inter"], layers, dtype)
    if missing:
        print(f"  generated in {time.perf_counter() - t0:.0f} s", flush=True)
    nbytes = sum(f.stat().st_size for f in paths["base"].glob("*.safetensors"))
    return {"paths": paths, "layers": layers, "checkpoint_bytes": nbytes, **d}


def inputs_of(fam: dict, method: str, n_experts: int) -> list[Path]:
    """The model folders a merge reads (linear: the experts only)."""
    experts = [fam["paths"][f"expert_{i}"] for i in range(1, n_experts + 1)]
    return experts if method == "linear" else [fam["paths"]["base"], *experts]


def merge_config(fam: dict, method: str, n_experts: int, dtype: str, out_dtype: str | None = None) -> dict:
    """One mergekit-format config for both tools (``out_dtype`` is mergekit's, for the agreement check)."""
    cfg = {"merge_method": method}
    if method != "linear":
        cfg["base_model"] = str(fam["paths"]["base"])
    cfg["models"] = [{"model": str(fam["paths"][f"expert_{i}"]), "parameters": {"weight": 1.0}}
                     for i in range(1, n_experts + 1)]
    if METHOD_PARAMS[method]:
        cfg["parameters"] = dict(METHOD_PARAMS[method])
    cfg["dtype"] = dtype
    if out_dtype:
        cfg["out_dtype"] = out_dtype
    return cfg


def warm(folders: list[Path]) -> int:
    """Read every safetensors file of ``folders`` once (into the page cache); bytes read."""
    buf, total = bytearray(16 << 20), 0
    for folder in folders:
        for f in sorted(folder.glob("*.safetensors")):
            with open(f, "rb", buffering=0) as fh:
                while n := fh.readinto(buf):
                    total += n
    return total


def reprolib_cmd(cfg: Path, out: Path, hash_inputs: bool) -> list[str]:
    return [sys.executable, "-m", "reprolib", "merge", str(cfg), "--out", str(out), "--no-progress",
            *([] if hash_inputs else ["--no-hash"])]


def mergekit_cmd(mk_python: Path, cfg: Path, out: Path) -> list[str]:
    return [str(Path(mk_python).parent / "mergekit-yaml"), str(cfg), str(out), "--quiet", "--no-copy-tokenizer"]


def run_once(cmd: list[str], out: Path, work: Path, tag: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    r = measure(cmd, work / f"{tag}.log")
    if out.exists():
        r["output_bytes"] = sum(f.stat().st_size for f in out.glob("*.safetensors"))
        shutil.rmtree(out)
    return r


def run_floor(files: list[Path], out_bytes: int, work: Path, reps: int) -> dict:
    out = work / "floor.bin"
    runs = []
    for _ in range(reps):
        r = measure([sys.executable, "-c", FLOOR_CODE, str(out), str(out_bytes), *map(str, files)],
                    work / "floor.log")
        out.unlink(missing_ok=True)
        runs.append(r)
    return summarize(runs)


# ----------------------------------------------------------------------------- the agreement check

def _ordered(t):
    """Float bits as integers whose difference counts the representable values between two floats."""
    import torch
    if t.dtype in (torch.bfloat16, torch.float16):
        i, mask = t.view(torch.int16).to(torch.int32), 0x7FFF
    elif t.dtype == torch.float32:
        i, mask = t.view(torch.int32).to(torch.int64), 0x7FFFFFFF
    else:
        raise ValueError(t.dtype)
    return torch.where(i < 0, -(i & mask), i)


def _tensor_files(folder: Path) -> dict[str, Path]:
    from safetensors import safe_open
    where = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as h:
            where.update(dict.fromkeys(h.keys(), f))
    return where


class _Reader:
    """Tensors of one checkpoint folder by name, one at a time (safetensors files kept open)."""

    def __init__(self, folder: Path):
        from safetensors import safe_open
        self.where = _tensor_files(folder)
        self.handles = {f: safe_open(str(f), framework="pt") for f in set(self.where.values())}

    def get(self, name: str):
        return self.handles[self.where[name]].get_tensor(name)


def compare_outputs(ours: Path, theirs: Path, tie_check: dict | None = None) -> dict:
    """Tensor-by-tensor agreement of two merged checkpoints (streamed, one tensor at a time).

    ``tie_check`` ({"base": folder, "experts": [folders], "density": k/n}) also classifies every
    differing entry: does some expert's |τ| there equal its k-th largest |τ| while more than k entries
    of that expert reach that value (a tie that a keep-exactly-k rule must break)?
    """
    import torch
    a, b = _Reader(ours), _Reader(theirs)
    if set(a.where) != set(b.where):
        return {"error": f"different tensor names: {sorted(set(a.where) ^ set(b.where))[:5]}"}
    total = identical = within1 = 0
    max_abs, max_ulp, worst = 0.0, 0, None
    differing = at_tie = tensors_with_boundary_ties = 0
    if tie_check:
        base, experts = _Reader(tie_check["base"]), [_Reader(e) for e in tie_check["experts"]]
    for name in sorted(a.where):
        x, y = a.get(name), b.get(name)
        if x.dtype != y.dtype or x.shape != y.shape:
            return {"error": f"{name}: {x.dtype}{tuple(x.shape)} vs {y.dtype}{tuple(y.shape)}"}
        dist = (_ordered(x) - _ordered(y)).abs().reshape(-1)
        diff = (x.float() - y.float()).abs().reshape(-1)
        total += dist.numel()
        identical += int((dist == 0).sum())
        within1 += int((dist <= 1).sum())
        if int(dist.max()) > max_ulp:
            max_ulp, worst = int(dist.max()), name
        max_abs = max(max_abs, float(diff.max()))
        if tie_check:
            tied_any = torch.zeros(dist.numel(), dtype=torch.bool)
            boundary = False
            base_t = base.get(name).float().reshape(-1)
            for e in experts:
                mag = (e.get(name).float().reshape(-1) - base_t).abs()
                n = mag.numel()
                k = int(tie_check["density"] * n)
                if 0 < k < n:
                    kth = torch.kthvalue(mag, n - k + 1).values
                    tied = mag == kth
                    if int((mag >= kth).sum()) > k:
                        boundary = True
                        tied_any |= tied
            tensors_with_boundary_ties += boundary
            mask = dist != 0
            differing += int(mask.sum())
            at_tie += int((mask & tied_any).sum())
    out = {"entries": total, "identical_frac": identical / total, "within_1ulp_frac": within1 / total,
           "max_abs_diff": max_abs, "max_ulp": max_ulp, "worst_tensor": worst, "tensors": len(a.where)}
    if tie_check:
        out.update(differing=differing, differing_at_tied_magnitude=at_tie,
                   tensors_with_ties_at_topk_boundary=tensors_with_boundary_ties)
    return out


def agreement(fam: dict, dtype: str, mk_python: Path, work: Path, hash_inputs: bool) -> dict:
    """Both tools on task_arithmetic, ties and linear (mergekit computing in float32), outputs compared."""
    results = {}
    for method in AGREE_METHODS:
        ours, theirs = work / f"agree-{method}-reprolib", work / f"agree-{method}-mergekit"
        for p in (ours, theirs):
            shutil.rmtree(p, ignore_errors=True)
        cfg_ours, cfg_theirs = work / f"agree-{method}-reprolib.yaml", work / f"agree-{method}-mergekit.yaml"
        cfg_ours.write_text(yaml.safe_dump(merge_config(fam, method, 2, dtype), sort_keys=False))
        cfg_theirs.write_text(yaml.safe_dump(merge_config(fam, method, 2, "float32", out_dtype=dtype),
                                             sort_keys=False))
        r1 = measure(reprolib_cmd(cfg_ours, ours, hash_inputs), work / f"agree-{method}-reprolib.log")
        r2 = measure(mergekit_cmd(mk_python, cfg_theirs, theirs), work / f"agree-{method}-mergekit.log")
        if r1["returncode"] or r2["returncode"]:
            results[method] = {"error": (r1.get("error") or r2.get("error"))[-500:]}
        else:
            tie = None
            if method == "ties":
                tie = {"base": fam["paths"]["base"], "experts": [fam["paths"]["expert_1"], fam["paths"]["expert_2"]],
                       "density": METHOD_PARAMS["ties"]["density"]}
            results[method] = compare_outputs(ours, theirs, tie)
        for p in (ours, theirs):
            shutil.rmtree(p, ignore_errors=True)
        r = results[method]
        print(f"  agreement {method}: " + (r["error"] if "error" in r else
              f"{r['identical_frac']:.5%} identical, max |diff| {r['max_abs_diff']:.3g}, max {r['max_ulp']} ulp"
              + (f", {r['differing']} differing entries of which {r['differing_at_tied_magnitude']} at tied "
                 f"magnitudes" if "differing" in r else "")), flush=True)
    return results


# ----------------------------------------------------------------------------- the matrix

def build_matrix(args) -> list[dict]:
    """Every (size, dtype, method, n_experts) to run, families in increasing size."""
    rows = [dict(size_gb=s, dtype="bfloat16", method=m, n_experts=2) for s in args.sizes for m in args.methods]
    if args.detail_size:
        rows += [dict(size_gb=args.detail_size, dtype="bfloat16", method=m, n_experts=2) for m in args.detail_methods]
        rows += [dict(size_gb=args.detail_size, dtype="bfloat16", method=m, n_experts=n)
                 for n in args.detail_experts for m in args.methods]
    if args.fp32_size:
        rows += [dict(size_gb=args.fp32_size, dtype="float32", method=m, n_experts=2) for m in args.methods]
    seen, out = set(), []
    for r in rows:
        key = (r["size_gb"], r["dtype"], r["method"], r["n_experts"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return sorted(out, key=lambda r: (r["dtype"] != "bfloat16", r["size_gb"], r["n_experts"]))


def reps_for(size_gb: float, args) -> int:
    return args.reps_large if size_gb > args.large_from else args.reps


def machine_info(mk: dict) -> dict:
    import torch
    from reprolib.io import cpu_model

    cpu = cpu_model()
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "reprolib"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "torch": torch.__version__, "reprolib_commit": commit,
            "reprolib_dirty": bool(dirty), "mergekit": mk["mergekit"], "mergekit_torch": mk["torch"],
            "mergekit_python": mk["python"]}


def run_matrix(args, mk_python: Path) -> tuple[list[dict], dict | None, dict]:
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    matrix = build_matrix(args)
    print(f"{len(matrix)} configurations × 2 tools", flush=True)
    results, floors, agree = [], {}, None
    baselines = {
        "reprolib": summarize([measure([sys.executable, "-c", "import reprolib.merge.engine, reprolib.cli"],
                                       work / "baseline-reprolib.log") for _ in range(args.reps)]),
        "mergekit": summarize([measure([str(mk_python), "-c", "import mergekit.scripts.run_yaml, mergekit.merge"],
                                       work / "baseline-mergekit.log") for _ in range(args.reps)]),
    }
    for tool, b in baselines.items():
        print(f"{tool} imported, nothing merged: {_fmt(b.get('wall_s'))} s, anon {_fmt(b.get('peak_anon_mib'), '.0f')} "
              f"MiB, file {_fmt(b.get('peak_file_mib'), '.0f')} MiB", flush=True)
    families = sorted({(r["size_gb"], r["dtype"]) for r in matrix} |
                      ({(args.agree_size, "bfloat16")} if args.agree_size else set()),
                      key=lambda k: (k[1] != "bfloat16", k[0]))
    for size, dtype in families:
        rows = [r for r in matrix if (r["size_gb"], r["dtype"]) == (size, dtype)]
        n_max = max([r["n_experts"] for r in rows] + [2])
        fam = ensure_family(args.data, size, dtype, n_max)
        read = warm([fam["paths"]["base"]] + [fam["paths"][f"expert_{i}"] for i in range(1, n_max + 1)])
        print(f"{family_root(args.data, size, dtype).name}: {fam['checkpoint_bytes'] / 1e9:.3f} GB per checkpoint, "
              f"{fam['layers']} layers; {read / 1e9:.2f} GB read into the page cache", flush=True)
        reps = reps_for(size, args)
        if args.agree_size and (size, dtype) == (args.agree_size, "bfloat16"):
            agree = {"size_gb": size, "dtype": dtype, "checkpoint_bytes": fam["checkpoint_bytes"],
                     "methods": agreement(fam, dtype, mk_python, work, args.hash)}
        for row in rows:
            method, n = row["method"], row["n_experts"]
            folders = inputs_of(fam, method, n)
            fkey = (size, dtype, tuple(map(str, folders)))
            if fkey not in floors:
                files = [f for d in folders for f in sorted(d.glob("*.safetensors"))]
                floors[fkey] = run_floor(files, fam["checkpoint_bytes"], work, reps)
            cfg = work / f"{SHORT[dtype]}-{size:g}-{method}-{n}.yaml"
            cfg.write_text(yaml.safe_dump(merge_config(fam, method, n, dtype), sort_keys=False))
            runs = {"reprolib": [], "mergekit": []}
            for rep in range(reps):
                order = ("reprolib", "mergekit") if rep % 2 == 0 else ("mergekit", "reprolib")
                for tool in order:
                    out = work / f"out-{tool}"
                    cmd = reprolib_cmd(cfg, out, args.hash) if tool == "reprolib" else mergekit_cmd(mk_python, cfg, out)
                    r = run_once(cmd, out, work, f"{cfg.stem}-{tool}-{rep}")
                    runs[tool].append(r)
                    print(f"  {SHORT[dtype]} {size:g} GB {method} ×{n} {tool} rep {rep + 1}/{reps}: "
                          + (f"FAILED ({r['error'][-300:]})" if r["returncode"] else
                             f"{r['wall_s']:.1f} s, anon {r['peak_anon_mib']:.0f} MiB, file {r['peak_file_mib']:.0f} MiB"),
                          flush=True)
            results.append({**row, "checkpoint_bytes": fam["checkpoint_bytes"], "layers": fam["layers"],
                            "hidden": fam["hidden"], "inputs": len(folders),
                            "reprolib": summarize(runs["reprolib"]), "mergekit": summarize(runs["mergekit"]),
                            "floor": floors[fkey]})
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return results, agree, baselines


# ----------------------------------------------------------------------------- report

def _fmt(x, spec=".1f"):
    return "–" if x is None else format(x, spec)


def table_lines(report: dict) -> list[str]:
    lines = ["| size GB | dtype | method | experts | reprolib s | mergekit s | mergekit/reprolib | floor s "
             "| reprolib/floor | reprolib anon MiB | mergekit anon MiB | anon ratio | reprolib file MiB "
             "| mergekit file MiB |",
             "|" + "---|" * 14]
    for r in report["results"]:
        ours, theirs, floor = r["reprolib"], r["mergekit"], r["floor"]
        ow, tw, fw = ours.get("wall_s"), theirs.get("wall_s"), floor.get("wall_s")
        lines.append(
            f"| {r['checkpoint_bytes'] / 1e9:.2f} | {SHORT[r['dtype']]} | {r['method']} | {r['n_experts']} "
            f"| {_fmt(ow)} (min {_fmt(ours.get('wall_s_min'))}) | {_fmt(tw)} (min {_fmt(theirs.get('wall_s_min'))}) "
            f"| {_fmt(_ratio(tw, ow), '.2f')}× | {_fmt(fw)} | {_fmt(_ratio(ow, fw), '.2f')}× "
            f"| {_fmt(ours.get('peak_anon_mib'), '.0f')} | {_fmt(theirs.get('peak_anon_mib'), '.0f')} "
            f"| {_fmt(_ratio(theirs.get('peak_anon_mib'), ours.get('peak_anon_mib')), '.2f')}× "
            f"| {_fmt(ours.get('peak_file_mib'), '.0f')} | {_fmt(theirs.get('peak_file_mib'), '.0f')} |")
    return lines


def agreement_lines(agree: dict | None) -> list[str]:
    if not agree:
        return []
    lines = [f"## Agreement ({agree['checkpoint_bytes'] / 1e9:.2f} GB {SHORT[agree['dtype']]} family, 2 experts; "
             f"mergekit computing in float32, output {agree['dtype']})", "",
             "| method | entries | bit-identical | within 1 ulp | max \\|diff\\| | max ulp | differing entries at tied |τ| |",
             "|---|---|---|---|---|---|---|"]
    for method, r in agree["methods"].items():
        if "error" in r:
            lines.append(f"| {method} | error: {r['error'][:200]} | | | | | |")
            continue
        ties = (f"{r['differing_at_tied_magnitude']} of {r['differing']}" if "differing" in r else "")
        lines.append(f"| {method} | {r['entries']:,} | {r['identical_frac']:.5%} | {r['within_1ulp_frac']:.5%} "
                     f"| {r['max_abs_diff']:.3g} | {r['max_ulp']} | {ties} |")
    t = agree["methods"].get("ties", {})
    if "differing" in t:
        lines += ["", "TIES trims each task vector to its k = int(0.7·n) largest |τ|. mergekit keeps exactly k entries "
                  "(`argsort(|τ|)[:k]`), breaking ties of magnitude in argsort's order; reprolib keeps every entry "
                  "with |τ| ≥ the k-th largest |τ|, i.e. all entries tied at the boundary. Deltas of bf16 weights "
                  "take few distinct magnitudes, so ties at the boundary are common "
                  f"({t['tensors_with_ties_at_topk_boundary']} of {t['tensors']} tensors have more than k entries "
                  f"≥ the k-th largest |τ| in some expert). Of the {t['differing']:,} entries that differ, "
                  f"{t['differing_at_tied_magnitude']:,} lie where some expert's |τ| equals its k-th largest "
                  "(the tie that the two rules break differently)"
                  + ("; no disagreement elsewhere." if t["differing"] == t["differing_at_tied_magnitude"] else
                     "; the rest differ for another reason.")]
    return lines


def _baseline_text(report: dict) -> str:
    b = report.get("baselines") or {}
    parts = [f"{tool} {_fmt(v.get('wall_s'))} s, {_fmt(v.get('peak_anon_mib'), '.0f')} MiB anonymous"
             for tool, v in b.items() if v.get("wall_s") is not None]
    return (" The interpreters alone (each tool imported, nothing merged) take " + "; ".join(parts) + "; both "
            "are included in every run's wall time and RSS.") if parts else ""


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# reprolib vs mergekit {m['mergekit']}: merge benchmark {report['date']}", "",
             f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; {m['platform']}; torch {m['torch']} "
             f"(mergekit's venv: torch {m['mergekit_torch']}); reprolib {m['reprolib_commit'][:10]}"
             f"{' (uncommitted changes under reprolib/)' if m['reprolib_dirty'] else ''}.", "",
             "Synthetic Llama-shaped checkpoints (bench/synth.py: base N(0, 0.02), experts = base + 5 % noise), "
             "every merge in a fresh process on CPU with both tools reading the same mergekit YAML "
             "(task_arithmetic λ = 0.5; ties density 0.7; dare_ties density 0.7 = keep rate; linear equal "
             "weights; output dtype = input dtype). "
             f"reprolib: `python -m reprolib merge CFG --out OUT --no-progress{'' if report['hash_inputs'] else ' --no-hash'}`; "
             "mergekit: `mergekit-yaml CFG OUT --quiet --no-copy-tokenizer` (CPU, default lazy loading). "
             "Inputs warm in the page cache for every run (each family read once before its first run); "
             "`sync` before every run; outputs deleted after it. "
             f"Wall times: median over {report['reps']} runs (min in parentheses; "
             f"{report['reps_large']} run above {report['large_from']:g} GB). "
             "Peak RSS by kind (RssAnon, RssFile) are maxima of /proc/<pid>/status sampled every 20 ms; "
             "mergekit memory-maps its inputs, so its file-backed RSS counts mapped checkpoint pages (reclaimable "
             "page cache), while anonymous RSS is memory the process itself allocated. "
             "Floor: one process reading all input safetensors files (16 MB reads) and writing one file of the "
             "output's size. mergekit/reprolib > 1 means reprolib is faster." + _baseline_text(report), "",
             *table_lines(report), ""]
    lines += agreement_lines(report.get("agreement"))
    return "\n".join(lines) + "\n"


def load_latest(results_dir: str | Path = BENCH / "results") -> dict:
    """The newest merge_vs_mergekit-*.json report in ``results_dir``."""
    from reprolib.benchmarks import latest

    return latest(results_dir, "merge_vs_mergekit")


def plot(report: dict, path: str | Path | None = None):
    """Peak anonymous RSS and wall time vs checkpoint size (reprolib.benchmarks.rss_figure, the
    book's Performance page figure); saved when ``path``."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reprolib.benchmarks import rss_figure

    fig = rss_figure(report, path)
    if path is not None:
        plt.close(fig)
    return fig


def write_report(report: dict, results_dir: Path) -> tuple[Path, Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    day = report["date"].replace("-", "")
    stem = results_dir / f"merge_vs_mergekit-{day}-{report['machine']['cores']}cpu"
    js, md, png = stem.with_suffix(".json"), stem.with_suffix(".md"), results_dir / f"merge_vs_mergekit-{day}.png"
    js.write_text(json.dumps(report, indent=2) + "\n")
    md.write_text(markdown(report))
    plot(report, png)
    return js, md, png


# ----------------------------------------------------------------------------- CLI

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.5, 1.5, 3.0], help="GB per checkpoint (bf16)")
    ap.add_argument("--methods", nargs="+", default=["task_arithmetic", "ties"], choices=list(METHOD_PARAMS))
    ap.add_argument("--detail-size", type=float, default=1.5, help="size for the extra methods/experts (0: none)")
    ap.add_argument("--detail-methods", nargs="*", default=["dare_ties", "linear"], choices=list(METHOD_PARAMS))
    ap.add_argument("--detail-experts", type=int, nargs="*", default=[3])
    ap.add_argument("--fp32-size", type=float, default=1.5, help="GB of the fp32 family (0: none)")
    ap.add_argument("--agree-size", type=float, default=None,
                    help="bf16 size of the agreement check (default: the smallest --sizes; 0: none)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--reps-large", type=int, default=1, help="runs per configuration above --large-from GB")
    ap.add_argument("--large-from", type=float, default=2.0)
    ap.add_argument("--hash", action="store_true", help="let reprolib hash its inputs (default --no-hash)")
    ap.add_argument("--mergekit-python", type=Path, default=None,
                    help="python of an existing mergekit venv (default: bench/.venv-mergekit, created when missing)")
    ap.add_argument("--data", type=Path, default=BENCH / "data", help="synthetic families (kept for the next run)")
    ap.add_argument("--work", type=Path, default=BENCH / "out", help="configs, logs and outputs (removed after)")
    ap.add_argument("--keep-work", action="store_true")
    ap.add_argument("--results", type=Path, default=BENCH / "results")
    ap.add_argument("--plot-only", type=Path, metavar="JSON", help="redraw the plot of a report and exit")
    args = ap.parse_args()

    if args.plot_only:
        report = json.loads(args.plot_only.read_text())
        png = args.plot_only.parent / f"merge_vs_mergekit-{report['date'].replace('-', '')}.png"
        plot(report, png)
        print(png)
        return
    if args.agree_size is None:
        args.agree_size = min(args.sizes)
    mk_python = args.mergekit_python or ensure_mergekit(BENCH / ".venv-mergekit")
    mk = versions(mk_python)
    if mk["mergekit"] != MERGEKIT_VERSION:
        print(f"warning: mergekit {mk['mergekit']} at {mk_python}, this benchmark is written for {MERGEKIT_VERSION}")
    t0 = time.perf_counter()
    results, agree, baselines = run_matrix(args, mk_python)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(mk), "reps": args.reps,
              "reps_large": args.reps_large, "large_from": args.large_from, "hash_inputs": args.hash,
              "page_cache": "warm: each family's inputs read once before its first run",
              "elapsed_s": round(time.perf_counter() - t0), "baselines": baselines, "results": results,
              "agreement": agree}
    paths = write_report(report, args.results)
    print()
    print("\n".join(table_lines(report)))
    if agree:
        print()
        print("\n".join(agreement_lines(agree)))
    print(f"\nwrote {', '.join(map(str, paths))} ({report['elapsed_s']} s); the families stay in {args.data}")


if __name__ == "__main__":
    main()
