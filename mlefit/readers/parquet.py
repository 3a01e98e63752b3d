"""Parquet files, and folders of them read as one table, through pyarrow (the extra ``parquet``).

A Parquet file carries its column types, so nothing is guessed from text. Every reader (in memory,
streamed by record batches, on Dask partitions) turns Arrow columns into the pandas columns the CSV
readers would give the same data, by :func:`to_frame`:

- integers as int64 (float64 with NaN where a batch has nulls), floats and decimals as float64;
- booleans as numpy booleans (pandas' nullable ``boolean`` where a batch has nulls): numbers, 0 and 1;
- strings, and categorical (dictionary) columns decoded to their values as text, are text features
  (one-hot encoded, their levels the values that occur); dates, times and timestamps are text too;
- nulls are missing values, reported (or dropped with ``--dropna``) as in a CSV.

A folder is every Parquet file under it (``.parquet``, ``.parq``, ``.pq``; every file not starting
with ``.`` or ``_`` when none has such a name), in natural order of their paths (``part.2`` before
``part.10``), which is also the order of the rows: data row k is the k-th row of that concatenation.
The files must have the same columns. pyarrow is imported when a Parquet file is first read, never
at start-up.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from .. import csvformat, progress
from ..errors import DataError, UsageError
from . import PARQUET_SUFFIXES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Bytes of the buffered stream through which a streamed read takes each column chunk.
STREAM_BUFFER = 1 << 20
#: Columns pandas writes for a non-default index (``__index_level_0__``): not data.
_INDEX_COLUMN = re.compile(r"__index_level_\d+__")


def require_pyarrow():
    """``(pyarrow, pyarrow.parquet)``, or UsageError naming the extra that installs them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError(
            "reading or writing Parquet needs the pyarrow package, which is not installed.",
            "Install it with: pip install 'mlefit[parquet]'.",
        ) from None
    return pyarrow, pyarrow.parquet


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def _files(path: Path, name: str) -> list[Path]:
    """The Parquet files of a folder, in natural order of their paths below it."""
    found = [p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(path).parts
    )]
    named = [p for p in found if p.suffix.lower() in PARQUET_SUFFIXES]
    files = named or found
    if not files:
        raise DataError(f"folder {name} holds no Parquet files.")
    return sorted(files, key=lambda p: _natural_key(p.relative_to(path)))


def unreadable(name: str, exc: BaseException) -> DataError:
    """The sentence for a file pyarrow cannot read as Parquet (not Parquet, or damaged)."""
    text = str(exc).strip()
    first = re.split(r"\.(?:\s|$)", text.splitlines()[0])[0] if text else type(exc).__name__
    return DataError(f"{name} is not a readable Parquet file ({first}).")


def arrow_errors() -> tuple[type[BaseException], ...]:
    """What pyarrow raises for a file that is not Parquet or is damaged."""
    pa, _ = require_pyarrow()
    return (pa.ArrowException, OSError, ValueError, EOFError)


