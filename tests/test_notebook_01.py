"""Notebook 01 (FedAvg) runs end to end under papermill and honours the notebook contract."""

import numpy as np
import pytest
from notebook_runner import check_real_sample_summary, execute_notebook, execute_on_real_sample

pytestmark = pytest.mark.notebook


def test_notebook_01_smoke(tmp_path):
    results, summary = execute_notebook("01_fedavg", tmp_path)
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert summary["data"]["title"].endswith("(synthetic)")
    sites = set(summary["data"]["sites"])
    assert len(sites) == 6
    for method in ("FedAvg", "Local", "Mix"):
        rows = results[results.method == method]
        assert set(rows.site) == sites, method
        assert {"dice", "iou", "assd", "hd95"} <= set(rows.metric)
    assert np.isfinite(results.value).all()
    bounded = results[results.metric.isin(["dice", "iou"])]
    assert bounded.value.between(0, 1).all()
    assert (results[results.metric.isin(["assd", "hd95"])].value >= 0).all()
    assert {"Local_test_dice", "FedAvg_test_dice", "Mix_test_dice"} <= set(summary["headline"])
    assert summary["bytes_per_run"]["Local"] == 0 and summary["bytes_per_run"]["FedAvg"] > 0


@pytest.mark.realdata
def test_notebook_01_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """The same lesson on the two-site real prostate sample (developer copy in ../shared), with only DATA_DIR set."""
    results, summary = execute_on_real_sample("01_fedavg", tmp_path, shared, monkeypatch)
    check_real_sample_summary(results, summary)
    assert {"FedAvg", "Local", "Mix"} <= set(results.method)
    assert np.isfinite(results.value).all()
