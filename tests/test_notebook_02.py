"""Notebook 02 runs end to end (smoke preset) and writes complete, finite, in-range results."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from fedlab.data.synthetic import SITE_STYLES
from fedlab.federation.strategies import STRATEGIES

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_personalization.ipynb"
METHODS = ["Local", "FedAvg", "FT", "PRR-FL", "FedBN", "FedRep", "FedPer"] + (
    ["LC-Fed"] if "LC-Fed" in STRATEGIES else [])


@pytest.mark.notebook
def test_notebook_02_smoke(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(NOTEBOOK.parents[1]),
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FEDLAB_PROGRESS", "0")
    monkeypatch.delenv("FEDLAB_PRESET", raising=False)
    monkeypatch.delenv("FEDLAB_DATA_DIR", raising=False)
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "02.ipynb"), cwd=str(tmp_path),
                               parameters={"PRESET": "smoke", "OUTPUT_DIR": str(out)}, progress_bar=False)

    results = pd.read_csv(out / "results.csv")
    summary = json.loads((out / "summary.json").read_text())
    sites = [style.name for style in SITE_STYLES["prostate"]]
    assert summary["synthetic"] is True and summary["preset"] == "smoke"
    for col in ("method", "site", "metric", "value", "split", "seed", "round"):
        assert col in results.columns
    assert set(results["split"]) == {"test"}
    for method in METHODS:
        for site in sites:
            rows = results[(results["method"] == method) & (results["site"] == site)]
            assert set(rows["metric"]) >= {"dice", "iou", "assd", "hd95"}, (method, site)
    assert results["value"].map(math.isfinite).all()
    overlap = results[results["metric"].isin(["dice", "iou"])]["value"]
    assert overlap.between(0, 1).all()
    assert (results[results["metric"].isin(["assd", "hd95"])]["value"] >= 0).all()
    assert set(summary["methods"]) == set(METHODS)
