"""What an update reveals: exact inversion of a linear layer, optimisation attacks, and how to score them.

* **Analytic inversion.** For a layer ``z = w . x + b`` with one output, the gradient of any loss is
  ``dL/dw = (dL/dz) x`` and ``dL/db = dL/dz``, so one record's input is ``x = (dL/dw) / (dL/db)`` exactly
  (:func:`invert_linear_gradient`). A FedSGD update of logistic regression computed on one patient *is* that
  patient's feature vector, scaled. For a batch the same ratio is a weighted mix of the records.
* **Optimisation attacks** recover inputs of deeper networks by searching for an input whose gradient matches the
  observed one: DLG (Zhu, Liu, Han, NeurIPS 2019; squared distance, L-BFGS; the label of a single record read from
  the sign of the last bias gradient as in iDLG, Zhao et al. 2020) and inverting gradients (Geiping et al.,
  NeurIPS 2020; cosine distance plus total variation, Adam on the sign of the gradient, pixels kept in [0, 1]).
* **Defences** applied to the update before it leaves the site: Gaussian noise (:func:`add_noise`) and top-k
  sparsification (:func:`top_k`; the attacker then matches only the coordinates that were sent).
* **Scoring.** Raw PSNR flatters an attack on images that all look alike: the site-mean image (a prior any
  attacker has) already scores well. :func:`relative_leakage` reports the improvement over that prior, as NVFlare's
  relative data leakage value (Hatamizadeh et al., IEEE TMI 2023): ``(SSIM(recon, x) - SSIM(prior, x)) /
  SSIM(prior, x)`` for each true image ``x``, best over the reconstructions (whose order an attack cannot know).
  Above 0 the attack learned something about ``x`` beyond the prior. A failed attack is no proof of safety: a
  stronger or better-tuned attack may succeed where this one did not.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from monai.metrics import PSNRMetric, SSIMMetric
from torch import nn

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Grads = list[torch.Tensor]


# --- analytic inversion -----------------------------------------------------------------------
def invert_linear_gradient(weight_grad: torch.Tensor, bias_grad: torch.Tensor) -> torch.Tensor:
    """The input of a linear layer recovered from its gradients: ``x = (dL/dW)[j] / (dL/db)[j]``.

    Exact for one record; for a batch it is the mix ``sum_i d_i x_i / sum_i d_i`` (``d_i = dL/dz`` of record i).

    Args:
        weight_grad: ``dL/dW`` of shape ``(out, F)``.
        bias_grad: ``dL/db`` of shape ``(out,)``; the row with the largest ``|dL/db|`` is used.

    Returns:
        ``(F,)``: the recovered input.

    Raises:
        ValueError: when every bias gradient is zero (the record was fitted perfectly; nothing to divide by).
    """
    row = int(bias_grad.abs().argmax())
    if bias_grad[row] == 0:
        raise ValueError("the bias gradient is zero: the loss was flat for this record, so the ratio is undefined")
    return weight_grad[row] / bias_grad[row]


def gradients(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
              create_graph: bool = False) -> Grads:
    """The gradient of ``loss_fn(model, x, y)`` with respect to every parameter (what FedSGD uploads)."""
    loss = loss_fn(model, x, y)
    return list(torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad],
                                    create_graph=create_graph))


def infer_binary_label(bias_grad: torch.Tensor) -> torch.Tensor:
    """The label of a single record from the gradient of the last bias under binary cross-entropy on one logit.

    ``dL/db = sigmoid(z) - y`` lies in (-1, 0) when ``y = 1`` and in (0, 1) when ``y = 0`` (iDLG's observation).
    """
    return (bias_grad.reshape(-1)[:1] < 0).to(bias_grad.dtype)


# --- defences -----------------------------------------------------------------------------------
def add_noise(grads: Grads, relative_std: float, generator: torch.Generator) -> Grads:
    """Gaussian noise whose norm is about ``relative_std`` times the update's norm.

    The std per coordinate is ``relative_std * ||g|| / sqrt(P)`` for P coordinates in total.
    """
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    count = sum(g.numel() for g in grads)
    std = float(relative_std * norm / count**0.5)
    return [g + std * torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device) for g in grads]


def top_k(grads: Grads, fraction: float) -> tuple[Grads, list[torch.Tensor]]:
    """Keep the ``fraction`` of coordinates with the largest magnitude (over all tensors), zero the rest.

    Returns:
        The sparsified update and, per tensor, the boolean mask of the coordinates that are sent.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    flat = torch.cat([g.reshape(-1).abs() for g in grads])
    keep = max(1, int(round(fraction * flat.numel())))
    threshold = torch.topk(flat, keep).values.min()
    masks = [g.abs() >= threshold for g in grads]
    return [g * m for g, m in zip(grads, masks, strict=True)], masks


# --- optimisation attacks -------------------------------------------------------------------------
@dataclass
class AttackResult:
    """What an attack produced.

    Attributes:
        reconstruction: The recovered inputs ``(B, C, H, W)`` in [0, 1] (clamped), float32 on the CPU.
        labels: The labels the attack used ``(B,)``.
        losses: The gradient-matching loss every few iterations.
        seconds: Wall time of the attack.
    """

    reconstruction: torch.Tensor
    labels: torch.Tensor
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _attack_setup(model: nn.Module, target: Grads, masks: Sequence[torch.Tensor] | None, dtype: torch.dtype):
    net = copy.deepcopy(model).to(dtype)
    net.eval()  # the attacker re-computes the same function; no batch statistics to update
    device = next(net.parameters()).device
    target = [t.detach().to(device, dtype) for t in target]
    masks = None if masks is None else [m.to(device, dtype) for m in masks]
    return net, target, masks, device


def _start(shape: Sequence[int], init: torch.Tensor | None, seed: int, dtype: torch.dtype,
           device: torch.device) -> torch.Tensor:
    if init is not None:
        start = init.detach().to(device, dtype).expand(*shape).clone()
    else:
        start = torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        start = start.to(device, dtype)
    return start.requires_grad_(True)


def dlg(model: nn.Module, loss_fn: LossFn, target: Grads, shape: Sequence[int], labels: torch.Tensor,
        iterations: int = 300, masks: Sequence[torch.Tensor] | None = None, init: torch.Tensor | None = None,
        seed: int = 0, dtype: torch.dtype = torch.float64) -> AttackResult:
    """Deep leakage from gradients (Zhu et al. 2019): L-BFGS on ``sum ||grad(x') - grad||^2`` over the input x'.

    Args:
        model: The network the update was computed with (the model the server sent).
        loss_fn: The training loss ``loss_fn(model, x, y)``.
        target: The observed gradient, one tensor per parameter.
        shape: Shape of the inputs to recover, ``(B, C, H, W)``.
        labels: Their labels (known or from :func:`infer_binary_label`).
        iterations: L-BFGS iterations (function evaluations are a little more).
        masks: Only these coordinates were sent (after :func:`top_k`); default all.
        init: Start from this image (broadcast to ``shape``) instead of uniform noise.
        seed: Seed of the random start.
        dtype: Arithmetic precision (float64 lets L-BFGS converge much further than float32).
    """
    tic = time.perf_counter()
    net, target, masks, device = _attack_setup(model, target, masks, dtype)
    y = labels.to(device, dtype)
    dummy = _start(shape, init, seed, dtype, device)
    optimizer = torch.optim.LBFGS([dummy], lr=1.0, max_iter=iterations, history_size=100,
                                  line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        grads = gradients(net, loss_fn, dummy, y, create_graph=True)
        if masks is not None:
            grads = [g * m for g, m in zip(grads, masks, strict=True)]
        loss = sum(((g - t) ** 2).sum() for g, t in zip(grads, target, strict=True))
        loss.backward()
        if len(losses) % 10 == 0:
            losses.append(float(loss.detach()))
        return loss

    optimizer.step(closure)
    recon = dummy.detach().clamp(0, 1).float().cpu()
    return AttackResult(recon, labels.detach().cpu(), losses, time.perf_counter() - tic)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


def inverting_gradients(model: nn.Module, loss_fn: LossFn, target: Grads, shape: Sequence[int], labels: torch.Tensor,
                        iterations: int = 300, lr: float = 0.01, tv: float = 1e-2,
                        masks: Sequence[torch.Tensor] | None = None, init: torch.Tensor | None = None, seed: int = 0,
                        dtype: torch.dtype = torch.float64) -> AttackResult:
    """Inverting gradients (Geiping et al. 2020): Adam on ``1 - cos(grad(x'), grad) + tv * TV(x')``.

    Signed gradient steps, learning rate divided by 10 at 3/8, 5/8 and 7/8 of the iterations, pixels clamped to
    [0, 1] after every step. Arguments as :func:`dlg`, plus ``lr`` (a pixel step; 0.01 suits images in [0, 1], where
    Geiping et al.'s 0.1 was for normalised images) and the total-variation weight ``tv``.
    """
    tic = time.perf_counter()
    net, target, masks, device = _attack_setup(model, target, masks, dtype)
    y = labels.to(device, dtype)
    dummy = _start(shape, init, seed, dtype, device)
    optimizer = torch.optim.Adam([dummy], lr=lr)
    milestones = [int(iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    target_norm = torch.sqrt(sum((t**2).sum() for t in target))
    losses: list[float] = []
    for it in range(iterations):
        optimizer.zero_grad()
        grads = gradients(net, loss_fn, dummy, y, create_graph=True)
        if masks is not None:
            grads = [g * m for g, m in zip(grads, masks, strict=True)]
        dot = sum((g * t).sum() for g, t in zip(grads, target, strict=True))
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        loss = 1 - dot / (norm * target_norm + 1e-12) + tv * _total_variation(dummy)
        (grad,) = torch.autograd.grad(loss, [dummy])
        dummy.grad = grad.sign()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            dummy.clamp_(0, 1)
        if it % 10 == 0:
            losses.append(float(loss.detach()))
    recon = dummy.detach().float().cpu()
    return AttackResult(recon, labels.detach().cpu(), losses, time.perf_counter() - tic)


# --- scoring ------------------------------------------------------------------------------------
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB, for images in [0, 1] (MONAI ``PSNRMetric``). ``(B,)``."""
    return PSNRMetric(max_val=1.0, reduction="none")(a.float(), b.float()).reshape(-1)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (MONAI ``SSIMMetric``, 7x7 Gaussian window) for 2-D images in [0, 1]."""
    metric = SSIMMetric(spatial_dims=2, data_range=1.0, win_size=7, reduction="none")
    return metric(a.float(), b.float()).reshape(-1)


def best_match(recon: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """For each true image, the index of the most similar reconstruction (SSIM); an attack's order is arbitrary."""
    scores = torch.stack([ssim(recon, truth[i:i + 1].expand_as(recon)) for i in range(len(truth))])  # (B, R)
    return scores.argmax(dim=1)


def relative_leakage(recon: torch.Tensor, truth: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Improvement of the best-matching reconstruction over the prior, per true image (NVFlare's RDLV with SSIM).

    ``(SSIM(recon, x) - SSIM(prior, x)) / SSIM(prior, x)``: 0 = no better than the prior (e.g. the site-mean image),
    > 0 = the attack recovered something about ``x`` the prior did not have, 1 = twice the prior's similarity.

    Args:
        recon: Reconstructions ``(R, C, H, W)``.
        truth: The true images ``(B, C, H, W)``.
        prior: One prior image ``(1, C, H, W)``.

    Returns:
        ``(B,)``.
    """
    idx = best_match(recon, truth)
    best = ssim(recon[idx], truth)
    base = ssim(prior.expand_as(truth), truth)
    return (best - base) / base
