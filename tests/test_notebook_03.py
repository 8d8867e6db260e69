"""Notebook 03 (LC-Fed) runs end to end under papermill (smoke) and writes its contract files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from notebook_runner import check_real_sample_summary, execute_notebook, execute_on_real_sample

from fedlab.config import get_config
from fedlab.federation.strategies.lcfed import ABLATIONS

pytestmark = pytest.mark.notebook


def test_notebook_03_smoke(tmp_path):
    results, summary = execute_notebook("03_lcfed_calibration", tmp_path)
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    sites = set(summary["data"]["sites"])
    assert len(sites) == 6
    methods = set(results["method"])
    assert {"LC-Fed", "Local", "FedAvg", "FedRep"} <= methods
    assert set(ABLATIONS) <= methods  # the four ablation rows
    for method in methods:
        rows = results[results["method"] == method]
        assert set(rows["site"]) == sites, method
        assert {"dice", "iou", "assd", "hd95"} <= set(rows["metric"]), method
    assert (results["split"] == "test").all()
    assert np.isfinite(results["value"]).all()
    assert results[results["metric"].isin(["dice", "iou"])]["value"].between(0, 1).all()
    assert (results[results["metric"].isin(["assd", "hd95"])]["value"] >= 0).all()
    # the backbone ablation row is FedRep's run (LC-Fed without PCS, contrast and HC is FedRep)
    fedrep = results[results["method"] == "FedRep"].set_index(["site", "metric"])["value"]
    backbone = results[results["method"] == "FedRep-style backbone"].set_index(["site", "metric"])["value"]
    pd.testing.assert_series_equal(fedrep, backbone, check_names=False)
    # ... and the HC row is LC-Fed's run: every row trains the preset's rounds, LC-Fed's last hc_rounds calibrating
    full = results[results["method"] == "LC-Fed"].set_index(["site", "metric"])["value"]
    hc_row = results[results["method"] == "+ HC (LC-Fed)"].set_index(["site", "metric"])["value"]
    pd.testing.assert_series_equal(full, hc_row, check_names=False)

    assert {"LC-Fed_test_iou", "FedRep_test_iou", "+ contrast_test_iou"} <= set(summary["headline"])
    lcfed = results[(results["method"] == "LC-Fed") & (results["metric"] == "iou")]["value"].mean()
    assert summary["headline"]["LC-Fed_test_iou"] == pytest.approx(lcfed, abs=1e-4)
    assert set(summary["gate_spread"]) == {"+ PCS (alpha=0)", "+ contrast"}
    assert all(v >= 0 for v in summary["gate_spread"].values())
    smoke = get_config("smoke")
    rounds = summary["selected_rounds"]["+ HC (LC-Fed)"]
    assert set(rounds) == sites and all(0 <= r <= smoke.rounds for r in rounds.values())

    # the findings quoted in the computed prose agree with results.csv and with each other
    findings = summary["findings"]
    compared = ["Local", "FedAvg", "FT", "FedBN", "FedRep", "PRR-FL", "LC-Fed"]
    iou = results[results["metric"] == "iou"].groupby("method")["value"].mean()[compared]
    assert findings["methods_ranked"] == len(compared)
    assert findings["lcfed_rank_iou"] == int((iou > iou["LC-Fed"]).sum()) + 1
    effect = pd.DataFrame(summary["calibration_effect"]).T  # site -> before, after, change
    assert set(effect.index) == sites
    np.testing.assert_allclose(effect["change"], effect["after"] - effect["before"], atol=2e-4)
    assert findings["calibration_sites_improved"] + findings["calibration_sites_worsened"] <= len(sites)
    assert findings["calibration_mean_change"] == pytest.approx(effect["change"].mean(), abs=2e-4)
    assert findings["lcfed_backbone_rounds"] == smoke.rounds - smoke.hc_rounds  # the rounds before calibration
    calibrated = {s for s, r in rounds.items() if r > smoke.rounds - smoke.hc_rounds}
    assert set(findings["calibrated_sites_selected"]) == calibrated
    assert set(findings["calibration_first_round_kept"]) <= calibrated  # the first calibrated evaluation's sites
    assert findings["calibration_first_round_test_drop"] is not None
    assert 0 <= findings["peaks_near_boundary"] <= findings["peaks"]
    assert 0 <= findings["pcs_hidden_units_responding"] <= findings["pcs_hidden_units"] == 16  # the paper's width
    assert 0 <= findings["gate_first_direction_share"] <= 1 + 1e-9 and findings["gate_max_deviation"] >= 0
    # the synthetic slices belong to 3-D cases (Split.groups): the paper's per-volume protocol is shown beside ours
    assert findings["test_splits_have_case_ids"] is True
    per_volume = pd.DataFrame(summary["per_volume"])
    assert len(per_volume) == len(compared) and "IoU (%) / avg" in per_volume
    assert ((per_volume["IoU (%) / avg"] >= 0) & (per_volume["IoU (%) / avg"] <= 100)).all()


@pytest.mark.realdata
def test_notebook_03_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """LC-Fed and its baselines on the two-site real sample, with only DATA_DIR set."""
    results, summary = execute_on_real_sample("03_lcfed_calibration", tmp_path, shared, monkeypatch)
    check_real_sample_summary(results, summary)
    assert {"LC-Fed", "Local", "FedAvg", "FedRep"} <= set(results["method"])
    for method in set(results["method"]):
        assert set(results[results["method"] == method]["site"]) == {"RUNMC", "BMC"}, method
    assert np.isfinite(results["value"]).all()
