"""Manifests: the shipped ones validate; verify passes on good data, reports a subset as a subset and names
each kind of problem."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from realdata_fixtures import make_fundus_tree, make_nifti_site, make_png_tree, sha256, write_manifest

from fedlab.data.layouts import list_pairs
from fedlab.data.manifest import ManifestError, available_manifests, load_manifest
from fedlab.data.verify import verify

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
    for name in ("prostate", "polyp", "fundus", "prostate_nci_isbi2013_slices"):  # compared with LC-Fed's table
        m = load_manifest(name)
        assert m.reference == {"table": "lcfed", "dataset": name.split("_")[0]}
        assert list(m.site_letters.values()) == list("ABCDEF"[: len(m.sites)])


def test_prostate_layouts_carry_their_own_coding_and_counts() -> None:
    volumes, slices = load_manifest("prostate"), load_manifest("prostate", layout="png_slices")
    assert volumes.layout_names == ["nifti_volumes", "png_slices"] and volumes.layout_name == "nifti_volumes"
    assert volumes.mask_coding().threshold == 0.5 and not volumes.mask_coding().invert
    assert slices.mask_coding().invert and slices.mask_coding().values == (0.0, 255.0)
    assert slices.preprocessing["normalize"] == "minmax" and volumes.preprocessing["normalize"] == "percentile"
    assert slices.preprocessing["foreground_slices_only"] is True  # inherited from the top-level section
    assert volumes.site("RUNMC")["counts"] == {"train": 24, "test": 6}
    assert "counts" not in slices.site("RUNMC")  # the counts describe the volumes, not the slices
    assert slices.site_letters == volumes.site_letters
    with pytest.raises(ManifestError, match=r"unknown layout 'jpeg'; the manifest accepts \['nifti_volumes', "):
        load_manifest("prostate", layout="jpeg")


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


def test_manifest_sha256_is_the_file_hash(good) -> None:
    _, path = good
    assert load_manifest(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_letters_and_layouts_are_named(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.yaml", SITES, letters={"A": "A", "B": "A"})
    with pytest.raises(ManifestError, match="two sites share a paper_site letter"):
        load_manifest(path)
    data = yaml.safe_load(write_manifest(tmp_path / "m.yaml", SITES).read_text())
    data["layouts"] = [data.pop("layout")]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError, match=r"layouts\[0\] is missing required field\(s\) \['name'\]"):
        load_manifest(path)


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


def test_verify_reports_a_subset_of_sites_as_a_subset(good) -> None:
    root, path = good
    shutil.rmtree(root / "B")
    report = verify(path, root)
    assert report.ok and report.is_subset and not report.complete and report.sites_found == ["A"]
    assert report.subset == [f"site B is absent ({root / 'B'} not found)"]
    assert "OK, SUBSET" in str(report) and "absent" in report.table()
    with pytest.raises(Exception, match="SUBSET"):
        report.raise_if_failed(allow_subset=False)
    shutil.rmtree(root / "A")
    _only_problem(verify(path, root), "none of the sites ['A', 'B'] of fixture is in")


def test_verify_reports_fewer_files_as_a_subset_and_more_as_a_problem(good) -> None:
    root, path = good
    for sub in ("image", "mask"):
        (root / "A/train" / sub / "02.png").unlink()
    report = verify(path, root)
    assert report.ok and report.subset == ["site A (train): 2 of 3 images"]
    shutil.copy(root / "B/test/image/00.png", root / "B/test/image/07.png")
    shutil.copy(root / "B/test/mask/00.png", root / "B/test/mask/07.png")
    _only_problem(verify(path, root), "site B (test): expected 1 images, found 2; the extra files")


def test_verify_subset_of_checksummed_files(good) -> None:
    root, path = good
    for sub in ("image", "mask"):  # the one file listed with a checksum goes, with its mask
        (root / "A/train" / sub / "00.png").unlink()
    report = verify(path, root)
    assert report.ok and any("listed with checksums are not here" in note for note in report.subset)


def test_verify_missing_mask(good) -> None:
    root, path = good
    (root / "A/test/mask/01.png").unlink()
    report = verify(path, root)
    _only_problem(report, "01.png has no mask")
    (root / "B/train/image/00.png").unlink()
    _only_problem(verify(path, root), "B/train/mask/00.png has no image")


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


def test_fundus_subset_of_domains_verifies_and_unknown_values_are_named(tmp_path: Path) -> None:
    root, _ = make_fundus_tree(tmp_path, {"Domain1": (2, 1), "Domain3": (1, 1)})
    report = verify("fundus", root)
    assert report.ok and report.sites_found == ["Drishti-GS", "REFUGE-train"]
    absent = [n.split(" (")[0] for n in report.subset if "absent" in n]
    assert absent == ["site RIM-ONE-r3 is absent", "site REFUGE-val is absent"]
    assert "site Drishti-GS (train): 2 of 50 images" in report.subset
    raw = np.asarray(Image.open(root / "Domain3/test/ROIs/mask/00.png")).copy()
    raw[:2] = 64
    Image.fromarray(raw).save(root / "Domain3/test/ROIs/mask/00.png")
    _only_problem(verify("fundus", root), "Domain3/test/ROIs/mask/00.png has values [64] outside the expected "
                                          "[0, 128, 255]")


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
        assert verify("polyp", root, variant=variant, decode=False).complete
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
