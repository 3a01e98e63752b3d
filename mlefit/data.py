"""From a CSV (a path or standard input) or arrays to a validated design matrix and target.

Every problem with the data raises :class:`~mlefit.errors.DataError` (or ``FamilyError`` for labels)
with one sentence naming the column and what is wrong.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from .families.base import Family

INTERCEPT = "intercept"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A design matrix and encoded target ready for a family.

    Attributes
    ----------
    X : ndarray of shape (n_obs, n_features)
        float64; column 0 is the intercept when ``intercept`` is true.
    y : ndarray of shape (n_obs,)
        Encoded by the family (see ``Family.encode_target``).
    feature_names : tuple of str
        A name per column of ``X`` (``intercept`` first when present).
    target : str
        The target column's name.
    levels : tuple or None
        Class labels in code order (bernoulli and categorical).
    target_note : str or None
        How the labels were read, for the output.
    intercept : bool
    weights : ndarray of shape (n_obs,) or None
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target: str
    levels: tuple | None = None
    target_note: str | None = None
    intercept: bool = True
    weights: np.ndarray | None = None

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]


def read_csv(source: "str | Path | io.TextIOBase") -> "pd.DataFrame":
    """Read a CSV from a path, ``-`` (standard input) or an open text stream."""
    import pandas as pd

    name = "standard input" if source == "-" else f"'{source}'"
    if source == "-":
        source = sys.stdin
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"file {name} not found.")
        if path.is_dir():
            raise DataError(f"{name} is a directory, not a CSV file.")
    try:
        frame = pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{name} is not a readable CSV file ({first}).") from None
    if frame.shape[0] == 0:
        raise DataError(f"{name} has a header but no data rows.")
    return frame


def split_names(names: "str | Sequence[str] | None") -> list[str] | None:
    """``"a,b, c"`` or ``["a", "b"]`` to a list of names; None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    out = [n.strip() for n in names if n.strip()]
    return out


def choose_target(columns: list[str], target: str | None) -> str:
    """The target column: as given, else ``y`` (any case, if unambiguous), else the last column."""
    if target is not None:
        if target not in columns:
            raise DataError(
                f"target column '{target}' not found; available: {', '.join(columns)}.",
                "Use --target to name one of them.",
            )
        return target
    if "y" in columns:
        return "y"
    matches = [c for c in columns if c.strip().lower() == "y"]
    return matches[0] if len(matches) == 1 else columns[-1]


