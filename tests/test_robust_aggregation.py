"""Robust aggregation rules against numpy / scipy, and the robust strategies against FedAvg and an attacker."""

import numpy as np
import pytest
import scipy.stats
import torch

from fedlab.federation.params import weighted_average
from fedlab.federation.robust import (
    clip_by_norm,
    coordinate_median,
    krum_scores,
    krum_select,
    state_norm,
    trimmed_mean,
)
from fedlab.federation.simulation import run_federation, run_round, setup_run
from fedlab.federation.strategies import FedAvg, Krum, Median, NormClip, SignFlip, TrimmedMean


def _updates(k: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(3, 5, generator=g, dtype=torch.float64), "b": torch.randn(4, generator=g,
                                                                                          dtype=torch.float64)}
            for _ in range(k)]


def _stacked(states, key):
    return np.stack([s[key].numpy() for s in states])


@pytest.mark.parametrize("k", [1, 2, 5, 6])
def test_median_equals_numpy_median(k):
    states = _updates(k)
    out = coordinate_median(states)
    for key in states[0]:
        np.testing.assert_allclose(out[key].numpy(), np.median(_stacked(states, key), axis=0), rtol=0, atol=1e-15)


@pytest.mark.parametrize(("k", "trim"), [(5, 0.2), (6, 0.2), (6, 0.34), (10, 0.1), (7, 0.0), (4, 0.1)])
def test_trimmed_mean_equals_scipy_trim_mean(k, trim):
    states = _updates(k, seed=k)
    out = trimmed_mean(states, trim)
    for key in states[0]:
        expected = scipy.stats.trim_mean(_stacked(states, key), proportiontocut=trim, axis=0)
        np.testing.assert_allclose(out[key].numpy(), expected, rtol=1e-12, atol=1e-14)


def test_trimmed_mean_without_trimming_is_uniform_fedavg():
    states = _updates(5)
    out, fedavg = trimmed_mean(states, 0.0), weighted_average(states)
    for key in states[0]:
        torch.testing.assert_close(out[key], fedavg[key], rtol=1e-12, atol=1e-14)


def test_identical_updates_are_returned_unchanged():
    (u,) = _updates(1)
    same = [u] * 5
    median = coordinate_median(same)
    assert all(torch.equal(median[k], u[k]) for k in u)
    for trim in (0.0, 0.2):
        out = trimmed_mean(same, trim)
        for k in u:
            torch.testing.assert_close(out[k], u[k], rtol=1e-15, atol=0)
    assert krum_select(same, num_byzantine=1, num_selected=2) == [0, 1]  # all tie: the lowest indices


def test_krum_picks_from_the_honest_cluster():
    g = torch.Generator().manual_seed(3)
    centre = torch.randn(50, generator=g, dtype=torch.float64)
    honest = [{"w": centre + 0.1 * torch.randn(50, generator=g, dtype=torch.float64)} for _ in range(5)]
    attackers = [{"w": -5 * centre}, {"w": centre + 3 * torch.randn(50, generator=g, dtype=torch.float64)}]
    states = [attackers[0], *honest[:3], attackers[1], *honest[3:]]  # honest at 1, 2, 3, 5, 6
    assert krum_select(states, num_byzantine=2) [0] in {1, 2, 3, 5, 6}
    assert set(krum_select(states, num_byzantine=2, num_selected=3)) <= {1, 2, 3, 5, 6}
    scores = krum_scores(states, num_byzantine=2)
    assert scores[0] > scores[[1, 2, 3, 5, 6]].max() and scores[4] > scores[[1, 2, 3, 5, 6]].max()


def test_krum_needs_enough_sites_and_says_so():
    with pytest.raises(ValueError, match="needs at least 5 sites"):
        krum_scores(_updates(4), num_byzantine=1)


def test_clip_by_norm_bounds_the_norm_and_keeps_small_updates():
    (u,) = _updates(1)
    norm = float(state_norm(u))
    clipped = clip_by_norm(u, norm / 4)
    assert float(state_norm(clipped)) == pytest.approx(norm / 4, rel=1e-12)
    torch.testing.assert_close(clipped["w"] * 4, u["w"])  # same direction
    kept = clip_by_norm(u, 2 * norm)
    assert all(torch.equal(kept[k], u[k]) for k in u)
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_norm(u, 0.0)


