"""Logistic regression as a network: one linear layer from features to the AD (positive-class) logit.

Choices (the survey leaves them open):

* The model outputs a logit ``(N, 1)``; the loss is binary cross-entropy on it (the engine's
  classification loss), averaged over the batch.
* L2 regularisation is the optimiser's ``weight_decay`` (``Config.weight_decay``): the gradient gets
  ``+ weight_decay * w``, i.e. the objective is ``mean BCE + weight_decay / 2 * ||(w, b)||^2``
  (:func:`penalized_loss`). It also penalises the bias, the same way in every setting (a negligible
  difference on standardised features); :func:`sklearn_C` gives the equivalent scikit-learn ``C``
  (fit scikit-learn without an intercept on features with an appended column of ones to penalise the
  bias the same way).
* :func:`fit_logistic` solves that objective to its optimum (full-batch L-BFGS with a strong-Wolfe
  line search, in float64): the baselines that are not federated (Single, Cross, Mix) are compared at
  their optimum, not after an arbitrary optimiser budget.
* Initial weights are zero by default: the problem is convex, and every setting then starts from
  the same point, independent of the seed.
* Features are standardised outside the model (:mod:`fedlab.data.standardize`); to deploy a model
  at another site (the "Cross" setting) wrap it with its training scaler, :class:`Standardized`.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


class LogisticRegression(nn.Module):
    """``logit = x @ w + b``.

    Args:
        num_features: Input features F.
        zero_init: Start from ``w = 0, b = 0`` (default) instead of PyTorch's random init.
    """

    def __init__(self, num_features: int, zero_init: bool = True) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.linear = nn.Linear(num_features, 1)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)`` of features ``(N, F)``."""
        return self.linear(x)


class Standardized(nn.Module):
    """A model preceded by a fixed standardisation ``(x - mean) / std`` (its training site's scaler).

    Args:
        model: Maps standardised features ``(N, F)`` to logits.
        mean: Feature means ``(F,)``.
        std: Feature standard deviations ``(F,)`` (positive).
    """

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of raw features ``(N, F)``."""
        return self.model((x - self.mean) / self.std)


def sklearn_C(weight_decay: float, num_samples: int) -> float:  # noqa: N802 (scikit-learn's name)
    """scikit-learn's ``C`` for the same L2 penalty: ``mean BCE + wd/2 ||w||^2`` <=> ``C = 1 / (n * wd)``."""
    if weight_decay <= 0 or num_samples <= 0:
        raise ValueError(f"need weight_decay > 0 and num_samples > 0, got {weight_decay}, {num_samples}")
    return 1.0 / (num_samples * weight_decay)


def penalized_loss(model: LogisticRegression, x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> torch.Tensor:
    """The L2-penalised objective every setting minimises: ``mean BCE + weight_decay / 2 * ||(w, b)||^2``.

    Args:
        model: The logistic regression.
        x: Features ``(N, F)``.
        y: 0/1 labels ``(N,)``.
        weight_decay: L2 strength (``Config.weight_decay``).

    Returns:
        A 0-d tensor (differentiable).
    """
    logits = model(x).reshape(-1)  # (N,)
    bce = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return bce + 0.5 * weight_decay * sum((p ** 2).sum() for p in model.parameters())


def fit_logistic(x: torch.Tensor, y: torch.Tensor, weight_decay: float, max_iter: int | None = None, tol: float = 1e-8,
                 method: str = "auto") -> LogisticRegression:
    """Solve :func:`penalized_loss` to its optimum (full batch, float64).

    The objective is strictly convex for ``weight_decay > 0``: the optimum is unique and does not depend
    on where the solver starts. Two solvers:

    * ``"newton"``: Newton's method (iteratively reweighted least squares, the textbook solver of
      logistic regression and scikit-learn's ``newton-cholesky``), with a backtracking line search;
      it converges in a handful of iterations, each a ``(F+1) x (F+1)`` linear solve.
    * ``"lbfgs"``: :class:`torch.optim.LBFGS` with a strong-Wolfe line search, for many features.

    Args:
        x: Features ``(N, F)`` (standardised); the solve runs on their device.
        y: 0/1 labels ``(N,)``.
        weight_decay: L2 strength (``Config.weight_decay``).
        max_iter: Iteration cap, default 100 (Newton) or 1000 (L-BFGS); a warning is raised when it is
            reached before ``tol``.
        tol: Stop when the largest absolute gradient entry is below this.
        method: "newton", "lbfgs" or "auto" (Newton up to 2048 features, else L-BFGS).

    Returns:
        A :class:`LogisticRegression` holding the solution (float32 parameters, like the engine's models).

    Raises:
        ValueError: for empty data, mismatched shapes, a negative ``weight_decay`` or an unknown method.
    """
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"fit_logistic needs x (N, F) and y (N,) with N > 0, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if method == "auto":
        method = "newton" if x.shape[1] <= 2048 else "lbfgs"
    if method not in ("newton", "lbfgs"):
        raise ValueError(f"method must be 'newton', 'lbfgs' or 'auto', got {method!r}")
    xa = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64, device=x.device)], 1)  # (N, F+1)
    yd = y.double()
    solve = _newton if method == "newton" else _lbfgs
    max_iter = max_iter or (100 if method == "newton" else 1000)
    theta, grad = solve(xa, yd, weight_decay, max_iter, tol)  # (F+1,): weights, then bias
    if grad > 10 * tol:  # L-BFGS's line search can stall just above tol in float64; that is converged
        warnings.warn(f"fit_logistic ({method}) stopped after {max_iter} iterations with gradient max-norm "
                      f"{grad:.1e} > tol {tol:.0e}; raise max_iter", RuntimeWarning, stacklevel=2)
    model = LogisticRegression(x.shape[1]).to(x.device)
    with torch.no_grad():
        model.linear.weight.copy_(theta[:-1].reshape(1, -1))
        model.linear.bias.copy_(theta[-1:])
    return model


