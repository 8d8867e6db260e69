"""Metrics against oracles: hand computations, scikit-learn, medpy and scipy distance transforms."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.ndimage import binary_erosion, distance_transform_edt
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, recall_score, roc_auc_score
from torch import nn

from fedlab.data.federation import Split
from fedlab.federation.evaluation import evaluate
from fedlab.metrics import (
    LCFED_PROTOCOL,
    binarize,
    classification_scores,
    describe,
    postprocess_masks,
    segmentation_scores,
    summarize,
    volume_scores,
    volume_slices,
)


def masks(shape=(1, 1, 16, 16)):
    return torch.zeros(shape), torch.zeros(shape)


def random_blobs(rng, n, *shape):
    """(n, *shape) bool masks (2-D or 3-D): unions of 1-3 random balls, some touching the border."""
    grids = np.meshgrid(*(np.arange(size) for size in shape), indexing="ij")
    out = np.zeros((n, *shape), bool)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            centre, r = [rng.uniform(0, size) for size in shape], rng.uniform(2, 7)
            out[i] |= sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= r**2
    return out


def scipy_directed_distances(pred, target, spacing=None):
    """Both directed surface-distance lists from their definition (boundary = mask minus its erosion)."""
    edge_p, edge_t = pred ^ binary_erosion(pred), target ^ binary_erosion(target)
    p_to_t = distance_transform_edt(~edge_t, sampling=spacing)[edge_p]
    t_to_p = distance_transform_edt(~edge_p, sampling=spacing)[edge_t]
    return p_to_t, t_to_p


def scipy_distances(pred, target, spacing=None):
    """Independent ASSD / directed HD95 oracle on bool masks (2-D or 3-D)."""
    p_to_t, t_to_p = scipy_directed_distances(pred, target, spacing)
    assd = np.concatenate([p_to_t, t_to_p]).mean()
    return assd, max(np.percentile(p_to_t, 95), np.percentile(t_to_p, 95))


def as_masks(array):
    """(n, *spatial) numpy bool -> (n, 1, *spatial) float tensor."""
    return torch.from_numpy(array)[:, None].float()


def test_dice_iou_of_overlapping_squares_by_hand():
    pred, target = masks()
    pred[0, 0, 2:6, 2:6] = 1  # 16 pixels
    target[0, 0, 3:7, 3:7] = 1  # 16 pixels, overlap 3 x 3 = 9
    scores = segmentation_scores(pred, target, distances=False)
    assert set(scores) == {"dice", "iou"}
    assert scores["dice"].shape == (1, 1)
    assert scores["dice"].item() == pytest.approx(2 * 9 / (16 + 16))
    assert scores["iou"].item() == pytest.approx(9 / (16 + 16 - 9))


def test_dice_iou_match_sklearn_on_random_masks():
    g = torch.Generator().manual_seed(0)
    pred = (torch.rand(4, 2, 12, 10, generator=g) > 0.6).float()
    target = (torch.rand(4, 2, 12, 10, generator=g) > 0.5).float()
    scores = segmentation_scores(pred, target, distances=False)
    for i in range(4):
        for label in range(2):
            p, t = pred[i, label].flatten().numpy(), target[i, label].flatten().numpy()
            assert scores["dice"][i, label].item() == pytest.approx(f1_score(t, p))
            assert scores["iou"][i, label].item() == pytest.approx(jaccard_score(t, p))


def test_surface_distances_of_shifted_line_and_point_by_hand():
    pred, target = masks((2, 1, 16, 16))
    pred[0, 0, 5, 2:12] = 1  # a 1-pixel line is its own boundary
    target[0, 0, 8, 2:12] = 1  # the same line 3 rows down: every boundary pixel is 3 away
    pred[1, 0, 2, 2] = 1
    target[1, 0, 5, 6] = 1  # single pixels 3 rows and 4 columns apart: distance 5
    scores = segmentation_scores(pred, target)
    assert scores["assd"][:, 0].tolist() == pytest.approx([3.0, 5.0])
    assert scores["hd95"][:, 0].tolist() == pytest.approx([3.0, 5.0])
    spaced = segmentation_scores(pred, target, spacing=(2.0, 1.0))  # rows 2 units apart
    assert spaced["assd"][:, 0].tolist() == pytest.approx([6.0, math.hypot(6, 4)])


def test_surface_distances_match_scipy_distance_transforms():
    rng = np.random.default_rng(1)
    pred_np, target_np = random_blobs(rng, 6, 20, 24), random_blobs(rng, 6, 20, 24)
    scores = segmentation_scores(torch.from_numpy(pred_np)[:, None], torch.from_numpy(target_np)[:, None])
    for i in range(6):
        assd, hd95 = scipy_distances(pred_np[i], target_np[i])
        assert scores["assd"][i, 0].item() == pytest.approx(assd, rel=1e-5)
        assert scores["hd95"][i, 0].item() == pytest.approx(hd95, rel=1e-5)


@pytest.mark.parametrize("spacing, diagonal", [(None, math.hypot(12, 20)), ((0.5, 2.0), math.hypot(6, 40))])
def test_empty_mask_conventions(spacing, diagonal):
    pred, target = masks((3, 1, 12, 20))  # image 0: both empty
    target[1, 0, 3:6, 3:6] = 1  # image 1: prediction empty
    pred[2, 0, 3:6, 3:6] = 1  # image 2: target empty
    scores = segmentation_scores(pred, target, spacing=spacing)
    assert scores["dice"][:, 0].tolist() == [1.0, 0.0, 0.0]
    assert scores["iou"][:, 0].tolist() == [1.0, 0.0, 0.0]
    for name in ("assd", "hd95"):
        assert scores[name][:, 0].tolist() == pytest.approx([0.0, diagonal, diagonal])


def test_multilabel_scores_each_label_independently_and_summarize():
    rng = np.random.default_rng(2)
    pred = torch.from_numpy(random_blobs(rng, 6, 16, 16).reshape(3, 2, 16, 16))
    target = torch.from_numpy(random_blobs(rng, 6, 16, 16).reshape(3, 2, 16, 16))
    scores = segmentation_scores(pred, target)
    for label in range(2):
        single = segmentation_scores(pred[:, label : label + 1], target[:, label : label + 1])
        for name in scores:
            torch.testing.assert_close(scores[name][:, label : label + 1], single[name])
    summary = summarize(scores, label_names=["disc", "cup"])
    assert set(summary) == {f"{m}{s}" for m in scores for s in ("", "_disc", "_cup")}
    assert summary["dice"] == pytest.approx(scores["dice"].numpy().mean())
    assert summary["hd95_cup"] == pytest.approx(scores["hd95"][:, 1].numpy().mean())
    assert set(summarize({"dice": torch.ones(4, 1)})) == {"dice"}
    with pytest.raises(ValueError, match="label_names has 1 names but the scores have 2 labels"):
        summarize(scores, label_names=["disc"])


def test_binarize_thresholds_probabilities_strictly():
    logits = torch.tensor([-1.0, 0.0, 2.0])  # probabilities 0.27, 0.5, 0.88
    assert binarize(logits).tolist() == [0.0, 0.0, 1.0]
    assert binarize(torch.sigmoid(logits), from_logits=False).tolist() == [0.0, 0.0, 1.0]
    assert binarize(logits, threshold=0.2).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"threshold must be a probability in \(0, 1\), got 1.5"):
        binarize(logits, threshold=1.5)


def test_segmentation_bad_inputs_raise_clear_errors():
    pred, target = masks((2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"got pred \(2, 1, 8, 8\) and target \(2, 1, 8, 9\)"):
        segmentation_scores(pred, torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"pred must be a binary mask.*0.7.*binarize"):
        segmentation_scores(pred + 0.7, target)
    with pytest.raises(ValueError, match=r"target must be a binary mask.*2"):
        segmentation_scores(pred, target + 2)
    with pytest.raises(ValueError, match=r"target must have shape \(N, L, H, W\).*\(2, 8, 8\).*unsqueeze"):
        segmentation_scores(pred, target[:, 0])
    with pytest.raises(TypeError, match="pred must be a torch.Tensor.*ndarray"):
        segmentation_scores(pred.numpy(), target)
    with pytest.raises(ValueError, match=r"spacing must be a positive number or a sequence \(dy, dx\) of 2"):
        segmentation_scores(pred, target, spacing=(1.0, 1.0, 1.0))


# --- 3-D volumes, spacing, the HD95 variants, checked against medpy and the definitions -----------------

MEDPY_CASES = [((20, 24), None), ((20, 24), (0.5, 2.0)), ((8, 14, 12), None), ((8, 14, 12), (3.0, 0.7, 0.5))]


@pytest.mark.parametrize("shape, spacing", MEDPY_CASES)
def test_scores_match_medpy_on_random_masks(shape, spacing):
    binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(5)
    pred_np, target_np = random_blobs(rng, 8, *shape), random_blobs(rng, 8, *shape)
    pred, target = as_masks(pred_np), as_masks(target_np)
    scores = segmentation_scores(pred, target, spacing=spacing, hd95="pooled")
    for i in range(8):
        p, t = pred_np[i], target_np[i]
        assert scores["dice"][i, 0].item() == pytest.approx(binary.dc(p, t), rel=1e-6)
        assert scores["iou"][i, 0].item() == pytest.approx(binary.jc(p, t), rel=1e-6)
        assert scores["assd"][i, 0].item() == pytest.approx(binary.assd(p, t, voxelspacing=spacing), rel=1e-5)
        assert scores["hd95"][i, 0].item() == pytest.approx(binary.hd95(p, t, voxelspacing=spacing), rel=1e-5)


@pytest.mark.parametrize("shape, spacing", MEDPY_CASES)
def test_default_hd95_is_the_larger_directed_percentile(shape, spacing):
    rng = np.random.default_rng(6)
    pred_np, target_np = random_blobs(rng, 8, *shape), random_blobs(rng, 8, *shape)
    directed = segmentation_scores(as_masks(pred_np), as_masks(target_np), spacing=spacing)
    pooled = segmentation_scores(as_masks(pred_np), as_masks(target_np), spacing=spacing, hd95="pooled")
    torch.testing.assert_close(directed["assd"], pooled["assd"])  # the option changes HD95 only
    differ = 0
    for i in range(8):
        p_to_t, t_to_p = scipy_directed_distances(pred_np[i], target_np[i], spacing)
        assd, hd95 = scipy_distances(pred_np[i], target_np[i], spacing)
        assert directed["assd"][i, 0].item() == pytest.approx(assd, rel=1e-5)
        assert directed["hd95"][i, 0].item() == pytest.approx(hd95, rel=1e-5)
        pooled_oracle = np.percentile(np.concatenate([p_to_t, t_to_p]), 95)
        assert pooled["hd95"][i, 0].item() == pytest.approx(pooled_oracle, rel=1e-5)
        differ += not math.isclose(hd95, pooled_oracle, rel_tol=1e-5)
    assert differ > 0  # the two variants are really different definitions on these masks


def test_3d_surface_distances_by_hand_with_slice_spacing():
    pred, target = masks((2, 1, 5, 8, 8))
    pred[0, 0, 1, 2:6, 2:6] = 1  # a one-slice square is its own boundary
    target[0, 0, 3, 2:6, 2:6] = 1  # the same square two slices further
    pred[1, 0, 0, 1, 1] = 1
    target[1, 0, 4, 4, 5] = 1  # single voxels (4, 3, 4) apart
    in_pixels = segmentation_scores(pred, target)
    assert in_pixels["assd"][:, 0].tolist() == pytest.approx([2.0, math.sqrt(16 + 9 + 16)])
    assert in_pixels["hd95"][:, 0].tolist() == pytest.approx([2.0, math.sqrt(16 + 9 + 16)])
    spaced = segmentation_scores(pred, target, spacing=(3.0, 0.5, 0.5))  # slices 3 units apart
    assert spaced["assd"][:, 0].tolist() == pytest.approx([6.0, math.sqrt(12**2 + 1.5**2 + 2**2)])
    assert spaced["dice"][:, 0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("spacing, diagonal", [(None, math.sqrt(4**2 + 6**2 + 10**2)),
                                               (2.0, 2 * math.sqrt(4**2 + 6**2 + 10**2)),
                                               ((3.0, 1.0, 0.5), math.sqrt(12**2 + 6**2 + 5**2))])
def test_empty_mask_conventions_in_3d(spacing, diagonal):
    pred, target = masks((3, 1, 4, 6, 10))  # volume 0: both empty
    target[1, 0, 1:3, 2:4, 2:4] = 1  # volume 1: prediction empty
    pred[2, 0, 1:3, 2:4, 2:4] = 1  # volume 2: target empty
    scores = segmentation_scores(pred, target, spacing=spacing, hd95="pooled")
    assert scores["dice"][:, 0].tolist() == [1.0, 0.0, 0.0]
    assert scores["iou"][:, 0].tolist() == [1.0, 0.0, 0.0]
    for name in ("assd", "hd95"):
        assert scores[name][:, 0].tolist() == pytest.approx([0.0, diagonal, diagonal])


def test_3d_bad_inputs_raise_clear_errors():
    pred, target = masks((1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"sequence \(dz, dy, dx\) of 3 positive numbers for 3-D masks.*\(1.0, 1.0\)"):
        segmentation_scores(pred, target, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="spacing must be a positive number"):
        segmentation_scores(pred, target, spacing=(1.0, 0.0, 1.0), distances=False)
    with pytest.raises(ValueError, match=r"got pred \(1, 1, 3, 8, 8\) and target \(1, 1, 4, 8, 8\)"):
        segmentation_scores(pred, torch.zeros(1, 1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, L, D, H, W\).*got \(1, 1, 1, 3, 8, 8\)"):
        segmentation_scores(pred[None], target[None])
    with pytest.raises(ValueError, match=r"hd95 must be one of \('directed', 'pooled'\), got 'medpy'"):
        segmentation_scores(pred, target, hd95="medpy")


# --- post-processing ------------------------------------------------------------------------------------

def lcfed_released_rule(mask):
    """LC-Fed's `_connectivity_region_analysis` restated: scipy labels, sizes by ndimage.sum, arg-max label kept."""
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(count + 1))
    return labels == np.argmax(sizes)  # with no component, label 0 (everything) wins


