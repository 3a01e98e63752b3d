"""Check a family's analytic gradient and Hessian against central finite differences.

The derivatives are compared at the starting point of a fit, at random points near it and at the
optimum: the gradient against central differences of the NLL, the Hessian against central
differences of the analytic gradient (so once the gradient has passed, the Hessian is checked
against the NLL too). Errors are measured on a scale that stays meaningful where the gradient
vanishes:

* gradient, parameter i: ``|g_i - gn_i| / max(|g_i|, |gn_i|, sqrt(H_ii))``;
* Hessian, entry (i, j): ``|H_ij - Hn_ij| / max(|H_ij|, |Hn_ij|, sqrt(H_ii H_jj))``, and for
  parameter i the worst entry of its row;

where ``g, H`` are analytic, ``gn, Hn`` numeric and ``H_ii`` the larger of the two diagonals.
``sqrt(H_ii)`` is the size the gradient reaches one standard error away from the optimum, so near
the optimum (where ``g`` is close to 0 and an ordinary relative error is all rounding noise) the
error is measured against the gradient's natural size, and far from it against the gradient
itself. Both are unchanged when a parameter or a column of the data is rescaled.

Correct families agree to about 1e-8 or better on ordinary data (to 1e-6 on a nearly exact linear
fit, where the NLL's own rounding error is large); a wrong term in a formula gives errors of order
1e-2 to 1. The default tolerance, 1e-5, sits between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .data import Dataset, column_names, load_dataset, stdin_as_file
from .errors import DataError, UsageError
from .families import DEFAULT_FAMILY, get_family
from .families.base import Family
from .numdiff import gradient as numeric_gradient
from .numdiff import jacobian as numeric_jacobian
from .engines.base import RowsObjective
from .engines.memory import MemoryRows
from .optimize import DEFAULT_MAX_ITER, DEFAULT_TOL, newton
from .readers import is_parquet
from .readers.parquet import read_for_fit, read_frame
from .textmodel.family import text_family

if TYPE_CHECKING:
    import pandas as pd

#: Default bound on every relative error.
DEFAULT_TOL_CHECK = 1e-5
#: Default number of random points.
DEFAULT_POINTS = 3
#: Multiples of the natural step at which the finite differences are taken.
STEP_FACTORS = (0.1, 1.0, 10.0)
ERROR_FIELDS = ("grad_abs_err", "grad_rel_err", "hess_abs_err", "hess_rel_err")
#: The relative errors (``g``, ``H`` analytic, ``gn``, ``Hn`` numeric).
METRIC = {
    "gradient": "|g_i - gn_i| / max(|g_i|, |gn_i|, sqrt(H_ii))",
    "hessian": "|H_ij - Hn_ij| / max(|H_ij|, |Hn_ij|, sqrt(H_ii H_jj)), worst entry of row i",
}


@dataclass(frozen=True, eq=False)
class PointCheck:
    """Analytic against numeric derivatives at one point.

    Attributes
    ----------
    label : str
        ``start``, ``random 1``, ..., ``optimum`` (``end of fit`` when the fit did not converge).
    params : ndarray of shape (n_params,)
        The point, on the optimiser's scale (gaussian: log sigma).
    nll : float
    grad, grad_numeric : ndarray of shape (n_params,)
    hess, hess_numeric : ndarray of shape (n_params, n_params)
    grad_abs_err, grad_rel_err, hess_abs_err, hess_rel_err : ndarray of shape (n_params,)
        Per parameter; the Hessian's are the worst entry of the parameter's row.
    """

    label: str
    params: np.ndarray
    nll: float
    grad: np.ndarray
    grad_numeric: np.ndarray
    hess: np.ndarray
    hess_numeric: np.ndarray
    grad_abs_err: np.ndarray
    grad_rel_err: np.ndarray
    hess_abs_err: np.ndarray
    hess_rel_err: np.ndarray

    @property
    def worst(self) -> float:
        return float(max(self.grad_rel_err.max(initial=0.0), self.hess_rel_err.max(initial=0.0)))


@dataclass(frozen=True, eq=False)
class GradCheck:
    """The result of :func:`check_grad`: one :class:`PointCheck` per point and the verdict."""

    family: str
    names: tuple[str, ...]
    classes: tuple[str | None, ...]
    n_obs: int
    tol: float
    seed: int
    points: tuple[PointCheck, ...]
    fit_converged: bool
    #: The CSV's separator (None for a table) and whether it was detected from the header.
    separator: str | None = None
    separator_detected: bool = False

    @property
    def passed(self) -> bool:
        """Every relative error at every point is at most ``tol`` (NaN fails)."""
        return all(bool(np.all(e <= self.tol)) for p in self.points for e in (p.grad_rel_err, p.hess_rel_err))

    def worst(self, field: str) -> np.ndarray:
        """Per parameter, the largest of ``field`` (one of ERROR_FIELDS) over the points."""
        return np.max(np.stack([getattr(p, field) for p in self.points]), axis=0)

    @property
    def largest_grad_rel_err(self) -> float:
        return float(self.worst("grad_rel_err").max(initial=0.0))

    @property
    def largest_hess_rel_err(self) -> float:
        return float(self.worst("hess_rel_err").max(initial=0.0))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (NaN and infinities become None)."""
        from .results import json_safe

        return json_safe({
            "family": self.family,
            "n_obs": self.n_obs,
            "n_params": len(self.names),
            "tol": self.tol,
            "seed": self.seed,
            "metric": dict(METRIC),
            "passed": self.passed,
            "fit_converged": self.fit_converged,
            "largest_grad_rel_err": self.largest_grad_rel_err,
            "largest_hess_rel_err": self.largest_hess_rel_err,
            "separator": self.separator,
            "separator_detected": self.separator_detected,
            "parameters": [
                {"name": n, "class": c, **{f: float(self.worst(f)[i]) for f in ERROR_FIELDS}}
                for i, (n, c) in enumerate(zip(self.names, self.classes))
            ],
            "points": [
                {
                    "label": p.label,
                    "nll": p.nll,
                    "passed": p.worst <= self.tol,
                    "params": p.params.tolist(),
                    "grad": p.grad.tolist(),
                    "grad_numeric": p.grad_numeric.tolist(),
                    "hess": p.hess.tolist(),
                    "hess_numeric": p.hess_numeric.tolist(),
                    **{f: getattr(p, f).tolist() for f in ERROR_FIELDS},
                }
                for p in self.points
            ],
        })


