"""From a CSV (a path or standard input) or arrays to a validated design matrix and target.

Every problem with the data raises :class:`~mlefit.errors.DataError` (or ``FamilyError`` for labels)
with one sentence naming the column and what is wrong.
"""

from __future__ import annotations

import io
import re
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
    if isinstance(data, (str, Path)) and str(data) != "-":
        ds = _load_numeric_csv(data, family, target=target, features=features, intercept=intercept)
        if ds is not None:
            return ds
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else read_csv(data)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.shape[0] == 0:
        raise DataError("the data have no rows.")
    target, wanted = _select_columns(columns, target, features, intercept)

    _check_missing(frame, [target, *wanted])
    for col in wanted:
        _check_numeric(frame[col], col)

    encoded = family.encode_target(frame[target].to_numpy(), target)
    n_obs = frame.shape[0]
    offset = 1 if intercept else 0
    X = np.empty((n_obs, len(wanted) + offset), dtype=np.float64, order="F")
    if intercept:
        X[:, 0] = 1.0
    if wanted:
        X[:, offset:] = frame[wanted].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(X)):
        bad = next(c for j, c in enumerate(wanted) if not np.all(np.isfinite(X[:, j + offset])))
        raise DataError(f"feature column '{bad}' has infinite values.")
    names = ((INTERCEPT,) if intercept else ()) + tuple(wanted)
    return Dataset(X, encoded.y, names, target, encoded.levels, encoded.note, intercept)


def _select_columns(
    columns: list[str], target: str | None, features: "str | Sequence[str] | None", intercept: bool
) -> tuple[str, list[str]]:
    """The target column and the feature columns, checked against the table's columns."""
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
    return target, wanted


#: Rows per chunk of the streaming CSV reader: small next to the design matrix, large enough that
#: the per-chunk overhead is negligible.
CSV_CHUNK_ROWS = 1 << 15
#: Files up to this size are read by a small pure-Python reader, in milliseconds, so that a small
#: fit does not pay for importing pandas (about 0.25 s, more than the rest of the fit).
SMALL_CSV_BYTES = 1 << 20


def _load_numeric_csv(
    source: "str | Path",
    family: "Family",
    *,
    target: str | None,
    features: "str | Sequence[str] | None",
    intercept: bool,
) -> Dataset | None:
    """The fast path for a CSV file whose feature columns are all numbers and complete.

    Small files are read by :func:`_read_small_csv`; larger ones by pandas' C parser in chunks,
    every feature column typed float64, straight into one preallocated column-major design
    matrix: no per-value Python objects, no type inference on the features, and no whole-file
    table next to the matrix, so the peak memory is the matrix plus one chunk. Returns None when
    the file is anything but that clean case (a text or boolean feature, a missing or infinite
    value, a target column typed differently from chunk to chunk, an unreadable file), and the
    caller takes the general path, which reads the file as a table and reports precisely what is
    wrong.
    """
    path = Path(source)
    if not path.is_file():
        return None
    read = _read_small_csv if path.stat().st_size <= SMALL_CSV_BYTES else _read_large_csv
    found = read(path, target, features, intercept)
    if found is None:
        return None
    X, values, target, wanted = found
    if intercept:
        X[:, 0] = 1.0
    encoded = family.encode_target(values, target)
    names = ((INTERCEPT,) if intercept else ()) + tuple(wanted)
    return Dataset(X, encoded.y, names, target, encoded.levels, encoded.note, intercept)


def _columns(columns: list[str], target, features, intercept) -> tuple[str, list[str]] | None:
    try:
        return _select_columns(columns, target, features, intercept)
    except DataError:
        return None  # reported by the general path, in its order of checks


class _Rows:
    """Chunks of rows written into one preallocated column-major design matrix (the intercept
    column, if any, is left for the caller), and the target's chunks collected."""

    def __init__(self, path: Path, n_features: int, offset: int):
        self.X = np.empty((_estimate_rows(path), n_features + offset), order="F")
        self.offset, self.n_obs, self.targets = offset, 0, []

    def add(self, columns: list[np.ndarray], target) -> bool:
        """Append a chunk; False (and nothing kept) if a feature value is missing or infinite."""
        m = len(target)
        if self.n_obs + m > self.X.shape[0]:  # the estimate was short: grow (rare)
            bigger = np.empty((2 * (self.n_obs + m), self.X.shape[1]), order="F")
            bigger[: self.n_obs] = self.X[: self.n_obs]
            self.X = bigger
        rows = slice(self.n_obs, self.n_obs + m)
        for j, values in enumerate(columns):
            if not np.all(np.isfinite(values)):
                return False  # the general path says where
            self.X[rows, self.offset + j] = values
        self.targets.append(target)
        self.n_obs += m
        return True

    def matrix(self) -> np.ndarray:
        # Rows past n_obs were never written, so they were never given memory.
        return self.X[: self.n_obs]


