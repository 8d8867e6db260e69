"""The run cache: a hit is the same run; any changed input is a miss; it can be switched off and cleared."""

from __future__ import annotations

import pytest
import torch

from fedlab.data.federation import Federation
from fedlab.federation.cache import RunCache
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import FedAvg, FedProx, LCFed


class CountingFedAvg(FedAvg):
    """FedAvg that counts its local updates (0 new updates = served from the cache)."""

    updates = 0

    def client_update(self, client, message, round):
        CountingFedAvg.updates += 1
        return super().client_update(client, message, round)


def _run(fed, cfg, cache, strategy=None, **kw):
    before = CountingFedAvg.updates
    h = run_federation(strategy or CountingFedAvg(), fed, cfg, progress=False, cache=cache, **kw)
    return h, CountingFedAvg.updates - before


def test_a_hit_returns_the_identical_run_without_training(toy_federation, tiny_config, tmp_path):
    cache = RunCache(tmp_path)
    first, trained = _run(toy_federation, tiny_config, cache)
    assert trained > 0 and len(cache.keys()) == 1
    again, trained = _run(toy_federation, tiny_config, cache)
    assert trained == 0
    assert again.to_dataframe().equals(first.to_dataframe())
    assert again.ledger == first.ledger and again.selected_round == first.selected_round
    for a, b in zip(again.site_models + again.last_models, first.site_models + first.last_models, strict=True):
        assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


@pytest.mark.parametrize("change", ["seed", "rounds", "config", "select", "data", "strategy setting", "code"])
def test_any_changed_input_is_a_miss(change, toy_federation, tiny_config, tmp_path, monkeypatch):
    cache = RunCache(tmp_path)
    _run(toy_federation, tiny_config, cache)
    fed, cfg, kw = toy_federation, tiny_config, {}
    if change == "seed":
        kw["seed"] = 7
    elif change == "rounds":
        kw["rounds"] = 2
    elif change == "config":
        cfg = tiny_config.replace(lr=2e-3)
    elif change == "select":
        kw["select"] = "last"
    elif change == "data":
        fed = Federation("toy", toy_federation.sites[:2])
    elif change == "code":
        monkeypatch.setattr("fedlab.federation.identity.code_version", lambda: "0.0+edited")
    strategy = CountingFedAvg(weighting="uniform") if change == "strategy setting" else None
    _, trained = _run(fed, cfg, cache, strategy=strategy, **kw)
    assert trained > 0
    assert len(cache.keys()) == 2


def test_different_strategies_never_share_an_entry(toy_federation, tiny_config, tmp_path):
    cache = RunCache(tmp_path)
    a = run_federation(FedAvg(), toy_federation, tiny_config, progress=False, cache=cache)
    b = run_federation(FedProx(mu=0.0), toy_federation, tiny_config, progress=False, cache=cache)
    assert a.method != b.method and len(cache.keys()) == 2


def test_lcfed_models_come_back_from_the_cache(toy_federation, tiny_config, tmp_path):
    cache = RunCache(tmp_path)
    cfg = tiny_config.replace(rounds=2, hc_rounds=1)
    first = run_federation(LCFed(), toy_federation, cfg, progress=False, cache=cache)
    again = run_federation(LCFed(), toy_federation, cfg, progress=False, cache=cache)
    x = toy_federation[0].test.x
    with torch.no_grad():
        torch.testing.assert_close(again.site_models[0](x), first.site_models[0](x))
    assert [bool(m.calibrated) for m in again.last_models] == [bool(m.calibrated) for m in first.last_models]


def test_switched_off_and_cleared(toy_federation, tiny_config, tmp_path, monkeypatch):
    cache = RunCache(tmp_path)
    _run(toy_federation, tiny_config, cache)
    monkeypatch.setenv("FEDLAB_RUN_CACHE", "0")
    off = RunCache(tmp_path)
    assert not off.enabled
    _, trained = _run(toy_federation, tiny_config, off)
    assert trained > 0
    monkeypatch.delenv("FEDLAB_RUN_CACHE")
    assert cache.clear() == 1 and cache.keys() == []
    _, trained = _run(toy_federation, tiny_config, cache)
    assert trained > 0


def test_an_interrupted_run_resumes_from_its_checkpoint_in_the_cache(toy_federation, tiny_config, tmp_path):
    cfg = tiny_config.replace(rounds=3, checkpoint_every=1)
    cache = RunCache(tmp_path)
    full = run_federation(FedAvg(), toy_federation, cfg, progress=False)

    doomed = FedAvg()  # the same run, killed while aggregating round 3 (after round 2's checkpoint)
    aggregate = doomed.aggregate

    def dies(round, replies, state):
        if round == 3:
            raise KeyboardInterrupt  # the kernel is interrupted
        return aggregate(round, replies, state)

    doomed.aggregate = dies
    with pytest.raises(KeyboardInterrupt):
        run_federation(doomed, toy_federation, cfg, progress=False, cache=cache)
    assert cache.keys() == [] and list((tmp_path / "runs").glob("*/in_progress/checkpoint.pt"))
    resumed = run_federation(FedAvg(), toy_federation, cfg, progress=False, cache=cache)
    assert resumed.to_dataframe().equals(full.to_dataframe())
    assert len(cache.keys()) == 1 and not list((tmp_path / "runs").glob("*/in_progress"))
