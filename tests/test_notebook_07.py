"""Notebook 07 (differential privacy) runs end to end (smoke): per-site budgets, privacy-utility, central DP."""

import math

import numpy as np
import pytest
from notebook_runner import execute_notebook

pytestmark = pytest.mark.notebook

pytest.importorskip("opacus")  # the optional extra "privacy"; make test installs it


def test_notebook_07_smoke(tmp_path):
    results, summary = execute_notebook("07_differential_privacy", tmp_path)
    assert {"method", "site", "metric", "value", "split", "seed", "round", "epsilon"} <= set(results.columns)
    assert np.isfinite(results["value"]).all()
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    head = summary["headline"]
    # per-site budgets: the smaller the site, the larger its epsilon for the same noise
    planned = results[results["method"] == "planned"]
    sizes = summary["data"]["sites"]
    for _, rows in planned.groupby("metric"):
        by_size = sorted(zip((sizes[s]["train"] for s in rows["site"]), rows["value"], strict=True))
        assert all(a[1] >= b[1] for a, b in zip(by_size, by_size[1:], strict=False))
    assert head["epsilon_ratio_small_large"] > 1
    # the DP runs: finite epsilon with noise, infinite with clipping only, FedAvg none
    dp = results[results["method"].str.startswith("DP sigma=")]
    assert dp["epsilon"].map(math.isfinite).all() and (dp["epsilon"] > 0).all()
    assert results[results["method"] == "DP clip only"]["epsilon"].map(math.isinf).all()
    # logistic regression: more noise, lower AUC (the lesson's curve; large enough even in smoke)
    auc = results[(results["dataset"].str.startswith("adni")) & (results["metric"] == "auc")]
    mean_auc = auc.groupby("method")["value"].mean()
    assert mean_auc["FedAvg"] > mean_auc["DP sigma=4"]
    assert head["lr_auc_fedavg"] > head["lr_auc_dp"]
    # the ledger's last round is each site's planned budget
    ledger = summary["epsilon_ledger"]
    last = max(r["round"] for r in ledger)
    sigma = head["seg_sigma"]
    plan = planned[planned["metric"] == f"epsilon sigma={sigma:g}"].set_index("site")["value"]
    for row in ledger:
        if row["round"] == last:
            assert row["epsilon"] == pytest.approx(plan[row["site"]], rel=1e-9)
    # central DP is site-level: one epsilon for all sites
    central = results[results["method"].str.startswith("Central DP sigma=") & (results["metric"] == "dice")]
    assert central.groupby("method")["epsilon"].nunique().max() == 1
