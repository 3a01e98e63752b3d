"""From a CSV (a path or standard input) or arrays to a validated design matrix and target.

Every problem with the data raises :class:`~mlefit.errors.DataError` (or ``FamilyError`` for labels)
with one sentence naming the column and what is wrong.

Features are numeric columns as they are, and text columns one-hot encoded against a reference
level (the first in sorted order), named ``column[level]``; or a Wilkinson formula built by
formulaic (``--formula``). Either way the design is recorded as a small JSON-ready description
(:attr:`Dataset.design`) from which :func:`design_matrix` rebuilds the same columns for new data.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import csvformat, formula_check
from .csvformat import CsvHeader
from .errors import DataError, ModelError, UsageError
from .readers import csvfast

if TYPE_CHECKING:
    import pandas as pd

    from .families.base import Family

INTERCEPT = "intercept"
#: The kinds of design description :func:`design_matrix` rebuilds (and a saved model may carry).
DESIGN_KINDS = ("columns", "formula")

#: The design description's type of a text column one-hot encoded against its first level: the value
#: model files have carried since format 1 (a column type, not the family of the same name).
ONE_HOT_TYPE = "categorical"

#: A text column with more distinct values than this is not one-hot encoded (it looks like an id).
MAX_LEVELS = 1000


@dataclass(frozen=True, eq=False)
class Dataset:
    """A design matrix and encoded target ready for a family.

    Attributes
    ----------
    X : ndarray of shape (n_obs, n_features)
        float64; column 0 is the intercept when ``intercept`` is true. With ``ones``, the design's
        columns after its column of ones (which is not stored), any layout.
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
        Frequency weights: a row of weight w counts as w identical rows.
    weights_name : str or None
        The column the weights came from.
    n_dropped : int
        Rows dropped for missing values (``dropna``).
    design : dict or None
        How the design was built, JSON-ready; :func:`design_matrix` rebuilds it for new data.
    X_lo : ndarray of shape (n_obs, n_features) or None
        A low-order part of the design: the exact columns are ``X + X_lo`` (double-double). Set by
        a formula whose terms are integer powers of a numeric column (``poly(x, 3, raw=True)``,
        ``I(x**2)``, ``{x**3}``), zero in every other column; None when every column is exact in
        float64. The gaussian closed form uses it (see :func:`exact_powers`); the other families
        and the optimisers use ``X`` alone.
    offset : ndarray of shape (n_obs,) or None
        Added to each row's linear predictor: the offset column plus the log of the exposure.
    offset_name, exposure_name : str or None
        The columns the offset came from.
    separator, separator_detected : str or None, bool
        The CSV's separator (None for a table or arrays), and whether it was detected from the
        header rather than given or the default comma.
    ones : bool
        The design is a column of ones followed by ``X``, the ones not stored (arrays given with an
        intercept: the copy that would add the column is spared; see
        ``mlefit.engines.memory.MemoryRows``).
    ranges : ndarray of shape (n_features,) or None
        Each design column's largest magnitude, when known (arrays: from the check of their values).
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target: str
    levels: tuple | None = None
    target_note: str | None = None
    intercept: bool = True
    weights: np.ndarray | None = None
    weights_name: str | None = None
    n_dropped: int = 0
    design: dict | None = None
    X_lo: np.ndarray | None = None
    offset: np.ndarray | None = None
    offset_name: str | None = None
    exposure_name: str | None = None
    separator: str | None = None
    separator_detected: bool = False
    ones: bool = False
    ranges: np.ndarray | None = None

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]


def read_csv(source: "str | Path | io.TextIOBase", sep: str | None = None) -> "pd.DataFrame":
    """Read a CSV from a path, ``-`` (standard input) or an open text stream (see :func:`read_table`)."""
    return read_table(source, sep)[0]


def read_table(source: "str | Path | io.TextIOBase", sep: str | None = None) -> "tuple[pd.DataFrame, CsvHeader]":
    """Read a CSV from a path, ``-`` (standard input) or an open text stream: the table and its
    header (:func:`mlefit.csvformat.parse_header`: the separator, ``sep`` or detected, and the
    names, refused when one appears twice)."""
    import pandas as pd

    sep = csvformat.check_sep(sep)
    name = csvformat.describe(source) if isinstance(source, (str, Path)) else "the data"
    if source == "-":
        header, source = csvformat.stdin_with_header(sep)
    elif isinstance(source, (str, Path)):
        header = csvformat.read_header(source, sep)
    else:
        text = source.read()
        header = csvformat.parse_header(io.StringIO(text, newline=""), sep, name)
        source = io.StringIO(text)
    try:
        frame = numbers_beyond_range(pd.read_csv(source, sep=header.sep, float_precision=FLOAT_PRECISION))
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{name} is not a readable CSV file ({first}).") from None
    if frame.shape[0] == 0:
        raise DataError(f"{name} has a header but no data rows.")
    return frame, header


#: pandas' C parser converts numbers to the nearest float64 only in its "round_trip" mode (the
#: default of pandas 2 can be off in the last bit on 17-digit numbers): the same values as Python's
#: float() and the small reader's, with every version of pandas.
FLOAT_PRECISION = "round_trip"


