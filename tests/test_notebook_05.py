"""Notebook 05 (deployment) runs end to end under papermill: with Flower, a local deployment computes exactly what
the simulator computes; without Flower, the notebook says how to install it and still runs its simulation part."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from notebook_runner import execute_notebook

from fedlab.deploy import flower_available

pytestmark = pytest.mark.notebook


def _check_simulation(results, summary):
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    sites = set(summary["data"]["sites"])
    assert len(sites) == 3  # SITES = 3 by default
    simulated = results[results.engine == "simulation"]
    assert set(simulated.method) == {"FedAvg (simulation)", "FedRep (simulation)"}
    assert set(simulated.site) == sites and {"dice", "iou", "assd", "hd95"} <= set(simulated.metric)
    assert np.isfinite(results.value).all()
    assert results[results.metric.isin(["dice", "iou"])].value.between(0, 1).all()
    return sites


def test_notebook_05_smoke(tmp_path):
    results, summary = execute_notebook("05_deployment", tmp_path)
    sites = _check_simulation(results, summary)
    headline = summary["headline"]
    assert headline["flower"] is flower_available()
    if not headline["flower"]:
        assert set(results.engine) == {"simulation"}
        return
    # the deployment computed exactly what the simulator computed, for every site and metric
    pivot = results.assign(base=results.method.str.split(" ").str[0]).pivot_table(
        index=["base", "site", "metric"], columns="engine", values="value")
    assert len(pivot) == 2 * len(sites) * 4 and (pivot["flower"] == pivot["simulation"]).all()
    assert headline["identical"] is True and summary["comparison"]["rows_equal"] is True
    assert headline["fedrep_heads_equal"] is True and headline["heads_left_nodes"] == 0
    assert headline["distinct_heads"] == len(sites)
    assert headline["failure_site"] in sites  # the failing-node demo was caught as a DeploymentError
    assert headline["wire_bytes"] > headline["ledger_bytes"] > 0
    assert summary["processes"] >= len(sites) + 2 and summary["processes_left_running"] == 0


def test_notebook_05_without_flower_says_how_to_install_it(tmp_path, monkeypatch):
    """A Python where ``import flwr`` fails (a package of that name that raises, first on the path)."""
    shadow = tmp_path / "shadow" / "flwr"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("flwr is hidden by this test")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "out").mkdir()
    results, summary = execute_notebook("05_deployment", tmp_path / "out")
    _check_simulation(results, summary)
    assert summary["headline"] == {"flower": False} and set(results.engine) == {"simulation"}
    executed = json.loads((tmp_path / "out" / "05_deployment.ipynb").read_text())
    text = json.dumps([cell.get("outputs", []) for cell in executed["cells"]])
    assert "Flower is not installed" in text and "fedlab-med[flower]" in text
