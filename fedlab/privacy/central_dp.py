"""Central differential privacy: the *server* clips every site's update and adds the noise (site-level DP).

DP-FedAvg in the form of McMahan et al. (ICLR 2018, "Learning differentially private recurrent language models"):
each round the server

1. takes each participating site's update ``d_k = w_k - w`` (the shared tensors, as one vector),
2. clips it to norm ``S``: ``d_k * min(1, S / ||d_k||)``,
3. averages the clipped updates with *uniform* weights over the ``K`` participants (sample-count weights would
   let a large site's update exceed the sensitivity the noise is calibrated to),
4. adds Gaussian noise of standard deviation ``sigma * S / K`` to every coordinate of the average, and
5. steps ``w <- w + server_lr * (average + noise)``.

The unit of privacy is a whole **site** (one hospital's entire contribution), not a record; every site takes part in
every round, so the accountant treats each round as one Gaussian mechanism without sampling (``q = 1``). The
guarantee holds against anyone who sees the *global* models (other sites, the public), **not** against the server,
which sees every raw update: central DP needs a trusted server (or secure aggregation with distributed noise).
With few sites the noise per coordinate, ``sigma * S / K``, is large: site-level DP suits many-site federations.

The noise comes from a generator whose state is part of the server state (so a run resumes bit for bit); its seed
is ``noise_seed`` or, by default, derived from the round-0 model (which the run seed determines). A deployment
would draw noise from a cryptographically secure source instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

from fedlab.federation.messages import Reply
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.privacy.accounting import add_steps, epsilon


def clip_update(update: dict[str, torch.Tensor], clip_norm: float) -> tuple[dict[str, torch.Tensor], float]:
    """Scale ``update`` (all tensors as one vector) to norm at most ``clip_norm``.

    Returns:
        The clipped update and the norm of the original update.
    """
    norm = torch.sqrt(sum((t.double() ** 2).sum() for t in update.values())).item() if update else 0.0
    factor = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return {k: t * factor for k, t in update.items()}, norm


def _model_seed(state: dict[str, torch.Tensor]) -> int:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return int(digest.hexdigest()[:15], 16)


class CentralDP(Strategy):
    """FedAvg with server-side clipping of each site's update and Gaussian noise on the average (site-level DP).

    Args:
        noise_multiplier: sigma: the noise std on the *sum* of clipped updates is ``sigma * clip_norm``.
        clip_norm: S, the largest norm a site's update may have.
        delta: The delta of the site-level (epsilon, delta) guarantee.
        server_lr: Server step size on the noisy average update (1 = FedAvg's step).
        noise_seed: Seed of the server's noise generator; ``None`` = derived from the round-0 model.
    """

    name = "CentralDP"

    def __init__(self, noise_multiplier: float = 1.0, clip_norm: float = 1.0, delta: float = 1e-5,
                 server_lr: float = 1.0, noise_seed: int | None = None) -> None:
        super().__init__(weighting="uniform")
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        if not clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if not server_lr > 0:
            raise ValueError(f"server_lr must be > 0, got {server_lr}")
        self.noise_multiplier = float(noise_multiplier)
        self.clip_norm = float(clip_norm)
        self.delta = float(delta)
        self.server_lr = float(server_lr)
        self.noise_seed = noise_seed

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model, the noise generator's state, an empty accountant and ledger."""
        state = super().initial_state(model)
        generator = torch.Generator().manual_seed(self.noise_seed if self.noise_seed is not None
                                                  else _model_seed(state["global"]))
        return {**state, "noise_rng": generator.get_state(), "dp_accountant": [], "privacy": []}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Clip each update, average uniformly, add noise, step; extend the accountant and the ledger."""
        if not replies:
            return state
        glob = state["global"]
        clipped, norms = [], []
        for r in replies:
            update = {k: r.message.tensors[k].double() - glob[k].double() for k in glob if glob[k].is_floating_point()}
            c, norm = clip_update(update, self.clip_norm)
            clipped.append(c)
            norms.append(norm)
        k_round = len(replies)
        generator = torch.Generator()
        generator.set_state(state["noise_rng"])
        std = self.noise_multiplier * self.clip_norm / k_round
        new_global = dict(glob)
        for key in clipped[0]:
            mean = sum(c[key] for c in clipped) / k_round
            noise = torch.normal(0.0, std, size=mean.shape, generator=generator, dtype=torch.float64) if std > 0 \
                else torch.zeros(mean.shape, dtype=torch.float64)
            step = self.server_lr * (mean + noise.to(mean.device))
            new_global[key] = (glob[key].double() + step).to(glob[key].dtype)
        q = 1.0  # every site takes part in every round (no site sampling, hence no amplification by sampling)
        history = add_steps(state["dp_accountant"], self.noise_multiplier, q, 1)
        row = {"round": int(round), "client": -1, "site": "all sites (site-level)",
               "epsilon": epsilon(history, self.delta), "sample_rate": q, "steps": int(sum(e[2] for e in history)),
               "clipped": int(sum(n > self.clip_norm for n in norms)), "median_update_norm": float(torch.tensor(
                   norms).median())}
        return {**state, "global": new_global, "noise_rng": generator.get_state(), "dp_accountant": history,
                "privacy": list(state["privacy"]) + [row]}

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict:
        """The site-level epsilon ledger, for ``history.info["finish"]``."""
        eps = epsilon(state["dp_accountant"], self.delta)
        return {"privacy": {"mechanism": "clipping and noise at the server (site-level)", "delta": self.delta,
                            "noise_multiplier": self.noise_multiplier, "clip_norm": self.clip_norm,
                            "epsilon": {"all sites (site-level)": eps}, "ledger": list(state["privacy"])}}
