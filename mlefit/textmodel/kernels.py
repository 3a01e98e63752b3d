"""Elementwise numpy kernels the compiled text models call: stable and fast forms.

* ``softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``: no overflow, exact to
  rounding in both tails, about twice as fast as ``np.logaddexp(0, x)``.
* ``dsigmoid(x) = sigmoid(x) sigmoid(-x) = e / (1 + e)**2`` with ``e = exp(-|x|)``: the
  derivative of the sigmoid without the cancellation of ``s (1 - s)`` where ``s`` is near 1.
* ``trigamma(x) = polygamma(1, x)``: the recurrence ``psi1(x) = psi1(x + 1) + 1/x**2`` up to
  ``x >= 10`` and the asymptotic series
  ``1/z + 1/(2 z**2) + sum_k B_2k / z**(2k+1)`` (``k`` to 7) there, whose first omitted term is
  below ``1e-16`` relative; scipy's ``polygamma(1, x)`` (a Hurwitz zeta, ten times slower) for
  ``x <= 0``.
"""

from __future__ import annotations

import numpy as np

# Bernoulli numbers B_2 .. B_14 for the asymptotic series of the trigamma function.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)
_ASYMPTOTIC_FROM = 10.0


def softplus(x):
    """``log(1 + exp(x))`` for an array or scalar ``x``."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:  # a parameter standing alone: a scalar
        return float(np.logaddexp(0.0, x))
    out = np.exp(-np.abs(x))
    np.log1p(out, out=out)
    out += np.maximum(x, 0.0)
    return out


def dsigmoid(x):
    """``sigmoid(x) * sigmoid(-x)``, the derivative of the sigmoid."""
    e = np.exp(-np.abs(np.asarray(x, dtype=float)))
    d = 1.0 + e
    return e / (d * d)


def trigamma(x):
    """``polygamma(1, x)``, the derivative of the digamma function."""
    x = np.asarray(x, dtype=float)
    positive = x > 0
    z = np.where(positive, x, _ASYMPTOTIC_FROM)
    acc = np.zeros_like(z)
    steps = int(np.ceil(max(0.0, _ASYMPTOTIC_FROM - float(z.min(initial=_ASYMPTOTIC_FROM)))))
    for _ in range(steps):  # at most 10 passes over the block, not a loop over rows
        small = z < _ASYMPTOTIC_FROM
        acc += np.where(small, 1.0 / (z * z), 0.0)
        z = np.where(small, z + 1.0, z)
    inv = 1.0 / z
    inv2 = inv * inv
    series = 0.0
    for b in reversed(_BERNOULLI):  # Horner in 1/z**2
        series = series * inv2 + b
    out = acc + inv + 0.5 * inv2 + inv * inv2 * series
    if not positive.all():
        import scipy.special

        out = np.where(positive, out, scipy.special.polygamma(1, np.where(positive, 1.0, x)))
    return out if out.ndim else float(out)
