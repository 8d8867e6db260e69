"""Benchmark of the ADNI logistic-regression comparison (notebook 04).

Measures, side by side in one run (after a warm-up):

1. the whole comparison (six settings x five splits x two clients, classroom preset) as the
   notebook runs it (torch limited to one CPU thread during training);
2. one split of the comparison with one thread vs torch's default thread count, as a ratio
   (intra-op threads on a tiny model);
3. one client's training loop as the engine runs it (data on the device, one host sync per call)
   vs the same steps with a host round trip per step (batch copied from a NumPy array, ``.item()``
   on every loss), as a ratio.

Writes bench/results/adni.json and prints the command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fedlab.data.standardize import standardize
from fedlab.data.synthetic.adni import make_adni_cohort
from fedlab.data.tabular import adni_federation, validate_adni
from fedlab.experiments.adni import cpu_threads, get_lr_settings, run_comparison
from fedlab.federation.client import Client, task_loss
from fedlab.models.logistic import LogisticRegression
from fedlab.reproducibility import client_generator, select_device


def _timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tic)
    return best


def _client(fed, settings, device):
    site = fed[0].to(device)
    model = LogisticRegression(fed.num_channels).to(device)
    return Client(0, site, model, settings.config(), client_generator(0, 0, device), task_loss("classification"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "adni.json"))
    args = parser.parse_args()
    device = select_device(args.device)
    settings = get_lr_settings(args.preset)
    df = validate_adni(make_adni_cohort(0), verbose=False)

    def make(seed, frac):
        return adni_federation(df, seed, frac, synthetic=True)

    run_comparison(make, settings.replace(splits=1, rounds=2), device=device)  # warm-up (lazy imports)
    one = _timed(lambda: run_comparison(make, settings, device=device, num_threads=1), args.repeats)
    default_threads = torch.get_num_threads()
    one_split = settings.replace(splits=1)
    split_one = _timed(lambda: run_comparison(make, one_split, device=device, num_threads=1), 1)
    split_many = _timed(lambda: run_comparison(make, one_split, device=device, num_threads=None), 1)

    fed, _ = standardize(make(0, settings.test_fraction), "local")
    steps = settings.rounds * settings.local_steps
    x_host = fed[0].train.x.numpy()
    y_host = fed[0].train.y.numpy()

    def engine_loop():
        _client(fed, settings, device).train(steps).item()  # one sync at the end

    def host_sync_loop():
        client = _client(fed, settings, device)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            idx = rng.choice(len(x_host), min(settings.batch_size, len(x_host)), replace=False)
            x = torch.tensor(x_host[idx], device=device)
            y = torch.tensor(y_host[idx], device=device)
            client.optimizer.zero_grad(set_to_none=True)
            loss = client.loss_fn(client.model, x, y)
            loss.backward()
            client.optimizer.step()
            loss.item()

    with cpu_threads(1):
        t_engine = _timed(engine_loop, args.repeats)
        t_sync = _timed(host_sync_loop, args.repeats)

    result = {
        "what": "ADNI logistic-regression comparison (synthetic cohort): 6 settings x splits x 2 clients",
        "preset": args.preset, "settings": settings.to_dict(), "device": str(device),
        "comparison_seconds": round(one, 3),
        "one_split_seconds_1_thread": round(split_one, 3),
        f"one_split_seconds_{default_threads}_threads": round(split_many, 3),
        "thread_ratio_default_over_1": round(split_many / split_one, 2),
        "client_steps": steps,
        "engine_loop_seconds": round(t_engine, 4), "host_sync_loop_seconds": round(t_sync, 4),
        "ratio_host_sync_over_engine": round(t_sync / t_engine, 2),
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
