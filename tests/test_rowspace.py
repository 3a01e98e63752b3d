"""Room for rows that arrive piece by piece (mlefit.readers.rowspace), and the pyarrow CSV reader
that uses it: no pass over the file to count its rows first, rows in file order whatever order the
threads finish in, a piece that cannot be read stopping the pieces after it, and the reserved rows
that are never written taking no memory."""

from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mlefit import csvformat, data
from mlefit.families import get_family
from mlefit.readers import rowspace

LINUX = sys.platform.startswith("linux")


def run_pieces(rows: list[int | None], threads: int, *, jitter: float = 0.002) -> tuple[list, int | None]:
    """Each piece's first row from RowStarts, and their total, the pieces taken in order by
    ``threads`` threads that finish in a random order."""
    starts = rowspace.RowStarts(len(rows))
    delays = random.Random(len(rows) * threads).choices([0.0, jitter / 2, jitter], k=len(rows))

    def piece(i: int) -> int | None:
        time.sleep(delays[i])
        return starts.take(i, rows[i])

    with ThreadPoolExecutor(threads) as pool:
        found = list(pool.map(piece, range(len(rows))))
    return found, starts.total


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_each_piece_starts_after_the_pieces_before_it(threads):
    rows = [5, 0, 17, 1, 3, 0, 0, 9, 2, 11] * 4
    found, total = run_pieces(rows, threads)
    assert found == [int(v) for v in np.concatenate([[0], np.cumsum(rows)[:-1]])]
    assert total == sum(rows)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("bad", [0, 7, 19])
def test_a_piece_that_fails_stops_those_after_it(threads, bad):
    rows = [4] * 20
    rows[bad] = None
    found, total = run_pieces(rows, threads)
    assert found[:bad] == [4 * i for i in range(bad)]  # the pieces before it keep their rows
    assert found[bad:] == [None] * (20 - bad)
    assert total is None


def test_a_waiting_piece_is_woken_by_the_one_before_it():
    starts = rowspace.RowStarts(2)
    got = []
    later = threading.Thread(target=lambda: got.append(starts.take(1, 3)))
    later.start()
    time.sleep(0.05)
    assert got == [] and starts.total is None  # piece 1 waits for piece 0's rows
    assert starts.take(0, 7) == 0
    later.join(5)
    assert got == [7] and starts.total == 10


def resident_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not LINUX, reason="resident memory from /proc")
def test_reserved_rows_take_memory_only_where_written():
    before = resident_bytes()
    room = rowspace.reserve_rows(4_000_000, 64)  # 2 GB of address space
    assert room.shape == (4_000_000, 64) and room.flags.c_contiguous and room.dtype == np.float64
    room[:1000] = 2.0
    grown = resident_bytes() - before
    assert grown < 16 << 20  # the 512 KB written, not the 2 GB reserved
    assert np.all(room[:1000] == 2.0)


def populate_works() -> bool:
    import ctypes

    room = rowspace.reserve_rows(512, 8)
    libc = ctypes.CDLL(None, use_errno=True)
    address = room.__array_interface__["data"][0]
    return libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(4096), rowspace.MADV_POPULATE_WRITE) == 0


@pytest.mark.skipif(not LINUX or not populate_works(), reason="MADV_POPULATE_WRITE is Linux 5.14's")
def test_populated_rows_are_written_without_page_faults():
    import resource

    room = rowspace.reserve_rows(400_000, 10)
    block = room[123:300_123]  # not on a page boundary
    rowspace.populate(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block[:] = 1.5
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 100  # 5,860 pages of 4 KB
    assert np.all(block == 1.5)


# -- the reader -----------------------------------------------------------------------------------


def arrow_read(path: Path, target="y", features=None, intercept=True):
    return data._read_arrow_csv(path, target, features, intercept, csvformat.read_header(path))


@pytest.fixture
def small_pieces(monkeypatch):
    pytest.importorskip("pyarrow")
    monkeypatch.setattr(data, "ARROW_PIECE_BYTES", 1000)


def test_the_rows_are_not_counted_beforehand(tmp_path, small_pieces, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 4))
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,d,y\n" + "".join(",".join(map(repr, r.tolist())) + f",{i % 2}\n" for i, r in enumerate(X)))

    def no_counting(*args, **kwargs):
        raise AssertionError("the rows were counted in a pass of their own")

    monkeypatch.setattr(data, "_pieces", no_counting)
    monkeypatch.setattr(data, "CSV_MAX_WORKERS", 3)
    found = arrow_read(path)
    assert found is not None
    M, y, target, wanted = found
    assert M.shape == (3000, 5) and M.flags.c_contiguous and wanted == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(M[:, 0], 1.0)
    np.testing.assert_array_equal(M[:, 1:], X)
    np.testing.assert_array_equal(y, np.arange(3000) % 2)


def test_the_shortest_lines_fit_in_the_room(tmp_path, small_pieces):
    """Lines as short as they can be (one character in each field read, the others empty) use
    every row of the room reserved for the file."""
    path = tmp_path / "short.csv"
    n = 2500
    path.write_text("a,b,y\n" + "".join(f"{i % 10},,{i % 2}\n" for i in range(n - 1)) + "9,,1")
    found = arrow_read(path, features="a")
    assert found is not None
    M, y, _, wanted = found
    assert wanted == ["a"] and M.shape == (n, 2)
    np.testing.assert_array_equal(M[:, 1], [i % 10 for i in range(n - 1)] + [9])
    np.testing.assert_array_equal(y, [i % 2 for i in range(n - 1)] + [1])


@pytest.mark.parametrize("line", [0, 700, 2999])
def test_a_blank_line_anywhere_refuses_the_file(tmp_path, small_pieces, line):
    """pyarrow would skip it and pandas does too, but a blank line is left to the table path, as a
    line end within quotes is."""
    rows = [f"{i},{i % 2}" for i in range(3000)]
    rows.insert(line, "")
    path = tmp_path / "b.csv"
    path.write_text("a,y\n" + "\n".join(rows) + "\n")
    assert arrow_read(path) is None
    ds = data.load_dataset(str(path), get_family("bernoulli"))
    assert ds.n_obs == 3000
