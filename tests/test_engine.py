"""run_federation, FedAvg, Local and Mix against equivalences and invariants."""

import pytest
import torch

from fedlab.data.federation import Federation
from fedlab.federation.params import state_bytes
from fedlab.federation.simulation import initial_model, run_federation
from fedlab.federation.strategies import Centralized, FedAvg, FedRep, Local, get_strategy
from fedlab.federation.strategies.base import Strategy


def _equal_states(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("changes", [{"optimizer": "sgd"}, {"optimizer": "adam", "optimizer_state": "persistent"}],
                         ids=["sgd-stateless", "adam-persistent"])
def test_fedavg_with_one_client_equals_local_training_bitwise(toy_federation, tiny_config, changes):
    """Averaging one client is the identity, so FedAvg-1 is Local training whenever the optimiser state
    matches: a stateless optimiser (plain SGD), or Adam kept across rounds as Local keeps it."""
    one = Federation("one", [toy_federation[0]])
    cfg = tiny_config.replace(**changes)
    fed = run_federation(FedAvg(), one, cfg, select="last", progress=False)
    local = run_federation(Local(), one, cfg, select="last", progress=False)
    assert _equal_states(fed.site_models[0].state_dict(), local.site_models[0].state_dict())
    # and both really trained
    init = initial_model(one, cfg, seed=0)
    assert not _equal_states(init.state_dict(), local.site_models[0].state_dict())


def test_fedavg_with_one_client_and_fresh_adam_differs_from_local(toy_federation, tiny_config):
    """With Adam, the textbook client (fresh optimiser each round) is not Local training (Adam moments kept)."""
    one = Federation("one", [toy_federation[0]])
    fed = run_federation(FedAvg(), one, tiny_config, select="last", progress=False)
    local = run_federation(Local(), one, tiny_config, select="last", progress=False)
    assert not _equal_states(fed.site_models[0].state_dict(), local.site_models[0].state_dict())


def _spy(base: type[Strategy]) -> Strategy:
    """``base`` that records, per round, how many parameters have optimiser state when local training starts."""

    class Spy(base):
        def client_update(self, client, message, round):
            self.prepare_round(client, message)
            self.seen.setdefault(round, []).append(len(client.optimizer.state))
            return self.reply(client, client.train(self.config.local_steps))

    spy = Spy()
    spy.seen = {}
    return spy


@pytest.mark.parametrize(("base", "optimizer_state", "fresh_at_round_2"), [
    (FedAvg, "fresh", True), (FedAvg, "persistent", False), (Local, "fresh", False),
])
def test_client_optimiser_state_at_the_start_of_round_2(toy_federation, tiny_config, base, optimizer_state,
                                                        fresh_at_round_2):
    spy = _spy(base)
    run_federation(spy, toy_federation, tiny_config.replace(optimizer_state=optimizer_state, rounds=2),
                   select="last", progress=False)
    assert spy.seen[1] == [0, 0, 0]  # nothing has stepped yet
    assert all((n == 0) == fresh_at_round_2 for n in spy.seen[2])


def test_fedavg_ends_with_one_global_model_and_counts_bytes(toy_federation, tiny_config):
    h = run_federation(FedAvg(), toy_federation, tiny_config, select="last", progress=False)
    states = [m.state_dict() for m in h.site_models]
    assert all(_equal_states(states[0], s) for s in states[1:])
    model_bytes = state_bytes({k: v for k, v in states[0].items() if v.is_floating_point()})
    for row in h.ledger:
        assert row["bytes_up"] == 3 * model_bytes
        assert row["bytes_down"] == 3 * model_bytes
    assert len(h.ledger) == tiny_config.rounds


def test_fedavg_global_is_sample_weighted_average(toy_federation, tiny_config):
    """One round by hand: train each site's copy as FedAvg would, then average with n_k / n."""
    strategy = FedAvg()
    h = run_federation(strategy, toy_federation, tiny_config, rounds=1, select="last", progress=False)
    local = run_federation(Local(), toy_federation, tiny_config, rounds=1, select="last", progress=False)
    n = torch.tensor([float(s.num_train) for s in toy_federation])
    w = n / n.sum()
    for key, value in h.site_models[0].state_dict().items():
        if value.is_floating_point():
            expected = sum(w[k] * local.site_models[k].state_dict()[key] for k in range(3))
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_uniform_weighting_differs_from_sample_weighting(toy_federation, tiny_config):
    a = run_federation(FedAvg(), toy_federation, tiny_config, rounds=1, select="last", progress=False)
    b = run_federation(FedAvg(weighting="uniform"), toy_federation, tiny_config, rounds=1, select="last",
                       progress=False)
    assert not _equal_states(a.site_models[0].state_dict(), b.site_models[0].state_dict())


def test_local_sends_nothing_and_mix_serves_one_model(toy_federation, tiny_config):
    local = run_federation(Local(), toy_federation, tiny_config, progress=False)
    assert local.total_bytes == 0
    mix = run_federation(Centralized(), toy_federation, tiny_config, select="last", progress=False)
    assert mix.method == "Mix" and mix.total_bytes == 0
    assert all(m is mix.site_models[0] for m in mix.site_models)
    assert set(mix.to_dataframe("final")["site"]) == set(toy_federation.site_names)


def test_history_rows_and_final_metrics(toy_federation, tiny_config):
    h = run_federation(FedAvg(), toy_federation, tiny_config, progress=False)
    curve = h.to_dataframe("curve")
    assert set(curve["round"]) == {0, 1, 2, 3}
    assert set(curve["split"]) == {"val", "test"}
    final = h.final()
    assert list(final.columns) == ["assd", "dice", "hd95", "iou"] or set(final.columns) == {"assd", "dice", "hd95",
                                                                                              "iou"}
    assert final.loc["avg", "dice"] == pytest.approx(final.drop("avg")["dice"].mean())
    assert ((final[["dice", "iou"]] >= 0) & (final[["dice", "iou"]] <= 1)).all().all()


def test_validation_selection_keeps_best_val_round(toy_federation, tiny_config):
    h = run_federation(Local(), toy_federation, tiny_config, select="val", progress=False)
    curve = h.to_dataframe("curve")
    for site in toy_federation.site_names:
        val = curve[(curve.site == site) & (curve.split == "val")].set_index("round")["value"]
        best_round = int(val.idxmax())  # first round reaching the max, as the engine keeps the first
        assert h.selected_round[site] == best_round


class _CrashError(RuntimeError):
    pass


def _crashing_fedavg(crash_round: int) -> FedAvg:
    """FedAvg that dies in the middle of a given round (simulates a killed job)."""
    strategy = FedAvg()
    aggregate = strategy.aggregate

    def crash(round, replies, state):
        if round == crash_round:
            raise _CrashError(f"killed in round {round}")
        return aggregate(round, replies, state)

    strategy.aggregate = crash
    return strategy


def test_checkpoint_resume_after_crash_gives_identical_history(toy_federation, tiny_config, tmp_path):
    cfg = tiny_config.replace(rounds=5, checkpoint_every=2, eval_every=2)
    uninterrupted = run_federation(FedAvg(), toy_federation, cfg, progress=False)
    with pytest.raises(_CrashError):
        run_federation(_crashing_fedavg(crash_round=4), toy_federation, cfg, checkpoint_dir=tmp_path,
                       progress=False)
    assert (tmp_path / "checkpoint.pt").exists()
    resumed = run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
    assert resumed.to_dataframe().equals(uninterrupted.to_dataframe())
    assert [r["train_loss"] for r in resumed.ledger] == [r["train_loss"] for r in uninterrupted.ledger]
    assert _equal_states(resumed.site_models[0].state_dict(), uninterrupted.site_models[0].state_dict())


def test_same_seed_same_result_different_seed_different(toy_federation, tiny_config):
    a = run_federation(FedAvg(), toy_federation, tiny_config, seed=1, progress=False).to_dataframe()
    b = run_federation(FedAvg(), toy_federation, tiny_config, seed=1, progress=False).to_dataframe()
    c = run_federation(FedAvg(), toy_federation, tiny_config, seed=2, progress=False).to_dataframe()
    assert a.equals(b)
    assert not a["value"].equals(c["value"])


def test_fedrep_phases_touch_only_their_parameters(toy_federation, tiny_config):
    strategy = FedRep()
    # several head steps: Adam's first step is sign(grad) * lr, which can coincide across sites
    h = run_federation(strategy, toy_federation, tiny_config.replace(local_steps=5, head_steps=3), rounds=2,
                       progress=False, select="last")
    assert h.total_bytes > 0
    heads = [m.head.weight for m in h.site_models]
    assert not torch.equal(heads[0], heads[1])  # personal heads differ
    bodies = [m.encoder[0][0].conv.weight for m in h.site_models]
    assert torch.equal(bodies[0], bodies[1])  # shared body is the average


def test_unknown_strategy_and_bad_select(toy_federation, tiny_config):
    with pytest.raises(ValueError, match="Unknown strategy 'FedFoo'"):
        get_strategy("FedFoo")
    with pytest.raises(ValueError, match="select must be"):
        run_federation(Strategy(), toy_federation, tiny_config, select="test", progress=False)
    with pytest.raises(ValueError, match="weighting"):
        FedAvg(weighting="size")


def test_every_strategy_can_be_rebuilt_from_its_registry_name_and_init_kwargs():
    """What a Flower node does: the same strategy from (registry name, JSON-able constructor arguments)."""
    import json

    from fedlab.federation.strategies import STRATEGIES, LCFed

    for name, cls in STRATEGIES.items():
        strategy = cls()
        kwargs = json.loads(json.dumps(strategy.init_kwargs()))
        assert get_strategy(name, **kwargs).describe() == strategy.describe(), name
    ablation = LCFed(alpha=0.0, use_hc=False, name="+ PCS")
    rebuilt = LCFed(**json.loads(json.dumps(ablation.init_kwargs())))
    assert rebuilt.describe() == ablation.describe() and rebuilt.name == "+ PCS"


def test_the_network_needs_only_the_federation_spec(toy_federation, tiny_config):
    """A Flower node or server knows the federation's spec, not the other sites' data: same round-0 network."""
    from fedlab.federation.simulation import build_network
    from fedlab.federation.strategies import FedBN, LCFed

    for strategy in (FedAvg(), FedBN(), LCFed()):
        a = build_network(strategy, toy_federation, tiny_config, seed=3)
        b = build_network(strategy, toy_federation.spec(), tiny_config, seed=3)
        assert _equal_states(a.state_dict(), b.state_dict())
    spec = toy_federation.spec()
    assert type(spec).from_dict(spec.to_dict()) == spec and len(spec) == 3 and spec.image_size == 16
