"""Notebooks 01-03 run on the other two embedded federations their DATASET parameter offers (smoke).

Fundus is the harder case for the notebooks' code: two label channels (disc and cup) instead of one.
"""

import numpy as np
import pytest
from notebook_runner import execute_notebook

from fedlab.data.synthetic import SITE_STYLES

pytestmark = pytest.mark.notebook


@pytest.mark.parametrize("notebook", ["01_fedavg", "02_personalization", "03_lcfed_calibration"])
def test_lesson_runs_on_the_synthetic_fundus_federation(notebook, tmp_path):
    results, summary = execute_notebook(notebook, tmp_path, DATASET="fundus")
    assert summary["synthetic"] is True
    assert (summary["data"]["name"], summary["data"]["title"]) == ("fundus", "fundus (synthetic)")
    sites = [style.name for style in SITE_STYLES["fundus"]]
    assert sorted(summary["data"]["sites"]) == sorted(sites)
    assert set(results["site"]) == set(sites)
    for method, rows in results[results["metric"] == "iou"].groupby("method"):
        assert set(rows["site"]) == set(sites), method
    scores = results[results["metric"].isin(["dice", "iou"])]["value"]
    assert np.isfinite(scores).all() and scores.between(0, 1).all()


def test_personalization_on_polyp_finds_the_papers_polyp_table_and_averages_its_sites(tmp_path):
    results, summary = execute_notebook("02_personalization", tmp_path, DATASET="polyp")
    assert summary["dataset"] == "polyp" and summary["reference_available"] is True
    iou = results[(results["metric"] == "iou") & (results["split"] == "test")]
    for method in summary["methods"]:
        expected = 100 * iou[iou["method"] == method]["value"].mean()  # 4 sites, one row each
        assert summary["headline"][f"iou_avg/{method}"] == pytest.approx(expected, abs=1e-6)
