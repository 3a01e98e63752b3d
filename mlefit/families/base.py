"""The Family protocol and the numeric helpers families share.

A family turns a block of rows ``(X, y, weights)`` and a parameter vector into the negative
log-likelihood of that block and its exact derivatives, summed over the rows. Because every
quantity is a sum over rows, a caller may evaluate the blocks anywhere (in memory, chunk by chunk
from disk, on other machines) and add the :class:`BlockSums` up; the optimiser never sees rows.

Derivatives are taken per row with respect to the linear predictor ``eta`` and chained through the
design: gradient ``X.T @ g`` and Hessian ``X.T @ (h[:, None] * X)``.

Three optional hooks serve accuracy on ill-conditioned designs (see ``mlefit.linalg``):
``evaluate(..., precise=True)`` computes the products with the design in extended precision;
:meth:`Family.hess_root` gives a matrix ``Z`` with ``Z.T @ Z`` equal to the Hessian (the weighted
design), so Newton steps and covariances can come from a QR factorisation of ``Z`` rather than a
Cholesky factorisation of ``Z.T @ Z``, whose condition number is squared; and
:meth:`Family.closed_form` returns the MLE and its covariance directly when a family has them
(gaussian: least squares). Roots of blocks of rows stack vertically, so they too can be computed
block by block.

In a fit, the engines (:mod:`mlefit.engines`) call ``evaluate`` on row blocks of about 1 MB of
``X`` (column-major, or row-major where the design's column of ones is not stored), so a
family's temporaries are block-sized and stay in cache; ``evaluate`` must give the same sums for
any block and any memory layout of ``X``, up to rounding.

The blocks are evaluated on several threads, so a family's products with the design are written
``np.dot``, not ``@``: numpy's ``matmul`` holds the interpreter lock through the BLAS call and
the threads then take turns (measured with numpy 2.4 on 2 cores: 1.0x the speed of one thread for
matmul, 1.65-1.9x for ``np.dot``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from ..errors import FamilyError, UsageError


@dataclass(frozen=True, eq=False)
class BlockSums:
    """The NLL of a block of rows and its derivatives, each a sum over the rows.

    Attributes
    ----------
    nll : float
        Sum of the (weighted) per-row negative log-likelihoods.
    grad : ndarray of shape (n_params,) or None
        Gradient of ``nll`` with respect to the parameters, when asked for.
    hess : ndarray of shape (n_params, n_params) or None
        Hessian of ``nll``, when asked for.
    weight : float
        Sum of the row weights (the number of rows when unweighted).
    min_log_prob : float or None
        The smallest fitted class log-probability over the rows with a positive weight (0.0 when
        there are none), which the classification families report with the Hessian: the symptom
        of separation that ``mlefit.checks`` screens for, found on a pass already made. None
        when not computed; the minimum of the parts when added.
    """

    nll: float
    grad: np.ndarray | None = None
    hess: np.ndarray | None = None
    weight: float = 0.0
    min_log_prob: float | None = None

    def __add__(self, other: "BlockSums") -> "BlockSums":
        def add(a, b):
            return None if a is None or b is None else a + b

        low = None if self.min_log_prob is None or other.min_log_prob is None else min(
            self.min_log_prob, other.min_log_prob
        )
        return BlockSums(
            self.nll + other.nll,
            add(self.grad, other.grad),
            add(self.hess, other.hess),
            self.weight + other.weight,
            low,
        )


@dataclass(frozen=True, eq=False)
class ClosedForm:
    """The maximum-likelihood estimate of a family that has one in closed form.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        The MLE on the optimiser's scale (gaussian: coefficients, then log sigma; ``-inf`` for an
        exact fit).
    cov : ndarray of shape (n_params, n_params)
        Inverse of the Hessian of the NLL at ``params`` (zeros for an exact fit).
    hess : ndarray of shape (n_params, n_params)
        The Hessian of the NLL at ``params``.
    grad : ndarray of shape (n_params,)
        The gradient at ``params`` (zero up to rounding).
    decrement : float
        ``sqrt(grad' cov grad)``: the distance to the optimum in standard errors.
    exact_fit : bool
        The data fit exactly (gaussian: zero residuals up to rounding), so the likelihood is
        unbounded and ``params``' scale component is ``-inf``.
    note : str
        How it was computed, for the fit's message.
    nll : float or None
        The NLL at ``params`` when the family has it at hand (None: the caller evaluates it).
    """

    params: np.ndarray
    cov: np.ndarray
    hess: np.ndarray
    grad: np.ndarray
    decrement: float
    exact_fit: bool
    note: str
    nll: float | None = None


@dataclass(frozen=True)
class Target:
    """A target column encoded for a family.

    Attributes
    ----------
    y : ndarray of shape (n_obs,)
        float64 values (gaussian), 0.0/1.0 (bernoulli) or class codes 0..K-1 as intp (categorical).
    levels : tuple or None
        The original labels in code order (bernoulli: ``(label of 0, label of 1)``).
    note : str or None
        One line telling the user how the labels were read.
    """

    y: np.ndarray
    levels: tuple | None = None
    note: str | None = None


class Family:
    """Base class of the families: shared behaviour and the protocol every family implements.

    A family is the one place that knows its likelihood: the target's domain and encoding, the
    parameters' layout and labels, the ancillary parameters and their scales, starting values and
    the intercept-only (null) model, closed forms, whether separation can occur, simulation,
    prediction and its ``mlefit families`` text. Nothing outside ``mlefit/families/`` names a family:
    the rest of mlefit reads these attributes and methods.

    Parameter layout: ``n_coef_rows`` rows of one coefficient per design column (one row for most
    families, one per non-reference class for categorical), flattened row by row, then the
    ancillary parameters named in :attr:`ancillary` (gaussian's ``sigma``, negbin's ``alpha``, ...),
    each positive, optimised as its logarithm and reported as itself. Subclasses with another
    layout override the layout methods together.

    Subclasses set the class attributes and implement :meth:`encode_target`, :meth:`check_y`,
    :meth:`start_params`, :meth:`evaluate`, :meth:`scores`, :meth:`simulate` and :meth:`predict`.

    Every array method takes an optional ``offset`` of shape (n_obs,): a known term added to each
    row's linear predictor with coefficient 1 (``--offset``; ``log(exposure)`` for ``--exposure``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    distribution: ClassVar[str]
    link: ClassVar[str]
    loss_name: ClassVar[str]
    #: The loss the NLL equals, said in full (``mlefit families``).
    loss_statement: ClassVar[str]
    nll_formula: ClassVar[str]
    grad_formula: ClassVar[str]
    hess_formula: ClassVar[str]
    #: What the parameters are, for ``mlefit families``.
    parameters: ClassVar[str]
    #: The values the target may take.
    y_domain: ClassVar[str]
    #: Whether the NLL is convex in the parameters (its Hessian is positive semi-definite).
    convex: ClassVar[bool] = True
    #: The target is a class label, encoded as codes ``0..K-1`` into :attr:`Target.levels`.
    classes: ClassVar[bool] = False
    #: Separation can occur (the likelihood rises without bound along a direction of the
    #: coefficients); the exact check runs when a fit shows its symptoms.
    separable: ClassVar[bool] = False
    #: numpy dtype of the encoded target.
    target_dtype: ClassVar[str] = "float64"
    #: Simulated targets are whole numbers (written without a decimal point).
    integer_target: ClassVar[bool] = False
    #: The mean is ``exp(eta)``: ``--exposure`` (whose log is the offset) applies.
    log_link: ClassVar[bool] = False
    #: Positive parameters after the coefficients, optimised as their logarithm.
    ancillary: ClassVar[tuple[str, ...]] = ()
    #: The true value of each ancillary parameter in a simulation when none is given.
    ancillary_defaults: ClassVar[dict[str, float]] = {}
    #: Why ``--offset`` does not apply to the family (None: it applies).
    no_offset: ClassVar[str | None] = None
    #: Rows may be right-censored (``--event``: 1 for an observed event, 0 for a censored row).
    censored: ClassVar[bool] = False
    #: Names of the weighted counts of the target the report gives (survival: ``n_events``,
    #: ``n_censored``), in the order of :meth:`count_rows`.
    count_names: ClassVar[tuple[str, ...]] = ()
    #: The design has an intercept column when one is asked for (False where other parameters take
    #: its place, such as an ordinal model's cutpoints).
    intercept_column: ClassVar[bool] = True
    #: What the null model holds, for the report: ``null log-likelihood (intercept only)``.
    null_model: ClassVar[str] = "intercept only"
    #: The classes are ordered, with one row of coefficients and cutpoints between the classes (a
    #: cumulative model): separation is then decided by the cumulative model's linear programs.
    ordered: ClassVar[bool] = False
    #: Options the family takes (``--link``, ``--levels``): name -> the values allowed (None: a list
    #: of labels), and their defaults.
    option_choices: ClassVar[dict[str, tuple[str, ...] | None]] = {}
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: Options of ``mlefit predict`` the family takes (survival: ``at``).
    prediction_options: ClassVar[tuple[str, ...]] = ()
    #: How the L2-penalised objective reads (the output names it).
    penalty_statement: ClassVar[str] = "NLL + (l2/2) ||b||^2, intercept not penalised"
    #: The design's columns enter through a linear predictor ``X @ b``: the fit checks their rank
    #: and may rescale a column of extreme magnitude by a power of two (exact for a linear
    #: predictor). False for a family that reads the columns otherwise (a likelihood written as
    #: text): neither is done.
    linear_predictor: ClassVar[bool] = True
    #: What to do when the Hessian is singular at the estimate (the hint of that error).
    singular_hint: str = "Check for nearly collinear columns, or use --l2."
    #: The family computes exact derivatives (``evaluate`` with ``order`` 1 and 2, ``scores``). A
    #: family without them is fitted with central finite differences of its NLL (``gradient
    #: "numeric"``), its standard errors from a finite-difference Hessian.
    analytic: bool = True

    def __init__(self, **options: Any) -> None:
        """A family with ``options`` (see :attr:`option_choices`); None values are not given."""
        given = {k: v for k, v in options.items() if v is not None}
        for key, value in given.items():
            if key not in self.option_choices:
                raise UsageError(f"--{key} does not apply to {self.name}.")
            choices = self.option_choices[key]
            if choices is not None and value not in choices:
                raise UsageError(f"unknown --{key} '{value}' for {self.name}.", f"Choose one of: {', '.join(choices)}.")
        #: The options in effect, defaults included.
        self.options: dict[str, Any] = {**self.option_defaults, **given}

    def options_given(self) -> dict[str, Any]:
        """The options that differ from the defaults (recorded in results and model files)."""
        return {k: v for k, v in self.options.items() if self.option_defaults.get(k) != v}

    # -- labels ---------------------------------------------------------------------------
    def encode(
        self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None, event: np.ndarray | None = None
    ) -> Target:
        """The readers' entry: :meth:`encode_target`, with the event indicator of censored rows
        (``--event``) for a family whose rows may be censored."""
        if event is None:
            return self.encode_target(values, column, rows)
        if not self.censored:
            raise UsageError(f"--event does not apply to {self.name}: its rows are never censored.")
        return self.encode_target(values, column, rows, event=event)

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        """Encode raw target values (no missing values) for this family, or raise FamilyError
        naming the first bad value and its data row (``rows``: the 1-based data-row number of each
        value; default ``1..n``)."""
        raise NotImplementedError

    def check_y(self, y: np.ndarray) -> None:
        """Raise :class:`FamilyError` when ``y`` is not in the encoded domain of the family."""
        raise NotImplementedError

    # -- layout ---------------------------------------------------------------------------
    def n_coef_rows(self, n_classes: int | None = None) -> int:
        """Rows of coefficients (one coefficient per design column each)."""
        return 1

    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return self.n_coef_rows(n_classes) * n_features + len(self.ancillary)

    def coef_labels(self, feature_names: list[str], levels: tuple | None = None) -> list[tuple[str, str | None]]:
        """A ``(name, class)`` label per coefficient; class is None if unused."""
        return [(name, None) for name in feature_names]

    def param_names(
        self, feature_names: list[str], levels: tuple | None = None, *, optimiser: bool = False
    ) -> list[tuple[str, str | None]]:
        """A ``(name, class)`` label per parameter, in parameter order; class is None if unused.
        ``optimiser``: the names on the optimiser's scale (``log_sigma`` for ``sigma``)."""
        prefix = "log_" if optimiser else ""
        return self.coef_labels(list(feature_names), levels) + [(prefix + a, None) for a in self.ancillary]

    def log_scale(self, n_params: int) -> np.ndarray:
        """Which reported parameters are positive and get their Wald intervals on the log scale."""
        mask = np.zeros(n_params, dtype=bool)
        if self.ancillary:
            mask[n_params - len(self.ancillary):] = True
        return mask

    def design_scale(self, scale: np.ndarray, n_classes: int | None = None) -> np.ndarray:
        """The factor of each parameter when design column j is divided by ``scale[j]``: the
        coefficients of column j are multiplied by it, the ancillary parameters unchanged."""
        return np.concatenate([np.tile(scale, self.n_coef_rows(n_classes)), np.ones(len(self.ancillary))])

    def start_params(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        intercept: bool = False,
        n_classes: int | None = None,
        offset: np.ndarray | None = None,
    ) -> np.ndarray:
        """A good starting point: the intercept-only fit (least squares for gaussian)."""
        raise NotImplementedError

    def null_columns(self, intercept: bool) -> int | None:
        """Columns of ones in the intercept-only (null) model's design: 1 with an intercept, None
        (no null model) without; a family whose other parameters play the intercept's part
        (ordinal cutpoints) has a null model of 0 columns."""
        return 1 if intercept else None

    def count_rows(self, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The weighted counts named by :attr:`count_names` over these rows (a sum over blocks)."""
        return np.zeros(0)

    def curvature_bound(self) -> float | None:
        """An upper bound, over every row and every parameter vector, of the second derivative of a
        row's NLL (per unit of weight) with respect to its first linear predictor, whose
        coefficients are the first ``n_features`` parameters; None (the default) when there is
        none. With one, the leading block of a subsample's Hessian is at most the bound times the
        subsample's weighted Gram matrix, so it proves the design's full rank as that Gram matrix
        would (``mlefit.checks.hessian_shows_full_rank``), for no product of its own."""
        return None

    def check_counts(self, counts: dict[str, float]) -> None:
        """Raise a DataError when the counts of :meth:`count_rows` over all the rows leave the model
        without a maximum-likelihood estimate (survival: no observed event); by default, nothing."""

    def censor(self, y: np.ndarray, limits: np.ndarray) -> np.ndarray:
        """Encoded targets of times ``y`` censored at ``limits`` (families with :attr:`censored`)."""
        raise NotImplementedError

    def split_target(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The values to write for an encoded target and, for censored families, the event
        indicator (1 observed, 0 censored); None for the others."""
        return y, None

    def start_from_null(self, null_params: np.ndarray, n_features: int, n_classes: int | None = None) -> np.ndarray:
        """The full model's start from the intercept-only fit's parameters: each coefficient row
        starts at its intercept (design column 0) and zeros, the ancillary parameters as they are."""
        n_rows = self.n_coef_rows(n_classes)
        k = len(self.ancillary)
        coef = np.zeros((n_rows, n_features))
        coef[:, 0] = null_params[: len(null_params) - k]
        return np.concatenate([coef.ravel(), null_params[len(null_params) - k:]])

    def check_start(self, params: np.ndarray, feature_names: tuple[str, ...], objective: Any, sample: Any) -> None:
        """Before the optimiser: refuse a fit that cannot start, with one sentence naming the
        culprit (a UsageError or DataError). ``params``: the start (optimiser scale);
        ``feature_names``: the design's columns as read; ``objective``: the NLL over every row
        (``objective.value(params)`` costs one pass); ``sample()``: some rows in memory
        (``MemoryRows``). The default accepts every start."""

    def result_fields(self) -> dict[str, Any]:
        """Fields of the :class:`~mlefit.results.FitResult` particular to the family (a text model's
        text, its fixed parameters, its compilation time), and any of the fields that describe the
        design (``feature_names``, ``intercept``, ``design``) it describes otherwise; none by
        default."""
        return {}

    def start_from_sums(self, map_sum, n_features: int, n_classes: int | None = None, *, intercept: bool = False):
        """A start (or the MLE) from sums over all rows, for fits whose rows are not in memory:
        ``map_sum(fn)`` adds ``fn(X, y, weights, offset)`` over every block of rows. None (the
        default): start from the intercept-only fit. gaussian: least squares from the normal
        equations."""
        return None

    def closed_form(self, X, y, weights=None, *, gram=None, X_lo=None, offset=None) -> ClosedForm | None:
        """The MLE and its covariance in closed form, or None (the default) when an optimiser is
        needed. ``X``: the design, or an operator for its products with vectors where its column
        of ones is not stored (``np.asarray(X)`` forms the matrix; see
        ``mlefit.engines.memory.MemoryRows.design``). ``gram``, when given, is ``X' diag(weights) X`` already formed (by the rank check).
        ``X_lo``, when given, is a low-order part of the design (``X + X_lo`` exact, see
        ``Dataset.X_lo``); a family may use it or ignore it (only gaussian uses it)."""
        return None

    # -- the block function ----------------------------------------------------------------
    def evaluate(
        self,
        params: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None = None,
        order: int = 2,
        precise: bool = False,
        offset: np.ndarray | None = None,
    ) -> BlockSums:
        """NLL summed over the rows of this block and, for ``order`` >= 1 and 2, its gradient
        and Hessian with respect to ``params``.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
        X : ndarray of shape (n_obs, n_features)
        y : ndarray of shape (n_obs,)
            Encoded as by :meth:`encode_target`.
        weights : ndarray of shape (n_obs,), optional
            Frequency weights; a row of weight 2 counts as two identical rows.
        order : {0, 1, 2}
            Highest derivative to compute.
        precise : bool
            Compute the linear predictor and the gradient's products with the design in extended
            precision (``mlefit.linalg.dot`` / ``tdot``), so that the gradient is accurate to
            working precision even where its terms cancel; slower, used to refine Newton's method
            on ill-conditioned designs.
        offset : ndarray of shape (n_obs,), optional
            Added to the linear predictor.
        """
        raise NotImplementedError

    def hess_root(self, params, X, y, weights=None, offset=None) -> np.ndarray | None:
        """A matrix ``Z`` of shape (m, n_params) with ``Z.T @ Z`` equal to the Hessian of the NLL
        at ``params`` (the weighted design of the IRLS form), or None when the Hessian is not a
        Gram matrix of that kind (the default). A family that implements it must also implement
        ``evaluate(..., precise=True)``: Newton then refines ill-conditioned fits with both."""
        return None

    def covariance(self, params, X, y, weights=None, offset=None) -> np.ndarray | None:
        """The inverse Hessian at ``params`` when the family computes it better than a
        factorisation of the Hessian can, else None (the default: ``fit`` inverts the Hessian)."""
        return None

    def nll(self, params, X, y, weights=None, offset=None) -> float:
        """Negative log-likelihood summed over the rows."""
        return self.evaluate(params, X, y, weights, order=0, offset=offset).nll

    def grad(self, params, X, y, weights=None, offset=None) -> np.ndarray:
        """Analytic gradient of :meth:`nll`, shape (n_params,)."""
        return self.evaluate(params, X, y, weights, order=1, offset=offset).grad

    def hess(self, params, X, y, weights=None, offset=None) -> np.ndarray:
        """Analytic Hessian of :meth:`nll`, shape (n_params, n_params)."""
        return self.evaluate(params, X, y, weights, order=2, offset=offset).hess

    def scores(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, offset=None) -> np.ndarray:
        """Per-row gradients of the NLL, shape (n_obs, n_params): row i is ``d nll_i / d params``."""
        raise NotImplementedError

    def score_outer(self, params, X, y, weights=None, offset=None) -> np.ndarray:
        """``sum_i weight_i s_i s_i'`` over the rows of this block (``s_i`` the row's score), shape
        (n_params, n_params): the "meat" of the sandwich covariance. A sum over rows like
        :meth:`evaluate`, so it can be accumulated block by block. A row of frequency weight 2 counts
        as two identical rows."""
        S = self.scores(params, X, y, offset=offset)
        return gram(S, np.ones(S.shape[0]) if weights is None else weights)

    def l2_matrix(self, n_features: int, n_classes: int | None = None, *, intercept: bool = False) -> np.ndarray:
        """The matrix ``P`` of the L2 penalty ``(lambda / 2) params' P params``, shape (n_params, n_params).

        The default penalises every coefficient except the intercept (column 0 when ``intercept``)
        and no ancillary parameter.
        """
        mask = np.ones(n_features)
        if intercept and n_features:
            mask[0] = 0.0
        mask = np.concatenate([np.tile(mask, self.n_coef_rows(n_classes)), np.zeros(len(self.ancillary))])
        return np.diag(mask)

    # -- reporting ----------------------------------------------------------------------------
    def natural(
        self, params: np.ndarray, cov: np.ndarray, n_classes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map optimiser parameters and their covariance to the reported scale: the ancillary
        parameters from their logarithm to themselves, their rows and columns of ``cov`` scaled
        by the delta method. ``n_classes``: K of a family with classes (where the layout depends
        on it: ordinal cutpoints)."""
        params = np.asarray(params, dtype=float)
        k = len(self.ancillary)
        if not k:
            return params, cov
        jac = np.ones(len(params))
        jac[-k:] = np.exp(params[-k:])
        return np.concatenate([params[:-k], jac[-k:]]), cov * np.outer(jac, jac)

    def from_natural(self, estimates: np.ndarray, n_classes: int | None = None) -> np.ndarray:
        """Inverse of :meth:`natural` for the estimates."""
        estimates = np.asarray(estimates, dtype=float)
        k = len(self.ancillary)
        if not k:
            return estimates
        for name, value in zip(self.ancillary, estimates[-k:]):
            if not value > 0:
                raise FamilyError(f"{name} must be positive; got {value:g}.")
        return np.concatenate([estimates[:-k], np.log(estimates[-k:])])

    def ancillary_values(self, estimates: np.ndarray) -> dict[str, float]:
        """``{name: value}`` of the ancillary parameters among reported-scale ``estimates``."""
        k = len(self.ancillary)
        return {name: float(v) for name, v in zip(self.ancillary, np.asarray(estimates)[len(estimates) - k:])}

    def boundary(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Whether ``params`` (optimiser scale) has reached the boundary of the parameter space (an
        ancillary parameter going to its limit, where the model reduces to a simpler one): None (the
        default) or ``(mask, held)``, the parameters at the boundary and ``params`` with those set to
        a value that stands for the limit. The fit then optimises the others with them held there;
        they get no standard error, and :meth:`boundary_note` says so in the result's message."""
        return None

    def boundary_note(self, estimates: np.ndarray) -> str | None:
        """A sentence for the result's message when the estimate lies on the boundary of the
        parameter space (an ancillary parameter at its limit, where the model reduces to a simpler
        one); None (the default) otherwise."""
        return None

    def summary_statistics(
        self, estimates: np.ndarray, n_weight: float, loglik: float, null: "dict[str, Any] | None"
    ) -> dict[str, Any]:
        """Fit statistics particular to the family (keys of ``FitResult``): by default the residual
        degrees of freedom and, with a null model, McFadden's pseudo R^2 ``1 - loglik / null_loglik``.
        ``null``: ``{"loglik", "estimates"}`` of the intercept-only fit, or None."""
        out: dict[str, Any] = {"df_resid": n_weight - len(estimates)}
        if null is not None:
            out["pseudo_r2"] = 1.0 - loglik / null["loglik"] if null["loglik"] != 0 else math.nan
        return out

    def simulation_classes(self, n_rows: int, n_classes: int | None) -> int | None:
        """The number of classes of a simulation with ``n_rows`` rows of true coefficients and
        ``--classes n_classes`` (None: not given), or a UsageError; None for families without
        classes. The default: one row of coefficients, no classes."""
        if n_classes is not None:
            raise UsageError(f"--classes does not apply to {self.name}, whose target has no classes.")
        if n_rows != 1:
            raise UsageError(
                f"{self.name} takes one row of coefficients, one per feature; --coef has {n_rows}.",
                "Separate values with ',' only.",
            )
        return None

    def simulation_cutpoints(self, cutpoints: "Sequence[float] | None", n_classes: int | None) -> np.ndarray | None:
        """The true cutpoints of a simulation (``--cutpoints``, which come after the coefficients
        among the parameters) given ``--classes n_classes``, or None for a family without cutpoints
        (the default; a UsageError when some were given)."""
        if cutpoints is not None:
            raise UsageError(f"--cutpoints does not apply to {self.name}, which has no cutpoints.")
        return None

    def simulation_levels(self, n_classes: int | None) -> tuple | None:
        """The labels of a simulated target (None without classes)."""
        return None

    def simulate(
        self, params: np.ndarray, X: np.ndarray, rng: np.random.Generator, offset: np.ndarray | None = None
    ) -> np.ndarray:
        """Draw an encoded ``y`` of shape (n_obs,) given ``X`` at (optimiser-scale) ``params``."""
        raise NotImplementedError

    def predict(self, estimates: np.ndarray, X: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """The model's prediction for each row of ``X`` at reported-scale ``estimates``
        (as in ``FitResult.params``): the mean of shape (n_obs,), ``P(y = 1)`` (n_obs,) for a
        two-class family, the class probabilities (n_obs, n_classes) for more classes."""
        raise NotImplementedError

    def prediction_columns(
        self, estimates: np.ndarray, X: np.ndarray, *, levels: tuple | None, target: str,
        offset: np.ndarray | None = None, **options: Any,
    ) -> dict[str, np.ndarray]:
        """The columns ``mlefit predict`` adds, in order: ``predicted_<target>`` (the mean) for a
        family without classes; ``prob_<label of 1>`` for two classes; ``prob_<label>`` per class
        and ``predicted_<target>`` (the most likely class, ties to the first) for more."""
        values = self.predict(estimates, X, offset=offset)
        if values.ndim == 1:
            name = f"prob_{label_text(levels[1])}" if self.classes else f"predicted_{target}"
            return {name: values}
        columns = {f"prob_{label_text(level)}": values[:, j] for j, level in enumerate(levels)}
        columns[f"predicted_{target}"] = np.asarray(levels, dtype=object)[np.argmax(values, axis=1)]
        return columns

    def title(self) -> str:
        """What the family fits with its options, for the first line of a fit's report (default: the
        description up to its colon)."""
        return self.description.split(":")[0]

    def describe(self, full: bool = False) -> dict[str, Any]:
        """The family's entry in ``mlefit families``; ``full`` adds the target's domain, the
        Hessian and the docstring."""
        out = {
            "name": self.name,
            "description": self.description,
            "distribution": self.distribution,
            "link": self.link,
            "parameters": self.parameters,
            "nll": self.nll_formula,
            "loss": self.loss_statement,
            "gradient": self.grad_formula,
        }
        if full:
            out["y"] = self.y_domain
            out["hessian"] = self.hess_formula
            out["convex"] = self.convex
            out["doc"] = inspect.cleandoc(type(self).__doc__ or "")
        return out


# -- helpers shared by the families -----------------------------------------------------------


def weighted_sum(values: np.ndarray, weights: np.ndarray | None) -> float:
    """``sum(values)`` or ``weights @ values``, as a Python float."""
    return float(values.sum() if weights is None else np.dot(weights, values))


def total_weight(n_obs: int, weights: np.ndarray | None) -> float:
    return float(n_obs) if weights is None else float(weights.sum())


#: :func:`gram` of a design of at most this many columns takes general products of row chunks of
#: about GEMM_GRAM_BYTES, symmetrised ...
GEMM_GRAM_FEATURES = 32
GEMM_GRAM_BYTES = 1 << 18


def gram(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``X.T @ diag(h) @ X`` for non-negative ``h``, exactly symmetric.

    A design of more than :data:`GEMM_GRAM_FEATURES` columns: the rows scaled by ``sqrt(h)`` and
    ``A.T @ A``, which numpy hands to BLAS's symmetric rank-k update. A narrower one:
    ``(X * h).T @ X`` (a general product, twice the arithmetic) over chunks of rows of about
    :data:`GEMM_GRAM_BYTES` (both operands in the core's cache), added up and symmetrised, which
    OpenBLAS computes 1.6-2x faster for 6 to 31 columns, where its rank-k update is slow (one
    thread, 21 columns: 0.028 s against 0.049 s a million rows; from about 36 columns on the
    rank-k update is faster).
    """
    n, p = X.shape
    if p > GEMM_GRAM_FEATURES:
        A = X * np.sqrt(h)[:, None]
        return np.dot(A.T, A)
    rows = max(1, GEMM_GRAM_BYTES // (8 * max(p, 1)))
    G = None
    for start in range(0, n, rows):
        part = X[start:start + rows]
        M = np.dot((part * h[start:start + rows, None]).T, part)
        G = M if G is None else np.add(G, M, out=G)
    if G is None:
        return np.zeros((p, p))
    G += G.T
    G *= 0.5
    return G


def weighted_gram(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``X.T @ diag(h) @ X`` for ``h`` of any sign (one general BLAS product)."""
    return np.dot((X * h[:, None]).T, X)


def sorted_levels(values: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct labels in sorted order and each row's code, or FamilyError if unsortable."""
    try:
        levels, codes = np.unique(values, return_inverse=True)
    except TypeError:
        raise FamilyError(
            f"target column '{column}' mixes numbers and text, so its labels cannot be ordered.",
            "Make every label the same type.",
        ) from None
    return levels, codes.reshape(-1)


def label_text(level: Any) -> str:
    """A label as the user wrote it: 1 not 1.0 for whole floats, true/false for booleans."""
    if isinstance(level, (bool, np.bool_)):
        return "true" if level else "false"
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def python_scalar(value: Any) -> Any:
    """numpy scalars to plain Python values (for levels kept in results and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def data_row(rows: np.ndarray | None, i: int) -> int:
    """The 1-based data-row number of value ``i`` (``rows``: each value's row, default 1..n)."""
    return i + 1 if rows is None else int(rows[i])


def numeric_target(values: np.ndarray, column: str, rows: np.ndarray | None, needs: str) -> np.ndarray:
    """A target column's values as float64, or a FamilyError naming the first value that is not a
    number and its data row (``needs``: what the family needs, for the sentence)."""
    if values.dtype.kind == "b" or values.dtype.kind not in "iuf":
        first = next((i for i, v in enumerate(values) if not _is_number(v)), 0)
        raise FamilyError(
            f"target column '{column}' is not numeric: data row {data_row(rows, first)} has '{values[first]}'; "
            f"{needs}."
        )
    return values.astype(np.float64)


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
