"""Apply a manifest's preprocessing once and cache the arrays, so loaders read real data fast.

Cache layout (default ``ROOT/.fedlab_cache/<name>[-<variant>]/<size>/``, see :func:`cache_dir`)::

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

from fedlab.data.imaging import DataError, Preprocessing, load_pairs
from fedlab.data.manifest import Manifest, list_pairs, load_manifest

CACHE_DIRNAME = ".fedlab_cache"
CACHE_FORMAT = 1
CACHE_ENV = "FEDLAB_CACHE_DIR"


def cache_dir(manifest: Manifest, root: Path, size: int, out_dir: str | Path | None = None) -> Path:
    """Where :func:`prepare` writes.

    In order: ``out_dir``; ``$FEDLAB_CACHE_DIR/<tag>-<root hash>/<size>``; ``root/.fedlab_cache/<tag>/<size>``
    when ``root`` is writable; else ``~/.cache/fedlab/<tag>-<root hash>/<size>`` (read-only data folders).
    ``<tag>`` is the manifest name plus ``-<variant>`` when a variant is used.
    """
    if out_dir is not None:
        return Path(out_dir).expanduser()
    tag = manifest.name + (f"-{manifest.variant}" if manifest.variant else "")
    root_tag = f"{tag}-{hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]}"
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / root_tag / str(int(size))
    if os.access(root, os.W_OK):
        return Path(root) / CACHE_DIRNAME / tag / str(int(size))
    return Path.home() / ".cache" / "fedlab" / root_tag / str(int(size))


def preprocessing_of(manifest: Manifest, size: int) -> Preprocessing:
    """The :class:`Preprocessing` a manifest asks for, at ``size x size`` pixels."""
    p = manifest.preprocessing
    return Preprocessing(image_size=int(size), channels=manifest.data.get("channels"),
                         normalize=p.get("normalize", "auto"), coding=manifest.mask_coding(),
                         foreground_slices_only=bool(p.get("foreground_slices_only", False)))


def _inputs(manifest: Manifest, root: Path) -> dict[str, list]:
    """Every (site, split)'s file pairs, checked complete."""
    jobs = {}
    for site in manifest.site_names:
        for split in manifest.splits:
            pairs, problems = list_pairs(manifest, root, site, split)
            unpaired = [p.image for p in pairs if p.mask is None]
            if problems or unpaired:
                first = problems[0] if problems else f"image {unpaired[0]} has no mask"
                raise DataError(f"cannot prepare {manifest.name}: site {site} ({split}): {first}. "
                                f"Run `fedlab data verify {manifest.name} --root {root}` for the full list.")
            jobs[f"{site}__{split}"] = pairs
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
            "manifest_sha256": manifest.sha256, "size": int(size), "inputs_sha256": h.hexdigest(),
            "preprocessing": {"channels": prep.channels, "normalize": prep.normalize,
                              "foreground_slices_only": prep.foreground_slices_only,
                              "labels": list(prep.coding.labels)},
            "files": sorted(f"{k}.npz" for k in jobs)}


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to ``<name>.<pid>.tmp`` then rename: readers never see a half-written file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temp_files(out: Path) -> None:
    """Delete temp files left by interrupted runs (not those of a run still in progress)."""
    for tmp in out.glob("*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid))):
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
            variant: str | None = None, force: bool = False) -> Path:
    """Preprocess a dataset with its manifest's rules and cache one .npz per site and split.

    Args:
        name: Manifest name, path or object.
        root: The dataset's root folder (as checked by ``fedlab data verify``).
        size: Output image side in pixels (images: area/bilinear, masks: nearest).
        out_dir: Cache folder (default ``root/.fedlab_cache/<name>/<size>``).
        variant: Manifest variant (e.g. polyp "as_released").
        force: Rebuild even when the cache is valid.

    Returns:
        The cache folder.

    Raises:
        DataError: the data do not match the manifest (run verify for the full list).
    """
    manifest = load_manifest(name, variant)
    root = Path(root).expanduser()
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
        x, y, owner = load_pairs([(p.image, p.mask) for p in pairs], prep)
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
