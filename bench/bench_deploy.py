"""Benchmark: the same FedAvg run in process (run_federation) and on local Flower deployments, side by side.

Variants, one after another in one run (smoke federation, 6 sites, 5 rounds by default):

* ``in-process``: :func:`fedlab.federation.simulation.run_federation`;
* ``warm``: :class:`fedlab.deploy.local.LocalDeployment` with fedlab's warm executor and 0.2 s SuperNode poll
  (what notebook 05 uses);
* ``process``: the same deployment with Flower's own ``flower-superexec`` (a new Python process per message);
* ``subprocess``: Flower's defaults (``--isolation subprocess``, the SuperNode's 3 s idle poll).

For each: the time to start the deployment, the run (submission to result), the mean and largest time per round
as the server measures it (one round = every node evaluates the previous round, trains, replies; the in-process
figure is the run's time divided by the rounds: training plus evaluation, the same work), the overhead per round
(deployment minus in process), ratios to in process, and whether the History equals run_federation's bit for bit.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_deploy.py                 # all four variants
    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_deploy.py --variants in-process,warm --sites 2 --rounds 2

writes ``bench/results/deploy.json`` (with the machine, its load average before and after each variant, the
command and the commit).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import FedAvg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_notebooks import git_commit, load_average, machine  # noqa: E402

VARIANTS = ("in-process", "warm", "process", "subprocess")
DESCRIPTION = {
    "in-process": "run_federation, one process",
    "warm": "Flower deployment, fedlab's warm executor, SuperNode poll 0.2 s (fedlab.deploy default)",
    "process": "Flower deployment, --isolation process with Flower's flower-superexec, SuperNode poll 0.2 s",
    "subprocess": "Flower deployment, Flower's defaults (--isolation subprocess, SuperNode poll 3 s)",
}
DEPLOYMENT = {"warm": {"executor": "warm", "fast_poll": True}, "process": {"executor": "process", "fast_poll": True},
              "subprocess": {"executor": "subprocess", "fast_poll": False}}


def _ledger(history) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.ledger]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--sites", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "deploy.json"))
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {VARIANTS}")
    torch.set_num_threads(1)
    config = get_config(args.preset)
    federation = load_federation("prostate", config=config, seed=0)
    federation = dataclasses.replace(federation, sites=federation.sites[:args.sites])
    run_federation(FedAvg(), federation, config, rounds=1, seed=0, progress=False)  # warm-up (the executor preloads)
    reference = None
    rows = []
    for variant in variants:
        load_before = load_average()
        tic = time.perf_counter()
        if variant == "in-process":
            history = run_federation(FedAvg(), federation, config, rounds=args.rounds, seed=0, progress=False)
            run_s = time.perf_counter() - tic
            row = {"startup_s": 0.0, "run_s": run_s, "round_s": [run_s / args.rounds] * args.rounds}
            reference = history
        else:
            from fedlab.deploy.local import LocalDeployment

            with LocalDeployment(federation.site_names, dataset="prostate", start_timeout=300, reply_timeout=600,
                                 **DEPLOYMENT[variant]) as deployment:
                startup_s = time.perf_counter() - tic
                history = deployment.run(FedAvg(), federation, config, rounds=args.rounds, seed=0, progress=False)
            flower = history.info["flower"]
            row = {"startup_s": startup_s, "run_s": flower["timings"]["result"],
                   "round_s": [r["seconds"] for r in history.ledger], "executor": flower["executor"],
                   "flower_status": flower["status"], "wire_bytes": flower["network_traffic"].get("total-bytes"),
                   "ledger_bytes": history.total_bytes, "flower_compute_s": flower["compute_time"]}
            if reference is not None:
                row["history_equals_in_process"] = (history.rows == reference.rows
                                                    and _ledger(history) == _ledger(reference)
                                                    and history.selected_round == reference.selected_round)
        row.update(variant=variant, description=DESCRIPTION[variant], total_s=time.perf_counter() - tic,
                   round_mean_s=statistics.mean(row["round_s"]), round_max_s=max(row["round_s"]),
                   load_before=load_before, load_after=load_average())
        rows.append(row)
        print(f"{variant:>10}: run {row['run_s']:.1f} s, round {row['round_mean_s']:.2f} s "
              f"(load {load_before} -> {row['load_after']})", flush=True)
    base = next((r for r in rows if r["variant"] == "in-process"), None)
    if base is not None:
        for row in rows:
            row["run_ratio"] = row["run_s"] / base["run_s"]
            row["round_ratio"] = row["round_mean_s"] / base["round_mean_s"]
            row["overhead_per_round_s"] = row["round_mean_s"] - base["round_mean_s"]
    result = {"benchmark": "deploy", "command": "PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_deploy.py "
              + shlex.join(argv if argv is not None else sys.argv[1:]),
              "sites": args.sites, "rounds": args.rounds, "preset": args.preset, "strategy": "FedAvg",
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "git": git_commit(),
              "variants": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "round_s"}
                           | {"round_s": [round(x, 3) for x in r["round_s"]]} for r in rows]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{'variant':>10} {'start s':>8} {'run s':>8} {'x':>6} {'round s':>8} {'x':>6} {'overhead/round s':>17}")
    for r in rows:
        ratios = (f"{r['run_ratio']:6.1f} {r['round_mean_s']:8.2f} {r['round_ratio']:6.1f} "
                  f"{r['overhead_per_round_s']:17.2f}") if base else f"{'':6} {r['round_mean_s']:8.2f}"
        print(f"{r['variant']:>10} {r['startup_s']:8.1f} {r['run_s']:8.1f} {ratios}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
