"""Measure a text-zoo profile on one training seed (how the mini profile's settings were chosen):
seconds per fine-tuning step per regime, θ0's accuracy per task (the frozen label-word heads alone),
each task vector's own accuracy, four-task addition at α = 1 and at the α chosen on validation over
{0, 0.05, …, 1} (``reprolib.vision.arithmetic``; linear regimes linearised), τJp per pair, ‖τ‖.

    PYTHONPATH=. python bench/experiments/text_zoo_measure.py --root /tmp/textzoo_root \\
        --set ft_lr=3e-4 --set ft_steps=100 --out bench/experiments/text_zoo_measure-DATE.json

``--root`` must hold the language zoo's base (``<root>/mini/base-<hash>``; a symlink to a built zoo's
folder is enough); the task vectors are written under ``<root>/text-mini``. One thread unless told.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def measure(zoo, regimes, seed: int = 0, n_test: int = 400, n_val: int = 200) -> dict:
    from reprolib.text import tasks as X
    from reprolib.vision.arithmetic import Outputs, addition_scores, individual, pair_table, select_addition

    tasks = list(X.TASKS)
    encoder, heads = zoo.pretrained()
    test, val = zoo.data("test", n_test), zoo.data("val", n_val)
    out = {"settings": {k: getattr(zoo.profile, k) for k in ("ft_steps", "ft_lr", "ft_batch", "penalty", "reg_batch", "n_train")},
           "theta0": {t: Outputs(encoder, heads, {}, test, linear=True).accuracy(t, {}) for t in tasks},
           "n_test": n_test, "n_val": n_val, "seed": seed, "threads": torch.get_num_threads()}
    for regime in regimes:
        vectors = zoo.task_vectors(regime, seed)
        prov = zoo.provenance(regime, seed)
        linear = regime != "nonlinear"
        on_test, on_val = Outputs(encoder, heads, vectors, test, linear), Outputs(encoder, heads, vectors, val, linear)
        single = individual(on_test, tasks)
        alpha = select_addition(on_val, tasks, single=individual(on_val, tasks))
        out[regime] = {"seconds_per_step": prov["seconds"] / (len(tasks) * zoo.profile.ft_steps),
                       "final_loss": {t: v["final_loss"] for t, v in prov["losses"].items()},
                       "individual": single, "addition_alpha_1": addition_scores(on_test, tasks, 1.0, single),
                       "alpha_selected": alpha, "addition_selected": addition_scores(on_test, tasks, alpha, single),
                       "tau_norm": {t: float(torch.cat([v.flatten() for v in vectors[t].values()]).norm()) for t in tasks},
                       "pairs": pair_table(on_test, tasks)}
    return out


def main() -> None:
    from reprolib.text.zoo import REGIMES, TextZoo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--root", required=True)
    ap.add_argument("--set", action="append", default=[], help="a fine-tuning override, e.g. ft_lr=3e-4")
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--seed", type=int, default=0, help="the training seed of the task vectors")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: (int(v) if k in ("ft_steps", "ft_batch", "reg_batch") else float(v))
                 for k, v in (s.split("=", 1) for s in args.set)}
    t0 = time.perf_counter()
    result = measure(TextZoo(args.profile, root=args.root, progress=True, **overrides), args.regimes.split(","), seed=args.seed)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1)[:4000])


if __name__ == "__main__":
    main()
