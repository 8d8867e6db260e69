"""Lesson 06's experiments: attacks on one site's update, and how batch size, noise and sparsification change them.

The threat model is an honest-but-curious server: it follows the protocol but looks at every upload. The update it
inverts is a FedSGD upload (the gradient of the model it sent, on one batch of the site's data): the attacker's
most favourable case; FedAvg's uploads after several local steps are harder to invert. The attacker knows the
model (it sent it), the batch size and, for classification, recovers a single record's label from the update
itself (batches: labels assumed known, the strongest attacker). Every score is reported twice: PSNR, and the
improvement over the prior (:func:`fedlab.privacy.leakage.relative_leakage`), the site-mean image of the site's
*other* slices (what an attacker could know about the site's scans anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from fedlab.data.federation import Site
from fedlab.models.classifier import SliceClassifier
from fedlab.privacy.leakage import (
    add_noise,
    best_match,
    dlg,
    gradients,
    infer_binary_label,
    inverting_gradients,
    psnr,
    relative_leakage,
    top_k,
)

ATTACKS = ("DLG", "IG")


@dataclass(frozen=True)
class LeakageSettings:
    """The size of lesson 06's attacks.

    Attributes:
        image_size: Side of the attacked slices (the attacks invert 32x32 images in every preset).
        iterations: Iterations of every attack on the slice classifier.
        batch_sizes: Batch sizes of the batch-size sweep.
        noise_levels: Noise norm / update norm of the noise sweep (0 = none).
        topk_fractions: Fractions of coordinates sent in the top-k sweep (1 = all).
        unet_iterations: Iterations of the attack on the U-Net (each costs far more than on the classifier).
    """

    image_size: int = 32
    iterations: int = 300
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    noise_levels: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)
    topk_fractions: tuple[float, ...] = (1.0, 0.1, 0.01)
    unet_iterations: int = 150

    def to_dict(self) -> dict:
        """Plain dict, for summary.json."""
        return asdict(self)


LEAKAGE_PRESETS = {
    "smoke": LeakageSettings(iterations=60, batch_sizes=(1, 2, 4), noise_levels=(0.0, 0.1), topk_fractions=(1.0, 0.1),
                             unet_iterations=30),
    "classroom": LeakageSettings(),
    "paper": LeakageSettings(iterations=1000, unet_iterations=1000),
}


def get_leakage_settings(preset: str, **overrides: object) -> LeakageSettings:
    """Lesson 06's attack sizes for a preset (smoke, classroom, paper), optionally with fields overridden."""
    if preset not in LEAKAGE_PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(LEAKAGE_PRESETS)}")
    return replace(LEAKAGE_PRESETS[preset], **overrides)


