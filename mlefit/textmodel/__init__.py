"""Likelihoods written as text: ``y ~ normal(mean = a + b*x, sd = exp(log_s))`` or an NLL.

::

    from mlefit.textmodel import compile_model
    m = compile_model("y ~ poisson(rate = exp(a + b*x))", columns=["y", "x", "z"])
    m.data_columns, m.param_names          # ['y', 'x'], ['a', 'b']
    nll, grad, hess = m.evaluate(params, D)  # D: float64 (n_obs, len(m.data_columns))

The package has one module per job: :mod:`~mlefit.textmodel.grammar` reads the text into an
expression tree (:mod:`~mlefit.textmodel.expr`, which also holds the stable rewrites),
:mod:`~mlefit.textmodel.distributions` is the table of distributions,
:mod:`~mlefit.textmodel.symbolic` derives exact derivatives with sympy and compiles them, and
:mod:`~mlefit.textmodel.compiled` is the compiled object, with the fast elementwise kernels in :mod:`~mlefit.textmodel.kernels`. sympy (the extra ``mlefit[model]``) is
imported on the first compile, never by ``import mlefit``.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

from . import expr as E
from .distributions import DISTRIBUTIONS
from .grammar import MAX_DEPTH, MAX_LENGTH, parse_model, parse_nll, split_names
from .compiled import DerivativeCheck, TextModel
from .symbolic import INSTALL_HINT, derive, have_sympy

__all__ = [
    "compile_model",
    "TextModel",
    "DerivativeCheck",
    "DISTRIBUTIONS",
    "FUNCTIONS",
    "INSTALL_HINT",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "have_sympy",
    "clear_cache",
]

FUNCTIONS = tuple([*E.FUNCTIONS, *E.ALIASES])

#: Compiled models kept per process, the oldest dropped first.
CACHE_SIZE = 32
_cache: dict[tuple, TextModel] = {}
_lock = threading.Lock()


def compile_model(
    model: str | None = None, *, nll: str | None = None, columns: Sequence[str], derivatives: bool = True,
) -> TextModel:
    """Parse a model or an NLL written as text and compile it, with exact derivatives when sympy
    is installed.

    A name in the text that is one of ``columns`` is data; any other name is a parameter.
    Compiled models are cached per (text, the columns it reads) in the process: a second call
    returns the same compiled functions with ``compile_seconds`` 0.

    Parameters
    ----------
    model : str, optional
        ``"TARGET ~ DISTRIBUTION(argument = EXPR, ...)"`` (``--model``).
    nll : str, optional
        The per-row negative log-likelihood as one expression (``--nll``). Give exactly one of
        ``model`` and ``nll``.
    columns : sequence of str
        The columns of the data.
    derivatives : bool, default True
        Derive exact derivatives when sympy is installed; False compiles the NLL only.

    Returns
    -------
    TextModel

    Raises
    ------
    UsageError
        The text is outside the grammar (one sentence naming the offending token), names an
        unknown distribution or argument or misses one, its target is not a column, it has no
        parameter, or a parameter does not enter the NLL.
    """
    from ..errors import UsageError

    if (model is None) == (nll is None):
        raise UsageError("give a model ('y ~ distribution(...)') or an NLL expression, not both or neither.")
    parsed = parse_model(model) if model is not None else parse_nll(nll)
    data, params = split_names(parsed, list(columns))
    symbolic = bool(derivatives) and have_sympy()
    key = (parsed.target is None, parsed.text, tuple(data), symbolic)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit.cached_copy()
    start = time.perf_counter()
    if parsed.distribution is not None:
        expr = DISTRIBUTIONS[parsed.distribution].nll(E.Sym(parsed.target), **dict(parsed.args))
    else:
        expr = parsed.nll
    derived = derive(expr, params, data) if symbolic else None
    compiled = TextModel(parsed, data, params, expr, derived, time.perf_counter() - start)
    with _lock:
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return compiled


def clear_cache() -> None:
    """Forget the compiled models (tests; a long-lived process that compiles many texts)."""
    with _lock:
        _cache.clear()
