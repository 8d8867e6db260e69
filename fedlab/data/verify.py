"""Check a local copy of a dataset against its manifest; tell a subset of the dataset from a broken copy.

Checks, for image datasets: which of the manifest's sites are present; file counts per site and split;
checksums (md5 / sha256, with MONAI's ``check_hash``) where listed; that every file decodes (corrupt or
truncated files are found); that every image has a mask of the same shape; that mask values are the
manifest's coding. Tables are checked by :mod:`fedlab.data.manifest_tables`.

Fewer sites or fewer files than the manifest lists make the copy a *subset* (usable, reported as such);
everything else that differs is a *problem*.
"""

from __future__ import annotations

from pathlib import Path

from fedlab.data.checksums import hash_matches
from fedlab.data.coding import MaskCoding, format_values
from fedlab.data.errors import DataError
from fedlab.data.imaging import is_nifti, read_array, spatial_shape
from fedlab.data.layouts import Pair, best_layout, list_pairs, site_folder, site_present
from fedlab.data.manifest import IMAGE_LAYOUTS, Manifest, load_manifest
from fedlab.data.manifest_tables import verify_tables
from fedlab.data.report import Report, SiteRow


def _check_pair(pair: Pair, coding: MaskCoding) -> list[str]:
    try:
        img = read_array(pair.image, "image")
        msk = read_array(pair.mask, "mask")
    except DataError as exc:
        return [str(exc)]
    spatial = spatial_shape(img, is_nifti(pair.image))
    if spatial != spatial_shape(msk, is_nifti(pair.mask)):
        return [f"shape mismatch: image {pair.image} is {tuple(spatial)} but mask {pair.mask} is "
                f"{tuple(msk.shape)}; re-export the mask at the image's size."]
    bad = coding.unexpected_values(msk)
    if bad:
        return [f"mask {pair.mask} has values {format_values(bad[:5])} outside the expected "
                f"{format_values(sorted(coding.allowed_values()))} ({coding.describe()}); the mask is coded "
                "differently from the manifest's mask section: fix the file or the manifest."]
    return []


def _check_checksums(manifest: Manifest, root: Path, site: dict, short: bool, report: Report) -> None:
    """Listed checksums; absent listed files are a subset note when the site holds fewer files than listed."""
    folder = site_folder(manifest, root, site["name"])
    absent = []
    for rel, spec in (site.get("checksums") or {}).items():
        path = folder / rel
        if not path.is_file():
            absent.append(path)
        elif not hash_matches(path, spec):
            report.problems.append(f"site {site['name']}: checksum mismatch for {path} (expected {spec}); the file "
                                   "is corrupt or a different version: download it again.")
    if absent and short:
        report.subset.append(f"site {site['name']}: {len(absent)} file(s) listed with checksums are not here "
                             f"(e.g. {absent[0]})")
    else:
        report.problems += [f"site {site['name']}: missing file {p} (listed with a checksum); download it again."
                            for p in absent]


def _verify_site(manifest: Manifest, root: Path, site: dict, coding: MaskCoding, decode: bool,
                 report: Report) -> None:
    name = site["name"]
    layout = manifest.layout.get("description", manifest.layout["kind"])
    short = False
    for split in manifest.splits:
        pairs, listing = list_pairs(manifest, root, name, split)
        problems = [f"site {name} ({split}): {p}" + (f" (expected layout: {layout})" if p.startswith("missing")
                                                     else "") for p in listing]
        expected = (site.get("counts") or {}).get(split)
        if not pairs and not listing:
            problems.append(f"site {name} ({split}): no {split} images found (expected layout: {layout}).")
        elif expected is not None and len(pairs) > int(expected):
            problems.append(f"site {name} ({split}): expected {expected} images, found {len(pairs)}; the extra "
                            "files do not belong to this dataset (compare with the manifest's layout).")
        elif expected is not None and len(pairs) < int(expected):
            short = True
            report.subset.append(f"site {name} ({split}): {len(pairs)} of {expected} images")
        checked = 0
        for pair in pairs:
            if pair.mask is None:
                problems.append(f"site {name} ({split}): image {pair.image} has no mask (expected a mask named "
                                f"{pair.key}.*); add the mask or remove the image.")
                continue
            if decode:
                problems += [f"site {name} ({split}): {p}" for p in _check_pair(pair, coding)]
            checked += 1
        report.rows.append(SiteRow(name, split, expected, len(pairs), checked, len(problems)))
        report.problems += problems
    if short and manifest.layout["kind"] == "case_volumes":
        report.subset.append(f"site {name}: the train/test split is made from the cases present (first "
                             f"{manifest.layout.get('train_fraction', 0.8):.0%} train), so it differs from the "
                             "full dataset's")
    _check_checksums(manifest, root, site, short, report)


def verify(name_or_manifest: str | Path | Manifest, root: str | Path, variant: str | None = None,
           decode: bool = True, layout: str | None = None) -> Report:
    """Check a local copy of a dataset against its manifest.

    Args:
        name_or_manifest: Manifest name, path or object.
        root: The dataset's root folder (or, for one-file tables, the file itself).
        variant: Manifest variant (e.g. polyp "as_released").
        decode: Decode every image and mask (slower, finds corrupt files); False checks only names and checksums.
        layout: One of the manifest's layouts; None = the one the folder matches best (a Manifest object
            keeps its own layout).

    Returns:
        A :class:`~fedlab.data.report.Report`: print it for the per-site table, test ``.ok`` (nothing broken),
        ``.is_subset`` (sites or files missing), read ``.problems`` and ``.subset``.
    """
    manifest = load_manifest(name_or_manifest, variant)
    root = Path(root).expanduser()
    if layout is None and not isinstance(name_or_manifest, Manifest) and root.exists():
        layout = best_layout(manifest, root)
    manifest = manifest.with_layout(layout)
    report = Report(name=manifest.name, root=root, layout=manifest.layout_name, manifest_sha256=manifest.sha256)
    if not root.exists():
        report.problems.append(f"data folder {root} does not exist; download the data (see "
                               f"{manifest.path.name}: source) and pass its folder as --root.")
        return report
    if manifest.layout["kind"] not in IMAGE_LAYOUTS:
        verify_tables(manifest, root, report)
        return report
    present = [s for s in manifest.site_names if site_present(manifest, root, s)]
    if not present:
        description = manifest.layout.get("description", manifest.layout["kind"])
        report.problems.append(f"none of the sites {manifest.site_names} of {manifest.name} is in {root} "
                               f"(expected layout {manifest.layout_name}: {description}); check --root.")
    coding = manifest.mask_coding()
    for site in manifest.sites:
        if site["name"] not in present:
            if present:
                where = ("none of its folders found" if manifest.layout["kind"] == "file_lists"
                         else f"{site_folder(manifest, root, site['name'])} not found")
                report.subset.append(f"site {site['name']} is absent ({where})")
            for split in manifest.splits:
                report.rows.append(SiteRow(site["name"], split, (site.get("counts") or {}).get(split), None, 0, 0))
            continue
        report.sites_found.append(site["name"])
        _verify_site(manifest, root, site, coding, decode, report)
    return report
