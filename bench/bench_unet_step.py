"""Benchmark: the cost of one training step of the segmentation U-Net at several sizes, side by side.

One Adam step on a batch of random images with the Dice loss, for each (image size, levels) variant,
interleaved over repeats in one process; medians in ms and the ratio to the first variant. This is
what the classroom preset's choice of image size and depth trades against the number of steps.

    OMP_NUM_THREADS=1 python bench/bench_unet_step.py --sizes 48:4,48:3,40:3,32:3 --repeats 5

writes ``bench/results/unet_step.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from monai.losses import DiceLoss

from fedlab.config import get_config
from fedlab.models.unet import build_unet
from fedlab.reproducibility import device_info, package_versions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="48:4,48:3,40:3,32:3", help="comma-separated SIZE:LEVELS")
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results/unet_step.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    variants = [tuple(int(v) for v in item.split(":")) for item in args.sizes.split(",")]
    loss_fn = DiceLoss(sigmoid=True)
    g = torch.Generator().manual_seed(0)
    setups = {}
    for size, levels in variants:
        cfg = get_config("classroom", image_size=size, levels=levels, base_width=args.width)
        model = build_unet(args.channels, 1, cfg)
        x = torch.rand(args.batch, args.channels, size, size, generator=g)
        y = (torch.rand(args.batch, 1, size, size, generator=g) > 0.5).float()
        setups[(size, levels)] = (model, torch.optim.Adam(model.parameters(), lr=1e-3), x, y)
    times: dict[tuple[int, int], list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for v in variants:
            model, opt, x, y = setups[v]
            tic = time.perf_counter()
            for _ in range(args.steps):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()
            times[v].append(1000 * (time.perf_counter() - tic) / args.steps)
    median = {f"{s}px/{lv} levels": statistics.median(t) for (s, lv), t in times.items()}
    base = next(iter(median.values()))
    result = {
        "benchmark": "one U-Net training step (Adam, Dice loss) by image size and depth",
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python bench/bench_unet_step.py "
                   f"--sizes {args.sizes} --batch {args.batch} --width {args.width} --repeats {args.repeats}",
        "batch": args.batch, "base_width": args.width,
        "ms_per_step": {f"{s}px/{lv} levels": t for (s, lv), t in times.items()},
        "median_ms": median,
        "ratio_to_first": {k: v / base for k, v in median.items()},
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "device": device_info("cpu"),
        "versions": package_versions(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for k, v in median.items():
        print(f"{k:>16}: {v:6.1f} ms/step  ({v / base:.2f} x the first)")


if __name__ == "__main__":
    main()
