"""Secure aggregation: exact modular sums, masks that cancel, uploads that look like noise, FedAvg preserved."""

from __future__ import annotations

import pytest
import torch

from fedlab.federation.simulation import run_federation, run_round, setup_run
from fedlab.federation.strategies import FedAvg, FedSGD, LCFed, Local, get_strategy
from fedlab.privacy.secure_aggregation import (
    SecureAggregation,
    decode,
    encode,
    mask,
    pair_seed,
    secure_sum,
    upload_correlation,
)

F_BITS, M_BITS = 24, 60


def _updates(k: int, n: int = 5000) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(n, generator=g, dtype=torch.float64) * 0.1 * (i + 1) for i in range(k)]


def _masked(encodings: list[torch.Tensor], round: int = 1, secret: int = 7) -> list[torch.Tensor]:
    peers = list(range(len(encodings)))
    return [mask(e, i, peers, {j: pair_seed(secret, i, j) for j in peers if j != i}, round, M_BITS)
            for i, e in enumerate(encodings)]


def test_encode_then_decode_is_within_half_a_unit():
    v = _updates(1)[0]
    back = decode(encode(v, F_BITS, M_BITS), F_BITS, M_BITS)
    assert (back - v).abs().max() <= 2.0 ** -(F_BITS + 1)
    negative = torch.tensor([-3.25, -1e-3, 0.0, 2.5], dtype=torch.float64)
    assert torch.equal(decode(encode(negative, 8, 20), 8, 20), torch.round(negative * 256) / 256)


def test_the_masked_sum_equals_the_plain_sum_of_the_encodings_bit_for_bit():
    encodings = [encode(u, F_BITS, M_BITS, headroom=4) for u in _updates(4)]
    plain = secure_sum(encodings, M_BITS)
    masked = _masked(encodings)
    assert not any(torch.equal(m, e) for m, e in zip(masked, encodings, strict=True))
    assert torch.equal(secure_sum(masked, M_BITS), plain)
    assert torch.equal(plain, torch.remainder(sum(encodings), 2**M_BITS))


def test_a_site_that_drops_out_leaves_its_masks_in_the_sum():
    encodings = [encode(u, F_BITS, M_BITS, headroom=4) for u in _updates(4)]
    masked = _masked(encodings)
    survivors = decode(secure_sum(masked[:3], M_BITS), F_BITS, M_BITS)
    expected = decode(secure_sum(encodings[:3], M_BITS), F_BITS, M_BITS)
    assert (survivors - expected).abs().median() > 1e6  # garbage: dropout recovery is what SecAgg adds


def test_a_masked_upload_is_uncorrelated_with_the_update():
    updates = _updates(3, n=20000)
    encodings = [encode(u, F_BITS, M_BITS, headroom=3) for u in updates]
    masked = _masked(encodings)
    for m, u in zip(masked, updates, strict=True):
        assert abs(upload_correlation(m, u, F_BITS, M_BITS)) < 0.05
    assert upload_correlation(encodings[0], updates[0], F_BITS, M_BITS) > 0.999


def test_masks_are_fresh_every_round():
    encodings = [encode(u, F_BITS, M_BITS, headroom=3) for u in _updates(3)]
    assert not torch.equal(_masked(encodings, round=1)[0], _masked(encodings, round=2)[0])


def test_values_that_would_wrap_around_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="lower fraction_bits or raise modulus_bits"):
        encode(torch.tensor([1e6], dtype=torch.float64), 24, 40, headroom=8)


def test_fedavg_through_secure_aggregation_equals_fedavg_within_the_quantisation_bound(toy_federation, tiny_config):
    cfg = tiny_config.replace(rounds=1)
    plain = run_federation(FedAvg(), toy_federation, cfg, rounds=1, select="last", progress=False)
    strategy = SecureAggregation(FedAvg())
    secure = run_federation(strategy, toy_federation, cfg, rounds=1, select="last", progress=False)
    a, b = plain.site_models[0].state_dict(), secure.site_models[0].state_dict()
    total = float(sum(s.num_train for s in toy_federation))
    # the fixed-point rounding, plus float32 rounding of the plain weighted sum (three terms) and of the cast
    for key in a:
        bound = strategy.quantisation_bound(len(toy_federation), total) + 8 * torch.finfo(torch.float32).eps * (
            a[key].abs().max().item() + 1)
        assert (a[key] - b[key]).abs().max().item() <= bound, key
    assert secure.method == "SecAgg(FedAvg)"
    # the uploads are int64 (8 bytes a value) instead of float32 (4): twice the bytes up, the same down
    assert secure.ledger[0]["bytes_up"] == 2 * plain.ledger[0]["bytes_up"]
    assert secure.ledger[0]["bytes_down"] == plain.ledger[0]["bytes_down"]


def test_fedsgd_through_secure_aggregation_matches_fedsgd(toy_federation, tiny_config):
    cfg = tiny_config.replace(optimizer="sgd", lr=0.1)
    plain = run_federation(FedSGD(), toy_federation, cfg, rounds=2, select="last", progress=False)
    secure = run_federation(SecureAggregation(FedSGD()), toy_federation, cfg, rounds=2, select="last", progress=False)
    a, b = plain.site_models[0].state_dict(), secure.site_models[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_the_server_receives_only_masked_int64_tensors(toy_federation, tiny_config):
    strategy = SecureAggregation()
    _, clients, state = setup_run(strategy, toy_federation, tiny_config, rounds=1)
    _, replies, _ = run_round(strategy, clients, state, 1)
    plain = FedAvg()
    _, plain_clients, plain_state = setup_run(plain, toy_federation, tiny_config, rounds=1)
    _, plain_replies, _ = run_round(plain, plain_clients, plain_state, 1)
    for r, p in zip(replies, plain_replies, strict=True):
        assert all(t.dtype == torch.int64 for t in r.message.tensors.values())
        for key, t in r.message.tensors.items():
            weighted = p.message.tensors[key].double() * p.weight
            if t.numel() > 200:
                assert abs(upload_correlation(t, weighted, 24, 60)) < 0.2  # few values: a loose bound


@pytest.mark.parametrize("inner", [Local(), LCFed()], ids=lambda s: s.name)
def test_strategies_that_need_each_upload_are_refused(inner):
    with pytest.raises(ValueError, match="cannot wrap"):
        SecureAggregation(inner)


def test_the_registry_entry_wraps_fedavg():
    strategy = get_strategy("SecAgg")
    assert isinstance(strategy.inner, FedAvg) and strategy.describe()["inner"]["name"] == "FedAvg"


def test_a_wrapped_strategy_is_rebuilt_from_its_json_arguments():
    """What a Flower node does: the wrapper and its inner strategy from (registry name, JSON-able arguments)."""
    import json

    from fedlab.federation.strategies import FedProx

    secure = SecureAggregation(FedProx(mu=0.01), fraction_bits=20)
    kwargs = json.loads(json.dumps(secure.init_kwargs()))
    assert kwargs["strategy"] == "FedProx" and kwargs["strategy_kwargs"]["mu"] == 0.01
    rebuilt = get_strategy("SecAgg", **kwargs)
    assert rebuilt.describe() == secure.describe() and rebuilt.name == "SecAgg(FedProx)"
    assert isinstance(SecureAggregation("FineTune").inner, get_strategy("FT").__class__)
    with pytest.raises(ValueError, match="class name"):
        SecureAggregation(FedAvg(), strategy_kwargs={"weighting": "uniform"})
    with pytest.raises(ValueError, match="no strategy class named 'FedFoo'"):
        SecureAggregation("FedFoo")
