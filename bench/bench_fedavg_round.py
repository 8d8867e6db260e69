"""Benchmark: one FedAvg round of a preset, fedlab's engine against a bare PyTorch loop.

Both do the same work (same sites, model, batches and optimiser steps; the engine additionally
evaluates nothing because ``eval_every`` is set past the last round). The ratio engine / bare is the
engine's overhead: bookkeeping, the bytes ledger and the ParamSplit copies.

    python bench/bench_fedavg_round.py --preset classroom --repeats 3

writes ``bench/results/fedavg_round_<preset>.json`` and prints the medians and the ratio.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from monai.losses import DiceLoss

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.federation import FedAvg
from fedlab.federation.params import weighted_average
from fedlab.federation.simulation import initial_model, run_federation
from fedlab.reproducibility import client_generator, device_info, package_versions, select_device


def bare_round(federation, cfg, device) -> None:
    """One FedAvg round written directly in PyTorch (the reference)."""
    sites = [s.to(device) for s in federation]
    init = initial_model(federation, cfg, 0).to(device)
    models = [copy.deepcopy(init) for _ in sites]
    optims = [torch.optim.Adam(m.parameters(), lr=cfg.lr) for m in models]
    gens = [client_generator(0, k, device) for k in range(len(sites))]
    loss_fn = DiceLoss(sigmoid=True)
    for site, model, opt, g in zip(sites, models, optims, gens, strict=True):
        for _ in range(cfg.local_steps):
            idx = torch.randperm(len(site.train), generator=g, device=device)[:cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(site.train.x[idx]), site.train.y[idx]).backward()
            opt.step()
    avg = weighted_average([m.state_dict() for m in models], [len(s.train) for s in sites])
    for m in models:
        m.load_state_dict(avg)
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_round(federation, cfg, device) -> None:
    """The same round through run_federation (no evaluation rounds, no final evaluation metrics)."""
    run_federation(FedAvg(), federation, cfg.replace(eval_every=10**6), rounds=1, device=device, select="last",
                   progress=False, final_metrics=("dice",))
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cfg = get_config(args.preset)
    device = select_device(args.device)
    federation = load_federation("prostate", config=cfg, seed=0)
    times: dict[str, list[float]] = {"bare": [], "engine": []}
    bare_round(federation, cfg, device)  # warm-up
    for _ in range(args.repeats):  # interleaved, so drift of the machine's speed hits both alike
        for name, fn in (("bare", bare_round), ("engine", engine_round)):
            tic = time.perf_counter()
            fn(federation, cfg, device)
            times[name].append(time.perf_counter() - tic)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "one FedAvg round, engine vs bare PyTorch loop",
        "command": f"python bench/bench_fedavg_round.py --preset {args.preset} --repeats {args.repeats}",
        "preset": args.preset, "sites": len(federation), "local_steps": cfg.local_steps,
        "seconds": times, "median_s": med, "ratio_engine_over_bare": med["engine"] / med["bare"],
        "device": device_info(device), "versions": package_versions(),
    }
    out = Path(__file__).parent / "results" / f"fedavg_round_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"median one-round seconds: bare {med['bare']:.2f}, engine {med['engine']:.2f}; "
          f"engine/bare = {result['ratio_engine_over_bare']:.2f}  -> {out}")


if __name__ == "__main__":
    main()
