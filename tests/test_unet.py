"""UNet's head initialisation against the textbook formulas of its schemes."""

import math

import pytest
import torch
from scipy.stats import norm

from fedlab.config import HEAD_INITS, get_config
from fedlab.models.unet import RELU_NORMAL_MEAN, UNet, build_unet

# Wide enough that the sample SD of the 1x1 head's weights estimates the scheme's SD to about 1 %.
BASE, LABELS = 64, 64
FAN_IN, FAN_OUT = 2 * BASE, LABELS  # the head reads 2 * base_width channels; kernel 1x1


def _unet(head_init: str, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(1, LABELS, base_width=BASE, levels=2, head_init=head_init)


def test_kaiming_fan_out_head_has_he_sd():
    w = _unet("kaiming_fan_out").head.weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / FAN_OUT), rel=0.05)  # He et al. 2015, fan_out mode


def test_pytorch_default_head_is_conv2d_uniform():
    head = _unet("pytorch_default").head
    bound = 1 / math.sqrt(FAN_IN)  # kaiming_uniform_(a=sqrt(5)) of nn.Conv2d.reset_parameters
    assert head.weight.abs().max().item() <= bound and head.bias.abs().max().item() <= bound
    assert head.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # SD of U(-b, b)


def test_relu_normal_mean_is_the_half_normal_formula():
    # E[max(0, Z)] = integral_0^inf z phi(z) dz = phi(0) for Z ~ N(0, 1)
    assert RELU_NORMAL_MEAN == pytest.approx(norm.pdf(0.0), rel=1e-12)
    assert RELU_NORMAL_MEAN == pytest.approx(norm.expect(lambda z: max(z, 0.0)), rel=1e-6)


def test_centred_head_keeps_kaiming_weights_and_cancels_the_mean_feature():
    plain, centred = _unet("kaiming_fan_out").head, _unet("kaiming_fan_out_centred").head
    assert torch.equal(plain.weight, centred.weight)
    expected = -RELU_NORMAL_MEAN * plain.weight.sum(dim=(1, 2, 3))  # (L,)
    torch.testing.assert_close(centred.bias, expected)
    # A feature whose every channel equals its expected value gives logit 0 on every label.
    mean_feature = torch.full((1, FAN_IN, 1, 1), RELU_NORMAL_MEAN)
    torch.testing.assert_close(centred(mean_feature), torch.zeros(1, LABELS, 1, 1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centred_head_starts_without_an_image_wide_logit_offset(seed):
    """On a fresh network the per-label mean logit over images and pixels is small against its spread."""
    x = torch.rand(8, 3, 32, 32)  # (N, C, H, W)
    offsets = {}
    for head_init in ("kaiming_fan_out", "kaiming_fan_out_centred"):
        torch.manual_seed(seed)
        net = UNet(3, 8, base_width=8, levels=3, head_init=head_init)
        with torch.no_grad():
            z = net(x)  # (N, 8, H, W)
        offsets[head_init] = (z.mean(dim=(0, 2, 3)) / z.std(dim=(0, 2, 3))).abs()  # (8,)
    assert offsets["kaiming_fan_out_centred"].max() < 0.1
    assert offsets["kaiming_fan_out"].max() > 0.3  # the offset the centring removes


@pytest.mark.parametrize("head_init, changed", [("pytorch_default", {"head.weight"}),
                                                ("kaiming_fan_out_centred", {"head.bias"})])
def test_head_init_changes_only_the_head(head_init, changed):
    sa, sb = _unet("kaiming_fan_out").state_dict(), _unet(head_init).state_dict()
    for key in sa:
        assert torch.equal(sa[key], sb[key]) != (key in changed), key


def test_config_selects_head_init_and_rejects_unknown():
    config = get_config("smoke")
    assert config.head_init in HEAD_INITS
    torch.manual_seed(0)
    small = build_unet(1, 2, config.replace(head_init="pytorch_default")).head.weight
    assert small.abs().max().item() <= 1 / math.sqrt(2 * config.base_width)
    with pytest.raises(ValueError, match="head_init"):
        config.replace(head_init="xavier")
    with pytest.raises(ValueError, match="head_init"):
        UNet(1, 2, head_init="xavier")
