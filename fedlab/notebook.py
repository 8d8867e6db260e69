"""The notebook contract in code: resolve parameters, then write results.csv and summary.json.

Every lesson starts with a ``parameters`` cell of plain literals and then calls::

    run = fedlab.start_run("01_fedavg", PRESET, SEED, DATA_DIR, DEVICE, OUTPUT_DIR)

and ends with ``run.finish(results, headline=..., data=...)``. Environment variables
``FEDLAB_PRESET`` and ``FEDLAB_DATA_DIR``, when set, take precedence over the cell's defaults so
that runners which cannot inject parameters (nbval, a plain ``jupyter nbconvert``) can still choose.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from fedlab.config import DATA_DIR_ENV, Config, get_config
from fedlab.federation.cache import RunCache
from fedlab.reproducibility import run_receipt, seed_everything, select_device

OUTPUT_ROOT_ENV = "FEDLAB_OUTPUT_ROOT"
RESULT_COLUMNS = ["method", "site", "metric", "value", "split", "seed", "round"]


@dataclass
class NotebookRun:
    """Resolved settings of one notebook execution, and the writer of its result files.

    Attributes:
        notebook: Notebook name, e.g. "01_fedavg".
        config: The preset's Config.
        seed: Run seed.
        data_dir: Real-data folder, or "" for the embedded synthetic data.
        device: Compute device.
        output_dir: Where results.csv and summary.json go.
        started: ``time.perf_counter()`` at start, for the wall time.
    """

    notebook: str
    config: Config
    seed: int
    data_dir: str
    device: torch.device
    output_dir: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def preset(self) -> str:
        """The preset name."""
        return self.config.preset

    @property
    def cache(self) -> RunCache:
        """The run cache shared by every notebook writing under the same output root
        (``<output root>/cache``): a run another lesson already trained is not trained again."""
        return RunCache(self.output_dir.parent / "cache")

    @property
    def synthetic(self) -> bool:
        """True when no DATA_DIR was given (embedded synthetic data)."""
        return not self.data_dir

    def finish(self, results: pd.DataFrame, headline: dict | None = None, data: object | None = None,
               **extra: object) -> dict:
        """Write ``results.csv`` and ``summary.json`` and return the summary.

        Args:
            results: Tidy rows with at least the columns method, site, metric, value, split, seed, round.
            headline: The few numbers a reader should see first (e.g. mean test Dice per method).
            data: The Federation used (its title, source, synthetic flag and sites are recorded) or a
                description of the data.
            **extra: Anything else for summary.json (must be JSON-serialisable).

        Raises:
            ValueError: if ``results`` lacks a required column or holds non-finite values.
        """
        missing = [c for c in RESULT_COLUMNS if c not in results.columns]
        if missing:
            raise ValueError(f"results is missing columns {missing}; expected at least {RESULT_COLUMNS}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        results.to_csv(self.output_dir / "results.csv", index=False)
        summary = {
            "notebook": self.notebook,
            "preset": self.preset,
            "synthetic": self.synthetic if data is None else bool(getattr(data, "synthetic", self.synthetic)),
            "data": _describe_data(data, self.data_dir),
            "wall_time_s": round(time.perf_counter() - self.started, 2),
            "headline": _jsonable(headline or {}),
            "receipt": run_receipt(self.seed, self.config, _describe_data(data, self.data_dir), self.device),
            **_jsonable(extra),
        }
        (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary


def start_run(notebook: str, preset: str = "classroom", seed: int = 0, data_dir: str = "", device: str = "auto",
              output_dir: str = "", family: str = "segmentation",
              settings: Mapping[str, object] | None = None) -> NotebookRun:
    """Resolve a notebook's parameters (with environment fallbacks), seed, and pick the device.

    Args:
        notebook: Notebook name, used for the default output folder ``outputs/<notebook>``.
        preset: "smoke", "classroom" or "paper"; ``$FEDLAB_PRESET`` wins when set.
        seed: Run seed.
        data_dir: Real-data folder ("" = embedded synthetic data); ``$FEDLAB_DATA_DIR`` wins when set.
        device: "auto", "cpu", "cuda", ...
        output_dir: Where to write results; "" = ``default_output_root() / notebook``, that is
            ``$FEDLAB_OUTPUT_ROOT/<notebook>`` when set, else ``<checkout>/outputs/<notebook>`` in a
            fedlab checkout (whether run from JupyterLab, papermill or ``make reproduce``), else
            ``./outputs/<notebook>`` beside the notebook.
        family: Preset family of the lesson, "segmentation" or "tabular" (see :func:`fedlab.config.get_config`).
        settings: Preset fields to change, e.g. ``{"rounds": 90}`` (a notebook's ``SETTINGS`` parameter);
            applied to whichever preset is chosen, ``$FEDLAB_PRESET`` included.

    Raises:
        ValueError: for an unknown preset, a setting the preset does not have (the message lists them) or
            an invalid value.
        FileNotFoundError: when the data folder does not exist.
    """
    config = get_config(preset, family=family, env_wins=True)
    if settings:
        if "preset" in settings:
            raise ValueError("SETTINGS cannot change the preset; choose it with PRESET")
        config = config.replace(**dict(settings))
    data_dir = os.environ.get(DATA_DIR_ENV) or data_dir or ""
    if data_dir and not Path(data_dir).exists():
        raise FileNotFoundError(
            f"DATA_DIR={data_dir!r} does not exist. Set DATA_DIR='' to use the embedded synthetic data, or "
            "point it at a dataset laid out as its manifest in data_manifests/ describes.")
    seed_everything(seed)
    out = Path(output_dir).resolve() if output_dir else default_output_root() / notebook
    return NotebookRun(notebook, config, int(seed), str(data_dir), select_device(device), out)


def default_output_root(start: str | Path | None = None) -> Path:
    """The folder that holds one output folder per notebook (an absolute path).

    ``$FEDLAB_OUTPUT_ROOT`` when set. Otherwise ``outputs/`` at the root of the fedlab checkout that
    contains ``start`` (its ``pyproject.toml`` names the distribution fedlab-med), so that a lesson
    run from JupyterLab or papermill (working directory ``notebooks/``) and ``make reproduce``
    (working directory the checkout) write to the same place. Outside a checkout (fedlab installed
    from a wheel, notebooks copied elsewhere): ``start/outputs``, beside the notebook.

    Args:
        start: Where to look from (default: the working directory, the notebook's folder under Jupyter).
    """
    env = os.environ.get(OUTPUT_ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder / "outputs"
    return here / "outputs"


def _is_checkout(folder: Path) -> bool:
    """True for the root of a fedlab source checkout: notebooks/ beside a pyproject.toml of fedlab-med."""
    pyproject = folder / "pyproject.toml"
    if not (pyproject.is_file() and (folder / "notebooks").is_dir()):
        return False
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r'^name\s*=\s*"fedlab-med"', text, flags=re.MULTILINE) is not None


def _describe_data(data: object | None, data_dir: str) -> dict:
    if data is None:
        return {"data_dir": data_dir, "synthetic": not data_dir}
    if hasattr(data, "site_names"):
        meta = {"name": data.name, "title": data.title, "synthetic": data.synthetic, "source": data.source,
                "sites": {s.name: {"train": len(s.train), "val": len(s.val) if s.val is not None else 0,
                                   "test": len(s.test)} for s in data}}
        for site in data:
            if "manifest_hash" in site.metadata:
                meta["manifest_hash"] = site.metadata["manifest_hash"]
        return meta
    return {"description": str(data), "data_dir": data_dir}


def _jsonable(obj: object) -> object:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    return obj
