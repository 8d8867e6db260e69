"""One call for every lesson: the embedded synthetic federation, or real data from DATA_DIR."""

from __future__ import annotations

from pathlib import Path

from fedlab.config import Config, get_config
from fedlab.data.federation import Federation


def load_federation(dataset: str = "prostate", data_dir: str | Path = "", *, config: Config | None = None,
                    seed: int = 0, heterogeneity: float = 1.0, val_fraction: float = 0.2, device: str = "cpu",
                    **options: object) -> Federation:
    """Load the lesson's data.

    Args:
        dataset: Synthetic "prostate", "polyp" or "fundus" when ``data_dir`` is empty; otherwise a manifest
            name from ``data_manifests/`` (``fedlab data list``) or "folder" for any
            ``ROOT/SITE/{train,test}/{image,mask}`` tree.
        data_dir: "" for the embedded synthetic data, else the dataset's root folder. Real data are verified
            against their manifest first; a failed check raises with a list of what to fix.
        config: Supplies the image size (and, for synthetic data, the data-set scale); default the preset.
        seed: Seed of the synthetic generator and of the validation split.
        heterogeneity: Synthetic only: 0 = all sites alike, 1 = default site differences.
        val_fraction: Real data: fraction of each site's training cases held out for model selection.
        device: Where the tensors are put (the engine moves them to the training device anyway).
        **options: Passed to the real-data loader (e.g. ``invert_mask=True`` for ``dataset="folder"``).
    """
    config = config or get_config()
    if not data_dir:
        from fedlab.data.synthetic import make_federation

        return make_federation(dataset, config=config, seed=seed, heterogeneity=heterogeneity, device=device)
    from fedlab.data.real import load_real

    return load_real(dataset, data_dir, image_size=config.image_size, val_fraction=val_fraction, seed=seed,
                     device=device, **options)
