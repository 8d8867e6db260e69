"""``fedlab compare``: the LC-Fed paper's table without a notebook, over several seeds.

For every seed, the dataset is loaded (the synthetic generator is seeded too) and every method is
run once (:func:`fedlab.experiments.lcfed.run_methods`, validation-only model selection, the run
cache when given). The output folder receives:

* ``results.csv``: the notebook schema (method, site, metric, value, split, seed, round): the final
  test scores of each site's validation-selected model;
* ``curves.csv``: per round, the validation and test curves (method, site, metric, split, seed, round, value);
* ``summary.json``: what ran (dataset, data source, synthetic or real, methods, seeds, preset and
  settings, versions, wall time) and the table as numbers (mean and std over seeds).

:func:`seed_table` is the printed table: the paper's layout (IoU % and ASSD px per site and their
average), each cell "mean ± std" over the seeds, with the paper's published real-data rows beside it
when the dataset is one the paper reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from fedlab.config import PRESETS, get_config
from fedlab.data.loading import load_federation
from fedlab.experiments.lcfed import paper_table, reference_table, results_frame, run_methods, side_by_side
from fedlab.federation.cache import RunCache
from fedlab.federation.identity import code_version
from fedlab.federation.strategies import STRATEGIES
from fedlab.progress import progress_bar
from fedlab.reproducibility import package_versions, select_device

CURVE_COLUMNS = ["method", "site", "metric", "split", "seed", "round", "value"]


def check_methods(methods: Sequence[str]) -> list[str]:
    """The method names, validated against :data:`~fedlab.federation.strategies.STRATEGIES`.

    Raises:
        ValueError: for an empty list or an unknown name (the message lists the valid ones).
    """
    methods = [m.strip() for m in methods if m.strip()]
    if not methods:
        raise ValueError(f"no methods given; choose from {', '.join(STRATEGIES)}")
    unknown = [m for m in methods if m not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid names: {', '.join(STRATEGIES)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"a method is listed twice: {methods}")
    return methods


def check_seeds(seeds: Sequence[int | str]) -> list[int]:
    """Seeds as distinct non-negative integers.

    Raises:
        ValueError: for an empty list, a non-integer, a negative or a repeated seed.
    """
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be integers, e.g. 0,1,2; got {list(seeds)}") from None
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers, e.g. 0,1,2; got {out}")
    return out


def curves_frame(histories: dict) -> pd.DataFrame:
    """The per-round validation and test curves of several runs, in :data:`CURVE_COLUMNS` order."""
    frames = [h.to_dataframe("curve").assign(method=name) for name, h in histories.items()]
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def seed_table(tables: Sequence[pd.DataFrame], digits: int = 1) -> pd.DataFrame:
    """Cell-wise "mean ± std" over per-seed :func:`~fedlab.experiments.lcfed.paper_table` tables.

    With one table the std is omitted (one seed has no spread).
    """
    stacked = pd.concat(list(tables), keys=range(len(tables)), names=["seed_index"])
    grouped = stacked.groupby(level="method", sort=False)
    mean, std = grouped.mean(), grouped.std(ddof=1)
    if len(tables) == 1:
        return mean.round(digits).astype(str)
    return mean.round(digits).astype(str) + " ± " + std.round(digits).astype(str)


def compare(dataset: str, methods: Sequence[str], preset: str = "classroom", seeds: Sequence[int] = (0,),
            out: str | Path = "outputs/compare", data_dir: str | Path = "", device: str = "auto",
            cache: RunCache | None = None, progress: bool | None = None,
            overrides: Mapping[str, object] | None = None) -> dict:
    """Run ``methods`` on ``dataset`` for every seed and write results.csv, curves.csv and summary.json.

    Args:
        dataset: "prostate", "polyp" or "fundus" (synthetic when ``data_dir`` is empty), or a real dataset
            the loaders accept (see ``fedlab data list``).
        methods: Names from :data:`~fedlab.federation.strategies.STRATEGIES` (e.g. "Local", "FedAvg", "LC-Fed", "Mix").
        preset: "smoke", "classroom" or "paper".
        seeds: Run seeds (each seeds the synthetic data, the initial model and the clients).
        out: Output folder.
        data_dir: Real-data root ("" = the embedded synthetic data).
        device: "auto", "cpu", "cuda", ...
        cache: Run cache (finished runs are reused, new ones stored); None = no cache.
        progress: Progress bars (None = on unless ``$TQDM_DISABLE`` is set).
        overrides: Preset fields to change, e.g. ``{"rounds": 90}`` (recorded in summary.json; a run
            cached with other settings is never reused).

    Returns:
        The summary (also written to ``out/summary.json``); ``summary["table"]`` is :func:`seed_table`'s text.

    Raises:
        ValueError: for unknown methods, bad seeds, an unknown preset, dataset or setting, or an invalid value.
    """
    methods, seeds = check_methods(methods), check_seeds(seeds)
    if preset not in PRESETS["segmentation"]:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS['segmentation'])}")
    config = get_config(preset, **dict(overrides or {}))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = select_device(device)
    tic = time.perf_counter()
    results, curves, tables, federation = [], [], [], None
    bar_switch = {} if progress is None else {"disable": not progress}
    bar = progress_bar(total=len(seeds) * len(methods), desc=f"compare {dataset}", **bar_switch)
    for seed in seeds:
        federation = load_federation(dataset, data_dir, config=config, seed=seed)
        histories = {}
        for name in methods:
            bar.set_postfix_str(f"seed {seed}: {name}")
            histories.update(run_methods([name], federation, config, seed=seed, device=device, cache=cache,
                                         progress=False))  # one bar for the whole comparison
            bar.update()
        results.append(results_frame(histories))
        curves.append(curves_frame(histories))
        tables.append(paper_table(histories, federation=federation))
    bar.close()
    results_df, curves_df = pd.concat(results, ignore_index=True), pd.concat(curves, ignore_index=True)
    results_df.to_csv(out / "results.csv", index=False)
    curves_df.to_csv(out / "curves.csv", index=False)

    ours = seed_table(tables)
    label = f"ours ({'synthetic' if federation.synthetic else 'real'}, {len(seeds)} seed{'s' * (len(seeds) > 1)})"
    reference = reference_table(federation)  # None unless the paper reports this dataset (sites by their letters)
    stacked = pd.concat(tables, keys=seeds, names=["seed"])
    means = stacked.groupby(level="method", sort=False).mean()
    both = side_by_side(means, reference, labels=(label, "paper (real data, 384 px)"))
    both = both.loc[[m for m in ours.index]]  # the paper's rows of the methods we ran
    shown = both.round(2).astype(str)
    for method in ours.index:  # our cells as "mean ± std" over seeds
        shown.loc[(method, label), :] = ours.loc[method, shown.columns].to_numpy()
    summary = {
        "command": "fedlab compare", "dataset": dataset, "title": federation.title,
        "synthetic": bool(federation.synthetic), "source": federation.source, "data_dir": str(data_dir),
        "sites": federation.site_names, "methods": methods, "seeds": seeds, "preset": preset,
        "overrides": dict(overrides or {}), "config": config.to_dict(), "device": str(device),
        "fedlab": code_version(), "versions": package_versions(),
        "wall_time_s": round(time.perf_counter() - tic, 2),
        "mean": _nested(stacked.groupby(level="method", sort=False).mean()),
        "std": _nested(stacked.groupby(level="method", sort=False).std(ddof=1)) if len(seeds) > 1 else None,
        "reference_shown": reference is not None, "table": shown.to_string(), "note": both.attrs.get("note", ""),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _nested(table: pd.DataFrame) -> dict:
    """``{method: {"IoU (%) A": value, ...}}`` for summary.json."""
    return {method: {f"{m} {s}": (None if pd.isna(v) else float(v)) for (m, s), v in row.items()}
            for method, row in table.iterrows()}


__all__ = ["CURVE_COLUMNS", "check_methods", "check_seeds", "compare", "curves_frame", "seed_table"]
