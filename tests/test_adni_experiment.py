"""The ADNI logistic-regression comparison: scikit-learn oracles, table layout, orderings, communication."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogReg

from fedlab.config import PRESETS, TabularConfig
from fedlab.data.standardize import standardize
from fedlab.data.synthetic.adni import make_adni_cohort
from fedlab.data.tabular import adni_federation, load_uci_heart, uci_federation, validate_adni
from fedlab.experiments.adni import (
    METHODS,
    METRICS,
    MIN_CLASS_CASES,
    class_counts,
    communication_curves,
    flamby_table,
    load_flamby_reference,
    load_reference,
    ordering_table,
    paired_differences,
    paper_table,
    rounds_to_target,
    run_comparison,
    step_size_check,
    summary_table,
    train_setting,
)
from fedlab.models.logistic import fit_logistic, penalized_loss, sklearn_C, smoothness_constant

CLASSROOM: TabularConfig = PRESETS["tabular"]["classroom"]  # not get_config: $FEDLAB_PRESET must not change it
SMOKE: TabularConfig = PRESETS["tabular"]["smoke"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return validate_adni(make_adni_cohort(0), verbose=False)


def _make(table):
    return lambda seed, frac: adni_federation(table, seed, frac, synthetic=True)


def _theta(model) -> np.ndarray:
    return np.r_[model.linear.weight.detach().numpy().ravel(), model.linear.bias.detach().numpy()]


def _sklearn_theta(x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> np.ndarray:
    """scikit-learn's solution of the same objective: C = 1 / (n * wd), the bias as a penalised ones column."""
    xa = np.c_[x.numpy().astype(np.float64), np.ones(len(x))]
    sk = SkLogReg(C=sklearn_C(weight_decay, len(y)), fit_intercept=False, tol=1e-10, max_iter=100_000)
    return sk.fit(xa, y.numpy()).coef_.ravel()


# --- the exact solves against scikit-learn --------------------------------------------------------
@pytest.mark.parametrize("weight_decay", [1e-3, CLASSROOM.weight_decay, 1e-1])
def test_mix_coefficients_equal_sklearn_on_the_synthetic_cohort(table, weight_decay):
    fed = adni_federation(table, seed=0)
    mix = train_setting("Mix", fed, CLASSROOM.replace(weight_decay=weight_decay), device="cpu")
    pooled, _ = standardize(fed, "federated")
    x, y = torch.cat([s.train.x for s in pooled]), torch.cat([s.train.y for s in pooled])
    np.testing.assert_allclose(_theta(mix.models[0]), _sklearn_theta(x, y, weight_decay), atol=1e-4, rtol=0)
    assert mix.models[0] is mix.models[1]  # one pooled model serves both clients


def test_single_coefficients_equal_sklearn_per_client(table):
    fed = adni_federation(table, seed=1)
    single = train_setting("Single", fed, CLASSROOM, device="cpu")
    local, _ = standardize(fed, "local")
    for model, site in zip(single.models, local, strict=True):
        np.testing.assert_allclose(_theta(model), _sklearn_theta(site.train.x, site.train.y, CLASSROOM.weight_decay),
                                   atol=1e-4, rtol=0)


@pytest.mark.realdata
@pytest.mark.parametrize("preprocessing", ["fedlab", "flamby"])
def test_mix_coefficients_equal_sklearn_on_uci(shared, preprocessing):
    path = shared / "realdata" / "uci_heart_disease"
    if not path.is_dir():
        pytest.skip("../shared/realdata/uci_heart_disease not present")
    fed = uci_federation(load_uci_heart(path, preprocessing=preprocessing), seed=0)
    mix = train_setting("Mix", fed, CLASSROOM, device="cpu")
    pooled, _ = standardize(fed, "federated")
    x, y = torch.cat([s.train.x for s in pooled]), torch.cat([s.train.y for s in pooled])
    np.testing.assert_allclose(_theta(mix.models[0]), _sklearn_theta(x, y, CLASSROOM.weight_decay), atol=1e-4, rtol=0)


