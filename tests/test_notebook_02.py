"""Notebook 02 (personalization) runs end to end (smoke) and writes every method for every site."""

import numpy as np
import pandas as pd
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
    # the heterogeneity sweep: FT minus FedAvg at every (axis, level), in summary.json and sweep.csv
    sweep = pd.DataFrame(summary["sweep"])
    assert set(map(tuple, sweep[["axis", "level"]].to_numpy())) == {
        (axis, level) for axis in ("annotation", "acquisition") for level in (0.0, 1.0, 1.5)}
    assert set(sweep["method"]) == {"FT"} and np.isfinite(sweep["iou_gain_points"]).all()
    rows = pd.read_csv(tmp_path / "sweep.csv")
    iou = rows[rows["metric"] == "iou"].groupby(["axis", "level", "method"])["value"].mean().unstack()
    for record in summary["sweep"]:
        expected = 100 * (iou.loc[(record["axis"], record["level"]), "FT"]
                          - iou.loc[(record["axis"], record["level"]), "FedAvg"])
        assert record["iou_gain_points"] == pytest.approx(expected)
        assert summary["headline"][f"sweep_gain/{record['axis']}/{record['level']:g}/FT"] == pytest.approx(expected)
    # level 1 is the default federation: its runs are the main section's (same final scores)
    default = rows[(rows["level"] == 1.0) & (rows["axis"] == "annotation") & (rows["metric"] == "iou")]
    for method in ("FedAvg", "FT"):
        ours = results[(results["method"] == method) & (results["metric"] == "iou")].set_index("site")["value"]
        theirs = default[default["method"] == method].set_index("site")["value"]
        pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), check_names=False)
    # the measured test-selection inflation is recorded per method (FT has none: it selects among fine-tuning steps)
    assert set(summary["selection_inflation"]) == set(METHODS) - {"FT"}
    assert all(v >= 0 for v in summary["selection_inflation"].values())


@pytest.mark.realdata
def test_notebook_02_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """Every method on the two-site real sample, with only DATA_DIR set; the paper's sites A and B beside ours."""
    results, summary = execute_on_real_sample("02_personalization", tmp_path, shared, monkeypatch)
    check_real_sample_summary(results, summary)
    assert summary["dataset"] == "prostate_nci_isbi2013_slices" and summary["reference_available"] is True
    for method in METHODS:
        assert set(results[results["method"] == method]["site"]) == {"RUNMC", "BMC"}, method
    assert np.isfinite(results["value"]).all()