def smoothness_constant(x: torch.Tensor, weight_decay: float) -> float:
    """Smoothness constant L of :func:`penalized_loss` on features ``x`` ``(N, F)``.

    The Hessian of the mean logistic loss is ``X~^T D X~ / N`` with ``D <= 1/4`` (``X~``: ``x`` with a ones
    column for the bias), so ``L = lambda_max(X~^T X~ / N) / 4 + weight_decay``. Gradient descent with a
    step ``lr <= 1 / L`` decreases the objective at every step and converges; ``lr > 2 / L`` can diverge.
    """
    xa = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64, device=x.device)], 1)  # (N, F+1)
    return float(torch.linalg.eigvalsh(xa.T @ xa / len(xa))[-1]) / 4 + weight_decay


def _objective(xa: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, wd: float) -> torch.Tensor:
    """Penalised mean BCE of ``theta`` (weights with the bias last) on ``xa`` (features with a ones column)."""
    return F.binary_cross_entropy_with_logits(xa @ theta, y) + 0.5 * wd * (theta @ theta)


def _newton(xa: torch.Tensor, y: torch.Tensor, wd: float, max_iter: int, tol: float) -> tuple[torch.Tensor, float]:
    n, p = xa.shape
    theta = torch.zeros(p, dtype=xa.dtype, device=xa.device)
    eye = torch.eye(p, dtype=xa.dtype, device=xa.device)
    grad_norm = float("inf")
    for _ in range(max_iter):
        prob = torch.sigmoid(xa @ theta)  # (N,)
        grad = xa.T @ (prob - y) / n + wd * theta  # (p,)
        grad_norm = float(grad.abs().max())
        if grad_norm <= tol:
            break
        hess = (xa.T * (prob * (1 - prob))) @ xa / n + wd * eye  # (p, p), positive definite for wd > 0
        step = torch.linalg.solve(hess, grad)
        f0, t = _objective(xa, y, theta, wd), 1.0
        while _objective(xa, y, theta - t * step, wd) > f0 - 1e-4 * t * (grad @ step) and t > 1e-8:
            t *= 0.5  # Armijo backtracking (rarely needed: the full Newton step is almost always accepted)
        theta = theta - t * step
    return theta, grad_norm


def _lbfgs(xa: torch.Tensor, y: torch.Tensor, wd: float, max_iter: int, tol: float) -> tuple[torch.Tensor, float]:
    theta = torch.zeros(xa.shape[1], dtype=xa.dtype, device=xa.device, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-15,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = _objective(xa, y, theta, wd)
        loss.backward()
        return loss

    opt.step(closure)
    closure()
    return theta.detach(), float(theta.grad.abs().max())
