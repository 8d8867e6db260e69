"""Where a manifest layout puts each site's files: image/mask pairs per site and split, by names only.

Layout kinds (``data_manifests/README.md``):

* ``split_folders``: ``ROOT/<folder>/<split>/<image_dir>/*`` with masks in ``<mask_dir>``, paired by stem;
* ``case_volumes``: ``ROOT/<folder>/<Case>.nii.gz`` with ``<Case><mask_suffix>.nii.gz``; cases sorted by
  name, the first ``int(train_fraction * n)`` train, the rest test (LC-Fed's protocol);
* ``file_lists``: per site and split, sources ``{images, masks, glob | range + name_template}`` under ROOT;
* ``table_files``: one delimited file per site; ``table``: one CSV for all sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedlab.data.imaging import IMAGE_EXTENSIONS, file_stem, is_nifti, list_images
from fedlab.data.manifest import IMAGE_LAYOUTS, Manifest, ManifestError


@dataclass(frozen=True)
class Pair:
    """One image file and its mask file (``mask`` is None when it is missing)."""

    image: Path
    mask: Path | None
    key: str


def site_folder(manifest: Manifest, root: Path, site: str) -> Path:
    """The folder of one site under ``root`` (its ``folder`` field, default its name)."""
    return Path(root) / manifest.site(site).get("folder", site)


def site_present(manifest: Manifest, root: str | Path, site: str) -> bool:
    """True when any of the site's files or folders exist under ``root`` (names only).

    A present site whose files do not follow the layout is *broken*; an absent one makes the copy a subset.
    """
    root, lay, spec = Path(root), manifest.layout, manifest.site(site)
    if lay["kind"] == "file_lists":
        sources = [src for split in (spec.get("files") or {}).values() for src in (split or [])]
        return any((root / src["images"]).is_dir() for src in sources)
    if lay["kind"] == "table_files":
        return (root / spec["file"]).is_file()
    if lay["kind"] == "table":
        return True
    return site_folder(manifest, root, site).is_dir()


def _expand_source(root: Path, src: dict) -> tuple[list[Path], Path, list[str]]:
    """Images of one ``file_lists`` source, its mask folder and problems (missing listed files)."""
    image_dir = root / src["images"]
    mask_dir = root / src.get("masks", str(src["images"]).replace("images", "masks"))
    if not image_dir.is_dir():
        return [], mask_dir, [f"missing folder {image_dir}"]
    if "range" in src:
        first, last = src["range"]
        template = src.get("name_template", "{}.png")
        files = [image_dir / template.format(i) for i in range(int(first), int(last) + 1)]
        missing = [f"missing file {p}" for p in files if not p.is_file()]
        return [p for p in files if p.is_file()], mask_dir, missing
    pattern = src.get("glob", "*")
    files = [p for p in image_dir.glob(pattern) if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(files), mask_dir, []


def list_pairs(manifest: Manifest, root: str | Path, site: str, split: str) -> tuple[list[Pair], list[str]]:
    """Image/mask file pairs of one site and split, plus problems found while listing them (names only)."""
    root, lay = Path(root), manifest.layout
    folder = site_folder(manifest, root, site)
    kind = lay["kind"]
    if kind == "split_folders":
        image_dir = folder / split / lay.get("image_dir", "image")
        mask_dir = folder / split / lay.get("mask_dir", "mask")
        if not image_dir.is_dir():
            return [], [f"missing folder {image_dir}"]
        images, problems = list_images(image_dir), []
        if not mask_dir.is_dir():
            problems.append(f"missing folder {mask_dir}")
        masks = {file_stem(p): p for p in list_images(mask_dir)} if mask_dir.is_dir() else {}
        orphans = sorted(set(masks) - {file_stem(p) for p in images})
        problems += [f"mask {masks[k]} has no image; add the image or remove the mask" for k in orphans]
        return [Pair(p, masks.get(file_stem(p)), file_stem(p)) for p in images], problems
    if kind == "case_volumes":
        if not folder.is_dir():
            return [], [f"missing folder {folder}"]
        suffix = lay.get("mask_suffix", "_segmentation").lower()
        files = [p for p in folder.iterdir() if p.is_file() and is_nifti(p) and not p.name.startswith(".")]
        masks = {file_stem(p)[: -len(suffix)]: p for p in files if file_stem(p).lower().endswith(suffix)}
        images = sorted((p for p in files if not file_stem(p).lower().endswith(suffix)), key=file_stem)
        n_train = int(len(images) * float(lay.get("train_fraction", 0.8)))
        chosen = images[:n_train] if split == "train" else images[n_train:]
        orphans = sorted(set(masks) - {file_stem(p) for p in images}) if split == "train" else []
        problems = [f"mask {masks[k]} has no image; add the image or remove the mask" for k in orphans]
        return [Pair(p, masks.get(file_stem(p)), file_stem(p)) for p in chosen], problems
    if kind == "file_lists":
        pairs, problems = [], []
        for src in (manifest.site(site)["files"].get(split) or []):
            images, mask_dir, probs = _expand_source(root, src)
            problems += probs
            masks = {file_stem(p): p for p in list_images(mask_dir)} if mask_dir.is_dir() else {}
            pairs += [Pair(p, masks.get(file_stem(p)), file_stem(p)) for p in images]
        return pairs, problems
    raise ManifestError(f"{manifest.path}: layout {manifest.layout_name!r} ({kind}) holds tables, not image pairs")


def best_layout(manifest: Manifest, root: str | Path) -> str:
    """The manifest layout under which ``root`` holds the most of the manifest's sites (the first on a tie)."""
    counts = {}
    for name in manifest.layout_names:
        candidate = manifest.with_layout(name)
        if candidate.layout["kind"] not in IMAGE_LAYOUTS:
            counts[name] = 0
            continue
        counts[name] = sum(bool(list_pairs(candidate, root, s, split)[0])
                           for s in candidate.site_names if site_present(candidate, root, s)
                           for split in candidate.splits)
    return max(manifest.layout_names, key=lambda n: (counts[n], -manifest.layout_names.index(n)))