def check_grad(
    data: "pd.DataFrame | str | Path | Dataset",
    family: "str | Family | None" = None,
    *,
    target: str | None = None,
    features: "str | Sequence[str] | None" = None,
    intercept: bool = True,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    n_random: int = DEFAULT_POINTS,
    seed: int = 0,
    tol: float = DEFAULT_TOL_CHECK,
    sep: str | None = None,
    event: str | None = None,
    link: str | None = None,
    levels: "str | Sequence | None" = None,
    model: str | None = None,
    nll: str | None = None,
    start: "str | Mapping[str, float] | None" = None,
    fixed: "str | Mapping[str, float] | None" = None,
    input_format: str | None = None,
) -> GradCheck:
    """Compare ``family``'s analytic gradient and Hessian of the NLL on ``data`` with central
    finite differences (:mod:`mlefit.numdiff`): the gradient with differences of the NLL, the
    Hessian with differences of the analytic gradient, each at three step lengths of which the
    closest to the analytic value counts (see the module docstring for the errors).

    Parameters
    ----------
    data, family, target, features, intercept, weights, offset, exposure, sep, event, link, levels
        As for :func:`mlefit.fit`.
    input_format : {"csv", "parquet"}, optional
        How a path is read (default: from its name, as for :func:`mlefit.fit`).
    model, nll, start, fixed
        A likelihood written as text instead of a family, as for :func:`mlefit.fit`: its derived
        derivatives are checked at ``start``, random points near it and the optimum.
    n_random : int, default 3
        Random points drawn around the start: each parameter moves by a standard normal number of
        its standard errors at the start (``1 / sqrt(H_ii)``).
    seed : int, default 0
        Seed of the generator for the random points.
    tol : float, default 1e-5
        Bound on every relative error (see the module docstring for the metric).

    Returns
    -------
    GradCheck
        ``passed`` is the verdict; the points are the start, the random points and the optimum
        (the point Newton's method stops at, labelled ``end of fit`` if it did not converge).
    """
    text = model is not None or nll is not None
    if not isinstance(data, Dataset) and is_parquet(data, input_format):
        # a text model names its columns in its text: every column is read for it
        data = read_frame(data) if text else read_for_fit(data, target=target, features=features, intercept=intercept,
                                                         roles=dict(weights=weights, offset=offset, exposure=exposure, event=event))
    if text:
        given = {"--family": family, "--target": target, "--features": features, "--offset": offset,
                 "--exposure": exposure, "--event": event, "--link": link, "--levels": levels}
        for option, value in given.items():
            if value is not None:
                raise UsageError(f"{option} does not apply to a text model: the text names its columns and terms.")
        with stdin_as_file(data) as data:
            fam = text_family(model, nll, columns=column_names(data, sep), start=start, fixed=fixed)
            return check_grad(
                data, fam, target=fam.target, features=list(fam.columns), intercept=not fam.columns,
                weights=weights, n_random=n_random, seed=seed, tol=tol, sep=sep,
            )
    if start is not None or fixed is not None:
        raise UsageError(f"{'--start' if start is not None else '--fixed'} applies to a text model (--model or --nll).")
    if isinstance(levels, str):
        levels = tuple(v.strip() for v in levels.split(",") if v.strip())
    fam = get_family(DEFAULT_FAMILY if family is None else family, link=link, levels=levels)
    if not (tol > 0 and math.isfinite(tol)):
        raise UsageError(f"--tol must be a positive number; got {tol}.")
    if n_random < 0:
        raise UsageError(f"--points must be 0 or more; got {n_random}.")
    ds = data if isinstance(data, Dataset) else load_dataset(
        data, fam, target=target, features=features, intercept=intercept and fam.intercept_column, weights=weights,
        offset=offset, exposure=exposure, sep=sep, event=event,
    )
    n_classes = len(ds.levels) if fam.classes and ds.levels is not None else None
    rows = MemoryRows(ds.X, ds.y, ds.weights, ds.offset, ones=ds.ones)
    objective = RowsObjective(fam, rows)
    x0 = fam.start_params(rows.X, ds.y, ds.weights, intercept=ds.intercept, n_classes=n_classes, offset=ds.offset)
    if not np.all(np.isfinite(x0)):
        raise DataError(
            "every residual is zero, so the NLL has no finite minimum and its derivatives cannot be checked."
        )
    # derivatives are taken on the optimiser's scale (log_sigma, not sigma)
    labels = fam.param_names(list(ds.feature_names), ds.levels, optimiser=True)
    names = [n for n, _ in labels]

    if not math.isfinite(objective.value(x0)):
        raise UsageError(
            f"the NLL is not finite at the start ({', '.join(f'{n}={v:.10g}' for n, v in zip(names, x0))}), "
            "where the derivatives are checked first; choose another start (--start)."
        )
    H0 = objective.value_grad_hess(x0)[2]
    diag = np.abs(np.diag(H0))
    usable = (diag > 0) & np.isfinite(diag)
    # One standard error of each parameter at the start: how far the random points move.
    se = 1.0 / np.sqrt(np.where(usable, diag, 1.0))
    # Each parameter's natural size for finite differences: sqrt(m / H_ii), m the size of the
    # NLL (at least the number of rows). Over that distance the parameter moves each row's linear
    # predictor by about one unit of its natural scale, whatever the scale or offset of the
    # columns (steps relative to |x| are far too long for a large coefficient, such as that of a
    # column of years near 2000).
    f0 = objective.value(x0)
    size = max(abs(f0), objective.sums(x0, 0).weight, 1.0)
    natural = np.sqrt(size / np.where(usable, diag, size))
    rng = np.random.default_rng(seed)
    where = [("start", x0)]
    where += [(f"random {k + 1}", x0 + se * rng.standard_normal(x0.size)) for k in range(n_random)]
    opt = newton(objective, x0, tol=DEFAULT_TOL["newton"], max_iter=DEFAULT_MAX_ITER["newton"])
    where.append(("optimum" if opt.converged else "end of fit", opt.params))
    points = [_check_point(label, objective, x, natural) for label, x in where]
    return GradCheck(
        family=fam.name, names=tuple(names), classes=tuple(c for _, c in labels), n_obs=ds.n_obs,
        tol=float(tol), seed=seed, points=tuple(points), fit_converged=opt.converged,
        separator=ds.separator, separator_detected=ds.separator_detected,
    )


