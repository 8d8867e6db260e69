"""Progressive Fourier aggregation (PRR-FL) against its definition and FedAvg."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedlab.federation.fourier import fourier_aggregate, low_frequency_mask, progressive_fraction
from fedlab.federation.params import weighted_average

SHAPES = {
    "conv": (6, 4, 3, 3),  # (out, in, k, k)
    "convT": (4, 6, 2, 2),  # transposed conv (in, out, k, k)
    "head": (1, 8, 1, 1),  # 1x1 conv to one logit
    "linear": (5, 7),
    "bias": (6,),
}


def random_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {k: torch.randn(s, generator=gen) for k, s in SHAPES.items()}


@pytest.mark.parametrize("num_clients", [1, 2, 3, 5])
def test_identical_clients_get_their_weights_back(num_clients):
    state = random_state(torch.Generator().manual_seed(0))
    out = fourier_aggregate([state] * num_clients, [1.0 + k for k in range(num_clients)], fraction=0.8)
    assert len(out) == num_clients
    for s in out:
        for k, t in state.items():
            assert s[k].shape == t.shape and s[k].dtype == t.dtype
            torch.testing.assert_close(s[k], t, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("num_clients", [1, 2, 3, 5])
def test_fraction_one_with_identical_phases_is_fedavg(num_clients):
    # Positive multiples c_k * w share w's phase; averaging amplitudes gives (sum_k p_k c_k) * w = FedAvg.
    gen = torch.Generator().manual_seed(1)
    base = random_state(gen)
    scales = torch.rand(num_clients, generator=gen) + 0.5
    states = [{k: c * t for k, t in base.items()} for c in scales.tolist()]
    weights = [3.0, 1.0, 2.0, 5.0, 4.0][:num_clients]
    out = fourier_aggregate(states, weights, fraction=1.0)
    expected = weighted_average(states, weights)
    for s in out:
        for k in base:
            torch.testing.assert_close(s[k], expected[k], atol=1e-5, rtol=1e-5)


def test_fraction_one_equals_amplitude_averaging_with_own_phase():
    # Oracle written with numpy on the authors' layout: conv (N, C, k1, k2) -> (C*k1, k2*N).
    gen = torch.Generator().manual_seed(2)
    states = [random_state(gen) for _ in range(3)]
    weights = np.array([1.0, 2.0, 3.0])
    out = fourier_aggregate(states, weights.tolist(), fraction=1.0)
    for key in ("conv", "linear", "head"):
        mats = []
        for s in states:
            t = s[key].double().numpy()
            mats.append(t if t.ndim == 2 else t.transpose(1, 2, 3, 0).reshape(t.shape[1] * t.shape[2], -1))
        spectra = [np.fft.fft2(m) for m in mats]
        mean_amp = sum(w * np.abs(f) for w, f in zip(weights / weights.sum(), spectra, strict=True))
        for k, f in enumerate(spectra):
            mixed = np.real(np.fft.ifft2(mean_amp * np.exp(1j * np.angle(f))))
            shape = states[k][key].shape
            if len(shape) == 4:
                mixed = mixed.reshape(shape[1], shape[2], shape[3], shape[0]).transpose(3, 0, 1, 2)
            np.testing.assert_allclose(out[k][key].numpy(), mixed, atol=1e-5)
        # every client now has the same amplitude spectrum
        amps = [np.abs(np.fft.fft2(o[key].double().numpy().reshape(mats[0].shape[0], -1) if key == "linear"
                                   else o[key].double().numpy().transpose(1, 2, 3, 0).reshape(mats[0].shape)))
                for o in out]
        np.testing.assert_allclose(amps[0], amps[2], atol=1e-4)


def test_fraction_zero_changes_nothing_and_biases_are_averaged():
    gen = torch.Generator().manual_seed(3)
    states = [random_state(gen) for _ in range(4)]
    out = fourier_aggregate(states, None, fraction=0.0)
    mean_bias = torch.stack([s["bias"] for s in states]).mean(0)
    for s, o in zip(states, out, strict=True):
        for k in ("conv", "convT", "linear", "head"):
            torch.testing.assert_close(o[k], s[k], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(o["bias"], mean_bias)


def test_partial_fraction_mixes_low_frequencies_only():
    gen = torch.Generator().manual_seed(4)
    states = [{"w": torch.randn(16, 16, generator=gen)} for _ in range(2)]
    out = fourier_aggregate(states, None, fraction=0.5)
    mask = low_frequency_mask((16, 16), 0.5).numpy()
    amps = [np.abs(np.fft.fft2(o["w"].double().numpy())) for o in out]
    own = [np.abs(np.fft.fft2(s["w"].double().numpy())) for s in states]
    np.testing.assert_allclose(amps[0][mask], amps[1][mask], atol=1e-4)  # shared low band
    np.testing.assert_allclose(amps[0][~mask], own[0][~mask], atol=1e-4)  # own high band
    assert not np.allclose(amps[0][~mask], amps[1][~mask])
    assert 0 < mask.mean() < 1


def test_mask_covers_everything_at_one_also_for_odd_and_unit_axes():
    for shape in [(5, 3), (1, 7), (4, 1), (6,)]:
        assert low_frequency_mask(shape, 1.0).all()
        assert not low_frequency_mask(shape, 0.0).any()


def test_progressive_fraction_grows_from_start():
    fr = [progressive_fraction(r, 10) for r in range(1, 11)]
    assert fr[0] == pytest.approx(0.7)
    assert all(b > a for a, b in zip(fr, fr[1:], strict=False)) and fr[-1] < 0.95
    with pytest.raises(ValueError, match="round must be in"):
        progressive_fraction(0, 10)


def test_bad_inputs_raise_clear_errors():
    s = {"w": torch.zeros(3, 3)}
    with pytest.raises(ValueError, match="fraction must be in"):
        fourier_aggregate([s, s], None, fraction=1.5)
    with pytest.raises(ValueError, match="different shapes"):
        fourier_aggregate([s, {"w": torch.zeros(3, 4)}], None, fraction=0.5)
    with pytest.raises(ValueError, match="at least one state"):
        fourier_aggregate([], None)