def test_largest_component_on_hand_made_masks():
    mask = torch.zeros(3, 1, 6, 7)
    mask[0, 0, 0:2, 0:2] = 1  # 4 pixels
    mask[0, 0, 3:6, 4:7] = 1  # 9 pixels: kept
    mask[1, 0, 0, 0] = mask[1, 0, 1, 1] = mask[1, 0, 2, 2] = 1  # a diagonal chain: three 4-connected components
    mask[1, 0, 4, 1:3] = 1  # 2 pixels: kept
    mask[2, 0, 1, 1:3] = mask[2, 0, 4, 1:3] = 1  # a tie: the first in scan order is kept
    kept = postprocess_masks(mask, "largest_component")
    expected = torch.zeros_like(mask)
    expected[0, 0, 3:6, 4:7] = 1
    expected[1, 0, 4, 1:3] = 1
    expected[2, 0, 1, 1:3] = 1
    torch.testing.assert_close(kept, expected)
    empty = torch.zeros(1, 1, 4, 4)
    torch.testing.assert_close(postprocess_masks(empty, "largest_component"), empty)  # empty stays empty
    assert postprocess_masks(mask, None) is mask


def test_lcfed_rule_equals_the_released_code_on_random_masks():
    rng = np.random.default_rng(7)
    masks_np = rng.random((12, 2, 10, 10)) > 0.6  # speckle: many components, ties
    masks_np[3] = False  # empty predictions become all foreground
    out = postprocess_masks(torch.from_numpy(masks_np).float(), "lcfed").numpy()
    for n, label in np.ndindex(12, 2):
        np.testing.assert_array_equal(out[n, label] == 1, lcfed_released_rule(masks_np[n, label]))
    assert out[3].all()


