"""Dataset manifests: find, read and validate the YAML file that holds every fact fedlab knows about a dataset.

A manifest is one human-edited YAML file per dataset in ``data_manifests/`` (format:
``data_manifests/README.md``). It says what the dataset is, where it comes from, its licence, the layouts
its public releases use (with the mask coding and preprocessing of each), its sites (with the letter the
paper gives each one), file counts, checksums where the files are public, and which published table its
results are compared with. Loaders, ``fedlab data verify`` and the notebooks read these facts from here only.

Manifests are found, in order:

1. an explicit path to a ``.yaml`` file;
2. the folder named by the ``FEDLAB_MANIFEST_DIR`` environment variable;
3. ``data_manifests/`` beside the ``fedlab`` package (a source checkout or editable install).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from fedlab.data.coding import MAX_FOREGROUND, MaskCoding

MANIFEST_DIR_ENV = "FEDLAB_MANIFEST_DIR"
LAYOUT_KINDS = ("split_folders", "case_volumes", "file_lists", "table", "table_files")
IMAGE_LAYOUTS = ("split_folders", "case_volumes", "file_lists")
REQUIRED = ("schema_version", "name", "title", "task", "source", "citation", "sites")
REQUIRED_SOURCE = ("url", "access", "licence")
SEGMENTATION_REQUIRED = ("labels", "channels")


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


@dataclass(frozen=True)
class Manifest:
    """A validated manifest, resolved to one variant and one layout.

    Attributes:
        name: Dataset name (the file's stem by convention).
        path: The YAML file.
        data: The parsed YAML with the variant's site overrides and the layout's mask, preprocessing and
            counts applied: ``data["layout"]`` is the chosen layout.
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
        """The chosen layout (its ``name``, ``kind`` and kind-specific keys)."""
        return self.data["layout"]

    @property
    def layout_name(self) -> str:
        return self.layout["name"]

    @property
    def layout_names(self) -> list[str]:
        """Every layout the manifest accepts; the first is the release its counts and checksums describe."""
        return [lay["name"] for lay in self.data["layouts"]]

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
    def site_letters(self) -> dict[str, str]:
        """Site name -> the letter the paper gives it (``paper_site``); sites without one are left out."""
        return {s["name"]: str(s["paper_site"]) for s in self.sites if s.get("paper_site")}

    @property
    def reference(self) -> dict:
        """The published table this dataset is compared with, e.g. ``{"table": "lcfed", "dataset": "prostate"}``."""
        return dict(self.data.get("reference") or {})

    @property
    def sha256(self) -> str:
        """SHA-256 of the manifest file (recorded with every result as the data's provenance)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def mask_coding(self) -> MaskCoding:
        """The chosen layout's mask coding as a :class:`MaskCoding`."""
        m = self.data["mask"]
        if m.get("coding", "binary") == "levels":
            return MaskCoding(levels={k: tuple(v) for k, v in m["levels"].items()}, background=m.get("background"))
        return MaskCoding(labels=self.labels, threshold=m.get("threshold"), invert=bool(m.get("invert", False)),
                          values=m.get("values"))

    @property
    def max_foreground(self) -> float:
        """Largest median fraction of an image the masks may cover (``mask.max_foreground``, default 0.5)."""
        return float(self.data["mask"].get("max_foreground", MAX_FOREGROUND))

    def site(self, name: str) -> dict:
        for s in self.sites:
            if s["name"] == name:
                return s
        raise KeyError(f"manifest {self.name!r} has no site {name!r}; sites are {self.site_names}")

    def with_layout(self, layout: str | None) -> Manifest:
        """The same manifest resolved to another of its layouts (None = the first)."""
        if layout is None or layout == self.layout_name:
            return self
        return load_manifest(self.path, self.variant, layout)


def _require(where: str, mapping: object, keys: Iterable[str], path: Path, hint: str = "") -> None:
    if not isinstance(mapping, dict):
        raise ManifestError(f"{path}: {where} must be a mapping (key: value), got {type(mapping).__name__}")
    missing = [k for k in keys if k not in mapping or mapping[k] in (None, "")]
    if missing:
        raise ManifestError(f"{path}: {where} is missing required field(s) {missing}. {hint}"
                            "See data_manifests/README.md for the format.")


def _layouts(data: dict, path: Path) -> list[dict]:
    """The manifest's layouts, each with a name (a single ``layout`` is named after its kind)."""
    if "layouts" in data:
        if "layout" in data:
            raise ManifestError(f"{path}: give either 'layout' (one) or 'layouts' (a list), not both")
        layouts = data["layouts"]
        if not isinstance(layouts, list) or not layouts:
            raise ManifestError(f"{path}: 'layouts' must be a non-empty list of layouts")
        for i, lay in enumerate(layouts):
            _require(f"layouts[{i}]", lay, ("name", "kind"), path)
        names = [lay["name"] for lay in layouts]
        if len(set(names)) != len(names):
            raise ManifestError(f"{path}: layout names must be unique, got {names}")
        return [dict(lay) for lay in layouts]
    if "layout" not in data:
        raise ManifestError(f"{path}: the manifest is missing required field(s) ['layout'] (or 'layouts'). "
                            "See data_manifests/README.md for the format.")
    _require("'layout'", data["layout"], ("kind",), path)
    return [{"name": data["layout"]["kind"], **data["layout"]}]


def _validate_mask(mask: object, where: str, path: Path) -> None:
    _require(where, mask, (), path)
    coding = mask.get("coding", "binary")
    if coding == "levels":
        _require(f"{where} (levels coding)", mask, ("levels",), path)
        if not isinstance(mask["levels"], dict) or not all(isinstance(v, list) for v in mask["levels"].values()):
            raise ManifestError(f"{path}: {where}.levels must map each label to a list of raw values, "
                                "e.g. {disc: [128, 0], cup: [0]}")
    elif coding != "binary":
        raise ManifestError(f"{path}: {where}.coding must be 'binary' or 'levels', got {coding!r}")


def validate(data: dict, path: Path) -> None:
    """Check that a parsed manifest has every required field; raise :class:`ManifestError` otherwise."""
    _require("the manifest", data, REQUIRED, path)
    _require("'source'", data["source"], REQUIRED_SOURCE, path, "Say where the data comes from. ")
    if data["task"] not in ("segmentation", "classification"):
        raise ManifestError(f"{path}: task must be 'segmentation' or 'classification', got {data['task']!r}")
    layouts = _layouts(data, path)
    for lay in layouts:
        if lay["kind"] not in LAYOUT_KINDS:
            raise ManifestError(f"{path}: layout {lay['name']!r}: kind must be one of {LAYOUT_KINDS}, "
                                f"got {lay['kind']!r}")
    if data["task"] == "segmentation":
        _require("the manifest", data, SEGMENTATION_REQUIRED, path, "Segmentation datasets need these. ")
        if "mask" in data:
            _validate_mask(data["mask"], "'mask'", path)
        for lay in layouts:
            if "mask" in lay:
                _validate_mask(lay["mask"], f"layout {lay['name']!r}: 'mask'", path)
            elif "mask" not in data:
                raise ManifestError(f"{path}: layout {lay['name']!r} has no mask coding: give a top-level 'mask' "
                                    "section or one in the layout.")
    if not isinstance(data["sites"], list) or not data["sites"]:
        raise ManifestError(f"{path}: 'sites' must be a non-empty list of sites")
    letters = []
    for i, site in enumerate(data["sites"]):
        _require(f"sites[{i}]", site, ("name",), path)
        if any(lay["kind"] == "file_lists" for lay in layouts):
            _require(f"site {site['name']!r}", site, ("files",), path, "file_lists layouts list sources per split. ")
        if any(lay["kind"] == "table_files" for lay in layouts):
            _require(f"site {site['name']!r}", site, ("file",), path)
        if site.get("paper_site") is not None:
            letter = str(site["paper_site"])
            if len(letter) != 1 or not letter.isupper():
                raise ManifestError(f"{path}: site {site['name']!r}: paper_site must be one capital letter, "
                                    f"got {letter!r}")
            letters.append(letter)
    if len(set(letters)) != len(letters):
        raise ManifestError(f"{path}: two sites share a paper_site letter: {letters}")
    reference = data.get("reference")
    if reference is not None:
        _require("'reference'", reference, ("table", "dataset"), path, "Name the published table. ")


def _resolve_layout(data: dict, path: Path, layout: str | None) -> dict:
    """``data`` with ``layout``, ``mask``, ``preprocessing`` and site counts of the chosen layout."""
    layouts = _layouts(data, path)
    names = [lay["name"] for lay in layouts]
    if layout is None:
        layout = names[0]
    if layout not in names:
        raise ManifestError(f"{path}: unknown layout {layout!r}; the manifest accepts {names}")
    chosen = next(lay for lay in layouts if lay["name"] == layout)
    out = {**data, "layouts": layouts, "layout": chosen}
    out["mask"] = dict(chosen.get("mask") or data.get("mask") or {})
    out["preprocessing"] = {**(data.get("preprocessing") or {}), **(chosen.get("preprocessing") or {})}
    if chosen is not layouts[0]:  # the sites' counts and checksums describe the first layout only
        counts = chosen.get("counts") or {}
        out["sites"] = [{**{k: v for k, v in s.items() if k not in ("counts", "checksums")},
                         **({"counts": counts[s["name"]]} if s["name"] in counts else {})} for s in data["sites"]]
    return out


def load_manifest(name_or_path: str | Path | Manifest, variant: str | None = None,
                  layout: str | None = None) -> Manifest:
    """Read and validate a manifest, applying a variant's site overrides and choosing one of its layouts.

    Args:
        name_or_path: Dataset name (e.g. "polyp"), a path to a YAML file, or a Manifest (returned as is
            when neither variant nor layout asks for something else).
        variant: One of the manifest's ``variants`` (e.g. polyp's "as_released"); None or the name in
            ``default_variant`` (polyp: "corrected") = the sites as written.
        layout: One of the manifest's layouts (e.g. prostate's "png_slices"); None = the first.

    Raises:
        ManifestError: unreadable YAML, missing fields, unknown variant or layout.
    """
    if isinstance(name_or_path, Manifest):
        same_variant = variant is None or variant == name_or_path.variant
        if same_variant and (layout is None or layout == name_or_path.layout_name):
            return name_or_path
        variant = name_or_path.variant if variant is None else variant
        layout = name_or_path.layout_name if layout is None else layout
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
        data = {**data, "sites": [{**site, **overrides.get(site["name"], {})} for site in data["sites"]]}
        validate(data, path)
    return Manifest(name=data["name"], path=path, data=_resolve_layout(data, path, layout), variant=variant)
