"""Apply a manifest's preprocessing once and cache the arrays, so loaders read real data fast.

Nothing is ever written under the data folder (hospital data folders are often read-only or shared): the
cache lives in ``$FEDLAB_CACHE_DIR``, else the platform's user cache folder (``~/.cache/fedlab`` on Linux),
in ``<name>[-<variant>]-<layout>-<hash of the data folder's path>/<size>/`` (see :func:`cache_dir`)::

    <site>__<split>.npz   x (N, C, S, S) float32, y (N, L, S, S) uint8, owner (N,) int32, files (F,) str
    stamp.json            what the cache was made from (manifest sha256, inputs, settings)

Properties:

* idempotent: a valid cache (same stamp) is not rebuilt;
* safe to interrupt: every file is written to ``*.<pid>.tmp`` and moved into place with ``os.replace``;
  ``stamp.partial.json`` is written first and ``stamp.json`` last, so a rerun keeps the finished
  site files of the same job and redoes the rest;
* deterministic: the same inputs give the same bytes (npz written with fixed zip timestamps).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from fedlab.data.errors import DataError
from fedlab.data.imaging import Preprocessing, load_pairs
from fedlab.data.layouts import best_layout, list_pairs, site_present
from fedlab.data.manifest import Manifest, load_manifest
from fedlab.processes import pid_alive

CACHE_FORMAT = 2
CACHE_ENV = "FEDLAB_CACHE_DIR"


def user_cache_root() -> Path:
    """``$FEDLAB_CACHE_DIR``, else the platform's user cache folder for fedlab (``~/.cache/fedlab`` on Linux)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("fedlab", appauthor=False))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.expanduser().resolve(), folder.expanduser().resolve()
    return path == folder or folder in path.parents


def cache_dir(manifest: Manifest, root: Path, size: int, out_dir: str | Path | None = None) -> Path:
    """Where :func:`prepare` writes: ``out_dir``, else ``<user cache>/<tag>-<root hash>/<size>``.

    ``<user cache>`` is :func:`user_cache_root`; ``<tag>`` is the manifest name, ``-<variant>`` when a variant
    is used and ``-<layout>``; the hash of the data folder's absolute path keeps two copies apart.

    Raises:
        DataError: ``out_dir`` is inside the data folder (nothing is written there).
    """
    root = Path(root)
    if out_dir is not None:
        out = Path(out_dir).expanduser()
        if _inside(out, root):
            raise DataError(f"the cache folder {out} is inside the data folder {root}; fedlab never writes into a "
                            f"data folder. Choose another --out, or leave it out to use {user_cache_root()}.")
        return out
    tag = "-".join([manifest.name, *([manifest.variant] if manifest.variant else []), manifest.layout_name])
    root_tag = f"{tag}-{hashlib.sha256(str(root.expanduser().resolve()).encode()).hexdigest()[:12]}"
    return user_cache_root() / root_tag / str(int(size))


def preprocessing_of(manifest: Manifest, size: int) -> Preprocessing:
    """The :class:`Preprocessing` a manifest asks for, at ``size x size`` pixels."""
    p = manifest.preprocessing
    return Preprocessing(image_size=int(size), channels=manifest.data.get("channels"),
                         normalize=p.get("normalize", "auto"), coding=manifest.mask_coding(),
                         foreground_slices_only=bool(p.get("foreground_slices_only", False)),
                         max_foreground=manifest.max_foreground)


def _inputs(manifest: Manifest, root: Path) -> dict[str, list]:
    """Every present (site, split)'s file pairs, checked complete; absent sites are left out (a subset)."""
    jobs = {}
    for site in manifest.site_names:
        if not site_present(manifest, root, site):
            continue
        for split in manifest.splits:
            pairs, problems = list_pairs(manifest, root, site, split)
            unpaired = [p.image for p in pairs if p.mask is None]
            if problems or unpaired:
                first = problems[0] if problems else f"image {unpaired[0]} has no mask"
                raise DataError(f"cannot prepare {manifest.name}: site {site} ({split}): {first}. "
                                f"Run `fedlab data verify {manifest.name} --root {root}` for the full list.")
            jobs[f"{site}__{split}"] = pairs
    if not jobs:
        raise DataError(f"cannot prepare {manifest.name}: none of its sites {manifest.site_names} is in {root} "
                        f"(layout {manifest.layout_name}: {manifest.layout.get('description', '')}). "
                        f"Run `fedlab data list --root {root}` to see what the folder holds.")
    return jobs


