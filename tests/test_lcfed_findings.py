"""The numbers behind notebook 03's computed sentences, checked against numpy, scipy and hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from fedlab.data.federation import Federation, Site, Split
from fedlab.experiments.lcfed_findings import (
    _boundary,
    calibration_transient,
    describe_ablation,
    describe_calibration,
    describe_calibration_transient,
    describe_gates,
    describe_protocols,
    describe_ranking,
    describe_selected_rounds,
    gate_structure,
    pcs_hidden_units,
    rank_of,
    volume_table,
)
from fedlab.federation.evaluation import evaluate
from fedlab.federation.history import History
from fedlab.metrics import describe
from fedlab.models.pcs import PersonalizedChannelSelection, gate_spread

SITES = ["A", "B", "C", "D"]


def test_gate_structure_matches_numpy_on_random_gates():
    g = torch.rand(4, 16, generator=torch.Generator().manual_seed(0))
    out = gate_structure(g, SITES)
    centred = (g.double() - g.double().mean(0)).numpy()
    np.testing.assert_allclose(out["correlation"].to_numpy(), np.corrcoef(centred), atol=1e-12)
    s = np.linalg.svd(centred, compute_uv=False)
    np.testing.assert_allclose(out["shares"], s ** 2 / (s ** 2).sum(), atol=1e-12)
    assert out["spread"] == pytest.approx(float(gate_spread(g)), rel=1e-6)
    assert out["max_deviation"] == pytest.approx(np.abs(centred).max())
    offdiag = out["correlation"].to_numpy()[~np.eye(4, dtype=bool)]
    assert out["most_similar"][2] == pytest.approx(offdiag.max())
    assert out["most_opposed"][2] == pytest.approx(offdiag.min())


def test_rank_one_deviations_form_two_groups():
    """Gates = level + a_k * v: one direction, correlations +-1, groups by the sign of a_k."""
    v = torch.linspace(-1, 1, 8) * 0.1
    a = torch.tensor([2.0, 1.0, -1.0, -2.0])
    g = 0.5 + a[:, None] * v[None, :]
    out = gate_structure(g, SITES)
    assert out["shares"][0] == pytest.approx(1.0)
    corr = out["correlation"]
    assert corr.loc["A", "B"] == pytest.approx(1.0) and corr.loc["A", "D"] == pytest.approx(-1.0)
    assert (out["scores"][["A", "B"]] > 0).all() and (out["scores"][["C", "D"]] < 0).all()
    text = describe_gates({"with": out, "without": gate_structure(0.5 + 0.1 * (g - 0.5), SITES)}, "with", "without")
    assert "two groups, {A and B} and {C and D}" in text
    assert "100 times as large" in text  # spread scales with the square of the deviations


def test_negligible_gates_are_called_so():
    g = 0.5 + 1e-6 * torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    text = describe_gates({"w": gate_structure(g, SITES), "wo": gate_structure(g, SITES)}, "w", "wo")
    assert "practically **no effect**" in text


def test_gate_structure_rejects_bad_shapes():
    with pytest.raises(ValueError, match="gates must be"):
        gate_structure(torch.rand(3, 8), SITES)


def test_pcs_hidden_units_finds_dead_and_code_blind_units():
    torch.manual_seed(0)
    pcs = PersonalizedChannelSelection(channels=8, num_sites=4, min_hidden=4)  # 4 hidden units
    with torch.no_grad():
        w = pcs.score[0].weight  # (hidden, 2C): first C columns read the pooled feature, last C the embedding
        w[0] = -10.0  # never fires: features are >= 0 here, the embedding bounded
        w[0, 8:] = 0.0
        w[0, :8] = -10.0
        w[1, 8:] = 0.0  # ignores the site embedding: fires, but the same way for every code
        w[1, :8] = 1.0
        w[2, :8] = 5.0  # always fires (pooled features are in [0, 1]) and reads the site embedding
        w[2, 8:] = 1.0
    x = torch.rand(5, 8, 3, 3)
    frame = pcs_hidden_units(pcs, x)
    assert frame.loc[0, "active"] == 0 and not frame.loc[0, "responds"]
    assert frame.loc[1, "active"] == 1 and not frame.loc[1, "responds"]
    # the oracle: every unit's activation recomputed by hand for every code and both pooling branches
    codes = torch.eye(4)
    with torch.no_grad():
        branches = [torch.stack([torch.relu(torch.cat([pooled, pcs.embed(c.expand(5, 4))], 1) @ pcs.score[0].weight.T)
                                 for c in codes]) for pooled in (x.mean((2, 3)), x.amax((2, 3)))]  # (K, N, hidden)
    expected = torch.stack(branches).std(dim=1, unbiased=False).mean(dim=(0, 1)).double()
    np.testing.assert_allclose(frame["code_spread"].to_numpy(), expected.numpy(), rtol=1e-5, atol=1e-9)
    assert frame.loc[2, "active"] == 1 and frame.loc[2, "responds"]


def test_describe_calibration_counts_and_average():
    change = pd.DataFrame({"before": [0.80, 0.70, 0.60], "after": [0.82, 0.65, 0.6001]}, index=["A", "B", "C"])
    change["change"] = change["after"] - change["before"]
    text = describe_calibration(change, "Dice")
    assert "raised test Dice at 1 of 3 sites (A, by 0.020)" in text
    assert "lowered it at 1 of 3 sites (B, by 0.050)" in text
    assert "within 0.0005 at 1 of 3 sites" in text
    assert f"{change['before'].mean():.4f} to {change['after'].mean():.4f}" in text and "hurt on average" in text
    only_down = change.assign(change=-0.1)
    assert describe_calibration(only_down).startswith("Head calibration lowered test Dice at 3 of 3 sites")


def test_describe_calibration_of_a_model_trained_through_the_module():
    """With the joint stage the same counts are read as the final models' reliance on the module, not as its gain."""
    change = pd.DataFrame({"before": [0.50, 0.60], "after": [0.80, 0.62]}, index=["A", "B"])
    change["change"] = change["after"] - change["before"]
    text = describe_calibration(change, "Dice", trained_through=True)
    assert "raised test Dice at 2 of 2 sites (A and B; by 0.020 to 0.300)" in text
    assert "0.5500 without it and 0.7100 with it (+0.1600)" in text
    assert "rely on their calibration module" in text and "not what calibration added" in text
    flat = change.assign(after=change["before"], change=0.0)
    assert "barely depend on the module" in describe_calibration(flat, trained_through=True)


