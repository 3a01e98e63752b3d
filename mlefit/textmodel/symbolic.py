"""Exact derivatives of a text model's NLL with sympy, compiled to vectorised numpy.

The per-row NLL ``l(theta; row)`` is turned into a sympy expression by constructing sympy objects
from the parsed tree (never by parsing a string), with parameters and columns as real symbols of
our own naming (``p0, p1, ...`` and ``d0, d1, ...``), so no text of the user's reaches the code
that sympy generates.

**Linear predictors.** Every sum that is linear in two or more parameters with coefficients that
depend on the data only (``a + b*x + c*z``) is replaced by a new variable ``u = A theta`` whose
rows of ``A`` are those coefficients; each parameter that remains elsewhere is a variable of its
own. The NLL is then ``l = f(v)`` with ``v = (u_1, ..., theta_j, ...)`` linear in ``theta``, so

.. math::

    \\nabla l = \\sum_k A_k^T f_k,\\qquad
    \\nabla^2 l = \\sum_{k,l} A_k^T \\operatorname{diag}(f_{kl}) A_l

summed over the rows (with the frequency weights), where ``f_k`` and ``f_kl`` are the per-row
first and second derivatives of ``f`` with respect to the variables, and ``A_k`` is a column of
ones for a parameter standing alone. The sums over rows are matrix products (BLAS), as a
hand-written GLM would compute them, and sympy differentiates with respect to a few variables
rather than every coefficient.

**Compilation.** ``f`` and its derivatives are simplified together by common-subexpression
elimination (``sympy.cse``) and compiled with ``sympy.lambdify`` into one numpy function per
order (value; value and gradient; value, gradient and Hessian) using ``numpy`` and
``scipy.special``: ``loggamma`` as ``gammaln``, ``polygamma(0, x)`` as ``psi``, ``sigmoid`` as
``expit``, small integer powers as products, and ``softplus``, the sigmoid's derivative
``sigmoid(x) sigmoid(-x)`` and ``polygamma(1, x)`` with the kernels of
:mod:`mlefit.textmodel.kernels`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UsageError
from . import expr as E
from . import kernels

#: The install hint given when sympy is missing.
INSTALL_HINT = "install it with: pip install 'mlefit[model]'"


def have_sympy() -> bool:
    """Whether sympy can be imported (it is the optional extra ``mlefit[model]``)."""
    try:
        import sympy  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _sympy_functions() -> dict[str, Any]:
    """The grammar's functions as sympy functions; softplus, sigmoid and logit defined here."""
    import sympy
    from sympy.codegen.cfunctions import expm1, log1p

    class softplus(sympy.Function):  # noqa: N801 - printed by this name
        """``log(1 + exp(x))``."""

        @classmethod
        def eval(cls, x):
            if x.is_zero:
                return sympy.log(2)
            return None

        def fdiff(self, argindex=1):
            return sigmoid(self.args[0])

        def _eval_is_extended_real(self):
            return self.args[0].is_extended_real

        def _eval_is_positive(self):
            return self.args[0].is_extended_real

    class sigmoid(sympy.Function):  # noqa: N801
        """``1 / (1 + exp(-x))``."""

        @classmethod
        def eval(cls, x):
            if x.is_zero:
                return sympy.Rational(1, 2)
            if isinstance(x, logit):
                return x.args[0]
            return None

        def fdiff(self, argindex=1):
            return dsigmoid(self.args[0])

        def _eval_is_extended_real(self):
            return self.args[0].is_extended_real

        def _eval_is_positive(self):
            return self.args[0].is_extended_real

    class dsigmoid(sympy.Function):  # noqa: N801
        """``sigmoid(x) sigmoid(-x)``: the sigmoid's derivative, exact in both tails."""

        def fdiff(self, argindex=1):
            x = self.args[0]
            return dsigmoid(x) * (sigmoid(-x) - sigmoid(x))

        def _eval_is_extended_real(self):
            return self.args[0].is_extended_real

        def _eval_is_positive(self):
            return self.args[0].is_extended_real

    class logit(sympy.Function):  # noqa: N801
        """``log(p / (1 - p))``."""

        @classmethod
        def eval(cls, p):
            if isinstance(p, sigmoid):
                return p.args[0]
            return None

        def fdiff(self, argindex=1):
            p = self.args[0]
            return 1 / (p * (1 - p))

        def _eval_is_extended_real(self):
            return None

    return {
        "exp": sympy.exp,
        "log": sympy.log,
        "log1p": log1p,
        "expm1": expm1,
        "sqrt": sympy.sqrt,
        "sigmoid": sigmoid,
        "logit": logit,
        "softplus": softplus,
        "lgamma": sympy.loggamma,
        "digamma": lambda x: sympy.polygamma(0, x),
    }


