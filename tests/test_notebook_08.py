"""Notebook 08 (noisy and malicious sites) runs end to end (smoke) and writes every rule in every scenario."""

import numpy as np
import pytest
from notebook_runner import execute_notebook

from fedlab.experiments.robustness import RULES, SCENARIOS

pytestmark = pytest.mark.notebook


def test_notebook_08_smoke(tmp_path):
    results, summary = execute_notebook("08_noisy_and_malicious_sites", tmp_path)
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert summary["data"]["title"].endswith("(synthetic)")
    sites = set(summary["data"]["sites"])
    bad = summary["bad_site"]
    assert bad == "A" and len(sites) == 6  # the largest synthetic prostate site
    assert set(results["scenario"]) == set(SCENARIOS)
    for scenario in SCENARIOS:
        for rule in RULES:
            rows = results[(results.scenario == scenario) & (results.method == rule)]
            assert set(rows.site) == sites and {"dice", "iou"} <= set(rows.metric), (scenario, rule)
    assert set(results[results.method == "FedAvg (uniform)"].scenario) == {"clean"}
    assert np.isfinite(results.value).all() and results.value.between(0, 1).all()
    head = summary["headline"]
    assert set(head) == {f"dice_other_sites/{sc}/{rule}" for sc in SCENARIOS for rule in RULES}
    # the lesson's effect, large enough even at smoke size: a flipped, amplified update from the largest site
    # wrecks FedAvg for everyone else, while the median stays near its clean score
    assert head["dice_other_sites/malicious site/FedAvg"] < 0.5 * head["dice_other_sites/clean/FedAvg"]
    assert head["dice_other_sites/malicious site/Median"] > head["dice_other_sites/clean/Median"] - 0.1
    # what the rules decided is recorded: every quality table covers every site
    assert all(set(q) == sites for q in summary["quality"].values())
    assert set(summary["krum_selected"]) == set(SCENARIOS)