def _check_point(label: str, objective: RowsObjective, x: np.ndarray, natural: np.ndarray) -> PointCheck:
    f, g, H = objective.value_grad_hess(x)

    def grad(z: np.ndarray) -> np.ndarray:
        return objective.value_grad(z)[1]

    # Central differences at three step sizes; for each entry the one closest to the analytic
    # value counts. Rounding error dominates the short step where the NLL is nearly quadratic
    # and truncation error the long one where it bends sharply, while a wrong formula is wrong
    # at every step.
    gns = [numeric_gradient(objective.value, x, natural * m) for m in STEP_FACTORS]
    Hns = [numeric_jacobian(grad, x, natural * m) for m in STEP_FACTORS]
    gn = _closest(g, gns)
    Hn = _closest(H, Hns)
    scale = np.sqrt(np.maximum(np.abs(np.diag(H)), np.abs(np.diag(Hn))))
    g_abs = np.abs(g - gn)
    g_rel = _ratio(g_abs, np.maximum(np.maximum(np.abs(g), np.abs(gn)), scale))
    H_abs = np.abs(H - Hn)
    H_rel = _ratio(H_abs, np.maximum(np.maximum(np.abs(H), np.abs(Hn)), np.outer(scale, scale)))
    return PointCheck(
        label=label, params=np.array(x, dtype=float), nll=float(f), grad=g, grad_numeric=gn,
        hess=H, hess_numeric=Hn, grad_abs_err=g_abs, grad_rel_err=g_rel,
        hess_abs_err=H_abs.max(axis=1, initial=0.0), hess_rel_err=H_rel.max(axis=1, initial=0.0),
    )


def _closest(analytic: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """Entry by entry, the candidate closest to ``analytic`` (NaN candidates never win)."""
    stack = np.stack(candidates)
    distance = np.abs(stack - analytic)
    distance[np.isnan(distance)] = np.inf
    pick = np.argmin(distance, axis=0)
    return np.take_along_axis(stack, pick[None], axis=0)[0]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0/0 = 0 (an exactly matching zero) and x/0 = inf; NaN stays NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[(num == 0) & (den == 0)] = 0.0
    return out