@functools.cache
def _printer_class():
    from sympy.printing.numpy import SciPyPrinter
    from sympy.printing.precedence import precedence

    class Printer(SciPyPrinter):
        """SciPyPrinter with small integer powers as products and digamma as ``psi``."""

        def _print_Pow(self, expr, rational=False):
            # numpy computes x**2 as one square and 1/x as one division; x**3 and x**-2 would be
            # a general power, slower than products of an already computed base.
            base, exponent = expr.as_base_exp()
            if exponent.is_Integer and 1 <= abs(int(exponent)) <= 3:
                k = abs(int(exponent))
                b = self.parenthesize(base, precedence(expr), strict=False)
                if k == 3 and not base.is_Atom:
                    return super()._print_Pow(expr, rational=rational)
                power = {1: b, 2: f"{b}**2", 3: f"{b}*{b}*{b}"}[k]
                return f"({power})" if exponent > 0 else f"(1/({power}))"
            return super()._print_Pow(expr, rational=rational)

        def _print_polygamma(self, expr):
            n, x = expr.args
            if n == 0:
                return f"psi({self._print(x)})"
            if n == 1:
                return f"trigamma({self._print(x)})"
            return f"polygamma({self._print(n)}, {self._print(x)})"

    return Printer


def _namespace() -> dict[str, Any]:
    import scipy.special

    return {
        "softplus": kernels.softplus,
        "dsigmoid": kernels.dsigmoid,
        "trigamma": kernels.trigamma,
        "sigmoid": scipy.special.expit,
        "logit": scipy.special.logit,
        "psi": scipy.special.psi,
        "polygamma": scipy.special.polygamma,
    }


def to_sympy(e: E.Expr, symbols: dict[str, Any]) -> Any:
    """The expression tree ``e`` as a sympy expression (names looked up in ``symbols``)."""
    import sympy

    fns = _sympy_functions()
    if isinstance(e, E.Num):
        v = e.value
        if v.is_integer() and abs(v) < 2**53:
            return sympy.Integer(int(v))
        return sympy.Rational(repr(v))  # the shortest decimal that rounds back to this double
    if isinstance(e, E.Sym):
        return symbols[e.name]
    if isinstance(e, E.Add):
        return sympy.Add(*(to_sympy(t, symbols) for t in e.terms))
    if isinstance(e, E.Mul):
        return sympy.Mul(*(to_sympy(f, symbols) for f in e.factors))
    if isinstance(e, E.Pow):
        return sympy.Pow(to_sympy(e.base, symbols), to_sympy(e.exponent, symbols))
    assert isinstance(e, E.Call)
    return fns[e.func](*(to_sympy(a, symbols) for a in e.args))


@dataclass(frozen=True)
class Variable:
    """One variable ``v_k`` of the chain rule: a linear predictor or a parameter standing alone.

    Attributes
    ----------
    params : tuple of int
        The parameters it depends on (one for a parameter alone).
    coefs : tuple of int or None
        For a linear predictor, the index into the coefficient function's outputs of each
        parameter's coefficient (a data expression); None for a parameter alone.
    """

    params: tuple[int, ...]
    coefs: tuple[int, ...] | None


