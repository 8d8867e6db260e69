"""The convergence measures of ``bench/seg_methods.py`` against hand-computed values on made-up curves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "seg_methods.py"


@pytest.fixture(scope="module")
def seg_methods():
    spec = importlib.util.spec_from_file_location("seg_methods", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _curve(values: dict[int, float], sites: tuple[str, ...] = ("A", "B")) -> pd.DataFrame:
    """A tidy curve with the same validation Dice at every site, plus test rows that must be ignored."""
    rows = [{"site": s, "metric": "dice", "split": "val", "round": r, "value": v}
            for r, v in values.items() for s in sites]
    rows += [{"site": s, "metric": "dice", "split": "test", "round": r, "value": 1.0} for r in values for s in sites]
    return pd.DataFrame(rows)


def test_linear_curve(seg_methods):
    rounds = range(0, 31, 2)  # evaluated every 2 rounds of 30
    curve = _curve({r: 0.5 + 0.002 * r for r in rounds})
    # endpoint: round 30 minus round 24 (the first evaluation >= 22.5)
    assert seg_methods.last_quarter_gain(curve, 30) == pytest.approx(0.002 * 6)
    gain, scatter = seg_methods.quarter_trend(curve, 30)
    # last quarter: rounds 24, 26, 28, 30 (mean 27); third quarter: 16, 18, 20, 22 (mean 19)
    assert gain == pytest.approx(0.002 * 8)
    assert scatter == pytest.approx(0.0, abs=1e-12)


def test_flat_noisy_curve(seg_methods):
    rounds = list(range(0, 31, 2))
    noise = {r: 0.02 * (-1) ** i for i, r in enumerate(rounds)}
    curve = _curve({r: 0.7 + noise[r] for r in rounds})
    # the endpoint sees two opposite noise draws; the quarter means cancel them (two of each sign per quarter)
    assert seg_methods.last_quarter_gain(curve, 30) == pytest.approx(noise[30] - noise[24])
    gain, scatter = seg_methods.quarter_trend(curve, 30)
    assert gain == pytest.approx(0.0, abs=1e-12)
    last = np.array([noise[r] for r in (24, 26, 28, 30)])
    x = np.array([24.0, 26.0, 28.0, 30.0])
    assert scatter == pytest.approx(np.std(last - np.polyval(np.polyfit(x, last, 1), x)))
    assert 0.0 < scatter <= 0.02


def test_too_short_curve_is_nan(seg_methods):
    gain, scatter = seg_methods.quarter_trend(_curve({0: 0.1, 4: 0.2}), 4)
    assert np.isnan(gain) and np.isnan(scatter)
