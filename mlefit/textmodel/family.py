"""A likelihood written as text, fitted like a family: what ``mlefit fit --model`` and ``--nll`` fit.

:class:`TextModelFamily` wraps a compiled :class:`~mlefit.textmodel.TextModel` in the
:class:`~mlefit.families.base.Family` protocol, so a text model goes through the one fit path of
every engine (in memory, ``--stream``, ``--engine dask``) and gets everything a built-in family
gets. It is not in the registry: :func:`text_family` builds one for the columns of the data.

The layout of the rows:

* ``y`` is the model's target column (left of ``~``); ``X`` holds its other data columns, in the
  order of :attr:`TextModel.data_columns`, with no intercept. An ``--nll`` text has no target: the
  first column it reads plays the target's part (the rows are read the same way, the report calls
  it the target), and ``X`` holds the others. ``evaluate`` stacks ``y`` and ``X`` into the
  TextModel's ``D``. A model that reads no column but its target is read with a column of ones as
  its design, which it ignores.
* The parameters are the names of the text that are not columns of the data, in order of first
  appearance, without those held by ``--fixed``; each is reported on its own scale (there are no
  ancillary parameters: a text writes ``sd = exp(log_s)`` when it wants a log scale).
* The start is ``--start`` (0 for a parameter not named). Before the optimiser runs,
  :meth:`TextModelFamily.check_start` refuses a start where the NLL is not finite (naming the row
  and the argument out of its domain) and compares the derived gradient and Hessian with finite
  differences there: a disagreement is a bug of mlefit, reported as such.

A family is pickled as its text (for Dask's workers), and compiled again where it is unpickled:
once per process, since compiled texts are cached.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Mapping, Sequence

import numpy as np

from .. import numdiff
from ..errors import DataError, DerivativeError, FamilyError, UsageError
from ..families.base import BlockSums, Family, Target, data_row, numeric_target, total_weight
from . import compile_model
from .compiled import TextModel
from .distributions import DISTRIBUTIONS, DOMAINS, in_domain
from .symbolic import INSTALL_HINT

#: The largest relative error of the derived derivatives against finite differences accepted at
#: the start of a fit. Correct derivations agree to about 1e-9; a wrong one is off by 1e-2 or more.
START_CHECK_TOL = 1e-5
#: Rows (evenly spaced over a sample) the derivatives are checked on at the start.
START_CHECK_ROWS = 2000


def parse_values(values: "str | Mapping[str, float] | None", option: str) -> dict[str, float]:
    """``"a=0.5, b=1"`` (or a mapping) to ``{"a": 0.5, "b": 1.0}``; a UsageError naming ``option``
    for anything else (a part without ``=``, a value that is not a finite number, a name given twice)."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        items = [(str(k), v) for k, v in values.items()]
    else:
        items = []
        for part in str(values).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise UsageError(f"{option} takes name=value pairs separated by commas, such as a=0.5,b=1; got '{part.strip()}'.")
            items.append((name.strip(), value.strip()))
    out: dict[str, float] = {}
    for name, value in items:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{option} gives '{name}' the value '{value}', which is not a number.") from None
        if not math.isfinite(number):
            raise UsageError(f"{option} gives '{name}' the value {value}; it must be a finite number.")
        if name in out:
            raise UsageError(f"{option} gives '{name}' twice.")
        out[name] = number
    return out


def assignments(values: Mapping[str, float]) -> str:
    """``{"a": 0.5, "b": 1.0}`` as ``a=0.5, b=1``."""
    return ", ".join(f"{k}={v:.10g}" for k, v in values.items())


