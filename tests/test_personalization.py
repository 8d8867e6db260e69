"""Personalised strategies: what stays local stays bit-identical, phases train what they say, FT's start."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fedlab.config import get_config
from fedlab.data.federation import Federation, Site, Split
from fedlab.federation.evaluation import evaluate
from fedlab.federation.simulation import deliver, initial_model, run_federation, run_round, setup_run
from fedlab.federation.strategies import PRRFL, STRATEGIES, FedAvg, FedBN, FedRep, FineTune, get_strategy
from fedlab.federation.strategies.prrfl import bernoulli_kl, next_stage
from fedlab.models.unet import UNet

CFG = get_config("smoke", image_size=16, base_width=4, levels=2, rounds=2, local_steps=4, head_steps=1,
                 batch_size=4, eval_every=1, finetune_steps=6)


def _split(gen: torch.Generator, n: int, shift: float) -> Split:
    x = torch.rand(n, 1, 16, 16, generator=gen) * 0.3 + shift
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    centres = torch.randint(5, 11, (n, 2), generator=gen).float()
    y = (((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2) < 9).float()[:, None]
    return Split(x + y * 0.5, y)


def make_toy(num_sites: int = 3, seed: int = 0) -> Federation:
    """Small sites with bright discs on noisy backgrounds of different brightness (a feature shift)."""
    gen = torch.Generator().manual_seed(seed)
    sites = [Site(f"s{k}", _split(gen, 8, 0.2 * k), _split(gen, 4, 0.2 * k), _split(gen, 4, 0.2 * k))
             for k in range(num_sites)]
    return Federation("toy", sites, synthetic=True)


def setup_strategy(strategy, fed, model):
    """Clients and the initial server state, exactly as run_federation builds them."""
    _, clients, state = setup_run(strategy, fed, CFG, rounds=CFG.rounds, model=model)
    return clients, state


def local_tensors(strategy, clients):
    return [{k: c.model.state_dict()[k].clone() for k in strategy.split.local} for c in clients]


def one_round(strategy, clients, state, rnd):
    """run_federation's round plus the end-of-round delivery; returns (state, local tensors after training)."""
    trained = {}

    original = strategy.client_update

    def update(client, message, r):
        reply = original(client, message, r)
        trained[client.index] = {k: client.model.state_dict()[k].clone() for k in strategy.split.local}
        return reply

    strategy.client_update = update
    try:
        state, _, _ = run_round(strategy, clients, state, rnd)
    finally:
        del strategy.client_update
    deliver(strategy, clients, strategy.configure_evaluate(rnd, state, [c.index for c in clients]))
    return state, [trained[c.index] for c in clients]


def test_registry_has_every_row_of_the_paper_table():
    for name in ("Local", "FedAvg", "FT", "PRR-FL", "FedBN", "FedRep", "FedPer"):
        assert get_strategy(name).name == name


def test_fedbn_keeps_local_tensors_bit_identical_and_fedavg_does_not():
    fed = make_toy()
    bn_model = FedBN().model_factory(fed, CFG)()
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn_model.modules())
    strategy = FedBN()
    clients, state = setup_strategy(strategy, fed, bn_model)
    norm_keys = {k for k in strategy.split.local if "num_batches" not in k}
    assert norm_keys and all(k.endswith(("weight", "bias", "running_mean", "running_var")) for k in norm_keys)
    for rnd in (1, 2):
        state, trained = one_round(strategy, clients, state, rnd)
        after = local_tensors(strategy, clients)
        for before_k, after_k in zip(trained, after, strict=True):
            for key in before_k:
                assert torch.equal(before_k[key], after_k[key]), key
        shared = [strategy.split.shared_state(c.model.state_dict()) for c in clients]
        for key in strategy.split.shared:
            assert torch.equal(shared[0][key], shared[1][key])
    # the same local keys under FedAvg on the same model: aggregation overwrites them
    fedavg = FedAvg()
    clients, state = setup_strategy(fedavg, fed, bn_model)
    state, _, _ = run_round(fedavg, clients, state, 1)
    trained = [{k: c.model.state_dict()[k].clone() for k in norm_keys} for c in clients]
    deliver(fedavg, clients, fedavg.configure_evaluate(1, state, [0, 1, 2]))
    changed = [not torch.equal(trained[i][k], clients[i].model.state_dict()[k]) for i in range(3) for k in norm_keys]
    assert any(changed)