def test_postprocess_of_volumes_slice_by_slice_or_in_3d():
    volume = torch.zeros(1, 1, 3, 5, 5)
    volume[0, 0, 0, 0:2, 0:2] = 1  # a 3-D tube of 3 x 4 voxels...
    volume[0, 0, 1, 0:2, 0:2] = 1
    volume[0, 0, 2, 0:2, 0:2] = 1
    volume[0, 0, 0, 3:5, 0:5] = 1  # ...and a 10-voxel slab in slice 0 only
    in_3d = postprocess_masks(volume, "largest_component")
    torch.testing.assert_close(in_3d[0, 0, :, 3:5], torch.zeros(3, 2, 5))  # the tube (12) beats the slab (10)
    assert in_3d.sum() == 12
    per_slice = postprocess_masks(volume, "lcfed")  # LC-Fed works on each slice: the slab wins in slice 0
    assert per_slice[0, 0, 0].sum() == 10 and per_slice[0, 0, 0, 3:5].all()
    torch.testing.assert_close(per_slice[0, 0, 1:], volume[0, 0, 1:])


def test_lcfed_polyp_rule_fills_one_corner_pixel_of_empty_predictions():
    mask = torch.zeros(2, 1, 4, 4)
    mask[1, 0, 2, 1] = 1
    mask[1, 0, 3, 3] = 1
    out = postprocess_masks(mask, "lcfed_polyp")
    expected = mask.clone()
    expected[0, 0, 0, 0] = 1
    torch.testing.assert_close(out, expected)  # non-empty predictions untouched (no component analysis)