def _run_with_curves(curves: dict, selected: dict) -> History:
    """A History whose Dice curves are ``{(site, split): {round: value}}``."""
    history = History("LC-Fed", sorted({site for site, _ in curves}), selected_round=selected)
    for (site, split), values in curves.items():
        for rnd, value in values.items():
            history.record(site, "dice", value, split, rnd)
    return history


def test_calibration_transient_averages_the_sites_from_the_last_backbone_evaluation():
    curves = {("A", "val"): {2: 0.5, 4: 0.8, 6: 0.4, 8: 0.9}, ("B", "val"): {2: 0.3, 4: 0.6, 6: 0.9, 8: 0.7},
              ("A", "test"): {2: 0.5, 4: 0.8, 6: 0.5, 8: 0.9}, ("B", "test"): {2: 0.3, 4: 0.6, 6: 0.3, 8: 0.7}}
    history = _run_with_curves(curves, {"A": 8, "B": 6})
    table = calibration_transient(history, backbone_rounds=5)  # round 4 is the last evaluation before round 6
    assert list(table.index) == [4, 6, 8]
    np.testing.assert_allclose(table["val"], [0.7, 0.65, 0.8])
    np.testing.assert_allclose(table["test"], [0.7, 0.4, 0.8])
    text = describe_calibration_transient(history, backbone_rounds=5)
    assert text.startswith("The first calibration round disturbed the model before it recovered")
    assert "0.700 at round 4, 0.400 at round 6, 0.800 at round 8" in text
    assert "kept round 6 at B (B: validation 0.900, test 0.300)" in text  # B's validation peaked in the dip
    steady = _run_with_curves({k: {r: 0.8 for r in v} for k, v in curves.items()}, {"A": 8, "B": 8})
    assert describe_calibration_transient(steady, 5).startswith("The calibration stage began without disturbing")
    stopped = _run_with_curves({k: {r: x for r, x in v.items() if r <= 6} for k, v in curves.items()}, {"A": 4, "B": 6})
    assert describe_calibration_transient(stopped, 5).startswith("The first calibration round disturbed the model: ")
    worse = _run_with_curves({**curves, ("A", "test"): {2: 0.5, 4: 0.8, 6: 0.5, 8: 0.5}}, {"A": 4, "B": 4})
    assert "which had not recovered by round 8" in describe_calibration_transient(worse, 5)
    with pytest.raises(ValueError, match="no evaluation at or before round 1"):
        calibration_transient(history, backbone_rounds=1)


def test_describe_selected_rounds():
    assert "at 1 of 2 sites (B)" in describe_selected_rounds({"A": 30, "B": 33}, 30)
    assert "every site" in describe_selected_rounds({"A": 31, "B": 33}, 30)
    assert "uncalibrated everywhere" in describe_selected_rounds({"A": 3, "B": 30}, 30)


