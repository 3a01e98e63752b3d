"""Numeric CSV text parsed by pyarrow's CSV reader, when pyarrow is installed (the extra ``parquet``).

pandas' C parser gives the nearest float64 only in its ``round_trip`` mode, which reads a 185 MB file
of 21 numeric columns in about three times the time of its default converter (that one is off in
the last bit on many 15-17 digit numbers). pyarrow's converter is correctly rounded too, and
faster still. So the numeric readers (in memory, ``--stream``'s one pass, the Dask partitions) hand
their text here first, and keep pyarrow's columns only when they are plainly what pandas would make
of the same text: every float column complete and finite, the target typed as pandas would type it.
Anything else (text or booleans among the numbers, a missing value, ``1e999``, a ragged line, bytes
that are not UTF-8, a target pandas would read otherwise) gives None, and the caller parses the
same text with pandas, which stays the reader that reports errors naming the row and column.

Every finite value pyarrow gives is the one Python's ``float()`` gives for the same text, so the
matrices, and the estimates, are bit for bit those of the pandas path.
"""

from __future__ import annotations

import csv
from typing import Sequence

import numpy as np

#: Text that pandas reads as missing (its default ``na_values``) or as a boolean: a target holding
#: any of it is left to pandas, so that every reader types a column alike.
PANDAS_SPECIAL = frozenset(
    "#N/A|#N/A N/A|#NA|-1.#IND|-1.#QNAN|-NaN|-nan|1.#IND|1.#QNAN|<NA>|N/A|NA|NULL|NaN|None|n/a|nan|null"
    "|true|false|True|False|TRUE|FALSE".split("|")
)

#: Integers from here on are read by pandas as unsigned or as floats, by pyarrow as floats.
_INT64_BOUND = 2.0**63


def available() -> bool:
    """Whether pyarrow's CSV reader can be imported."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def plain_names(names: Sequence[str]) -> bool:
    """Names that pandas reads from a header as they are written: distinct, non-empty, without
    surrounding spaces, quotes or replaced bytes (pandas numbers a blank name and renames a second
    ``a`` to ``a.1``; the readers then take pandas' names instead)."""
    return (
        len(set(names)) == len(names)
        and all(name and name == name.strip() and '"' not in name and "\ufffd" not in name for name in names)
        and not names[0].startswith("\ufeff")
    )


def header_names(text: bytes, sep: str) -> list[str] | None:
    """The names of the header line at the start of ``text`` when :func:`plain_names`, else None."""
    line = text.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([line.decode("utf-8")], delimiter=sep), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    return names if names and plain_names(names) else None


def parse(
    text, names: Sequence[str], floats: Sequence[str], target: str | None, sep: str, *,
    header: bool = False, text_target: bool = False, threads: bool = False, skip_blank: bool = True,
) -> dict[str, np.ndarray] | None:
    """The columns ``floats`` (float64) and ``target`` of the CSV ``text``, or None.

    Parameters
    ----------
    text : bytes-like
        Whole lines of a CSV whose columns are ``names`` (in file order); its first line is a
        header to skip when ``header``.
    floats : sequence of str
        Columns read as float64: None unless every value is a finite number.
    target : str or None
        A column typed as pandas types it: int64 when every value is an integer, float64 when every
        value is a finite number, else text (object) when pandas would keep every value as text.
        With ``text_target``, always text (pandas' ``dtype=object``): None when a value is one
        pandas reads as missing.
    threads : bool
        Let pyarrow parse on its own threads (for a caller that reads one piece at a time).
    skip_blank : bool
        Skip blank lines, as pandas does; else a blank line is a row of missing values, and so
        None: a caller that needs each line to be one row.

    Returns
    -------
    dict of str to ndarray, or None
        ``{column: values}`` in the order ``floats`` then ``target``; None when pyarrow is not
        installed, fails to read the text, or reads anything but the plain case above.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    types = {c: pa.float64() for c in floats}
    if target is not None and text_target:
        types[target] = pa.string()
    wanted = [*floats, *([target] if target is not None else [])]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(text)),
            read_options=pacsv.ReadOptions(column_names=list(names), skip_rows=1 if header else 0, use_threads=threads),
            parse_options=pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=skip_blank),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=wanted, strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError, TypeError):
        return None
    out = {}
    for c in floats:
        column = table.column(c)
        if column.null_count:
            return None
        values = _numpy(column)
        if not np.all(np.isfinite(values)):
            return None  # pandas reads some of these differently (1e999), and the checks name them
        out[c] = values
    if target is not None:
        values = _target(table.column(target), text_target)
        if values is None:
            return None
        out[target] = values
    return out


def _target(column, text: bool) -> np.ndarray | None:
    """A target column as pandas would type it, or None when that is not plain (see :func:`parse`)."""
    import pyarrow.types as pt

    if column.null_count:
        return None
    kind = column.type
    if pt.is_int64(kind) and not text:
        return _numpy(column)
    if pt.is_float64(kind) and not text:
        values = _numpy(column)
        if not np.all(np.isfinite(values)):
            return None
        big = np.abs(values) >= _INT64_BOUND
        if np.any(big & (values == np.floor(values))):
            return None  # an integer beyond int64: pandas' own types
        return values
    if not (pt.is_string(kind) or pt.is_large_string(kind)):
        return None  # booleans, dates, times: left to pandas
    distinct = column.unique().to_pylist()
    if any(not v or v in PANDAS_SPECIAL for v in distinct):
        return None
    if not text and any(v != v.strip() or _number(v) for v in distinct):
        return None  # pandas may read these as numbers, or some of them
    return np.array(column.to_pylist(), dtype=object)


def _numpy(column) -> np.ndarray:
    """A chunked column of int64 or float64 numbers without nulls as one array, from the data
    buffers (pyarrow's ``to_numpy`` imports pandas, a quarter of a second, which this reader spares)."""
    dtype = np.dtype(np.int64 if str(column.type) == "int64" else np.float64)
    chunks = [
        np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
        for chunk in column.chunks
    ]
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def line_blocks(path, block_bytes: int, start: int = 0):
    """The bytes of the file at ``path`` from ``start`` on, in blocks of whole lines of about
    ``block_bytes`` each (a line longer than that in a block of its own): ``(offset just past the
    block, its bytes)`` pairs. Only about two blocks are ever in memory."""
    with open(path, "rb") as fh:
        fh.seek(start)
        rest = b""
        while True:
            block = fh.read(block_bytes)
            if not block:
                if rest:
                    yield fh.tell(), rest
                return
            if rest:
                block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            rest = block[cut:]
            yield fh.tell() - len(rest), block[:cut]


def block_bytes(path, rows: int, header_bytes: int) -> int:
    """Bytes of about ``rows`` lines of the file at ``path``, from the length of its first lines
    after the header (at least 4 KiB)."""
    with open(path, "rb") as fh:
        fh.seek(header_bytes)
        head = fh.read(1 << 16)
    lines = max(head.count(b"\n"), 1)
    return max(1 << 12, int(rows * len(head) / lines))
