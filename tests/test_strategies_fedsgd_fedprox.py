"""FedSGD, FedProx and FedAvg oracles on small classification federations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation, Site, Split
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import STRATEGIES, FedAvg, FedProx, FedSGD, Local
from fedlab.models.logistic import LogisticRegression


def _federation(sizes=(30, 50, 20), features=5, seed=0) -> Federation:
    g = torch.Generator().manual_seed(seed)
    sites = []
    for k, n in enumerate(sizes):
        x = torch.randn(n, features, generator=g) + 0.3 * k
        y = (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 0.3 * k).float()
        sites.append(Site(f"s{k}", Split(x, y), Split(x[:5], y[:5])))
    return Federation("toy", tuple(sites), task="classification", synthetic=True)


def _config(**kw) -> Config:
    base = dict(rounds=5, local_steps=3, batch_size=10**6, lr=0.5, optimizer="sgd", weight_decay=0.0,
                eval_every=10**6, head_steps=0)
    base.update(kw)
    return Config(**base)


def _weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_registry_has_fedsgd_and_fedprox():
    assert STRATEGIES["FedSGD"] is FedSGD and STRATEGIES["FedProx"] is FedProx


def test_fedsgd_full_batch_equals_centralised_gradient_descent():
    fed, cfg, rounds = _federation(), _config(), 7
    hist = run_federation(FedSGD(), fed, cfg, rounds=rounds, seed=0, device="cpu",
                          model=lambda: LogisticRegression(5, zero_init=False), select="last", progress=False)
    # Oracle: plain gradient descent on the pooled data (mean loss = sample-weighted mean of site losses).
    torch.manual_seed(0)
    ref = LogisticRegression(5, zero_init=False)
    pooled = fed.pooled()
    for _ in range(rounds):
        ref.zero_grad()
        F.binary_cross_entropy_with_logits(ref(pooled.train.x).reshape(-1), pooled.train.y).backward()
        with torch.no_grad():
            for p in ref.parameters():
                p -= cfg.lr * p.grad
    for model in hist.site_models:
        torch.testing.assert_close(_weights(model), _weights(ref), rtol=1e-5, atol=1e-6)


def test_fedsgd_counts_gradient_bytes_and_uniform_weighting_differs():
    fed, cfg = _federation(), _config()
    hist = run_federation(FedSGD(), fed, cfg, rounds=2, device="cpu", select="last", progress=False)
    ledger = hist.ledger_dataframe()
    per_model = (5 + 1) * 4  # float32 weight + bias
    assert (ledger["bytes_up"] == 3 * per_model).all() and (ledger["bytes_down"] == 3 * per_model).all()
    uni = run_federation(FedSGD(weighting="uniform"), fed, cfg, rounds=2, device="cpu", select="last", progress=False)
    assert not torch.allclose(_weights(uni.site_models[0]), _weights(hist.site_models[0]))


def test_fedprox_mu_zero_equals_fedavg():
    fed, cfg = _federation(), _config(batch_size=8, optimizer="adam", lr=0.05)
    a = run_federation(FedAvg(), fed, cfg, seed=3, device="cpu", select="last", progress=False)
    b = run_federation(FedProx(mu=0.0, local_steps=cfg.local_steps), fed, cfg, seed=3, device="cpu",
                       select="last", progress=False)
    for ma, mb in zip(a.site_models, b.site_models, strict=True):
        torch.testing.assert_close(_weights(ma), _weights(mb))


def test_fedprox_proximal_term_pulls_towards_global_model():
    fed, cfg = _federation(), _config(local_steps=20, lr=0.5)
    free = run_federation(FedProx(mu=0.0, local_steps=20), fed, cfg, rounds=1, device="cpu", select="last",
                          progress=False)
    prox = run_federation(FedProx(mu=1.0, local_steps=20), fed, cfg, rounds=1, device="cpu", select="last",
                          progress=False)
    init = _weights(LogisticRegression(5))  # zero init = round-0 global model
    assert (_weights(prox.site_models[0]) - init).norm() < (_weights(free.site_models[0]) - init).norm()


def test_fedprox_one_epoch_steps():
    fed = _federation(sizes=(30, 50, 20))
    strat = FedProx()
    strat.config = _config(batch_size=8)
    from fedlab.federation.client import Client, task_loss
    from fedlab.reproducibility import client_generator
    steps = [strat.steps(Client(k, s, LogisticRegression(5), strat.config, client_generator(0, k),
                                task_loss("classification"))) for k, s in enumerate(fed)]
    assert steps == [4, 7, 3]  # ceil(n_k / 8)


def test_fedavg_one_client_equals_local_training():
    fed = Federation("one", (_federation().sites[1],), task="classification")
    cfg = _config(batch_size=8, optimizer="adam", lr=0.05, optimizer_state="persistent")  # Local keeps its Adam
    a = run_federation(FedAvg(), fed, cfg, seed=1, device="cpu", select="last", progress=False)
    b = run_federation(Local(), fed, cfg, seed=1, device="cpu", select="last", progress=False)
    torch.testing.assert_close(_weights(a.site_models[0]), _weights(b.site_models[0]))


def test_bad_arguments_raise():
    import pytest

    with pytest.raises(ValueError, match="mu must be >= 0"):
        FedProx(mu=-1)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        FedSGD(batch_size=0)