class Derivatives:
    """A text model's NLL with exact first and second derivatives, compiled to numpy.

    Built by :func:`derive`; every method works on whole arrays of rows. ``D`` is a float64 array
    of shape (n_obs, n_columns) in the order of the model's data columns.
    """

    def __init__(
        self, n_params: int, variables: list[Variable], coef_fn: Callable | None,
        fns: dict[int, Callable], formula: str,
    ) -> None:
        self.n_params = n_params
        self.variables = variables
        self._coef_fn = coef_fn
        self._fns = fns
        #: The per-row NLL after the linear predictors were taken out, as sympy prints it.
        self.formula = formula

    def _prepare(self, params: np.ndarray, D: np.ndarray):
        n = D.shape[0]
        cols = [D[:, i] for i in range(D.shape[1])]
        coefs = self._coef_fn(*cols) if self._coef_fn is not None else []
        blocks: list[np.ndarray | None] = []
        values: list[Any] = []
        for var in self.variables:
            if var.coefs is None:
                blocks.append(None)
                values.append(float(params[var.params[0]]))
            else:
                A = np.empty((n, len(var.coefs)), order="F")  # contiguous columns to fill
                for c, i in enumerate(var.coefs):
                    A[:, c] = coefs[i]
                blocks.append(A)
                values.append(np.dot(A, params[list(var.params)]))
        return n, cols, blocks, values

    def rows(self, params: np.ndarray, D: np.ndarray) -> np.ndarray:
        """The per-row NLL, shape (n_obs,)."""
        n, cols, _, values = self._prepare(params, D)
        (f,) = self._fns[0](*values, *cols)
        return _per_row(f, n)

    def sums(
        self, params: np.ndarray, D: np.ndarray, weights: np.ndarray | None, order: int
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """``(nll, grad, hess)`` summed over the rows with the weights; None beyond ``order``."""
        n, cols, blocks, values = self._prepare(params, D)
        out = self._fns[order](*values, *cols)
        w = weights
        f = _per_row(out[0], n)
        nll = float(f.sum() if w is None else w @ f)
        if order == 0:
            return nll, None, None
        q = len(self.variables)
        grad = np.zeros(self.n_params)
        for k, var in enumerate(self.variables):
            fk = _weighted(out[1 + k], w, n)
            grad[list(var.params)] += _t_dot(blocks[k], fk, n)
        if order == 1:
            return nll, grad, None
        hess = np.zeros((self.n_params, self.n_params))
        i = 1 + q
        for k in range(q):
            for m in range(k, q):
                value = out[i]
                i += 1
                if np.ndim(value) == 0 and value == 0:  # f is linear in this pair of variables
                    continue
                h = _weighted(value, w, n)
                block = _quad(blocks[k], h, blocks[m], n)
                rk, rm = list(self.variables[k].params), list(self.variables[m].params)
                hess[np.ix_(rk, rm)] += block
                if m != k:
                    hess[np.ix_(rm, rk)] += block.T
        return nll, grad, hess

    def scores(self, params: np.ndarray, D: np.ndarray) -> np.ndarray:
        """Per-row gradients of the NLL, shape (n_obs, n_params)."""
        n, cols, blocks, values = self._prepare(params, D)
        out = self._fns[1](*values, *cols)
        S = np.zeros((n, self.n_params))
        for k, var in enumerate(self.variables):
            fk = _per_row(out[1 + k], n)
            if blocks[k] is None:
                S[:, var.params[0]] += fk
            else:
                S[:, list(var.params)] += fk[:, None] * blocks[k]
        return S


def _per_row(x: Any, n: int) -> np.ndarray:
    """``x`` (a scalar or an array (n,)) as an array of shape (n,)."""
    x = np.asarray(x, dtype=float)
    return x if x.shape == (n,) else np.broadcast_to(x, (n,))


def _weighted(x: Any, w: np.ndarray | None, n: int) -> Any:
    """``w * x`` per row; a scalar stays a scalar when there are no weights (a derivative that
    is the same in every row, such as a normal model's ``1/sd**2``)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return float(x) if w is None else x * w
    x = _per_row(x, n)
    return x if w is None else x * w


def _t_dot(A: np.ndarray | None, h: Any, n: int) -> np.ndarray:
    """``A.T @ h``, with None standing for a column of ones and a scalar ``h`` for a constant
    (products with the rows as ``np.dot``, which releases the interpreter lock for the engines'
    threads where ``@`` holds it; see ``mlefit.families.base``)."""
    if np.ndim(h) == 0:
        return np.array([h * n]) if A is None else h * A.sum(axis=0)
    return np.array([h.sum()]) if A is None else np.dot(A.T, h)


def _quad(A: np.ndarray | None, h: Any, B: np.ndarray | None, n: int) -> np.ndarray:
    """``A.T @ diag(h) @ B``, with None standing for a column of ones and a scalar ``h`` for a
    constant diagonal."""
    if np.ndim(h) == 0:
        if A is None and B is None:
            return np.array([[h * n]])
        if A is None:
            return h * B.sum(axis=0)[None, :]
        if B is None:
            return h * A.sum(axis=0)[:, None]
        return h * np.dot(A.T, B)
    if A is None and B is None:
        return np.array([[h.sum()]])
    if A is None:
        return np.dot(h, B)[None, :]
    if B is None:
        return np.dot(h, A)[:, None]
    return np.dot(A.T, h[:, None] * B)


def derive(nll: E.Expr, params: Sequence[str], columns: Sequence[str]) -> Derivatives:
    """Differentiate the per-row NLL ``nll`` and compile it (see the module docstring).

    Parameters
    ----------
    nll : Expr
        The per-row NLL as an expression tree of the names in ``params`` and ``columns``.
    params : sequence of str
        The parameters, in the order of the gradient.
    columns : sequence of str
        The data columns, in the order of the columns of ``D``.

    Raises
    ------
    UsageError
        A parameter does not enter the NLL (its derivatives are zero: the Hessian is singular).
    ImportError
        sympy is not installed.
    """
    import sympy

    psyms = [sympy.Symbol(f"p{j}", real=True) for j in range(len(params))]
    dsyms = [sympy.Symbol(f"d{i}", real=True) for i in range(len(columns))]
    table = {**dict(zip(params, psyms)), **dict(zip(columns, dsyms))}
    f = to_sympy(nll, table)
    free = f.free_symbols
    for name, s in zip(params, psyms):
        if s not in free:
            raise UsageError(
                f"the parameter '{name}' does not enter the NLL once it is simplified "
                f"({_short(str(nll))}), so it cannot be estimated."
            )
    f, linear = _take_out_linear_predictors(f, set(psyms))
    index = {s: j for j, s in enumerate(psyms)}
    vsyms: list[Any] = []
    variables: list[Variable] = []
    coef_exprs: list[Any] = []
    for u, lin in linear:
        vsyms.append(u)
        order = sorted(lin, key=index.__getitem__)
        variables.append(Variable(
            tuple(index[p] for p in order),
            tuple(range(len(coef_exprs), len(coef_exprs) + len(order))),
        ))
        coef_exprs.extend(lin[p] for p in order)
    remaining = f.free_symbols
    for s in psyms:
        if s in remaining:
            vsyms.append(s)
            variables.append(Variable((index[s],), None))

    grads = [sympy.diff(f, v) for v in vsyms]
    hessians = [sympy.diff(grads[k], vsyms[m]) for k in range(len(vsyms)) for m in range(k, len(vsyms))]
    namespace = _namespace()
    printer = _printer_class()({
        "fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
        "user_functions": {k: k for k in namespace},
    })
    modules = [namespace, "scipy", "numpy"]

    def compile_(outputs: list[Any], args: list[Any]) -> Callable:
        return sympy.lambdify(args, outputs, modules=modules, printer=printer, cse=True, docstring_limit=0)

    args = [*vsyms, *dsyms]
    fns = {
        0: compile_([f], args),
        1: compile_([f, *grads], args),
        2: compile_([f, *grads, *hessians], args),
    }
    coef_fn = compile_(coef_exprs, dsyms) if coef_exprs else None
    return Derivatives(len(params), variables, coef_fn, fns, str(f))


def _take_out_linear_predictors(f: Any, params: set) -> tuple[Any, list[tuple[Any, dict]]]:
    """``f`` with each sum linear in two or more parameters replaced by a new symbol ``u_k``;
    the list of ``(u_k, {parameter: coefficient})``. A sum that is the negative of one already
    found reuses its symbol, negated."""
    import sympy

    found: dict[frozenset, Any] = {}
    linear: list[tuple[Any, dict]] = []

    def visit(e: Any) -> Any:
        if not e.args or not (e.free_symbols & params):
            return e
        if e.is_Add:
            lin: dict[Any, Any] = {}
            rest = []
            for t in e.args:
                ps = t.free_symbols & params
                if len(ps) == 1:
                    (p,) = ps
                    coef, dep = t.as_independent(p, as_Add=False)
                    if dep == p:
                        lin[p] = lin.get(p, 0) + coef
                        continue
                rest.append(t)
            if len(lin) >= 2:
                key = frozenset(lin.items())
                negated = frozenset((p, -c) for p, c in lin.items())
                if key in found:
                    u = found[key]
                elif negated in found:
                    u = -found[negated]
                else:
                    u = sympy.Symbol(f"u{len(linear)}", real=True)
                    found[key] = u
                    linear.append((u, lin))
                return sympy.Add(u, *(visit(r) for r in rest))
        return e.func(*(visit(a) for a in e.args))

    return visit(f), linear


def _short(s: str, limit: int = 60) -> str:
    return s if len(s) <= limit else s[: limit - 3] + "..."
