"""Room for a matrix whose rows arrive piece by piece, on several threads, before their number is known.

The pyarrow reader of a numeric CSV (``mlefit.data``) learns how many rows a piece of the file
holds only once it has parsed it. Rather than read the whole file once more beforehand to count its
lines (0.05-0.08 s of a 1.1 s command-line fit of 394 MB), it reserves room for as many rows as the
file could possibly hold (:func:`reserve_rows`: address space, which takes memory only where it is
written), and each piece takes the rows after those of the pieces before it as soon as they are
known (:class:`RowStarts`). The matrix is the reservation's first rows: row-major, so that they are
one contiguous run whatever their number. Each piece maps the pages of its rows in one call before
writing them (:func:`populate`).
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

#: ``madvise`` advice that maps a range's pages for writing in one call (Linux 5.14 on).
MADV_POPULATE_WRITE = 23

_PENDING = -1
_FAILED = -2

#: The C library, loaded on first use (False where it cannot be).
_LIBC = None


def reserve_rows(most: int, width: int) -> np.ndarray | None:
    """A row-major float64 matrix of shape ``(most, width)`` in an anonymous map of its own, whose
    pages take memory only when first written (``MAP_NORESERVE`` where the system has it, so that
    the reservation is not counted against the memory the system may promise), or None when the
    system will not give that much address space. The map is released with the last view of it."""
    size = max(most * width, 1) * 8
    try:
        if hasattr(mmap, "MAP_PRIVATE"):
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
            memory = mmap.mmap(-1, size, flags=flags)
        else:  # Windows: the size is committed, and refused when too large
            memory = mmap.mmap(-1, size)
    except (OSError, MemoryError, OverflowError, ValueError):
        return None
    return np.frombuffer(memory, dtype=np.float64, count=most * width).reshape(most, width)


def populate(block: np.ndarray) -> None:
    """Map the pages of the contiguous ``block`` before it is written, in one call
    (``MADV_POPULATE_WRITE``), instead of one page fault per 4 KB on first write: a fresh 168 MB
    matrix took 0.06-0.08 s to map so and 0.01 s to write, against 0.10-0.13 s of faulting writes,
    and was released in 0.012 s instead of 0.029 s. Nothing happens where the system cannot do it (not
    Linux, or a kernel before 5.14): the writes then fault the pages in as usual."""
    if not sys.platform.startswith("linux") or block.nbytes == 0:
        return
    import ctypes

    libc = _libc(ctypes)
    if libc is None:
        return
    start = block.__array_interface__["data"][0]
    first = start - start % mmap.PAGESIZE
    libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(start + block.nbytes - first), MADV_POPULATE_WRITE)


def _libc(ctypes):
    """The C library's functions (ctypes releases the GIL around each call), or None."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None, use_errno=True)
            _LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC or None


class RowStarts:
    """The first row of each of ``n_pieces`` pieces, in their order, as the threads that read them
    learn their rows.

    A piece's rows follow those of every piece before it, so its thread waits for their numbers.
    Threads take pieces in order (a thread pool's queue), so every piece before one being read is
    being read too, and none of them waits for a later one: the waits end.
    """

    def __init__(self, n_pieces: int):
        self._rows = [_PENDING] * n_pieces
        self._known = 0  # pieces 0 .. _known - 1 have known rows, which start at 0 and end at _end
        self._end = 0
        self._starts = [0] * n_pieces
        self._changed = threading.Condition()

    def take(self, i: int, rows: int | None) -> int | None:
        """Say that piece ``i`` holds ``rows`` rows (None: it could not be read), wait for the
        pieces before it, and return its first row; None when it or a piece before it could not
        be read."""
        with self._changed:
            self._rows[i] = _FAILED if rows is None else rows
            while self._known < len(self._rows) and self._rows[self._known] >= 0:
                self._starts[self._known] = self._end
                self._end += self._rows[self._known]
                self._known += 1
            self._changed.notify_all()
            while self._known <= i and _FAILED not in self._rows[self._known:i + 1]:
                self._changed.wait()
            return self._starts[i] if self._known > i else None

    @property
    def total(self) -> int | None:
        """The rows of all pieces, when every one has been read."""
        return self._end if self._known == len(self._rows) else None
