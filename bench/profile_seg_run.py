"""Profile: where one segmentation run of a preset spends its time, by phase.

Runs one method on the embedded synthetic federation under cProfile and attributes time to phases
by the cumulative time of the functions that implement them:

* ``training``: clients' optimiser steps (``Client.train``; PRR-FL's paired steps), excluding the
  evaluations that happen inside a client update;
* ``evaluation: forward``: model forward passes on validation / test data (``evaluation.predict``);
* ``evaluation: metrics``: Dice, IoU, ASSD, HD95 from the predicted masks (``fedlab.metrics``);
* ``model selection copies``: the best-validation snapshots (``state_dict`` clones in the round loop);
* ``aggregation + broadcast``: weighted averages and loading the result into the clients;
* ``data generation``: building the synthetic federation (outside the run, shown for scale);
* ``other``: the rest (set-up, bookkeeping, progress).

    OMP_NUM_THREADS=1 python bench/profile_seg_run.py --method FedAvg --preset classroom

writes ``bench/results/profile_<dataset>_<method>_<preset>.json``. Numbers depend on the machine and its
load; the shares are what matter.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from pathlib import Path

PHASES = {  # phase -> (file suffix, function name) whose cumulative time is the phase
    "training": [("fedlab/federation/client.py", "train"), ("fedlab/federation/strategies/prrfl.py", "client_update")],
    "evaluation: forward": [("fedlab/federation/evaluation.py", "predict")],
    "evaluation: metrics": [("fedlab/metrics/segmentation.py", "segmentation_scores"),
                            ("fedlab/metrics/segmentation.py", "summarize")],
    "aggregation + broadcast": [("fedlab/federation/strategies/base.py", "aggregate"),
                                ("fedlab/federation/strategies/base.py", "broadcast"),
                                ("fedlab/federation/strategies/prrfl.py", "aggregate"),
                                ("fedlab/federation/strategies/prrfl.py", "broadcast"),
                                ("fedlab/federation/strategies/lcfed.py", "aggregate"),
                                ("fedlab/federation/strategies/lcfed.py", "broadcast")],
}


def _cumtime(stats: pstats.Stats, targets: list[tuple[str, str]]) -> float:
    total = 0.0
    for (filename, _, name), (_, _, _, cumtime, _) in stats.stats.items():
        if any(filename.endswith(suffix) and name == func for suffix, func in targets):
            total += cumtime
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="prostate", choices=("prostate", "polyp", "fundus"))
    parser.add_argument("--method", default="FedAvg")
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--rounds", type=int, default=None, help="override the preset's rounds (shorter profile)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch

    from fedlab.config import get_config
    from fedlab.data.synthetic import make_federation
    from fedlab.experiments.lcfed import run_methods

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = get_config(args.preset, **({"rounds": args.rounds} if args.rounds else {}))
    tic = time.perf_counter()
    fed = make_federation(args.dataset, config=cfg, seed=0)
    generation = time.perf_counter() - tic

    profiler = cProfile.Profile()
    tic = time.perf_counter()
    profiler.enable()
    run_methods([args.method], fed, cfg, seed=0, device="cpu", progress=False)
    profiler.disable()
    total = time.perf_counter() - tic
    stats = pstats.Stats(profiler)

    phases = {name: _cumtime(stats, targets) for name, targets in PHASES.items()}
    # evaluations inside client updates (PRR-FL's stage checks) are counted as evaluation, not training
    inner_eval = _cumtime(stats, [("fedlab/federation/strategies/prrfl.py", "_score")])
    phases["training"] -= inner_eval
    copies = _cumtime(stats, [("fedlab/federation/simulation.py", "<dictcomp>")])
    phases["model selection copies"] = copies
    phases["other"] = total - sum(phases.values())
    result = {
        "benchmark": "phases of one segmentation run",
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python bench/profile_seg_run.py "
                   f"--dataset {args.dataset} --method {args.method} --preset {args.preset}"
                   + (f" --rounds {args.rounds}" if args.rounds else ""),
        "config": cfg.to_dict(),
        "run_seconds": total,
        "data_generation_seconds": generation,
        "phases_seconds": {k: round(v, 3) for k, v in phases.items()},
        "phases_share": {k: round(v / total, 3) for k, v in phases.items()},
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    out = Path(args.out or f"bench/results/profile_{args.dataset}_{args.method}_{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    width = max(map(len, phases))
    print(f"{args.method} on {args.dataset} ({args.preset}): {total:.1f} s run, {generation:.1f} s data generation")
    for k, v in phases.items():
        print(f"  {k:<{width}}  {v:7.2f} s  {100 * v / total:5.1f} %")


if __name__ == "__main__":
    main()
