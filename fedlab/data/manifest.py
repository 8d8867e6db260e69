"""Dataset manifests: read, validate, hash, and verify a local copy of the data against them.

A manifest is one human-edited YAML file per dataset in ``data_manifests/`` (format:
``data_manifests/README.md``). It says what the dataset is, where it comes from, its licence,
its layout and file counts per site and split, checksums where the files are public, and the
preprocessing fedlab applies. Manifests are found, in order:

1. an explicit path to a ``.yaml`` file;
2. the folder named by the ``FEDLAB_MANIFEST_DIR`` environment variable;
3. ``data_manifests/`` beside the ``fedlab`` package (a source checkout or editable install).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedlab.data.imaging import (
    IMAGE_EXTENSIONS,
    DataError,
    MaskCoding,
    file_stem,
    is_nifti,
    list_images,
    read_array,
    spatial_shape,
)

MANIFEST_DIR_ENV = "FEDLAB_MANIFEST_DIR"
LAYOUT_KINDS = ("split_folders", "case_volumes", "file_lists", "table", "table_files")
REQUIRED = ("schema_version", "name", "title", "task", "source", "citation", "layout", "sites")
REQUIRED_SOURCE = ("url", "access", "licence")
SEGMENTATION_REQUIRED = ("labels", "channels", "mask")


class ManifestError(ValueError):
    """A manifest file is missing a field or has a wrong one; the message names the file and field."""


def manifest_dirs() -> list[Path]:
    """Folders searched for ``<name>.yaml``, in order."""
    dirs = []
    if os.environ.get(MANIFEST_DIR_ENV):
        dirs.append(Path(os.environ[MANIFEST_DIR_ENV]).expanduser())
    dirs.append(Path(__file__).resolve().parents[2] / "data_manifests")
    return dirs


def find_manifest(name_or_path: str | Path) -> Path:
    """Path of a manifest given its dataset name or a path to a YAML file.

    Raises:
        ManifestError: nothing found (the message lists the folders searched and the names available).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml"):
        if candidate.is_file():
            return candidate
        raise ManifestError(f"manifest file {candidate} does not exist")
    for folder in manifest_dirs():
        for ext in (".yaml", ".yml"):
            path = folder / f"{name_or_path}{ext}"
            if path.is_file():
                return path
    raise ManifestError(f"no manifest named {str(name_or_path)!r} in {[str(d) for d in manifest_dirs()]}; "
                        f"available: {available_manifests()}. Pass a path to a .yaml file, or set "
                        f"{MANIFEST_DIR_ENV} to the folder that holds your manifests.")


def available_manifests() -> list[str]:
    """Names of the manifests found in :func:`manifest_dirs`."""
    names = set()
    for folder in manifest_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.y*ml"))
    return sorted(names)


