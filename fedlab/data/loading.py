"""One call for every lesson: the embedded synthetic federation, or real data from DATA_DIR."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from fedlab.config import Config, get_config
from fedlab.data.federation import Federation

SYNTHETIC_DEFAULT = "prostate"


def load_federation(dataset: str = "", data_dir: str | Path = "", *, config: Config | None = None,
                    seed: int = 0, heterogeneity: float = 1.0, val_fraction: float = 0.2,
                    device: str | torch.device = "cpu", mask_polarity: str = "auto",
                    label_coding: Mapping[str, object] | None = None, **options: object) -> Federation:
    """Load the lesson's data.

    Args:
        dataset: Without ``data_dir``: the synthetic "prostate" (also for ""), "polyp" or "fundus". With
            ``data_dir``: "" (detect the dataset from the folder's layout), a manifest name from
            ``data_manifests/`` (``fedlab data list``), or "folder" for any ``ROOT/SITE/{train,test}/{image,mask}``
            tree.
        data_dir: "" for the embedded synthetic data, else the dataset's root folder (never written to). Real data
            are verified against their manifest first; a failed check raises with a list of what to fix.
        config: Supplies the image size (and, for synthetic data, the data-set scale); default the preset.
        seed: Seed of the synthetic generator and of the validation split.
        heterogeneity: Synthetic only: 0 = all sites alike, 1 = default site differences.
        val_fraction: Real data: fraction of each site's training cases held out for model selection.
        device: Where the tensors are put (the engine moves them to the training device anyway).
        mask_polarity: Generic folder layout: "auto" (= "bright" there; a manifest's own coding otherwise),
            "bright" (the object has the high mask value) or "dark" (object = 0, background = 255).
        label_coding: Generic folder layout: several labels from raw mask values, e.g.
            ``{"background": [255], "disc": [128, 0], "cup": [0]}``; None or {} = one binary label.
        **options: Passed to the real-data loader (:func:`fedlab.data.real.load_real`).

    Raises:
        ValueError: mask options given for the synthetic data (their labels are known).
    """
    config = config or get_config()
    polarity = None if mask_polarity in ("auto", "", None) else mask_polarity
    if not data_dir:
        if polarity is not None or label_coding:
            raise ValueError("MASK_POLARITY / LABEL_CODING describe the masks of real data (DATA_DIR); the embedded "
                             "synthetic data need none: leave them at 'auto' and {}.")
        from fedlab.data.synthetic import make_federation

        return make_federation(dataset or SYNTHETIC_DEFAULT, config=config, seed=seed, heterogeneity=heterogeneity,
                               device=device)
    from fedlab.data.real import load_real

    return load_real(dataset, data_dir, image_size=config.image_size, val_fraction=val_fraction, seed=seed,
                     device=device, polarity=polarity, label_coding=label_coding or None, **options)
