"""Published numbers that the lessons show beside ours (always labelled as the papers' real-data results).

* ``lcfed_tables.csv``: per-site IoU (%) and ASSD (pixels) of the personalised-FL table of LC-Fed
  (Wang, Jin, Wang, ECCV 2022), prostate (6 sites), polyp and fundus (4 sites each).
* ``adni_table2.csv``: Table 2 of Guan and Liu's survey (AD vs NC logistic regression on ADNI-1/ADNI-2).
* ``flamby_heart_disease.csv``: FLamby's Fed-Heart-Disease benchmark (UCI Heart Disease, four hospitals):
  test accuracy per client of local, pooled, FedAvg and FedProx training, mean and std over five seeds.

Each file's header comments say where the numbers come from and what was corrected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent
SHARED_ENV = "FEDLAB_SHARED_DIR"
FILES = ("lcfed_tables.csv", "adni_table2.csv", "flamby_heart_disease.csv")


def reference_path(name: str) -> Path:
    """Path of a packaged reference table.

    Raises:
        ValueError: for an unknown name (lists the known ones).
    """
    if name not in FILES:
        raise ValueError(f"Unknown reference table {name!r}; known: {list(FILES)}")
    return REFERENCE_DIR / name


def read_reference(name: str) -> pd.DataFrame:
    """A packaged reference table as a DataFrame (the ``#`` header lines are skipped)."""
    return pd.read_csv(reference_path(name), comment="#")


def shared_dir() -> Path | None:
    """The developers' ``shared`` folder (real-data samples), or None: users do not have it.

    ``$FEDLAB_SHARED_DIR`` when set, else ``shared/`` beside the fedlab checkout.
    """
    env = os.environ.get(SHARED_ENV)
    path = Path(env) if env else REFERENCE_DIR.parents[2] / "shared"
    return path if path.is_dir() else None
