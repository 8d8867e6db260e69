"""Shared fixtures: a tiny toy federation and the location of ../shared (developer data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fedlab.config import get_config
from fedlab.data.federation import Federation, Site, Split
from fedlab.reference import shared_dir


@pytest.fixture
def shared() -> Path:
    """The developer-only ../shared folder; skips the test when absent (users do not have it)."""
    path = shared_dir()  # $FEDLAB_SHARED_DIR or shared/ beside the checkout
    if path is None:
        pytest.skip("../shared is absent (developer-only data)")
    return path


def toy_split(n: int, threshold: float, generator: torch.Generator, size: int = 16) -> Split:
    """Images of uniform noise; the mask is the pixels above ``threshold`` (learnable per pixel)."""
    x = torch.rand(n, 1, size, size, generator=generator)
    return Split(x, (x > threshold).float())


@pytest.fixture
def toy_federation() -> Federation:
    """Three small sites whose masks use different thresholds (a site-specific 'annotation style')."""
    g = torch.Generator().manual_seed(0)
    sites = [
        Site(f"S{k}", toy_split(8 + 4 * k, 0.4 + 0.1 * k, g), toy_split(4, 0.4 + 0.1 * k, g),
             toy_split(4, 0.4 + 0.1 * k, g))
        for k in range(3)
    ]
    return Federation("toy", sites, synthetic=True, source="tests")


@pytest.fixture
def tiny_config():
    """A very small U-Net and schedule so engine tests run in seconds."""
    return get_config("smoke", image_size=16, base_width=4, levels=2, rounds=3, local_steps=2, batch_size=4,
                      eval_every=1)