def test_fedbn_rejects_a_model_without_batchnorm_and_builds_one_itself():
    fed = make_toy()
    with pytest.raises(ValueError, match="norm='batch'"):
        FedBN().param_split(UNet(1, 1, 4, 2, norm="instance"))
    # select="last": the trained models, whatever round 0 scores on validation (it may be kept at every site)
    history = run_federation(FedBN(), fed, CFG, rounds=1, progress=False, final_metrics=("dice",), select="last")
    assert any(isinstance(m, nn.BatchNorm2d) for m in history.site_models[0].modules())
    # personalised: the sites' kept models differ in their normalisation layers
    a, b = (dict(m.named_buffers()) for m in history.site_models[:2])
    assert any(not torch.equal(a[k], b[k]) for k in a if "running_mean" in k)


def test_fedrep_head_phase_keeps_body_and_body_phase_keeps_head():
    fed = make_toy()
    strategy = FedRep()
    clients, state = setup_strategy(strategy, fed, UNet(1, 1, 4, 2))
    client = clients[0]
    head_keys = {f"head.{k}" for k in client.model.head.state_dict()}
    snapshots = []
    real_train = client.train

    def recording_train(steps, params=None, **kw):
        before = copy.deepcopy(client.model.state_dict())
        loss = real_train(steps, params=params, **kw)
        snapshots.append((before, copy.deepcopy(client.model.state_dict())))
        return loss

    client.train = recording_train
    strategy.client_update(client, strategy.configure(1, state, [0])[0], 1)
    assert len(snapshots) == 2
    (h0, h1), (b0, b1) = snapshots
    for key in h0:
        if key in head_keys:
            assert not torch.equal(h0[key], h1[key]), f"head phase did not train {key}"
            assert torch.equal(b0[key], b1[key]), f"body phase changed head tensor {key}"
        else:
            assert torch.equal(h0[key], h1[key]), f"head phase changed body tensor {key}"
    assert any(not torch.equal(b0[k], b1[k]) for k in h0 if k not in head_keys)
    assert set(strategy.split.local) == head_keys


class RecordingFT(FineTune):
    def finetune_client(self, client):
        self.starts = getattr(self, "starts", []) + [copy.deepcopy(client.model.state_dict())]
        return super().finetune_client(client)


def test_ft_starts_from_exactly_the_fedavg_global_model_and_keeps_its_best_validation_model():
    fed = make_toy()
    fedavg = run_federation(FedAvg(), fed, CFG, seed=3, select="last", progress=False, final_metrics=("dice",))
    ft = RecordingFT(eval_every=2)
    history = run_federation(ft, fed, CFG, seed=3, progress=False, final_metrics=("dice",))
    for start, model in zip(ft.starts, fedavg.site_models, strict=True):
        for key, tensor in model.state_dict().items():
            assert torch.equal(start[key], tensor), key
    record = history.info["finish"]["finetune"]
    for k, site in enumerate(fed):
        kept = history.site_models[k]
        val = evaluate(kept, site.val, "segmentation", ("dice",))["dice"]
        assert val == pytest.approx(record[site.name]["val_score"])
        start_model = copy.deepcopy(kept)
        start_model.load_state_dict(ft.starts[k])
        assert val >= evaluate(start_model, site.val, "segmentation", ("dice",))["dice"]
        assert record[site.name]["best_step"] in (0, 2, 4, 6)


def test_bernoulli_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 1, 4, 4, generator=gen), torch.randn(2, 1, 4, 4, generator=gen)
    expected = torch.distributions.kl_divergence(torch.distributions.Bernoulli(logits=t),
                                                 torch.distributions.Bernoulli(logits=s)).mean()
    torch.testing.assert_close(bernoulli_kl(s, t), expected)
    assert bernoulli_kl(t, t).abs() < 1e-6


@pytest.mark.parametrize(("stage", "deputy", "expected"), [
    (0, 1.0, 1), (1, 0.5, 1), (1, 0.8, 2), (2, 0.8, 2), (2, 0.95, 3), (3, 0.95, 3), (3, 0.6, 1)])
def test_det_stage_rule(stage, deputy, expected):
    assert next_stage(stage, deputy, 1.0, alpha1=0.7, alpha2=0.9) == expected