def numbers_beyond_range(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``frame`` with each text column whose values are all numbers, some of them beyond float64's
    range (``1e999``), read as the numbers they are (infinite there, which the checks then name):
    pandas 2 reads such a column as text, pandas 3 as numbers."""
    import pandas as pd

    for col in frame.columns[frame.dtypes == object]:
        series = frame[col]
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        rejected = np.flatnonzero(np.isnan(numbers) & series.notna().to_numpy())
        beyond = []
        for i in rejected:  # stops at the first word: a text column costs one try
            try:
                value = float(series.iloc[i])
            except (TypeError, ValueError):
                break
            if not np.isinf(value):
                break
            beyond.append(value)
        if rejected.size and len(beyond) == rejected.size:
            numbers[rejected] = beyond
            frame[col] = numbers
    return frame


def column_names(data: Any, sep: str | None) -> list[str]:
    """The column names of a table or of a CSV file's header (DataError when there is no such file)."""
    if isinstance(data, (str, Path)):
        return list(csvformat.read_header(data, csvformat.check_sep(sep)).names)
    if hasattr(data, "columns"):  # a DataFrame (pandas is not imported for a file)
        return [str(c) for c in data.columns]
    raise UsageError("no data: give a table or a CSV path.")


@contextmanager
def stdin_as_file(data: Any):
    """``data``, or for ``"-"`` a temporary file holding standard input (removed afterwards), for a
    caller that reads the header's names before the rows (a text model)."""
    if not (isinstance(data, str) and data == "-"):
        yield data
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlefit-stdin-") as folder:
        path = Path(folder) / "stdin.csv"
        buffer = getattr(sys.stdin, "buffer", None)
        with open(path, "wb") as out:
            if buffer is None:  # a text stream put in place of sys.stdin
                out.write(sys.stdin.read().encode("utf-8"))
            else:
                shutil.copyfileobj(buffer, out, 1 << 20)
        if path.stat().st_size == 0:
            raise DataError("standard input is empty: no header and no rows.")
        yield path


def split_names(names: "str | Sequence[str] | None") -> list[str] | None:
    """``"a,b, c"`` or ``["a", "b"]`` to a list of names; None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    out = [n.strip() for n in names if n.strip()]
    return out


def choose_target(columns: list[str], target: str | None, option: str = "--target", what: str = "target column") -> str:
    """The target column: as given, else ``y`` (any case, if unambiguous), else the last column.
    ``option`` and ``what`` name the option and the column in the message when it is not found."""
    if target is not None:
        if target not in columns:
            raise DataError(
                f"{what} '{target}' not found; available: {', '.join(columns)}.",
                f"Use {option} to name one of them.",
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
    weights: str | None = None,
    formula: str | None = None,
    dropna: bool = False,
    offset: str | None = None,
    exposure: str | None = None,
    sep: str | None = None,
    event: str | None = None,
) -> Dataset:
    """Validate a table and build the design matrix and encoded target for ``family``.

    Parameters
    ----------
    weights : str, optional
        A column of frequency weights (non-negative numbers); it is never a feature.
    offset, exposure : str, optional
        A column added to the linear predictor with coefficient 1, and a column of positive
        exposures whose logarithm is added likewise (see :func:`offset_values`).
    formula : str, optional
        ``"y ~ x1 + C(region) + np.log(income)"``: the left side names the target, the right side
        builds the design with formulaic. Excludes ``features``. Terms that are integer powers of
        a numeric column (``poly(x, 10, raw=True)``, ``I(x**2)``) are formed beyond float64
        (``Dataset.X_lo``, see :func:`exact_powers`).
    dropna : bool
        Drop the rows with a missing value in a column the fit uses, instead of raising.
    sep : str, optional
        The CSV's separator, one character; default the one its header shows (``;`` or a tab in
        a header without a comma, see :func:`mlefit.csvformat.detect_sep`), else a comma.
    event : str, optional
        For a family whose rows may be right-censored: a column of 1 (or true) for an observed
        event and 0 (false) for a censored row (see :func:`event_values`).
    """
    sep = csvformat.check_sep(sep)
    roles = {"weights": weights, "offset": offset, "exposure": exposure, "event": event}
    plain = all(v is None for v in roles.values())
    if isinstance(data, (str, Path)) and str(data) != "-" and plain and formula is None:
        header = csvformat.read_header(data, sep)
        ds = _load_numeric_csv(data, family, target=target, features=features, intercept=intercept, header=header)
        if ds is not None:
            return ds
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _table_dataset(data, family, target, features, intercept, roles, formula, dropna)
    frame, header = read_table(data, sep)
    ds = _table_dataset(frame, family, target, features, intercept, roles, formula, dropna)
    return replace(ds, separator=header.sep, separator_detected=header.detected)


def _table_dataset(frame, family, target, features, intercept, roles, formula, dropna) -> Dataset:
    """:func:`load_dataset` of a table in memory; ``roles``: the weights, offset, exposure and event
    columns."""
    weights, offset, exposure, event = roles["weights"], roles["offset"], roles["exposure"], roles["event"]
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if frame.shape[0] == 0:
        raise DataError("the data have no rows.")
    if formula is not None:
        return _formula_dataset(
            frame, family, formula, target=target, features=features, intercept=intercept,
            roles=roles, dropna=dropna,
        )
    target, wanted = select_columns(columns, target, features, intercept, roles)
    extra = [c for c in roles.values() if c is not None]
    frame, n_dropped, rows = _missing(frame, [target, *wanted, *extra], dropna)
    w = check_weights(frame[weights], weights, rows) if weights else None
    o = offset_values(frame, offset, exposure, rows)
    ev = event_values(frame[event], event, rows) if event else None
    encoded = family.encode(frame[target].to_numpy(), target, rows, event=ev)
    design = describe_columns(frame, wanted, intercept, rows)
    X = build_columns(design, frame, rows)
    return Dataset(
        X, encoded.y, tuple(design["features"]), target, encoded.levels, encoded.note, intercept,
        w, weights, n_dropped, design, offset=o, offset_name=offset, exposure_name=exposure,
    )


def select_columns(
    columns: list[str], target: str | None, features: "str | Sequence[str] | None", intercept: bool,
    roles: "dict[str, str | None] | None" = None,
) -> tuple[str, list[str]]:
    """The target column and the feature columns, checked against the table's columns.

    ``roles`` names the columns with another job, ``{"weights": "w", "offset": "o", ...}`` (None
    values ignored): each must exist, and none is the target or a feature.
    """
    roles = {role: name for role, name in (roles or {}).items() if name is not None}
    for role, name in roles.items():
        if name not in columns:
            raise DataError(
                f"{role} column '{name}' not found; available: {', '.join(columns)}.",
                f"Check --{role}.",
            )
    taken = set(roles.values())
    if len(taken) < len(roles):
        name = next(n for n in roles.values() if list(roles.values()).count(n) > 1)
        both = [r for r, n in roles.items() if n == name]
        raise DataError(f"column '{name}' cannot be both the {both[0]} and the {both[1]}.")
    target = choose_target([c for c in columns if c not in taken], target)
    for role, name in roles.items():
        if target == name:
            raise DataError(f"column '{target}' is the target and cannot also be the {role}.")
    wanted = split_names(features)
    if wanted is None:
        wanted = [c for c in columns if c != target and c not in taken]
    else:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataError(
                f"feature column '{missing[0]}' not found; available: {', '.join(columns)}.",
                "Check --features.",
            )
        if target in wanted:
            raise DataError(f"column '{target}' is the target and cannot also be a feature.")
        for role, name in roles.items():
            if name in wanted:
                raise DataError(f"column '{name}' holds the {role} and cannot also be a feature.")
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


#: Bytes per piece of the parallel CSV reader: enough pieces for the threads to share the work
#: evenly when the machine is busy, few enough that starting a reader per piece costs nothing.
CSV_PIECE_BYTES = 1 << 25
#: Rows per chunk within a piece: each thread's parse buffers (about 11 MB at 21 columns) stay small
#: next to the design matrix, and the per-chunk work done holding the GIL (a DataFrame per chunk)
#: is rare enough not to hold the other threads back (1 << 14 rows: 0.05-0.13 s slower on 1M rows).
CSV_CHUNK_ROWS = 1 << 16
#: Bytes per piece when pyarrow parses (:func:`_read_arrow_csv`): each thread holds a piece's text
#: and its columns at once, about 16 MB at this size.
ARROW_PIECE_BYTES = 1 << 23
#: At most this many parsing threads (each holds one piece's buffers).
CSV_MAX_WORKERS = 4
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
    header: CsvHeader | None = None,
) -> Dataset | None:
    """The fast path for a CSV file whose feature columns are all numbers and complete.

    Small files are read by :func:`_read_small_csv`; larger ones by :func:`_read_arrow_csv` when
    pyarrow is installed and reads them plainly, else by :func:`_read_large_csv`: pandas' C parser on pieces of the file in parallel threads, every feature column typed
    float64, straight into one preallocated row-major design matrix: no per-value Python
    objects, no type inference on the features, and no whole-file table next to the matrix, so the
    peak memory is the matrix plus one piece per thread. Returns None when the file is anything
    but that clean case (a text or boolean feature, a missing or infinite value, a target column
    typed differently from piece to piece, a blank or ragged line, an unreadable file), and the
    caller takes the general path, which reads the file as a table and reports precisely what is
    wrong.
    """
    path = Path(source)
    if not path.is_file():
        return None
    header = header or csvformat.read_header(path)
    if path.stat().st_size <= SMALL_CSV_BYTES:
        found = _read_small_csv(path, target, features, intercept, header)
    else:
        found = _read_arrow_csv(path, target, features, intercept, header)
        if found is None:
            found = _read_large_csv(path, target, features, intercept, header)
    if found is None:
        return None
    X, values, target, wanted = found
    encoded = family.encode_target(values, target)
    names = ((INTERCEPT,) if intercept else ()) + tuple(wanted)
    design = {
        "kind": "columns", "intercept": intercept,
        "columns": [{"column": c, "type": "numeric"} for c in wanted], "features": list(names),
    }
    return Dataset(
        X, encoded.y, names, target, encoded.levels, encoded.note, intercept, design=design,
        separator=header.sep, separator_detected=header.detected,
    )


def _columns(columns: list[str], target, features, intercept) -> tuple[str, list[str]] | None:
    try:
        return select_columns(columns, target, features, intercept)
    except DataError:
        return None  # reported by the general path, in its order of checks


def _read_arrow_csv(path: Path, target, features, intercept, header: CsvHeader):
    """:func:`_read_large_csv` with pyarrow's CSV reader for pandas' (see
    :mod:`mlefit.readers.csvfast`): ``(X, target values, target, features)``, or None when pyarrow
    is not installed, the header's names are not plain, or any piece is not plainly numeric (the
    caller then reads the file with pandas).

    The pieces are cut at line ends (:func:`_cuts`); each is read whole into one buffer
    (:data:`ARROW_PIECE_BYTES`, small next to the matrix) and parsed by pyarrow on its thread,
    without the GIL, every line one row (a blank line refuses the piece). The rows are not counted
    beforehand: the matrix is the first rows of room reserved for as many as the file could hold,
    and each piece writes its rows after those of the pieces before it
    (:mod:`mlefit.readers.rowspace`). ``X`` is row-major, its column of ones stored: the fit
    evaluates its blocks in place (1,000,000 x 21: 0.21 s, against 0.25 s column-major). pandas is
    not imported.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .readers import rowspace

    names, sep = list(header.names), header.sep
    if not csvfast.plain_names(names):
        return None
    with ThreadPoolExecutor(1) as pool:
        cuts = pool.submit(_cuts, path, ARROW_PIECE_BYTES, sep)  # while pyarrow imports
        ready = csvfast.available()
        try:
            cuts = cuts.result()
        except (OSError, ValueError):
            return None
    chosen = _columns(names, target, features, intercept)
    if not ready or chosen is None or cuts is None or any(n != len(names) for n in cuts[1]):
        return None
    target, wanted = chosen
    bounds = cuts[0]
    offset = 1 if intercept else 0
    # A line of the plain case holds a separator or line end after each field and at least one
    # character in each field read (the rest may be empty); the last line lacks its line end.
    most = (bounds[-1] - bounds[0] + 1) // (len(names) + len(wanted) + 1) + 1
    room = rowspace.reserve_rows(most, len(wanted) + offset)
    if room is None:
        return None
    starts = rowspace.RowStarts(len(bounds) - 1)
    targets: list[np.ndarray | None] = [None] * (len(bounds) - 1)

    def parse(i: int) -> None:
        columns = None
        try:
            columns = _parse_piece(path, bounds[i], bounds[i + 1], names, wanted, target, sep)
        finally:  # the pieces after this one wait for its rows
            rows = None if columns is None else len(columns[target])
            first = starts.take(i, rows)
        if first is None or first + rows > most:
            return
        block = room[first:first + rows]
        rowspace.populate(block)
        if intercept:
            block[:, 0] = 1.0
        for j, col in enumerate(wanted):
            block[:, offset + j] = columns.pop(col)
        targets[i] = columns[target]

    try:
        _in_threads(parse, len(bounds) - 1)
    finally:
        _release_free_memory()
    n_rows = starts.total  # None, or beyond the room, when a piece wrote nothing (its target None)
    if n_rows is None or n_rows > most or len({value_kind(p) for p in targets}) != 1:
        return None
    return room[:n_rows], np.concatenate(targets), target, wanted


