"""UNet's head initialisation against the textbook formulas of the two schemes."""

import math

import pytest
import torch

from fedlab.config import get_config
from fedlab.models.unet import UNet, build_unet

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


def test_head_init_changes_only_the_head():
    a, b = _unet("kaiming_fan_out"), _unet("pytorch_default")
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        if key == "head.weight":
            assert not torch.equal(sa[key], sb[key])
        else:
            assert torch.equal(sa[key], sb[key]), key


def test_config_selects_head_init_and_rejects_unknown():
    config = get_config("smoke")
    assert config.head_init == "kaiming_fan_out"
    torch.manual_seed(0)
    small = build_unet(1, 2, config.replace(head_init="pytorch_default")).head.weight
    assert small.abs().max().item() <= 1 / math.sqrt(2 * config.base_width)
    with pytest.raises(ValueError, match="head_init"):
        config.replace(head_init="xavier")
    with pytest.raises(ValueError, match="head_init"):
        UNet(1, 2, head_init="xavier")