def test_scores_with_postprocess_equal_scores_of_the_postprocessed_masks():
    rng = np.random.default_rng(8)
    pred = torch.from_numpy(rng.random((4, 1, 12, 12)) > 0.7).float()
    pred[1] = 0
    target = as_masks(random_blobs(rng, 4, 12, 12))
    for method in ("largest_component", "lcfed", "lcfed_polyp"):
        direct = segmentation_scores(pred, target, postprocess=method, hd95="pooled")
        cleaned = segmentation_scores(postprocess_masks(pred, method), target, hd95="pooled")
        for name in direct:
            torch.testing.assert_close(direct[name], cleaned[name])
    with pytest.raises(ValueError, match=r"postprocess must be one of .*'lcfed'.*got 'lcc'"):
        segmentation_scores(pred, target, postprocess="lcc")


# --- per-volume scoring -----------------------------------------------------------------------------------

def sliced_cases(rng, depths=(3, 5, 4), size=12, labels=2):
    """Slices of several random volumes, interleaved in storage, with their case ids (non-contiguous)."""
    volumes_p = [torch.from_numpy(random_blobs(rng, labels, d, size, size)).float() for d in depths]  # (L, D, H, W)
    volumes_t = [torch.from_numpy(random_blobs(rng, labels, d, size, size)).float() for d in depths]
    case_ids = [10 * (k + 1) for k in range(len(depths))]  # any integers, not 0..V-1
    order = [(k, z) for z in range(max(depths)) for k in range(len(depths)) if z < depths[k]]  # interleaved
    pred = torch.stack([volumes_p[k][:, z] for k, z in order])  # (N, L, H, W)
    target = torch.stack([volumes_t[k][:, z] for k, z in order])
    groups = torch.tensor([case_ids[k] for k, _ in order])
    return pred, target, groups, volumes_p, volumes_t


