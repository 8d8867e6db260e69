"""Notebook 03 (LC-Fed) runs end to end with the smoke preset and writes its result files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from fedlab.federation.strategies.lcfed import ABLATIONS

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_lcfed_calibration.ipynb"


@pytest.mark.notebook
def test_notebook_03_smoke(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "03.ipynb"), cwd=str(NOTEBOOK.parents[1]),
                               parameters={"PRESET": "smoke", "OUTPUT_DIR": str(out), "SEED": 0},
                               progress_bar=False, kernel_name="python3")
    results = pd.read_csv(out / "results.csv")
    summary = json.loads((out / "summary.json").read_text())

    assert {"method", "site", "metric", "value", "split", "seed", "round"} <= set(results.columns)
    methods = set(results["method"])
    assert {"LC-Fed", "Local", "FedAvg", "FedRep"} <= methods
    assert set(ABLATIONS) <= methods
    assert set(results["site"]) == set("ABCDEF")
    assert (results["split"] == "test").all()
    assert results["value"].map(math.isfinite).all()
    overlap = results[results["metric"].isin(["dice", "iou"])]["value"]
    assert overlap.between(0, 1).all()
    assert (results[results["metric"].isin(["assd", "hd95"])]["value"] >= 0).all()
    # the backbone ablation row is FedRep's run
    fedrep = results[results["method"] == "FedRep"].set_index(["site", "metric"])["value"]
    backbone = results[results["method"] == "FedRep-style backbone"].set_index(["site", "metric"])["value"]
    pd.testing.assert_series_equal(fedrep, backbone, check_names=False)

    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert "LC-Fed" in summary["headline"]["mean test IoU per method (%)"]
    assert set(summary["gate_spread"]) == {"+ PCS (alpha=0)", "+ contrast"}
    assert all(v >= 0 for v in summary["gate_spread"].values())
    rounds = summary["selected_rounds"]["+ HC (LC-Fed)"]
    assert set(rounds) == set("ABCDEF") and all(0 <= r <= 4 for r in rounds.values())  # 3 backbone + 1 HC round
