"""Gradient leakage: exact inversion of a linear layer, DLG on the slice classifier, defences and the scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fedlab.data.synthetic import make_adni_cohort
from fedlab.models import LogisticRegression, SliceClassifier
from fedlab.privacy.leakage import (
    add_noise,
    dlg,
    gradients,
    infer_binary_label,
    invert_linear_gradient,
    psnr,
    relative_leakage,
    ssim,
    top_k,
)


def bce(model, x, y):
    return F.binary_cross_entropy_with_logits(model(x).reshape(-1), y)


def _patients(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` subjects of the synthetic ADNI-like cohort, standardised features and AD labels."""
    table = make_adni_cohort(0)
    features = torch.tensor(table.iloc[:, 3:].to_numpy(), dtype=torch.float64)
    features = (features - features.mean(0)) / features.std(0)
    labels = torch.tensor((table["diagnosis"] == "AD").to_numpy(), dtype=torch.float64)
    return features[:n], labels[:n]


def test_one_patients_fedsgd_update_of_logistic_regression_is_that_patients_features():
    x, y = _patients(1)
    torch.manual_seed(0)
    model = LogisticRegression(x.shape[1], zero_init=False).double()
    g_w, g_b = gradients(model, bce, x, y)
    recovered = invert_linear_gradient(g_w, g_b)
    assert (recovered - x[0]).abs().max() < 1e-5


def test_a_batch_update_inverts_to_the_residual_weighted_mix_of_the_patients():
    x, y = _patients(3)
    model = LogisticRegression(x.shape[1]).double()  # zero init: residuals sigmoid(0) - y = +-1/2
    g_w, g_b = gradients(model, bce, x, y)
    residual = torch.sigmoid(model(x).reshape(-1)) - y  # dL/dz_i up to the common 1/B
    expected = (residual[:, None] * x).sum(0) / residual.sum()
    assert torch.allclose(invert_linear_gradient(g_w, g_b), expected, atol=1e-10)


def test_a_zero_bias_gradient_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="bias gradient is zero"):
        invert_linear_gradient(torch.ones(1, 3), torch.zeros(1))


def test_the_label_of_one_record_is_the_sign_of_the_last_bias_gradient():
    torch.manual_seed(0)
    model = SliceClassifier()
    x = torch.rand(1, 1, 32, 32)
    for label in (0.0, 1.0):
        bias_grad = gradients(model, bce, x, torch.tensor([label]))[-1]
        assert infer_binary_label(bias_grad).item() == label


def test_dlg_recovers_one_slice_from_its_update_above_40_db():
    """Fixed seed: a 32x32 image, the classifier at its (seeded) initialisation, 300 L-BFGS iterations."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    truth = (0.3 + 0.5 * ((xx**2 + yy**2) < 0.4) + 0.05 * torch.rand(32, 32, generator=g)).clamp(0, 1)[None, None]
    torch.manual_seed(0)
    model = SliceClassifier()
    target = gradients(model.double(), bce, truth.double(), torch.ones(1, dtype=torch.float64))
    labels = infer_binary_label(target[-1])
    result = dlg(model, bce, target, truth.shape, labels, iterations=300, seed=1)
    assert psnr(result.reconstruction, truth).item() > 40


def test_top_k_keeps_the_largest_fraction_and_the_masks_say_which():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(10, 10, generator=g), torch.randn(50, generator=g)]
    sparse, masks = top_k(grads, 0.1)
    kept = torch.cat([m.reshape(-1) for m in masks])
    assert kept.sum().item() == 15
    values = torch.cat([s.reshape(-1) for s in sparse])
    flat = torch.cat([t.reshape(-1) for t in grads])
    assert torch.equal(values[kept], flat[kept]) and (values[~kept] == 0).all()
    assert flat[kept].abs().min() >= flat[~kept].abs().max()
    assert torch.equal(top_k(grads, 1.0)[0][0], grads[0])


def test_relative_noise_has_the_requested_norm():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(200, 50, generator=g, dtype=torch.float64),
             torch.randn(3000, generator=g, dtype=torch.float64)]
    noisy = add_noise(grads, 0.5, torch.Generator().manual_seed(1))
    ratio = math.sqrt(sum(((a - b) ** 2).sum().item() for a, b in zip(noisy, grads, strict=True))) / math.sqrt(
        sum((b**2).sum().item() for b in grads))
    assert ratio == pytest.approx(0.5, rel=0.03)  # 13000 coordinates: the noise norm concentrates


def test_psnr_and_ssim_equal_their_definitions_on_simple_images():
    a = torch.full((1, 1, 16, 16), 0.5)
    b = a + 0.1
    assert psnr(a, b).item() == pytest.approx(10 * math.log10(1 / 0.01), abs=1e-3)
    img = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(img, img), torch.ones(2), atol=1e-5)


def test_relative_leakage_is_zero_for_the_prior_positive_for_the_truth_and_order_free():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 1, 16, 16, generator=g) * 0.5 + 0.25
    prior = truth.mean(0, keepdim=True)
    assert torch.allclose(relative_leakage(prior.expand(3, -1, -1, -1), truth, prior), torch.zeros(3), atol=1e-6)
    perfect = relative_leakage(truth.flip(0), truth, prior)  # reconstructions in another order
    base = ssim(prior.expand_as(truth), truth)
    assert torch.allclose(perfect, (1 - base) / base, atol=1e-5) and (perfect > 0).all()
