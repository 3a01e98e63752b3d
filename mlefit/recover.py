"""Parameter-recovery studies: simulate many datasets from a known truth, fit each, summarise.

Replication ``i`` draws its data from the ``i``-th child of ``np.random.default_rng(seed)``
(``Generator.spawn``), so its result depends only on the seed and ``i``: not on the number of
replications, their order, or where they run.

Every replication ends in one of three states, all counted and reported:

* ``converged``: the fit met its convergence test; its estimates enter the averages;
* ``not converged``: the optimiser stopped early (its estimates are kept per replication but
  left out of the averages, since they are not maximum-likelihood estimates);
* ``failed``: the fit could not be made (a class never drawn, separation, a singular Hessian);
  its estimates are NaN and its reason is kept.

The summary statistics of each parameter are therefore over the converged replications only,
and ``n_used`` says how many that is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ConvergenceWarning, MlefitError, UsageError
from .families import get_family
from .families.base import Family
from .fit import fit
from .inference import check_level
from .results import json_safe, param_labels
from .simulate import (
    CoefLike, InterceptLike, Truth, censored, check_censoring, make_rng, make_truth, resolve_design, resolve_exposure,
)

if TYPE_CHECKING:
    import pandas as pd

CONVERGED = "converged"
NOT_CONVERGED = "not converged"
FAILED = "failed"

#: Columns of the per-parameter summary (the CSV header and the JSON keys of ``parameters``).
SUMMARY_FIELDS = (
    "name", "class", "truth", "mean_estimate", "bias", "rmse", "mean_se", "empirical_sd",
    "se_ratio", "coverage", "n_used",
)
#: Added after ``coverage`` with ``ci="profile"``.
PROFILE_SUMMARY_FIELDS = ("profile_coverage", "profile_n")
AVERAGING = (
    "averages over the converged replications only; fits that did not converge or failed are "
    "counted in n_not_converged and n_failed and left out of every average"
)


@dataclass(frozen=True, eq=False)
class RecoveryResult:
    """A recovery study: the truth, every replication's estimates, and their summary.

    Arrays of shape (n_reps, n_params) hold one row per replication in the order of
    ``names``/``classes`` (NaN for failed replications); estimates are on the reported scale.

    Attributes
    ----------
    family, method, gradient : str
    n_obs : int
        Rows per replication.
    n_reps : int
    seed : int or None
        The seed (or, when none was given, the fresh entropy) that reproduces the study.
    fixed_design : bool
        True when every replication reuses one design (only y is redrawn); else the features
        are redrawn as standard normals too.
    names, classes : tuple
        Parameter labels, as in :class:`~mlefit.FitResult`.
    truth : ndarray of shape (n_params,)
    estimates, se, ci_low, ci_high : ndarrays of shape (n_reps, n_params)
        ``ci_low``/``ci_high``: the Wald intervals at ``level``.
    status : tuple of str
        ``converged``, ``not converged`` or ``failed`` per replication.
    messages : tuple of str
        The optimiser's message, or the reason a fit failed.
    n_iter : ndarray of shape (n_reps,)
        Iterations per fit (-1 for a failed one).
    ci_method : str
        ``wald``, or ``profile`` when each fit also computed profile-likelihood intervals.
    level : float
        The level of the intervals.
    profile_ci_low, profile_ci_high : ndarrays of shape (n_reps, n_params) or None
        The profile-likelihood intervals (``ci_method="profile"``): -inf / inf on a side where the
        profile never reached the threshold (unbounded), NaN where the endpoint was not found.
    """

    family: str
    method: str
    gradient: str
    n_obs: int
    n_reps: int
    seed: int | None
    fixed_design: bool
    names: tuple[str, ...]
    classes: tuple[str | None, ...]
    truth: np.ndarray
    estimates: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    status: tuple[str, ...]
    messages: tuple[str, ...]
    n_iter: np.ndarray
    intercept: bool = True
    design: str | None = None
    ci_method: str = "wald"
    level: float = 0.95
    profile_ci_low: np.ndarray | None = None
    profile_ci_high: np.ndarray | None = None

    # -- counts --------------------------------------------------------------------------------
    @property
    def used(self) -> np.ndarray:
        """Boolean mask of shape (n_reps,): the replications that enter the averages."""
        return np.array([s == CONVERGED for s in self.status], dtype=bool)

    @property
    def n_converged(self) -> int:
        return self.status.count(CONVERGED)

    @property
    def n_not_converged(self) -> int:
        return self.status.count(NOT_CONVERGED)

    @property
    def n_failed(self) -> int:
        return self.status.count(FAILED)

    @property
    def n_params(self) -> int:
        return len(self.truth)

    @property
    def labels(self) -> list[str]:
        return param_labels(self.names, self.classes)

    def problems(self) -> list[tuple[str, str, list[int]]]:
        """``(status, message, replications)`` for the fits that did not converge or failed,
        grouped by message, most frequent first (replications numbered from 0)."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (s, m) in enumerate(zip(self.status, self.messages)):
            if s != CONVERGED:
                groups.setdefault((s, m), []).append(i)
        return sorted(((s, m, r) for (s, m), r in groups.items()), key=lambda g: (-len(g[2]), g[2][0]))

    # -- summary -------------------------------------------------------------------------------
    @property
    def mean_estimate(self) -> np.ndarray:
        return self._mean(self.estimates)

    @property
    def bias(self) -> np.ndarray:
        """Mean estimate minus the truth."""
        return self.mean_estimate - self.truth

    @property
    def rmse(self) -> np.ndarray:
        """Root mean squared error ``sqrt(mean((estimate - truth)^2))``."""
        return np.sqrt(self._mean((self.estimates - self.truth) ** 2))

    @property
    def mean_se(self) -> np.ndarray:
        """Mean of the reported standard errors."""
        return self._mean(self.se)

    @property
    def empirical_sd(self) -> np.ndarray:
        """Standard deviation of the estimates over replications (ddof 1; NaN below 2)."""
        used = self.estimates[self.used]
        if len(used) < 2:
            return np.full(self.n_params, np.nan)
        return used.std(axis=0, ddof=1)

    @property
    def se_ratio(self) -> np.ndarray:
        """Mean reported SE over the empirical SD (1 when the standard errors are right)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.mean_se / self.empirical_sd

    @property
    def coverage(self) -> np.ndarray:
        """Share of the Wald intervals (at ``level``) that contain the truth."""
        inside = (self.ci_low <= self.truth) & (self.truth <= self.ci_high)
        return self._mean(inside.astype(float))

    @property
    def profile_coverage(self) -> np.ndarray | None:
        """Share of the profile-likelihood intervals that contain the truth, over the converged
        fits whose interval was found (an open side counts as reaching infinity); None
        without profile intervals."""
        if self.profile_ci_low is None:
            return None
        found = self._found()
        inside = ((self.profile_ci_low <= self.truth) & (self.truth <= self.profile_ci_high)).astype(float)
        with np.errstate(invalid="ignore"):
            counts = found.sum(axis=0)
            return np.where(counts > 0, np.where(found, inside, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan)

    @property
    def profile_n(self) -> np.ndarray | None:
        """Per parameter, the converged fits whose profile interval was found (both sides)."""
        return None if self.profile_ci_low is None else self._found().sum(axis=0)

    def _found(self) -> np.ndarray:
        used = self.used[:, None]
        return used & ~np.isnan(self.profile_ci_low) & ~np.isnan(self.profile_ci_high)

    @property
    def n_used(self) -> int:
        return int(self.used.sum())

    def _mean(self, values: np.ndarray) -> np.ndarray:
        used = values[self.used]
        if len(used) == 0:
            return np.full(self.n_params, np.nan)
        return used.mean(axis=0)

    def parameter_rows(self) -> list[dict[str, Any]]:
        """One dict per parameter with the keys of :data:`SUMMARY_FIELDS` (and, with profile
        intervals, those of :data:`PROFILE_SUMMARY_FIELDS` after ``coverage``)."""
        columns = (self.truth, self.mean_estimate, self.bias, self.rmse, self.mean_se,
                   self.empirical_sd, self.se_ratio, self.coverage)
        rows = []
        for i, (name, cls) in enumerate(zip(self.names, self.classes)):
            row = {"name": name, "class": cls, **dict(zip(SUMMARY_FIELDS[2:-1], (float(c[i]) for c in columns)))}
            if self.profile_ci_low is not None:
                row.update(profile_coverage=float(self.profile_coverage[i]), profile_n=int(self.profile_n[i]))
            row["n_used"] = self.n_used
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (NaN becomes None), with every replication's estimates."""
        out = {
            "family": self.family,
            "method": self.method,
            "gradient": self.gradient,
            "n_obs": self.n_obs,
            "reps": self.n_reps,
            "seed": self.seed,
            "fixed_design": self.fixed_design,
            "design": self.design,
            "intercept": self.intercept,
            "n_converged": self.n_converged,
            "n_not_converged": self.n_not_converged,
            "n_failed": self.n_failed,
            "n_used": self.n_used,
            "averaging": AVERAGING,
            "ci_method": self.ci_method,
            "level": self.level,
            "parameters": self.parameter_rows(),
            "replications": [
                {
                    "replication": i,
                    "status": self.status[i],
                    "message": self.messages[i],
                    "iterations": int(self.n_iter[i]),
                    "estimates": self.estimates[i].tolist(),
                    "std_errors": self.se[i].tolist(),
                    "ci_low": self.ci_low[i].tolist(),
                    "ci_high": self.ci_high[i].tolist(),
                    **({} if self.profile_ci_low is None else {
                        "profile_ci_low": self.profile_ci_low[i].tolist(),
                        "profile_ci_high": self.profile_ci_high[i].tolist(),
                    }),
                }
                for i in range(self.n_reps)
            ],
        }
        return json_safe(out)