def load_dataset(
    data: "pd.DataFrame | str | Path",
    family: "Family",
    *,
    target: str | None = None,
    features: "str | Sequence[str] | None" = None,
    intercept: bool = True,
) -> Dataset:
    """Validate a table and build the design matrix and encoded target for ``family``."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else read_csv(data)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.shape[0] == 0:
        raise DataError("the data have no rows.")
    target = choose_target(columns, target)
    wanted = split_names(features)
    if wanted is None:
        wanted = [c for c in columns if c != target]
    else:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataError(
                f"feature column '{missing[0]}' not found; available: {', '.join(columns)}.",
                "Check --features.",
            )
        if target in wanted:
            raise DataError(f"column '{target}' is the target and cannot also be a feature.")
        if len(set(wanted)) != len(wanted):
            dup = next(c for c in wanted if wanted.count(c) > 1)
            raise DataError(f"feature column '{dup}' is listed twice in --features.")
    if intercept and INTERCEPT in wanted:
        raise DataError(
            f"a feature column is named '{INTERCEPT}', which clashes with the intercept.",
            "Rename it, or use --no-intercept.",
        )
    if not wanted and not intercept:
        raise DataError("there are no features and no intercept: nothing to fit.")

    _check_missing(frame, [target, *wanted])
    X, names = design_matrix(frame, describe_design(wanted, intercept))
    encoded = family.encode_target(frame[target].to_numpy(), target)
    return Dataset(X, encoded.y, names, target, encoded.levels, encoded.note, intercept)


#: The kinds of design description :func:`design_matrix` can build (and a saved model may carry).
DESIGN_KINDS = ("columns",)


def describe_design(columns: Sequence[str], intercept: bool) -> dict[str, Any]:
    """How a design matrix is built from a table, as a JSON-ready description.

    ``{"kind": "columns", "columns": [...], "intercept": bool}``: numeric columns taken by name, in
    order, after a column of ones when ``intercept``. A saved model keeps this description under
    ``design`` so that prediction builds its design exactly as the fit did.
    """
    return {"kind": "columns", "columns": list(columns), "intercept": bool(intercept)}


def design_matrix(frame: "pd.DataFrame", design: dict[str, Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Build the design matrix described by ``design`` (see :func:`describe_design`) from a table.

    The one place where a table becomes a design matrix, for fitting and for prediction alike.

    Returns
    -------
    X : ndarray of shape (n_obs, n_features)
        float64; column 0 is the intercept when the design has one.
    feature_names : tuple of str
        A name per column of ``X`` (``intercept`` first when present).

    Raises
    ------
    DataError
        A column is missing, has missing, non-numeric or infinite values; or the design's kind is
        not one this version builds.
    """
    kind = design.get("kind")
    if kind != "columns":
        raise DataError(
            f"unknown design kind '{kind}'; this version of mlefit builds: {', '.join(DESIGN_KINDS)}."
        )
    columns, intercept = [str(c) for c in design["columns"]], bool(design["intercept"])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"feature column '{missing[0]}' not found; the model needs {', '.join(columns)} "
            f"and the data have {', '.join(map(str, frame.columns))}."
        )
    _check_missing(frame, columns)
    for col in columns:
        _check_numeric(frame[col], col)
    offset = 1 if intercept else 0
    X = np.empty((frame.shape[0], len(columns) + offset), dtype=np.float64)
    if intercept:
        X[:, 0] = 1.0
    if columns:
        X[:, offset:] = frame[columns].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(X)):
        bad = next(c for j, c in enumerate(columns) if not np.all(np.isfinite(X[:, j + offset])))
        raise DataError(f"feature column '{bad}' has infinite values.")
    return X, ((INTERCEPT,) if intercept else ()) + tuple(columns)


def dataset_from_arrays(
    X: Any,
    y: Any,
    family: "Family",
    *,
    feature_names: Sequence[str] | None = None,
    intercept: bool = True,
    target: str = "y",
) -> Dataset:
    """Build a Dataset from arrays: ``X`` of shape (n_obs, n_features) without an intercept
    column (one is prepended when ``intercept``), and raw target values ``y``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array; got {X.ndim} dimensions.")
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise DataError(f"y has shape {y.shape} but X has {X.shape[0]} rows.")
    if X.shape[0] == 0:
        raise DataError("the data have no rows.")
    if not np.all(np.isfinite(X)):
        raise DataError("X has missing or infinite values.")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"target '{target}' has {int(np.isnan(y).sum())} missing values.")
    names = list(feature_names) if feature_names is not None else [f"x{j + 1}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise DataError(f"{len(names)} feature names given for {X.shape[1]} columns.")
    if intercept:
        X = np.hstack([np.ones((X.shape[0], 1)), X])
        names = [INTERCEPT, *names]
    encoded = family.encode_target(y, target)
    return Dataset(X, encoded.y, tuple(names), target, encoded.levels, encoded.note, intercept)


def _check_missing(frame: "pd.DataFrame", columns: list[str]) -> None:
    counts = frame[columns].isna().sum()
    bad = counts[counts > 0]
    if len(bad):
        col = bad.index[0]
        first = int(np.flatnonzero(frame[col].isna().to_numpy())[0]) + 1
        others = f" (also: {', '.join(bad.index[1:])})" if len(bad) > 1 else ""
        raise DataError(
            f"column '{col}' has {int(bad.iloc[0])} missing value(s), the first in data row {first}{others}.",
            "Remove or fill those rows.",
        )


def _check_numeric(series: "pd.Series", column: str) -> None:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return
    values = series.astype(str)
    numeric = pd.to_numeric(values, errors="coerce")
    first = int(np.flatnonzero(numeric.isna().to_numpy())[0])
    raise DataError(
        f"feature column '{column}' is not numeric: data row {first + 1} has '{values.iloc[first]}'.",
        "Leave it out with --features, or encode it as numbers.",
    )
