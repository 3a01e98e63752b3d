"""The compiled text model: NLL, exact derivatives, scores, means and draws, vectorised over rows.

A :class:`TextModel` is what :func:`mlefit.textmodel.compile_model` returns. Its data are a
float64 array ``D`` of shape (n_obs, len(data_columns)) whose columns are the model's
:attr:`~TextModel.data_columns` in that order (the target first, when there is one); its
parameters a float64 vector in the order of :attr:`~TextModel.param_names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from .. import numdiff
from . import expr as E
from .distributions import DISTRIBUTIONS, DOMAINS, Distribution, in_domain
from .grammar import ParsedModel
from .symbolic import INSTALL_HINT, Derivatives

#: Rows evaluated at a time: a block's per-row temporaries (64 KB each) stay in the processor's
#: cache and below glibc's 128 KB threshold for allocating with mmap, so they are not mapped and
#: unmapped (and page-faulted) at every operation.
BLOCK_ROWS = 8192


@dataclass(frozen=True)
class DerivativeCheck:
    """The derived gradient and Hessian against central finite differences at one point.

    The error of an entry is ``|analytic - numeric|`` divided by the larger of the two and of
    the scale ``sqrt(|H_ii H_jj|)`` (``sqrt|H_ii|`` for the gradient), the size an entry has
    where the NLL bends; each finite difference is taken at three step sizes and the one
    closest to the analytic value counts.

    Attributes
    ----------
    grad_error, hess_error : float
        The largest relative error over the gradient's and the Hessian's entries.
    grad, grad_numeric : ndarray of shape (n_params,)
    hess, hess_numeric : ndarray of shape (n_params, n_params)
    """

    grad_error: float
    hess_error: float
    grad: np.ndarray
    grad_numeric: np.ndarray
    hess: np.ndarray
    hess_numeric: np.ndarray

    @property
    def worst(self) -> float:
        return max(self.grad_error, self.hess_error)

    def passed(self, tol: float = 1e-5) -> bool:
        return bool(self.worst <= tol)


class TextModel:
    """A likelihood written as text, compiled: see :func:`mlefit.textmodel.compile_model`.

    Attributes
    ----------
    text : str
        The text as given.
    target : str or None
        The target column (None for an ``--nll`` text).
    distribution : str or None
        The distribution's name (None for an ``--nll`` text).
    data_columns : list of str
        The columns the model reads, the target first, then in order of first appearance; the
        columns of ``D``.
    covariate_columns : list of str
        ``data_columns`` without the target: the columns :meth:`mean` and :meth:`simulate`
        need.
    param_names : list of str
        The parameters in order of first appearance; the order of ``params``.
    symbolic : bool
        True when sympy derived exact derivatives; False when only the NLL is available
        (order 0: the caller differentiates numerically).
    compile_seconds : float
        Time spent parsing, deriving and compiling (0 when served from the cache).
    formula : str
        The per-row NLL written out (after the stable rewrites).
    """

    def __init__(
        self, parsed: ParsedModel, data_columns: list[str], param_names: list[str],
        nll: E.Expr, derivatives: Derivatives | None, compile_seconds: float,
    ) -> None:
        self.parsed = parsed
        self.text = parsed.text
        self.target = parsed.target
        self.distribution = parsed.distribution
        self.data_columns = list(data_columns)
        self.covariate_columns = [c for c in data_columns if c != parsed.target]
        self.param_names = list(param_names)
        self.n_params = len(param_names)
        self.nll_expr = nll
        self.formula = str(nll)
        self.symbolic = derivatives is not None
        self.compile_seconds = compile_seconds
        self._derivatives = derivatives

    def __repr__(self) -> str:
        return f"TextModel({self.text!r}, params={self.param_names}, symbolic={self.symbolic})"

    def cached_copy(self) -> "TextModel":
        """The same compiled model with ``compile_seconds`` 0 (a cache hit)."""
        return TextModel(self.parsed, self.data_columns, self.param_names, self.nll_expr, self._derivatives, 0.0)

    # -- inputs ---------------------------------------------------------------------------------
    def _params(self, params: Any) -> np.ndarray:
        p = np.asarray(params, dtype=float).reshape(-1)
        if p.size != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters ({', '.join(self.param_names)}); got {p.size}")
        return p

    def _data(self, D: Any, allow_covariates: bool = False) -> np.ndarray:
        D = np.asarray(D, dtype=float)
        if D.ndim == 1 and len(self.data_columns) <= 1:
            D = D[:, None]
        widths = {len(self.data_columns)} | ({len(self.covariate_columns)} if allow_covariates else set())
        if D.ndim != 2 or D.shape[1] not in widths:
            raise ValueError(
                f"expected D of shape (n_obs, {len(self.data_columns)}) with columns {self.data_columns}; got {D.shape}"
            )
        return D

    def _env(self, params: np.ndarray, D: np.ndarray) -> dict[str, Any]:
        columns = self.data_columns if D.shape[1] == len(self.data_columns) else self.covariate_columns
        env: dict[str, Any] = {c: D[:, i] for i, c in enumerate(columns)}
        env.update(zip(self.param_names, (float(v) for v in params)))
        return env

    # -- the NLL and its derivatives --------------------------------------------------------------
    def evaluate(
        self, params: Any, D: Any, weights: Any = None, order: int = 2
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """The NLL summed over the rows and, for ``order`` 1 and 2, its gradient and Hessian.

        Parameters
        ----------
        params : array_like of shape (n_params,)
        D : array_like of shape (n_obs, len(data_columns))
        weights : array_like of shape (n_obs,), optional
            Frequency weights: a row of weight 3 counts as three rows, a row of weight 0 not at
            all (whatever its NLL).
        order : {0, 1, 2}

        Returns
        -------
        nll : float
            ``sum_i w_i l_i``; ``inf`` when any row's NLL is not finite (see :meth:`why_not_finite`).
        grad : ndarray of shape (n_params,) or None
        hess : ndarray of shape (n_params, n_params) or None
            Symmetric: the weighted sum of the per-row second derivatives.

        Raises
        ------
        UsageError
            ``order`` > 0 without sympy (exact derivatives need ``mlefit[model]``).
        """
        p, D = self._params(params), self._data(D)
        w = None if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        if w is not None and not (w > 0).all():
            # A row of weight 0 does not count, even where its NLL is not finite (0 * inf is NaN).
            keep = w > 0
            D, w = D[keep], w[keep]
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2; got {order}")
        if order > 0 and self._derivatives is None:
            raise UsageError(
                f"exact derivatives of a text model need sympy, which is not installed; {INSTALL_HINT}."
            )
        nll, grad, hess = 0.0, None, None
        with np.errstate(all="ignore"):  # a non-finite row is reported as nll = inf
            for start in range(0, max(D.shape[0], 1), BLOCK_ROWS):
                rows = slice(start, start + BLOCK_ROWS)
                wb = None if w is None else w[rows]
                if self._derivatives is None:
                    f = self._rows_numpy(p, D[rows])
                    part = (float(f.sum() if wb is None else wb @ f), None, None)
                else:
                    part = self._derivatives.sums(p, D[rows], wb, order)
                nll += part[0]
                grad = part[1] if grad is None else grad + part[1]
                hess = part[2] if hess is None else hess + part[2]
        if not np.isfinite(nll):
            nll = np.inf
        if hess is not None:
            hess = (hess + hess.T) / 2  # exact already; removes rounding asymmetry of the blocks
        return nll, grad, hess

    def _rows_numpy(self, p: np.ndarray, D: np.ndarray) -> np.ndarray:
        f = E.evaluate(self.nll_expr, self._env(p, D))
        return np.broadcast_to(np.asarray(f, dtype=float), (D.shape[0],))

    def nll_rows(self, params: Any, D: Any) -> np.ndarray:
        """The per-row NLL ``l_i``, shape (n_obs,)."""
        p, D = self._params(params), self._data(D)
        with np.errstate(all="ignore"):
            if self._derivatives is None:
                return np.array(self._rows_numpy(p, D))
            return np.concatenate([
                self._derivatives.rows(p, D[s:s + BLOCK_ROWS]) for s in range(0, max(D.shape[0], 1), BLOCK_ROWS)
            ])[: D.shape[0]]

    def scores(self, params: Any, D: Any) -> np.ndarray:
        """Per-row gradients of the NLL, shape (n_obs, n_params) (for the sandwich covariance)."""
        p, D = self._params(params), self._data(D)
        if self._derivatives is None:
            raise UsageError(f"the scores of a text model need sympy, which is not installed; {INSTALL_HINT}.")
        with np.errstate(all="ignore"):
            return np.concatenate([
                self._derivatives.scores(p, D[s:s + BLOCK_ROWS]) for s in range(0, max(D.shape[0], 1), BLOCK_ROWS)
            ])[: D.shape[0]]

    # -- the distribution -------------------------------------------------------------------------
    def _dist(self, what: str) -> Distribution:
        if self.distribution is None:
            raise UsageError(
                f"an --nll text has no distribution to {what}; write the model as 'y ~ distribution(...)' with --model."
            )
        return DISTRIBUTIONS[self.distribution]

    def arguments(self, params: Any, D: Any) -> dict[str, np.ndarray]:
        """The distribution's arguments per row, each of shape (n_obs,).

        ``D`` may hold all of :attr:`data_columns` or only the :attr:`covariate_columns`.
        """
        self._dist("evaluate")
        p, D = self._params(params), self._data(D, allow_covariates=True)
        env = self._env(p, D)
        with np.errstate(all="ignore"):
            return {
                name: np.array(np.broadcast_to(np.asarray(E.evaluate(e, env), dtype=float), (D.shape[0],)))
                for name, e in self.parsed.args
            }

    def _checked_arguments(self, params: Any, D: Any) -> dict[str, np.ndarray]:
        dist = self._dist("draw from")
        args = self.arguments(params, D)
        for (name, values), domain in zip(args.items(), dist.arg_domains):
            bad = np.flatnonzero(~in_domain(values, domain))
            if bad.size:
                raise UsageError(
                    f"the argument '{name}' of {dist.name} must be {DOMAINS[domain]}, but at these "
                    f"parameters it is {values[bad[0]]:g} in data row {bad[0] + 1}."
                )
        return args

    def mean(self, params: Any, D: Any) -> np.ndarray:
        """The mean of the target per row (for ``predict``), shape (n_obs,).

        ``D`` may hold all of :attr:`data_columns` or only the :attr:`covariate_columns`.
        student_t's mean is NaN where ``df <= 1`` (it does not exist there).
        """
        dist = self._dist("predict from")
        with np.errstate(all="ignore"):
            return np.asarray(dist.mean(**self.arguments(params, D)), dtype=float)

    def simulate(self, params: Any, D: Any, rng: np.random.Generator) -> np.ndarray:
        """One draw of the target per row given the other columns, shape (n_obs,).

        ``D`` may hold all of :attr:`data_columns` (the target's column is ignored) or only the
        :attr:`covariate_columns`.

        Raises
        ------
        UsageError
            An argument is outside its domain in some row (naming the argument and the row).
        """
        dist = self._dist("draw from")
        return np.asarray(dist.draw(rng, **self._checked_arguments(params, D)), dtype=float)

    # -- checks -----------------------------------------------------------------------------------
    def check_data(self, D: Any) -> None:
        """Refuse data the model cannot use: non-finite values, or a target outside the
        distribution's support (binomial: above ``size``), naming the column and the first row
        (rows counted from 1 in the order of ``D``).

        Raises
        ------
        DataError
        """
        D = self._data(D)
        finite = np.isfinite(D)
        if not finite.all():
            j = int(np.flatnonzero(~finite.all(axis=0))[0])
            i = int(np.flatnonzero(~finite[:, j])[0])
            raise DataError(f"column '{self.data_columns[j]}' has the value {D[i, j]} in data row {i + 1}; the model needs finite numbers.")
        if self.distribution is None:
            return
        dist = DISTRIBUTIONS[self.distribution]
        y = D[:, 0]
        bad = np.flatnonzero(~in_domain(y, dist.support))
        if bad.size:
            raise DataError(
                f"{dist.name} needs a target '{self.target}' that is {DOMAINS[dist.support]}; "
                f"data row {bad[0] + 1} has {y[bad[0]]:g}."
            )
        if dist.name == "binomial":
            size = dict(self.parsed.args)["size"]
            if set(E.names_in(size)) <= set(self.data_columns):
                n = np.broadcast_to(E.evaluate(size, self._env(np.zeros(self.n_params), D)), y.shape)
                bad = np.flatnonzero(~(y <= n))
                if bad.size:
                    raise DataError(
                        f"binomial needs a target '{self.target}' of at most size; data row "
                        f"{bad[0] + 1} has {y[bad[0]]:g} out of {n[bad[0]]:g}."
                    )

    def why_not_finite(self, params: Any, D: Any) -> str | None:
        """None when every row's NLL is finite at ``params``; else one sentence naming the first
        row where it is not and, for a model, the argument outside its domain there."""
        f = self.nll_rows(params, D)
        bad = np.flatnonzero(~np.isfinite(f))
        if not bad.size:
            return None
        i = int(bad[0])
        reason = ""
        if self.distribution is not None:
            dist = DISTRIBUTIONS[self.distribution]
            args = self.arguments(params, np.asarray(D, dtype=float)[i:i + 1])
            for (name, values), domain in zip(args.items(), dist.arg_domains):
                if not in_domain(values, domain)[0]:
                    reason = f" ({dist.name}'s argument '{name}' is {values[0]:g} there; it must be {DOMAINS[domain]})"
                    break
        count = f" and {bad.size - 1} other row(s)" if bad.size > 1 else ""
        return f"the NLL is {f[i]:g} in data row {i + 1}{count}{reason}."

    def check_derivatives(
        self, params: Any, D: Any, weights: Any = None, max_rows: int | None = 20_000
    ) -> DerivativeCheck:
        """Compare the derived gradient and Hessian with central finite differences at ``params``
        (gradient: differences of the NLL; Hessian: differences of the derived gradient).

        A wrong derivation is wrong on any rows, so at most ``max_rows`` rows, evenly spaced,
        are used (None: all): the check costs about ``12 n_params`` evaluations. Relative errors
        of a correct derivation are about 1e-9 or less; above 1e-6 means a bug.

        Raises
        ------
        UsageError
            Without sympy (there are no derived derivatives to check).
        """
        p, D = self._params(params), self._data(D)
        if max_rows is not None and D.shape[0] > max_rows:
            rows = np.linspace(0, D.shape[0] - 1, max_rows).round().astype(np.intp)
            D = D[rows]
            weights = None if weights is None else np.asarray(weights, dtype=float).reshape(-1)[rows]
        _, g, H = self.evaluate(p, D, weights, order=2)

        def value(x):
            return self.evaluate(x, D, weights, order=0)[0]

        def gradient(x):
            return self.evaluate(x, D, weights, order=1)[1]

        size = np.maximum(1.0, np.abs(p))
        factors = (0.1, 1.0, 10.0)
        gn = _closest(g, [numdiff.gradient(value, p, size * m) for m in factors])
        Hn = _closest(H, [numdiff.jacobian(gradient, p, size * m) for m in factors])
        Hn = (Hn + Hn.T) / 2
        scale = np.sqrt(np.maximum(np.abs(np.diag(H)), np.abs(np.diag(Hn))))
        g_err = _relative(g, gn, scale)
        H_err = _relative(H, Hn, np.outer(scale, scale))
        return DerivativeCheck(g_err, H_err, g, gn, H, Hn)


def _closest(analytic: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """Entry by entry, the candidate closest to ``analytic`` (a NaN candidate never wins)."""
    stack = np.stack(candidates)
    distance = np.abs(stack - analytic)
    distance[np.isnan(distance)] = np.inf
    return np.take_along_axis(stack, np.argmin(distance, axis=0)[None], axis=0)[0]


def _relative(a: np.ndarray, n: np.ndarray, scale: np.ndarray) -> float:
    """The largest ``|a - n| / max(|a|, |n|, scale)`` (0/0 counts as 0, NaN as inf)."""
    num = np.abs(a - n)
    den = np.maximum(np.maximum(np.abs(a), np.abs(n)), scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(num == 0, 0.0, num / den)
    ratio[np.isnan(ratio)] = np.inf
    return float(ratio.max(initial=0.0))