class TextModelFamily(Family):
    """A likelihood written as text (``--model "y ~ normal(mean = a + b*x, sd = exp(s))"`` or
    ``--nll "EXPR"``), compiled with exact derivatives when sympy is installed.

    Domain of y: the distribution's support (an ``--nll`` text: any finite number). The per-row NLL
    is the text's (for a model, ``-log p(y | arguments)`` of the distribution named); there is no
    link: the text writes every term.
    """

    name = "model"
    description = "a likelihood written as text: --model 'y ~ distribution(...)' or --nll"
    distribution = "as written"
    link = "none: the text writes every term"
    loss_name = "per row"
    loss_statement = "the NLL as written"
    grad_formula = "derived symbolically (sympy), compiled to numpy"
    hess_formula = "derived symbolically (sympy), compiled to numpy"
    parameters = "the names of the text that are not columns of the data"
    y_domain = "the distribution's support"
    convex = False
    linear_predictor = False
    no_offset = "a text model writes every term of its NLL itself; write the offset into the text"
    penalty_statement = "NLL"

    def __init__(
        self, compiled: TextModel, *, start: Mapping[str, float] | None = None, fixed: Mapping[str, float] | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        """``columns``: every column of the data (for the hint that a parameter looks like a
        misspelled column)."""
        super().__init__()
        self.model = compiled
        self.text = compiled.text
        self.nll_formula = compiled.formula
        self.analytic = compiled.symbolic
        self.data_columns = list(compiled.data_columns)
        #: The column read as ``y`` (the target; an --nll text's first column), and those read as ``X``.
        self.target = self.data_columns[0]
        self.columns = self.data_columns[1:]
        start, fixed = dict(start or {}), dict(fixed or {})
        names = compiled.param_names
        for option, given in (("--fixed", fixed), ("--start", start)):
            for name in given:
                if name in names:
                    continue
                if name in self.data_columns:
                    raise UsageError(f"{option} names '{name}', which is a column of the data, not a parameter.")
                raise UsageError(
                    f"{option} names '{name}', which is not a parameter of the model; its parameters are "
                    f"{', '.join(names)}."
                )
        both = [n for n in start if n in fixed]
        if both:
            raise UsageError(f"'{both[0]}' is given both a start (--start) and a fixed value (--fixed).")
        free = [n for n in names if n not in fixed]
        if not free:
            raise UsageError(f"--fixed holds every parameter ({', '.join(names)}); leave at least one to estimate.")
        self.fixed = {n: fixed[n] for n in names if n in fixed}
        self.free_names = free
        self._free = np.array([n not in fixed for n in names])
        self._full = np.array([fixed.get(n, start.get(n, 0.0)) for n in names], dtype=float)
        self.start = {n: start.get(n, 0.0) for n in free}
        self.singular_hint = (
            f"Some parameters are not identified by the data: the parameters found are {', '.join(free)} "
            "(a name that is not a column of the data is a parameter), and two that enter only together, "
            "such as a + b, cannot be told apart."
        )
        unread = [c for c in (columns or ()) if c not in self.data_columns]
        typo = next(((n, c[0]) for n in free for c in [difflib.get_close_matches(n, unread, 1)] if c), None)
        if typo is not None:
            self.singular_hint += f" Is '{typo[0]}' meant to be the column '{typo[1]}'?"

    def __reduce__(self):
        # the compiled functions are not pickled: the text is, and compiled again (once per process)
        return (_rebuild, (self.text, tuple(self.data_columns), self.start, self.fixed, self.analytic))

    def __repr__(self) -> str:
        return f"TextModelFamily({self.text!r})"

    # -- parameters ---------------------------------------------------------------------------
    def full(self, params: np.ndarray) -> np.ndarray:
        """The TextModel's parameter vector: the free ``params`` with the fixed values put in."""
        out = self._full.copy()
        out[self._free] = params
        return out

    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return len(self.free_names)

    def coef_labels(self, feature_names, levels=None):
        return [(n, None) for n in self.free_names]

    def param_names(self, feature_names, levels=None, *, optimiser: bool = False):
        return self.coef_labels(feature_names, levels)

    def log_scale(self, n_params: int) -> np.ndarray:
        return np.zeros(n_params, dtype=bool)

    def design_scale(self, scale: np.ndarray, n_classes: int | None = None) -> np.ndarray:
        return np.ones(len(self.free_names))

    def l2_matrix(self, n_features: int, n_classes: int | None = None, *, intercept: bool = False) -> np.ndarray:
        raise UsageError("--l2 does not apply to a text model; write a penalty into an --nll text if you want one.")

    def null_columns(self, intercept: bool) -> int | None:
        return None  # no intercept-only model: the text has no intercept to keep

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None) -> np.ndarray:
        return self._full[self._free].copy()

    # -- the rows -----------------------------------------------------------------------------
    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        y = numeric_target(values, column, rows, "a text model reads numbers")
        finite = np.isfinite(y)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise FamilyError(f"column '{column}' has the value {y[i]} in data row {data_row(rows, i)}; a text model needs finite numbers.")
        dist = DISTRIBUTIONS.get(self.model.distribution) if self.model.distribution else None
        if dist is not None:
            bad = np.flatnonzero(~in_domain(y, dist.support))
            if bad.size:
                i = int(bad[0])
                raise FamilyError(
                    f"{dist.name} needs a target '{column}' that is {DOMAINS[dist.support]}; "
                    f"data row {data_row(rows, i)} has {y[i]:g}."
                )
        return Target(y)

    def check_y(self, y: np.ndarray) -> None:
        self.encode_target(np.asarray(y, dtype=float), self.target)

    def data(self, X: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        """The TextModel's ``D`` (column-major): ``y``, then the model's columns of ``X`` (its last
        ``len(columns)``; a design without them holds a column of ones)."""
        k = len(self.columns)
        D = np.empty((len(y), k + 1), order="F")
        D[:, 0] = y
        if k:
            D[:, 1:] = X[:, X.shape[1] - k:]
        return D

    def covariates(self, X: np.ndarray) -> np.ndarray:
        k = len(self.columns)
        return np.asarray(X, dtype=float)[:, np.asarray(X).shape[1] - k:]

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None) -> BlockSums:
        full = self.full(params)
        nll, g, H = self.model.evaluate(full, self.data(X, y), weights, order)
        free = self._free
        return BlockSums(
            nll, None if g is None else g[free], None if H is None else H[np.ix_(free, free)],
            total_weight(len(y), weights),
        )

    def scores(self, params, X, y, offset=None) -> np.ndarray:
        D = self.data(X, y)
        if self.analytic:
            return self.model.scores(self.full(params), D)[:, self._free]
        # without sympy: central differences of the per-row NLL
        return numdiff.jacobian(lambda p: self.model.nll_rows(self.full(p), D), np.asarray(params, dtype=float))

    def simulate(self, params, X, rng, offset=None) -> np.ndarray:
        return self.model.simulate(self.full(params), self.covariates(X), rng)

    def predict(self, estimates, X, offset=None) -> np.ndarray:
        return self.model.mean(self.full(estimates), self.covariates(X))

    # -- before the fit -----------------------------------------------------------------------
    def check_start(self, params, feature_names, objective, sample) -> None:
        """Refuse text columns, data outside the model's domain, a start where the NLL is not
        finite, and derived derivatives that disagree with finite differences (a bug)."""
        read = set(feature_names)
        for column in self.columns:
            if column not in read:
                raise DataError(
                    f"column '{column}' holds text, and a text model reads numbers only.",
                    "Encode it as numbers.",
                )
        rows = sample()
        D = self.data(rows.X, rows.y)
        full = self.full(params)
        self.model.check_data(D)
        if not math.isfinite(objective.value(params)):
            why = self.model.why_not_finite(full, D) if rows.n_obs == objective.rows.n_obs else None
            why = why.rstrip(".") if why is not None else "the NLL is not finite in some row"
            raise UsageError(
                f"the start ({assignments(dict(zip(self.model.param_names, full)))}) is outside the model: "
                f"{why}; choose another with --start."
            )
        if not self.analytic:
            return
        check = self.model.check_derivatives(full, D, rows.weights, max_rows=START_CHECK_ROWS)
        derived = np.concatenate([check.grad, check.hess.ravel()])
        if not np.all(np.isfinite(derived)):
            raise UsageError(
                f"the gradient or Hessian of the NLL is not finite at the start "
                f"({assignments(dict(zip(self.model.param_names, full)))}); choose another with --start."
            )
        if not check.passed(START_CHECK_TOL):
            raise DerivativeError(
                f"the derivatives derived for the model disagree with finite differences at the start "
                f"(largest relative error {check.worst:.2g}, gradient {check.grad_error:.2g}, Hessian "
                f"{check.hess_error:.2g}): this is a bug of mlefit, please report it with the model's text.",
                "Meanwhile --grad numeric fits without them.",
            )

    # -- the report ---------------------------------------------------------------------------
    def result_fields(self) -> dict[str, Any]:
        columns = list(self.columns)
        return {
            "model": self.text, "fixed": dict(self.fixed), "start": dict(self.start),
            "compile_seconds": self.model.compile_seconds,
            "derivatives": "exact (derived with sympy)" if self.analytic
            else f"finite differences: sympy is not installed ({INSTALL_HINT})",
            "feature_names": tuple(columns), "intercept": False,
            "design": {
                "kind": "columns", "intercept": False, "features": columns,
                "columns": [{"column": c, "type": "numeric"} for c in columns],
            },
        }

    def record(self) -> dict[str, Any]:
        """What a model file keeps to build the family again (:func:`family_from_record`)."""
        return {"text": self.text, "columns": list(self.data_columns), "fixed": dict(self.fixed)}


