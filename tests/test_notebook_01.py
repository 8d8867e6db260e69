"""Notebook 01 (FedAvg) runs end to end under papermill and honours the notebook contract."""

import nbformat
import numpy as np
import pytest
from notebook_runner import check_real_sample_summary, execute_notebook, execute_on_real_sample

pytestmark = pytest.mark.notebook


def test_notebook_01_smoke(tmp_path):
    results, summary = execute_notebook("01_fedavg", tmp_path, SETTINGS={"eval_batch_size": 16})
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert summary["receipt"]["config"]["eval_batch_size"] == 16  # SETTINGS reached the run
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

    # the headline in the paper's unit (IoU %) agrees with the per-site rows
    iou = results[results.metric == "iou"].pivot_table(index="site", columns="method", values="value")
    for method in ("Local", "FedAvg", "Mix"):
        assert summary["headline"][f"{method}_test_iou_pct"] == pytest.approx(100 * iou[method].mean())
    gains = summary["fedavg_gain_iou_pct"]
    for site in sites:
        assert gains[site] == pytest.approx(100 * (iou.loc[site, "FedAvg"] - iou.loc[site, "Local"]), abs=1e-3)

    # section 4: FedAvg with a persistent client optimiser is a separate, complete run
    persistent = results[results.method == "FedAvg (persistent optimiser)"]
    assert set(persistent.site) == sites
    assert summary["optimizer_state"]["persistent_test_iou_pct"] == pytest.approx(
        100 * persistent[persistent.metric == "iou"].value.mean())

    # section 5: distinct schedules with exactly the same local-step budget, the fewer rounds the fewer bytes
    schedules = summary["schedules"]
    pairs = [(s["rounds"], s["local_steps"]) for s in schedules]
    assert len(pairs) >= 2 and len(set(pairs)) == len(pairs)
    assert len({r * e for r, e in pairs}) == 1
    by_rounds = sorted(schedules, key=lambda s: s["rounds"])
    assert all(a["MiB"] < b["MiB"] for a, b in zip(by_rounds[:-1], by_rounds[1:], strict=True))
    for r, e in pairs:
        assert set(results[results.method == f"FedAvg R={r} E={e}"].site) == sites

    # what a student reads: no warnings or errors, and the findings are computed text
    nb = nbformat.read(tmp_path / "01_fedavg.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr
    assert not [o for o in outputs if o.output_type == "error"]
    markdown = "\n".join(o.data["text/markdown"] for o in outputs
                         if o.output_type in ("display_data", "execute_result") and "text/markdown" in o.data)
    assert "smoke preset" in markdown and "FedAvg beats Local at" in markdown
    assert f"Local {100 * iou['Local'].mean():.1f} %" in markdown


@pytest.mark.realdata
def test_notebook_01_on_real_prostate_slices(tmp_path, shared, monkeypatch):
    """The same lesson on the two-site real prostate sample (developer copy in ../shared), with only DATA_DIR set."""
    results, summary = execute_on_real_sample("01_fedavg", tmp_path, shared, monkeypatch)
    check_real_sample_summary(results, summary)
    assert {"FedAvg", "Local", "Mix"} <= set(results.method)
    assert np.isfinite(results.value).all()
