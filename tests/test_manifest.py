"""Manifests: the shipped ones validate; verify passes on good data and names each kind of problem."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from realdata_fixtures import make_nifti_site, make_png_tree, sha256, write_manifest

from fedlab.data.manifest import (
    ManifestError,
    available_manifests,
    list_pairs,
    load_manifest,
    manifest_hash,
    verify,
)

SITES = {"A": (3, 2), "B": (2, 1)}
SHIPPED = ["adni_roi", "fundus", "polyp", "prostate", "prostate_nci_isbi2013_slices", "uci_heart_disease"]


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    root = make_png_tree(tmp_path / "data", SITES)
    checksums = {"A": {"train/image/00.png": "sha256:" + sha256(root / "A/train/image/00.png")}}
    return root, write_manifest(tmp_path / "fixture.yaml", SITES, checksums=checksums)


def test_shipped_manifests_validate() -> None:
    assert set(SHIPPED) <= set(available_manifests())
    for name in SHIPPED:
        m = load_manifest(name)
        assert m.name == name == m.path.stem
    assert load_manifest("prostate").site_names == ["RUNMC", "BMC", "I2CVB", "UCL", "BIDMC", "HK"]
    cases = [sum(s["counts"].values()) for s in load_manifest("prostate").sites]
    assert cases == [30, 30, 19, 13, 12, 12]
    assert len(load_manifest("adni_roi").layout["feature_columns"]) == 90


def test_missing_field_is_named(tmp_path: Path, good) -> None:
    _, path = good
    data = yaml.safe_load(path.read_text())
    del data["source"]["licence"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError, match=r"missing required field\(s\) \['licence'\]"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="no manifest named 'nope'.*available"):
        load_manifest("nope")


def test_manifest_hash_is_sha256_of_file(good) -> None:
    _, path = good
    assert manifest_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_good_tree(good) -> None:
    root, path = good
    report = verify(path, root)
    assert report.ok, report.problems
    assert [(r.site, r.split, r.found) for r in report.rows] == [("A", "train", 3), ("A", "test", 2),
                                                                 ("B", "train", 2), ("B", "test", 1)]
    assert "A" in str(report) and "OK" in str(report)


def _only_problem(report, pattern: str) -> None:
    assert not report.ok
    assert any(pattern in p for p in report.problems), report.problems


def test_verify_missing_site(good) -> None:
    root, path = good
    shutil.rmtree(root / "B")
    _only_problem(verify(path, root), "site B: folder")


def test_verify_missing_mask(good) -> None:
    root, path = good
    (root / "A/test/mask/01.png").unlink()
    report = verify(path, root)
    _only_problem(report, "01.png has no mask")
    (root / "B/train/image/00.png").unlink()
    _only_problem(verify(path, root), "B/train/mask/00.png has no image")


def test_verify_wrong_count(good) -> None:
    root, path = good
    (root / "A/train/image/02.png").unlink()
    (root / "A/train/mask/02.png").unlink()
    _only_problem(verify(path, root), "expected 3 images, found 2")


def test_verify_checksum_mismatch(good) -> None:
    root, path = good
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "A/train/image/00.png")
    _only_problem(verify(path, root), "checksum mismatch")


def test_verify_truncated_file(good) -> None:
    root, path = good
    f = root / "B/train/image/01.png"
    f.write_bytes(f.read_bytes()[:60])
    _only_problem(verify(path, root), "corrupt or truncated")
    assert verify(path, root, decode=False).ok  # names and counts alone cannot see it


def test_verify_shape_mismatch(good) -> None:
    root, path = good
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(root / "B/test/mask/00.png")
    _only_problem(verify(path, root), "is (16, 16) but mask")


def test_verify_non_binary_mask(good) -> None:
    root, path = good
    m = np.zeros((16, 16), np.uint8)
    m[:4] = 128
    Image.fromarray(m).save(root / "A/test/mask/00.png")
    _only_problem(verify(path, root), "values [128] outside the expected [0, 255]")


def test_verify_nifti_volumes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_nifti_site(root / "S1", 5)
    make_nifti_site(root / "S2", 4, suffix="_Segmentation")  # copies differ in capitalisation
    path = write_manifest(tmp_path / "vols.yaml", {"S1": (4, 1), "S2": (3, 1)}, kind="case_volumes",
                          mask={"coding": "binary", "threshold": 0.5, "values": [0, 1]})
    report = verify(path, root)
    assert report.ok, report.problems
    pairs, _ = list_pairs(load_manifest(path), root, "S1", "test")
    assert [p.key for p in pairs] == ["Case04"]  # first int(0.8 * 5) = 4 sorted cases train
    vol = root / "S2/Case01.nii.gz"
    vol.write_bytes(vol.read_bytes()[:200])
    _only_problem(verify(path, root), "Case01.nii.gz")


def test_fundus_coding_matches_lcfed_rule() -> None:
    coding = load_manifest("fundus").mask_coding()
    raw = np.array([[255, 128, 0, 128]], dtype=np.uint8)
    label = 2 - (raw / 127).astype(np.uint8)  # LC-Fed's mapping: 0 background, 1 disc, 2 cup
    np.testing.assert_array_equal(coding.encode(raw), np.stack([label > 0, label > 1]).astype(np.uint8))
    assert coding.labels == ("disc", "cup")


def test_polyp_variants_file_lists(tmp_path: Path) -> None:
    """The corrected default reads ETIS; as_released reads ColonDB 1-196, inside ColonDB's training set."""
    root = tmp_path / "PraNet"
    subsets = {"CVC-ColonDB": range(1, 381), "ETIS-LaribPolypDB": range(1, 197), "Kvasir": range(100),
               "CVC-ClinicDB": range(1, 63)}
    for sub, ids in subsets.items():
        for kind in ("images", "masks"):
            (root / "TestDataset" / sub / kind).mkdir(parents=True)
            for i in ids:
                name = f"{i}.png" if sub != "Kvasir" else f"cju{i:04d}.png"
                (root / "TestDataset" / sub / kind / name).touch()
    for kind in ("images", "masks"):
        (root / "TrainDataset" / kind).mkdir(parents=True)
        for i in range(900):
            (root / "TrainDataset" / kind / f"c{i:04d}.png").touch()
        for i in range(1, 551):
            (root / "TrainDataset" / kind / f"{i}.png").touch()
    for variant in (None, "as_released"):
        assert verify("polyp", root, variant=variant, decode=False).ok
    m, released = load_manifest("polyp"), load_manifest("polyp", "as_released")
    assert load_manifest("polyp", "corrected").data == m.data
    with pytest.raises(ManifestError, match="unknown variant 'fixed'; available: \\['as_released'\\]"):
        load_manifest("polyp", "fixed")
    etis = {p.image for s in ("train", "test") for p in list_pairs(m, root, "ETIS", s)[0]}
    etis_rel = {p.image for s in ("train", "test") for p in list_pairs(released, root, "ETIS", s)[0]}
    colon_train = {p.image for p in list_pairs(m, root, "CVC-ColonDB", "train")[0]}
    assert len(etis) == len(etis_rel) == 196
    assert all("ETIS-LaribPolypDB" in str(p) for p in etis) and not etis & colon_train
    assert etis_rel <= colon_train  # the released site B overlaps site C's training images


