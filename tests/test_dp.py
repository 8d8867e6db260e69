"""Differential privacy: DP-SGD steps through Opacus, Poisson sampling, per-site accounting, central DP.

Golden epsilons come from Google's dp-accounting 0.6.0 (not a fedlab dependency), computed once in a scratch venv:

    python3 -m venv /tmp/dpacc && /tmp/dpacc/bin/pip install dp-accounting==0.6.0
    /tmp/dpacc/bin/python -c "
    import dp_accounting
    from dp_accounting import rdp
    ORDERS = {'opacus': [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), 'integer': list(range(2, 64))}
    for name, orders in ORDERS.items():
        for q, sigma, steps, delta in CASES:  # the (q, sigma, steps, delta) of GOLDEN below
            acc = rdp.RdpAccountant(orders=orders)
            acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
            print(name, q, sigma, steps, delta, acc.get_epsilon(delta))"

With Opacus's orders the two libraries agree except where dp-accounting drops fractional orders whose series it
cannot converge (q >= 0.2 with sigma <= 1: it then reports a larger, still valid epsilon); with integer orders only
they agree on every case.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fedlab.data.federation import Split
from fedlab.federation.client import task_loss
from fedlab.federation.messages import Message, Reply
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import FedAvg, FedBN, get_strategy
from fedlab.models import LogisticRegression, build_unet
from fedlab.privacy.accounting import add_steps, epsilon, schedule_epsilon
from fedlab.privacy.central_dp import CentralDP
from fedlab.privacy.dp import (
    DPFedAvg,
    DPIncompatibleError,
    check_dp_compatible,
    poisson_batch,
    privacy_ledger,
    private_steps,
)

opacus = pytest.importorskip("opacus")  # the optional extra "privacy"; fedlab.privacy imports it only when used

# (q, sigma, steps, delta, epsilon with Opacus's orders, epsilon with integer orders 2..63), dp-accounting 0.6.0
GOLDEN = [
    (8 / 90, 1.0, 200, 1e-5, 9.729611478672311, 9.729611478672311),
    (8 / 35, 1.0, 200, 1e-5, 27.320231788831492, 27.320231788831492),  # dp-accounting dropped orders 1.1-1.7
    (0.01, 1.1, 10000, 1e-5, 5.632010670081592, 5.6543080001495145),
    (0.25, 0.5, 40, 1e-3, 43.55828127475087, 64.32743150841341),  # dp-accounting dropped orders 1.1-1.6
    (1.0, 2.0, 20, 1e-5, 12.301691480042894, 12.301691480042894),
    (0.05, 4.0, 1000, 1e-6, 1.9418678338563895, 1.9418678338563895),
    (64 / 428, 1.0, 200, 1e-3, 13.061687313058428, 13.061687313058428),
]
#: Cases where dp-accounting kept every one of Opacus's orders (see the module docstring).
SAME_ORDERS = [0, 2, 4, 5, 6]


def bce(model, x, y):
    return nn.functional.binary_cross_entropy_with_logits(model(x).reshape(-1), y)


def _data(n: int = 12, features: int = 5) -> Split:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=g)
    return Split(x, (x[:, 0] > 0).float())


def _model(features: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return LogisticRegression(features, zero_init=False)


# --- one DP-SGD step ----------------------------------------------------------------------------------
def test_no_noise_and_no_clipping_is_the_plain_step():
    data = _data()
    dp_model, plain_model = _model(), _model()
    dp_opt = torch.optim.SGD(dp_model.parameters(), lr=0.5)
    private_steps(dp_model, dp_opt, bce, data, 1, noise_multiplier=0.0, max_grad_norm=math.inf, sample_rate=1.0,
                  generator=torch.Generator().manual_seed(0))
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.5)
    bce(plain_model, data.x, data.y).backward()
    plain_opt.step()
    for a, b in zip(dp_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert not hasattr(next(dp_model.parameters()), "grad_sample")  # Opacus's hooks are gone afterwards
    assert list(dp_model.state_dict()) == ["linear.weight", "linear.bias"]


def test_every_records_gradient_is_clipped_to_the_norm():
    data, clip = _data(), 0.05
    for i in range(len(data)):
        one = data.subset([i])
        model = _model()
        before = [p.detach().clone() for p in model.parameters()]
        raw = torch.autograd.grad(bce(model, one.x, one.y), list(model.parameters()))
        raw_norm = torch.sqrt(sum((g**2).sum() for g in raw))
        private_steps(model, torch.optim.SGD(model.parameters(), lr=1.0), bce, one, 1, noise_multiplier=0.0,
                      max_grad_norm=clip, sample_rate=1.0, generator=torch.Generator().manual_seed(0))
        step = [b - p.detach() for b, p in zip(before, model.parameters(), strict=True)]  # = clipped gradient
        norm = torch.sqrt(sum((s**2).sum() for s in step))
        assert norm <= clip * (1 + 1e-5)
        factor = min(1.0, clip / (raw_norm.item() + 1e-6))  # Opacus's clip factor
        for s, g in zip(step, raw, strict=True):
            assert torch.allclose(s, g * factor, atol=1e-6)


def test_poisson_sampling_includes_each_record_at_rate_q():
    n, q, draws = 200, 0.1, 500
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([len(poisson_batch(n, q, g)) for _ in range(draws)], dtype=torch.float64)
    total, trials = sizes.sum().item(), n * draws
    # Binomial(n * draws, q): 5 standard deviations
    assert abs(total / trials - q) < 5 * math.sqrt(q * (1 - q) / trials)
    assert sizes.std().item() > 0  # the batch size is random, not fixed


def test_an_empty_poisson_batch_takes_a_pure_noise_step():
    data, clip, sigma = _data(n=3), 1.0, 2.0
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator().manual_seed(0)
    private_steps(model, torch.optim.SGD(model.parameters(), lr=1.0), bce, data, 1, noise_multiplier=sigma,
                  max_grad_norm=clip, sample_rate=1e-9, generator=generator)  # q so small the batch is empty
    moved = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, model.parameters(), strict=True)])
    assert moved.abs().max() > 0  # noise / expected batch (3e-9) is huge: the step is all noise


def test_batchnorm_is_rejected_with_the_reason_and_the_fix(tiny_config):
    unet = build_unet(1, 1, tiny_config.replace(norm="batch"))
    with pytest.raises(DPIncompatibleError, match="norm='instance'"):
        check_dp_compatible(unet)
    check_dp_compatible(build_unet(1, 1, tiny_config))  # InstanceNorm without affine parameters: fine


def test_dp_fedavg_refuses_fedbns_model(toy_federation, tiny_config):
    model = FedBN().model_factory(toy_federation, tiny_config)
    with pytest.raises(DPIncompatibleError, match="BatchNorm"):
        run_federation(DPFedAvg(), toy_federation, tiny_config, model=model, progress=False)


# --- accounting -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(len(GOLDEN)))
def test_epsilon_matches_opacus_and_the_dp_accounting_golden_values(case):
    q, sigma, steps, delta, golden_opacus_orders, golden_integer_orders = GOLDEN[case]
    history = add_steps([], sigma, q, steps)
    accountant = opacus.accountants.RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    assert epsilon(history, delta) == accountant.get_epsilon(delta)
    integer = epsilon(history, delta, orders=range(2, 64))
    assert integer == pytest.approx(golden_integer_orders, rel=1e-9)
    if case in SAME_ORDERS:  # the two libraries sum the fractional-order series differently: 1e-5 apart at most
        assert epsilon(history, delta) == pytest.approx(golden_opacus_orders, rel=1e-5)
    else:  # dp-accounting left out orders it could not converge on: it is more conservative here
        assert epsilon(history, delta) < golden_opacus_orders


def test_composition_over_rounds_is_one_accountant_not_the_last_round():
    per_round = add_steps([], 1.0, 0.1, 10)
    history = per_round
    for _ in range(9):
        history = add_steps(history, 1.0, 0.1, 10)
    assert history == [[1.0, 0.1, 100]]
    assert epsilon(history, 1e-5) == pytest.approx(schedule_epsilon(1.0, 0.1, 100, 1e-5))
    assert epsilon(history, 1e-5) > 2 * epsilon(per_round, 1e-5)
    assert epsilon([], 1e-5) == 0 and epsilon(add_steps([], 0.0, 0.1, 1), 1e-5) == math.inf


def test_each_sites_epsilon_is_the_accountant_of_its_own_sampling_rate(toy_federation, tiny_config):
    cfg = tiny_config.replace(rounds=3, local_steps=2, batch_size=4)
    strategy = DPFedAvg(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-3)
    history = run_federation(strategy, toy_federation, cfg, select="last", progress=False)
    facts = history.info["finish"]["privacy"]
    for site in toy_federation:
        q = cfg.batch_size / site.num_train
        assert facts["epsilon"][site.name] == pytest.approx(schedule_epsilon(1.0, q, 3 * 2, 1e-3), rel=1e-12)
    eps = [facts["epsilon"][s.name] for s in toy_federation]
    sizes = [s.num_train for s in toy_federation]
    assert eps == sorted(eps, key=lambda e: -e) and sizes == sorted(sizes)  # smaller sites pay more
    ledger = privacy_ledger(history)
    assert len(ledger) == 3 * len(toy_federation)
    for _, rows in ledger.groupby("site"):
        assert rows.sort_values("round")["epsilon"].is_monotonic_increasing
    assert ledger[ledger["round"] == 3].set_index("site")["epsilon"].to_dict() == pytest.approx(facts["epsilon"])


def test_dp_fedavg_without_noise_or_clipping_and_full_batches_is_fedsgd_like_fedavg(toy_federation, tiny_config):
    """q = 1 (every record every step), sigma = 0, C = inf: DP-SGD is the plain full-batch step.

    Plain SGD: Adam's first steps are nearly sign(g), so float rounding differences can flip them."""
    cfg = tiny_config.replace(rounds=2, local_steps=2, batch_size=10**6, optimizer="sgd", lr=0.1)
    plain = run_federation(FedAvg(), toy_federation, cfg, select="last", progress=False)
    dp = run_federation(DPFedAvg(noise_multiplier=0.0, max_grad_norm=math.inf, sample_rate=1.0), toy_federation, cfg,
                        select="last", progress=False)
    a, b = plain.site_models[0].state_dict(), dp.site_models[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_the_registry_entry_has_working_defaults():
    strategy = get_strategy("DP-FedAvg")
    assert strategy.noise_multiplier == 1.0 and strategy.requires == ("opacus",)


# --- central DP -------------------------------------------------------------------------------------------
def _replies(updates: list[dict[str, torch.Tensor]]) -> list[Reply]:
    return [Reply(k, Message(u), 1.0, torch.zeros(())) for k, u in enumerate(updates)]


def test_central_dp_noise_has_std_sigma_clip_over_k():
    strategy = CentralDP(noise_multiplier=2.0, clip_norm=0.5, noise_seed=0)
    state = {"global": {"w": torch.zeros(20000)}, "noise_rng": torch.Generator().manual_seed(0).get_state(),
             "dp_accountant": [], "privacy": []}
    new = strategy.aggregate(1, _replies([{"w": torch.zeros(20000)}] * 4), state)
    assert new["global"]["w"].std().item() == pytest.approx(2.0 * 0.5 / 4, rel=0.03)
    assert new["privacy"][0]["epsilon"] == pytest.approx(schedule_epsilon(2.0, 1.0, 1, 1e-5))


def test_central_dp_clips_each_sites_update_to_the_norm():
    strategy = CentralDP(noise_multiplier=0.0, clip_norm=1.0)
    state = {"global": {"w": torch.zeros(3)}, "noise_rng": torch.Generator().get_state(), "dp_accountant": [],
             "privacy": []}
    big, small = torch.tensor([30.0, 40.0, 0.0]), torch.tensor([0.0, 0.0, 0.5])
    new = strategy.aggregate(1, _replies([{"w": big}, {"w": small}]), state)
    expected = (big / 50.0 + small) / 2  # the big update scaled to norm 1, the small one untouched, uniform mean
    assert torch.allclose(new["global"]["w"], expected)
    assert new["privacy"][0]["clipped"] == 1


def test_central_dp_without_noise_or_clipping_is_uniform_fedavg(toy_federation, tiny_config):
    cfg = tiny_config.replace(rounds=2, optimizer="sgd", lr=0.1)  # SGD: rounding differences stay small
    plain = run_federation(FedAvg(weighting="uniform"), toy_federation, cfg, select="last", progress=False)
    central = run_federation(CentralDP(noise_multiplier=0.0, clip_norm=1e9), toy_federation, cfg, select="last",
                             progress=False)
    a, b = plain.site_models[0].state_dict(), central.site_models[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_central_dp_ledger_composes_over_rounds(toy_federation, tiny_config):
    history = run_federation(CentralDP(noise_multiplier=1.5, clip_norm=0.1), toy_federation,
                             tiny_config.replace(rounds=3), select="last", progress=False)
    ledger = privacy_ledger(history)
    assert list(ledger["round"]) == [1, 2, 3]
    assert ledger["epsilon"].iloc[-1] == pytest.approx(schedule_epsilon(1.5, 1.0, 3, 1e-5))
    assert ledger["epsilon"].is_monotonic_increasing


def test_the_loss_the_engine_uses_is_a_mean_over_records(tiny_config):
    """DP-SGD's per-record gradients assume mean reduction; the segmentation loss is MONAI's Dice, per image."""
    loss = task_loss("segmentation")
    model = build_unet(1, 1, tiny_config)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y = (x > 0.5).float()
    joint = loss(model, x, y)
    each = torch.stack([loss(model, x[i:i + 1], y[i:i + 1]) for i in range(3)]).mean()
    assert torch.allclose(joint, each, atol=1e-6)