def _parse_piece(path: Path, begin: int, end: int, names, wanted, target, sep) -> dict[str, np.ndarray] | None:
    """pyarrow's columns of bytes ``begin:end`` of the file (:func:`mlefit.readers.csvfast.parse`),
    every line one row: None when a line is blank, or when a quoted value holds a line end (the
    table path reads those files as pandas does; a cut may fall within the quotes)."""
    text = bytearray(end - begin)
    try:
        with path.open("rb", buffering=0) as fh:
            fh.seek(begin)
            if fh.readinto(text) != len(text):
                return None
    except OSError:
        return None
    columns = csvfast.parse(text, names, wanted, target, sep, skip_blank=False)
    if columns is not None and b'"' in text:  # a quoted line end is part of the value to pyarrow
        lines = int(np.count_nonzero(np.frombuffer(text, np.uint8) == ord("\n"))) + (not text.endswith(b"\n"))
        if len(columns[target]) != lines:
            return None
    return columns


def _read_large_csv(path: Path, target, features, intercept, header: CsvHeader | None = None):
    """pandas' C parser on byte ranges of the file, in threads, into the matrix:
    ``(X, target values, target, features)``, or None.

    The data rows are cut into pieces of about :data:`CSV_PIECE_BYTES` at line ends and the
    newlines of each counted first (numpy on blocks of it, without the GIL), so every piece knows
    its rows in the matrix before it is parsed: the threads write straight into one preallocated
    row-major matrix, and no piece waits for another. Each piece is read by pandas' C parser
    in chunks of :data:`CSV_CHUNK_ROWS` rows (features typed float64; the parser releases the GIL
    while it tokenises and converts, so the pieces go in parallel). Reading a piece as a file of
    its own is only exact when every line is one data row, so anything else (a blank or ragged
    line, a quoted line end, a piece whose rows disagree with its newlines) returns None and the
    table path reads the file.
    """
    from concurrent.futures import ThreadPoolExecutor

    header = header or csvformat.read_header(path)
    sep = header.sep
    with ThreadPoolExecutor(1) as pool:
        # the rows are counted while pandas imports (a fifth of a second, mostly holding the GIL)
        layout = pool.submit(_pieces, path, CSV_PIECE_BYTES, sep)
        import pandas as pd

        try:
            # pandas' names (a blank one numbered as the table path numbers it); duplicates were
            # refused from the header as written
            columns = [str(c) for c in pd.read_csv(path, nrows=0, sep=sep).columns]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            columns = None
        try:
            layout = layout.result()
        except (OSError, ValueError):
            return None
    chosen = None if columns is None else _columns(columns, target, features, intercept)
    if chosen is None or layout is None or any(n != len(columns) for n in layout[2]):
        return None  # read alone, a piece whose first line is longer would make it the row index
    target, wanted = chosen
    bounds, offsets, _ = layout
    offset = 1 if intercept else 0
    X = _empty_matrix(offsets[-1], len(wanted) + offset, order="C")  # as _read_arrow_csv's
    X[:, :offset] = 1.0
    used = None if len(wanted) + 1 == len(columns) else [target, *wanted]
    dtype = {c: np.float64 for c in wanted}
    targets: list[list[np.ndarray]] = [[] for _ in range(len(bounds) - 1)]
    failed = threading.Event()

    def parse(i: int) -> None:
        if failed.is_set():
            return
        row, stop = offsets[i], offsets[i + 1]
        try:
            with _ByteRange(path, bounds[i], bounds[i + 1]) as source, pd.read_csv(
                source, sep=sep, header=None, names=columns, usecols=used, dtype=dtype, engine="c",
                chunksize=CSV_CHUNK_ROWS, float_precision=FLOAT_PRECISION,
            ) as reader:
                for chunk in reader:
                    m = len(chunk)
                    if failed.is_set() or row + m > stop:
                        return failed.set()  # more rows than newlines: a line end within a line
                    for j, col in enumerate(wanted):
                        values = chunk[col].to_numpy(dtype=np.float64)
                        if not np.all(np.isfinite(values)):
                            return failed.set()  # the table path says where
                        X[row : row + m, offset + j] = values
                    targets[i].append(chunk[target].to_numpy())
                    row += m
        except (ValueError, TypeError, pd.errors.ParserError, UnicodeDecodeError, OSError):
            return failed.set()  # a feature that is not a number, or a malformed line
        if row != stop:
            failed.set()  # a blank line, or a quoted line end: the table path reads the file

    try:
        _in_threads(parse, len(bounds) - 1)
    finally:
        _release_free_memory()
    pieces = [p for piece in targets for p in piece]
    if failed.is_set() or len({value_kind(p) for p in pieces}) != 1:
        return None
    values = np.concatenate(pieces)
    targets = pieces = None
    if values.dtype.kind in "fO" and pd.isna(values).any():
        return None
    return X, values, target, wanted


