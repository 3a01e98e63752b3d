"""Central finite differences of a scalar function: the numeric gradient and Hessian.

Used for ``--grad numeric`` and to check the analytic derivatives (``check-grad`` and the tests).
Steps are relative to each parameter's size: ``eps**(1/3)`` for first differences and
``eps**(1/4)`` for second differences balance truncation against rounding error.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

_EPS = np.finfo(float).eps


def _steps(x: np.ndarray, power: float, scale: np.ndarray | None = None) -> np.ndarray:
    """``eps**power`` times ``max(1, |x|)``, or times ``scale`` when given."""
    size = np.maximum(1.0, np.abs(x)) if scale is None else np.asarray(scale, dtype=float)
    h = _EPS**power * size
    # Make x + h exactly representable so the step used is the step divided by.
    return (x + h) - x


def gradient(fun: Callable[[np.ndarray], float], x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Central-difference gradient of ``fun`` at ``x``; 2 * n_params evaluations.

    ``scale`` (shape (n_params,)), when given, replaces ``max(1, |x|)`` as each parameter's
    natural size (the distance over which ``fun`` bends appreciably); steps are ``eps**(1/3)``
    times it.
    """
    x = np.asarray(x, dtype=float)
    h = _steps(x, 1.0 / 3.0, scale)
    g = np.empty_like(x)
    for i in range(x.size):  # a loop over parameters, not rows
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (fun(x + e) - fun(x - e)) / (2.0 * h[i])
    return g


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Central-difference Hessian of ``fun`` at ``x`` (symmetric by construction); ``scale`` as
    for :func:`gradient`."""
    x = np.asarray(x, dtype=float)
    h = _steps(x, 0.25, scale)
    n = x.size
    H = np.empty((n, n))
    f0 = fun(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        H[i, i] = (fun(x + 2 * ei) - 2.0 * f0 + fun(x - 2 * ei)) / (4.0 * h[i] ** 2)
        for j in range(i + 1, n):
            ej = np.zeros(n)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (
                fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
            ) / (4.0 * h[i] * h[j])
    return H


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Central-difference Jacobian of a vector function (rows: outputs, columns: inputs);
    ``scale`` as for :func:`gradient`."""
    x = np.asarray(x, dtype=float)
    h = _steps(x, 1.0 / 3.0, scale)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        cols.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2.0 * h[i]))
    return np.column_stack(cols)
