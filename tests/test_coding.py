"""Mask codings: decoded labels equal the intended foreground pixel for pixel; bad codings stop with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from realdata_fixtures import make_fundus_tree, make_png_tree_with_truth

from fedlab.data.coding import MaskCoding, check_foreground
from fedlab.data.errors import DataError
from fedlab.data.folder import load_folder_federation

FUNDUS = {"disc": [128, 0], "cup": [0], "background": [255]}


def test_inverted_png_slices_decode_to_the_intended_foreground(tmp_path: Path) -> None:
    root, truth = make_png_tree_with_truth(tmp_path, {"RUNMC": (3, 2), "BMC": (2, 2)}, size=16, invert=True)
    fed = load_folder_federation(root, image_size=None, polarity="dark")
    for site in fed:
        for split in ("train", "test"):
            y = getattr(site, split).y.numpy()  # (N, 1, H, W), files in sorted order
            for k in range(len(y)):
                np.testing.assert_array_equal(y[k, 0], truth[f"{site.name}/{split}/{k:02d}"])


def test_inverted_masks_read_as_bright_stop_with_the_file_and_option(tmp_path: Path) -> None:
    root, _ = make_png_tree_with_truth(tmp_path, {"S": (3, 1)}, size=16, invert=True)
    with pytest.raises(DataError, match=r"site S \(train\): the masks cover a median 9\d% .*mask .*S/train/mask/"
                                        r"0\d.png covers .*MASK_POLARITY = \"dark\""):
        load_folder_federation(root, image_size=None)


def test_three_level_fundus_masks_decode_to_disc_and_cup(tmp_path: Path) -> None:
    root, truth = make_fundus_tree(tmp_path, {"Domain1": (2, 1), "Domain2": (1, 1)})
    fed = load_folder_federation(root, image_size=None, label_coding=FUNDUS)
    assert fed.labels == ("disc", "cup")
    for site in fed:
        for split in ("train", "test"):
            y = getattr(site, split).y.numpy()
            for k in range(len(y)):
                disc, cup = truth[f"{site.name}/{split}/{k:02d}"]
                np.testing.assert_array_equal(y[k, 0], disc)  # the disc channel includes the cup
                np.testing.assert_array_equal(y[k, 1], cup)


def test_three_level_masks_without_a_coding_stop_instead_of_merging(tmp_path: Path) -> None:
    root, _ = make_fundus_tree(tmp_path, {"Domain1": (2, 1)})
    with pytest.raises(DataError, match=r"00.png: the mask holds the grey level\(s\) \[128\] .*LABEL_CODING"):
        load_folder_federation(root, image_size=None)


def test_unknown_mask_values_stop_with_the_file_named(tmp_path: Path) -> None:
    root, _ = make_fundus_tree(tmp_path, {"Domain1": (2, 1)})
    raw = np.asarray(Image.open(root / "Domain1/test/ROIs/mask/00.png")).copy()
    raw[0, 0] = 77
    Image.fromarray(raw).save(root / "Domain1/test/ROIs/mask/00.png")
    with pytest.raises(DataError, match=r"Domain1/test/ROIs/mask/00.png: mask values \[77\] are not among the "
                                        r"allowed \[0, 128, 255\]"):
        load_folder_federation(root, image_size=None, label_coding=FUNDUS)


def test_levels_coding_equals_lcfed_rule() -> None:
    coding = MaskCoding.from_options(label_coding=FUNDUS)
    raw = np.array([[255, 128, 0, 128]], dtype=np.uint8)
    label = 2 - (raw / 127).astype(np.uint8)  # LC-Fed's prepare_fundus: 0 background, 1 disc, 2 cup
    np.testing.assert_array_equal(coding.encode(raw), np.stack([label > 0, label > 1]).astype(np.uint8))


def test_binary_thresholds_and_polarity() -> None:
    raw255 = np.array([[0, 255, 255]], np.uint8)
    raw01 = np.array([[0, 1, 1]], np.uint8)  # a 0/1 label map saved as PNG: 1 is the object
    bright, dark = MaskCoding.from_options("bright"), MaskCoding.from_options("dark")
    np.testing.assert_array_equal(bright.encode(raw255)[0], [[0, 1, 1]])
    np.testing.assert_array_equal(bright.encode(raw01)[0], [[0, 1, 1]])
    np.testing.assert_array_equal(dark.encode(raw255)[0], [[1, 0, 0]])
    np.testing.assert_array_equal(dark.encode(raw01)[0], [[1, 0, 0]])
    edge = np.zeros((64, 64), np.uint8)  # an anti-aliased disc: a few grey edge pixels are thresholded
    edge[16:48, 16:48] = 255
    edge[16, 16:48] = np.linspace(20, 235, 32).astype(np.uint8)
    assert bright.encode(edge).sum() == 31 * 32 + int((np.linspace(20, 235, 32).astype(np.uint8) >= 128).sum())


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="mask polarity must be one of"):
        MaskCoding.from_options("inverted")
    with pytest.raises(ValueError, match="either a label coding or a mask polarity"):
        MaskCoding.from_options("dark", FUNDUS)
    with pytest.raises(ValueError, match=r"label_coding\['disc'\] must be a list"):
        MaskCoding.from_options(label_coding={"disc": 128})


def test_check_foreground_uses_the_median_not_one_large_object() -> None:
    y = np.zeros((3, 1, 10, 10), np.uint8)
    y[0, 0] = 1  # one sample filled (a large polyp), two small objects: fine
    y[1, 0, :2, :2] = 1
    y[2, 0, :3, :3] = 1
    check_foreground(y, ["a", "b", "c"], [0, 1, 2], "site S (train)", "polarity='dark'")
    y[1, 0] = 1
    with pytest.raises(DataError, match=r"site S \(train\): the masks cover a median 100% .*mask a covers 100%"):
        check_foreground(y, ["a", "b", "c"], [0, 1, 2], "site S (train)", "polarity='dark'")
