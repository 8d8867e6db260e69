"""Top-k sparsification: the largest entries, transmitted + residual = update, FedAvg at 100%, the bytes counted."""

import math

import pytest
import torch

from fedlab.federation.simulation import run_federation, run_round, setup_run
from fedlab.federation.sparsify import compress, decompress, densify, keep_count, topk
from fedlab.federation.strategies import SCAFFOLD, FedAvg, TopK


def _update(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(6, 7, generator=g), "b": torch.randn(5, generator=g), "s": torch.randn(1, generator=g)}


def test_topk_keeps_the_largest_magnitudes():
    t = torch.tensor([[0.1, -3.0, 0.5], [2.0, -0.2, 0.0]])
    values, indices = topk(t, 0.5)  # ceil(0.5 * 6) = 3 entries
    assert indices.dtype == torch.int32 and indices.tolist() == [1, 2, 3]
    assert values.tolist() == [-3.0, 0.5, 2.0]
    assert torch.equal(densify(values, indices, t), torch.tensor([[0.0, -3.0, 0.5], [2.0, 0.0, 0.0]]))
    assert keep_count(10, 0.01) == 1 and keep_count(10, 1.0) == 10
    with pytest.raises(ValueError, match="fraction"):
        keep_count(10, 0.0)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 1.0])
def test_transmitted_plus_residual_equals_the_update(fraction):
    update, old = _update(0), _update(1)
    message, residual = compress(update, fraction, old)
    sent = decompress(message, update)
    for k in update:
        assert torch.equal(sent[k] + residual[k], update[k] + old[k])  # exact, entry by entry
        assert int((sent[k] != 0).sum()) == keep_count(update[k].numel(), fraction)
    _, no_memory = compress(update, fraction, None)
    sent = decompress(compress(update, fraction, None)[0], update)
    for k in update:
        assert torch.equal(sent[k] + no_memory[k], update[k])


def test_decompress_names_what_is_missing():
    message, _ = compress(_update(), 0.5)
    del message["b::indices"]
    with pytest.raises(ValueError, match=r"\['b'\]"):
        decompress(message, _update())


def _sgd(config):
    return config.replace(optimizer="sgd", lr=0.2)


def test_top_100_percent_is_fedavg(toy_federation, tiny_config):
    cfg = _sgd(tiny_config)
    full = run_federation(TopK(FedAvg(), fraction=1.0), toy_federation, cfg, select="last", progress=False)
    fedavg = run_federation(FedAvg(), toy_federation, cfg, select="last", progress=False)
    a, b = full.site_models[0].state_dict(), fedavg.site_models[0].state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)  # x + (y - x) vs y: rounding only
    for row_full, row_avg in zip(full.ledger, fedavg.ledger, strict=True):
        assert row_full["bytes_up"] == 2 * row_avg["bytes_up"]  # every value plus its int32 index
        assert row_full["bytes_down"] == row_avg["bytes_down"]


@pytest.mark.parametrize("error_feedback", [True, False])
def test_the_ledger_counts_values_and_indices(toy_federation, tiny_config, error_feedback):
    fraction = 0.1
    h = run_federation(TopK(FedAvg(), fraction, error_feedback), toy_federation, tiny_config, select="last",
                       progress=False)
    state = h.site_models[0].state_dict()
    per_site = sum(math.ceil(fraction * t.numel()) * (4 + 4) for t in state.values() if t.is_floating_point())
    assert all(row["bytes_up"] == len(toy_federation) * per_site for row in h.ledger)


def test_error_feedback_keeps_the_residual_at_the_site_and_plain_top_k_drops_it(toy_federation, tiny_config):
    for error_feedback in (True, False):
        strategy = TopK(FedAvg(), 0.1, error_feedback)
        _, clients, state = setup_run(strategy, toy_federation, tiny_config, rounds=2)
        before = {k: v.clone() for k, v in state["global"].items()}
        state, replies, _ = run_round(strategy, clients, state, 1)
        residual = clients[0].private["residual"]
        assert bool(residual) == error_feedback
        if error_feedback:  # what arrived + what stayed = the site's whole update
            model = {k: v.detach() for k, v in clients[0].model.state_dict().items() if k in before}
            sent = decompress(replies[0].message.tensors, before)
            for k in before:
                torch.testing.assert_close(sent[k] + residual[k], model[k] - before[k], rtol=0, atol=1e-7)


def test_top_k_wraps_scaffold_and_compresses_its_control_variates(toy_federation, tiny_config):
    strategy = TopK(SCAFFOLD(lr=0.1), fraction=0.2)
    h = run_federation(strategy, toy_federation, tiny_config, select="last", progress=False)
    assert h.method == "SCAFFOLD top-20% EF"
    scaffold = run_federation(SCAFFOLD(lr=0.1), toy_federation, tiny_config, select="last", progress=False)
    assert h.ledger[0]["bytes_up"] < 0.5 * scaffold.ledger[0]["bytes_up"]


def test_wrappers_rebuild_from_plain_arguments():
    """What a deployment sends to every node: the registry name and JSON-able constructor arguments."""
    import json

    from fedlab.federation.strategies import STRATEGIES, SignFlip

    for strategy in (TopK(SCAFFOLD(lr=0.1), 0.2, False), SignFlip(FedAvg(), attackers=[2], scale=3.0)):
        kwargs = json.loads(json.dumps(strategy.init_kwargs()))
        rebuilt = type(strategy)(**kwargs)
        assert rebuilt.describe() == strategy.describe() and rebuilt.inner is not strategy.inner
    assert STRATEGIES["TopK"](**TopK().init_kwargs()).name == "FedAvg top-10% EF"
