"""Compare methods the way the LC-Fed paper does: one run per method, per-site tables, paper numbers.

* :func:`run_methods` runs each named strategy once on the same federation and seed.
* :func:`results_frame` gathers the final (validation-selected, test-split) scores as tidy rows.
* :func:`paper_table` lays them out as the paper's table: rows are methods, columns the sites A, B, ...
  and their average, IoU in percent and ASSD in pixels.
* :func:`reference_table` reads the paper's published numbers (real data) from the table packaged in
  :mod:`fedlab.reference`.

Our numbers come from whatever federation was passed in (the embedded *synthetic* stand-ins by
default); the paper's are real-data numbers at 384x384 pixels. They are shown side by side with
those labels and are not comparable one to one (ASSD in pixels depends on the image size).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.federation.history import History
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import get_strategy
from fedlab.notebook import RESULT_COLUMNS
from fedlab.reference import reference_path

#: Our strategy names -> the row names of the paper's table.
PAPER_NAMES = {"Local": "Local Train"}
#: Metric -> (column label, scale applied to our values).
PAPER_METRICS = {"iou": ("IoU (%)", 100.0), "dice": ("Dice (%)", 100.0), "assd": ("ASSD (px)", 1.0),
                 "hd95": ("HD95 (px)", 1.0)}
REFERENCE_FILE = "lcfed_tables.csv"


def run_methods(names: Sequence[str], federation: Federation, config: Config, seed: int = 0,
                device: str | torch.device = "auto", **kwargs: object) -> dict[str, History]:
    """Run each named strategy once (same federation, config and seed).

    Args:
        names: Registry names, e.g. ``["Local", "FedAvg", "FT", "PRR-FL", "FedBN", "FedRep"]``.
        federation: The sites.
        config: Run settings shared by every method.
        seed: Run seed (same initial model and client generators for every method).
        device: Compute device.
        **kwargs: Passed on to :func:`fedlab.federation.simulation.run_federation` (e.g. ``progress``).

    Returns:
        ``{name: History}`` in the order of ``names``.
    """
    return {name: run_federation(get_strategy(name), federation, config, seed=seed, device=device, **kwargs)
            for name in names}


def results_frame(histories: Mapping[str, History]) -> pd.DataFrame:
    """The final test scores of every method and site as tidy rows (results.csv's columns)."""
    frames = [h.to_dataframe("final").assign(method=name) for name, h in histories.items()]
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[RESULT_COLUMNS]


def site_letters(sites: Sequence[str]) -> dict[str, str]:
    """The paper's column names: site k -> the k-th capital letter."""
    if len(sites) > 26:
        raise ValueError(f"at most 26 sites can be lettered, got {len(sites)}")
    return dict(zip(sites, string.ascii_uppercase, strict=False))


def paper_table(histories: Mapping[str, History], metrics: Sequence[str] = ("iou", "assd")) -> pd.DataFrame:
    """Final scores in the paper's layout.

    Args:
        histories: ``{method: History}`` (e.g. from :func:`run_methods`).
        metrics: Which scores; IoU and Dice are shown in percent, ASSD and HD95 in pixels.

    Returns:
        Rows = methods (paper names, e.g. "Local Train"), columns = (metric label, site letter) with an
        "avg" column per metric (mean over sites). ``table.attrs["sites"]`` maps letters to site names.

    Raises:
        ValueError: for an unknown metric or histories without final scores for it.
    """
    results = results_frame(histories)
    blocks = []
    letters: dict[str, str] = {}
    for metric in metrics:
        if metric not in PAPER_METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {sorted(PAPER_METRICS)}")
        label, scale = PAPER_METRICS[metric]
        sub = results[results["metric"] == metric]
        if sub.empty:
            raise ValueError(f"no final {metric!r} scores in the histories; run them with that metric")
        table = sub.pivot_table(index="method", columns="site", values="value", sort=False) * scale
        first = next(iter(histories.values()))
        letters = site_letters(first.sites)
        table = table[[s for s in first.sites if s in table.columns]].rename(columns=letters)
        table["avg"] = table.mean(axis=1)
        table.columns = pd.MultiIndex.from_product([[label], table.columns], names=["metric", "site"])
        blocks.append(table)
    out = pd.concat(blocks, axis=1)
    out.index = pd.Index([PAPER_NAMES.get(m, m) for m in out.index], name="method")
    out.attrs["sites"] = {v: k for k, v in letters.items()}
    return out


def reference_table(dataset: str, path: str | Path | None = None) -> pd.DataFrame | None:
    """The LC-Fed paper's published per-site IoU (%) and ASSD (px) on the REAL data, in our layout.

    Args:
        dataset: "prostate", "polyp" or "fundus".
        path: The CSV; default the copy packaged in :mod:`fedlab.reference`.

    Returns:
        Same layout as :func:`paper_table` (metrics IoU and ASSD), or None when the file is absent.

    Raises:
        ValueError: for a dataset the file does not list.
    """
    path = reference_path(REFERENCE_FILE) if path is None else path
    path = Path(path)
    if not path.is_file():
        return None
    ref = pd.read_csv(path, comment="#")
    sub = ref[ref["dataset"] == dataset]
    if sub.empty:
        raise ValueError(f"{path} has no rows for dataset {dataset!r}; it lists {sorted(ref['dataset'].unique())}")
    blocks = []
    for metric in ("iou", "assd"):
        label = PAPER_METRICS[metric][0]
        rows = sub[sub["metric"].str.lower() == metric].set_index("method")
        table = rows.drop(columns=["dataset", "metric"]).dropna(axis=1, how="all").astype(float)
        table.columns = pd.MultiIndex.from_product([[label], table.columns], names=["metric", "site"])
        blocks.append(table)
    out = pd.concat(blocks, axis=1)
    out.index.name = "method"
    return out


def side_by_side(ours: pd.DataFrame, reference: pd.DataFrame | None,
                 labels: tuple[str, str] = ("ours (synthetic)", "paper (real data)")) -> pd.DataFrame:
    """Stack our table and the paper's, each row labelled with its source; methods in our order.

    Only the metric columns the two share are kept. Without a reference, our table is returned
    with the source level added.
    """
    if reference is None:
        return pd.concat({labels[0]: ours}, names=["source"]).swaplevel().sort_index(level=0, sort_remaining=False)
    cols = [c for c in ours.columns if c in reference.columns]
    both = pd.concat({labels[0]: ours[cols], labels[1]: reference[cols]}, names=["source"]).swaplevel()
    order = list(dict.fromkeys(list(ours.index) + list(reference.index)))
    return both.loc[[m for m in order if m in both.index.get_level_values(0)]]


def gain_over(results: pd.DataFrame, baseline: str = "FedAvg", metric: str = "iou") -> pd.DataFrame:
    """Per site (rows, plus "avg"), each method's final score minus the baseline's (columns = methods).

    Positive means the method beats the baseline there (for distances such as ASSD, negative is better).
    """
    sub = results[results["metric"] == metric]
    table = sub.pivot_table(index="site", columns="method", values="value", sort=False)
    if baseline not in table.columns:
        raise ValueError(f"baseline {baseline!r} not among the methods {list(table.columns)}")
    table.loc["avg"] = table.mean()
    return table.sub(table[baseline], axis=0).drop(columns=baseline)


def selection_gap(histories: Mapping[str, History], metric: str = "dice") -> pd.DataFrame:
    """How much "best round on the test set" would inflate each method's test score.

    For every method and site, compares the test score (a curve metric, recorded every ``eval_every``
    rounds) at the round chosen on the *validation* split with the best test score over all rounds,
    which is what a paper reports when it picks the round by looking at the test set.
    Methods whose kept model is made after the last round (FT's fine-tuning) are skipped: their
    kept model is not one of the curve's.

    Returns:
        Rows (method, site) with columns ``val_selected``, ``best_on_test``, ``inflation`` (>= 0).
    """
    rows = []
    for name, h in histories.items():
        if "finetune" in h.info.get("finish", {}):
            continue
        curve = h.to_dataframe("curve")
        test = curve[(curve["split"] == "test") & (curve["metric"] == metric)]
        for site in h.sites:
            s = test[test["site"] == site].set_index("round")["value"]
            chosen = h.selected_round.get(site)
            if s.empty or chosen not in s.index:
                continue
            rows.append({"method": name, "site": site, "val_selected": float(s.loc[chosen]),
                         "best_on_test": float(s.max())})
    out = pd.DataFrame(rows, columns=["method", "site", "val_selected", "best_on_test"])
    out["inflation"] = out["best_on_test"] - out["val_selected"]
    return out.set_index(["method", "site"])
