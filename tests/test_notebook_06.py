"""Notebook 06 (what the server sees) runs end to end (smoke) and shows the leakage and secure-aggregation effects."""

import numpy as np
import pytest
from notebook_runner import execute_notebook, execute_on_real_sample

pytestmark = pytest.mark.notebook

COLUMNS = {"method", "site", "metric", "value", "split", "seed", "round"}


def _value(results, **where):
    rows = results
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) >= 1, where
    return rows["value"]


def test_notebook_06_smoke(tmp_path):
    results, summary = execute_notebook("06_what_the_server_sees", tmp_path)
    assert COLUMNS <= set(results.columns) and np.isfinite(results["value"]).all()
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert "synthetic" in summary["tabular_data"]
    # one patient's update is the patient's record
    assert _value(results, method="analytic (logistic regression)", metric="max_abs_error").max() < 1e-5
    assert _value(results, metric="relative_distance_nearest", setting=1).max() < 1e-5
    # one slice's update leaks beyond the prior (DLG at batch 1, the attack's best case)
    dlg = _value(results, method="DLG", metric="relative_leakage", defence="none", split="attack")
    assert dlg.max() > 0 and summary["headline"]["dlg_psnr_db"] > summary["headline"].get("dlg_psnr_db", 0) - 1
    # secure aggregation: uploads look like noise, the sum is FedAvg's, twice the bytes up
    correlations = _value(results, metric="upload_correlation")
    assert len(correlations) == len(summary["data"]["sites"]) and (correlations.abs() < 0.05).all()
    head = summary["headline"]
    assert head["secagg_bytes_up_ratio"] == pytest.approx(2.0)
    assert abs(head["secagg_dice_difference"]) < 0.05
    for method in ("FedAvg", "SecAgg(FedAvg)"):
        dice = _value(results, method=method, metric="dice", split="test")
        assert len(dice) == len(summary["data"]["sites"]) and dice.between(0, 1).all()


@pytest.mark.realdata
def test_notebook_06_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """The same attacks on the real two-site prostate sample (DATA_DIR only); the tabular part stays synthetic."""
    results, summary = execute_on_real_sample("06_what_the_server_sees", tmp_path, shared, monkeypatch)
    assert summary["synthetic"] is False and list(summary["data"]["sites"]) == ["RUNMC", "BMC"]
    assert summary["attacked_site"] == "RUNMC"
    assert np.isfinite(results["value"]).all()
    assert set(_value(results, metric="upload_correlation").abs() < 0.05) == {True}