class ParquetSource:
    """A Parquet file or folder (or standard input, ``-``, held in memory): its files, columns and rows.

    Attributes
    ----------
    name : str
        How messages name it: ``'data.parquet'``, ``folder 'parts'``, ``standard input``.
    files : list
        The files in row order (paths; a buffer for standard input).
    names : list of str
        The column names, the same in every file (pandas' index columns left out).
    n_rows : int
    n_bytes : int
        The uncompressed size of the data (Parquet's total_byte_size): what a table in memory needs.
    """

    def __init__(self, source: "str | Path"):
        pa, pq = require_pyarrow()
        self.path = None if str(source) == "-" else Path(source)
        if self.path is None:
            self.name = "standard input"
            data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
            if not data:
                raise DataError("standard input is empty: no Parquet data.")
            handles = [("standard input", pa.BufferReader(data))]
        elif not self.path.exists():
            raise DataError(f"file {csvformat.describe(source)} not found.")
        elif self.path.is_dir():
            self.name = f"folder '{source}'"
            handles = [(f"'{f}'", f) for f in _files(self.path, f"'{source}'")]
        else:
            self.name = f"'{source}'"
            handles = [(self.name, self.path)]
        self.files: list = []
        self._parts = []  # (name, ParquetFile)
        for name, handle in handles:
            try:
                parquet_file = pq.ParquetFile(handle)
            except arrow_errors() as exc:
                raise unreadable(name, exc) from None
            self._parts.append((name, parquet_file))
            self.files.append(handle)
        first_name, first = self._parts[0]
        self.names = [n for n in first.schema_arrow.names if not _INDEX_COLUMN.fullmatch(n)]
        csvformat.check_names(self.names, first_name)
        for name, part in self._parts[1:]:
            names = [n for n in part.schema_arrow.names if not _INDEX_COLUMN.fullmatch(n)]
            if set(names) != set(self.names):
                extra = sorted(set(names) ^ set(self.names))[0]
                where, other = (name, first_name) if extra in names else (first_name, name)
                raise DataError(
                    f"column '{extra}' is in {where} but not in {other}: the files of {self.name} must have "
                    "the same columns."
                )
        self.n_rows = sum(part.metadata.num_rows for _, part in self._parts)
        self.n_bytes = sum(
            part.metadata.row_group(i).total_byte_size for _, part in self._parts for i in range(part.num_row_groups)
        )
        if self.n_rows == 0:
            raise DataError(f"{self.name} has columns but no data rows.")

    def types(self, column: str) -> list:
        """The Arrow type of ``column`` in each file."""
        return [part.schema_arrow.field(column).type for _, part in self._parts]

    def numeric(self, columns: Sequence[str]) -> bool:
        """Whether every one of ``columns`` holds numbers or booleans in every file (nulls aside)."""
        return all(is_number_type(t) for c in columns for t in self.types(c))

    def table(self, columns: Sequence[str] | None = None, strict: bool = True) -> "pd.DataFrame":
        """Every row of ``columns`` (default all) as a DataFrame (see :func:`to_frame`)."""
        import pandas as pd

        columns = list(self.names if columns is None else columns)
        frames = []
        for name, part in self._parts:
            try:
                table = part.read(columns=columns, use_threads=True)
            except arrow_errors() as exc:
                raise unreadable(name, exc) from None
            frames.append(to_frame(table, strict))
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return frame.set_axis(columns, axis=1) if list(frame.columns) != columns else frame

    def frames(self, columns: Sequence[str], batch_rows: int, what: str = "reading") -> Iterator["pd.DataFrame"]:
        """The rows of ``columns`` in batches of at most ``batch_rows`` rows (record batches of each
        row group, file after file), each a DataFrame (see :func:`to_frame`); progress is told in
        bytes of the data, in proportion to the rows read."""
        for _, table in self.batches(columns, batch_rows, what):
            yield to_frame(table)

    def batches(self, columns: Sequence[str], batch_rows: int, what: str = "reading") -> Iterator[tuple[int, "pa.Table"]]:
        """``(first row, table)`` of each record batch of ``columns`` (see :meth:`frames`).

        A row group at a time, through a buffered stream and without pre-buffering: pyarrow's
        defaults fetch every row group asked for at once and keep it while the reader lives (the
        whole file's columns: 880 MB of resident memory for a 4M-row file of 21 columns, against
        210 MB this way, and a fifth of the time)."""
        pa, pq = require_pyarrow()
        columns = list(columns)
        done = 0
        for (name, part), handle in zip(self._parts, self.files):
            try:
                reader = pq.ParquetFile(handle, pre_buffer=False, buffer_size=STREAM_BUFFER)
                for group in range(reader.num_row_groups):
                    for batch in reader.iter_batches(
                        batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=True
                    ):
                        if batch.num_rows == 0:
                            continue
                        yield done, pa.Table.from_batches([batch])
                        done += batch.num_rows
                        progress.read(self.n_bytes * done // self.n_rows, self.n_bytes, what)
            except arrow_errors() as exc:
                raise unreadable(name, exc) from None

    def dask_frame(self, dd, columns: Sequence[str], chunk_rows: int | None = None):
        """The rows of ``columns`` as a Dask DataFrame of Arrow-typed partitions
        (``dask.dataframe.read_parquet``), a partition per row group when ``chunk_rows`` is given;
        each partition becomes the readers' DataFrame through :func:`from_dask_partition`."""
        if self.path is None:
            raise UsageError("--engine dask reads a Parquet file or folder the workers can read, not standard input.")
        return dd.read_parquet(
            [str(f) for f in self.files], columns=list(columns), index=False, dtype_backend="pyarrow",
            split_row_groups=True if chunk_rows else "infer", calculate_divisions=False,
        )


def is_number_type(t) -> bool:
    """Integers, floats, decimals and booleans: columns a one-pass numeric reader takes as they are."""
    import pyarrow.types as pt

    return pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t) or pt.is_boolean(t)


