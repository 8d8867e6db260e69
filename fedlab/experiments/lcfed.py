"""Compare methods the way the LC-Fed paper does: one run per method, per-site tables, paper numbers.

* :func:`run_methods` runs each named strategy once on the same federation and seed.
* :func:`results_frame` gathers the final (validation-selected, test-split) scores as tidy rows.
* :func:`paper_table` lays them out as the paper's table: rows are methods, columns the sites A, B, ...
  and their average, IoU in percent and ASSD in pixels.
* :func:`reference_table` reads the paper's published numbers (real data) from the table packaged in
  :mod:`fedlab.reference`; :func:`side_by_side` stacks the two, :func:`describe_comparison` captions them.

Our numbers come from whatever federation was passed in (the embedded *synthetic* stand-ins by
default, or real data from a manifest or a folder); the paper's are real-data numbers at 384x384 pixels.
They are shown side by side, labelled with their sources, only for datasets the paper reports, with our
sites matched to the paper's by the letters the dataset's manifest gives them; they are not comparable one
to one (ASSD in pixels depends on the image size).
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


def site_letters(sites: Sequence[str] | Federation) -> dict[str, str]:
    """The paper's column name of each site.

    Args:
        sites: A federation, or site names. A real federation loaded from a manifest takes each site's letter
            from the manifest (``paper_site``), so sites keep the paper's letters whatever subset or order is
            loaded; a real federation without letters (the generic folder layout, a manifest without them)
            keeps its site names; synthetic sites and plain names get the k-th capital letter.

    Returns:
        ``{site name: column name}``.
    """
    if isinstance(sites, Federation):
        if not sites.synthetic:
            letters = dict(sites.provenance.get("site_letters") or {})
            return {name: letters.get(name, name) for name in sites.site_names}
        sites = sites.site_names
    if len(sites) > 26:
        raise ValueError(f"at most 26 sites can be lettered, got {len(sites)}")
    return dict(zip(sites, string.ascii_uppercase, strict=False))


def data_label(federation: Federation) -> str:
    """"synthetic" or "real": how every table and title labels results on ``federation``."""
    return "synthetic" if federation.synthetic else "real"


def paper_table(histories: Mapping[str, History], metrics: Sequence[str] = ("iou", "assd"),
                federation: Federation | None = None) -> pd.DataFrame:
    """Final scores in the paper's layout.

    Args:
        histories: ``{method: History}`` (e.g. from :func:`run_methods`).
        metrics: Which scores; IoU and Dice are shown in percent, ASSD and HD95 in pixels.
        federation: The data the histories were run on: gives the site columns their paper letters
            (:func:`site_letters`) and the table its data label (``attrs["data"]``, "synthetic" or "real").
            Without it, sites are lettered in run order and the label is unknown.

    Returns:
        Rows = methods (paper names, e.g. "Local Train"), columns = (metric label, site letter) with an
        "avg" column per metric (mean over sites). ``table.attrs["sites"]`` maps letters to site names.

    Raises:
        ValueError: for an unknown metric or histories without final scores for it.
    """
    results = results_frame(histories)
    first = next(iter(histories.values()))
    letters = site_letters(federation if federation is not None else first.sites)
    blocks = []
    for metric in metrics:
        if metric not in PAPER_METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {sorted(PAPER_METRICS)}")
        label, scale = PAPER_METRICS[metric]
        sub = results[results["metric"] == metric]
        if sub.empty:
            raise ValueError(f"no final {metric!r} scores in the histories; run them with that metric")
        table = sub.pivot_table(index="method", columns="site", values="value", sort=False) * scale
        table = table[[s for s in first.sites if s in table.columns]].rename(columns=letters)
        table["avg"] = table.mean(axis=1)
        table.columns = pd.MultiIndex.from_product([[label], table.columns], names=["metric", "site"])
        blocks.append(table)
    out = pd.concat(blocks, axis=1)
    out.index = pd.Index([PAPER_NAMES.get(m, m) for m in out.index], name="method")
    out.attrs["sites"] = {letters.get(s, s): s for s in first.sites}
    if federation is not None:
        out.attrs["data"] = data_label(federation)
    return out


def _paper_dataset(dataset: str | Federation) -> str | None:
    """The reference table's dataset rows for ``dataset`` (None when the paper does not report it)."""
    if not isinstance(dataset, Federation):
        return dataset
    if dataset.synthetic:
        return dataset.name  # the synthetic stand-ins imitate the paper's three tasks and are named after them
    reference = dict(dataset.provenance.get("reference") or {})
    return reference.get("dataset") if reference.get("table") == "lcfed" else None