def test_fit_logistic_solvers_agree_and_reach_a_stationary_point(table):
    fed, _ = standardize(adni_federation(table, seed=0), "federated")
    x, y = fed[0].train.x, fed[0].train.y
    newton, lbfgs = fit_logistic(x, y, 1e-2, method="newton"), fit_logistic(x, y, 1e-2, method="lbfgs")
    np.testing.assert_allclose(_theta(newton), _theta(lbfgs), atol=1e-4, rtol=0)
    model = newton.double()
    loss = penalized_loss(model, x.double(), y.double(), 1e-2)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert max(float(g.abs().max()) for g in grads) < 1e-5  # gradient of the objective vanishes
    with pytest.warns(RuntimeWarning, match="raise max_iter"):
        fit_logistic(x, y, 1e-2, method="newton", max_iter=1)
    with pytest.raises(ValueError, match="x \\(N, F\\) and y \\(N,\\)"):
        fit_logistic(x, y[:-1], 1e-2)
    with pytest.raises(ValueError, match="method must be"):
        fit_logistic(x, y, 1e-2, method="sgd")


def test_smoothness_constant_bounds_the_hessian(table):
    fed, _ = standardize(adni_federation(table, seed=0), "federated")
    x = fed[0].train.x.double()
    big_l = smoothness_constant(x, 1e-2)
    model = fit_logistic(x.float(), fed[0].train.y, 1e-2).double()
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).requires_grad_(True)

    def objective(t):
        logits = x @ t[:-1] + t[-1]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, fed[0].train.y.double()) \
            + 0.5e-2 * (t @ t)

    hess = torch.autograd.functional.hessian(objective, theta)
    assert float(torch.linalg.eigvalsh(hess)[-1]) <= big_l + 1e-9  # L bounds the curvature everywhere
    assert step_size_check(adni_federation(table, seed=0), CLASSROOM)["lr_times_L"] < 2


# --- the comparison -----------------------------------------------------------------------------
def test_comparison_rows_table_and_convergence(table):
    comp = run_comparison(_make(table), SMOKE.replace(rounds=3), seed=0, device="cpu")
    res = comp.results
    assert set(res["method"]) == set(METHODS) and set(res["metric"]) == set(METRICS)
    assert res["value"].between(0, 1).all()
    per = res[res.method != "Cross"].groupby(["method", "site", "metric"]).size()
    assert (per == SMOKE.splits).all() and len(per) == 5 * 2 * 4
    cross = res[res.method == "Cross"]
    assert set(zip(cross.trained_on, cross.site, strict=True)) == {("ADNI-1", "ADNI-2"), ("ADNI-2", "ADNI-1")}
    assert (res.loc[res.method == "FedSGD", "round"] == 3).all()  # as many rounds (messages) as FedAvg
    test = res[(res.method == "Single") & (res.site == "ADNI-1")]
    assert (test["n_pos"] + test["n_neg"] == 86).all() and (test["n_pos"] == 40).all()
    summ = summary_table(res)
    single = res[(res.method == "Single") & (res.site == "ADNI-1") & (res.metric == "auc")]["value"]
    assert summ.loc[("ADNI-1", "Single"), "auc"] == pytest.approx(single.mean())
    assert summ.loc[("ADNI-1", "Single"), "auc_std"] == pytest.approx(single.std())
    assert np.isnan(summ.loc[("ADNI-2", "Cross (ADNI1-tr)"), "acc_std"])
    assert not summ[[f"{m}_unreliable" for m in METRICS]].any().any()
    ref = pd.DataFrame({"client": ["ADNI-1"], "method": ["Single"], "acc": [0.844], "acc_std": [0.013],
                        **{f"{m}{s}": [0.5] for m in ("sen", "spe", "auc") for s in ("", "_std")}})
    tab = paper_table(res, ref)
    assert tab.loc[("ADNI-1", "Single"), ("ACC", "paper")] == "0.844 ± 0.013"
    assert "±" not in tab.loc[("ADNI-2", "Cross (ADNI1-tr)"), ("ACC", "ours")]
    assert tab.loc[("ADNI-2", "Single"), ("ACC", "paper")] == ""
    assert tab.loc[("ADNI-1", "Single"), ("test cases", "pos/neg")] == "40/46"
    conv = comp.convergence
    assert set(conv["method"]) == {"FedAvg", "FedSGD", "FedProx"} and len(conv) == 3 * SMOKE.splits
    assert (conv["gap"] > -1e-7).all()  # no federated model beats the exact optimum of its own objective
    # the optimum of the federated objective (federated statistics) is Mix's model
    mix = train_setting("Mix", _make(table)(0, SMOKE.test_fraction), SMOKE, device="cpu")
    fed, _ = standardize(_make(table)(0, SMOKE.test_fraction), "federated")
    x, y = torch.cat([s.train.x for s in fed]), torch.cat([s.train.y for s in fed])
    with torch.no_grad():
        f_mix = float(penalized_loss(mix.models[0].double(), x.double(), y.double(), SMOKE.weight_decay))
    assert conv.loc[conv.seed == 0, "optimum"].iloc[0] == pytest.approx(f_mix, abs=1e-9)