def _final_states(history):
    return [m.state_dict() for m in history.site_models]


def _sgd(config):
    """Plain SGD: equal-up-to-rounding runs stay equal up to rounding (Adam's normalised steps amplify ulps)."""
    return config.replace(optimizer="sgd", lr=0.1)


def test_trimmed_mean_strategy_without_trimming_runs_as_uniform_fedavg(toy_federation, tiny_config):
    cfg = _sgd(tiny_config)
    a = run_federation(TrimmedMean(trim=0.0), toy_federation, cfg, select="last", progress=False)
    b = run_federation(FedAvg(weighting="uniform"), toy_federation, cfg, select="last", progress=False)
    for sa, sb in zip(_final_states(a), _final_states(b), strict=True):
        for k in sa:  # sorted values vs a weighted sum: float32 rounding differs, and later rounds' training grows it
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-4)


def test_norm_clip_with_a_loose_bound_is_fedavg(toy_federation, tiny_config):
    cfg = _sgd(tiny_config)
    a = run_federation(NormClip(max_norm=1e9), toy_federation, cfg, select="last", progress=False)
    b = run_federation(FedAvg(), toy_federation, cfg, select="last", progress=False)
    for sa, sb in zip(_final_states(a), _final_states(b), strict=True):
        for k in sa:
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6)


def _one_round(strategy, federation, config):
    fed, clients, state = setup_run(strategy, federation, config, rounds=1)
    start = {k: v.clone() for k, v in state["global"].items()}
    new, replies, messages = run_round(strategy, clients, state, 1)
    return start, new, replies


def test_sign_flip_sends_the_scaled_reversed_update_and_nothing_else_changes(toy_federation, tiny_config):
    start, _, honest = _one_round(FedAvg(), toy_federation, tiny_config)
    _, _, attacked = _one_round(SignFlip(FedAvg(), attackers=[1], scale=3.0), toy_federation, tiny_config)
    for k in start:
        assert torch.equal(attacked[0].message.tensors[k], honest[0].message.tensors[k])
        assert torch.equal(attacked[2].message.tensors[k], honest[2].message.tensors[k])
        expected = start[k] - 3.0 * (honest[1].message.tensors[k] - start[k])
        torch.testing.assert_close(attacked[1].message.tensors[k], expected)


def test_median_and_krum_stay_with_the_honest_sites_while_fedavg_follows_the_attacker(toy_federation, tiny_config):
    """Per coordinate, the median of 3 updates with 1 attacker lies between the 2 honest updates; FedAvg's
    aggregate is pulled outside that range by a large flipped update."""
    cfg = tiny_config.replace(rounds=1)
    start, _, honest = _one_round(FedAvg(), toy_federation, cfg)
    lo = {k: torch.minimum(honest[1].message.tensors[k], honest[2].message.tensors[k]) for k in start}
    hi = {k: torch.maximum(honest[1].message.tensors[k], honest[2].message.tensors[k]) for k in start}
    _, med, _ = _one_round(SignFlip(Median(), attackers=[0], scale=50.0), toy_federation, cfg)
    _, avg, _ = _one_round(SignFlip(FedAvg(), attackers=[0], scale=50.0), toy_federation, cfg)
    tol = 1e-6
    for k in start:
        inside = (med["global"][k] >= lo[k] - tol) & (med["global"][k] <= hi[k] + tol)
        assert bool(inside.all()), k
    outside = sum(int(((avg["global"][k] < lo[k] - tol) | (avg["global"][k] > hi[k] + tol)).sum()) for k in start)
    assert outside > 0
    # Krum with f = 0 (3 sites) keeps one honest update and counts it
    krum = SignFlip(Krum(), attackers=[0], scale=50.0)
    h = run_federation(krum, toy_federation, cfg, select="last", progress=False)
    assert set(h.info["finish"]["decisions"]["selected"]) <= {"S1", "S2"}
