"""Layout detection: a folder in each accepted layout is matched to the right manifest (or the generic layout),
a subset of sites is reported as a subset, and DATA_DIR alone loads it with the manifest's coding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from realdata_fixtures import (
    make_fundus_tree,
    make_nifti_site,
    make_png_tree,
    make_png_tree_with_truth,
    make_pranet_tree,
    tree_digest,
)

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.data.detect import detect, find_matches
from fedlab.data.errors import DataError
from fedlab.data.real import SubsetWarning


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Prepared arrays go to a temporary user cache."""
    monkeypatch.setenv("FEDLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_png_slices_of_two_prostate_sites_match_the_prostate_manifest(tmp_path: Path) -> None:
    root, truth = make_png_tree_with_truth(tmp_path / "ProstateSlice", {"RUNMC": (3, 2), "BMC": (2, 2)}, size=16,
                                           invert=True)
    match = detect(root)
    assert (match.dataset, match.layout, match.kind) == ("prostate", "png_slices", "subset")
    assert match.sites == ("RUNMC", "BMC") and match.files == 9
    assert "2 of 6 sites" in match.why and "absent: I2CVB, UCL, BIDMC, HK" in match.why
    with pytest.warns(SubsetWarning, match="SUBSET of prostate"):
        fed = load_federation("", root, config=get_config("smoke", image_size=16), val_fraction=0.0)
    assert fed.site_names == ["RUNMC", "BMC"] and not fed.synthetic  # manifest order, not folder order
    assert fed.provenance["site_letters"] == {"RUNMC": "A", "BMC": "B"}
    assert "site UCL is absent" in fed.provenance["subset"] and "png_slices" in fed.source
    for site in fed:  # the manifest's inverted coding gives the intended foreground, pixel for pixel
        for k, y in enumerate(site.train.y.numpy()):
            np.testing.assert_array_equal(y[0], truth[f"{site.name}/train/{k:02d}"])


def test_nifti_volumes_match_the_prostate_volume_layout(tmp_path: Path) -> None:
    root = tmp_path / "SAML"
    for site in ("BMC", "HK"):
        make_nifti_site(root / site, 3, shape=(8, 8, 4))
    match = detect(root)
    assert (match.dataset, match.layout, match.sites) == ("prostate", "nifti_volumes", ("BMC", "HK"))
    assert match.files == 6 and match.kind == "subset"


def test_fundus_rois_match_the_fundus_manifest_and_decode_disc_and_cup(tmp_path: Path) -> None:
    root, truth = make_fundus_tree(tmp_path / "Fundus", {"Domain1": (2, 1), "Domain2": (1, 1)})
    match = detect(root)
    assert (match.dataset, match.sites) == ("fundus", ("Drishti-GS", "RIM-ONE-r3"))
    with pytest.warns(SubsetWarning):
        fed = load_federation("", root, config=get_config("smoke", image_size=24), val_fraction=0.0)
    assert fed.labels == ("disc", "cup") and fed.provenance["site_letters"] == {"Drishti-GS": "A", "RIM-ONE-r3": "B"}
    y = fed["Drishti-GS"].train.y.numpy()
    for k in range(2):
        disc, cup = truth[f"Domain1/train/{k:02d}"]
        np.testing.assert_array_equal(y[k, 0], disc)
        np.testing.assert_array_equal(y[k, 1], cup)


def test_pranet_folders_match_the_polyp_manifest(tmp_path: Path) -> None:
    root = make_pranet_tree(tmp_path / "PraNet")
    match = detect(root)
    assert match.dataset == "polyp" and match.sites == ("Kvasir", "ETIS", "CVC-ColonDB", "CVC-ClinicDB")
    assert match.kind == "subset"  # every site, fewer files than PraNet's


def test_a_complete_sample_beats_the_dataset_it_is_a_subset_of(tmp_path: Path) -> None:
    """The developer sample's own manifest lists its 2 sites and counts: a complete match wins over prostate."""
    root = make_png_tree(tmp_path / "sample", {"RUNMC": (3, 3), "BMC": (3, 3)}, invert=True)
    ranked = [(m.dataset, m.kind) for m in find_matches(root)]  # other file names than the sample's
    assert ranked[:3] == [("prostate", "subset"), ("prostate_nci_isbi2013_slices", "subset"),
                          ("folder", "generic layout")]
    for path in sorted(root.rglob("0?.png")):  # the sample's file names (matching is by name, not content)
        path.rename(path.with_name(f"00_{path.name}"))
    ranked = [(m.dataset, m.kind) for m in find_matches(root)]
    assert ranked[:3] == [("prostate_nci_isbi2013_slices", "complete"), ("prostate", "subset"),
                          ("folder", "generic layout")]


def test_own_sites_match_the_generic_layout(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path / "mine", {"HospitalA": (2, 1), "HospitalB": (2, 1)})
    match = detect(root)
    assert (match.dataset, match.sites, match.kind) == ("folder", ("HospitalA", "HospitalB"), "generic layout")
    fed = load_federation("", root, config=get_config("smoke", image_size=16), val_fraction=0.0)
    assert fed.provenance["dataset"] == "folder" and "generic folder layout" in fed.provenance["found"]
    assert "site_letters" not in fed.provenance


def test_extra_unknown_sites_make_a_manifest_match_partial(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path / "mixed", {"RUNMC": (2, 1), "MyHospital": (2, 1)}, invert=True)
    ranked = find_matches(root)
    assert ranked[0].dataset == "folder"
    partial = next(m for m in ranked if m.dataset == "prostate")
    assert partial.kind.startswith("partial") and "MyHospital" in partial.why


def test_nothing_known_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("hello")
    pattern = r"(?s)matches no known dataset layout.*prostate \(png_slices\).*generic layout"
    with pytest.raises(DataError, match=pattern):
        detect(tmp_path / "random")
    with pytest.raises(DataError, match="does not exist"):
        detect(tmp_path / "absent")


def test_loading_writes_nothing_into_the_data_folder(tmp_path: Path, cache: Path) -> None:
    root = make_png_tree(tmp_path / "sample", {"RUNMC": (3, 3), "BMC": (3, 3)}, invert=True)
    before = tree_digest(root)
    for _ in range(2):  # first builds the cache, then reads it
        with pytest.warns(SubsetWarning):
            fed = load_federation("", root, config=get_config("smoke", image_size=16))
    assert fed.name == "prostate"
    assert tree_digest(root) == before
    assert list(cache.rglob("stamp.json"))  # the cache is in $FEDLAB_CACHE_DIR


def test_folder_options_conflict_with_a_manifest(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path / "sample", {"RUNMC": (3, 3), "BMC": (3, 3)}, invert=True)
    with pytest.raises(DataError, match=r"MASK_POLARITY / LABEL_CODING\) apply to the generic folder layout"):
        load_federation("", root, config=get_config("smoke", image_size=16), mask_polarity="dark")
    fed = load_federation("folder", root, config=get_config("smoke", image_size=16), mask_polarity="dark")
    assert fed.site_names == ["BMC", "RUNMC"] and fed.provenance["mask_coding"].startswith("binary, object dark")
    with pytest.raises(ValueError, match="synthetic data need none"):
        load_federation("prostate", "", label_coding={"a": [1]})