def _empty_matrix(n_rows: int, n_columns: int, order: str = "F") -> np.ndarray:
    """``np.empty((n_rows, n_columns), order=order)``, in an anonymous memory map of its own.

    numpy asks the kernel for transparent huge pages for large arrays, and where faulting those in
    is slow (on virtual machines especially) the first write to a fresh 168 MB matrix took 0.42 s
    with them against 0.06 s with ordinary pages, most of the cost of a CSV read after parsing.
    Where the system has ``MAP_POPULATE`` (Linux) the kernel maps every page at once, in one call,
    instead of one page fault per 4 KB on first write: for 168 MB, 0.06 s to map and 0.014 s to
    write, against 0.13 s of faulting writes; releasing it took 0.012 s instead of 0.029 s. The
    parsing threads then write into memory that is already there (measured with the pyarrow
    reader, which now maps its rows so itself: a 1,000,000-row, 21-column CSV fitted from the
    command line in 1.14 s instead of 1.23 s). The map is released with the last view of the array.
    """
    import mmap

    size = n_rows * n_columns
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate:
        memory = mmap.mmap(-1, max(size, 1) * 8, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    else:
        memory = mmap.mmap(-1, max(size, 1) * 8)
    return np.frombuffer(memory, dtype=np.float64, count=size).reshape((n_rows, n_columns), order=order)


class _ByteRange(io.RawIOBase):
    """Bytes ``start:stop`` of a file, read as a file of their own."""

    def __init__(self, path: Path, start: int, stop: int):
        super().__init__()
        self._file = path.open("rb", buffering=0)
        self._file.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        with memoryview(buffer) as view:
            got = self._file.readinto(view[:n]) or 0
        self._left -= got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def _release_free_memory() -> None:
    """Hand the parser's freed buffers back to the operating system (glibc only).

    glibc keeps what the parsing threads freed in their own arenas, some tens of MB that would
    otherwise stay resident through the fit and add to the peak memory; ``malloc_trim`` returns
    it. Elsewhere (other C libraries, other systems) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _workers() -> int:
    """Threads for parsing: the CPUs this process may use, at most :data:`CSV_MAX_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, CSV_MAX_WORKERS))


def _in_threads(work, n_tasks: int) -> None:
    """``work(i)`` for i in range(n_tasks), on :func:`_workers` threads (here, for one); the first
    exception raised by any of them is raised here."""
    workers = min(_workers(), n_tasks)
    if workers <= 1:
        for i in range(n_tasks):
            work(i)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="mlefit-csv") as pool:
        for _ in pool.map(work, range(n_tasks)):
            pass


def _pieces(path: Path, piece_bytes: int, sep: str = ",") -> tuple[list[int], list[int], list[int]] | None:
    """Cut the data rows of a CSV file into pieces at line ends (:func:`_cuts`) and count their
    rows: ``(bounds, offsets, widths)``, with the matrix rows ``offsets[i]:offsets[i + 1]`` of piece
    ``i`` (one row per newline; the last row may lack its newline). None as :func:`_cuts`.

    The file is read in blocks into a buffer per thread, not memory-mapped: the pages of a map
    count in the process's resident memory as long as it is mapped.
    """
    cuts = _cuts(path, piece_bytes, sep)
    if cuts is None:
        return None
    bounds, widths = cuts
    n_pieces = len(bounds) - 1
    counts = [0] * n_pieces

    def count(i: int) -> None:
        # a block at a time into one buffer: no copy of the file is ever whole in memory
        buffer = bytearray(min(1 << 22, bounds[i + 1] - bounds[i]))
        equal = np.empty(len(buffer), dtype=bool)
        with path.open("rb", buffering=0) as f:
            f.seek(bounds[i])
            left = bounds[i + 1] - bounds[i]
            while left > 0:
                with memoryview(buffer) as view:
                    got = f.readinto(view[: min(left, len(buffer))])
                if not got:
                    raise OSError(f"{path} changed while it was read")
                left -= got
                block = np.frombuffer(buffer, np.uint8, got)
                counts[i] += int(np.count_nonzero(np.equal(block, ord("\n"), out=equal[:got])))

    _in_threads(count, n_pieces)
    counts[-1] += 1  # the last row's newline was dropped (see _cuts)
    return bounds, np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist(), widths


def _cuts(path: Path, piece_bytes: int, sep: str = ",") -> tuple[list[int], list[int]] | None:
    """Cut the data rows of a CSV file into pieces of about ``piece_bytes`` at line ends:
    ``(bounds, widths)``, the byte ranges ``bounds[i]:bounds[i + 1]`` of piece ``i`` (trailing line
    ends dropped: the last piece's last row lacks its newline) and the number of fields in the
    first line of each. None when there are no data rows or the first line is blank. (A cut within
    a quoted field is found by the parser: the piece before it ends inside quotes.) Reads only
    near the cuts."""
    import csv

    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header = fh.readline()
        if not header.endswith(b"\n") or not header.strip(b"\r\n") or header.count(b'"') % 2:
            return None  # one line, a blank first line, or a header that spans lines
        begin, end = len(header), size
        while end > begin:  # trailing line ends (a blank last line) hold no rows
            fh.seek(max(begin, end - 4096))
            tail = fh.read(end - fh.tell())
            end -= len(tail) - len(tail.rstrip(b"\r\n"))
            if tail.rstrip(b"\r\n"):
                break
        if end == begin:
            return None
        bounds = [begin]
        while bounds[-1] + piece_bytes < end:
            cut = _next_line(fh, bounds[-1] + piece_bytes - 1, end)
            if cut >= end:
                break
            bounds.append(cut)
        bounds.append(end)
        firsts = []
        for start in bounds[:-1]:
            fh.seek(start)
            firsts.append(fh.readline(1 << 20))
    try:
        widths = [len(next(csv.reader([line.decode("utf-8").rstrip("\r\n")], delimiter=sep), [])) for line in firsts]
    except (UnicodeDecodeError, csv.Error):
        return None
    return bounds, widths


def _next_line(fh, position: int, end: int) -> int:
    """The offset just past the first newline at or after ``position`` (``end`` if none)."""
    fh.seek(position)
    while position < end:
        block = fh.read(min(1 << 16, end - position))
        if not block:
            break
        found = block.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(block)
    return end


def _plain_header(header: list[str]) -> bool:
    """Distinct, non-empty names without surrounding spaces: a header pandas reads as written."""
    return (
        len(set(header)) == len(header)
        and all(name and name == name.strip() for name in header)
        and not header[0].startswith("\ufeff")
    )


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")


def _read_small_csv(path: Path, target, features, intercept, header: CsvHeader | None = None):
    """A small file, read with the csv module, accepted only when pandas would read it the same
    way: a plain header of distinct names, every row complete, features written as plain decimal
    numbers, and a target of integers, numbers or plain text. Anything else returns None."""
    import csv

    header = header or csvformat.read_header(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter=header.sep))
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(rows) < 2:
        return None
    names, body = rows[0], rows[1:]
    if not _plain_header(names) or any(len(row) != len(names) for row in body):
        return None
    chosen = _columns(names, target, features, intercept)
    if chosen is None:
        return None
    target, wanted = chosen
    index = {name: j for j, name in enumerate(names)}
    offset = 1 if intercept else 0
    X = np.empty((len(body), len(wanted) + offset), order="F")
    X[:, :offset] = 1.0
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
    elif any(not t or t != t.strip() or t[0] == "+" or t in csvfast.PANDAS_SPECIAL for t in tokens):
        return None
    else:
        values = np.array(tokens, dtype=object)
    return X, values, target, wanted


def value_kind(values: np.ndarray) -> str:
    """Integers and floats read alike (as the whole column would be); anything else as itself."""
    return "number" if values.dtype.kind in "iuf" else values.dtype.kind


def dataset_from_arrays(
    X: Any,
    y: Any,
    family: "Family",
    *,
    feature_names: Sequence[str] | None = None,
    intercept: bool = True,
    target: str = "y",
    weights: Any = None,
    offset: Any = None,
    exposure: Any = None,
    event: Any = None,
) -> Dataset:
    """Build a Dataset from arrays: ``X`` of shape (n_obs, n_features) without an intercept
    column (one is prepended when ``intercept``), raw target values ``y`` and optional frequency
    ``weights``, ``offset``, positive ``exposure`` and ``event`` indicators of shape (n_obs,)."""
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
    w = None
    if weights is not None:
        import pandas as pd

        w_series = pd.Series(np.asarray(weights))
        if w_series.shape != (X.shape[0],):
            raise DataError(f"weights have shape {w_series.shape} but X has {X.shape[0]} rows.")
        if w_series.isna().any():
            raise DataError(f"weights have {int(w_series.isna().sum())} missing values.")
        w = check_weights(w_series, "weights", np.arange(1, X.shape[0] + 1))
    o = None
    if offset is not None or exposure is not None:
        import pandas as pd

        given = {}
        for name, values in (("offset", offset), ("exposure", exposure)):
            if values is not None:
                values = np.asarray(values)
                if values.shape != (X.shape[0],):
                    raise DataError(f"{name} has shape {values.shape} but X has {X.shape[0]} rows.")
                given[name] = values
        o = offset_values(
            pd.DataFrame(given), "offset" if offset is not None else None,
            "exposure" if exposure is not None else None, np.arange(1, X.shape[0] + 1),
        )
    design = {"kind": "columns", "intercept": intercept, "columns": [{"column": n, "type": "numeric"} for n in names]}
    if intercept:
        names = [INTERCEPT, *names]
    design["features"] = list(names)
    ranges = None
    ones = intercept
    # The column of ones is not stored (see Dataset.ones), except with a wide matrix that is not
    # row-major, which is formed whole (ones_first, see forms_whole); without an intercept a
    # row-major matrix is taken as given (the engine reads its blocks in place, where a
    # column-major copy would be copied back block by block on every pass). The values are checked
    # on the way to the columns' ranges.
    with np.errstate(invalid="ignore"):
        if intercept and forms_whole(X):
            X, top = ones_first(X)
            ones = False
            ranges = np.concatenate([[1.0], top])
        elif intercept:
            ranges = np.concatenate([[1.0], column_range(X)])
        elif X.flags.c_contiguous and not X.flags.f_contiguous:
            ranges = column_range(X)
        else:
            X = as_design_array(X, False)
    if ranges is not None and not np.all(np.isfinite(ranges)):
        raise DataError("X has missing or infinite values.")
    ev = None
    if event is not None:
        import pandas as pd

        values = np.asarray(event)
        if values.shape != (X.shape[0],):
            raise DataError(f"event has shape {values.shape} but X has {X.shape[0]} rows.")
        ev = event_values(pd.Series(values), "event", np.arange(1, X.shape[0] + 1))
    encoded = family.encode(y, target, event=ev)
    return Dataset(
        X, encoded.y, tuple(names), target, encoded.levels, encoded.note, intercept, w,
        None if w is None else "weights", 0, design, offset=o,
        offset_name=None if offset is None else "offset", exposure_name=None if exposure is None else "exposure",
        ones=ones, ranges=ranges,
    )


def as_design_array(X: np.ndarray, intercept: bool) -> np.ndarray:
    """``X`` as the fitting code wants it: float64, column-major (Fortran order), with a leading
    column of ones when ``intercept``; DataError if a value is missing or infinite.

    Column-major because the families scale the rows of ``X`` (``X * h[:, None]``) on every
    evaluation: with each column contiguous that is a long, vectorised loop per column rather
    than a short one per row. The copy goes in blocks of rows small enough for both sides to stay
    in cache (3-4x faster than one transposing copy), and checks each block while it is there;
    runs of blocks are copied on several threads (:mod:`mlefit.parallel`). The copy lives in a
    memory map of ordinary pages (:func:`_empty_matrix`): with numpy's transparent huge pages a
    gaussian fit in the benchmark took 0.23-0.31 s instead of 0.19 s.
    """
    from . import parallel

    offset = 1 if intercept else 0
    if not intercept and X.flags.f_contiguous:
        if not np.all(np.isfinite(X)):
            raise DataError("X has missing or infinite values.")
        return X
    out = _empty_matrix(X.shape[0], X.shape[1] + offset)  # ordinary pages: see _empty_matrix
    rows, run = 512, 512 * 64

    def copy(i: int) -> bool:
        """Copy run ``i`` of rows; whether all its values are finite."""
        if intercept:
            out[i * run : (i + 1) * run, 0] = 1.0
        for start in range(i * run, min((i + 1) * run, X.shape[0]), rows):
            block = X[start : start + rows]
            out[start : start + rows, offset:] = block
            if not np.all(np.isfinite(block)):
                return False
        return True

    if not all(parallel.map_tasks(copy, -(-X.shape[0] // run))):
        raise DataError("X has missing or infinite values.")
    return out


#: Bytes of ``X`` per task of :func:`column_range` (at least RANGE_MIN_ROWS rows): its absolute
#: values are a temporary of that size. 32,768 rows a task whatever the width made one task of a
#: 20,000 x 500 matrix, on one thread, with an 80 MB temporary: 0.10-0.16 s where 4 MB runs take
#: 0.005 s.
RANGE_BYTES = 1 << 22
RANGE_MIN_ROWS = 64
#: From this many design columns on, a design given without its column of ones is copied once
#: into a row-major design with it (:func:`ones_first`, see :func:`forms_whole`) unless it is
#: row-major already.
STORE_FEATURES = 64


def forms_whole(columns: np.ndarray) -> bool:
    """Whether a design whose column of ones is not stored (``columns``: the others) is formed
    whole, with its ones, before its passes: from STORE_FEATURES columns on, when not row-major.

    A pass copies each block of rows with its ones into a buffer that stays in cache. The rows of
    a row-major matrix copy as whole rows, as fast as the pass reads them anyway, so the whole
    design, a first touch of 80-160 MB of new memory that is slow on this machine after other work
    has released its own, is not made: the benchmark's wide bernoulli fits (interleaved with
    scikit-learn's and glum's) took 0.317 s instead of 0.473 s at 100,000 x 201, 0.255 s instead of
    0.312 s at 20,000 x 501, 0.455 s instead of 0.578 s at 10,000 x 1,001. The columns of a
    column-major matrix copy piecewise, and a wide fit's tens of gradient passes would copy them
    every time, so that is formed (20,000 x 501: 0.29 s formed, 0.32 s copied block by block)."""
    return columns.shape[1] + 1 >= STORE_FEATURES and not columns.flags.c_contiguous


def column_range(X: np.ndarray) -> np.ndarray:
    """The largest absolute value of each column of ``X`` (NaN in a column with a missing value),
    from runs of rows on several threads.

    A run of a matrix not column-major has its absolute values folded in halves with
    ``np.maximum`` (whole rows against whole rows, one vectorised loop) rather than reduced along
    the columns: for a row-major matrix of 20 columns ``max(axis=0)`` and ``min(axis=0)`` took
    3x longer (7x on one thread).
    """
    if X.shape[0] == 0:
        return np.zeros(X.shape[1])
    run = max(RANGE_MIN_ROWS, RANGE_BYTES // (8 * max(X.shape[1], 1)))

    def task(i: int) -> np.ndarray:
        part = X[i * run:(i + 1) * run]
        if X.flags.f_contiguous:  # each column's values contiguous: reduced as they are
            return np.maximum(np.abs(part.max(axis=0)), np.abs(part.min(axis=0)))
        return _folded_max(np.abs(part))

    from . import parallel

    with parallel.one_blas_thread():
        parts = parallel.map_tasks(task, -(-X.shape[0] // run))
    return np.maximum.reduce(parts)


def _folded_max(a: np.ndarray) -> np.ndarray:
    """The maximum of each column of ``a`` (overwritten), its rows folded in halves with
    ``np.maximum`` (see :func:`column_range`)."""
    n = a.shape[0]
    while n > 64:
        half = n // 2
        np.maximum(a[:half], a[n - half:n], out=a[:half])
        n -= half
    return np.maximum.reduce(a[:n], axis=0)


def ones_first(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[1, columns]`` as a row-major matrix, and the largest absolute value of each column of
    ``columns`` (NaN in a column with a missing value, as :func:`column_range`): copied in runs of
    rows on several threads, each run's maxima taken from the copy while it is in cache (one read
    of ``columns`` where the check of the values and the copy took two: 20,000 x 500 in 0.011 s
    instead of 0.024 s)."""
    from . import parallel

    n, p = columns.shape
    out = np.empty((n, p + 1))
    run = max(1, (1 << 22) // (8 * (p + 1)))

    def copy(i: int) -> np.ndarray:
        rows = slice(i * run, (i + 1) * run)
        out[rows, 0] = 1.0
        block = out[rows, 1:]
        block[...] = columns[rows]
        return _folded_max(np.abs(block))

    if n == 0:
        return out, np.zeros(p)
    return out, np.maximum.reduce(parallel.map_tasks(copy, -(-n // run)))


# -- missing values, weights ----------------------------------------------------------------------


def _missing(frame: "pd.DataFrame", columns: list[str], dropna: bool):
    """``(frame, n_dropped, row_numbers)``: raise on missing values, or drop their rows.

    ``row_numbers`` are the 1-based data-row numbers of the rows kept, for messages.
    """
    columns = list(dict.fromkeys(columns))
    isna = frame[columns].isna()
    counts = isna.sum()
    bad = counts[counts > 0]
    rows = np.arange(1, frame.shape[0] + 1)
    if not len(bad):
        return frame, 0, rows
    mask = isna.any(axis=1).to_numpy()
    if not dropna:
        col = bad.index[0]
        first = int(np.flatnonzero(isna[col].to_numpy())[0]) + 1
        others = f" (also: {', '.join(f'{c} ({int(bad[c])})' for c in bad.index[1:])})" if len(bad) > 1 else ""
        in_all = f"; {int(mask.sum())} rows in all have a missing value" if len(bad) > 1 else ""
        raise DataError(
            f"column '{col}' has {int(bad.iloc[0])} missing value(s), the first in data row {first}{others}{in_all}.",
            "Remove or fill those rows, or use --dropna to drop them.",
        )
    n_dropped = int(mask.sum())
    if n_dropped == frame.shape[0]:
        raise DataError(
            f"every row has a missing value in {', '.join(bad.index)}: nothing is left after dropping them."
        )
    return frame.iloc[np.flatnonzero(~mask)], n_dropped, rows[~mask]


def numeric_values(series: "pd.Series", what: str, rows: np.ndarray) -> np.ndarray:
    """A column's finite float64 values, or DataError naming ``what`` (e.g. "weights column 'w'")
    and the data row of the first value that is not a number or is infinite."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        values = series.astype(str)
        bad = pd.to_numeric(values, errors="coerce").isna().to_numpy()
        first = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise DataError(f"{what} is not numeric: data row {rows[first]} has '{values.iloc[first]}'.")
    v = series.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(v)):
        first = int(np.flatnonzero(~np.isfinite(v))[0])
        raise DataError(f"{what} has an infinite value in data row {rows[first]}.")
    return v


def check_weights(series: "pd.Series", name: str, rows: np.ndarray, *, all_zero: bool = True) -> np.ndarray:
    """Validated frequency weights: finite numbers >= 0 (not all zero unless ``all_zero`` is False)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        values = series.astype(str)
        bad = pd.to_numeric(values, errors="coerce").isna().to_numpy()
        first = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise DataError(
            f"weights column '{name}' is not numeric: data row {rows[first]} has '{values.iloc[first]}'.",
            "Frequency weights are numbers of 0 or more.",
        )
    w = numeric_values(series, f"weights column '{name}'", rows)
    if np.any(w < 0):
        first = int(np.flatnonzero(w < 0)[0])
        raise DataError(
            f"weights column '{name}' has a negative value ({w[first]:g}) in data row {rows[first]}; "
            "frequency weights must be 0 or more."
        )
    if all_zero and not w.sum() > 0:
        raise DataError(f"weights column '{name}' is zero in every row.")
    return w


def event_values(series: "pd.Series", name: str, rows: np.ndarray) -> np.ndarray:
    """A censoring indicator as booleans: 1 or true for an observed event, 0 or false for a
    right-censored row; DataError naming the first other value and its data row."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        v = series.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~((v == 0) | (v == 1)))
    else:
        text = series.astype(str).str.strip().str.lower().to_numpy(dtype=object)
        v = np.where(np.isin(text, ["1", "true"]), 1.0, np.where(np.isin(text, ["0", "false"]), 0.0, np.nan))
        bad = np.flatnonzero(np.isnan(v))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"event column '{name}' has '{series.iloc[first]}' in data row {rows[first]}; it must be 1 (or true) "
            "for an observed event and 0 (false) for a censored row."
        )
    return v == 1


def offset_values(frame: "pd.DataFrame", offset: str | None, exposure: str | None, rows: np.ndarray) -> np.ndarray | None:
    """Each row's offset: the ``offset`` column plus ``log`` of the ``exposure`` column (positive
    numbers), or None when neither is given."""
    total = None
    if offset is not None:
        total = numeric_values(frame[offset], f"offset column '{offset}'", rows)
    if exposure is not None:
        e = numeric_values(frame[exposure], f"exposure column '{exposure}'", rows)
        if np.any(e <= 0):
            first = int(np.flatnonzero(e <= 0)[0])
            raise DataError(
                f"exposure column '{exposure}' has a value that is not positive ({e[first]:g}) in data row "
                f"{rows[first]}; an exposure is a positive time or size whose log is the offset."
            )
        total = np.log(e) if total is None else total + np.log(e)
    return total


# -- the design: numeric and one-hot columns ------------------------------------------------------


def is_numeric(series: "pd.Series") -> bool:
    import pandas as pd

    return bool(pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series))


def text_values(series: "pd.Series") -> np.ndarray:
    return series.astype(str).to_numpy(dtype=object)


def describe_columns(
    frame: "pd.DataFrame", columns: Sequence[str], intercept: bool, rows: np.ndarray | None = None
) -> dict:
    """The design description of plain columns: numeric as they are, text one-hot encoded.

    Returns ``{"kind": "columns", "intercept": bool, "columns": [...], "features": [...]}``; each
    column entry is ``{"column": name, "type": "numeric"}`` or ``{"column": name, "type":
    "categorical", "levels": [sorted levels]}`` (the first level is the reference and gets no
    column). ``features`` names the design's columns in order.
    """
    import pandas as pd

    rows = np.arange(1, frame.shape[0] + 1) if rows is None else rows
    specs: list[dict] = []
    names = [INTERCEPT] if intercept else []
    for col in columns:
        series = frame[col]
        if is_numeric(series):
            specs.append({"column": col, "type": "numeric"})
            names.append(col)
            continue
        values = text_values(series)
        numeric = pd.to_numeric(pd.Series(values), errors="coerce").notna().to_numpy()
        if numeric.any() and not numeric.all() and 2 * numeric.sum() >= len(values):
            # mostly numbers with a few words: a typo, not a factor
            first = int(np.flatnonzero(~numeric)[0])
            raise DataError(
                f"feature column '{col}' is not numeric: data row {rows[first]} has '{values[first]}'.",
                "Fix or remove those values, or leave the column out with --features.",
            )
        spec, columns = one_hot_spec(col, np.unique(values).tolist())
        specs.append(spec)
        names += columns
    return {"kind": "columns", "intercept": intercept, "columns": specs, "features": names}


def one_hot_spec(col: str, levels: list, *, counted: bool = True) -> tuple[dict, list[str]]:
    """The design entry of a text column with sorted ``levels``, and the names of its one-hot
    columns (``col[level]``, the first level the reference); DataError for a column with one level
    or more than :data:`MAX_LEVELS`. ``counted`` is false when the levels were collected only up to
    the limit (streaming), so their number is not known."""
    if len(levels) < 2:
        raise DataError(
            f"feature column '{col}' has a single value ('{levels[0]}'), so it carries no information.",
            "Leave it out with --features.",
        )
    if len(levels) > MAX_LEVELS:
        many = str(len(levels)) if counted else f"more than {MAX_LEVELS}"
        raise DataError(
            f"feature column '{col}' has {many} distinct text values, too many to one-hot encode "
            f"(at most {MAX_LEVELS}); it looks like an identifier.",
            "Leave it out with --features.",
        )
    return {"column": col, "type": ONE_HOT_TYPE, "levels": levels}, [f"{col}[{level}]" for level in levels[1:]]


def build_columns(design: dict, frame: "pd.DataFrame", rows: np.ndarray | None = None) -> np.ndarray:
    """The design matrix of a ``"columns"`` description for ``frame``."""
    n_obs = frame.shape[0]
    rows = np.arange(1, n_obs + 1) if rows is None else rows
    X = np.empty((n_obs, len(design["features"])), dtype=np.float64)
    j = 0
    if design["intercept"]:
        X[:, 0] = 1.0
        j = 1
    for spec in design["columns"]:
        col = spec["column"]
        series = frame[col]
        if spec["type"] == "numeric":
            _check_numeric(series, col, rows)
            X[:, j] = series.to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(X[:, j])):
                raise DataError(f"feature column '{col}' has infinite values.")
            j += 1
            continue
        levels = np.asarray(spec["levels"], dtype=object)
        values = text_values(series)
        unseen = np.setdiff1d(values, levels)
        if unseen.size:
            shown = ", ".join(f"'{v}'" for v in unseen[:5]) + (", ..." if unseen.size > 5 else "")
            raise DataError(
                f"column '{col}' has level(s) {shown} not seen when the design was built "
                f"(known levels: {', '.join(map(str, levels))}).",
            )
        codes = np.searchsorted(levels, values)
        width = len(levels) - 1
        X[:, j:j + width] = codes[:, None] == np.arange(1, width + 1)
        j += width
    return X


def design_matrix(design: dict, data: "pd.DataFrame | str | Path") -> np.ndarray:
    """Rebuild a fitted design for new data: the same columns, in the same order.

    Parameters
    ----------
    design : dict
        ``Dataset.design`` (or ``FitResult.design``), possibly read back from JSON.
    data : DataFrame or CSV path
        Must hold every column the design uses, without missing values.

    Returns
    -------
    ndarray of shape (n_obs, len(design["features"]))

    Raises
    ------
    DataError
        A missing column, a missing or non-numeric value, or a level not seen in the fit.
    """
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else read_csv(data)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    if design["kind"] == "formula":
        return _rebuild_formula(design, frame)
    needed = [spec["column"] for spec in design["columns"]]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise DataError(
            f"column '{absent[0]}' of the model's design not found; available: {', '.join(frame.columns)}."
        )
    frame, _, rows = _missing(frame, needed, dropna=False)
    return build_columns(design, frame, rows)


def _check_numeric(series: "pd.Series", column: str, rows: np.ndarray | None = None) -> None:
    import pandas as pd

    if is_numeric(series):
        return
    rows = np.arange(1, len(series) + 1) if rows is None else rows
    values = series.astype(str)
    numeric = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(numeric.isna().to_numpy())
    first = int(bad[0]) if bad.size else 0
    raise DataError(
        f"feature column '{column}' is not numeric: data row {rows[first]} has '{values.iloc[first]}'.",
        "Leave it out with --features, or encode it as numbers.",
    )


# -- the design: a formula (formulaic) ------------------------------------------------------------


def _formulaic():
    try:
        import formulaic
    except ImportError:
        raise UsageError(
            "--formula needs the formulaic package, which is not installed.",
            "Install it with: pip install 'mlefit[formula]'.",
        ) from None
    return formulaic


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parse_formula(text: str, columns: list[str], source: formula_check.Source):
    """formulaic's parse of the formula ``text``, once every piece of it that formulaic would evaluate
    has passed :mod:`mlefit.formula_check` (parsing runs nothing; building a design evaluates).

    The Python text of each factor is checked twice: as the tokenizer cuts it from ``text`` (so a
    refusal names what the user wrote, before formulaic's parser reformats it) and as the factor
    formulaic will evaluate.
    """
    formulaic = _formulaic()
    from formulaic.errors import FormulaicError
    from formulaic.parser import DefaultFormulaParser
    from formulaic.parser.algos.tokenize import tokenize

    formula_check.check_text(text, source)
    # formulaic's parser fails on some malformed text with errors of its own making ('Token' object
    # has no attribute 'fixity' for "y ~ - [ 1 )", StopIteration for "x ** (-1)"): each is text that
    # cannot be read, not a fault of mlefit's
    unreadable = (
        FormulaicError, SyntaxError, ValueError, TypeError, AttributeError, IndexError, KeyError, StopIteration,
        RecursionError,
    )
    try:
        tokens = list(tokenize(text))
        for token in tokens:
            if token.kind is token.Kind.PYTHON:
                formula_check.check_expression(token.token, columns, source)
        formula_check.term_bound(DefaultFormulaParser().get_ast(text), source)
        parsed = formulaic.Formula(text)
    except unreadable as exc:
        reason = _first_line(exc) if isinstance(exc, (FormulaicError, SyntaxError)) else "formulaic cannot parse it"
        raise source.error(f"cannot read {source.label} '{text}': {reason}.") from None
    for factor in _factors(parsed):
        if factor.eval_method.value == "python":
            formula_check.check_expression(factor.expr, columns, source)
        elif factor.eval_method.value == "lookup":
            formula_check.check_column(factor.expr, columns, source)
    return parsed


def _factors(parsed) -> list:
    """Every factor of every term of a parsed formula (both sides, every part)."""
    factors, stack = [], [parsed]
    while stack:
        part = stack.pop()
        terms = list(part)
        if terms and all(hasattr(t, "factors") for t in terms):
            factors += [f for t in terms for f in t.factors]
        else:
            stack += terms
    return factors


def _formula_dataset(frame, family, formula, *, target, features, intercept, roles, dropna) -> Dataset:
    formulaic = _formulaic()
    from formulaic.errors import FormulaicError

    # a family whose other parameters take the intercept's place (ordinal cutpoints) is handed
    # intercept=False: its formula keeps the intercept term, which sets how factors are coded
    # (reduced rank), and the intercept's column is dropped from the design below
    own_intercept = family.intercept_column
    columns = list(frame.columns)
    parsed, target_name, needed, roles = read_formula(
        formula, columns, family, target=target, features=features, intercept=intercept, roles=roles,
    )
    frame, n_dropped, rows = _missing(frame, needed + list(roles.values()), dropna)
    weights, event = roles.get("weights"), roles.get("event")
    ev = event_values(frame[event], event, rows) if event else None
    w = check_weights(frame[weights], weights, rows) if weights else None
    o = offset_values(frame, roles.get("offset"), roles.get("exposure"), rows)

    def build(part):
        try:
            with np.errstate(all="ignore"):
                # missing values in the data were handled above; any left come from a
                # transformation (np.log(0)) and are named by the finiteness check below
                # context={}: names resolve in the data and formulaic's transforms only, never
                # in this function's frame (formulaic's default)
                return formulaic.model_matrix(part, frame, na_action="ignore", context={})
        except FormulaicError as exc:
            raise DataError(f"cannot build the design of --formula '{formula}': {_first_line(exc)}.") from None

    if target_name in columns:
        y_raw = frame[target_name].to_numpy()
    else:
        left = build(parsed.lhs)
        if left.shape[1] != 1:
            raise UsageError(f"the left side of --formula, '{target_name}', gives {left.shape[1]} columns; it must give one.")
        y_raw = left.iloc[:, 0].to_numpy()
        if y_raw.dtype.kind == "f" and not np.all(np.isfinite(y_raw)):
            raise DataError(f"the target '{target_name}' has missing or infinite values after the transformation.")
    encoded = family.encode(y_raw, target_name, rows, event=ev)

    mm = build(parsed.rhs)
    if not hasattr(mm, "columns"):
        raise UsageError(f"--formula '{formula}' must have one right side.")
    names = [str(c) for c in mm.columns]
    if not names:
        raise UsageError(f"--formula '{formula}' gives no design columns.", "Name at least one feature or keep the intercept.")
    X = mm.to_numpy(dtype=np.float64)
    has_intercept = "Intercept" in names
    if not own_intercept:
        if not has_intercept:
            raise UsageError(
                f"--formula '{formula}' drops the intercept term, which {family.name} needs: its own parameters "
                "take the intercept's place, and without the term a factor is coded by a column per level, which "
                "those parameters cannot be told apart from.",
                "Remove '- 1' (or '+ 0') from the formula; the intercept's column is left out of the design.",
            )
        keep = [j for j, n in enumerate(names) if n != "Intercept"]
        X, names, has_intercept = X[:, keep], [names[j] for j in keep], False
    if has_intercept:
        order = [names.index("Intercept")] + [j for j, n in enumerate(names) if n != "Intercept"]
        X, names = X[:, order], [INTERCEPT] + [n for n in names if n != "Intercept"]
    bad = ~np.isfinite(X)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        first = int(np.flatnonzero(bad[:, j])[0])
        raise DataError(
            f"design column '{names[j]}' of --formula has {int(bad[:, j].sum())} missing or infinite value(s), "
            f"the first in data row {rows[first]}.",
            "Check the transformations in the formula.",
        )
    design = _describe_formula(mm.model_spec, names, has_intercept)
    X, X_lo = exact_powers(X, names, _power_columns(mm.model_spec, frame), frame)
    return Dataset(
        X, encoded.y, tuple(names), target_name, encoded.levels, encoded.note, has_intercept,
        w, weights, n_dropped, design, X_lo, offset=o, offset_name=roles.get("offset"),
        exposure_name=roles.get("exposure"),
    )


# -- exact power columns ---------------------------------------------------------------------------


def _int_literal(node) -> int | None:
    import ast

    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        value = node.value
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
    return None


def _power_of(node, columns) -> tuple[str, int] | None:
    """``(column, k)`` when the expression is ``column ** k`` (k >= 1) written as a name, ``**``,
    ``*``, ``np.power`` or ``I(...)`` of those; else None."""
    import ast

    if isinstance(node, ast.Name):
        return (node.id, 1) if node.id in columns else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, k = _power_of(node.left, columns), _int_literal(node.right)
        return (base[0], base[1] * k) if base and k is not None and k >= 1 else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        a, b = _power_of(node.left, columns), _power_of(node.right, columns)
        return (a[0], a[1] + b[1]) if a and b and a[0] == b[0] else None
    if isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args):
        func = formula_check.dotted_name(node.func)
        if func == "I" and len(node.args) == 1 and not node.keywords:
            return _power_of(node.args[0], columns)
        if func in ("np.power", "numpy.power") and len(node.args) == 2 and not node.keywords:
            base, k = _power_of(node.args[0], columns), _int_literal(node.args[1])
            return (base[0], base[1] * k) if base and k is not None and k >= 1 else None
    return None


def _raw_poly(node, columns) -> tuple[str, list[int]] | None:
    """``(column, [k1, k2, ...])`` for formulaic's ``poly(x, degree, raw=True)`` (columns
    ``x**1 .. x**degree``, of ``x`` itself a power of a column), else None."""
    import ast

    if not (isinstance(node, ast.Call) and formula_check.dotted_name(node.func) == "poly" and node.args):
        return None
    if any(isinstance(a, ast.Starred) for a in node.args) or any(kw.arg is None for kw in node.keywords):
        return None
    params = dict(zip(("x", "degree", "raw"), node.args))
    if len(node.args) > 3 or any(kw.arg in params or kw.arg not in ("degree", "raw") for kw in node.keywords):
        return None
    params.update({kw.arg: kw.value for kw in node.keywords})
    raw = params.get("raw")
    if not (isinstance(raw, ast.Constant) and raw.value is True):
        return None
    degree = _int_literal(params["degree"]) if "degree" in params else 1
    base = _power_of(params["x"], columns)
    if base is None or degree is None or degree < 1:
        return None
    return base[0], [base[1] * j for j in range(1, degree + 1)]


def _power_columns(spec, frame: "pd.DataFrame") -> dict[str, tuple[str, int]]:
    """The design columns of a formulaic model spec that are integer powers ``k >= 2`` of a numeric
    column of ``frame``, read from the formula's terms (never guessed from values):
    ``{design column: (data column, k)}``.

    Recognised: ``poly(x, d, raw=True)``, ``I(x**k)``, ``{x**k}``, ``x*x``, ``np.power(x, k)``
    and interactions of such factors of one column (``x:I(x**2)``).
    """
    import ast

    columns = {c for c in frame.columns if frame[c].dtype.kind in "iuf"}
    found: dict[str, tuple[str, int]] = {}
    for part in getattr(spec, "structure", None) or ():
        factors = list(getattr(part.term, "factors", ()))
        try:
            nodes = [ast.parse(str(f.expr), mode="eval").body for f in factors]
        except (SyntaxError, ValueError):
            continue
        if not nodes:
            continue
        if len(nodes) == 1 and (poly := _raw_poly(nodes[0], columns)) is not None:
            var, ks = poly
            if len(ks) == len(part.columns):
                found.update((str(c), (var, k)) for c, k in zip(part.columns, ks) if k >= 2)
            continue
        powers = [_power_of(node, columns) for node in nodes]
        if len(part.columns) == 1 and all(powers) and len({v for v, _ in powers}) == 1:
            k = sum(k for _, k in powers)
            if k >= 2:
                found[str(part.columns[0])] = (powers[0][0], k)
    return found


def exact_powers(
    X: np.ndarray, names: Sequence[str], powers: dict[str, tuple[str, int]], frame: "pd.DataFrame"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Power columns beyond float64: ``(X, X_lo)`` with ``X + X_lo`` the exact powers.

    ``x**k`` rounded to float64 loses the low digits that an ill-conditioned polynomial fit needs
    (Filip, a degree-10 polynomial, keeps only 7.6 digits of its certified coefficients with
    rounded columns). Each column named in ``powers`` (``{name: (column, k)}``) is recomputed from
    the float64 values of ``frame[column]`` in double-double arithmetic
    (:func:`mlefit.linalg.powers`): its high part, ``x**k`` correctly rounded, replaces the column
    and its low part goes to ``X_lo``. A column is left as it is when the double-double value is
    not finite or disagrees with the one formulaic computed by more than rounding (the expression
    did not mean what it looked like). ``X_lo`` is None when no column has a non-zero low part.
    """
    from . import linalg

    if not powers:
        return X, None
    X_lo = np.zeros_like(X)
    by_column: dict[str, set[int]] = {}
    for var, k in powers.values():
        by_column.setdefault(var, set()).add(k)
    for var, ks in by_column.items():
        table = linalg.powers(frame[var].to_numpy(dtype=np.float64), ks)
        for name, (v, k) in powers.items():
            if v != var or name not in names:
                continue
            j = list(names).index(name)
            hi, lo = table[k]
            if not (np.all(np.isfinite(hi)) and np.all(np.isfinite(lo))):
                continue
            if not np.all(np.abs(hi - X[:, j]) <= 4.0 * k * linalg.U * np.abs(hi)):
                continue
            X[:, j] = hi
            X_lo[:, j] = lo
    return X, (X_lo if np.any(X_lo) else None)


def _jsonable(value: Any) -> Any:
    """Formulaic's transform state as JSON values (arrays tagged so they come back as arrays)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _jsonable(value.tolist())}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            return np.asarray(value["__ndarray__"])
        # JSON keys are text; formulaic's states key by name, except poly's recurrence (alpha, norms2),
        # keyed by degree: digits are whole numbers again
        return {int(k) if k.isdigit() else k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def _formula_text(formula) -> str:
    """The right side of a parsed formula as text that formulaic reads back to the same terms.

    ``str(formula)`` does not: it writes ``{x**3}`` as ``x ** 3`` (read back, the Wilkinson power of
    the term x), a backtick-quoted name bare (``odd name``: two names) and leaves out the ``0`` of a
    formula without intercept. Here Python factors keep their braces, names that are not identifiers
    their backticks, and a formula without the intercept term starts with ``0``.
    """

    def factor(f) -> str:
        method = f.eval_method.value
        if method == "python":
            return "{" + f.expr + "}"
        if method == "lookup" and not f.expr.isidentifier():
            return f"`{f.expr}`"
        return f.expr

    terms = [":".join(factor(f) for f in term.factors) for term in formula]
    return " + ".join(terms if "1" in terms else ["0", *terms])


def _describe_formula(spec, names: list[str], intercept: bool) -> dict:
    encoder = {}
    for expr, (kind, state) in spec.encoder_state.items():
        kept = {"categories": _jsonable(list(state["categories"]))} if "categories" in state else {}
        encoder[str(expr)] = [getattr(kind, "value", str(kind)), kept]
    return {
        "kind": "formula",
        "formula": _formula_text(spec.formula),
        "intercept": intercept,
        "features": list(names),
        "encoder_state": encoder,
        "transform_state": _jsonable(spec.transform_state),
    }


def _formula_state(design: dict, factors: dict) -> tuple[dict, dict]:
    """The encoder and transform states of a saved formula design, checked, so that a damaged (or
    crafted) model file is a sentence: the encoder state names factors of the formula only (formulaic
    evaluates the name of a factor whose level is unseen), each with its kind and levels."""
    from formulaic.parser.types import Factor

    kinds = {k.value for k in Factor.Kind} - {Factor.Kind.UNKNOWN.value}
    encoder_state, transform_state = design.get("encoder_state"), design.get("transform_state")
    if not (isinstance(encoder_state, dict) and isinstance(transform_state, dict)):
        raise ModelError("the model's formula design is damaged: its encoder and transform states must be objects.")
    encoder = {}
    for expr, entry in encoder_state.items():
        if expr not in factors:
            raise ModelError(f"the model's encoder state names '{expr}', which is not a factor of its formula.")
        kind, state = entry if isinstance(entry, list) and len(entry) == 2 else (None, None)
        levels = state.get("categories", []) if isinstance(state, dict) else None
        if kind not in kinds or not (
            isinstance(levels, list) and all(v is None or isinstance(v, (str, int, float)) for v in levels)
        ):
            raise ModelError(f"the model's formula design is damaged: the encoder state of '{expr}' cannot be read.")
        encoder[expr] = (kind, state)
    try:
        transform = _from_jsonable(transform_state)
    except ValueError:
        raise ModelError("the model's formula design is damaged: an array in its transform state is not rectangular.") from None
    return encoder, transform


def _rebuild_formula(design: dict, frame: "pd.DataFrame") -> np.ndarray:
    return FormulaEncoder(design, list(frame.columns)).matrix(frame)


class FormulaEncoder:
    """The design of a formula description (``design["kind"] == "formula"``) for tables with
    ``columns``: the formula parsed and checked once (:mod:`mlefit.formula_check`, as a model file's
    formula), its encoder and transform states read once, then :meth:`matrix` builds the design of
    any number of tables (``mlefit predict``, and every chunk of a streamed or Dask formula fit).
    Pickled as its description (a Dask worker parses it again)."""

    def __init__(self, design: dict, columns: Sequence[str]):
        self.design, self.columns = design, list(columns)
        # the model file's formula is text like --formula: checked before formulaic evaluates any of it
        self.parsed = _parse_formula(design["formula"], self.columns, formula_check.MODEL)
        self.factors = {f.expr: f for f in _factors(self.parsed)}
        self.encoder, self.transform = _formula_state(design, self.factors)
        self.needed = formula_variables(self.parsed, self.columns)

    def __reduce__(self):
        return FormulaEncoder, (self.design, self.columns)

    def matrix(self, frame: "pd.DataFrame", rows: np.ndarray | None = None) -> np.ndarray:
        """The design matrix of ``frame``, shape (n_obs, len(design["features"])). ``rows``: the
        data-row numbers of ``frame``'s rows when it is a chunk of a larger table (for messages)."""
        import warnings

        formulaic = _formulaic()
        from formulaic.errors import DataMismatchWarning, FormulaicError

        design, factors, encoder = self.design, self.factors, self.encoder
        absent = [c for c in self.needed if c not in frame.columns]
        if absent:
            raise DataError(
                f"column '{absent[0]}' of the model's formula not found; available: {', '.join(frame.columns)}."
            )
        frame, _, _ = _missing(frame, self.needed, dropna=False)
        # formulaic adds to the states it is given (the contrasts): copies, so the description stays as it was
        spec = formulaic.ModelSpec(
            formula=self.parsed, encoder_state={k: (kind, dict(state)) for k, (kind, state) in encoder.items()},
            transform_state=self.transform, na_action="ignore",
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DataMismatchWarning)
                with np.errstate(all="ignore"):
                    mm = spec.get_model_matrix(frame, context={})
        except DataMismatchWarning:
            # find the factor with the unseen level, to name it
            for expr, (kind, state) in encoder.items():
                if "categories" not in state:
                    continue
                quoted = f"`{expr}`" if factors[expr].eval_method.value == "lookup" else expr
                values = formulaic.model_matrix(f"0 + {quoted}", frame, ensure_full_rank=False, context={}).model_spec
                seen = values.encoder_state[expr][1].get("categories", [])
                unseen = [v for v in seen if v not in state["categories"]]
                if unseen:
                    raise DataError(
                        f"'{expr}' has level(s) {', '.join(repr(u) for u in unseen[:5])} not seen when the design was "
                        f"built (known levels: {', '.join(map(str, state['categories']))})."
                    ) from None
            raise DataError("the new data have a categorical level not seen when the design was built.") from None
        except FormulaicError as exc:
            raise DataError(f"cannot rebuild the design of formula '{design['formula']}': {_first_line(exc)}.") from None
        names = [INTERCEPT if str(c) == "Intercept" else str(c) for c in mm.columns]
        X = mm.to_numpy(dtype=np.float64)
        try:
            order = [names.index(n) for n in design["features"]]
        except ValueError:
            raise DataError("the rebuilt design's columns differ from the fitted ones.") from None
        X = X[:, order]
        bad = ~np.isfinite(X)
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            first = int(np.flatnonzero(bad[:, j])[0])
            if rows is not None:  # a chunk: its count is not the table's
                raise DataError(
                    f"design column '{design['features'][j]}' of --formula has a missing or infinite value in data "
                    f"row {rows[first]}.",
                    "Check the transformations in the formula.",
                )
            raise DataError(
                f"design column '{design['features'][j]}' has {int(bad[:, j].sum())} missing or infinite value(s), "
                f"the first in data row {first + 1}."
            )
        return X


# -- formulas for the readers of chunked rows (mlefit.readers.formula) ------------------------------


def parse_formula(text: str, columns: Sequence[str]):
    """formulaic's parse of ``--formula`` ``text`` for a table with ``columns``, every piece checked
    first (:mod:`mlefit.formula_check`); UsageError naming what is refused."""
    return _parse_formula(text, list(columns), formula_check.FIT)


def read_formula(
    formula: str, columns: Sequence[str], family, *, target: str | None, features: Any, intercept: bool,
    roles: "dict[str, str | None] | None",
) -> tuple[Any, str, list[str], dict[str, str]]:
    """``--formula`` read against a table's ``columns`` with every check of a fit, in memory or of
    chunked rows (:mod:`mlefit.readers.formula`): ``(parsed, target name, the variables it reads,
    the roles given)``. UsageError or DataError naming what is wrong."""
    if features is not None:
        raise UsageError("--features cannot be combined with --formula: the formula names the features.")
    if not intercept and family.intercept_column:
        raise UsageError(
            "--no-intercept cannot be combined with --formula.", "Write '- 1' in the formula to drop the intercept."
        )
    columns = [str(c) for c in columns]
    parsed = parse_formula(formula, columns)
    lhs = getattr(parsed, "lhs", None)
    if lhs is None or len(lhs) == 0:
        raise UsageError(
            f"--formula '{formula}' has no left side.", "Name the target before '~', as in 'y ~ x1 + x2'."
        )
    if len(lhs) != 1:
        raise UsageError(f"the left side of --formula '{formula}' must be one column; it has {len(lhs)} terms.")
    target_name = str(lhs)
    if target is not None and target != target_name:
        raise UsageError(f"--target '{target}' disagrees with the formula's left side '{target_name}'; leave --target out.")
    needed = formula_variables(parsed, columns)
    absent = [v for v in needed if v not in columns]
    if absent:
        raise DataError(f"column '{absent[0]}' in --formula not found; available: {', '.join(columns)}.")
    given = {role: name for role, name in (roles or {}).items() if name is not None}
    for role, name in given.items():
        if name not in columns:
            raise DataError(f"{role} column '{name}' not found; available: {', '.join(columns)}.", f"Check --{role}.")
        if name in needed:
            raise DataError(f"column '{name}' holds the {role} and cannot also appear in --formula.")
    return parsed, target_name, needed, given


def formula_variables(parsed, columns: Sequence[str]) -> list[str]:
    """The variables a parsed formula reads, sorted: formulaic's ``required_variables`` and the
    columns named inside its Python factors, which formulaic leaves out of them when they are the
    argument of a stateful transform (``center(x)``, ``bs(z, df=3)``)."""
    columns = set(columns)
    found = set(parsed.required_variables)
    for factor in _factors(parsed):
        method = factor.eval_method.value
        if method == "lookup":
            found.add(factor.expr)
        elif method == "python":
            found |= formula_check.expression_columns(factor.expr, columns)
    return sorted(found)


def formula_factors(parsed) -> list:
    """Every factor of every term of a parsed formula (or of one side of it)."""
    return _factors(parsed)


def describe_formula(spec, names: Sequence[str], intercept: bool) -> dict:
    """The design description of a formulaic model spec whose design columns are ``names`` (the
    intercept first, named ``intercept``, when ``intercept``): what :class:`FormulaEncoder` rebuilds."""
    return _describe_formula(spec, list(names), intercept)


def power_columns(spec, frame: "pd.DataFrame") -> dict[str, tuple[str, int]]:
    """The design columns of ``spec`` that are integer powers of a numeric column of ``frame`` (see
    :func:`exact_powers`): ``{design column: (data column, k)}``."""
    return _power_columns(spec, frame)


def columns_used(
    columns: Sequence[str], *, target: str | None = None, features: "str | Sequence[str] | None" = None,
    intercept: bool = True, roles: "dict[str, str | None] | None" = None, formula: str | None = None,
) -> list[str]:
    """The columns of a table (with these ``columns``, in order) that a fit reads: the target, the
    features and the columns of ``roles`` (weights, offset, ...), or a formula's variables and those
    of ``roles``. Every column when one is not found or the formula cannot be read, so that the
    message the fit then gives lists them all (a columnar reader reads only what is used)."""
    columns = list(columns)
    roles = {k: v for k, v in (roles or {}).items() if v is not None}
    try:
        if formula is not None:
            needed = set(formula_variables(parse_formula(formula, columns), columns))
        else:
            target, wanted = select_columns(columns, target, features, intercept, roles)
            needed = {target, *wanted}
    except (DataError, UsageError):
        return columns
    needed |= set(roles.values())
    if not needed <= set(columns):
        return columns
    return [c for c in columns if c in needed]
