"""Experiment: the LC-Fed method comparison on an embedded synthetic federation, over several seeds.

Every (method, seed) run is one :func:`fedlab.experiments.lcfed.run_methods` call on the preset's
federation (validation selection is automatic), written to ``OUT/runs/`` as soon as it finishes, so
an interrupted experiment resumes where it stopped. The report (``OUT/README.md`` and CSVs) gives

* ``iou_mean.csv`` / ``iou_std.csv``: test IoU (%) per method and site (and the site average),
  mean and standard deviation over seeds; the README shows them as ``mean ± std``;
* ``convergence.csv``: per method, the gain of the site-averaged validation Dice over the last
  quarter of the rounds (the classroom criterion: < 0.01; last evaluation minus the first one of the
  last quarter), the same gain measured between quarter means (mean of the last quarter's
  evaluations minus the mean of the third quarter's: less sensitive to the scatter of single
  evaluations), that scatter (SD of the last quarter's evaluations about their straight-line fit),
  the share of sites whose best-validation round is the last one, and the wall time of a run;
* ``final.csv`` and ``curves.csv``: every final score and every curve point (tidy).

Example (the three-seed prostate table of the classroom preset, two runs at a time)::

    OMP_NUM_THREADS=1 python bench/seg_methods.py --dataset prostate --seeds 0,1,2 --preset classroom \\
        --jobs 2 --out bench/results/seg_prostate_classroom

All numbers are on SYNTHETIC data. ``--set rounds=40`` overrides preset fields (recorded in the README).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_METHODS = ("Local", "FedAvg", "FT", "FedBN", "FedPer", "FedRep", "PRR-FL", "LC-Fed", "Mix")


def _val_dice(curve: pd.DataFrame) -> pd.Series:
    """Site-averaged validation Dice per evaluated round."""
    val = curve[(curve["split"] == "val") & (curve["metric"] == "dice")]
    return val.groupby("round")["value"].mean()


def last_quarter_gain(curve: pd.DataFrame, rounds: int) -> float:
    """Site-averaged validation Dice at the last round minus at the first evaluated round >= 3/4 of the run."""
    avg = _val_dice(curve)
    start = avg.index[avg.index >= 0.75 * rounds]
    if avg.empty or start.empty:
        return float("nan")
    return float(avg.loc[avg.index.max()] - avg.loc[start.min()])


def quarter_trend(curve: pd.DataFrame, rounds: int) -> tuple[float, float]:
    """(gain between quarter means, scatter) of the site-averaged validation Dice.

    The gain is the mean of the evaluations in the last quarter of the rounds minus the mean of those
    in the third quarter; the scatter is the standard deviation of the last quarter's evaluations about
    their least-squares line. A single evaluation scatters by about that much, so the endpoint gain of
    :func:`last_quarter_gain` carries noise of about ``scatter * sqrt(2)``; the quarter means average it.
    """
    avg = _val_dice(curve)
    last = avg[avg.index >= 0.75 * rounds]
    third = avg[(avg.index >= 0.5 * rounds) & (avg.index < 0.75 * rounds)]
    if len(last) < 3 or third.empty:
        return float("nan"), float("nan")
    x = last.index.to_numpy(dtype=float)
    fit = np.polyval(np.polyfit(x, last.to_numpy(), 1), x)
    return float(last.mean() - third.mean()), float(np.std(last.to_numpy() - fit))


def machine() -> dict[str, object]:
    """Where the numbers were measured (CPU model, cores, load)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "load_avg": load}


def run_one(dataset: str, method: str, seed: int, preset: str, overrides: dict, out: str) -> str:
    """One (method, seed) run; writes ``runs/<method>__seed<seed>.{final,curve}.csv`` and ``.json``."""
    import torch

    from fedlab.config import get_config
    from fedlab.data.synthetic import make_federation
    from fedlab.experiments.lcfed import run_methods

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = get_config(preset, **overrides)
    fed = make_federation(dataset, config=cfg, seed=seed)
    tic = time.perf_counter()
    history = run_methods([method], fed, cfg, seed=seed, device="cpu", progress=False)[method]
    return save_run(out, method, seed, history, time.perf_counter() - tic)


def save_run(out: str | Path, method: str, seed: int, history, seconds: float) -> str:
    """Write one finished run as ``runs/<method>__seed<seed>.{final,curve}.csv`` and ``.json``; returns a log line."""
    from fedlab.experiments.lcfed import results_frame

    stem = Path(out) / "runs" / f"{method}__seed{seed}"
    results_frame({method: history}).to_csv(f"{stem}.final.csv", index=False)
    curve = history.to_dataframe("curve").assign(method=method)
    curve.to_csv(f"{stem}.curve.csv", index=False)
    rounds = int(history.info["rounds"])
    facts = {"method": method, "seed": seed, "seconds": seconds, "rounds": rounds,
             "last_quarter_gain": last_quarter_gain(curve, rounds),
             "selected_round": history.selected_round,
             "selected_last": sum(r == rounds for r in history.selected_round.values()) / len(history.sites),
             "finish": history.info.get("finish", {}), "machine": machine()}
    Path(f"{stem}.json").write_text(json.dumps(facts, indent=1, default=str))
    return f"{method} seed {seed}: {seconds:.0f} s, last-quarter val Dice gain {facts['last_quarter_gain']:+.3f}"


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (index first), without the optional tabulate package."""
    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    rows = [[str(i)] + [str(v) for v in row] for i, row in zip(frame.index, frame.to_numpy(), strict=True)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _mean_std(frame: pd.DataFrame, values: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (method, site) mean and std over seeds, with an "avg" column = site average of each seed."""
    per_seed = frame.pivot_table(index=["method", "seed"], columns="site", values=values, sort=False)
    per_seed["avg"] = per_seed.mean(axis=1)
    grouped = per_seed.groupby(level="method", sort=False)
    return grouped.mean(), grouped.std(ddof=0)


