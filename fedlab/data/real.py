"""One entry point for notebooks: verify real data, prepare it, load it as a Federation.

``DATASET`` names a manifest (``fedlab data list``) or is ``"folder"`` for a teacher's own
``ROOT/SITE/{train,test}/{image,mask}`` tree; ``DATA_DIR`` is where the files are.
"""

from __future__ import annotations

from pathlib import Path

from fedlab.data.federation import Federation
from fedlab.data.imaging import DataError, load_folder_federation, make_site
from fedlab.data.manifest import load_manifest, verify
from fedlab.data.prepare import cache_dir, prepare, read_cached

FOLDER = "folder"


def load_real(dataset: str, data_dir: str | Path, image_size: int = 64, *, variant: str | None = None,
              val_fraction: float = 0.0, seed: int = 0, device: str = "cpu", check: bool = True,
              cache: str | Path | None = None, **folder_options: object) -> Federation:
    """Verify (unless ``check=False``), prepare and load a real dataset.

    Args:
        dataset: A manifest name or path (e.g. "prostate", "prostate_nci_isbi2013_slices"), or "folder"
            for any ``ROOT/SITE/{train,test}/{image,mask}`` tree (then ``folder_options`` go to
            :func:`~fedlab.data.imaging.load_folder_federation`, e.g. ``invert_mask=True``).
        data_dir: The dataset's root folder.
        image_size: Side of the square images in pixels.
        variant: Manifest variant (polyp: "as_released").
        val_fraction: Fraction of each site's training files/cases held out for validation.
        seed: Seed of that split.
        device: Where the tensors are put.
        check: Verify the files against the manifest first (names, counts and checksums always; every
            file decoded when the cache has to be built).
        cache: Cache folder for the prepared arrays (default: see :func:`fedlab.data.prepare.cache_dir`).

    Returns:
        ``Federation(synthetic=False)``; its ``source`` names the manifest and its hash.

    Raises:
        DataError: the verification report, listing what to fix.
    """
    root = Path(data_dir).expanduser()
    if dataset == FOLDER:
        return load_folder_federation(root, name=root.name, image_size=image_size, val_fraction=val_fraction,
                                      seed=seed, device=device, **folder_options)
    if folder_options:
        raise TypeError(f"options {sorted(folder_options)} apply only to dataset='folder'")
    manifest = load_manifest(dataset, variant)
    if manifest.task != "segmentation":
        raise DataError(f"{manifest.name!r} is a table; load it with fedlab.data.tabular.")
    if check:
        cached = (cache_dir(manifest, root, image_size, cache) / "stamp.json").is_file()
        verify(manifest, root, decode=not cached).raise_if_failed()
    out = prepare(manifest, root, image_size, out_dir=cache)
    sites = []
    for k, site in enumerate(manifest.sites):
        x, y, owner = read_cached(out, site["name"], "train")
        xt, yt, _ = read_cached(out, site["name"], "test")
        if not len(xt):
            xt, yt = x[:0], y[:0]
        meta = {**(site.get("metadata") or {}), "source": f"manifest {manifest.name}"}
        meta.update({key: site[key] for key in ("description", "counts") if key in site})
        sites.append(make_site(site["name"], (x, y, owner.tolist()), (xt, yt), val_fraction=val_fraction,
                               seed=seed + k, device=device, metadata=meta))
    return Federation(name=manifest.name, sites=tuple(sites), task="segmentation", labels=manifest.labels,
                      synthetic=False, source=f"manifest:{manifest.name}"
                      + (f"[{manifest.variant}]" if manifest.variant else "") + f" sha256:{manifest.sha256}")


def data_provenance(dataset: str, data_dir: str | Path | None, variant: str | None = None) -> dict:
    """What summary.json records about the data: synthetic or real, manifest and its sha256."""
    if not data_dir:
        return {"synthetic": True, "dataset": dataset, "data_dir": None, "manifest": None,
                "manifest_sha256": None}
    if dataset == FOLDER:
        return {"synthetic": False, "dataset": FOLDER, "data_dir": str(data_dir), "manifest": None,
                "manifest_sha256": None}
    manifest = load_manifest(dataset, variant)
    return {"synthetic": False, "dataset": manifest.name, "variant": variant, "data_dir": str(data_dir),
            "manifest": str(manifest.path), "manifest_sha256": manifest.sha256}
