"""LC-Fed: PCS and head calibration against hand-written formulas, and the strategy's invariants."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import toy_split

from fedlab.data.federation import Federation, Site, Split
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import state_bytes
from fedlab.federation.simulation import deliver, run_federation, setup_run
from fedlab.federation.strategies import STRATEGIES, get_strategy
from fedlab.federation.strategies.lcfed import ABLATIONS, LCFed, calibration_loss, joint_calibration_loss, lcfed_loss
from fedlab.models import (
    HeadCalibration,
    LCFedNet,
    LCFedSiteModel,
    PersonalizedChannelSelection,
    UNet,
    gate_spread,
    site_code,
)
from fedlab.models.hc import calibration_geometry, disagreement_map, disagreement_peaks, peak_gaussian_1d
from fedlab.models.pcs import contrastive_site_loss


def make_net(num_sites=3, labels=1, hc=True, use_pcs=True, seed=0, image_size=16):
    torch.manual_seed(seed)
    unet = UNet(1, labels, base_width=4, levels=2)
    calib = HeadCalibration(labels, unet.feature_channels, image_size=image_size) if hc else None
    return LCFedNet(unet, num_sites, use_pcs=use_pcs, calibration=calib)


def pcs_keys(net):
    return [k for k in net.state_dict() if k.startswith("pcs.")]


# --- PCS -------------------------------------------------------------------------------------------
def test_pcs_gate_equals_the_written_formula():
    torch.manual_seed(1)
    pcs = PersonalizedChannelSelection(channels=32, num_sites=4)
    x = torch.randn(2, 32, 5, 6)
    code = site_code(torch.tensor([1, 3]), 4, 2)
    out, gate = pcs(x, code)
    e1, e2 = pcs.embed[0].weight, pcs.embed[2].weight  # (C, K), (C, C)
    s1, s2 = pcs.score[0].weight, pcs.score[2].weight  # (C/16, 2C), (C, C/16)
    e = torch.relu(code @ e1.T) @ e2.T
    score = lambda pooled: torch.relu(torch.cat([pooled, e], 1) @ s1.T) @ s2.T  # noqa: E731
    m = torch.sigmoid(score(x.mean((2, 3))) + score(x.amax((2, 3))))[:, :, None, None]
    torch.testing.assert_close(gate, m)
    torch.testing.assert_close(out, x * m + x)
    assert s1.shape == (16, 64)  # 2C -> max(16, C/16): the paper's 16 hidden units at every width
    assert PersonalizedChannelSelection(channels=512, num_sites=4).score[0].weight.shape == (32, 1024)  # C/16


def test_pcs_is_registered_trained_saved_and_shared():
    net = make_net()
    keys = pcs_keys(net)
    assert keys, "PCS weights must be in state_dict"
    x = torch.rand(2, 1, 16, 16)
    y = (x > 0.5).float()
    lcfed_loss(0, alpha=0.1)(net, x, y).backward()
    for name, p in net.pcs.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"pcs.{name} received no gradient"
    split = LCFed().param_split(net)
    assert set(keys) <= set(split.shared)
    # saved: a fresh network that loads the state_dict gives the same output (no re-randomised PCS)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    other = make_net(seed=123)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other(x, 2), net(x, 2))


def test_pcs_weights_are_averaged_by_the_server(toy_federation, tiny_config):
    strategy = LCFed(use_hc=False)
    _, clients, state = setup_run(strategy, toy_federation, tiny_config, rounds=tiny_config.rounds,
                                  model=UNet(1, 1, base_width=4, levels=2))
    for k, c in enumerate(clients):  # give each site different PCS weights
        with torch.no_grad():
            for p in c.model.pcs.parameters():
                p.add_(float(k + 1))
    replies = [Reply(c.index, Message(strategy.split.shared_state(c.model.state_dict())), 1.0, torch.zeros(()))
               for c in clients]
    before = [{k: v.clone() for k, v in c.model.state_dict().items()} for c in clients]
    state = strategy.aggregate(1, replies, state)
    deliver(strategy, clients, strategy.configure_evaluate(1, state, [c.index for c in clients]))
    for key in pcs_keys(clients[0].model):
        expected = sum(b[key] for b in before) / len(before)
        for c in clients:
            torch.testing.assert_close(c.model.state_dict()[key], expected)
    for c, b in zip(clients, before, strict=True):  # the head stays local
        torch.testing.assert_close(c.model.state_dict()["unet.head.weight"], b["unet.head.weight"])


def test_contrastive_loss_is_minus_mean_mse():
    g = torch.rand(2, 8, 1, 1, requires_grad=True)
    others = [torch.rand(2, 8, 1, 1) for _ in range(3)]
    expected = -sum(((g - o) ** 2).mean() for o in others) / 3
    torch.testing.assert_close(contrastive_site_loss(g, others), expected)
    contrastive_site_loss(g, others).backward()
    assert g.grad is not None
    with pytest.raises(ValueError, match="at least one other site"):
        contrastive_site_loss(g, [])


def spread_of(net, x):
    """Mean squared distance between the gates of the two site codes."""
    with torch.no_grad():
        gates = net.site_gates(net.unet.encode(x)[-1])
    return float(((gates[0] - gates[1]) ** 2).mean())


def test_gate_spread_is_mean_pairwise_mse():
    g = torch.rand(3, 5)
    pairs = [((g[i] - g[j]) ** 2).mean() for i, j in ((0, 1), (0, 2), (1, 2))]
    torch.testing.assert_close(gate_spread(g), sum(pairs) / 3)
    net = make_net(hc=False)
    x = torch.rand(4, 1, 16, 16)
    means = net.mean_site_gates(x)
    assert means.shape == (3, net.unet.bottleneck_channels)
    torch.testing.assert_close(means[1], net.forward_all(x, 1).gate.mean(0).flatten().detach())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrast_pushes_site_gates_apart(seed):
    # 16 alternating steps: with 8 the effect was within seed noise (ratio 1.2-2.6 over seeds 0-5).
    g = torch.Generator().manual_seed(seed)
    data = [toy_split(8, 0.4 + 0.2 * k, g) for k in range(2)]
    x = torch.cat([d.x for d in data])
    init = make_net(num_sites=2, hc=False, seed=seed)
    spread = {}
    for alpha in (0.0, 0.5):
        net = copy.deepcopy(init)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(16):
            for k, d in enumerate(data):
                opt.zero_grad()
                lcfed_loss(k, alpha)(net, d.x, d.y).backward()
                opt.step()
        spread[alpha] = spread_of(net, x)
    assert spread[0.5] > 1.5 * spread[0.0]
    assert spread[0.5] > spread_of(init, x)


def test_site_code_rejects_unknown_site():
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        site_code(3, 3, 2)
    with pytest.raises(ValueError, match="outside"):
        site_code(torch.tensor([0, 5]), 3, 2)
    torch.testing.assert_close(site_code(1, 3, 2), torch.tensor([[0.0, 1, 0], [0, 1, 0]]))


# --- HC --------------------------------------------------------------------------------------------
def test_geometry_and_kernel_match_the_paper_at_384():
    assert calibration_geometry(384) == (31, 6.0)
    assert calibration_geometry(64) == (5, 1.0)
    window, sigma = calibration_geometry(384)
    k = peak_gaussian_1d(window, sigma)
    d = torch.arange(window) - window // 2
    torch.testing.assert_close(k, torch.exp(-(d.float() ** 2) / (2 * sigma**2)))  # peak exactly 1
    kernel2d = torch.outer(k, k)
    assert float(kernel2d.max()) == 1.0
    hc = HeadCalibration(1, 4, image_size=384)
    impulse = torch.zeros(1, 1, 61, 61)
    impulse[0, 0, 30, 30] = 1
    torch.testing.assert_close(hc.blur(impulse)[0, 0, 15:46, 15:46], kernel2d)


def test_disagreement_map_formula_and_zero_for_equal_heads():
    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.random((4, 2, 2, 8, 8)), dtype=torch.float32)
    u = disagreement_map(probs, site=1)
    raw = np.sqrt(((probs.numpy() - probs.numpy()[1]) ** 2).sum(0) / 3)
    expected = raw / (raw.max(axis=(2, 3), keepdims=True) + 1e-8)
    np.testing.assert_allclose(u.numpy(), expected, rtol=1e-5, atol=1e-6)
    same = probs[:1].expand(4, -1, -1, -1, -1)
    u0 = disagreement_map(same, site=2)
    assert torch.equal(u0, torch.zeros_like(u0))
    assert disagreement_peaks(u0, window=3).sum() == 0
    with pytest.raises(ValueError, match="at least 2 sites"):
        disagreement_map(probs[:1], site=0)


def test_peaks_are_thresholded_local_maxima():
    u = torch.zeros(1, 1, 20, 20)
    u[0, 0, 5, 5], u[0, 0, 5, 7] = 1.0, 0.9  # 0.9 is dominated by 1.0 within a 5-window
    u[0, 0, 15, 15] = 0.5  # a separate peak
    u[0, 0, 15, 2] = 0.1  # below the threshold
    peaks = disagreement_peaks(u, window=5, threshold=0.2)
    assert peaks.nonzero().tolist() == [[0, 0, 5, 5], [0, 0, 15, 15]]


@pytest.mark.parametrize("labels", [1, 2])
def test_hc_output_shapes(labels):
    net = make_net(num_sites=3, labels=labels)
    heads = [copy.deepcopy(net.head) for _ in range(3)]
    model = LCFedSiteModel(net, 1, heads, calibrated=True)
    x = torch.rand(2, 1, 16, 16)
    logits, maps = model.calibrate(x, return_maps=True)
    assert logits.shape == (2, labels, 16, 16)
    assert maps["head_probs"].shape == (3, 2, labels, 16, 16)
    for name in ("disagreement", "peaks", "attention_disagreement", "attention_prediction", "before"):
        assert maps[name].shape == (2, labels, 16, 16), name
    assert model(x).shape == (2, labels, 16, 16)


def test_calibration_trains_only_the_hc_conv():
    net = make_net()
    model = LCFedSiteModel(net, 0, [copy.deepcopy(net.head) for _ in range(3)], calibrated=True)
    x = torch.rand(2, 1, 16, 16)
    model(x).sum().backward()
    assert all(p.grad is not None for p in net.hc.parameters())
    assert all(p.grad is None for n, p in net.named_parameters() if not n.startswith("hc."))


def test_calibration_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    unet = UNet(1, 1, base_width=4, levels=2, norm="batch")
    net = LCFedNet(unet, 2, calibration=HeadCalibration(1, unet.feature_channels, image_size=16)).train()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    model = LCFedSiteModel(net, 0, [copy.deepcopy(net.head) for _ in range(2)], calibrated=True)
    model.calibrate(torch.rand(3, 1, 16, 16)).sum().backward()
    assert before and all(torch.equal(net.state_dict()[k], v) for k, v in before.items())
    assert net.training


def test_split_keeps_head_and_hc_local():
    net = make_net()
    split = LCFed().param_split(net)
    head_and_hc = {f"unet.head.{k}" for k in net.head.state_dict()} | {f"hc.{k}" for k in net.hc.state_dict()}
    assert set(split.local) == head_and_hc
    assert not set(split.shared) & head_and_hc
    split.check_covers(net.state_dict().keys())


# --- strategy --------------------------------------------------------------------------------------
def test_registry_ablations_and_bad_options():
    assert STRATEGIES["LC-Fed"] is LCFed
    names = {LCFed(**kw).name for kw in ABLATIONS.values()}
    assert len(names) == len(ABLATIONS) and "LC-Fed" in names
    with pytest.raises(ValueError, match="needs use_pcs=True"):
        LCFed(alpha=0.1, use_pcs=False)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        get_strategy("LC-Fed", alpha=-1.0)
    with pytest.raises(ValueError, match="hc_stage must be one of"):
        LCFed(hc_stage="late")
    assert LCFed().hc_stage == "joint" and LCFed(hc_stage="frozen").name == "LC-Fed (frozen HC)"
    assert LCFed(use_hc=False, hc_stage="frozen").name == LCFed(use_hc=False).name  # no calibration stage to name


class SpyLCFed(LCFed):
    """LC-Fed that records every site's network whenever the sites are scored (after each round's delivery)."""

    snapshots: list

    def site_models(self, clients):
        self.snapshots = getattr(self, "snapshots", []) + [
            [{k: v.clone() for k, v in c.model.state_dict().items()} for c in clients]]
        return super().site_models(clients)


def test_backbone_ablation_is_fedrep(toy_federation, tiny_config):
    """Without PCS, contrast and HC, LC-Fed's schedule and split are exactly FedRep's."""
    cfg = tiny_config.replace(rounds=2)
    ours = run_federation(LCFed(**ABLATIONS["FedRep-style backbone"]), toy_federation, cfg, progress=False)
    ref = run_federation(get_strategy("FedRep"), toy_federation, cfg, progress=False)
    a, b = ours.to_dataframe(), ref.to_dataframe()
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy(), rtol=1e-5, atol=1e-6)
    assert ours.ledger_dataframe()["bytes_up"].tolist() == ref.ledger_dataframe()["bytes_up"].tolist()


def _ledger_and_sizes(history, strategy):
    """The run's ledger, the number of sites and the bytes of one site's shared part and of one head."""
    net = history.site_models[0].net
    return (history.ledger_dataframe(), len(history.site_models),
            state_bytes(strategy.split.shared_state(net.state_dict())), state_bytes(net.head.state_dict()))


def test_frozen_stage_trains_only_the_calibration_module(toy_federation, tiny_config):
    """hc_stage="frozen". Round 1: backbone (FedRep schedule + PCS). Round 2: head exchange + HC training, U-Net
    frozen."""
    cfg = tiny_config.replace(rounds=2, hc_rounds=1)
    strategy = SpyLCFed(hc_stage="frozen")
    history = run_federation(strategy, toy_federation, cfg, progress=False, select="last")

    ledger, k, shared, head = _ledger_and_sizes(history, strategy)
    assert ledger["bytes_up"].tolist() == [k * (shared + head), 0]  # round 1 sends the heads, stage 1 nothing
    assert ledger["bytes_down"].tolist() == [k * shared, k * shared + k * (k - 1) * head]
    _, r1, r2, _ = strategy.snapshots  # round 0, 1, 2, final
    assert strategy.backbone_rounds == 1
    for site in range(k):  # stage 1 changed the calibration module and nothing else
        changed = {key for key in r1[site] if not torch.equal(r1[site][key], r2[site][key])}
        assert changed == {key for key in r1[site] if key.startswith("hc.")}
    assert all(bool(m.calibrated) for m in history.site_models)
    final = history.final()
    assert np.isfinite(final[["dice", "iou"]].to_numpy()).all()


def test_joint_stage_keeps_training_body_and_head_on_the_calibrated_loss(toy_federation, tiny_config):
    """hc_stage="joint" (the default, the authors' train_hc.py): in stage 1 the body is still trained and averaged,
    the head and the calibration module trained, and the heads travel every round."""
    cfg = tiny_config.replace(rounds=3, hc_rounds=2)
    strategy = SpyLCFed()
    assert strategy.name == "LC-Fed" and strategy.hc_stage == "joint"
    history = run_federation(strategy, toy_federation, cfg, progress=False, select="last")
    ledger, k, shared, head = _ledger_and_sizes(history, strategy)
    assert ledger["bytes_up"].tolist() == [k * (shared + head)] * 3  # body and head, every round
    assert ledger["bytes_down"].tolist() == [k * shared] + [k * shared + k * (k - 1) * head] * 2
    _, r1, r2, r3, _ = strategy.snapshots
    shared_keys = set(strategy.split.shared)
    for before, after in ((r1, r2), (r2, r3)):
        for site in range(k):
            changed = {key for key in before[site] if not torch.equal(before[site][key], after[site][key])}
            assert {key for key in changed if key.startswith("hc.")}, "the calibration module trains"
            assert {key for key in changed if key.startswith("unet.head.")}, "the head trains"
            assert changed & shared_keys, "the body trains"
        for key in shared_keys:  # ... and is averaged: every site holds the same body after delivery
            assert all(torch.equal(after[0][key], after[site][key]) for site in range(k))
    assert all(bool(m.calibrated) for m in history.site_models)
    assert np.isfinite(history.final()[["dice", "iou"]].to_numpy()).all()


def test_joint_loss_is_the_calibrated_dice_with_gradient_through_the_unet():
    torch.manual_seed(0)
    net = make_net(num_sites=3)
    heads = [copy.deepcopy(net.head) for _ in range(3)]
    for h in heads[1:]:
        torch.nn.init.normal_(h.weight)
    site_model = LCFedSiteModel(net, 0, heads, calibrated=True)
    x, y = torch.rand(2, 1, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    joint = joint_calibration_loss(site_model)(net, x, y)
    frozen = calibration_loss(site_model)(net, x, y)
    torch.testing.assert_close(joint, frozen)  # the same value ...
    joint.backward()
    encoder = next(p for name, p in net.named_parameters() if name.startswith("unet.") and "head" not in name)
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0  # ... but the U-Net gets a gradient
    assert net.head.weight.grad is not None and net.hc.conv.weight.grad is not None
    net.zero_grad(set_to_none=True)
    calibration_loss(site_model)(net, x, y).backward()
    assert encoder.grad is None and net.head.weight.grad is None  # the frozen stage's loss reaches only HC


def test_val_selection_keeps_calibration_flag(toy_federation, tiny_config):
    history = run_federation(LCFed(), toy_federation, tiny_config.replace(rounds=3, hc_rounds=1), progress=False)
    for model, site in zip(history.site_models, toy_federation.site_names, strict=True):
        assert bool(model.calibrated) == (history.selected_round[site] == 3)


def test_stage_boundary_follows_the_rounds_of_the_run(toy_federation, tiny_config):
    """The loop gives the strategy the run's total rounds: calibration is the last round of a 2-round run
    even when config.rounds says 10."""
    history = run_federation(LCFed(), toy_federation, tiny_config.replace(rounds=10, hc_rounds=1), rounds=2,
                             progress=False, select="last")
    assert history.info["rounds"] == 2
    assert all(bool(m.calibrated) for m in history.site_models)


def test_lcfed_rejects_single_site_and_classification(tiny_config):
    g = torch.Generator().manual_seed(0)
    one = Federation("one", [Site("A", toy_split(4, 0.5, g), toy_split(2, 0.5, g))])
    with pytest.raises(ValueError, match="at least 2 sites"):
        run_federation(LCFed(), one, tiny_config, progress=False)
    x = torch.rand(6, 3)
    split = Split(x, (x[:, 0] > 0.5).float())
    tab = Federation("tab", [Site(n, split, split) for n in ("A", "B")], task="classification")
    with pytest.raises(ValueError, match="segmentation method"):
        run_federation(LCFed(), tab, tiny_config, progress=False, model=torch.nn.Linear(3, 1))


def test_stage_boundary_needs_a_backbone_round(toy_federation, tiny_config):
    with pytest.raises(ValueError, match="no backbone round"):
        run_federation(LCFed(hc_rounds=3), toy_federation, tiny_config.replace(rounds=3), progress=False)


def test_site_model_without_hc_is_the_site_coded_net():
    net = make_net(hc=False)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(LCFedSiteModel(net, 2)(x), net(x, 2))
    with torch.no_grad():
        assert not math.isclose(float((net(x, 0) - net(x, 2)).abs().max()), 0.0)
    with pytest.raises(ValueError, match="needs an LCFedNet with a HeadCalibration"):
        LCFedSiteModel(net, 0, calibrated=True)
    assert F.sigmoid(net(x, 0)).shape == (2, 1, 16, 16)