def test_calibrated_cohort_reproduces_table2_single_and_cross():
    """The documented calibration (classroom protocol): averaged over the ten calibration cohorts, Single and Cross
    ACC and AUC are within 0.03 of Table 2 on both clients (the fit reached 0.015)."""
    tables = []
    for c in range(10):
        cohort = validate_adni(make_adni_cohort(c), verbose=False)
        res = run_comparison(_make(cohort), CLASSROOM, seed=c, device="cpu", methods=("Cross", "Single")).results
        tables.append(summary_table(res)[["acc", "auc"]])
    mean = sum(tables) / len(tables)
    ref = load_reference().set_index(["client", "method"])
    assert len(mean) == 4
    diff = (mean - ref.loc[mean.index, ["acc", "auc"]]).abs()
    assert (diff <= 0.03).all().all(), diff


def test_unreliable_metrics_are_flagged():
    rows = []
    for seed in (0, 1):
        for metric, value in zip(METRICS, (0.9, 0.95, 0.0, 0.056), strict=True):
            rows.append({"method": "Single", "site": "Switzerland", "metric": metric, "value": value, "split": "test",
                         "seed": seed, "round": 0, "trained_on": "Switzerland", "n_pos": 15, "n_neg": 1})
            rows.append({"method": "Single", "site": "Cleveland", "metric": metric, "value": value, "split": "test",
                         "seed": seed, "round": 0, "trained_on": "Cleveland", "n_pos": 48, "n_neg": 56})
    res = pd.DataFrame(rows)
    summ = summary_table(res)
    swiss = summ.loc[("Switzerland", "Single")]
    assert not swiss["acc_unreliable"] and not swiss["sen_unreliable"]
    assert swiss["spe_unreliable"] and swiss["auc_unreliable"] and MIN_CLASS_CASES == 5
    assert not summ.loc[("Cleveland", "Single"), ["sen_unreliable", "spe_unreliable", "auc_unreliable"]].any()
    tab = paper_table(res)
    assert tab.loc[("Switzerland", "Single"), ("AUC", "ours")].endswith("†")
    assert not tab.loc[("Cleveland", "Single"), ("AUC", "ours")].endswith("†")


def test_class_counts_flag_small_test_classes(table):
    counts = class_counts(adni_federation(table, seed=0))
    assert counts.loc["ADNI-1"].tolist()[:4] == [159, 183, 40, 46] and not counts["small_test_class"].any()


def test_paired_differences_and_orderings_on_hand_made_results():
    rows = []
    for seed, (single, mix) in enumerate([(0.80, 0.85), (0.82, 0.86), (0.84, 0.86)]):
        for method, value in (("Single", single), ("Mix", mix), ("FedAvg", single - 0.01), ("FedSGD", single)):
            rows.append({"method": method, "site": "A", "metric": "acc", "value": value, "seed": seed})
    rows.append({"method": "Cross", "site": "A", "metric": "acc", "value": 0.83, "seed": 0})
    res = pd.DataFrame(rows)
    diff = paired_differences(res, "Mix", "Single").loc["A"]
    assert diff["mean"] == pytest.approx(np.mean([0.05, 0.04, 0.02]))
    assert diff["std"] == pytest.approx(np.std([0.05, 0.04, 0.02], ddof=1)) and diff["wins"] == 3
    cross = paired_differences(res, "Single", "Cross").loc["A"]
    assert cross["mean"] == pytest.approx(np.mean([0.80, 0.82, 0.84]) - 0.83) and cross["wins"] == 1
    verdicts = ordering_table(res, orderings=(("Mix", "Single", None), ("FedAvg", "Single", None),
                                              ("Single", "Cross", None), ("FedAvg", "FedSGD", ("B",))))
    v = verdicts.set_index("claim")["verdict"]
    assert v["Mix > Single"] == "holds" and v["FedAvg > Single"] == "reversed"
    assert v["Single > Cross"] == "reversed, within spread" and "FedAvg > FedSGD" not in v.index


def test_fedprox_with_mu_zero_and_fedavg_steps_is_fedavg(table):
    fed = adni_federation(table, seed=0)
    config = SMOKE.replace(rounds=3)
    fedavg = train_setting("FedAvg", fed, config, seed=2, device="cpu").models[0]
    prox = train_setting("FedProx", fed, config.replace(mu=0.0, fedprox_steps=config.local_steps), seed=2,
                         device="cpu").models[0]
    assert torch.equal(fedavg.linear.weight, prox.linear.weight)
    one_pass = train_setting("FedProx", fed, config.replace(mu=0.0), seed=2, device="cpu").models[0]
    assert not torch.equal(fedavg.linear.weight, one_pass.linear.weight)  # one epoch is 11 and 9 steps, not 10


