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

In a fit, :class:`~mlefit.objective.DataObjective` calls ``evaluate`` on row blocks of about 1 MB of
a column-major (Fortran-order) ``X``, so a family's temporaries are block-sized and stay in cache;
``evaluate`` must give the same sums for any block and any memory layout of ``X``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import FamilyError


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

    Subclasses set the class attributes and implement :meth:`encode_target`,
    :meth:`n_params`, :meth:`param_names`, :meth:`start_params`, :meth:`evaluate` and
    :meth:`simulate`.
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

    # -- labels ---------------------------------------------------------------------------
    def encode_target(self, values: np.ndarray, column: str = "y") -> Target:
        """Encode raw target values (no missing values) for this family, or raise FamilyError."""
        raise NotImplementedError

    def check_y(self, y: np.ndarray) -> None:
        """Raise :class:`FamilyError` when ``y`` is not in the encoded domain of the family."""
        raise NotImplementedError

    # -- layout ---------------------------------------------------------------------------
    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        raise NotImplementedError

    def param_names(
        self, feature_names: list[str], levels: tuple | None = None
    ) -> list[tuple[str, str | None]]:
        """A ``(name, class)`` label per parameter, in parameter order; class is None if unused."""
        raise NotImplementedError

    def start_params(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        intercept: bool = False,
        n_classes: int | None = None,
    ) -> np.ndarray:
        """A good starting point: the intercept-only fit (least squares for gaussian)."""
        raise NotImplementedError

    # -- the block function ----------------------------------------------------------------
    def evaluate(
        self,
        params: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None = None,
        order: int = 2,
        precise: bool = False,
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
        """
        raise NotImplementedError

    def hess_root(self, params, X, y, weights=None) -> np.ndarray | None:
        """A matrix ``Z`` of shape (m, n_params) with ``Z.T @ Z`` equal to the Hessian of the NLL
        at ``params`` (the weighted design of the IRLS form), or None when the Hessian is not a
        Gram matrix of that kind (the default). A family that implements it must also implement
        ``evaluate(..., precise=True)``: Newton then refines ill-conditioned fits with both."""
        return None

    def closed_form(self, X, y, weights=None, *, gram=None, X_lo=None) -> ClosedForm | None:
        """The MLE and its covariance in closed form, or None (the default) when an optimiser is
        needed. ``gram``, when given, is ``X' diag(weights) X`` already formed (by the rank check).
        ``X_lo``, when given, is a low-order part of the design (``X + X_lo`` exact, see
        ``Dataset.X_lo``); a family may use it or ignore it (only gaussian uses it)."""
        return None

    def covariance(self, params, X, y, weights=None) -> np.ndarray | None:
        """The inverse Hessian at ``params`` when the family computes it better than a
        factorisation of the Hessian can, else None (the default: ``fit`` inverts the Hessian)."""
        return None

    def nll(self, params, X, y, weights=None) -> float:
        """Negative log-likelihood summed over the rows."""
        return self.evaluate(params, X, y, weights, order=0).nll

    def grad(self, params, X, y, weights=None) -> np.ndarray:
        """Analytic gradient of :meth:`nll`, shape (n_params,)."""
        return self.evaluate(params, X, y, weights, order=1).grad

    def hess(self, params, X, y, weights=None) -> np.ndarray:
        """Analytic Hessian of :meth:`nll`, shape (n_params, n_params)."""
        return self.evaluate(params, X, y, weights, order=2).hess

    def scores(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-row gradients of the NLL, shape (n_obs, n_params): row i is ``d nll_i / d params``."""
        raise NotImplementedError

    def score_outer(self, params, X, y, weights=None) -> np.ndarray:
        """``sum_i weight_i s_i s_i'`` over the rows of this block (``s_i`` the row's score), shape
        (n_params, n_params): the "meat" of the sandwich covariance. A sum over rows like
        :meth:`evaluate`, so it can be accumulated block by block. A row of frequency weight 2 counts
        as two identical rows."""
        S = self.scores(params, X, y)
        return gram(S, np.ones(S.shape[0]) if weights is None else weights)

    def l2_matrix(self, n_features: int, n_classes: int | None = None, *, intercept: bool = False) -> np.ndarray:
        """The matrix ``P`` of the L2 penalty ``(lambda / 2) params' P params``, shape (n_params, n_params).

        The default penalises every coefficient except the intercept (column 0 when ``intercept``).
        """
        mask = np.ones(n_features)
        if intercept and n_features:
            mask[0] = 0.0
        return np.diag(mask)

    # -- reporting ----------------------------------------------------------------------------
    def natural(self, params: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map optimiser parameters and their covariance to the reported scale (identity here)."""
        return params, cov

    def from_natural(self, estimates: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`natural` for the estimates (identity here)."""
        return np.asarray(estimates, dtype=float)

    def simulate(self, params: np.ndarray, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw an encoded ``y`` of shape (n_obs,) given ``X`` at (optimiser-scale) ``params``."""
        raise NotImplementedError

    def predict(self, estimates: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The model's prediction for each row of ``X`` at reported-scale ``estimates``
        (as in ``FitResult.params``): ``P(y = 1)`` of shape (n_obs,) for bernoulli, the class
        probabilities of shape (n_obs, n_classes) for categorical, the mean (n_obs,) for gaussian."""
        raise NotImplementedError

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
    return float(values.sum() if weights is None else weights @ values)


def total_weight(n_obs: int, weights: np.ndarray | None) -> float:
    return float(n_obs) if weights is None else float(weights.sum())


def gram(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``X.T @ diag(h) @ X`` for non-negative ``h`` in one symmetric BLAS product.

    Scaling the rows by ``sqrt(h)`` and forming ``A.T @ A`` lets numpy call a symmetric rank-k
    update and keeps the result exactly symmetric.
    """
    A = X * np.sqrt(h)[:, None]
    return A.T @ A


def weighted_gram(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``X.T @ diag(h) @ X`` for ``h`` of any sign (one general BLAS product)."""
    return (X * h[:, None]).T @ X


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
