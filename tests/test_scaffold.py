"""SCAFFOLD against FedAvg (first round, bit for bit), local SGD (one site) and the closed-form quadratic optimum."""

import numpy as np
import pytest
import torch

from fedlab.data.federation import Federation
from fedlab.experiments.quadratic import (
    DRIFT_SITES,
    QuadraticSite,
    fedavg_fixed_point,
    optimum,
    run_quadratic,
)
from fedlab.federation.params import state_bytes, weighted_average
from fedlab.federation.simulation import run_federation, run_round, setup_run
from fedlab.federation.strategies import SCAFFOLD, FedAvg, Local
from fedlab.federation.strategies.scaffold import CONTROL


@pytest.fixture
def sgd_config(tiny_config):
    return tiny_config.replace(optimizer="sgd", lr=0.2)


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_first_round_equals_fedavg_bit_for_bit(toy_federation, sgd_config):
    """All control variates start at zero: the correction adds zeros and the average is FedAvg's."""
    states = {}
    for strategy in (FedAvg(), SCAFFOLD()):
        _, clients, state = setup_run(strategy, toy_federation, sgd_config, rounds=2)
        state, replies, _ = run_round(strategy, clients, state, 1)
        states[strategy.name] = state["global"]
    assert _equal(states["FedAvg"], states["SCAFFOLD"])


def test_second_round_differs_from_fedavg(toy_federation, sgd_config):
    out = {}
    for strategy in (FedAvg(), SCAFFOLD()):
        _, clients, state = setup_run(strategy, toy_federation, sgd_config, rounds=2)
        for rnd in (1, 2):
            state, _, _ = run_round(strategy, clients, state, rnd)
        out[strategy.name] = state["global"]
    assert not _equal(out["FedAvg"], out["SCAFFOLD"])


def test_with_one_site_it_is_local_sgd(toy_federation, sgd_config):
    one = Federation("one", [toy_federation[1]])
    cfg = sgd_config.replace(rounds=4)
    scaffold = run_federation(SCAFFOLD(), one, cfg, select="last", progress=False, device="cpu")
    local = run_federation(Local(), one, cfg, select="last", progress=False, device="cpu")
    assert _equal(scaffold.site_models[0].state_dict(), local.site_models[0].state_dict())


def test_server_control_is_the_weighted_mean_of_the_sites_and_uploads_cost_twice_fedavg(toy_federation, sgd_config):
    strategy = SCAFFOLD()
    _, clients, state = setup_run(strategy, toy_federation, sgd_config, rounds=3)
    for rnd in (1, 2, 3):
        state, replies, messages = run_round(strategy, clients, state, rnd)
    sites = [c.private["control"] for c in clients]
    expected = weighted_average(sites, [c.num_train for c in clients])
    assert _equal(state["control"], expected)
    model = state_bytes(state["global"])
    assert all(r.message.nbytes == 2 * model for r in replies)
    assert all(m.nbytes == 2 * model for m in messages.values())
    assert all(k.startswith(CONTROL) for k in replies[0].message.tensors if k not in state["global"])


def test_adam_config_runs_with_sgd_and_warns(toy_federation, tiny_config):
    strategy = SCAFFOLD()
    with pytest.warns(UserWarning, match="plain SGD"):
        _, clients, _ = setup_run(strategy, toy_federation, tiny_config, rounds=1)
    assert isinstance(clients[0].optimizer, torch.optim.SGD) and strategy.config.lr == tiny_config.lr


@pytest.mark.parametrize(("lr", "steps"), [(0.1, 10), (0.2, 20)])
def test_quadratic_sites_scaffold_reaches_the_optimum_fedavg_the_predicted_biased_point(lr, steps):
    target = optimum(DRIFT_SITES)
    biased = fedavg_fixed_point(DRIFT_SITES, lr, steps)
    assert np.linalg.norm(biased - target) > 0.1  # the drift is real
    fedavg = run_quadratic(FedAvg(), rounds=150, lr=lr, local_steps=steps).iloc[-1]
    scaffold = run_quadratic(SCAFFOLD(), rounds=150, lr=lr, local_steps=steps).iloc[-1]
    np.testing.assert_allclose([fedavg.w0, fedavg.w1], biased, atol=1e-10)
    np.testing.assert_allclose([scaffold.w0, scaffold.w1], target, atol=1e-10)


def test_quadratic_fedavg_with_one_local_step_has_no_drift():
    last = run_quadratic(FedAvg(), rounds=400, lr=0.1, local_steps=1).iloc[-1]
    np.testing.assert_allclose([last.w0, last.w1], optimum(DRIFT_SITES), atol=1e-10)


def test_quadratic_optimum_is_the_pooled_least_squares_solution():
    sites = (QuadraticSite("a", ((2.0, 0.5), (0.5, 1.0)), (1.0, -1.0), size=4),
             QuadraticSite("b", ((1.0, -0.3), (-0.3, 3.0)), (-2.0, 0.5), size=2),
             QuadraticSite("c", ((0.5, 0.0), (0.0, 0.5)), (0.0, 3.0), size=6))
    x = torch.cat([s.split().x for s in sites]).numpy()
    y = torch.cat([s.split().y for s in sites]).numpy()
    pooled = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(optimum(sites), pooled, atol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        QuadraticSite("bad", ((1.0, 2.0), (2.0, 1.0)), (0.0, 0.0))
