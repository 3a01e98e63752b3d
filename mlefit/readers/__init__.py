"""Readers: how rows arrive.

The CSV readers are :mod:`mlefit.data` (in memory) and the engines' chunked readers; this package
holds the readers added beside them: :mod:`~mlefit.readers.parquet` (Parquet files and folders of
them, through pyarrow) and :mod:`~mlefit.readers.formula` (a formula's design learned from a first
pass over chunks of rows, then applied to every chunk alike). :func:`input_format` decides which
format a path is read as. Standard library only here: the command line's help loads nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError

#: The formats ``--input-format`` names.
INPUT_FORMATS = ("csv", "parquet")
#: File name endings read as Parquet when no format is given.
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")


def input_format(data: Any, given: str | None = None) -> str:
    """``"csv"`` or ``"parquet"``: ``given`` when there is one (``--input-format``), else Parquet for
    a path ending in ``.parquet`` (``.parq``, ``.pq``) or naming a folder, else CSV (standard input
    ``-`` included). Anything but a path (a table in memory) is ``"csv"`` here: it is not read."""
    if given is not None:
        fmt = str(getattr(given, "value", given)).lower()
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"--input-format must be one of {', '.join(INPUT_FORMATS)}; got '{given}'.")
        return fmt
    if not isinstance(data, (str, Path)) or str(data) == "-":
        return "csv"
    path = Path(data)
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES or path.is_dir() else "csv"


def is_parquet(data: Any, given: str | None = None) -> bool:
    """Whether ``data`` is read as Parquet (see :func:`input_format`)."""
    return input_format(data, given) == "parquet"