def _table(values: dict[str, list[float]], assd: dict[str, float] | None = None) -> pd.DataFrame:
    iou = pd.DataFrame(values, index=["A", "B"]).T
    iou["avg"] = iou.mean(axis=1)
    iou.columns = pd.MultiIndex.from_product([["IoU (%)"], iou.columns])
    d = pd.DataFrame({m: [assd[m] if assd else 1.0] for m in values}, index=["avg"]).T
    d.columns = pd.MultiIndex.from_product([["ASSD (px)"], d.columns])
    return pd.concat([iou, d], axis=1)


def test_rank_and_ranking_sentence():
    ours = _table({"FedAvg": [80, 82], "FedRep": [70, 72], "LC-Fed": [75, 71]}, {"FedAvg": 1.0, "FedRep": 2.0,
                                                                                 "LC-Fed": 1.5})
    assert rank_of(ours, "LC-Fed", ("IoU (%)", "avg")) == 2
    assert rank_of(ours, "LC-Fed", ("ASSD (px)", "avg"), higher_is_better=False) == 2
    paper = _table({"FedAvg": [80, 80], "FedRep": [81, 81], "LC-Fed": [84, 84]})
    text = describe_ranking(ours, paper)
    assert "ranks **2 of 3**" in text and "best FedAvg, 81.0%" in text and "+2.0 IoU points" in text
    assert "it ranks 1 of 3 by IoU (84.0%), +3.0 points against FedRep" in text
    with pytest.raises(ValueError, match="not a row"):
        rank_of(ours, "Mix", ("IoU (%)", "avg"))


def test_describe_ablation_differences():
    table = _table({"backbone": [70, 70], "+ PCS": [71, 69], "+ HC": [73, 72]})
    text = describe_ablation(table)
    assert "**+ PCS** +0.00 points over *backbone* (better at 1 of 2 sites)" in text
    assert "**+ HC** +2.50 points over *+ PCS* (better at 2 of 2 sites)" in text
    assert "+2.50 points against the backbone" in text


def test_describe_protocols_uses_the_metric_footnotes():
    text = describe_protocols("prostate", has_volumes=False)
    assert describe(["iou", "assd"]) in text
    assert describe(["iou", "assd"], per="volume", hd95="pooled", postprocess="lcfed") in text
    assert "no case ids" in text
    assert "re-scores" not in text and "also scores" in describe_protocols("prostate", has_volumes=True)
    assert "does not report" in describe_protocols(None, has_volumes=False)


class _Oracle(torch.nn.Module):
    """Predicts a fixed mask (logits +-5), whatever the input."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.mask[: x.shape[0]] * 10 - 5).to(x.dtype)


def test_volume_table_equals_evaluate_per_volume():
    gen = torch.Generator().manual_seed(0)
    y = torch.zeros(6, 1, 12, 12)
    y[:, :, 3:9, 3:9] = 1
    pred = y.clone()
    pred[:, :, 3:9, 8:10] = (torch.rand(6, 1, 6, 2, generator=gen) > 0.5).float()  # imperfect boundary
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    test = Split(torch.zeros(6, 1, 12, 12), y, groups)
    site = Site("A", train=Split(torch.zeros(2, 1, 12, 12), y[:2]), test=test)
    fed = Federation("toy", (site,))
    history = History("M", ["A"], site_models=[_Oracle(pred)])
    protocol = {"per": "volume", "hd95": "pooled", "spacing": None, "postprocess": "lcfed"}
    table = volume_table({"M": history}, fed, protocol)
    expected = evaluate(_Oracle(pred), test, "segmentation", ("iou", "assd"), per="volume", hd95="pooled",
                        postprocess="lcfed")
    assert table.loc["M", ("IoU (%)", "A")] == pytest.approx(100 * expected["iou"])
    assert table.loc["M", ("ASSD (px)", "avg")] == pytest.approx(expected["assd"])
    perfect = volume_table({"M": History("M", ["A"], site_models=[_Oracle(y)])}, fed, protocol)
    assert perfect.loc["M", ("IoU (%)", "avg")] == pytest.approx(100) and perfect.loc["M", ("ASSD (px)", "avg")] == 0


def test_volume_table_needs_case_ids():
    y = torch.ones(2, 1, 4, 4)
    site = Site("A", train=Split(torch.zeros(2, 1, 4, 4), y), test=Split(torch.zeros(2, 1, 4, 4), y))
    with pytest.raises(ValueError, match="case id"):
        volume_table({"M": History("M", ["A"], site_models=[_Oracle(y)])}, Federation("toy", (site,)),
                     {"per": "volume"})


def test_boundary_is_mask_minus_erosion():
    m = np.zeros((7, 7), dtype=bool)
    m[1:6, 2:5] = True
    np.testing.assert_array_equal(_boundary(m), m & ~ndimage.binary_erosion(m))
    full = np.ones((4, 4), dtype=bool)
    assert _boundary(full).sum() == 12  # the image border counts as outside