def _read_large_csv(path: Path, target, features, intercept):
    """pandas' C parser, in chunks, into the matrix: ``(X, target values, target, features)``."""
    import pandas as pd

    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return None
    chosen = _columns(columns, target, features, intercept)
    if chosen is None:
        return None
    target, wanted = chosen
    rows = _Rows(path, len(wanted), 1 if intercept else 0)
    try:
        reader = pd.read_csv(
            path, usecols=[target, *wanted], dtype={c: np.float64 for c in wanted},
            chunksize=CSV_CHUNK_ROWS, engine="c",
        )
        with reader:
            for chunk in reader:
                features_ = [chunk[c].to_numpy(dtype=np.float64) for c in wanted]
                if not rows.add(features_, chunk[target].to_numpy()):
                    return None
    except (ValueError, TypeError, pd.errors.ParserError, UnicodeDecodeError):
        return None  # a feature that is not a number, or a malformed file
    pieces = rows.targets
    if rows.n_obs == 0 or len({_kind(p) for p in pieces}) != 1:
        return None
    values = np.concatenate(pieces)
    rows.targets = pieces = None
    if values.dtype.kind in "fO" and pd.isna(values).any():
        return None
    return rows.matrix(), values, target, wanted


def _plain_header(header: list[str]) -> bool:
    """Distinct, non-empty names without surrounding spaces: a header pandas reads as written."""
    return (
        len(set(header)) == len(header)
        and all(name and name == name.strip() for name in header)
        and not header[0].startswith("\ufeff")
    )


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
#: Text that pandas reads as missing or as a boolean: a small file holding any of it in its
#: target column goes to the general path, so that both paths read every file alike.
_PANDAS_SPECIAL = frozenset(
    "#N/A|#N/A N/A|#NA|-1.#IND|-1.#QNAN|-NaN|-nan|1.#IND|1.#QNAN|<NA>|N/A|NA|NULL|NaN|None|n/a|nan|null"
    "|true|false|True|False|TRUE|FALSE".split("|")
)


def _read_small_csv(path: Path, target, features, intercept):
    """A small file, read with the csv module, accepted only when pandas would read it the same
    way: a plain header of distinct names, every row complete, features written as plain decimal
    numbers, and a target of integers, numbers or plain text. Anything else returns None."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(rows) < 2:
        return None
    header, body = rows[0], rows[1:]
    if not _plain_header(header) or any(len(row) != len(header) for row in body):
        return None
    chosen = _columns(header, target, features, intercept)
    if chosen is None:
        return None
    target, wanted = chosen
    index = {name: j for j, name in enumerate(header)}
    offset = 1 if intercept else 0
    X = np.empty((len(body), len(wanted) + offset), order="F")
    number = _NUMBER.fullmatch
    for j, col in enumerate(wanted):
        tokens = [row[index[col]] for row in body]
        if not all(map(number, tokens)):
            return None
        X[:, offset + j] = np.array(tokens, dtype=np.float64)
    if not np.all(np.isfinite(X[:, offset:])):
        return None  # a number too large for float64: the general path reports it
    tokens = [row[index[target]] for row in body]
    if all(map(_INTEGER.fullmatch, tokens)):
        ints = [int(t) for t in tokens]
        if not all(-(2**63) <= v < 2**63 for v in ints):
            return None
        values = np.array(ints, dtype=np.int64)
    elif all(map(number, tokens)):
        values = np.array(tokens, dtype=np.float64)
    elif any(not t or t != t.strip() or t[0] == "+" or t in _PANDAS_SPECIAL for t in tokens):
        return None
    else:
        values = np.array(tokens, dtype=object)
    return X, values, target, wanted


def _kind(values: np.ndarray) -> str:
    """Integers and floats read alike (as the whole column would be); anything else as itself."""
    return "number" if values.dtype.kind in "iuf" else values.dtype.kind


def _estimate_rows(path: Path, head_bytes: int = 1 << 20) -> int:
    """A generous estimate of the data rows in a CSV file, from the line length in its head."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(head_bytes)
    lines = head.count(b"\n") + 1
    estimate = lines if len(head) >= size else int(size * lines / max(len(head), 1))
    return int(1.25 * estimate) + 64


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
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"target '{target}' has {int(np.isnan(y).sum())} missing values.")
    names = list(feature_names) if feature_names is not None else [f"x{j + 1}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise DataError(f"{len(names)} feature names given for {X.shape[1]} columns.")
    if intercept:
        names = [INTERCEPT, *names]
    X = design_matrix(X, intercept)
    encoded = family.encode_target(y, target)
    return Dataset(X, encoded.y, tuple(names), target, encoded.levels, encoded.note, intercept)


def design_matrix(X: np.ndarray, intercept: bool) -> np.ndarray:
    """``X`` as the fitting code wants it: float64, column-major (Fortran order), with a leading
    column of ones when ``intercept``; DataError if a value is missing or infinite.

    Column-major because the families scale the rows of ``X`` (``X * h[:, None]``) on every
    evaluation: with each column contiguous that is a long, vectorised loop per column rather
    than a short one per row. The copy goes in blocks of rows small enough for both sides to stay
    in cache (3-4x faster than one transposing copy), and checks each block while it is there.
    """
    offset = 1 if intercept else 0
    if not intercept and X.flags.f_contiguous:
        if not np.all(np.isfinite(X)):
            raise DataError("X has missing or infinite values.")
        return X
    out = np.empty((X.shape[0], X.shape[1] + offset), dtype=np.float64, order="F")
    if intercept:
        out[:, 0] = 1.0
    rows = 512
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows]
        out[start : start + rows, offset:] = block
        if not np.all(np.isfinite(block)):
            raise DataError("X has missing or infinite values.")
    return out


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