def text_family(
    model: str | None = None, nll: str | None = None, *, columns: Sequence[str],
    start: "str | Mapping[str, float] | None" = None, fixed: "str | Mapping[str, float] | None" = None,
) -> TextModelFamily:
    """The family of a model (``"y ~ normal(mean = a + b*x, sd = exp(s))"``) or an NLL written as
    text, for data with ``columns``; ``start`` and ``fixed``: ``"a=0.5,b=1"`` or a mapping.

    Raises
    ------
    UsageError
        The text is outside the grammar or names an unknown distribution or argument, its target
        is not a column, a parameter does not enter the NLL, an --nll text reads no column, or
        ``start``/``fixed`` name something that is not a parameter.
    """
    compiled = compile_model(model, nll=nll, columns=columns)
    if not compiled.data_columns:
        raise UsageError(f"the NLL '{compiled.text}' reads no column of the data; the columns are {', '.join(columns)}.")
    return TextModelFamily(
        compiled, start=parse_values(start, "--start"), fixed=parse_values(fixed, "--fixed"), columns=columns,
    )


def family_from_record(record: Mapping[str, Any], source: str = "the model") -> TextModelFamily:
    """The family of a model file's ``model`` entry (:meth:`TextModelFamily.record`), its text
    parsed and compiled again (never evaluated)."""
    text, columns = record["text"], record["columns"]
    if not isinstance(text, str) or not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ValueError("its model needs a text and a list of columns")
    kind = {"model": text} if "~" in text else {"nll": text}
    return text_family(**kind, columns=columns, fixed=parse_values(record.get("fixed") or {}, "fixed"))


def _rebuild(text: str, columns: tuple[str, ...], start: dict, fixed: dict, analytic: bool) -> TextModelFamily:
    kind = {"model": text} if "~" in text else {"nll": text}
    compiled = compile_model(**kind, columns=list(columns), derivatives=analytic)
    return TextModelFamily(compiled, start=start, fixed=fixed)
