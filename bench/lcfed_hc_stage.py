"""Experiment: LC-Fed with one calibration stage (``--stage``, default ``frozen``: only the calibration
module trains on a fixed U-Net) against the LC-Fed of a ``seg_methods`` sweep (fedlab's default, ``joint``: the
authors' released stage), on an embedded synthetic federation, over several seeds.

The runs are written like ``bench/seg_methods.py``'s (``OUT/runs/``, resumable, the same report files); the
comparison table takes FedAvg, FedRep and LC-Fed of the same seeds from a ``seg_methods`` result folder
(``--baseline``, its ``final.csv``) and adds this stage's runs: average test IoU (%) per seed, mean and std,
and the paired difference to each baseline.

Example::

    OMP_NUM_THREADS=1 python bench/lcfed_hc_stage.py --dataset prostate --stage frozen --seeds 0,1,2 --jobs 2 \\
        --baseline bench/results/seg_prostate_classroom --out /tmp/lcfed_frozen_prostate

All numbers are on SYNTHETIC data.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from fedlab.federation.strategies.lcfed import HC_STAGES

BASELINES = ("FedAvg", "FedRep", "LC-Fed")


def _seg_methods():
    spec = importlib.util.spec_from_file_location("seg_methods", Path(__file__).with_name("seg_methods.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_name(stage: str) -> str:
    """The method label of LC-Fed with calibration stage ``stage``."""
    return f"LC-Fed ({stage} HC)"


def run_one(dataset: str, seed: int, preset: str, out: str, stage: str) -> str:
    """One LC-Fed run with calibration stage ``stage``, saved as ``bench/seg_methods.py`` saves its runs."""
    import torch

    from fedlab.config import get_config
    from fedlab.data.synthetic import make_federation
    from fedlab.federation.simulation import run_federation
    from fedlab.federation.strategies.lcfed import LCFed

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = get_config(preset)
    fed = make_federation(dataset, config=cfg, seed=seed)
    tic = time.perf_counter()
    history = run_federation(LCFed(hc_stage=stage), fed, cfg, seed=seed, device="cpu", progress=False)
    return _seg_methods().save_run(out, stage_name(stage), seed, history, time.perf_counter() - tic)


def comparison(runs: pd.DataFrame, baseline: pd.DataFrame, seeds: list[int], stage: str) -> pd.DataFrame:
    """Site-averaged test IoU (%) per method and seed, with mean, std and this stage's paired differences."""
    name = stage_name(stage)
    both = pd.concat([baseline[baseline["method"].isin(BASELINES)], runs], ignore_index=True)
    iou = both[(both["metric"] == "iou") & both["seed"].isin(seeds)]
    table = 100 * iou.groupby(["method", "seed"])["value"].mean().unstack("seed")
    table = table.loc[[*BASELINES, name]]
    table.columns = [f"seed {s}" for s in table.columns]
    per_seed = table.copy()
    table["mean"], table["std"] = per_seed.mean(axis=1), per_seed.std(axis=1, ddof=0)
    for method in BASELINES:
        diff = per_seed.loc[name] - per_seed.loc[method]
        table.loc[f"{name} - {method}"] = [*diff.to_numpy(), diff.mean(), diff.std(ddof=0)]
    return table.round(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="prostate", choices=("prostate", "polyp", "fundus"))
    parser.add_argument("--stage", default="frozen", choices=HC_STAGES, help="LC-Fed's calibration stage to run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--baseline", required=True, help="a bench/seg_methods.py result folder (its final.csv)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out, name = Path(args.out), stage_name(args.stage)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    todo = [s for s in seeds if not (out / "runs" / f"{name}__seed{s}.json").exists()]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in as_completed([pool.submit(run_one, args.dataset, s, args.preset, str(out), args.stage) for s in todo]):
            print(f.result(), flush=True)

    from fedlab.config import get_config

    seg = _seg_methods()
    header = {"dataset": args.dataset, "preset": args.preset,
              "command": "OMP_NUM_THREADS=1 python bench/lcfed_hc_stage.py " + " ".join(argv or sys.argv[1:]),
              "config": json.dumps(get_config(args.preset).to_dict()), "machine": json.dumps(seg.machine())}
    seg.report(out, [name], header)
    baseline = pd.read_csv(Path(args.baseline) / "final.csv")
    table = comparison(pd.read_csv(out / "final.csv"), baseline, seeds, args.stage)
    table.to_csv(out / "comparison.csv")
    text = (f"\n## {name} against the baselines of `{args.baseline}`\n\nAverage test IoU (%) over the sites, "
            f"per seed; the last rows are the {args.stage} stage's paired differences.\n\n"
            + seg.markdown(table) + "\n")
    with open(out / "README.md", "a") as f:
        f.write(text)
    print((out / "README.md").read_text())


if __name__ == "__main__":
    main()
