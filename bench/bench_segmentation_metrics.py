"""Benchmark: fedlab's segmentation scores now against the implementation they replaced.

The batch is what a classroom evaluation scores: N masks of the classroom preset's synthetic prostate
federation (48x48), against predictions made from them by shifting each by up to 3 pixels and adding
speckle (0.3 % of the pixels), with 5 % of the predictions empty. Variants, run interleaved in one process:

* ``dice_before`` / ``dice_now``: Dice and IoU only (the per-round curve metric path);
* ``distances_before``: the previous code, MONAI's ``compute_average_surface_distance`` and
  ``compute_hausdorff_distance`` called one after the other (each extracts the edges and measures the
  distances again), then the empty-mask rule;
* ``distances_now``: :func:`fedlab.metrics.segmentation_scores` (one edge extraction per mask pair,
  both ASSD and HD95 from the same distances), and ``distances_now_pooled`` with ``hd95="pooled"``;
* ``per_volume_now``: the same slices as cases of ``--depth`` consecutive slices, scored in 3-D by
  :func:`fedlab.metrics.volume_scores`.

``before`` and ``now`` must give the same numbers (checked before timing). A time is one call's seconds
(for the fast Dice-only variants, the mean of 20 calls); the medians over ``--repeats`` are compared.

    python bench/bench_segmentation_metrics.py --images 200 --repeats 5

writes ``bench/results/segmentation_metrics.json`` and prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import torch
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance, compute_iou

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.metrics import segmentation_scores, volume_scores
from fedlab.metrics.segmentation import _check_mask
from fedlab.reproducibility import device_info, package_versions


def scores_before(pred: torch.Tensor, target: torch.Tensor, distances: bool) -> dict[str, torch.Tensor]:
    """fedlab's segmentation_scores as it was before (2-D, pixels, same input checks): the reference."""
    _check_mask(pred, "pred")
    _check_mask(target, "target")
    pred, target = pred.float(), target.float()
    scores = {"dice": compute_dice(pred, target, include_background=True, ignore_empty=False).float().cpu(),
              "iou": compute_iou(pred, target, include_background=True, ignore_empty=False).float().cpu()}
    if not distances:
        return scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assd = compute_average_surface_distance(pred, target, symmetric=True, include_background=True)
        hd95 = compute_hausdorff_distance(pred, target, percentile=95, include_background=True)
    pred_empty, target_empty = pred.flatten(2).sum(-1) == 0, target.flatten(2).sum(-1) == 0
    worst = torch.tensor(math.hypot(*pred.shape[-2:]))
    for name, value in (("assd", assd), ("hd95", hd95)):
        value = torch.where(pred_empty ^ target_empty, worst, value.float().cpu())
        scores[name] = torch.where(pred_empty & target_empty, torch.tensor(0.0), value)
    return scores


def classroom_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 48, 48) targets from the classroom federation and perturbed predictions."""
    federation = load_federation("prostate", config=get_config("classroom"), seed=seed)
    target = torch.cat([s.y for site in federation for s in (site.test, site.train)])
    if len(target) < n:
        raise SystemExit(f"the classroom federation has {len(target)} masks; ask for at most that many")
    g = torch.Generator().manual_seed(seed)
    target = target[torch.randperm(len(target), generator=g)[:n]].cpu()
    shifts = torch.randint(-3, 4, (n, 2), generator=g)
    pred = torch.stack([torch.roll(t, tuple(s.tolist()), dims=(-2, -1)) for t, s in zip(target, shifts, strict=True)])
    pred = torch.maximum(pred, (torch.rand(pred.shape, generator=g) < 0.003).float())
    pred[torch.rand(n, generator=g) < 0.05] = 0
    return pred, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--depth", type=int, default=20, help="slices per case for the per-volume variant")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pred, target = classroom_batch(args.images, args.seed)
    groups = torch.arange(args.images) // args.depth
    variants = {
        "dice_before": lambda: scores_before(pred, target, False),
        "dice_now": lambda: segmentation_scores(pred, target, distances=False),
        "distances_before": lambda: scores_before(pred, target, True),
        "distances_now": lambda: segmentation_scores(pred, target),
        "distances_now_pooled": lambda: segmentation_scores(pred, target, hd95="pooled"),
        "per_volume_now": lambda: volume_scores(pred, target, groups),
    }
    before, now = variants["distances_before"](), variants["distances_now"]()  # also the warm-up
    for name in before:
        torch.testing.assert_close(now[name], before[name], rtol=1e-5, atol=1e-5)
    calls = {name: 20 if name.startswith("dice") else 1 for name in variants}  # Dice alone is fast: average 20
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):  # interleaved, order reversed every other time: drift hits all alike
        for name, fn in list(variants.items())[:: 1 if repeat % 2 == 0 else -1]:
            tic = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            times[name].append((time.perf_counter() - tic) / calls[name])
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {
        "dice_now_over_before": med["dice_now"] / med["dice_before"],
        "distances_now_over_before": med["distances_now"] / med["distances_before"],
        "pooled_over_directed": med["distances_now_pooled"] / med["distances_now"],
        "per_volume_over_per_slice": med["per_volume_now"] / med["distances_now"],
    }
    threads = f" (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})" if "OMP_NUM_THREADS" in os.environ else ""
    result = {
        "benchmark": "segmentation scores of a classroom-sized batch, now vs the previous implementation",
        "command": f"python bench/bench_segmentation_metrics.py --images {args.images} --depth {args.depth} "
                   f"--repeats {args.repeats} --seed {args.seed}{threads}",
        "images": args.images, "image_shape": list(pred.shape[1:]),
        "empty_predictions": int((pred.sum((1, 2, 3)) == 0).sum()),
        "seconds": times, "median_s": med, "ratios": ratios,
        "device": device_info(torch.device("cpu")), "versions": package_versions(),
    }
    out = Path(__file__).parent / "results" / "segmentation_metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("median seconds: " + ", ".join(f"{k} {v:.4f}" for k, v in med.items()))
    print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()) + f"  -> {out}")


if __name__ == "__main__":
    main()
