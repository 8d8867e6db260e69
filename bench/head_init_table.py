"""Table: how the U-Net head's initialisation (``Config.head_init``) moves the classroom method comparison.

Reads the per-run test scores that ``bench/seg_methods.py`` wrote (``final.csv``) for each head
initialisation and dataset, and prints, per dataset, the site-averaged test IoU (%) of every method as
mean ± std over seeds (std with ddof=0, as ``seg_methods.py``) with the per-seed values. Inputs:

* the default ("kaiming_fan_out_centred"): ``bench/results/seg_<dataset>_classroom/final.csv``;
* the others: ``bench/results/head_init/<dataset>_<head_init>_final.csv`` (copied from their sweeps'
  ``final.csv``; see ``bench/results/head_init/README.md`` for the commands).

Example::

    python bench/head_init_table.py > bench/results/head_init/table.md

All numbers are on SYNTHETIC data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedlab.config import HEAD_INITS, Config

RESULTS = Path(__file__).parent / "results"
DEFAULT = Config().head_init  # its sweeps are the method-comparison folders themselves
DATASETS = ("prostate", "polyp", "fundus")
ORDER = ("Local", "FedAvg", "FT", "FedBN", "FedPer", "FedRep", "PRR-FL", "LC-Fed", "Mix")


def site_average(path: Path) -> pd.DataFrame:
    """(method x seed) site-averaged test IoU (%) from one sweep's ``final.csv``."""
    final = pd.read_csv(path)
    iou = final[(final["metric"] == "iou") & (final["split"] == "test")]
    return iou.groupby(["method", "seed"])["value"].mean().unstack("seed") * 100


def cell(per_seed: pd.DataFrame, method: str) -> str:
    """``mean ± std (seed values)`` of one method, or ``-`` if it did not run."""
    if method not in per_seed.index:
        return "-"
    row = per_seed.loc[method].dropna()
    if len(row) == 1:
        return f"{row.iloc[0]:.1f} (seed {row.index[0]} only)"
    values = " / ".join(f"{v:.1f}" for v in row)
    return f"{row.mean():.1f} ± {row.std(ddof=0):.1f} ({values})"


def main() -> None:
    for dataset in DATASETS:
        paths = {init: RESULTS / "head_init" / f"{dataset}_{init}_final.csv" for init in HEAD_INITS}
        paths[DEFAULT] = RESULTS / f"seg_{dataset}_classroom" / "final.csv"
        tables = {init: site_average(p) for init, p in paths.items() if p.exists()}
        print(f"\n### {dataset} (SYNTHETIC), classroom: average test IoU (%), mean ± std over seeds (per seed)\n")
        print("| method | " + " | ".join(f"`{init}`" for init in tables) + " |")
        print("|---" * (len(tables) + 1) + "|")
        for method in ORDER:
            print(f"| {method} | " + " | ".join(cell(t, method) for t in tables.values()) + " |")


if __name__ == "__main__":
    main()
