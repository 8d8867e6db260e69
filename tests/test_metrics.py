"""Metrics against oracles: hand computations, scikit-learn and scipy distance transforms."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion, distance_transform_edt
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, recall_score, roc_auc_score

from fedlab.metrics import binarize, classification_scores, segmentation_scores, summarize


def masks(shape=(1, 1, 16, 16)):
    return torch.zeros(shape), torch.zeros(shape)


def random_blobs(rng, n, height, width):
    """(n, height, width) bool masks: unions of 1-3 random discs, some touching the border."""
    yy, xx = np.mgrid[:height, :width]
    out = np.zeros((n, height, width), bool)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(2, 7)
            out[i] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    return out


def scipy_distances(pred, target):
    """Independent ASSD / HD95 oracle on 2-D bool masks (boundary = mask minus its erosion)."""
    edge_p, edge_t = pred ^ binary_erosion(pred), target ^ binary_erosion(target)
    p_to_t = distance_transform_edt(~edge_t)[edge_p]
    t_to_p = distance_transform_edt(~edge_p)[edge_t]
    assd = np.concatenate([p_to_t, t_to_p]).mean()
    return assd, max(np.percentile(p_to_t, 95), np.percentile(t_to_p, 95))


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
    with pytest.raises(ValueError, match="spacing must be a positive number or a pair"):
        segmentation_scores(pred, target, spacing=(1.0, 1.0, 1.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_segmentation_scores_on_cuda_equal_cpu():
    rng = np.random.default_rng(3)
    pred = torch.from_numpy(random_blobs(rng, 4, 16, 16).reshape(2, 2, 16, 16))
    target = torch.from_numpy(random_blobs(rng, 4, 16, 16).reshape(2, 2, 16, 16))
    on_cpu = segmentation_scores(pred, target)
    on_gpu = segmentation_scores(pred.cuda(), target.cuda())
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
