"""Draw synthetic data from known parameters (the first half of a recovery study)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import UsageError
from .families import get_family
from .families.base import Family

if TYPE_CHECKING:
    import pandas as pd


def true_params(
    family: "str | Family",
    coef: "Sequence[float] | Sequence[Sequence[float]]",
    intercept: "float | Sequence[float] | None" = None,
    sigma: float | None = None,
) -> tuple[np.ndarray, int]:
    """Optimiser-scale parameters and the number of features for the given truth.

    ``coef`` is one row of p coefficients (bernoulli, gaussian) or one row per non-reference
    class (categorical); ``intercept`` is a scalar, or one value per non-reference class.
    """
    fam = get_family(family)
    rows = np.atleast_2d(np.asarray(coef, dtype=float))
    if fam.name != "categorical" and rows.shape[0] != 1:
        raise UsageError(f"{fam.name} takes one row of coefficients; got {rows.shape[0]}.")
    n_features = rows.shape[1]
    if intercept is not None:
        icpt = np.atleast_1d(np.asarray(intercept, dtype=float))
        if icpt.size != rows.shape[0]:
            raise UsageError(
                f"{icpt.size} intercept value(s) given for {rows.shape[0]} coefficient row(s)."
            )
        rows = np.column_stack([icpt, rows])
    params = rows.ravel()
    if fam.name == "gaussian":
        if sigma is None or not sigma > 0:
            raise UsageError(f"gaussian needs a positive --sigma; got {sigma}.")
        params = fam.from_natural(np.append(params, sigma))
    return params, n_features


def simulate(
    family: "str | Family",
    coef: "Sequence[float] | Sequence[Sequence[float]]",
    *,
    n: int = 1000,
    intercept: "float | Sequence[float] | None" = None,
    sigma: float | None = None,
    X: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> "pd.DataFrame":
    """Simulate a table with feature columns and a target ``y`` from known parameters.

    Parameters
    ----------
    family : str or Family
    coef : sequence of float, or sequence of rows (categorical: one row per non-reference class)
    n : int
        Rows to draw (ignored when ``X`` is given).
    intercept : float or sequence of float, optional
    sigma : float, optional
        gaussian's noise scale.
    X : ndarray of shape (n_obs, n_features), optional
        A design to reuse; default standard-normal features.
    feature_names : sequence of str, optional
        Default ``x1..xp``.
    rng, seed
        A generator, or a seed to build one (``np.random.default_rng(seed)``).

    Returns
    -------
    DataFrame
        Feature columns then ``y``; categorical labels are 0..K-1 (0 the reference class),
        bernoulli 0/1.
    """
    import pandas as pd

    fam = get_family(family)
    params, n_features = true_params(fam, coef, intercept, sigma)
    if rng is None:
        rng = np.random.default_rng(seed)
    if X is None:
        if n < 1:
            raise UsageError(f"--n must be at least 1; got {n}.")
        X = rng.standard_normal((n, n_features))
    X = np.asarray(X, dtype=float)
    if X.shape[1] != n_features:
        raise UsageError(f"{n_features} coefficient(s) given for a design of {X.shape[1]} column(s).")
    design = np.column_stack([np.ones(len(X)), X]) if intercept is not None else X
    y = fam.simulate(params, design, rng)
    names = list(feature_names) if feature_names is not None else [f"x{j + 1}" for j in range(n_features)]
    frame = pd.DataFrame(X, columns=names)
    frame["y"] = y.astype(int) if fam.name != "gaussian" else y
    return frame
