"""DP-SGD at every site (local, record-level differential privacy) through Opacus, with one accountant per site.

Each local step of :class:`DPFedAvg` is DP-SGD (Abadi et al. 2016):

1. **Poisson sampling** from the site's own ``torch.Generator``: every training record joins the batch
   independently with probability ``q = expected batch / n_k``, so batches have random size (possibly 0). The
   accountant's guarantee assumes exactly this; a fixed-size shuffled batch is a different mechanism.
2. **Per-record clipping**: each record's gradient ``g_i`` becomes ``g_i * min(1, C / ||g_i||)`` (Opacus computes
   the per-record gradients with its ``GradSampleModule`` hooks and clips them in its ``DPOptimizer``).
3. **Noise**: Gaussian noise of standard deviation ``sigma * C`` is added to the sum of clipped gradients, which is
   divided by the *expected* batch size; then the site's optimiser (Adam by default) steps.

Every site keeps **one accountant for the whole run**: its history (``[sigma, q, steps]`` entries, plain data in
``client.private``) grows every round, so the epsilon a hospital reports composes over all its rounds. (An example
that creates a new privacy engine every round reports a per-round epsilon, which understates the total.) Sites with
fewer records have a larger ``q`` for the same expected batch and pay more epsilon for the same noise.

What is protected: one *record* (one image, one patient row) of a site's training set, against anyone who sees the
site's uploads (the server, other sites, an eavesdropper). Validation-based model selection reads the site's
validation split, which the guarantee does not cover; the DP lessons therefore keep the last round's model. The mean
training loss that the simulation records for its ledger (``Reply.loss``) is bookkeeping, not privatised: a deployment
must not send it (or must privatise it too).
BatchNorm is incompatible: its batch statistics mix the records of a batch, so one record's gradient depends on the
others and clipping cannot bound its influence (:func:`check_dp_compatible` says so and names the fix).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from fedlab.data.federation import Split
from fedlab.federation.client import Client, LossFn
from fedlab.federation.history import History
from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.privacy.accounting import add_steps, epsilon, require_opacus


class DPIncompatibleError(ValueError):
    """A model that DP-SGD cannot train (e.g. one with BatchNorm)."""


def check_dp_compatible(model: nn.Module) -> None:
    """Raise :class:`DPIncompatibleError` unless Opacus can compute and clip per-record gradients of ``model``.

    Raises:
        DPIncompatibleError: with the offending layers and how to fix them (BatchNorm: use InstanceNorm or GroupNorm).
        ImportError: when Opacus is not installed (names the extra to install).
    """
    require_opacus()
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if not errors:
        return
    batchnorm = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    reasons: dict[str, int] = {}
    for e in errors:  # Opacus repeats one message per offending layer: show each reason once, with a count
        first = str(e).split(". ")[0].rstrip(".") + "."
        reasons[first] = reasons.get(first, 0) + 1
    lines = "\n".join(f"  - {r} ({n} layer{'s' if n > 1 else ''})" for r, n in reasons.items())
    hint = ""
    if batchnorm:
        hint = (f"\nThe model has {len(batchnorm)} BatchNorm layer(s) (e.g. {batchnorm[0]!r}). BatchNorm normalises "
                "each record with statistics of the whole batch, so a record's gradient depends on the other records "
                "and per-record clipping cannot bound its influence: DP-SGD is undefined for it. This includes "
                "FedBN's U-Net. Fix: build the U-Net with norm='instance' (fedlab's default, "
                "get_config(...).replace(norm='instance')), or replace BatchNorm by GroupNorm with "
                "opacus.validators.ModuleValidator.fix(model).")
    raise DPIncompatibleError(f"Opacus cannot train this model with DP-SGD:\n{lines}{hint}")


def poisson_batch(n: int, sample_rate: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of ``n`` records independently with probability ``sample_rate``.

    Args:
        n: Number of records.
        sample_rate: Inclusion probability q in (0, 1].
        generator: The site's generator (the draw happens on its device).

    Returns:
        A sorted 1-D long tensor of indices (possibly empty).
    """
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    draws = torch.rand(n, generator=generator, device=generator.device)  # (n,)
    return torch.nonzero(draws < sample_rate).reshape(-1)


