"""One entry point for real image data: find what a folder holds, verify it, prepare it, load it as a Federation.

``dataset`` names a manifest (``fedlab data list``), is ``"folder"`` for a teacher's own
``ROOT/SITE/{train,test}/{image,mask}`` tree, or is empty: then the folder's layout is detected
(:func:`fedlab.data.detect.detect`) and the loader says what it found and why (``Federation.describe()``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from fedlab.data.detect import FOLDER, detect
from fedlab.data.errors import DataError
from fedlab.data.federation import Federation
from fedlab.data.folder import load_folder_federation
from fedlab.data.imaging import make_site
from fedlab.data.layouts import best_layout, site_present
from fedlab.data.manifest import load_manifest
from fedlab.data.prepare import cache_dir, prepare, read_cached
from fedlab.data.verify import verify

AUTO = ("", "auto")


class SubsetWarning(UserWarning):
    """The data folder holds a subset of a dataset (fewer sites or files than its manifest lists)."""


def load_real(dataset: str, data_dir: str | Path, image_size: int = 64, *, variant: str | None = None,
              layout: str | None = None, val_fraction: float = 0.0, seed: int = 0,
              device: str | torch.device = "cpu", check: bool = True, cache: str | Path | None = None,
              polarity: str | None = None, label_coding: Mapping[str, object] | None = None,
              **folder_options: object) -> Federation:
    """Detect (when ``dataset`` is empty), verify (unless ``check=False``), prepare and load a real dataset.

    Nothing is written under ``data_dir``: prepared arrays are cached in ``cache`` or the user cache folder
    (:func:`fedlab.data.prepare.cache_dir`).

    Args:
        dataset: "" or "auto" (detect from the folder), a manifest name or path (e.g. "prostate"), or
            "folder" for the generic ``ROOT/SITE/{train,test}/{image,mask}`` tree.
        data_dir: The dataset's root folder.
        image_size: Side of the square images in pixels.
        variant: Manifest variant (polyp: "as_released").
        layout: Manifest layout (default: the one the folder matches).
        val_fraction: Fraction of each site's training files/cases held out for validation.
        seed: Seed of that split.
        device: Where the tensors are put.
        check: Verify the files against the manifest first (names, counts and checksums always; every file
            decoded when the cache has to be built).
        cache: Cache folder for the prepared arrays (default: the user cache folder).
        polarity: Generic layout only: "bright" (default) or "dark" (masks with the object = 0).
        label_coding: Generic layout only: several labels from raw mask values, e.g.
            ``{"background": [255], "disc": [128, 0], "cup": [0]}``.
        **folder_options: Generic layout only: more options of
            :func:`~fedlab.data.folder.load_folder_federation` (e.g. ``mask_values``, ``max_foreground``).

    Returns:
        ``Federation(synthetic=False)``; ``provenance`` says which manifest and layout, why, what is missing
        (a subset) and the paper's letter of each site; ``source`` names the manifest and its hash.

    Raises:
        DataError: no known layout, the verification report (what to fix), a mask coding that does not fit the
            masks, or folder options given for a dataset whose manifest defines its coding.
    """
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    found = None
    if dataset in AUTO:
        match = detect(root)
        dataset, found = match.dataset, f"{root} matches {match.why}"
        if match.dataset != FOLDER and layout is None:
            layout = match.layout
    if dataset == FOLDER:
        fed = load_folder_federation(root, image_size=image_size, polarity=polarity or "bright",
                                     label_coding=label_coding, val_fraction=val_fraction, seed=seed, device=device,
                                     **folder_options)
        return replace(fed, provenance={**fed.provenance, "found": found or f"DATASET='folder' for {root}"})
    manifest = load_manifest(dataset, variant)
    given = {k: v for k, v in {"polarity": polarity, "label_coding": label_coding, **folder_options}.items() if v}
    if given:
        raise DataError(f"{sorted(given)} (notebook parameters MASK_POLARITY / LABEL_CODING) apply to the generic "
                        f"folder layout; dataset {manifest.name!r} is described "
                        f"by its manifest {manifest.path}, which defines its mask coding. Edit the manifest's mask "
                        "section, or load the folder as DATASET='folder' to pass your own coding.")
    if manifest.task != "segmentation":
        raise DataError(f"{manifest.name!r} is a table; load it with fedlab.data.tabular.")
    manifest = manifest.with_layout(layout or best_layout(manifest, root))
    if found is None:
        found = f"DATASET={manifest.name!r}, layout {manifest.layout_name!r} ({manifest.layout.get('description', '')})"
    subset: list[str] = []
    if check:
        cached = (cache_dir(manifest, root, image_size, cache) / "stamp.json").is_file()
        report = verify(manifest, root, decode=not cached)
        report.raise_if_failed()
        subset, present = report.subset, report.sites_found
    else:
        present = [s for s in manifest.site_names if site_present(manifest, root, s)]
    if subset:
        warnings.warn(f"{root} holds a SUBSET of {manifest.name}: " + "; ".join(subset)
                      + ". Results are not comparable with those on the full dataset.", SubsetWarning, stacklevel=2)
    out = prepare(manifest, root, image_size, out_dir=cache)
    letters = manifest.site_letters
    sites = []
    for k, name in enumerate(present):
        spec = manifest.site(name)
        x, y, owner = read_cached(out, name, "train")
        xt, yt, owner_t = read_cached(out, name, "test")
        if not len(xt):
            xt, yt, owner_t = x[:0], y[:0], owner[:0]
        meta = {**(spec.get("metadata") or {}), "source": f"manifest {manifest.name}",
                "manifest_hash": manifest.sha256}
        meta.update({key: spec[key] for key in ("description", "counts", "paper_site") if key in spec})
        sites.append(make_site(name, (x, y, owner.tolist()), (xt, yt, owner_t.tolist()), val_fraction=val_fraction,
                               seed=seed + k, device=device, metadata=meta))
    provenance = {"dataset": manifest.name, "manifest": str(manifest.path), "manifest_sha256": manifest.sha256,
                  "layout": manifest.layout_name, "variant": manifest.variant, "data_dir": str(root), "found": found,
                  "subset": "; ".join(subset), "site_letters": {s: letters[s] for s in present if s in letters},
                  "reference": manifest.reference, "mask_coding": manifest.mask_coding().describe()}
    source = (f"manifest:{manifest.name}" + (f"[{manifest.variant}]" if manifest.variant else "")
              + f" layout:{manifest.layout_name} sha256:{manifest.sha256}")
    return Federation(name=manifest.name, sites=tuple(sites), task="segmentation", labels=manifest.labels,
                      synthetic=False, source=source, provenance=provenance)