def recover(
    family: "str | Family",
    coef: CoefLike,
    *,
    n: int | None = None,
    reps: int = 200,
    intercept: InterceptLike = 0.0,
    sigma: float | None = None,
    n_classes: int | None = None,
    ancillary: "Mapping[str, float | None] | None" = None,
    exposure: Any = None,
    link: str | None = None,
    censor_rate: float | None = None,
    censor_time: str | None = None,
    cutpoints: "str | Sequence[float] | None" = None,
    X: Any = None,
    design: "str | Path | pd.DataFrame | None" = None,
    features: "str | Sequence[str] | None" = None,
    feature_names: Sequence[str] | None = None,
    method: str = "newton",
    gradient: str = "analytic",
    tol: float | None = None,
    max_iter: int | None = None,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    progress: Callable[[int, int], None] | None = None,
    ci: str = "wald",
    level: float = 0.95,
) -> RecoveryResult:
    """Simulate ``reps`` datasets from a known truth, fit each, and summarise the estimates.

    Parameters
    ----------
    family, coef, intercept, sigma, n_classes, ancillary, cutpoints, feature_names
        The truth, as for :func:`mlefit.simulate`.
    exposure : str or array-like, optional
        For a family with a log link: a column of ``design`` (reused by every replication) or,
        without a design, drawn afresh for each replication (see :func:`mlefit.simulate`); the fits
        use it.
    link, censor_rate, censor_time : optional
        As for :func:`mlefit.simulate`: the family's link, and the censoring of survival times
        (each replication censored afresh; its fits use the event indicators).
    n : int, optional
        Rows per dataset (default 500); not with a design, whose rows set n.
    reps : int, default 200
        Number of replications, >= 1.
    X, design, features : optional
        A design reused by every replication (only y is redrawn), as for :func:`mlefit.simulate`;
        by default each replication draws fresh standard-normal features.
    method, gradient, tol, max_iter
        Passed to :func:`mlefit.fit` for every replication.
    ci : {"wald", "profile"}
        ``profile``: every fit also computes profile-likelihood intervals, and the summary gives
        their coverage beside the Wald intervals' (``profile_coverage``).
    level : float, default 0.95
        The level of the intervals whose coverage is reported.
    seed, rng
        Replication ``i`` uses ``np.random.default_rng(seed).spawn(reps)[i]`` (or the children of
        ``rng``), so a seed reproduces the study and a study of fewer replications is a prefix.
    progress : callable, optional
        Called as ``progress(done, reps)`` after each replication.

    Returns
    -------
    RecoveryResult
        Summaries are over the converged fits; the others are counted, with their reasons.
    """
    import pandas as pd

    fam = get_family(family, link=link)
    check_censoring(fam, censor_rate, censor_time, design)
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise UsageError(f"--reps must be at least 1; got {reps}.")
    excluded = tuple(c for c in (exposure, censor_time) if isinstance(c, str))
    X, design_name = resolve_design(X, design, features, excluded)
    fixed = X is not None
    if fixed:
        if n is not None:
            raise UsageError("--n cannot be combined with a design: the design's rows set n.")
        if isinstance(X, pd.DataFrame) and feature_names is None:
            feature_names = [str(c) for c in X.columns]
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise UsageError(f"X must be a 2-D array of shape (n_obs, n_features); got {X.ndim} dimension(s).")
        if feature_names is None:
            feature_names = [f"x{j + 1}" for j in range(X.shape[1])]
        n = X.shape[0]
    elif n is None:
        n = 500
    truth = make_truth(
        fam, coef, intercept=intercept, sigma=sigma, n_classes=n_classes, feature_names=feature_names,
        ancillary=ancillary, cutpoints=cutpoints,
    )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UsageError(f"--n must be at least 1; got {n}.")
    if n <= truth.n_params:
        raise UsageError(
            f"--n {n} is too small for {truth.n_params} parameters; a maximum-likelihood fit needs more "
            "rows than parameters."
        )

    check_level(level)
    if ci not in ("wald", "profile"):
        raise UsageError(f"unknown interval method '{ci}'.", "Choose one of: wald, profile.")
    rng, seed_used = make_rng(seed, rng)
    children = rng.spawn(reps)
    drawn_exposure = exposure is not None and design is None and isinstance(exposure, str)
    if exposure is not None and not drawn_exposure:  # the same exposure in every replication
        exposure = resolve_exposure(fam, exposure, design, n, rng)[1]
    elif drawn_exposure:
        resolve_exposure(fam, exposure, None, 1, np.random.default_rng(0))  # the family takes one

    shape = (reps, truth.n_params)
    estimates, se, ci_low, ci_high, p_low, p_high = (np.full(shape, np.nan) for _ in range(6))
    status: list[str] = []
    messages: list[str] = []
    n_iter = np.full(reps, -1, dtype=np.int64)
    for i, child in enumerate(children):
        outcome = _replicate(
            truth, fam, X, n, child, exposure, drawn_exposure, (censor_rate, censor_time, design),
            method=method, gradient=gradient, tol=tol, max_iter=max_iter, ci=ci, level=level,
        )
        if isinstance(outcome, str):
            status.append(FAILED)
            messages.append(outcome)
        else:
            estimates[i], se[i], ci_low[i], ci_high[i] = outcome.params, outcome.se, outcome.ci_low, outcome.ci_high
            if ci == "profile":
                p_low[i], p_high[i] = _open_sides(outcome)
            status.append(CONVERGED if outcome.converged else NOT_CONVERGED)
            messages.append(outcome.message)
            n_iter[i] = outcome.n_iter
        if progress is not None:
            progress(i + 1, reps)

    return RecoveryResult(
        family=fam.name, method=method, gradient=gradient, n_obs=int(n), n_reps=int(reps), seed=seed_used,
        fixed_design=fixed, names=truth.names, classes=truth.classes, truth=truth.values.copy(),
        estimates=estimates, se=se, ci_low=ci_low, ci_high=ci_high, status=tuple(status),
        messages=tuple(messages), n_iter=n_iter, intercept=truth.intercept, design=design_name,
        ci_method=ci, level=float(level), profile_ci_low=p_low if ci == "profile" else None,
        profile_ci_high=p_high if ci == "profile" else None,
    )


