"""Benchmark of the ADNI logistic-regression comparison (notebook 04).

Measures, side by side in one process (after a warm-up; best of ``--repeats``):

1. the whole comparison (six settings x five splits x two clients, the preset's protocol) with torch
   limited to one CPU thread, as the notebook runs it, and its split per setting;
2. one split of the comparison with one thread vs torch's default thread count, as a ratio
   (intra-op threads on a tiny model oversubscribe a busy machine);
3. the exact solves of Single and Mix (fedlab's Newton solver, :func:`fedlab.models.logistic.fit_logistic`)
   vs scikit-learn's ``LogisticRegression`` on the same standardised data and penalty;
4. the engine's per-round overhead: FedAvg and FedSGD through ``run_federation`` vs bare loops doing the
   same arithmetic (same mini-batches for FedAvg, same full-batch gradients for FedSGD), as ratios, with
   a cProfile breakdown of where the engine's FedSGD time goes (for the engine's maintainers).

Writes bench/results/adni.json and prints the command that reproduces it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from fedlab.config import PRESETS
from fedlab.data.standardize import standardize
from fedlab.data.synthetic.adni import make_adni_cohort
from fedlab.data.tabular import adni_federation, validate_adni
from fedlab.experiments.adni import METHODS, cpu_threads, run_comparison, train_setting
from fedlab.models.logistic import fit_logistic, sklearn_C
from fedlab.reproducibility import client_generator, select_device


def _timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tic)
    return best


def _bare_fedavg(fed, config, rounds: int, device) -> torch.Tensor:
    """FedAvg without the engine: the same model, mini-batch draws, SGD steps and sample-weighted average."""
    theta = torch.zeros(fed.num_channels + 1, device=device)
    gens = [client_generator(0, k, device) for k in range(len(fed))]
    n = torch.tensor([float(len(s.train)) for s in fed], device=device)
    for _ in range(rounds):
        local = []
        for site, gen in zip(fed, gens, strict=True):
            w = theta.clone().requires_grad_(True)
            opt = torch.optim.SGD([w], lr=config.lr, weight_decay=config.weight_decay)
            for _ in range(config.local_steps):
                idx = torch.randperm(len(site.train), generator=gen, device=device)[:config.batch_size]
                x, y = site.train.x[idx], site.train.y[idx]
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], y).backward()
                opt.step()
            local.append(w.detach())
        theta = (torch.stack(local) * (n / n.sum())[:, None]).sum(0)
    return theta


def _bare_fedsgd(fed, config, rounds: int, device) -> torch.Tensor:
    """FedSGD without the engine: full-batch client gradients, sample-weighted mean, a plain server step."""
    theta = torch.zeros(fed.num_channels + 1, device=device)
    n = torch.tensor([float(len(s.train)) for s in fed], device=device)
    for _ in range(rounds):
        grads = []
        for site in fed:
            w = theta.clone().requires_grad_(True)
            F.binary_cross_entropy_with_logits(site.train.x @ w[:-1] + w[-1], site.train.y).backward()
            grads.append(w.grad)
        g = (torch.stack(grads) * (n / n.sum())[:, None]).sum(0)
        theta = theta - config.lr * (g + config.weight_decay * theta)
    return theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "adni.json"))
    args = parser.parse_args()
    device = select_device(args.device)
    config = PRESETS["tabular"][args.preset]
    df = validate_adni(make_adni_cohort(0), verbose=False)

    def make(seed, frac):
        return adni_federation(df, seed, frac, synthetic=True)

    run_comparison(make, config.replace(splits=1, rounds=2), device=device)  # warm-up (lazy imports)

    # 1. the whole comparison (wall time, and this process's CPU time: less sensitive to a busy machine)
    whole = _timed(lambda: run_comparison(make, config, device=device, num_threads=1), args.repeats)
    cpu = time.process_time()
    run_comparison(make, config, device=device, num_threads=1)
    whole_cpu = time.process_time() - cpu
    per_setting = {}
    with cpu_threads(1):
        for method in METHODS:
            if method == "Cross":
                per_setting[method] = _timed(lambda: run_comparison(make, config.replace(splits=1), device=device,
                                                                    methods=("Cross",)), args.repeats)
            else:
                feds = [make(r, config.test_fraction) for r in range(config.splits)]
                per_setting[method] = _timed(lambda m=method, fs=feds: [train_setting(m, f, config, 0, device)
                                                                        for f in fs], args.repeats)

    # 2. threads
    one_split = config.replace(splits=1)
    default_threads = torch.get_num_threads()
    split_one = _timed(lambda: run_comparison(make, one_split, device=device, num_threads=1), args.repeats)
    split_many = _timed(lambda: run_comparison(make, one_split, device=device, num_threads=None), args.repeats)

    # 3. exact solves: fedlab (Newton) vs scikit-learn (lbfgs), Single (2 clients) + Mix, all splits
    problems = []
    for r in range(config.splits):
        fed = make(r, config.test_fraction)
        loc, _ = standardize(fed, "local")
        pooled, _ = standardize(fed, "federated")
        problems += [(s.train.x, s.train.y) for s in loc]
        problems.append((torch.cat([s.train.x for s in pooled]), torch.cat([s.train.y for s in pooled])))

    def ours():
        return [fit_logistic(x, y, config.weight_decay) for x, y in problems]

    def sklearn():
        return [SkLogisticRegression(C=sklearn_C(config.weight_decay, len(y)), fit_intercept=False, tol=1e-8,
                                     max_iter=10_000).fit(np.c_[x.numpy(), np.ones(len(x))], y.numpy())
                for x, y in problems]

    with cpu_threads(1):
        t_ours, t_sklearn = _timed(ours, args.repeats), _timed(sklearn, args.repeats)
        gap = max(float(np.abs(np.r_[m.linear.weight.detach().numpy().ravel(), m.linear.bias.detach().numpy()]
                               - s.coef_.ravel()).max()) for m, s in zip(ours(), sklearn(), strict=True))

    # 4. engine overhead: FedAvg and FedSGD, engine vs bare loops
    fed, _ = standardize(make(0, config.test_fraction), config.standardize)
    fed_dev = fed.to(device)
    rounds_sgd = config.num_fedsgd_rounds
    with cpu_threads(1):
        t_engine_avg = _timed(lambda: train_setting("FedAvg", fed, config.replace(standardize="local"), 0, device),
                              args.repeats)
        t_bare_avg = _timed(lambda: _bare_fedavg(fed_dev, config, config.rounds, device), args.repeats)
        t_engine_sgd = _timed(lambda: train_setting("FedSGD", fed, config.replace(standardize="local"), 0, device),
                              args.repeats)
        t_bare_sgd = _timed(lambda: _bare_fedsgd(fed_dev, config, rounds_sgd, device), args.repeats)
        profiler = cProfile.Profile()
        long = config.replace(standardize="local", fedsgd_rounds=200)
        profiler.enable()
        train_setting("FedSGD", fed, long, 0, device)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[3] for k, v in stats.stats.items() if k[2] == "run_federation")
    wanted = {"begin_round": "fresh optimiser per client per round (Strategy.begin_round)",
              "load_state_dict": "broadcast: load_state_dict into every client",
              "_evaluate_round": "curve evaluation at round 0 and the last round",
              "evaluate": "all evaluations (sklearn metrics)", "backward": "autograd backward",
              "aggregate": "server aggregation (weighted average + server step)",
              "client_update": "client updates (gradient computation)"}
    breakdown = {}
    for (_, _, name), v in stats.stats.items():
        if name in wanted:
            breakdown[wanted[name]] = round(breakdown.get(wanted[name], 0.0) + v[3] / total, 3)

    result = {
        "what": "ADNI logistic-regression comparison on the synthetic cohort: 6 settings x splits x 2 clients",
        "preset": args.preset, "config": {k: v for k, v in config.to_dict().items()
                                          if k in ("rounds", "local_steps", "batch_size", "lr", "optimizer",
                                                   "weight_decay", "mu", "fedsgd_rounds", "splits")},
        "device": str(device),
        "comparison_seconds": round(whole, 3), "comparison_cpu_seconds": round(whole_cpu, 3),
        "seconds_per_setting_all_splits": {k: round(v, 3) for k, v in per_setting.items()},
        "one_split_seconds_1_thread": round(split_one, 3),
        f"one_split_seconds_{default_threads}_threads": round(split_many, 3),
        "thread_ratio_default_over_1": round(split_many / split_one, 2),
        "exact_solves": len(problems), "exact_solves_fedlab_newton_seconds": round(t_ours, 4),
        "exact_solves_sklearn_seconds": round(t_sklearn, 4),
        "ratio_fedlab_over_sklearn": round(t_ours / t_sklearn, 2), "max_coefficient_difference": gap,
        "fedavg_engine_seconds": round(t_engine_avg, 4), "fedavg_bare_loop_seconds": round(t_bare_avg, 4),
        "ratio_fedavg_engine_over_bare": round(t_engine_avg / t_bare_avg, 2),
        "fedsgd_engine_seconds": round(t_engine_sgd, 4), "fedsgd_bare_loop_seconds": round(t_bare_sgd, 4),
        "ratio_fedsgd_engine_over_bare": round(t_engine_sgd / t_bare_sgd, 2),
        "fedsgd_200_rounds_cumulative_time_fractions_overlapping": breakdown,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "command": "PYTHONPATH=. python bench/bench_adni.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print("reproduce with:", result["command"])


if __name__ == "__main__":
    main()