def bce_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy on one logit per image (the slice classifier's training loss)."""
    return F.binary_cross_entropy_with_logits(model(x).reshape(-1), y)


@dataclass
class SliceTask:
    """Images of one site with a binary label per slice, for the classifier the attacks target.

    Attributes:
        images: ``(N, 1, S, S)`` training slices of the site, in [0, 1].
        labels: ``(N,)``: 1 when the gland's area is above the site's median ("large gland"), else 0.
        site: The site's name.
    """

    images: torch.Tensor
    labels: torch.Tensor
    site: str

    def batch(self, size: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` consecutive slices from ``start`` (the batch one FedSGD upload is computed on)."""
        if start + size > len(self.images):
            raise ValueError(f"site {self.site} has {len(self.images)} slices; cannot take {size} from {start}")
        return self.images[start:start + size], self.labels[start:start + size]

    def prior(self, exclude: int) -> torch.Tensor:
        """The mean of the site's slices except the first ``exclude`` (those attacked): ``(1, 1, S, S)``.

        Raises:
            ValueError: when no slice is left to form the prior.
        """
        if exclude >= len(self.images):
            raise ValueError(f"site {self.site} has {len(self.images)} training slices: none is left for the prior "
                             f"after attacking {exclude}; attack fewer slices or choose a larger site")
        return self.images[exclude:].mean(0, keepdim=True)


def slice_task(site: Site) -> SliceTask:
    """The site's training slices labelled "large gland" (mask area above the site's median) or not."""
    area = site.train.y.flatten(1).sum(1)  # (N,) pixels of the first label
    labels = (area > area.median()).to(site.train.x.dtype)
    return SliceTask(site.train.x[:, :1].detach().cpu(), labels.detach().cpu(), site.name)


def slice_classifier(image_size: int, seed: int) -> SliceClassifier:
    """The classifier the server sends in round 1 (seeded initialisation)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SliceClassifier(1, image_size)


def attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor, *, method: str = "DLG",
           defence: str = "none", level: float = 0.0, iterations: int = 300, seed: int = 0,
           loss_fn=bce_loss, known_labels: bool | None = None, dtype: torch.dtype = torch.float64) -> dict:
    """One attack on the FedSGD update of ``images``: compute the update, apply a defence, invert, score.

    Args:
        model: The model the server sent.
        images: The site's batch ``(B, C, H, W)``.
        labels: Their targets (``(B,)`` labels, or ``(B, L, H, W)`` masks for a segmentation loss).
        prior: The attacker's prior image ``(1, C, H, W)``.
        method: "DLG" (L-BFGS, squared distance) or "IG" (inverting gradients: Adam, cosine + TV).
        defence: "none", "noise" (``level`` = noise norm / update norm) or "top-k" (``level`` = fraction kept).
        level: The defence's strength.
        iterations: Attack iterations.
        seed: Seed of the attack's random start and of the defence's noise.
        loss_fn: The training loss the update was computed with.
        known_labels: Give the attack the true labels; default: recover a single record's label from the update
            (batch of 1, binary classification), else use the true labels.
        dtype: Arithmetic of the attack.

    Returns:
        A row: method, defence, level, batch, psnr and relative leakage (medians over the batch), the prior's PSNR,
        seconds, plus ``"reconstruction"`` (the best-matching reconstruction of every image, in order).
    """
    if method not in ATTACKS:
        raise ValueError(f"method must be one of {ATTACKS}, got {method!r}")
    net = model.to(dtype)
    target = gradients(net, loss_fn, images.to(dtype), labels.to(dtype))
    masks = None
    if defence == "noise":
        target = add_noise(target, level, torch.Generator().manual_seed(seed))
    elif defence == "top-k":
        target, masks = top_k(target, level)
    elif defence != "none":
        raise ValueError(f"defence must be 'none', 'noise' or 'top-k', got {defence!r}")
    batch = len(images)
    if known_labels is None:
        known_labels = not (batch == 1 and labels.ndim == 1)
    used = labels if known_labels else infer_binary_label(target[-1])
    if method == "DLG":  # Zhu et al.: from random noise
        result = dlg(net, loss_fn, target, images.shape, used, iterations=iterations, masks=masks, seed=seed,
                     dtype=dtype)
    else:  # from the prior, as NVFlare's gradient inversion starts
        result = inverting_gradients(net, loss_fn, target, images.shape, used, iterations=iterations, masks=masks,
                                     init=prior, seed=seed, dtype=dtype)
    recon = result.reconstruction
    matched = recon[best_match(recon, images.float())]
    return {"method": method, "defence": defence, "level": float(level), "batch": batch,
            "psnr": float(psnr(matched, images.float()).median()),
            "relative_leakage": float(relative_leakage(recon, images.float(), prior.float()).median()),
            "prior_psnr": float(psnr(prior.float().expand_as(images), images.float()).median()),
            "label_recovered": bool(torch.equal(used.reshape(-1).cpu(), labels.reshape(-1).cpu()))
            if labels.ndim == 1 else None,
            "seconds": result.seconds, "reconstruction": matched}


def defence_sweep(model: nn.Module, task: SliceTask, *, batch_sizes: Sequence[int] = (1, 2, 4, 8),
                  noise_levels: Sequence[float] = (0.0, 0.01, 0.1, 1.0),
                  topk_fractions: Sequence[float] = (1.0, 0.1, 0.01), methods: Sequence[str] = ATTACKS,
                  iterations: int = 300, seed: int = 0, progress: bool | None = None) -> tuple[pd.DataFrame, dict]:
    """What stops the attacks: batch size (those below the site's number of slices), then noise and top-k at batch 1,
    each with every attack in ``methods``
    (an attacker runs them all: :func:`strongest` keeps the best per setting). ``progress``: show a progress bar
    (default: unless ``$TQDM_DISABLE`` is set).

    Returns:
        A DataFrame (one row per attack run, no images) and ``{(defence, level, method): reconstruction}``.
    """
    from fedlab.progress import progress_bar

    batch_sizes = [b for b in batch_sizes if b < len(task.images)]  # one slice at least stays out for the prior
    if not batch_sizes:
        raise ValueError(f"site {task.site} has {len(task.images)} training slice(s); the sweep needs at least 2")
    plan = [("batch", b, m) for b in batch_sizes for m in methods]
    plan += [("noise", lv, m) for lv in noise_levels for m in methods]
    plan += [("top-k", f, m) for f in topk_fractions for m in methods]
    rows, images = [], {}
    switch = {} if progress is None else {"disable": not progress}  # None: tqdm reads $TQDM_DISABLE itself
    for kind, level, method in progress_bar(plan, desc="attacks", leave=False, **switch):
        batch = int(level) if kind == "batch" else 1
        x, y = task.batch(batch)
        defence = "none" if kind == "batch" else kind
        strength = 0.0 if kind == "batch" else float(level)
        if (kind == "noise" and strength == 0) or (kind == "top-k" and strength >= 1):
            defence, strength = "none", 0.0
        row = attack(model, x, y, task.prior(batch), method=method, defence=defence, level=strength,
                     iterations=iterations, seed=seed)
        images[(kind, float(level), method)] = row.pop("reconstruction")
        rows.append({"sweep": kind, "setting": float(level), **row})
    return pd.DataFrame(rows), images


def strongest(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per sweep and setting, the attack with the highest relative leakage (an attacker runs both)."""
    idx = sweep.groupby(["sweep", "setting"], sort=False)["relative_leakage"].idxmax()
    return sweep.loc[idx].reset_index(drop=True)
