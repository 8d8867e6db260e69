"""Progressive Fourier aggregation (PRR-FL, Chen et al., MICCAI 2021), for any number of clients.

For one weight tensor of each client:

1. lay the tensor out as a matrix (a conv kernel ``(out, in, k1, k2)`` becomes ``(in * k1, k2 * out)``
   as in the authors' code; a linear weight ``(out, in)`` stays as it is);
2. take its discrete Fourier transform and split it into amplitude ``|F|`` and phase ``angle(F)``;
3. replace the *low-frequency* part of every client's amplitude by the weighted average of the
   clients' amplitudes there; keep each client's own phase and its own high-frequency amplitude;
4. transform back (real part) and restore the tensor's shape.

"Low frequency" is a box around frequency zero: along every axis of length ``n``, frequency index
``f`` (cycles per ``n`` samples, as ``torch.fft.fftfreq`` numbers them) is low when
``|f| / (n / 2) <= fraction``. ``fraction = 1`` averages the whole amplitude spectrum; ``fraction = 0``
averages nothing (every client keeps its weights). PRR-FL lets the fraction grow over training
(:func:`progressive_fraction`), so clients share more as training goes on.

Tensors with fewer than ``min_fourier_ndim`` dimensions (biases, by default) are plainly averaged,
as in the authors' code. Differences from that code: any number of clients and weights (the
authors' helper divides by four), any tensor rank, and a frequency box that covers the whole
spectrum at ``fraction = 1`` also for odd or length-1 axes (theirs, a centred slice of half-width
``floor(n * fraction / 2)``, drops the last row/column of odd axes and all of a length-1 axis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from fedlab.federation.params import State, weighted_average


def progressive_fraction(round: int, rounds: int, start: float = 0.7, end: float = 0.95) -> float:
    """The shared low-frequency fraction at ``round`` (1-based) of ``rounds``.

    Grows linearly from ``start`` (first round) towards ``end``, as the authors' schedule
    ``start + (r / R) * (end - start)`` with ``r = round - 1``.
    """
    if rounds <= 0 or not 1 <= round <= rounds:
        raise ValueError(f"round must be in [1, rounds={rounds}], got {round}")
    return start + (round - 1) / rounds * (end - start)


def _as_matrix(t: torch.Tensor) -> torch.Tensor:
    """Layout used for the FFT: 1-D and 2-D tensors unchanged, (N, C, *k) -> (C * k[:-1], k[-1] * N)."""
    if t.ndim <= 2:
        return t
    moved = t.movedim(0, -1)  # (C, k1, ..., kd, N)
    return moved.reshape(-1, moved.shape[-2] * moved.shape[-1])


def _from_matrix(m: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`_as_matrix`."""
    if len(shape) <= 2:
        return m.reshape(shape)
    moved_shape = (*shape[1:], shape[0])
    return m.reshape(moved_shape).movedim(-1, 0)


def low_frequency_mask(shape: Sequence[int], fraction: float, device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask (in ``torch.fft.fftn`` order) of the frequencies averaged at ``fraction``."""
    if fraction <= 0:
        return torch.zeros(tuple(shape), dtype=torch.bool, device=device)
    mask = torch.ones((), dtype=torch.bool, device=device)
    for n in shape:
        # fftfreq is in cycles/sample, in [-0.5, 0.5): 2 * |f| is the frequency relative to Nyquist.
        low = 2 * torch.fft.fftfreq(n, device=device, dtype=torch.float64).abs() <= fraction + 1e-12
        mask = mask.unsqueeze(-1) & low
    return mask


def fourier_mix(tensors: Sequence[torch.Tensor], weights: Sequence[float], fraction: float) -> list[torch.Tensor]:
    """Average the low-frequency amplitude of one tensor across clients; keep each client's phase.

    Args:
        tensors: The same parameter from each client, all of one shape (at least 1-D).
        weights: Non-negative client weights (normalised here).
        fraction: Size of the low-frequency box, in [0, 1].

    Returns:
        One tensor per client, same shape and dtype as the inputs.
    """
    shape, dtype = tensors[0].shape, tensors[0].dtype
    total = float(sum(weights))
    w = [float(x) / total for x in weights]
    spectra = [torch.fft.fftn(_as_matrix(t.detach().to(torch.float64))) for t in tensors]
    amps = [s.abs() for s in spectra]
    mean_amp = sum(wk * a for wk, a in zip(w, amps, strict=True))
    mask = low_frequency_mask(spectra[0].shape, fraction, device=spectra[0].device)
    out = []
    for spec, amp in zip(spectra, amps, strict=True):
        new_amp = torch.where(mask, mean_amp, amp)
        mixed = torch.fft.ifftn(torch.polar(new_amp, spec.angle())).real
        out.append(_from_matrix(mixed, shape).to(dtype))
    return out


def fourier_aggregate(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None,
                      fraction: float = 1.0, min_fourier_ndim: int = 2) -> list[State]:
    """PRR-FL's Fourier aggregation of the clients' shared states.

    Args:
        states: One state per client (same keys and shapes), e.g. each deputy model's shared part.
        weights: Non-negative client weights; ``None`` = uniform (the authors' choice).
        fraction: Low-frequency box size in [0, 1] (see the module docstring).
        min_fourier_ndim: Floating tensors with at least this many dimensions are Fourier-mixed;
            smaller ones (biases) are weighted-averaged; integer tensors stay as each client has them.

    Returns:
        One new state per client, in input order (a personalised result: clients differ in phase
        and high frequencies).

    Raises:
        ValueError: for no states, mismatched keys or shapes, bad weights, or a fraction outside [0, 1].
    """
    if not states:
        raise ValueError("fourier_aggregate needs at least one state")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    weights = [1.0] * len(states) if weights is None else [float(x) for x in weights]
    keys = list(states[0].keys())
    for key in keys:
        shapes = [tuple(s[key].shape) if key in s else None for s in states]
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(f"{key!r} has different shapes (or is missing) across clients: {shapes}")
    small = [k for k in keys if states[0][k].is_floating_point() and states[0][k].ndim < max(min_fourier_ndim, 1)]
    averaged = weighted_average([{k: s[k] for k in small} for s in states], weights)  # validates weights
    out: list[State] = [{} for _ in states]
    for key in keys:
        tensors = [s[key] for s in states]
        if not tensors[0].is_floating_point():
            mixed = [t.clone() for t in tensors]
        elif key in averaged:
            mixed = [averaged[key].clone() for _ in tensors]
        else:
            mixed = fourier_mix(tensors, weights, fraction)
        for k, t in enumerate(mixed):
            out[k][key] = t
    return out
