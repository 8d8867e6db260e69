"""prepare: same bytes twice, idempotent, resumable after an interruption, never inside the data folder.

load_real (verify -> prepare -> cached arrays) gives the same tensors as the folder loader.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from realdata_fixtures import make_nifti_site, make_png_tree, tree_digest, write_manifest

from fedlab.data.errors import DataError
from fedlab.data.folder import load_folder_federation
from fedlab.data.prepare import prepare, read_cached, user_cache_root
from fedlab.data.real import load_real

SITES = {"A": (3, 2), "B": (2, 1)}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    root = make_png_tree(tmp_path / "data", SITES, size=16)
    return root, write_manifest(tmp_path / "fixture.yaml", SITES)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npz"))}


def test_prepare_is_deterministic_and_idempotent(dataset, tmp_path: Path) -> None:
    root, manifest = dataset
    out1 = prepare(manifest, root, 8, out_dir=tmp_path / "c1")
    out2 = prepare(manifest, root, 8, out_dir=tmp_path / "c2")
    assert len(digests(out1)) == 4 and digests(out1) == digests(out2)  # same bytes from two runs
    mtimes = {p: p.stat().st_mtime_ns for p in out1.iterdir()}
    assert prepare(manifest, root, 8, out_dir=out1) == out1
    assert {p: p.stat().st_mtime_ns for p in out1.iterdir()} == mtimes  # valid cache: nothing rewritten
    x, y, owner = read_cached(out1, "A", "train")
    assert x.shape == (3, 1, 8, 8) and y.dtype == np.uint8 and owner.tolist() == [0, 1, 2]


def test_default_cache_location_and_invalidation(dataset, tmp_path: Path, monkeypatch) -> None:
    root, manifest = dataset
    monkeypatch.setenv("FEDLAB_CACHE_DIR", str(tmp_path / "user-cache"))
    listing = tree_digest(root)
    out = prepare(manifest, root, 8)
    assert out.parent.parent == tmp_path / "user-cache" and out.name == "8"
    assert out.parent.name.startswith("fixture-split_folders-")  # <name>-<layout>-<hash of the data folder's path>
    assert tree_digest(root) == listing  # nothing written into the data folder
    before = digests(out)
    img = np.zeros((16, 16), np.uint8)
    Image.fromarray(img).save(root / "B/test/image/00.png")  # the data changed: the cache is rebuilt
    prepare(manifest, root, 8)
    after = digests(out)
    assert after["B__test.npz"] != before["B__test.npz"] and after["A__train.npz"] == before["A__train.npz"]


def test_prepare_resumes_after_interruption(dataset, tmp_path: Path) -> None:
    root, manifest = dataset
    reference = digests(prepare(manifest, root, 8, out_dir=tmp_path / "ref"))
    out = prepare(manifest, root, 8, out_dir=tmp_path / "run")
    # Simulate a crash mid-way: final stamp not written, one site file missing, a half-written temp file.
    (out / "stamp.json").rename(out / "stamp.partial.json")
    (out / "B__train.npz").unlink()
    (out / "B__train.npz.tmp").write_bytes(b"half a file")
    prepare(manifest, root, 8, out_dir=out)
    assert digests(out) == reference and not list(out.glob("*.tmp")) and (out / "stamp.json").is_file()
    # A partial cache of unknown origin (no matching stamp) is ignored and redone, garbage included.
    (out / "stamp.json").unlink()
    (out / "A__test.npz").write_bytes(b"garbage")
    prepare(manifest, root, 8, out_dir=out)
    assert digests(out) == reference


def test_cache_root_and_refusal_to_write_into_the_data_folder(dataset, monkeypatch) -> None:
    root, manifest = dataset
    monkeypatch.delenv("FEDLAB_CACHE_DIR", raising=False)
    from platformdirs import user_cache_dir

    assert user_cache_root() == Path(user_cache_dir("fedlab", appauthor=False))
    with pytest.raises(DataError, match="is inside the data folder .*never writes into a data folder"):
        prepare(manifest, root, 8, out_dir=root / "cache")


def test_prepare_refuses_incomplete_data(dataset) -> None:
    root, manifest = dataset
    (root / "A/train/mask/01.png").unlink()
    with pytest.raises(DataError, match=r"site A \(train\): image .*01.png has no mask.*fedlab data verify"):
        prepare(manifest, root, 8)


def test_load_real_equals_folder_loader(dataset, tmp_path: Path) -> None:
    root, manifest = dataset
    fed = load_real(str(manifest), root, image_size=8, cache=tmp_path / "cache")
    ref = load_folder_federation(root, image_size=8, normalize="scale255", sites=["A", "B"])
    assert fed.site_names == ref.site_names and not fed.synthetic and "sha256:" in fed.source
    for a, b in zip(fed, ref, strict=True):
        assert bool((a.train.x == b.train.x).all()) and bool((a.test.y == b.test.y).all())
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert fed.provenance["manifest_sha256"] == sha and fed["A"].metadata["manifest_hash"] == sha
    (root / "B/test/image/00.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_real(str(manifest), root, image_size=8, cache=tmp_path / "cache2")


def test_case_volumes_follow_lcfed_protocol(tmp_path: Path) -> None:
    root = tmp_path / "saml"
    make_nifti_site(root / "S1", 5)
    manifest = write_manifest(tmp_path / "vols.yaml", {"S1": (4, 1)}, kind="case_volumes",
                              mask={"coding": "binary", "threshold": 0.5},
                              preprocessing={"normalize": "percentile", "foreground_slices_only": True})
    out = prepare(manifest, root, 8, out_dir=tmp_path / "c")
    x, y, owner = read_cached(out, "S1", "train")
    assert x.shape == (4 * 3, 1, 8, 8)  # 4 training cases x 3 slices that contain the organ
    assert y.reshape(len(y), -1).any(1).all() and sorted(set(owner.tolist())) == [0, 1, 2, 3]
    assert x.min() >= 0 and x.max() <= 1


def test_load_real_shared_prostate(tmp_path: Path, shared: Path) -> None:
    root = shared / "realdata" / "prostate_nci_isbi2013_slices"
    if not root.is_dir():
        pytest.skip("../shared/realdata/prostate_nci_isbi2013_slices not present")
    listing = tree_digest(root)
    fed = load_real("", root, image_size=32, cache=tmp_path / "c")  # detected from the folder
    assert fed.name == "prostate_nci_isbi2013_slices" and fed.provenance["subset"] == ""
    assert fed.site_names == ["RUNMC", "BMC"] and fed.num_channels == 1
    assert 0.005 < float(fed["RUNMC"].test.y.mean()) < 0.30
    assert tree_digest(root) == listing


def test_shipped_prostate_manifest_end_to_end(tmp_path: Path) -> None:
    """The real 6-site manifest on fake volumes with its case counts: verify, prepare, load."""
    from fedlab.data.manifest import load_manifest

    manifest = load_manifest("prostate")
    root = tmp_path / "SAML"
    for site in manifest.sites:
        make_nifti_site(root / site["folder"], sum(site["counts"].values()), shape=(8, 8, 4))
    fed = load_real("prostate", root, image_size=8, cache=tmp_path / "c", val_fraction=0.2)
    assert fed.site_names == ["RUNMC", "BMC", "I2CVB", "UCL", "BIDMC", "HK"]
    for site, spec in zip(fed, manifest.sites, strict=True):
        n_train, n_test = spec["counts"]["train"], spec["counts"]["test"]
        assert len(site.train) + len(site.val) == 3 * n_train  # 3 slices with prostate per case
        assert len(site.test) == 3 * n_test and len(site.val) % 3 == 0
