"""A formula's design when the rows arrive in chunks (``--stream``) or partitions (``--engine dask``).

In memory, formulaic learns a formula's state from the whole table: the levels of every categorical
factor (``C(region)``, a text column), and the state of its stateful transforms (the mean of
``center(x)``, the mean and scale of ``scale(x)``, the knots of ``bs(x, df=4)``, the recurrence of
``poly(x, 3)``). Here that state is learned from a first pass, then every chunk is encoded with the
same model spec, so the design of each row is the one the in-memory fit gives it:

1. :func:`plan_formula` reads the formula against the table's columns, with the in-memory checks and
   messages, and finds the factors whose state needs every row: the stateful transforms, and a
   ``C(...)`` of an expression. Their variables are *held*.
2. :func:`summarise` (each chunk, on its worker) keeps the distinct values of every variable (up to
   :data:`MAX_TRACKED`) and every value of the held variables, over the rows the fit uses.
3. :func:`learn` builds a small table in which every variable takes each of its values: formulaic
   learns the levels of each categorical factor from it (the sorted distinct values, as from all
   rows), and the held factors' state from the held values of all rows; the merged spec is recorded
   as the design description (:func:`mlefit.data.describe_formula`) and every chunk is encoded from
   it by :class:`mlefit.data.FormulaEncoder`, as ``mlefit predict`` rebuilds a saved design.

The first pass's memory is the distinct values, plus the held variables' values when the formula
has a stateful transform. The exact power columns of an in-memory gaussian fit (``Dataset.X_lo``)
are not formed here: :func:`low_parts` tells whether they would have been used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .. import data, formula_check
from ..errors import DataError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from ..families.base import Family

#: Distinct values the first pass keeps of each variable: a categorical factor of a variable with
#: more levels than this is refused (the in-memory fit would one-hot encode them all).
MAX_TRACKED = data.MAX_LEVELS


@dataclass(frozen=True, eq=False)
class FormulaPlan:
    """A formula read against a table's columns: what the first pass collects.

    Attributes
    ----------
    formula : str
        The formula as given.
    target : str
        The left side (a column, or a transformation of one such as ``np.log(price)``).
    target_column : bool
        Whether the left side is a column of the table.
    variables : list of str
        Every column the formula reads (both sides), sorted.
    used : list of str
        ``variables`` and the columns of ``roles``: the columns whose missing values count.
    roles : dict
        ``{"weights": name, ...}`` for the roles given.
    held : list of str
        Variables whose every value the first pass keeps (those of ``stateful`` factors).
    stateful : list of str
        Formula text of each factor whose state needs every row (``{center(x)}``, ``{bs(z, df=3)}``).
    own_intercept : bool
        The family has an intercept column (else the formula's intercept term only sets how factors
        are coded, and its column is left out).
    family_name : str
        For messages.
    """

    formula: str
    parsed: Any
    target: str
    target_column: bool
    variables: list
    used: list
    roles: dict
    held: list
    stateful: list
    own_intercept: bool = True
    family_name: str = ""


def _stateful_names() -> set[str]:
    """The names of formulaic's stateful transforms (``center``, ``bs``, ``poly``, ...), ``Q`` aside
    (a column lookup)."""
    from formulaic.transforms import TRANSFORMS

    return {n for n, f in TRANSFORMS.items() if getattr(f, "__is_stateful_transform__", False)} - {"Q"}


def _simple_column(node) -> bool:
    """A bare column: a name, or ``Q('odd name')``."""
    if isinstance(node, ast.Name):
        return True
    return (
        isinstance(node, ast.Call) and formula_check.dotted_name(node.func) == "Q" and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    )


def _needs_every_row(expr: str, stateful: set[str]) -> bool:
    """Whether a Python factor's state depends on all its values: it calls a stateful transform, or
    is ``C(...)`` of an expression (its levels are the expression's distinct values)."""
    tree, _ = formula_check.parse_expression(expr)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = formula_check.dotted_name(node.func)
            if name in stateful:
                return True
            if name == "C" and node.args and not _simple_column(node.args[0]):
                return True
    return False


def _factor_text(factor) -> str:
    method = factor.eval_method.value
    if method == "python":
        return "{" + factor.expr + "}"
    if method == "lookup" and not factor.expr.isidentifier():
        return f"`{factor.expr}`"
    return factor.expr


def plan_formula(
    formula: str, columns: Sequence[str], family: "Family", *, target: str | None = None,
    features: Any = None, intercept: bool = True, roles: "dict[str, str | None] | None" = None,
) -> FormulaPlan:
    """Read ``formula`` against a table's ``columns`` before any row, with the in-memory fit's checks
    and messages (:func:`mlefit.data.load_dataset`)."""
    columns = list(columns)
    parsed, target_name, needed, roles = data.read_formula(
        formula, columns, family, target=target, features=features, intercept=intercept, roles=roles,
    )
    own_intercept = family.intercept_column
    target_column = target_name in columns
    if family.classes and not target_column:
        raise UsageError(
            f"the left side of --formula, '{target_name}', is not a column: with --stream or --engine dask the "
            f"labels of {family.name} must be a column.",
            "Write the column itself on the left side, or fit in memory.",
        )
    stateful_names = _stateful_names()
    stateful, held = [], set()
    for factor in data.formula_factors(parsed):
        if factor.eval_method.value == "python" and _needs_every_row(factor.expr, stateful_names):
            text = _factor_text(factor)
            if text not in stateful:
                stateful.append(text)
            held |= set(data.formula_variables(data.parse_formula(f"0 + {text}", columns), columns))
    order = {c: j for j, c in enumerate(columns)}
    variables = needed  # sorted, as the in-memory reader checks them for missing values
    used = list(dict.fromkeys([*variables, *roles.values()]))
    return FormulaPlan(
        formula, parsed, target_name, target_column, variables, used, roles,
        sorted(held, key=order.__getitem__), stateful, own_intercept, family.name,
    )


# -- the first pass -------------------------------------------------------------------------------


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (in order of appearance when they cannot be sorted)."""
    try:
        return np.unique(values)
    except TypeError:
        import pandas as pd

        return pd.unique(values)


def summarise(plan: FormulaPlan, chunk: "pd.DataFrame") -> dict:
    """What the first pass keeps of one chunk, over its rows without a missing value in ``plan.used``:
    ``{"levels": {variable: (distinct values, more than MAX_TRACKED)}, "held": DataFrame or None}``."""
    chunk = chunk.set_axis([str(c) for c in chunk.columns], axis=1)
    mask = chunk[plan.used].isna().any(axis=1).to_numpy()
    part = chunk.iloc[np.flatnonzero(~mask)] if mask.any() else chunk
    levels = {}
    for v in plan.variables:
        values = _distinct(part[v].to_numpy())
        levels[v] = (values[:MAX_TRACKED], len(values) > MAX_TRACKED)
    held = part[plan.held].reset_index(drop=True) if plan.held else None
    return {"levels": levels, "held": held}


def _union(parts: list[np.ndarray]) -> tuple[np.ndarray, bool]:
    """The distinct values of several chunks' distinct values: numbers and text together are all
    text (as in a whole column that holds both), up to MAX_TRACKED."""
    values = np.concatenate(parts) if parts else np.array([], dtype=np.float64)
    kinds = {p.dtype.kind for p in parts if len(p)}
    if "O" in kinds and len(kinds) > 1:
        values = values.astype(str).astype(object)
    values = _distinct(values)
    return values[:MAX_TRACKED], len(values) > MAX_TRACKED


@dataclass(frozen=True, eq=False)
class Learned:
    """A formula's design learned from the first pass.

    Attributes
    ----------
    design : dict
        The design description (``kind`` ``formula``), as the in-memory fit records it.
    features : tuple of str
        The design's column names (``intercept`` first when present).
    intercept : bool
    encoder : FormulaEncoder
        Builds the design of a chunk (``encoder.matrix(chunk, rows)``).
    lhs : FormulaEncoder or None
        Builds the left side of a chunk when it is a transformation, not a column.
    powers : dict
        Design columns that are integer powers of a column (see :func:`low_parts`).
    """

    design: dict
    features: tuple
    intercept: bool
    encoder: Any
    lhs: Any = None
    powers: dict = field(default_factory=dict)


def _matrix(formulaic, formula, frame, text: str):
    from formulaic.errors import FormulaicError

    try:
        with np.errstate(all="ignore"):
            return formulaic.model_matrix(formula, frame, na_action="ignore", context={})
    except FormulaicError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot build the design of --formula '{text}': {first}.") from None


def learn(plan: FormulaPlan, summaries: list[dict], columns: Sequence[str]) -> Learned:
    """The formula's design from the first pass's summaries (in row order) of a table with ``columns``."""
    import formulaic
    import pandas as pd

    levels = {}
    for v in plan.variables:
        values, over = _union([s["levels"][v][0] for s in summaries])
        levels[v] = (values, over or any(s["levels"][v][1] for s in summaries))
    n_rows = max([len(values) for values, _ in levels.values()] + [1])
    # every variable takes each of its (distinct) values, cycled: the levels formulaic learns are the
    # sorted distinct values, as from all rows
    small = pd.DataFrame({v: np.resize(values, n_rows) for v, (values, _) in levels.items()})
    held_spec = None
    if plan.stateful:
        held = pd.concat([s["held"] for s in summaries], ignore_index=True)
        # the held factors' own formula: their texts passed the checks with the formula; checked again joined
        learning = data.parse_formula("0 + " + " + ".join(plan.stateful), columns)
        held_spec = _matrix(formulaic, learning, held, plan.formula).model_spec
        held = None

    def spec_of(side):
        spec = _matrix(formulaic, side, small, plan.formula).model_spec
        if held_spec is not None:
            transform = {**spec.transform_state, **held_spec.transform_state}
            encoder = {k: held_spec.encoder_state.get(k, v) for k, v in spec.encoder_state.items()}
            spec = spec.update(transform_state=transform, encoder_state=encoder)
        _check_levels(plan, spec, levels, held_spec)
        return spec

    spec = spec_of(plan.parsed.rhs)
    with np.errstate(all="ignore"):
        names = [str(c) for c in spec.get_model_matrix(small, context={}).columns]
    if not names:
        raise UsageError(
            f"--formula '{plan.formula}' gives no design columns.", "Name at least one feature or keep the intercept."
        )
    has_intercept = "Intercept" in names
    if not plan.own_intercept:
        if not has_intercept:
            raise UsageError(
                f"--formula '{plan.formula}' drops the intercept term, which {plan.family_name} needs: its own parameters "
                "take the intercept's place, and without the term a factor is coded by a column per level, which "
                "those parameters cannot be told apart from.",
                "Remove '- 1' (or '+ 0') from the formula; the intercept's column is left out of the design.",
            )
        names, has_intercept = [n for n in names if n != "Intercept"], False
    if has_intercept:
        names = [data.INTERCEPT] + [n for n in names if n != "Intercept"]
    design = data.describe_formula(spec, names, has_intercept)
    lhs = None
    if not plan.target_column:
        lhs_spec = spec_of(plan.parsed.lhs)
        with np.errstate(all="ignore"):
            lhs_names = [str(c) for c in lhs_spec.get_model_matrix(small, context={}).columns]
        if len(lhs_names) != 1:
            raise UsageError(
                f"the left side of --formula, '{plan.target}', gives {len(lhs_names)} columns; it must give one."
            )
        lhs = data.FormulaEncoder(data.describe_formula(lhs_spec, lhs_names, False), columns)
    return Learned(
        design, tuple(names), has_intercept, data.FormulaEncoder(design, columns), lhs,
        data.power_columns(spec, small),
    )


def _check_levels(plan: FormulaPlan, spec, levels: dict, held_spec) -> None:
    """Refuse a categorical factor whose levels the first pass could not learn: one of a variable
    with more than MAX_TRACKED distinct values, or of an expression that is not ``C(...)``."""
    from formulaic.parser.types import Factor

    held = set(held_spec.encoder_state) if held_spec is not None else set()
    for expr, (kind, state) in spec.encoder_state.items():
        if kind is not Factor.Kind.CATEGORICAL or expr in held:
            continue
        if expr in levels:  # a column looked up
            variables = [expr]
            simple = True
        else:
            node = formula_check.parse_expression(expr)[0].body
            variables = sorted(formula_check.expression_columns(expr, levels))
            simple = _simple_column(node) or (
                isinstance(node, ast.Call) and formula_check.dotted_name(node.func) == "C" and bool(node.args)
                and _simple_column(node.args[0])
            )
        if not simple:
            raise UsageError(
                f"the factor '{expr}' of --formula is categorical, and with --stream or --engine dask the levels of "
                "a categorical factor are learned from a column.",
                "Write it as C(column) of a column, or fit in memory.",
            )
        over = [v for v in variables if levels[v][1]]
        if over:
            raise DataError(
                f"the factor '{expr}' of --formula has more than {MAX_TRACKED} levels (column '{over[0]}'), too many "
                "to encode when streaming or on Dask.",
                "Fit in memory, or leave it out of the formula.",
            )


def low_parts(powers: dict, frame: "pd.DataFrame") -> bool:
    """Whether a power column (``{design column: (column, k)}``) of ``frame``'s rows has a non-zero
    low-order part: whether an in-memory gaussian fit would have used its exact powers
    (:func:`mlefit.data.exact_powers`)."""
    from .. import linalg

    by_column: dict[str, set[int]] = {}
    for var, k in powers.values():
        by_column.setdefault(var, set()).add(k)
    for var, ks in by_column.items():
        values = frame[var].to_numpy(dtype=np.float64)
        table = linalg.powers(values, sorted(ks))
        for k in ks:
            hi, lo = table[k]
            if np.any(np.isfinite(hi) & (lo != 0)):
                return True
    return False
