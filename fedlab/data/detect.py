"""Which dataset does a folder hold? Match a folder against every manifest's layouts and the generic layout.

Matching looks at names only (folders, file names, counts); nothing is decoded. The best match is, in order:

1. a manifest whose sites are all there, with the file counts it lists (a complete copy);
2. a manifest some of whose sites are there, when the folder holds no other site folders (a subset);
3. the generic folder layout ``ROOT/<SITE>/{train,test}/{image,mask}/*`` (:mod:`fedlab.data.folder`);
4. a manifest matched by some site folders while the folder also holds sites it does not know.

Within a rank, more sites and more files win. Every match carries a sentence saying why it matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedlab.data.errors import DataError
from fedlab.data.folder import EXPECTED_LAYOUT, FolderLayout, find_folder_layout
from fedlab.data.layouts import list_pairs, site_present
from fedlab.data.manifest import IMAGE_LAYOUTS, Manifest, ManifestError, available_manifests, load_manifest

FOLDER = "folder"
_RANK_TEXT = {0: "complete", 1: "subset", 2: "generic layout", 3: "partial (the folder holds other sites too)"}


@dataclass(frozen=True)
class Match:
    """One way of reading a folder.

    Attributes:
        dataset: Manifest name, or "folder" for the generic layout.
        layout: The manifest layout matched, or the generic layout's image/mask folder names.
        task: "segmentation" or "classification".
        sites: Sites found, in the dataset's order.
        expected: The manifest's sites (the sites found, for the generic layout).
        files: Image (or table) files found.
        rank: 0 complete, 1 subset, 2 generic layout, 3 partial (see the module docstring).
        why: One sentence: what matched and what is missing.
    """

    dataset: str
    layout: str
    task: str
    sites: tuple[str, ...]
    expected: tuple[str, ...]
    files: int
    rank: int
    why: str

    @property
    def kind(self) -> str:
        """"complete", "subset", "generic layout" or "partial"."""
        return _RANK_TEXT[self.rank]


def _match_manifest(manifest: Manifest, root: Path, other_sites: set[str]) -> Match | None:
    """How ``root`` matches one layout of a manifest, or None when no site of it is there."""
    lay = manifest.layout
    present = [s for s in manifest.site_names if site_present(manifest, root, s)]
    if lay["kind"] == "table":
        table = root if root.is_file() else root / lay.get("file", "")
        if not table.is_file():
            return None
        present, files = list(manifest.site_names), 1
        complete = True
    elif lay["kind"] == "table_files":
        files = len(present)
        complete = len(present) == len(manifest.sites)
    else:
        files, complete, with_files = 0, len(present) == len(manifest.sites), []
        for site in present:
            n_site = 0
            for split in manifest.splits:
                n = len(list_pairs(manifest, root, site, split)[0])
                expected = (manifest.site(site).get("counts") or {}).get(split)
                complete = complete and (expected is None or n == int(expected))
                n_site += n
            files += n_site
            if n_site:
                with_files.append(site)
            listed = manifest.site(site).get("checksums") or {}  # a sample with checksums: its files by name
            complete = complete and all((root / manifest.site(site).get("folder", site) / rel).is_file()
                                        for rel in listed)
        present = with_files
    if not present:
        return None
    folders = {manifest.site(s).get("folder", s) for s in present}
    extra = sorted(other_sites - folders) if lay["kind"] == "split_folders" else []
    rank = 3 if extra else (0 if complete and len(present) == len(manifest.sites) else 1)
    description = str(lay.get("description", lay["kind"])).strip()
    missing = [s for s in manifest.site_names if s not in present]
    why = (f"dataset {manifest.name!r} (manifest {manifest.path.name}, layout {manifest.layout_name!r}: "
           f"{description}): {len(present)} of {len(manifest.sites)} sites ({', '.join(present)}), {files} file(s)")
    if rank == 0:
        why += ", every site with the file counts the manifest lists"
    elif missing:
        why += f"; absent: {', '.join(missing)}"
    elif rank == 1:
        why += "; fewer files than the manifest lists, or not the files it lists"
    if extra:
        why += f"; the folder also holds site folders the manifest does not know: {', '.join(extra)}"
    return Match(manifest.name, manifest.layout_name, manifest.task, tuple(present), tuple(manifest.site_names),
                 files, rank, why)


def _match_folder(layout: FolderLayout) -> Match:
    files = sum(n for c in layout.counts.values() for n in c.values())
    why = f"the generic folder layout: {layout.describe()}; no manifest describes these sites"
    return Match(FOLDER, f"{{train,test}}/{{{layout.image_dir},{layout.mask_dir}}}", "segmentation", layout.sites,
                 layout.sites, files, 2, why)


def find_matches(root: str | Path, task: str | None = None) -> list[Match]:
    """Every way ``root`` can be read (each manifest's best layout, and the generic layout), best first.

    Args:
        root: The folder (or, for one-file tables, the file).
        task: Keep only "segmentation" or "classification" datasets (None: all).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    folder = find_folder_layout(root)
    other_sites = set(folder.sites) if folder else set()
    matches = []
    for name in available_manifests():
        try:
            manifest = load_manifest(name)
        except ManifestError:
            continue  # `fedlab data list` reports invalid manifests
        if task is not None and manifest.task != task:
            continue
        best = None
        for layout in manifest.layout_names:
            m = _match_manifest(manifest.with_layout(layout), root, other_sites)
            if m is not None and (best is None or (m.rank, -len(m.sites), -m.files) < (best.rank, -len(best.sites),
                                                                                     -best.files)):
                best = m
        if best is not None:
            matches.append(best)
    if folder is not None and task in (None, "segmentation") and any(folder.counts[s]["train"] for s in folder.sites):
        matches.append(_match_folder(folder))
    return sorted(matches, key=lambda m: (m.rank, -len(m.sites), -m.files, m.dataset))


def detect(root: str | Path, task: str = "segmentation") -> Match:
    """The dataset ``root`` holds: the best of :func:`find_matches` (its ``why`` says what matched).

    Raises:
        DataError: nothing matches; the message lists the manifests' layouts and the generic layout.
    """
    matches = find_matches(root, task)
    if matches:
        best = matches[0]
        others = [f"{m.dataset} ({m.kind}, {len(m.sites)} of {len(m.expected)} sites)" for m in matches[1:]]
        if others:
            best = Match(**{**best.__dict__, "why": best.why + "; also matched: " + ", ".join(others)})
        return best
    layouts = []
    for name in available_manifests():
        try:
            manifest = load_manifest(name)
        except ManifestError:
            continue
        if manifest.task == task:
            for layout in manifest.layout_names:
                lay = manifest.with_layout(layout).layout
                if lay["kind"] in IMAGE_LAYOUTS:
                    layouts.append(f"{name} ({layout}): {str(lay.get('description', lay['kind'])).strip()}")
    raise DataError(f"{root} matches no known dataset layout. Known layouts:\n  - " + "\n  - ".join(layouts)
                    + f"\nor the generic layout {EXPECTED_LAYOUT}. Rearrange the folder, or name the dataset "
                    "(DATASET) and write a manifest for it (data_manifests/README.md).")