def _open_sides(result) -> tuple[np.ndarray, np.ndarray]:
    """A fit's profile interval with an unbounded side as -inf / inf (NaN: not found)."""
    low, high = result.profile_ci_low.copy(), result.profile_ci_high.copy()
    for j, (s_low, s_high) in enumerate(result.profile_status):
        if s_low == "unbounded":
            low[j] = -np.inf
        if s_high == "unbounded":
            high[j] = np.inf
    return low, high


def _replicate(
    truth: Truth, fam: Family, X: np.ndarray | None, n: int, rng: np.random.Generator, exposure, drawn: bool,
    censoring: tuple, **options,
):
    """One replication: the FitResult, or the reason (a sentence) the fit could not be made.

    Only data-dependent errors (a MlefitError other than UsageError) count as a failed fit; a
    UsageError is the caller's mistake and stops the study, and anything else is a bug.
    """
    if X is None:
        X = rng.standard_normal((n, len(truth.feature_names)))
    if drawn:
        exposure = resolve_exposure(fam, "exposure", None, n, rng)[1]
    offset = None if exposure is None else np.log(exposure)
    y = fam.simulate(truth.params, truth.design_matrix(X), rng, offset=offset)
    y, event = fam.split_target(censored(fam, y, *censoring, rng))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit(
                X=X, y=y, family=fam, feature_names=truth.feature_names, intercept=truth.intercept,
                exposure=exposure, event=event, **options,
            )
    except UsageError:
        raise
    except MlefitError as exc:
        return exc.message
    if result.names != truth.names or result.classes != truth.classes:
        drawn = {int(v) for v in np.unique(y)}
        absent = [str(k) for k in (truth.levels or ()) if k not in drawn]
        return f"class {', '.join(absent)} was never drawn" if absent else "the fit's parameters differ from the truth"
    if not (np.all(np.isfinite(result.params)) and np.all(np.isfinite(result.se))):
        return "the fit has non-finite estimates or standard errors"
    return result