def _stamp(manifest: Manifest, root: Path, size: int, jobs: dict[str, list]) -> dict:
    """A deterministic description of what the cache is made from."""
    h = hashlib.sha256()
    for key in sorted(jobs):
        for pair in jobs[key]:
            for path in (pair.image, pair.mask):
                st = path.stat()
                h.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    prep = preprocessing_of(manifest, size)
    return {"format": CACHE_FORMAT, "name": manifest.name, "variant": manifest.variant,
            "layout": manifest.layout_name, "manifest_sha256": manifest.sha256, "size": int(size),
            "inputs_sha256": h.hexdigest(),
            "preprocessing": {"channels": prep.channels, "normalize": prep.normalize,
                              "foreground_slices_only": prep.foreground_slices_only,
                              "max_foreground": prep.max_foreground, "coding": prep.coding.describe(),
                              "labels": list(prep.coding.labels)},
            "files": sorted(f"{k}.npz" for k in jobs)}


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to ``<name>.<pid>.tmp`` then rename: readers never see a half-written file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_stale_temp_files(out: Path) -> None:
    """Delete temp files left by interrupted runs (not those of a run still in progress)."""
    for tmp in out.glob("*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))):
            tmp.unlink(missing_ok=True)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed timestamps (np.savez stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), arr_buf.getvalue())
    return buf.getvalue()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def prepare(name: str | Path | Manifest, root: str | Path, size: int, out_dir: str | Path | None = None,
            variant: str | None = None, force: bool = False, layout: str | None = None) -> Path:
    """Preprocess a dataset with its manifest's rules and cache one .npz per present site and split.

    Args:
        name: Manifest name, path or object.
        root: The dataset's root folder (as checked by ``fedlab data verify``); never written to.
        size: Output image side in pixels (images: area/bilinear, masks: nearest).
        out_dir: Cache folder (default :func:`cache_dir`); must not be inside ``root``.
        variant: Manifest variant (e.g. polyp "as_released").
        force: Rebuild even when the cache is valid.
        layout: Manifest layout (default: the one ``root`` matches best; a Manifest object keeps its own).

    Returns:
        The cache folder.

    Raises:
        DataError: the data do not match the manifest (run verify for the full list), or the masks cover
            most of their images (an inverted coding).
    """
    manifest = load_manifest(name, variant)
    root = Path(root).expanduser()
    if layout is None and not isinstance(name, Manifest):
        layout = best_layout(manifest, root)
    manifest = manifest.with_layout(layout)
    if manifest.task != "segmentation":
        raise DataError(f"prepare is for image datasets; {manifest.name!r} is a table: load it with "
                        "fedlab.data.tabular.")
    jobs = _inputs(manifest, root)
    out = cache_dir(manifest, root, size, out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(manifest, root, size, jobs)
    complete = all((out / f).is_file() for f in stamp["files"])
    if not force and complete and _read_json(out / "stamp.json") == stamp:
        return out
    _remove_stale_temp_files(out)
    resume = not force and _read_json(out / "stamp.partial.json") == stamp
    (out / "stamp.json").unlink(missing_ok=True)
    _write_atomic(out / "stamp.partial.json", json.dumps(stamp, indent=1, sort_keys=True).encode())
    prep = preprocessing_of(manifest, size)
    for key, pairs in sorted(jobs.items()):
        target = out / f"{key}.npz"
        if resume and target.is_file():
            continue
        site, split = key.split("__")
        fix = f"the mask section of {manifest.path} (invert: true for masks with the object = 0)"
        x, y, owner = load_pairs([(p.image, p.mask) for p in pairs], prep, f"site {site} ({split})", fix)
        files = np.array([str(p.image.relative_to(root)) for p in pairs], dtype=np.str_)
        arrays = {"x": x, "y": y, "owner": np.asarray(owner, np.int32), "files": files}
        _write_atomic(target, _npz_bytes(arrays))
    _write_atomic(out / "stamp.json", json.dumps(stamp, indent=1, sort_keys=True).encode())
    (out / "stamp.partial.json").unlink(missing_ok=True)  # a concurrent run of the same job may have done it
    return out


def read_cached(out: Path, site: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``y`` and ``owner`` arrays of one cached site/split."""
    with np.load(out / f"{site}__{split}.npz", allow_pickle=False) as z:
        return z["x"], z["y"], z["owner"]