@pytest.mark.parametrize("spacing, hd95, postprocess", [(None, "directed", None), ((2.5, 0.6, 0.6), "pooled", "lcfed"),
                                                        (1.5, "directed", "largest_component")])
def test_volume_scores_equal_scoring_the_stacked_volumes(spacing, hd95, postprocess):
    rng = np.random.default_rng(9)
    pred, target, groups, volumes_p, volumes_t = sliced_cases(rng)
    scores = volume_scores(pred, target, groups, spacing=spacing, hd95=hd95, postprocess=postprocess)
    assert scores["dice"].shape == (3, 2)
    for k, (vp, vt) in enumerate(zip(volumes_p, volumes_t, strict=True)):
        direct = segmentation_scores(vp[None], vt[None], spacing=spacing, hd95=hd95, postprocess=postprocess)
        for name in ("dice", "iou", "assd", "hd95"):
            torch.testing.assert_close(scores[name][k : k + 1], direct[name])
    assert set(volume_scores(pred, target, groups, distances=False)) == {"dice", "iou"}


def test_volume_slices_keep_first_appearance_and_stored_order():
    index = volume_slices(torch.tensor([7, 3, 7, 3, 9, 7]))
    assert [i.tolist() for i in index] == [[0, 2, 5], [1, 3], [4]]
    with pytest.raises(ValueError, match=r"groups must be a 1-D integer tensor of case ids \(N,\), got \(2, 3\)"):
        volume_slices(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        volume_slices(torch.tensor([0.0, 1.0]))


def test_volume_scores_bad_inputs_raise_clear_errors():
    pred, target = masks((4, 1, 8, 8))
    with pytest.raises(ValueError, match="groups has 3 case ids but pred has 4 and target 4 slices"):
        volume_scores(pred, target, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match=r"pred must hold 2-D slices \(N, L, H, W\).*segmentation_scores"):
        volume_scores(pred[None], target[None], torch.tensor([0]))
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        volume_scores(pred, target.numpy(), torch.tensor([0, 0, 1, 1]))


class ThresholdModel(nn.Module):
    """A fixed 'network': logit = 10 * (x - 0.5) per pixel, one output channel per input channel."""

    def forward(self, x):
        return 10 * (x - 0.5)


def test_evaluate_per_volume_uses_the_case_ids():
    rng = np.random.default_rng(10)
    pred, target, groups, _, _ = sliced_cases(rng, labels=1)
    split = Split(pred * 0.8 + 0.1, target, groups)  # the model's prediction is exactly `pred`
    per_volume = evaluate(ThresholdModel(), split, "segmentation", per="volume", hd95="pooled")
    expected = summarize(volume_scores(pred, target, groups, hd95="pooled"))
    assert per_volume == pytest.approx({m: expected[m] for m in ("dice", "iou", "assd", "hd95")})
    per_slice = evaluate(ThresholdModel(), split, "segmentation", ("dice", "assd"))
    assert per_slice == pytest.approx({m: summarize(segmentation_scores(pred, target))[m] for m in ("dice", "assd")})
    with pytest.raises(ValueError, match=r"per='volume' needs the case id of every slice.*split.groups is None"):
        evaluate(ThresholdModel(), Split(split.x, split.y), "segmentation", per="volume")
    with pytest.raises(ValueError, match="per must be 'slice' or 'volume', got 'case'"):
        evaluate(ThresholdModel(), split, "segmentation", per="case")
    with pytest.raises(ValueError, match="apply to segmentation only"):
        evaluate(nn.Linear(3, 1), Split(torch.rand(4, 3), torch.tensor([0.0, 1, 0, 1])), "classification",
                 per="volume")


def test_split_carries_case_ids_through_to_subset_and_concat():
    x, y = torch.rand(5, 1, 4, 4), torch.zeros(5, 1, 4, 4)
    split = Split(x, y, torch.tensor([0, 0, 1, 1, 1]))
    assert split.to("cpu").groups.tolist() == [0, 0, 1, 1, 1]
    assert split.subset([4, 0]).groups.tolist() == [1, 0]
    other = Split(x[:3], y[:3], torch.tensor([0, 0, 5]))
    pooled = Split.concat([split, Split(x[:0], y[:0]), other])  # an empty split without ids does not matter
    assert pooled.groups.tolist() == [0, 0, 1, 1, 1, 2, 2, 7]  # the second split's cases stay apart
    assert Split.concat([split, Split(x, y)]).groups is None  # ids only when every split has them
    assert Split(x, y).subset([1]).groups is None
    with pytest.raises(ValueError, match=r"groups must be an integer tensor of case ids of shape \(5,\).*\(4,\)"):
        Split(x, y, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"shape \(5,\), torch.float32; map case names to integers"):
        Split(x, y, torch.zeros(5))


@pytest.mark.realdata
@pytest.mark.parametrize("site", ["RUNMC", "BMC"])
def test_lcfed_protocol_on_real_prostate_slices_equals_their_pipeline_with_medpy(shared, site):
    """Real masks (two patients of three consecutive slices each), an imperfect prediction, scored per volume
    with LC-Fed's post-processing, against their pipeline restated: rule per slice, stack, medpy per case."""
    binary = pytest.importorskip("medpy.metric.binary")
    from PIL import Image

    root = shared / "realdata" / "prostate_nci_isbi2013_slices" / site
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    files = [root / part / "mask" / f"00_0{k}.png" for part in ("train", "test") for k in range(3)]
    target_np = np.stack([np.asarray(Image.open(f).convert("L")) < 128 for f in files])  # prostate = dark
    pred_np = np.roll(target_np, (3, -2), axis=(1, 2))  # a prediction 3 px too low and 2 px too far left
    pred_np[1] = binary_erosion(pred_np[1], iterations=4)
    pred_np[2, 10:16, 10:16] = True  # a spurious blob the largest-component rule removes
    pred_np[4] = False  # a missed slice, which their rule turns into an all-foreground slice
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    ours = volume_scores(as_masks(pred_np), as_masks(target_np), groups, **{
        k: v for k, v in LCFED_PROTOCOL["prostate"].items() if k != "per"})
    for case in range(2):
        p = np.stack([lcfed_released_rule(s) for s in pred_np[3 * case : 3 * case + 3]])
        t = target_np[3 * case : 3 * case + 3]
        assert ours["dice"][case, 0].item() == pytest.approx(binary.dc(p, t), rel=1e-6)
        assert ours["iou"][case, 0].item() == pytest.approx(binary.jc(p, t), rel=1e-6)
        assert ours["assd"][case, 0].item() == pytest.approx(binary.assd(p, t), rel=1e-5)
        assert ours["hd95"][case, 0].item() == pytest.approx(binary.hd95(p, t), rel=1e-5)


# --- the footnote -----------------------------------------------------------------------------------------

def test_describe_states_each_choice():
    default = describe(["dice", "iou", "assd", "hd95"])
    assert "per 2-D image" in default and "no post-processing" in default and "in pixels" in default
    assert "larger of the two directed 95th percentiles" in default
    assert "exactly one empty gives Dice/IoU 0, ASSD/HD95 the image diagonal" in default
    paper = describe(["iou", "assd"], **LCFED_PROTOCOL["prostate"])
    assert "per 3-D case" in paper and "slice gap counted as one pixel" in paper and "LC-Fed" in paper
    assert "HD95" not in paper and "Dice" not in paper  # only the metrics shown are described
    pooled = describe(["hd95"], per="volume", hd95="pooled", spacing=(3, 0.6, 0.6))
    assert "pooled (as medpy's hd95)" in pooled and "(dz, dy, dx) = (3, 0.6, 0.6)" in pooled
    with pytest.raises(ValueError, match="metrics must be a non-empty list"):
        describe(["auc"])
    with pytest.raises(ValueError, match="sequence \\(dz, dy, dx\\) of 3"):
        describe(["assd"], per="volume", spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="per must be one of"):
        describe(["dice"], per="case")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_segmentation_scores_on_cuda_equal_cpu():
    rng = np.random.default_rng(3)
    pred = torch.from_numpy(random_blobs(rng, 4, 16, 16).reshape(2, 2, 16, 16))
    target = torch.from_numpy(random_blobs(rng, 4, 16, 16).reshape(2, 2, 16, 16))
    on_cpu = segmentation_scores(pred, target)
    on_gpu = segmentation_scores(pred.cuda(), target.cuda())
    for name in on_cpu:
        torch.testing.assert_close(on_gpu[name], on_cpu[name])
    slices_p, slices_t, groups, _, _ = sliced_cases(rng)
    options = {"hd95": "pooled", "postprocess": "lcfed"}
    on_cpu = volume_scores(slices_p, slices_t, groups, **options)
    on_gpu = volume_scores(slices_p.cuda(), slices_t.cuda(), groups.cuda(), **options)
    for name in on_cpu:
        torch.testing.assert_close(on_gpu[name], on_cpu[name])


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_classification_scores_match_sklearn(threshold):
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 2, 200)
    y_score = np.clip(0.3 * y_true + rng.uniform(0, 0.7, 200), 0, 1)
    y_pred = (y_score > threshold).astype(int)
    expected = {
        "acc": accuracy_score(y_true, y_pred),
        "sen": recall_score(y_true, y_pred, pos_label=1),
        "spe": recall_score(y_true, y_pred, pos_label=0),
        "auc": roc_auc_score(y_true, y_score),
    }
    for inputs in [(y_true, y_score), (torch.from_numpy(y_true), torch.from_numpy(y_score)[:, None])]:
        assert classification_scores(*inputs, threshold=threshold) == pytest.approx(expected)


def test_classification_single_class_gives_nan_with_warning():
    with pytest.warns(UserWarning, match="ROC AUC is undefined because y_true holds only class 0"):
        scores = classification_scores([0, 0, 0, 0], [0.1, 0.7, 0.2, 0.3])
    assert scores["acc"] == pytest.approx(0.75)
    assert scores["spe"] == pytest.approx(0.75)
    assert math.isnan(scores["sen"]) and math.isnan(scores["auc"])


def test_classification_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"binary labels 0 .* and 1 .*found \[0, 1, 2\]"):
        classification_scores([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        classification_scores([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"y_score must be 1-D with shape \(n,\), got shape \(3, 2\)"):
        classification_scores([0, 1, 1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="y_score contains nan or inf"):
        classification_scores([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        classification_scores([], [])