def test_uci_shared_files(tmp_path: Path, shared: Path) -> None:
    src = shared / "realdata" / "uci_heart_disease"
    if not src.is_dir():
        pytest.skip("../shared/realdata/uci_heart_disease not present")
    assert verify("uci_heart_disease", src).ok
    copy = shutil.copytree(src, tmp_path / "uci")
    f = copy / "processed.va.data"
    header = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,num\n"
    f.write_text(header + f.read_text())
    report = verify("uci_heart_disease", copy)
    _only_problem(report, "checksum mismatch for")
    _only_problem(report, "expected 200 rows")


def test_adni_table_schema(tmp_path: Path) -> None:
    m = load_manifest("adni_roi")
    rois = m.layout["feature_columns"]
    rng = np.random.default_rng(0)
    rows = [[f"S{i}", "ADNI-1" if i < 6 else "ADNI-2", "AD" if i % 2 else "NC", *rng.uniform(1, 9, 90)]
            for i in range(10)]
    import pandas as pd

    df = pd.DataFrame(rows, columns=["subject_id", "phase", "diagnosis", *rois])
    df.to_csv(tmp_path / "adni_roi.csv", index=False)
    report = verify("adni_roi", tmp_path)
    assert report.ok, report.problems
    assert [r.found for r in report.rows] == [6, 4]
    df.loc[0, "diagnosis"] = "MCI"
    df.drop(columns=["Hippocampus_L"]).to_csv(tmp_path / "bad.csv", index=False)
    _only_problem(verify("adni_roi", tmp_path / "bad.csv"), "missing column(s) ['Hippocampus_L']")
    df.to_csv(tmp_path / "bad.csv", index=False)
    _only_problem(verify("adni_roi", tmp_path / "bad.csv"), "has values ['MCI']")


def test_shared_prostate_slices_verify(shared: Path) -> None:
    root = shared / "realdata" / "prostate_nci_isbi2013_slices"
    if not root.is_dir():
        pytest.skip("../shared/realdata/prostate_nci_isbi2013_slices not present")
    report = verify("prostate_nci_isbi2013_slices", root)
    assert report.ok, report.problems