def manifest_hash(path: str | Path) -> str:
    """SHA-256 of the manifest file (recorded in summary.json as the data's provenance)."""
    return hashlib.sha256(Path(find_manifest(path)).read_bytes()).hexdigest()


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest (``md5`` or ``sha256``) of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.

    Attributes:
        name: Dataset name (the file's stem by convention).
        path: The YAML file.
        data: The parsed YAML with the chosen variant's site overrides applied.
        variant: The variant applied (None = the manifest's default).
    """

    name: str
    path: Path
    data: dict
    variant: str | None = None

    @property
    def task(self) -> str:
        return self.data["task"]

    @property
    def layout(self) -> dict:
        return self.data["layout"]

    @property
    def sites(self) -> list[dict]:
        return self.data["sites"]

    @property
    def site_names(self) -> list[str]:
        return [s["name"] for s in self.sites]

    @property
    def splits(self) -> list[str]:
        return list(self.layout.get("splits", ["train", "test"]))

    @property
    def preprocessing(self) -> dict:
        return self.data.get("preprocessing") or {}

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.data.get("labels") or ("foreground",))

    @property
    def sha256(self) -> str:
        return file_digest(self.path, "sha256")

    def mask_coding(self) -> MaskCoding:
        """The manifest's mask coding as a :class:`MaskCoding`."""
        m = self.data["mask"]
        if m.get("coding", "binary") == "levels":
            levels = {k: tuple(v) for k, v in m["levels"].items()}
            return MaskCoding(levels=levels, background=m.get("background"))
        invert = bool(m.get("invert", False))
        return MaskCoding(labels=self.labels, threshold=m.get("threshold"), invert=invert,
                          values=m.get("values"))

    def site(self, name: str) -> dict:
        for s in self.sites:
            if s["name"] == name:
                return s
        raise KeyError(f"manifest {self.name!r} has no site {name!r}; sites are {self.site_names}")


def _require(where: str, mapping: object, keys: Iterable[str], path: Path, hint: str = "") -> None:
    if not isinstance(mapping, dict):
        raise ManifestError(f"{path}: {where} must be a mapping (key: value), got {type(mapping).__name__}")
    missing = [k for k in keys if k not in mapping or mapping[k] in (None, "")]
    if missing:
        raise ManifestError(f"{path}: {where} is missing required field(s) {missing}. {hint}"
                            "See data_manifests/README.md for the format.")


def validate(data: dict, path: Path) -> None:
    """Check that a parsed manifest has every required field; raise :class:`ManifestError` otherwise."""
    _require("the manifest", data, REQUIRED, path)
    _require("'source'", data["source"], REQUIRED_SOURCE, path, "Say where the data comes from. ")
    if data["task"] not in ("segmentation", "classification"):
        raise ManifestError(f"{path}: task must be 'segmentation' or 'classification', got {data['task']!r}")
    _require("'layout'", data["layout"], ("kind",), path)
    kind = data["layout"]["kind"]
    if kind not in LAYOUT_KINDS:
        raise ManifestError(f"{path}: layout.kind must be one of {LAYOUT_KINDS}, got {kind!r}")
    if data["task"] == "segmentation":
        _require("the manifest", data, SEGMENTATION_REQUIRED, path, "Segmentation datasets need these. ")
        coding = data["mask"].get("coding", "binary")
        if coding == "levels":
            _require("'mask' (levels coding)", data["mask"], ("levels",), path)
        elif coding != "binary":
            raise ManifestError(f"{path}: mask.coding must be 'binary' or 'levels', got {coding!r}")
    if not isinstance(data["sites"], list) or not data["sites"]:
        raise ManifestError(f"{path}: 'sites' must be a non-empty list of sites")
    for i, site in enumerate(data["sites"]):
        _require(f"sites[{i}]", site, ("name",), path)
        if kind == "file_lists":
            _require(f"site {site['name']!r}", site, ("files",), path,
                     "file_lists layouts list sources per split. ")
        if kind == "table_files":
            _require(f"site {site['name']!r}", site, ("file",), path)


def load_manifest(name_or_path: str | Path | Manifest, variant: str | None = None) -> Manifest:
    """Read and validate a manifest, applying a variant's site overrides.

    Args:
        name_or_path: Dataset name (e.g. "polyp"), a path to a YAML file, or a Manifest (returned as is
            when no variant is asked for).
        variant: One of the manifest's ``variants`` (e.g. polyp's "as_released"); None or the name in
            ``default_variant`` (polyp: "corrected") = the sites as written.

    Raises:
        ManifestError: unreadable YAML, missing fields, unknown variant.
    """
    if isinstance(name_or_path, Manifest):
        if variant is None or variant == name_or_path.variant:
            return name_or_path
        name_or_path = name_or_path.path
    path = find_manifest(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest must be a YAML mapping, got {type(data).__name__}")
    validate(data, path)
    if variant is not None and variant == data.get("default_variant"):
        variant = None  # the manifest's sites already describe its default variant
    if variant is not None:
        variants = data.get("variants") or {}
        if variant not in variants:
            raise ManifestError(f"{path}: unknown variant {variant!r}; available: {sorted(variants)}")
        overrides = variants[variant].get("sites") or {}
        sites = []
        for site in data["sites"]:
            sites.append({**site, **overrides.get(site["name"], {})})
        data = {**data, "sites": sites}
        validate(data, path)
    return Manifest(name=data["name"], path=path, data=data, variant=variant)


# ----------------------------------------------------------------------------- file enumeration


@dataclass(frozen=True)
class Pair:
    """One image file and its mask file (``mask`` is None when it is missing)."""

    image: Path
    mask: Path | None
    key: str


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
    """Image/mask file pairs of one site and split, plus problems found while listing them.

    For ``case_volumes`` layouts the split follows the manifest's rule: cases sorted by name, the
    first ``int(n * train_fraction)`` are train, the rest test (LC-Fed's protocol).
    """
    root, lay, s = Path(root), manifest.layout, manifest.site(site)
    folder = root / s.get("folder", site)
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
        files = [p for p in folder.iterdir() if p.is_file() and is_nifti(p)]
        masks = {file_stem(p)[: -len(suffix)]: p for p in files if file_stem(p).lower().endswith(suffix)}
        images = sorted((p for p in files if not file_stem(p).lower().endswith(suffix)), key=file_stem)
        n_train = int(len(images) * float(lay.get("train_fraction", 0.8)))
        chosen = images[:n_train] if split == "train" else images[n_train:]
        orphans = sorted(set(masks) - {file_stem(p) for p in images}) if split == "train" else []
        problems = [f"mask {masks[k]} has no image; add the image or remove the mask" for k in orphans]
        return [Pair(p, masks.get(file_stem(p)), file_stem(p)) for p in chosen], problems
    if kind == "file_lists":
        pairs, problems = [], []
        for src in (s["files"].get(split) or []):
            images, mask_dir, probs = _expand_source(root, src)
            problems += probs
            masks = {file_stem(p): p for p in list_images(mask_dir)} if mask_dir.is_dir() else {}
            pairs += [Pair(p, masks.get(file_stem(p)), file_stem(p)) for p in images]
        return pairs, problems
    raise ManifestError(f"{manifest.path}: layout {kind!r} has no image pairs")


# ----------------------------------------------------------------------------- verification


@dataclass
class SiteRow:
    """One line of the verification table."""

    site: str
    split: str
    expected: int | None
    found: int
    checked: int
    problems: int


@dataclass
class Report:
    """Result of :func:`verify`: a per-site table and the list of problems (each says what to fix).

    Attributes:
        name: Dataset name.
        root: The folder that was checked.
        rows: One row per site and split.
        problems: Human-readable problems; empty when the data matches the manifest.
        manifest_sha256: Hash of the manifest used (for summary.json).
    """

    name: str
    root: Path
    rows: list[SiteRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    manifest_sha256: str = ""

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def table(self) -> str:
        """The per-site table as text."""
        w = max([len("site"), *(len(r.site) for r in self.rows)]) + 2
        head = f"{'site':<{w}}{'split':<8}{'expected':>9}{'found':>7}{'checked':>9}{'problems':>9}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            exp = "-" if r.expected is None else str(r.expected)
            lines.append(f"{r.site:<{w}}{r.split:<8}{exp:>9}{r.found:>7}{r.checked:>9}{r.problems:>9}")
        return "\n".join(lines)

    def __str__(self) -> str:
        status = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        out = [f"{self.name} at {self.root}: {status}", self.table()]
        if self.problems:
            out.append("Problems (fix these, then run the check again):")
            out += [f"  - {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                out.append(f"  ... and {len(self.problems) - 50} more")
        return "\n".join(out)

    def raise_if_failed(self) -> None:
        """Raise :class:`DataError` with the report when a problem was found."""
        if not self.ok:
            raise DataError(str(self))


def _check_checksums(manifest: Manifest, root: Path, site: dict, problems: list[str]) -> None:
    folder = root / site.get("folder", site["name"])
    for rel, spec in (site.get("checksums") or {}).items():
        algorithm, _, expected = str(spec).partition(":")
        path = folder / rel
        if not path.is_file():
            problems.append(f"site {site['name']}: missing file {path} (listed with a checksum); "
                            "download it again.")
        elif file_digest(path, algorithm) != expected.lower():
            problems.append(f"site {site['name']}: checksum mismatch for {path} ({algorithm} is "
                            f"{file_digest(path, algorithm)}, expected {expected}); the file is corrupt or "
                            "a different version: download it again.")


def _fmt(values: list[float]) -> str:
    """Values as a list, integers without a decimal point."""
    return str([int(v) if float(v).is_integer() else v for v in values])


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
        return [f"mask {pair.mask} has values {_fmt(bad[:5])} outside the expected "
                f"{_fmt(sorted(coding.allowed_values()))} (mask.values / the label coding in the "
                "manifest); the mask is not binary or is coded differently: fix the file or the manifest's "
                "mask section."]
    return []


def verify(name_or_manifest: str | Path | Manifest, root: str | Path, variant: str | None = None,
           decode: bool = True) -> Report:
    """Check a local copy of a dataset against its manifest.

    Checks: every site folder is present; file counts per site and split; checksums (md5/sha256)
    where listed; every file decodes (corrupt or truncated files are found); every image has a
    mask of the same shape; mask values are the manifest's (binary, or its label coding).

    Args:
        name_or_manifest: Manifest name, path or object.
        root: The dataset's root folder (or, for one-file tables, the file itself).
        variant: Manifest variant (e.g. polyp "as_released").
        decode: Decode every image and mask (slower, finds corrupt files); False checks only names.

    Returns:
        A :class:`Report`; print it for the per-site table, test ``.ok``, read ``.problems``.
    """
    manifest = load_manifest(name_or_manifest, variant)
    root = Path(root).expanduser()
    report = Report(name=manifest.name, root=root, manifest_sha256=manifest.sha256)
    if not root.exists():
        report.problems.append(f"data folder {root} does not exist; download the data (see "
                               f"{manifest.path.name}: source) and pass its folder as --root.")
        return report
    if manifest.layout["kind"] in ("table", "table_files"):
        from fedlab.data.manifest_tables import verify_tables

        verify_tables(manifest, root, report)
        return report
    coding = manifest.mask_coding()
    for site in manifest.sites:
        name = site["name"]
        folder = root / site.get("folder", name)
        if not folder.is_dir() and manifest.layout["kind"] != "file_lists":
            report.problems.append(f"site {name}: folder {folder} is missing; put the site's files there "
                                   f"(layout: {manifest.layout.get('description', manifest.layout['kind'])})."
                                   )
            for split in manifest.splits:
                report.rows.append(SiteRow(name, split, (site.get("counts") or {}).get(split), 0, 0, 1))
            continue
        _check_checksums(manifest, root, site, report.problems)
        for split in manifest.splits:
            pairs, listing = list_pairs(manifest, root, name, split)
            layout = manifest.layout.get("description", manifest.layout["kind"])
            hint = f" (expected layout: {layout}; check --root)"
            problems = [f"site {name} ({split}): {p}" + (hint if p.startswith("missing") else "")
                        for p in listing]
            expected = (site.get("counts") or {}).get(split)
            if expected is not None and len(pairs) != int(expected):
                problems.append(f"site {name} ({split}): expected {expected} images, found {len(pairs)}; "
                                "some files are missing or extra (compare with the manifest's layout).")
            checked = 0
            for pair in pairs:
                if pair.mask is None:
                    problems.append(f"site {name} ({split}): image {pair.image} has no mask "
                                    f"(expected a mask named {pair.key}.*); add the mask or remove the "
                                    "image.")
                    continue
                if decode:
                    problems += [f"site {name} ({split}): {p}" for p in _check_pair(pair, coding)]
                checked += 1
            report.rows.append(SiteRow(name, split, expected, len(pairs), checked, len(problems)))
            report.problems += problems
    return report
