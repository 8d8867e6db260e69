"""Runs that survive a kill: every strategy resumes bit for bit; checkpoints are safe and refuse other runs."""

from __future__ import annotations

import pytest
import torch

from fedlab.federation.checkpoint import CHECKPOINT_NAME, CheckpointError
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import STRATEGIES, FedAvg, LCFed, get_strategy


class KilledError(RuntimeError):
    """The simulated kill (a laptop lid, a pre-empted job)."""


def _kill(strategy, *, round: int | None = None, in_finish: bool = False):
    """Make ``strategy`` die during aggregation of ``round`` (after the previous round's checkpoint), or in
    its end-of-run site work."""
    if round is not None:
        original = strategy.aggregate

        def aggregate(r, replies, state):
            if r == round:
                raise KilledError(f"killed in round {r}")
            return original(r, replies, state)

        strategy.aggregate = aggregate
    if in_finish:
        def finish_client(client):
            raise KilledError("killed in finish")

        strategy.finish_client = finish_client
    return strategy


def _signature(history):
    ledger = [{k: v for k, v in row.items() if k != "seconds"} for row in history.ledger]
    weights = [m.state_dict() for m in history.site_models]
    return history.to_dataframe(), ledger, history.selected_round, weights


def _assert_same(a, b):
    rows_a, ledger_a, selected_a, weights_a = _signature(a)
    rows_b, ledger_b, selected_b, weights_b = _signature(b)
    assert rows_a.equals(rows_b)
    assert ledger_a == ledger_b
    assert selected_a == selected_b
    for wa, wb in zip(weights_a, weights_b, strict=True):
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


#: (strategy factory, kill points); a kill point is a round (die while aggregating it) or "finish".
#: LC-Fed with head calibration has two stages: rounds 1-2 train the backbone, 3-4 calibrate.
CASES = {name: (lambda n=name: get_strategy(n), [3]) for name in STRATEGIES}
CASES["FT"] = (lambda: get_strategy("FT"), [3, "finish"])
CASES["LC-Fed"] = (lambda: LCFed(hc_rounds=2), [2, 4])
CASES["LC-Fed (frozen HC)"] = (lambda: LCFed(hc_rounds=2, hc_stage="frozen"), [2, 4])
CASES["LC-Fed (no HC)"] = (lambda: LCFed(use_hc=False), [3])


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_and_resume_gives_the_uninterrupted_run(name, toy_federation, tiny_config, tmp_path):
    make, kills = CASES[name]
    for module in getattr(type(make()), "requires", ()):  # e.g. DP-FedAvg needs the optional extra "privacy"
        pytest.importorskip(module)
    cfg = tiny_config.replace(rounds=4, checkpoint_every=1, eval_every=1, finetune_steps=2)
    full = run_federation(make(), toy_federation, cfg, progress=False)
    for kill in kills:
        folder = tmp_path / str(kill)
        doomed = _kill(make(), round=None if kill == "finish" else kill, in_finish=kill == "finish")
        with pytest.raises(KilledError):
            run_federation(doomed, toy_federation, cfg, checkpoint_dir=folder, progress=False)
        assert (folder / CHECKPOINT_NAME).exists()
        resumed = run_federation(make(), toy_federation, cfg, checkpoint_dir=folder, progress=False)
        _assert_same(resumed, full)


def test_a_checkpoint_of_another_run_is_refused_with_what_differs(toy_federation, tiny_config, tmp_path):
    cfg = tiny_config.replace(rounds=2, checkpoint_every=1)
    run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"strategy \(.*name: 'FedAvg' -> 'FedProx'"):
        run_federation(get_strategy("FedProx"), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"preset / settings \(lr: 0.001 -> 0.01\)"):
        run_federation(FedAvg(), toy_federation, cfg.replace(lr=0.01), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="seed"):
        run_federation(FedAvg(), toy_federation, cfg, seed=5, checkpoint_dir=tmp_path, progress=False)
    fewer = type(toy_federation)("toy", toy_federation.sites[:2])
    with pytest.raises(CheckpointError, match=r"federation \(data\)"):
        run_federation(FedAvg(), fewer, cfg, checkpoint_dir=tmp_path, progress=False)
    # a different checkpoint_every is not a different run
    run_federation(FedAvg(), toy_federation, cfg.replace(checkpoint_every=2), checkpoint_dir=tmp_path, progress=False)


def test_another_fedlab_version_is_refused(toy_federation, tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config.replace(rounds=1, checkpoint_every=1)
    run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr("fedlab.__version__", "99.0")
    with pytest.raises(CheckpointError, match=r"fedlab version \('.*' -> '99.0'\)"):
        run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)


class Payload:
    """Any Python object: unpickling it could run code (its class's __reduce__ decides)."""


def test_a_checkpoint_carrying_a_pickled_object_is_rejected(toy_federation, tiny_config, tmp_path):
    cfg = tiny_config.replace(rounds=1, checkpoint_every=1)
    run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    state["extra"] = Payload()
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="not loaded"):
        run_federation(FedAvg(), toy_federation, cfg, checkpoint_dir=tmp_path, progress=False)