def private_steps(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, data: Split, steps: int, *,
                  noise_multiplier: float, max_grad_norm: float, sample_rate: float,
                  generator: torch.Generator) -> torch.Tensor:
    """``steps`` DP-SGD steps on ``data``: Poisson batches, per-record clipping to ``max_grad_norm``, Gaussian noise.

    Opacus's hooks are attached to ``model`` for these steps only and removed afterwards, so ``model`` stays a plain
    module (its ``state_dict`` keys do not change). Noise and batches both come from ``generator``.

    Args:
        model: Network whose parameters ``optimizer`` updates (no BatchNorm; see :func:`check_dp_compatible`).
        optimizer: Any torch optimiser (SGD, Adam ...); wrapped by Opacus's ``DPOptimizer`` for these steps.
        loss_fn: ``loss_fn(model, x, y)`` = the *mean* of per-record losses.
        data: The site's training records.
        steps: Number of optimiser steps.
        noise_multiplier: sigma; the noise std is ``sigma * max_grad_norm`` (0 = clipping only, no privacy).
        max_grad_norm: Clipping norm C of every per-record gradient (``inf`` = no clipping).
        sample_rate: Poisson sampling probability q; the expected batch is ``q * len(data)``.
        generator: The site's random generator.

    Returns:
        The mean training loss over the non-empty batches (0-d tensor; 0 when all were empty).
    """
    require_opacus()
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    check_dp_compatible(model)
    if not math.isfinite(max_grad_norm):
        if noise_multiplier > 0:
            raise ValueError("noise_multiplier > 0 needs a finite max_grad_norm: the noise std is sigma * C")
        max_grad_norm = torch.finfo(torch.float32).max  # no clipping, and sigma * C stays 0 (not 0 * inf = nan)
    n = len(data)
    params = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros((), device=data.x.device)
    count = 0
    gsm = GradSampleModule(model, loss_reduction="mean", strict=True)
    dp_opt = DPOptimizer(optimizer, noise_multiplier=float(noise_multiplier), max_grad_norm=float(max_grad_norm),
                         expected_batch_size=sample_rate * n, loss_reduction="mean", generator=generator)
    model.train()
    try:
        with warnings.catch_warnings():
            # Opacus's hooks fire on module outputs when the input needs no gradient (always, for images): harmless
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for _ in range(steps):
                idx = poisson_batch(n, sample_rate, generator)
                dp_opt.zero_grad(set_to_none=True)
                if len(idx) == 0:  # an empty Poisson batch still takes a (pure-noise) step, as the analysis assumes
                    for p in params:
                        p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
                else:
                    loss = loss_fn(model, data.x[idx], data.y[idx])
                    loss.backward()
                    total += loss.detach()
                    count += 1
                dp_opt.step()
            dp_opt.zero_grad(set_to_none=True)
    finally:
        gsm._close()  # remove Opacus's hooks and per-record gradients; the model is a plain module again
        for p in params:
            if hasattr(p, "summed_grad"):
                del p.summed_grad
    return total / max(count, 1)


