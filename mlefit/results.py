"""The result of a fit, as frozen dataclasses, and its JSON-ready dictionary.

The layout of :meth:`FitResult.to_dict` is a public contract (``mlefit fit --format json``):
keys may be added, never renamed or removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: Columns of the estimates table, in order (also the CSV header and the JSON parameter keys).
PARAMETER_FIELDS = ("name", "class", "estimate", "std_error", "z", "p_value", "ci_low", "ci_high")
#: Added to each parameter (JSON always; CSV with ``ci_method="profile"``): the profile-likelihood
#: interval and how its search ended (:func:`profile_status`).
PROFILE_FIELDS = ("profile_ci_low", "profile_ci_high", "profile_status")
#: Added to each parameter when the fit is compared with a known truth (``fit --truth``).
TRUTH_FIELDS = ("truth", "error_se")
TRACE_FIELDS = ("iteration", "nll", "grad_norm", "step", "seconds")


@dataclass(frozen=True)
class IterationRecord:
    """One row of the convergence table.

    Attributes
    ----------
    iteration : int
        0 is the starting point.
    nll : float
        Total negative log-likelihood at this iterate.
    grad_norm : float
        Max-norm of the gradient of the NLL.
    step : float
        Max-norm of the change in the parameters that led here (NaN at iteration 0).
    seconds : float
        Time since the optimiser started.
    """

    iteration: int
    nll: float
    grad_norm: float
    step: float
    seconds: float


@dataclass(frozen=True, eq=False)
class FitResult:
    """A maximum-likelihood fit: estimates, their uncertainty, fit statistics and the trace.

    Arrays are of shape (n_params,) in the order of ``names``/``classes``, except ``cov``
    (n_params, n_params). Estimates are on the reported scale (gaussian's last one is sigma).

    ``ci_low``/``ci_high`` are Wald intervals at ``level``; with ``ci_method="profile"``,
    ``profile_ci_low``/``profile_ci_high`` hold the profile-likelihood intervals (NaN where a
    parameter was not profiled or a side is open or was not found: ``profile_status`` says which,
    a pair ``(lower, upper)`` per parameter of ``found``, ``unbounded``, ``better maximum``,
    ``failed`` or ``not profiled``; ``profile_notes`` says why in words), found with
    ``profile_fits`` constrained fits and ``profile_passes`` evaluations of the NLL.
    ``data_fingerprint`` (when asked for) identifies the rows used (:mod:`mlefit.fingerprint`).

    ``se``/``z``/``p_values``/``ci_*``/``cov`` follow ``cov_type``: ``"model"`` (the inverse
    Hessian of the objective) or ``"HC0"`` (the sandwich); ``se_model`` always holds the
    model-based standard errors. ``n_obs`` is the number of observations (the sum of the frequency
    weights when there are weights; AIC, BIC and df use it), ``n_rows`` the number of data rows.
    Under ``penalty="l2"``, ``nll``/``loglik``/``aic``/``bic`` are those of the likelihood at the
    MAP estimate and ``objective_value`` is the penalised objective that was minimised.
    """

    family: str
    method: str
    gradient: str
    target: str
    target_note: str | None
    feature_names: tuple[str, ...]
    levels: tuple | None
    intercept: bool
    names: tuple[str, ...]
    classes: tuple[str | None, ...]
    params: np.ndarray
    se: np.ndarray
    z: np.ndarray
    p_values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    cov: np.ndarray
    n_obs: int
    n_params: int
    nll: float
    mean_nll: float
    loss_name: str
    loglik: float
    aic: float
    bic: float
    converged: bool
    message: str
    n_iter: int
    tol: float
    decrement: float
    trace: tuple[IterationRecord, ...] = field(default_factory=tuple)
    mse: float | None = None
    residual_std_error: float | None = None
    df_resid: float | None = None
    exact_fit: bool = False
    #: The true values, when known (``mlefit fit --truth``; see :func:`mlefit.simulate.compare_truth`).
    truth: np.ndarray | None = None

    n_rows: int | None = None
    #: The family's options that differ from its defaults (``link``, ``levels``, ...).
    family_options: dict = field(default_factory=dict)
    #: The family's own counts of the target (survival: ``n_events``, ``n_censored``), or None.
    target_counts: dict | None = None
    weights: str | None = None
    #: The columns of the offset and the exposure (``log(exposure)`` is added to the offset).
    offset: str | None = None
    exposure: str | None = None
    n_dropped: int = 0
    penalty: str | None = None
    l2: float | None = None
    objective: str = "NLL"
    objective_value: float | None = None
    se_method: str = ""
    cov_type: str = "model"
    se_model: np.ndarray | None = None
    null_loglik: float | None = None
    #: What the null model holds ("intercept only"; an ordinal model's "cutpoints only").
    null_model: str | None = None
    lr_stat: float | None = None
    lr_df: int | None = None
    lr_p_value: float | None = None
    pseudo_r2: float | None = None
    r2: float | None = None
    design: dict | None = None
    #: The CSV's separator (None when the data were a table or arrays), and whether it was
    #: detected from the header (``;`` or a tab in a header without a comma).
    separator: str | None = None
    separator_detected: bool = False
    ci_method: str = "wald"
    level: float = 0.95
    profile_ci_low: np.ndarray | None = None
    profile_ci_high: np.ndarray | None = None
    profile_status: tuple[tuple[str, str], ...] | None = None
    profile_notes: tuple[str, ...] = ()
    profile_fits: int | None = None
    profile_passes: int | None = None
    data_fingerprint: str | None = None
    #: A likelihood written as text (``--model`` or ``--nll``): the text, the parameters held fixed
    #: and the start, ``{name: value}``, and the seconds spent deriving and compiling it (0 when
    #: it came from the process's cache). None for a family.
    model: str | None = None
    fixed: dict | None = None
    start: dict | None = None
    compile_seconds: float | None = None
    #: How a text model's derivatives were computed (exact, or finite differences without sympy).
    derivatives: str | None = None

    @property
    def error_se(self) -> np.ndarray | None:
        """``(estimate - truth) / se``: each estimate's error in standard errors, if the truth is known."""
        if self.truth is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.params - self.truth) / self.se

    @property
    def estimates(self) -> dict[str, float]:
        """``{label: estimate}`` with categorical labels written ``class:name``."""
        return {label: float(v) for label, v in zip(self.labels, self.params)}

    @property
    def labels(self) -> list[str]:
        return param_labels(self.names, self.classes)

    def parameter_rows(self, model_se: bool = False, profile: bool = False) -> list[dict[str, Any]]:
        """One dict per parameter with the keys of :data:`PARAMETER_FIELDS`, plus those of
        :data:`TRUTH_FIELDS` when the truth is known, ``model_std_error`` when ``model_se`` and
        those of :data:`PROFILE_FIELDS` when ``profile``."""
        fields = PARAMETER_FIELDS[2:]
        columns = [self.params, self.se, self.z, self.p_values, self.ci_low, self.ci_high]
        if self.truth is not None:
            fields += TRUTH_FIELDS
            columns += [self.truth, self.error_se]
        rows = [
            {"name": name, "class": cls, **dict(zip(fields, (float(c[i]) for c in columns)))}
            for i, (name, cls) in enumerate(zip(self.names, self.classes))
        ]
        if model_se:
            se_model = self.se if self.se_model is None else self.se_model
            for row, value in zip(rows, se_model):
                row["model_std_error"] = float(value)
        if profile:
            nan = np.full(len(rows), np.nan)
            low = nan if self.profile_ci_low is None else self.profile_ci_low
            high = nan if self.profile_ci_high is None else self.profile_ci_high
            statuses = self.profile_status or (None,) * len(rows)
            for row, lo, hi, status in zip(rows, low, high, statuses):
                row.update(profile_ci_low=float(lo), profile_ci_high=float(hi), profile_status=profile_status(status))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (NaN and infinities become None)."""
        out = {
            "family": self.family,
            "family_options": self.family_options,
            "method": self.method,
            "gradient": self.gradient,
            "target": self.target,
            "n_obs": self.n_obs,
            "n_params": self.n_params,
            "converged": self.converged,
            "message": self.message,
            "iterations": self.n_iter,
            "nll": self.nll,
            "mean_nll": self.mean_nll,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
            "parameters": self.parameter_rows(model_se=True, profile=True),
            "trace": [{k: getattr(r, k) for k in TRACE_FIELDS} for r in self.trace],
            "cov": self.cov.tolist(),
            "loss": self.loss_name,
            "target_note": self.target_note,
            "levels": list(self.levels) if self.levels is not None else None,
            "features": list(self.feature_names),
            "intercept": self.intercept,
            "tol": self.tol,
            "decrement": self.decrement,
            "mse": self.mse,
            "residual_std_error": self.residual_std_error,
            "df_resid": self.df_resid,
            "exact_fit": self.exact_fit,
            "n_rows": self.n_rows,
            "weights": self.weights,
            "offset": self.offset,
            "exposure": self.exposure,
            "n_dropped": self.n_dropped,
            "penalty": self.penalty,
            "l2": self.l2,
            "objective": self.objective,
            "objective_value": self.objective_value,
            "se_method": self.se_method,
            "cov_type": self.cov_type,
            "null_loglik": self.null_loglik,
            "null_model": self.null_model,
            "lr_stat": self.lr_stat,
            "lr_df": self.lr_df,
            "lr_p_value": self.lr_p_value,
            "pseudo_r2": self.pseudo_r2,
            "r2": self.r2,
            "design": self.design,
            "separator": self.separator,
            "separator_detected": self.separator_detected,
            "ci_method": self.ci_method,
            "level": self.level,
            "profile_notes": list(self.profile_notes),
            "profile_fits": self.profile_fits,
            "profile_passes": self.profile_passes,
            "data_fingerprint": self.data_fingerprint,
        }
        # the family's own counts of the target (survival: n_events, n_censored), where it has them
        out.update(self.target_counts or {})
        if self.model is not None:
            out.update(
                model=self.model, fixed=self.fixed, start=self.start, compile_seconds=self.compile_seconds,
                derivatives=self.derivatives,
            )
        return json_safe(out)


def profile_status(sides: tuple[str, str] | None) -> str | None:
    """One word or phrase for a parameter's profile search: ``found`` (both ends), ``not
    profiled``, ``unbounded below`` / ``above`` / ``unbounded``, or the first other outcome
    (``failed``, ``better maximum``) with its side; None without a profile."""
    if sides is None:
        return None
    low, high = sides
    if low == high:
        return low
    if {low, high} == {"found", "unbounded"}:
        return "unbounded below" if low == "unbounded" else "unbounded above"
    if low not in ("found", "unbounded"):
        return f"{low} below"
    return f"{high} above"


def param_labels(names: "Sequence[str]", classes: "Sequence[str | None]") -> list[str]:
    """A label per parameter: ``name``, or ``class:name`` for categorical."""
    return [n if c is None else f"{c}:{n}" for n, c in zip(names, classes)]


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