def _column(name: str, col, strict: bool):
    """One Arrow column (ChunkedArray) as the CSV readers would give its values (see the module)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    t = col.type
    if pt.is_dictionary(t):
        col = pc.cast(col, t.value_type)
        t = t.value_type
        if not (pt.is_string(t) or pt.is_large_string(t)):
            col, t = _as_text(col), pa.string()
    if pt.is_boolean(t):
        if col.null_count == 0:
            return col.to_numpy()
        return col.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get).array
    if pt.is_integer(t):
        if col.null_count == 0:
            return col.to_numpy().astype(np.uint64 if pt.is_uint64(t) else np.int64, copy=False)
        return pc.cast(col, pa.float64()).to_numpy()
    if pt.is_floating(t) or pt.is_decimal(t):
        return (col if pt.is_float64(t) else pc.cast(col, pa.float64())).to_numpy()
    if pt.is_null(t):
        return np.full(len(col), np.nan)
    if pt.is_temporal(t):
        col, t = _as_text(col), pa.string()
    if pt.is_string(t) or pt.is_large_string(t) or getattr(pt, "is_string_view", lambda _: False)(t):
        return col.to_pandas().array
    if strict:
        raise DataError(
            f"column '{name}' holds values of Parquet type {t}, which mlefit cannot use: only numbers, booleans and "
            "text (strings, categories, dates).",
            "Leave it out, or convert it to one of those types.",
        )
    return col.to_pandas().array


def _as_text(col):
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())])


def to_frame(table: "pa.Table", strict: bool = True) -> "pd.DataFrame":
    """An Arrow table as the DataFrame the CSV readers would give the same data (see the module);
    ``strict``: a column of any other type (binary, lists, structs) is a DataError naming it, else
    it is kept as pandas converts it."""
    import pandas as pd

    names = [n for n in table.column_names if not _INDEX_COLUMN.fullmatch(n)]
    return pd.DataFrame({n: _column(n, table.column(n), strict) for n in names}, copy=False)


def from_dask_partition(frame: "pd.DataFrame") -> "pd.DataFrame":
    """A partition of :meth:`ParquetSource.dask_frame` (Arrow-typed pandas columns) as :func:`to_frame`
    gives it."""
    import pyarrow as pa

    return to_frame(pa.Table.from_pandas(frame, preserve_index=False))


def read_frame(source: "str | Path", columns: Sequence[str] | None = None, strict: bool = True) -> "pd.DataFrame":
    """A Parquet file or folder (or ``-``) in memory, ``columns`` only when given."""
    return ParquetSource(source).table(columns, strict)


def read_for_fit(
    source: "str | Path", *, target=None, features=None, intercept: bool = True, roles: dict | None = None,
    formula: str | None = None, table: ParquetSource | None = None,
) -> "pd.DataFrame":
    """The columns of a Parquet file or folder that a fit with these options reads
    (:func:`mlefit.data.columns_used`), in memory: Parquet is read by column, so the others never are."""
    from ..data import columns_used

    table = table or ParquetSource(source)
    return table.table(columns_used(
        table.names, target=target, features=features, intercept=intercept, roles=roles, formula=formula
    ))


def write_frame(frame: "pd.DataFrame", path: "str | Path", option: str = "--output") -> None:
    """Write a table as a Parquet file (columns with their pandas types, no index)."""
    pa, pq = require_pyarrow()
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, str(path))
    except OSError as exc:
        raise UsageError(f"cannot write {option} '{path}': {exc.strerror or exc}.") from None
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DataError(f"cannot write {option} '{path}' as Parquet ({str(exc).splitlines()[0]}).") from None


def is_parquet_output(path: "str | Path | None") -> bool:
    """Whether an output path is written as Parquet: it ends in ``.parquet`` (``.parq``, ``.pq``)."""
    return path is not None and Path(path).suffix.lower() in PARQUET_SUFFIXES