def test_fedsgd_needs_more_rounds_than_fedavg(table):
    fed = adni_federation(table, seed=0)
    curves = communication_curves(fed, SMOKE, seed=0, device="cpu", rounds=40, points=8)
    gap = curves.pivot(index="round", columns="method", values="gap")
    assert (gap > -1e-7).all().all()  # nobody beats the exact optimum
    assert (gap["FedSGD"].diff().iloc[1:] < 0).all()  # gradient descent with lr < 2/L descends at every step
    assert gap["FedAvg"].iloc[-1] < 0.2 * gap["FedAvg"].iloc[0]  # mini-batch SGD descends, not monotonically
    hit = rounds_to_target(curves).set_index("method")
    assert hit.loc["FedSGD", "rounds"] > hit.loc["FedAvg", "rounds"]
    assert hit.loc["FedSGD", "bytes"] > hit.loc["FedAvg", "bytes"]
    # bytes are cumulative ledger sums: each round sends one model per client up and down
    fedavg = curves[curves.method == "FedAvg"].set_index("round")["bytes"]
    assert fedavg.loc[2] == 2 * fedavg.loc[1] == 2 * 2 * 2 * 91 * 4


def test_rounds_to_target_on_hand_made_curves():
    curves = pd.DataFrame({"method": ["A"] * 5 + ["B"] * 5, "round": list(range(5)) * 2,
                           "auc": [0.5, 0.9, 0.7, 0.9, 0.95, 0.5, 0.6, 0.92, 0.93, 0.94],
                           "gap": [1.0, 0.5, 0.6, 0.2, 0.1, 1.0, 0.8, 0.6, 0.5, 0.4],
                           "bytes": [0, 10, 20, 30, 40] * 2, "gradient_steps": list(range(5)) * 2})
    sustained = rounds_to_target(curves, 0.9, metric="auc").set_index("method")
    assert sustained.loc["A", "rounds"] == 3 and sustained.loc["A", "bytes"] == 30  # the dip at round 2 resets it
    assert sustained.loc["B", "rounds"] == 2
    first = rounds_to_target(curves, 0.9, metric="auc", sustained=False).set_index("method")
    assert first.loc["A", "rounds"] == 1
    assert rounds_to_target(curves, metric="auc").loc[0, "target"] == pytest.approx(0.93)  # min final AUC - 0.01
    assert np.isnan(rounds_to_target(curves, 0.99, metric="auc").loc[0, "rounds"])
    gap = rounds_to_target(curves).set_index("method")  # default: the largest final gap, 0.4
    assert gap.loc["A", "target"] == pytest.approx(0.4) and gap.loc["A", "rounds"] == 3
    assert gap.loc["B", "rounds"] == 4
    with pytest.raises(ValueError, match="metric must be"):
        rounds_to_target(curves, metric="acc")


def test_flamby_reference_and_table():
    ref = load_flamby_reference()
    assert set(ref["client"]) == {"Cleveland", "Hungary", "Switzerland", "VA Long Beach"}
    assert (ref.groupby("client").size() == 7).all()  # Single, 3 Cross, Mix, FedAvg, FedProx
    assert ref.loc[(ref.client == "Cleveland") & (ref.method == "Mix"), "acc"].item() == pytest.approx(0.7827)
    rows = [{"method": m, "site": "Cleveland", "metric": "acc", "value": v, "split": "test", "seed": 0, "round": 0,
             "trained_on": "x", "n_pos": 48, "n_neg": 56} for m, v in (("Single", 0.7), ("Mix", 0.8))]
    tab = flamby_table(pd.DataFrame(rows), ref)
    assert tab.loc[("Cleveland", "Mix"), "flamby_acc"] == pytest.approx(0.7827)
    assert tab.loc[("Cleveland", "Single"), "ours_acc"] == pytest.approx(0.7)


def test_comparison_rejects_bad_input(table):
    with pytest.raises(TypeError, match="TabularConfig"):
        run_comparison(_make(table), PRESETS["segmentation"]["smoke"])
    with pytest.raises(ValueError, match="unknown method"):
        run_comparison(_make(table), SMOKE, methods=("Single", "FedBN"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="not a federated setting"):
            train_setting("Cross", adni_federation(table, seed=0), SMOKE)