def reference_table(dataset: str | Federation, path: str | Path | None = None) -> pd.DataFrame | None:
    """The LC-Fed paper's published per-site IoU (%) and ASSD (px) on the REAL data, in our layout.

    Args:
        dataset: A federation (its manifest says which of the paper's datasets it is, if any; the synthetic
            stand-ins are compared with the task they imitate), or the paper's dataset name ("prostate",
            "polyp" or "fundus").
        path: The CSV; default the copy packaged in :mod:`fedlab.reference`.

    Returns:
        Same layout as :func:`paper_table` (metrics IoU and ASSD, columns the paper's site letters), or None
        when the paper does not report this dataset (a folder of your own, a manifest without a reference) or
        the file is absent.
    """
    name = _paper_dataset(dataset)
    path = reference_path(REFERENCE_FILE) if path is None else Path(path)
    if name is None or not path.is_file():
        return None
    ref = pd.read_csv(path, comment="#")
    sub = ref[ref["dataset"] == name]
    if sub.empty:
        return None
    blocks = []
    for metric in ("iou", "assd"):
        label = PAPER_METRICS[metric][0]
        rows = sub[sub["metric"].str.lower() == metric].set_index("method")
        table = rows.drop(columns=["dataset", "metric"]).dropna(axis=1, how="all").astype(float)
        table.columns = pd.MultiIndex.from_product([[label], table.columns], names=["metric", "site"])
        blocks.append(table)
    out = pd.concat(blocks, axis=1)
    out.index.name = "method"
    out.attrs["dataset"] = name
    return out


def side_by_side(ours: pd.DataFrame, reference: pd.DataFrame | None,
                 labels: tuple[str, str] | None = None) -> pd.DataFrame:
    """Stack our table and the paper's, each row labelled with its source; methods in our order.

    The paper's columns are aligned with ours by site letter. When our run covers only some of the paper's
    sites, the paper's "avg" is recomputed over those sites from its published per-site numbers (so both
    averages are over the same sites); ``attrs["note"]`` then says so. Sites the paper does not have show NaN
    in its rows.

    Args:
        ours: From :func:`paper_table`.
        reference: From :func:`reference_table`, or None (then our table is returned with the source level).
        labels: Row labels of the two sources; default ``("ours (<data>)", "paper (real data)")`` with <data>
            from ``ours.attrs["data"]`` ("synthetic" / "real"; just "ours" when unknown).
    """
    data = ours.attrs.get("data")
    labels = labels or (f"ours ({data})" if data else "ours", "paper (real data)")
    if reference is None:
        out = pd.concat({labels[0]: ours}, names=["source"]).swaplevel().sort_index(level=0, sort_remaining=False)
        out.attrs["note"] = ""
        return out
    aligned, note = [], ""
    for metric in dict.fromkeys(ours.columns.get_level_values("metric")):
        if metric not in reference.columns.get_level_values("metric"):
            continue
        sites = [s for s in ours[metric].columns if s != "avg"]
        ref = reference[metric].reindex(columns=sites)
        paper_sites = [s for s in reference[metric].columns if s != "avg"]
        shared = [s for s in sites if s in paper_sites]
        if set(shared) == set(paper_sites) and "avg" in reference[metric].columns:
            ref["avg"] = reference[metric]["avg"]
        else:
            ref["avg"] = ref[shared].mean(axis=1)
            note = (f"The paper reports sites {', '.join(paper_sites)}; our run has "
                    f"{', '.join(shared) if shared else 'none of them'}, so the paper's avg is recomputed over "
                    f"{', '.join(shared) if shared else 'no site'} from its per-site numbers.")
        ref.columns = pd.MultiIndex.from_product([[metric], ref.columns], names=["metric", "site"])
        aligned.append(ref)
    cols = [c for c in ours.columns if c[0] in {a.columns[0][0] for a in aligned}]
    both = pd.concat({labels[0]: ours[cols], labels[1]: pd.concat(aligned, axis=1)[cols]},
                     names=["source"]).swaplevel()
    order = list(dict.fromkeys(list(ours.index) + list(reference.index)))
    out = both.loc[[m for m in order if m in both.index.get_level_values(0)]]
    out.attrs["note"] = note
    return out


def describe_comparison(table: pd.DataFrame, federation: Federation, reference: pd.DataFrame | None,
                        preset: str) -> str:
    """Markdown that says what the side-by-side table compares, built from the data and the tables.

    Args:
        table: From :func:`side_by_side` (its ``attrs["note"]`` is repeated).
        federation: The data our rows come from.
        reference: From :func:`reference_table` (None: the paper does not report this dataset).
        preset: The preset our rows were run with.
    """
    letters = site_letters(federation)
    sites = ", ".join(name if letters[name] == name else f"{letters[name]} = {name}" for name in federation.site_names)
    text = f"**Ours ({data_label(federation)} data):** {federation.title}, preset `{preset}`, sites {sites}."
    if reference is None:
        return text + (" **Paper:** LC-Fed does not report this dataset (or its table is absent here), so only our "
                       "numbers are shown.")
    text += (f" **Paper:** LC-Fed's published numbers on the real {reference.attrs.get('dataset', '')} data "
             "(384x384 pixels, the full sites); not comparable one to one with ours.")
    return text + (f" {table.attrs['note']}" if table.attrs.get("note") else "")


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