def per_record_grad_norms(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The norm of every record's own gradient (all parameters as one vector), computed by Opacus's hooks.

    What DP-SGD clips: ``(B,)`` for a batch of B records. ``loss_fn`` must be a mean over the records.
    """
    require_opacus()
    from opacus import GradSampleModule

    check_dp_compatible(model)
    params = [p for p in model.parameters() if p.requires_grad]
    gsm = GradSampleModule(model, loss_reduction="mean", strict=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            model.zero_grad(set_to_none=True)
            loss_fn(model, x, y).backward()
        norms = torch.stack([p.grad_sample.reshape(len(x), -1).norm(dim=1) for p in params], dim=1).norm(dim=1)
        model.zero_grad(set_to_none=True)
    finally:
        gsm._close()
    return norms.detach()


class DPFedAvg(Strategy):
    """FedAvg whose sites train with DP-SGD (Opacus) and keep one privacy accountant each for the whole run.

    Args:
        noise_multiplier: sigma (noise std / clipping norm); 0 = clipping only (no privacy).
        max_grad_norm: Per-record clipping norm C.
        delta: The delta of every site's (epsilon, delta) guarantee (keep it well below 1 / records per site).
        sample_rate: Poisson sampling probability q for every site; ``None`` = ``config.batch_size / n_k`` at site k
            (the same expected batch everywhere, so smaller sites have a larger q).
        weighting: "samples" (n_k / n) or "uniform".
    """

    name = "DP-FedAvg"
    #: Modules this strategy needs beyond fedlab's core dependencies (the ``privacy`` extra).
    requires = ("opacus",)

    def __init__(self, noise_multiplier: float = 1.0, max_grad_norm: float = 1.0, delta: float = 1e-5,
                 sample_rate: float | None = None, weighting: str = "samples") -> None:
        super().__init__(weighting)
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        if not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 (inf = no clipping), got {max_grad_norm}")
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if sample_rate is not None and not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1] or None, got {sample_rate}")
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.delta = float(delta)
        self.sample_rate = sample_rate

    def setup(self, model: nn.Module, config, rounds: int, task: str) -> None:
        """Check that the model can be trained with DP-SGD, then the usual set-up.

        Raises:
            DPIncompatibleError: for a model with BatchNorm (e.g. FedBN's U-Net), naming the fix.
            ImportError: when Opacus is not installed (names the ``privacy`` extra).
        """
        check_dp_compatible(model)
        super().setup(model, config, rounds, task)

    def site_sample_rate(self, num_records: int) -> float:
        """The Poisson sampling rate q_k of a site with ``num_records`` training records."""
        if self.sample_rate is not None:
            return float(self.sample_rate)
        return min(1.0, self.config.batch_size / num_records)

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model and an empty epsilon ledger."""
        return {**super().initial_state(model), "privacy": []}

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Receive, ``local_steps`` DP-SGD steps, extend the site's accountant, upload the model and the epsilon."""
        self.prepare_round(client, message)
        q = self.site_sample_rate(client.num_train)
        steps = self.config.local_steps
        loss = private_steps(client.model, client.optimizer, client.loss_fn, client.site.train, steps,
                             noise_multiplier=self.noise_multiplier, max_grad_norm=self.max_grad_norm, sample_rate=q,
                             generator=client.generator)
        history = add_steps(client.private.get("dp_accountant", []), self.noise_multiplier, q, steps)
        client.private["dp_accountant"] = history
        reply = self.reply(client, loss)
        reply.message.config.update(epsilon=epsilon(history, self.delta), sample_rate=q,
                                    dp_steps=int(sum(e[2] for e in history)))
        return reply

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """FedAvg, plus one ledger row per site: the epsilon it has spent so far."""
        new = super().aggregate(round, replies, state)
        rows = [{"round": int(round), "client": int(r.client), "epsilon": float(r.message.config["epsilon"]),
                 "sample_rate": float(r.message.config["sample_rate"]), "steps": int(r.message.config["dp_steps"])}
                for r in replies]
        return {**new, "privacy": list(state.get("privacy", [])) + rows}

    def finish_client(self, client: Client) -> dict:
        """The epsilon this site spent over the whole run (its own accountant)."""
        return {"epsilon": epsilon(client.private.get("dp_accountant", []), self.delta)}

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict:
        """The epsilon ledger (per round and site) and each site's final epsilon, for ``history.info["finish"]``."""
        ledger = [{**row, "site": names[row["client"]]} for row in state.get("privacy", [])]
        final = {name: facts[name]["epsilon"] for name in names.values() if name in facts}
        return {"privacy": {"mechanism": "DP-SGD at each site (record-level)", "delta": self.delta,
                            "noise_multiplier": self.noise_multiplier, "max_grad_norm": self.max_grad_norm,
                            "epsilon": final, "ledger": ledger}}


def privacy_ledger(history: History) -> pd.DataFrame:
    """The epsilon ledger of a DP run: one row per (round, site) with the epsilon spent so far.

    Args:
        history: A History of :class:`DPFedAvg` or :class:`~fedlab.privacy.central_dp.CentralDP`.

    Raises:
        ValueError: when the run kept no privacy ledger.
    """
    facts = (history.info.get("finish") or {}).get("privacy")
    if not facts:
        raise ValueError(f"{history.method!r} kept no privacy ledger; only DP strategies (DP-FedAvg, CentralDP) do.")
    df = pd.DataFrame(facts["ledger"])
    df.insert(0, "method", history.method)
    df["delta"] = facts["delta"]
    return df