@pytest.mark.parametrize("num_sites", [1, 2, 3])
def test_prrfl_runs_for_any_number_of_sites(num_sites):
    fed = make_toy(num_sites)
    strategy = PRRFL(phases=2)
    history = run_federation(strategy, fed, CFG, progress=False, final_metrics=("dice",), select="last")
    counts = history.info["finish"]["stage_counts"]
    assert sum(counts.values()) == CFG.rounds * num_sites * 2
    assert counts["recover"] >= CFG.rounds * num_sites  # every round starts by recovering
    final = history.final()
    assert final.loc["avg", "dice"] >= 0 and len(final) == num_sites + 1
    # the personal model (served) and the deputy (federated) are different networks
    _, clients, state = setup_run(strategy, fed, CFG, rounds=CFG.rounds)
    for rnd in range(1, CFG.rounds + 1):
        state, _, _ = run_round(strategy, clients, state, rnd)
    personal, deputy = clients[0].model, clients[0].private["deputy"]
    assert any(not torch.equal(a, b) for a, b in zip(personal.state_dict().values(),
                                                      deputy.state_dict().values(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(personal.state_dict().values(),  # and the run is reproducible
                                                  history.site_models[0].state_dict().values(), strict=True))


def test_prrfl_deputies_receive_fourier_mixed_states_and_personal_models_nothing():
    fed = make_toy(3)
    strategy = PRRFL(phases=1)
    clients, state = setup_strategy(strategy, fed, initial_model(fed, CFG, 0))
    state, replies, _ = run_round(strategy, clients, state, 1)
    personal = [copy.deepcopy(c.model.state_dict()) for c in clients]
    messages = strategy.configure(2, state, [0, 1, 2])  # round 2 sends each deputy its mixed state
    assert sum(m.nbytes for m in messages.values()) == sum(r.message.nbytes for r in replies)
    for c in clients:
        strategy.receive(c, messages[c.index])
    for c, before in zip(clients, personal, strict=True):
        assert all(torch.equal(before[k], v) for k, v in c.model.state_dict().items())
    d0, d1 = (c.private["deputy"].state_dict() for c in clients[:2])
    conv = next(k for k, v in d0.items() if v.ndim == 4)
    assert not torch.equal(d0[conv], d1[conv])  # personalised: each keeps its phase
    a0, a1 = (torch.fft.fftn(d[conv].movedim(0, -1).reshape(-1, d[conv].shape[-1] * d[conv].shape[0])).abs()
              for d in (d0, d1))
    assert torch.allclose(a0[0, 0], a1[0, 0], atol=1e-5)  # the zero frequency is shared


def test_local_shares_nothing():
    model = UNet(1, 1, 4, 2, norm="batch")
    split = STRATEGIES["Local"]().param_split(model)
    assert split.shared == () and len(split.local) == len(model.state_dict())


def _history(method, sites, values):
    from fedlab.federation.history import History

    h = History(method=method, sites=list(sites))
    for site, (iou, assd) in zip(sites, values, strict=True):
        h.record(site, "iou", iou, "test", 1, stage="final")
        h.record(site, "assd", assd, "test", 1, stage="final")
    return h


def test_paper_table_layout_and_averages():
    from fedlab.experiments.lcfed import paper_table

    hs = {"Local": _history("Local", ["x", "y"], [(0.5, 2.0), (0.7, 4.0)]),
          "FedAvg": _history("FedAvg", ["x", "y"], [(0.6, 1.0), (0.8, 3.0)])}
    table = paper_table(hs)
    assert list(table.index) == ["Local Train", "FedAvg"]
    assert list(table.columns) == [("IoU (%)", "A"), ("IoU (%)", "B"), ("IoU (%)", "avg"),
                                   ("ASSD (px)", "A"), ("ASSD (px)", "B"), ("ASSD (px)", "avg")]
    assert table.loc["Local Train", ("IoU (%)", "avg")] == pytest.approx(60.0)
    assert table.loc["FedAvg", ("ASSD (px)", "B")] == pytest.approx(3.0)
    assert table.attrs["sites"] == {"A": "x", "B": "y"}
    with pytest.raises(ValueError, match="unknown metric"):
        paper_table(hs, metrics=("f1",))


def test_reference_table_absent_is_none_and_present_is_parsed(tmp_path):
    from fedlab.experiments.lcfed import reference_table, side_by_side

    assert reference_table("prostate", path=tmp_path / "missing.csv") is None
    ref = reference_table("polyp")  # the packaged copy
    assert list(ref.columns.get_level_values("site").unique()) == ["A", "B", "C", "D", "avg"]
    # the published average is the mean of the published sites (to the printed rounding)
    iou = ref["IoU (%)"]
    assert (iou[["A", "B", "C", "D"]].mean(axis=1) - iou["avg"]).abs().max() < 0.02
    both = side_by_side(ref.loc[["FedAvg"]], ref)
    assert ("FedAvg", "paper (real data)") in both.index
    assert reference_table("mnist") is None  # a dataset the paper does not report: no paper numbers, no error
