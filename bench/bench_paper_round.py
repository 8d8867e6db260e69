"""Benchmark: what one round of the ``paper`` preset costs on this device, and the whole 300-round run.

The paper preset is the LC-Fed protocol: 384x384 inputs, U-Net base width 16 with 5 levels,
InstanceNorm, Adam 1e-3, batch 6, 50 local iterations per site per round, 300 rounds. Running a whole
round on a CPU takes far too long, so the script times the engine's own parts and extrapolates:

* one local step (forward, backward, Adam) at 384 px, batch 6, measured through ``run_federation``
  (a FedAvg round with ``--steps`` local steps per site on a small synthetic prostate federation);
* scoring one image (prediction + Dice; the curves of every ``eval_every``-th round);
* then: round = sites x 50 x step + (validation + test images of the full federation) x score / eval_every,
  and the run = 300 rounds.

Peak memory is the device's (``torch.cuda.max_memory_allocated``) on a GPU, the process's peak resident
memory on a CPU. On a GPU pass ``--steps 50`` to time a complete round directly.

    python bench/bench_paper_round.py --steps 2

writes ``bench/results/paper_round_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.federation import FedAvg
from fedlab.federation.evaluation import evaluate
from fedlab.federation.simulation import run_federation
from fedlab.reproducibility import device_info, package_versions, select_device


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory of this process on ``device``, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="local steps per site in the timed round")
    parser.add_argument("--cases-scale", type=float, default=0.05, help="data of the timed federation")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = select_device(args.device)
    paper = get_config("paper")
    cfg = paper.replace(cases_scale=args.cases_scale, local_steps=args.steps, head_steps=0, eval_every=10**6)
    small = load_federation("prostate", config=cfg, seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    h = run_federation(FedAvg(), small, cfg, rounds=1, device=device, select="last", progress=False,
                       final_metrics=("dice",))
    step_s = h.ledger[0]["seconds"] / (len(small) * args.steps)
    model = h.site_models[0]
    test = small[0].test.to(device)
    evaluate(model, test, "segmentation", ("dice",), paper.eval_batch_size)  # warm-up
    tic = time.perf_counter()
    evaluate(model, test, "segmentation", ("dice",), paper.eval_batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    score_s = (time.perf_counter() - tic) / len(test)

    full = load_federation("prostate", config=paper.replace(image_size=32), seed=0)  # counts only
    eval_images = sum(len(s.val) + len(s.test) for s in full)
    round_s = len(full) * paper.local_steps * step_s + eval_images * score_s / paper.eval_every
    result = {
        "benchmark": "one paper-preset round, timed by parts and extrapolated",
        "command": f"python bench/bench_paper_round.py --steps {args.steps} --cases-scale {args.cases_scale}",
        "preset": paper.to_dict(), "timed_steps_per_site": args.steps, "sites": len(full),
        "seconds_per_local_step": step_s, "seconds_per_scored_image": score_s,
        "eval_images_per_evaluation": eval_images,
        "estimated_seconds_per_round": round_s, "estimated_hours_for_300_rounds": round_s * paper.rounds / 3600,
        "peak_memory_mib": peak_memory_mib(device), "load_average_1min": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(), "device": device_info(device), "versions": package_versions(),
    }
    out = Path(__file__).parent / "results" / f"paper_round_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{device}: {step_s:.3f} s per local step, {score_s * 1000:.1f} ms per scored image -> "
          f"~{round_s:.0f} s per round, ~{result['estimated_hours_for_300_rounds']:.1f} h for 300 rounds; "
          f"peak {result['peak_memory_mib']:.0f} MiB -> {out}")


if __name__ == "__main__":
    main()
