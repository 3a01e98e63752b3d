"""The text format of a CSV, settled before any reader parses it: the separator and the header.

Every reader (the small and the parallel fast paths and the table path of :mod:`mlefit.data`,
the streamed reader, the Dask reader, ``predict``, ``check-grad``, ``simulate --design``) reads
the header through :func:`read_header`, so all of them

- use the separator the user gave (``--sep``, checked by :func:`check_sep`), or else the one the
  header shows: a header holding ``;`` or a tab and no comma is read with that separator
  (:func:`detect_sep`), and the result says so;
- refuse a header that names a column twice, naming it, from the header as written: pandas
  would rename the second ``x`` to ``x.1`` and carry on (and a real column may be named ``x.1``).

Standard library only: start-up and the command line's help load nothing numeric.
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from .errors import DataError, UsageError

#: Separators a header without a comma may show (:func:`detect_sep`).
DETECTED_SEPS = (";", "\t")
#: Characters that cannot separate fields: quotes enclose fields, line ends end rows.
FORBIDDEN_SEPS = ('"', "\n", "\r")


@dataclass(frozen=True)
class CsvHeader:
    """The header of a CSV as written: its column names and the separator that splits them.

    Attributes
    ----------
    names : tuple of str
        The names in file order, duplicates checked (empty names, which pandas numbers, allowed).
    sep : str
        The separator: the one given, else the detected one, else a comma.
    detected : bool
        True when ``sep`` was detected from the header rather than given or the default comma.
    """

    names: tuple[str, ...]
    sep: str
    detected: bool = False


def separator_name(sep: str) -> str:
    """A separator as the messages write it: ``';'``, ``tab``, ``space``."""
    return {"\t": "tab", " ": "space"}.get(sep, f"'{sep}'")


def check_sep(sep: str | None) -> str | None:
    """``--sep`` checked: one character other than a quote or a line end (``\\t`` written as
    backslash and ``t`` is a tab); None stays None (detect). UsageError otherwise."""
    if sep is None:
        return None
    if sep == "\\t":
        return "\t"
    if not isinstance(sep, str) or len(sep) != 1:
        shown = "an empty string" if sep == "" else repr(sep)
        raise UsageError(f"--sep must be a single character such as ';' or a tab ('\\t'); got {shown}.")
    if sep in FORBIDDEN_SEPS:
        what = "a quote, which encloses fields" if sep == '"' else "a line end, which ends rows"
        raise UsageError(f"--sep cannot be {what}; got {sep!r}.")
    return sep


def detect_sep(line: str) -> str | None:
    """The separator a header line without a comma shows: ``;`` or a tab, whichever it holds
    more of; None when it holds a comma or neither."""
    if "," in line:
        return None
    counts = {sep: line.count(sep) for sep in DETECTED_SEPS}
    best = max(DETECTED_SEPS, key=counts.__getitem__)
    return best if counts[best] else None


def check_names(names: Iterable[str], source: str) -> None:
    """DataError when a name appears more than once in the header of ``source`` (a description
    such as ``'data.csv'``); empty names are left to pandas, which numbers them."""
    names = list(names)
    first: dict[str, int] = {}
    for j, name in enumerate(names):
        if name == "":
            continue
        if name in first:
            where = [k + 1 for k, other in enumerate(names) if other == name]
            times = "twice" if len(where) == 2 else f"{len(where)} times"
            columns = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
            raise DataError(
                f"column '{name}' appears {times} in the header of {source} (columns {columns}); rename one."
            )
        first[name] = j


def parse_header(lines: Iterable[str], sep: str | None, source: str) -> CsvHeader:
    """The header of a CSV whose text begins with ``lines`` (its first line, and the next ones
    when a quoted name spans lines): the separator (``sep``, else :func:`detect_sep` of the first
    line, else a comma) and the names, checked by :func:`check_names`.

    With ``sep`` given, a header that is a single column but holds another usual separator is
    refused: the fit would go on with one column named after the whole line.
    """
    lines = iter(lines)
    first = next(lines, "").removeprefix("\ufeff")
    detected = detect_sep(first) if sep is None else None
    use = sep or detected or ","
    names = next(csv.reader(itertools.chain([first], lines), delimiter=use), [])
    check_names(names, source)
    if sep is not None and len(names) == 1:
        others = [s for s in (",", *DETECTED_SEPS) if s != sep and s in first]
        if others:
            raise DataError(
                f"the header of {source} is a single column when split at {separator_name(sep)}, "
                f"but it holds {separator_name(others[0])}.",
                "Leave --sep out, or give the file's separator.",
            )
    return CsvHeader(tuple(names), use, detected is not None)


def describe(source: "str | Path") -> str:
    """How messages name a CSV source: ``standard input`` or ``'path'``."""
    return "standard input" if str(source) == "-" else f"'{source}'"


def read_header(path: "str | Path", sep: str | None = None, source: str | None = None) -> CsvHeader:
    """:func:`parse_header` of the file at ``path`` (named ``source`` in messages, by default its
    path); DataError when there is no such file. Bytes that are not UTF-8 are replaced here and
    reported by the reader that parses them."""
    source = source or describe(path)
    path = Path(path)
    if not path.exists():
        raise DataError(f"file {source} not found.")
    if path.is_dir():
        raise DataError(f"{source} is a directory, not a CSV file.")
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return parse_header(fh, sep, source)


def stdin_with_header(sep: str | None = None) -> tuple[CsvHeader, BinaryIO]:
    """The header of standard input and a binary stream of all of it, the header line included:
    the first line is read to find the separator and then given back in front of the rest."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream put in place of sys.stdin
        data = sys.stdin.read().encode("utf-8")
        head, stream = data.split(b"\n", 1)[0] + b"\n", io.BytesIO(data)
    else:
        head = buffer.readline()
        stream = io.BufferedReader(_Prefixed(head, buffer), 1 << 16)
    header = parse_header([head.decode("utf-8", errors="replace")], sep, "standard input")
    return header, stream


class _Prefixed(io.RawIOBase):
    """``prefix`` and then the rest of ``stream``, read as one binary stream."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        super().__init__()
        self._prefix, self._stream = memoryview(prefix), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # read1: what is there now (a pipe need not fill the buffer before the parser starts)
        data = getattr(self._stream, "read1", self._stream.read)(len(buffer))
        buffer[: len(data)] = data
        return len(data)
