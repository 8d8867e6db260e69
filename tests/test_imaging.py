"""The generic multi-site folder loader and image preprocessing: formats, options, oracles (MONAI, numpy), errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from realdata_fixtures import make_nifti_site, make_png_tree

from fedlab.data.coding import MaskCoding
from fedlab.data.errors import DataError
from fedlab.data.folder import find_folder_layout, load_folder_federation
from fedlab.data.imaging import Preprocessing, normalize_image, read_pair, resize_pair

SITES = {"B": (3, 2), "A": (4, 1)}


def test_png_tree_becomes_real_federation(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path, SITES, size=16)
    fed = load_folder_federation(root, name="toy", image_size=16)
    assert fed.site_names == ["A", "B"] and not fed.synthetic and fed.title == "toy (real)"
    assert fed.provenance["dataset"] == "folder" and fed.provenance["mask_coding"].startswith("binary, object bright")
    assert fed["A"].train.x.shape == (4, 1, 16, 16) and fed["B"].test.y.shape == (2, 1, 16, 16)
    raw = np.asarray(Image.open(root / "A/train/mask/00.png")) >= 128
    np.testing.assert_array_equal(fed["A"].train.y[0, 0].numpy(), raw)  # same size: masks untouched
    img = np.asarray(Image.open(root / "A/train/image/00.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(fed["A"].train.x[0, 0].numpy(), img, rtol=1e-6)  # 8-bit -> x / 255


def test_dark_polarity_is_the_complement(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path, SITES, size=16)
    plain = load_folder_federation(root, image_size=None)
    inverted = load_folder_federation(root, image_size=None, polarity="dark", max_foreground=None)
    np.testing.assert_array_equal(inverted["A"].train.y.numpy(), 1 - plain["A"].train.y.numpy())


def test_folder_layout_names_are_found(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path / "plural", {"S": (2, 1), "T": (1, 1)}, image_dir="images", mask_dir="masks")
    layout = find_folder_layout(root)
    assert (layout.sites, layout.image_dir, layout.mask_dir) == (("S", "T"), "images", "masks")
    assert layout.counts == {"S": {"train": 2, "test": 1}, "T": {"train": 1, "test": 1}}
    assert load_folder_federation(root, image_size=8).site_names == ["S", "T"]
    assert find_folder_layout(tmp_path / "nothing") is None


def test_resize_oracles() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (3, 8, 8)).astype(np.float32)
    mask = (rng.uniform(0, 1, (1, 8, 8)) > 0.5).astype(np.uint8)
    img4, msk4 = resize_pair(image, mask, 4)
    block_mean = image.reshape(3, 4, 2, 4, 2).mean(axis=(2, 4))  # area averaging = 2x2 block means
    np.testing.assert_allclose(img4, block_mean, rtol=1e-5)
    assert set(np.unique(msk4)) <= {0, 1}
    np.testing.assert_array_equal(msk4[0], mask[0, ::2, ::2])  # nearest picks one pixel per block
    img16, msk16 = resize_pair(image, mask, 16)
    assert img16.shape == (3, 16, 16) and msk16.dtype == np.uint8
    np.testing.assert_array_equal(msk16[0, ::2, ::2], mask[0])


def test_normalisation_oracles() -> None:
    x = np.arange(200, dtype=np.float32).reshape(1, 10, 20) + 5
    x = np.concatenate([x, 3 * x[:, ::-1] - 7])  # two channels, each normalised on its own
    lo = x.reshape(2, -1).min(1)[:, None, None]
    hi = np.percentile(x.reshape(2, -1), 99, axis=1)[:, None, None]  # numpy's (linear) 99th percentile
    out = normalize_image(x, "percentile", np.dtype(np.int16))
    np.testing.assert_allclose(out, (np.clip(x, lo, hi) - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    mx = x.reshape(2, -1).max(1)[:, None, None]
    np.testing.assert_allclose(normalize_image(x, "minmax", np.dtype(np.int16)), (x - lo) / (mx - lo), atol=1e-6)
    z = normalize_image(x, "zscore", np.dtype(np.int16))
    np.testing.assert_allclose(z, (x - x.mean((1, 2), keepdims=True)) / x.std((1, 2), keepdims=True), atol=1e-5)
    np.testing.assert_allclose(normalize_image(x, "scale255", np.dtype(np.uint8)), x / 255, rtol=1e-6)
    flat = np.full((1, 4, 4), 7, np.float32)  # an empty slice: 0, no division by zero
    assert not normalize_image(flat, "percentile", np.dtype(np.int16)).any()


def test_rgb_jpg_and_channel_options(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path, {"S": (2, 1)}, size=16, rgb=True)
    for path in (root / "S/train/image").glob("*.png"):  # JPG images with PNG masks, paired by stem
        Image.open(path).save(path.with_suffix(".jpg"), quality=95)
        path.unlink()
    fed = load_folder_federation(root, image_size=8)
    assert fed.num_channels == 3
    grey = load_folder_federation(root, image_size=8, channels=1)
    assert grey.num_channels == 1


def test_nifti_volumes_are_sliced(tmp_path: Path) -> None:
    import nibabel as nib

    root = tmp_path / "vols"
    for site in ("P", "Q"):
        for split, n in (("train", 3), ("test", 1)):
            folder = make_nifti_site(tmp_path / "raw" / site / split, n, seed=len(site))
            for sub in ("image", "mask"):
                (root / site / split / sub).mkdir(parents=True)
            for c in range(n):
                (folder / f"Case{c:02d}.nii.gz").rename(root / site / split / "image" / f"Case{c:02d}.nii.gz")
                (folder / f"Case{c:02d}_segmentation.nii.gz").rename(
                    root / site / split / "mask" / f"Case{c:02d}.nii.gz")
    fed = load_folder_federation(root, image_size=None, normalize="none")
    assert fed["P"].train.x.shape == (3 * 6, 1, 10, 12)  # 6 axial slices of (Y=10, X=12) per case
    vol = np.asarray(nib.load(str(root / "P/train/image/Case00.nii.gz")).dataobj)
    np.testing.assert_allclose(fed["P"].train.x[2, 0].numpy(), vol[:, :, 2].T)
    fg = load_folder_federation(root, image_size=8, foreground_slices_only=True, val_fraction=0.34, seed=1)
    site = fg["P"]
    assert len(site.train) + len(site.val) == 3 * 3  # slices 1..3 hold the foreground
    assert len(site.val) == 3  # one whole case (3 slices) held out, never single slices
    again = load_folder_federation(root, image_size=8, foreground_slices_only=True, val_fraction=0.34, seed=1)
    assert bool((again["P"].val.x == site.val.x).all())
    # volumes: every split knows the case of each slice (Split.groups), slices in volume order, so a site can be
    # scored per volume; the 2-D PNG slices of other datasets carry no case ids
    assert fed["P"].train.groups.tolist() == [c for c in range(3) for _ in range(6)]
    assert fed["P"].test.groups.tolist() == [0] * 6
    assert len(torch.unique(site.val.groups)) == 1
    assert not set(site.val.groups.tolist()) & set(site.train.groups.tolist())
    from fedlab.federation.evaluation import evaluate

    always_background = torch.nn.Conv2d(1, 1, 1)  # any model: logits (N, 1, H, W)
    per_volume = evaluate(always_background, fg["P"].test, "segmentation", metrics=("dice",), per="volume")
    assert set(per_volume) == {"dice"}


def test_png_slices_carry_no_case_ids(tmp_path: Path) -> None:
    fed = load_folder_federation(make_png_tree(tmp_path / "p", {"S": (3, 2)}), image_size=8)
    assert fed["S"].train.groups is None and fed["S"].test.groups is None


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_folder_federation(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no sites found .*Expected layout: ROOT/<SITE>/train/image"):
        load_folder_federation(tmp_path / "empty")
    root = make_png_tree(tmp_path / "d", {"S": (2, 1)})
    (root / "S/test/mask/00.png").unlink()
    with pytest.raises(DataError, match=r"image .*S/test/image/00.png has no mask"):
        load_folder_federation(root)
    root = make_png_tree(tmp_path / "e", {"S": (2, 1)})
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(root / "S/train/mask/01.png")
    with pytest.raises(DataError, match=r"01.png is \(16, 16\) but mask .*01.png is \(8, 16\)"):
        load_folder_federation(root)
    root = make_png_tree(tmp_path / "f", {"S": (2, 1)})
    (root / "S/test/mask").rename(root / "S/test/other")
    with pytest.raises(DataError, match=r"missing folder .*S/test/mask"):
        load_folder_federation(root)
    with pytest.raises(ValueError, match="a binary MaskCoding has one label"):
        MaskCoding(labels=("a", "b"))
    with pytest.raises(ValueError, match="normalize must be one of"):
        Preprocessing(normalize="whiten")


def test_non_binary_mask_is_named(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path, {"S": (2, 1)})
    soft = np.zeros((16, 16), np.uint8)
    soft[4:8, 4:8] = 255
    soft[8, 4:8] = 128  # a grey row: 4 of 256 pixels is a plateau, refused unless its values are listed
    Image.fromarray(soft).save(root / "S/train/mask/01.png")
    with pytest.raises(DataError, match=r"01.png: the mask holds the grey level\(s\) \[128\]"):
        load_folder_federation(root, image_size=None)
    fed = load_folder_federation(root, image_size=None, mask_values=(0, 128, 255))
    assert fed["S"].train.y[1].sum() == 16 + 4  # 128 >= threshold
    with pytest.raises(DataError, match=r"01.png: mask values \[128\] are not among the allowed \[0, 255\]"):
        load_folder_federation(root, mask_values=(0, 255))


def test_read_pair_drops_empty_slices(tmp_path: Path) -> None:
    root = make_png_tree(tmp_path, {"S": (1, 1)})
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "S/train/mask/00.png")
    pair = (root / "S/train/image/00.png", root / "S/train/mask/00.png")
    assert read_pair(*pair, Preprocessing(image_size=8, foreground_slices_only=True)) == []
    assert len(read_pair(*pair, Preprocessing(image_size=8))) == 1


def test_shared_prostate_slices_two_sites(shared: Path) -> None:
    root = shared / "realdata" / "prostate_nci_isbi2013_slices"
    if not root.is_dir():
        pytest.skip("../shared/realdata/prostate_nci_isbi2013_slices not present")
    fed = load_folder_federation(root, name="prostate", image_size=64, polarity="dark")
    assert fed.site_names == ["BMC", "RUNMC"] and not fed.synthetic
    for site in fed:
        assert (len(site.train), len(site.test)) == (3, 3)
        fraction = float(site.train.y.mean())
        assert 0.005 < fraction < 0.30, fraction  # prostate is small; un-inverted it would be ~98%
    with pytest.raises(DataError, match="MASK_POLARITY"):  # read as bright, the masks cover ~98%: stopped
        load_folder_federation(root, image_size=64)
    plain = load_folder_federation(root, image_size=64, max_foreground=None)
    assert float(plain["BMC"].train.y.mean()) > 0.7