def report(out: Path, methods: list[str], header: dict) -> str:
    """Aggregate ``out/runs`` into CSVs and a README table; returns the README text."""
    runs = out / "runs"
    finals = [pd.read_csv(p) for p in sorted(runs.glob("*.final.csv"))]
    if not finals:
        raise SystemExit(f"no finished runs in {runs}")
    final = pd.concat(finals, ignore_index=True)
    curves = pd.concat([pd.read_csv(p) for p in sorted(runs.glob("*.curve.csv"))], ignore_index=True)
    facts = pd.DataFrame([json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))])
    curve_of = dict(iter(curves.groupby(["method", "seed"])))
    trends = [quarter_trend(curve_of[(m, s)], r) for m, s, r in zip(facts["method"], facts["seed"], facts["rounds"],
                                                                       strict=True)]
    facts["quarter_gain"], facts["scatter"] = [t[0] for t in trends], [t[1] for t in trends]
    order = [m for m in methods if m in set(final["method"])]
    final.to_csv(out / "final.csv", index=False)
    curves.to_csv(out / "curves.csv", index=False)

    iou = final[final["metric"] == "iou"].assign(value=lambda d: 100 * d["value"])
    mean, std = _mean_std(iou, "value")
    mean, std = mean.loc[order], std.loc[order]
    mean.round(2).to_csv(out / "iou_mean.csv")
    std.round(2).to_csv(out / "iou_std.csv")
    seeds = facts.groupby("method")["seed"].apply(lambda s: ",".join(map(str, sorted(s))))

    conv = facts.groupby("method", sort=False).agg(
        seeds=("seed", "count"), gain_mean=("last_quarter_gain", "mean"), gain_max=("last_quarter_gain", "max"),
        quarter_gain_max=("quarter_gain", "max"), scatter_max=("scatter", "max"),
        selected_last=("selected_last", "mean"), seconds=("seconds", "mean")).loc[order]
    conv["converged"] = conv["gain_max"] < 0.01
    conv["flat_by_quarter_means"] = conv["quarter_gain_max"] < 0.01
    conv.round(4).to_csv(out / "convergence.csv")

    table = mean.round(1).astype(str) + " ± " + std.round(1).astype(str)
    table.insert(0, "seeds", seeds.reindex(table.index))
    lines = [f"# {header['dataset']} (SYNTHETIC), preset {header['preset']}: method comparison", "",
             "Test IoU (%) per site, mean ± std over seeds; each site's model chosen on its validation split.",
             "All numbers are on the embedded SYNTHETIC federation, not on real data.", "",
             f"Command: `{header['command']}`", "",
             f"Config: `{header['config']}`", "",
             f"Machine: {header['machine']}", "",
             markdown(table), "",
             "Convergence: gain of the site-averaged validation Dice over the last quarter of the rounds "
             "(criterion < 0.01, `gain_max` is the worst seed: the last evaluation minus the first one of the last "
             "quarter); `quarter_gain_max`: the same gain between quarter means (mean of the last quarter's "
             "evaluations minus the third quarter's, worst seed), less sensitive to the scatter of single "
             "evaluations; `scatter_max`: the SD of the last quarter's evaluations about their straight-line fit "
             "(worst seed; the endpoint gain carries about 1.4 times this as noise); `selected_last` is the share "
             "of sites whose best-validation round is the last one; `seconds` is the wall time of one run.", "",
             markdown(conv.round(3)), ""]
    text = "\n".join(lines)
    (out / "README.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="prostate", choices=("prostate", "polyp", "fundus"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each)")
    parser.add_argument("--out", default=None, help="default bench/results/seg_<dataset>_<preset>")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)

    from fedlab.config import PRESETS, get_config, parse_overrides

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        overrides = parse_overrides(args.overrides, PRESETS["segmentation"][args.preset])
    except (KeyError, ValueError) as exc:
        raise SystemExit(f"--preset / --set: {exc}") from None
    out = Path(args.out or f"bench/results/seg_{args.dataset}_{args.preset}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    cfg = get_config(args.preset, **overrides)
    header = {"dataset": args.dataset, "preset": args.preset,
              "command": "OMP_NUM_THREADS=1 python bench/seg_methods.py " + " ".join(argv or sys.argv[1:]),
              "config": json.dumps(cfg.to_dict()), "machine": json.dumps(machine())}
    if not args.report_only:
        todo = [(m, s) for s in seeds for m in methods if not (out / "runs" / f"{m}__seed{s}.json").exists()]
        print(f"{len(todo)} runs to do ({len(methods) * len(seeds) - len(todo)} already in {out}/runs)", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, args.dataset, m, s, args.preset, overrides, str(out)) for m, s in todo]
            for f in as_completed(futures):
                print(f.result(), flush=True)
    print(report(out, methods, header))


if __name__ == "__main__":
    main()
