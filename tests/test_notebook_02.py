"""Notebook 02 (personalization) runs end to end (smoke) and writes every method for every site."""

import numpy as np
import pytest
from notebook_runner import check_real_sample_summary, execute_notebook, execute_on_real_sample

from fedlab.data.synthetic import SITE_STYLES
from fedlab.federation.strategies import STRATEGIES

pytestmark = pytest.mark.notebook

METHODS = ["Local", "FedAvg", "FT", "PRR-FL", "FedBN", "FedRep", "FedPer"] + (
    ["LC-Fed"] if "LC-Fed" in STRATEGIES else [])


def test_notebook_02_smoke(tmp_path):
    results, summary = execute_notebook("02_personalization", tmp_path)
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert summary["data"]["title"].endswith("(synthetic)")
    sites = [style.name for style in SITE_STYLES["prostate"]]
    assert set(summary["data"]["sites"]) == set(sites)
    assert set(results["split"]) == {"test"}
    for method in METHODS:
        for site in sites:
            rows = results[(results["method"] == method) & (results["site"] == site)]
            assert {"dice", "iou", "assd", "hd95"} <= set(rows["metric"]), (method, site)
    assert np.isfinite(results["value"]).all()
    assert results[results["metric"].isin(["dice", "iou"])]["value"].between(0, 1).all()
    assert (results[results["metric"].isin(["assd", "hd95"])]["value"] >= 0).all()
    assert summary["methods"] == METHODS
    assert {f"iou_avg/{m}" for m in METHODS} <= set(summary["headline"])


@pytest.mark.realdata
def test_notebook_02_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """Every method on the two-site real sample, with only DATA_DIR set; the paper's sites A and B beside ours."""
    results, summary = execute_on_real_sample("02_personalization", tmp_path, shared, monkeypatch)
    check_real_sample_summary(results, summary)
    assert summary["dataset"] == "prostate_nci_isbi2013_slices" and summary["reference_available"] is True
    for method in METHODS:
        assert set(results[results["method"] == method]["site"]) == {"RUNMC", "BMC"}, method
    assert np.isfinite(results["value"]).all()
