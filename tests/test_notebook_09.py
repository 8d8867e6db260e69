"""Notebook 09 (heterogeneity taxonomy) runs end to end (smoke): drift toy, one axis at a time, label skew, top-k."""

import numpy as np
import pytest
from notebook_runner import execute_notebook

from fedlab.experiments.quadratic import DRIFT_SITES, fedavg_fixed_point, optimum
from fedlab.experiments.taxonomy import LABEL_SKEW_METHODS, SWEEP_METHODS

pytestmark = pytest.mark.notebook


def test_notebook_09_smoke(tmp_path):
    results, summary = execute_notebook("09_heterogeneity_taxonomy", tmp_path)
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert np.isfinite(results.value).all() and results.value.between(0, 1).all()
    axes = results[results.section == "axes"]
    assert set(axes.scenario) == {"none", "acquisition", "population", "annotation"}
    for scenario in set(axes.scenario):
        assert set(axes[axes.scenario == scenario].method) == set(SWEEP_METHODS), scenario
    skew = results[results.section == "label skew"]
    assert set(skew.scenario) == {f"alpha={a:g}" for a in summary["alphas"]}
    assert set(skew.method) == set(LABEL_SKEW_METHODS) and {"acc", "auc"} <= set(skew.metric)
    assert set(summary["label_skew_seeds"]) == {0, 1, 2}
    head = summary["headline"]
    # the quadratic toy: FedAvg at its closed-form biased point, SCAFFOLD at the optimum
    expected = np.linalg.norm(fedavg_fixed_point(DRIFT_SITES, 0.1, 10) - optimum(DRIFT_SITES))
    assert head["quadratic/fedavg_distance_to_optimum"] == pytest.approx(expected, abs=1e-6)
    assert head["quadratic/scaffold_distance_to_optimum"] < 1e-6
    # compression: the ledger counts values + int32 indices, about 2 x fraction of FedAvg's upload
    base = head["compression/FedAvg/mb_up"]
    for fraction in summary["fractions"]:
        for suffix in ("", " EF"):
            ratio = head[f"compression/FedAvg top-{100 * fraction:g}%{suffix}/mb_up"] / base
            assert 2 * fraction <= ratio < 2 * fraction + 0.01, (fraction, suffix, ratio)
