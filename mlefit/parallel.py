"""Tasks over row blocks on a few threads: the in-memory engine's parallelism.

numpy's ufunc loops and BLAS calls release the GIL, so threads working on different row blocks of
``X`` run at the same time on different cores. :func:`map_tasks` runs ``fn(0), ..., fn(n - 1)`` on
:func:`n_threads` threads (the calling thread is one of them); each thread takes the next task
when it finishes one, so a thread slowed by other work on its core takes fewer. The results come
back in task order, so a caller that adds them up in that order gets the same sum, to the last
bit, whatever the number of threads and however the tasks fell to them.

The number of threads is :data:`THREADS` when set, else the environment variable
``MLEFIT_THREADS``, else the usable cores, at most :data:`MAX_THREADS`. Calls from a thread other
than the main one (a dask worker, a user's own pool) run every task on that thread: whoever
started it already runs work in parallel, and threads of ours on top would only compete with it.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import sys
import threading
from typing import TYPE_CHECKING, Callable, TypeVar

from .errors import UsageError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")

#: Threads for in-memory fits; None: ``MLEFIT_THREADS``, else the usable cores up to MAX_THREADS.
THREADS: int | None = None
#: The default's cap: beyond a few threads the row blocks are memory-bound and gain little.
MAX_THREADS = 4
ENV_VAR = "MLEFIT_THREADS"

_BLAS_CONTROLLER = None
_BLAS_WITH_SCIPY = False
_pool: "ThreadPoolExecutor | None" = None
_pool_size = 0
_pool_lock = threading.Lock()


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def n_threads() -> int:
    """Threads :func:`map_tasks` uses (see the module's docstring)."""
    if THREADS is not None:
        return max(1, int(THREADS))
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return min(usable_cores(), MAX_THREADS)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{ENV_VAR} must be a whole number of threads, 1 or more; got '{text}'.")
    return value


def one_blas_thread():
    """A context in which BLAS runs on one thread (in every thread of the process).

    The blocks are small, so a BLAS call on one of them is over in microseconds: a second BLAS
    thread saves little, and when another process holds a core the threads wait for each other
    on every call (measured: a categorical fit 5x slower on a loaded 2-core machine). Parallel
    work goes to :func:`map_tasks`, one BLAS thread per task.

    numpy and scipy each bring an OpenBLAS of their own (scipy's is loaded with ``scipy.linalg``),
    so the controller is built again once scipy's has been loaded after it: a limit that missed
    it left scipy's Cholesky factorisations on every core (measured on a loaded 2-core machine:
    a 500 x 500 factorisation and inverse 1.2 s instead of 0.3 s).
    """
    global _BLAS_CONTROLLER, _BLAS_WITH_SCIPY
    with_scipy = "scipy.linalg" in sys.modules
    if _BLAS_CONTROLLER is None or with_scipy != _BLAS_WITH_SCIPY:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
        _BLAS_WITH_SCIPY = with_scipy
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _executor(workers: int) -> "ThreadPoolExecutor":
    from concurrent.futures import ThreadPoolExecutor  # on first use: `mlefit --help` never pays for it

    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="mlefit")
            _pool_size = workers
        return _pool


def map_tasks(fn: Callable[[int], T], n_tasks: int) -> list[T]:
    """``[fn(0), ..., fn(n_tasks - 1)]``, computed on up to :func:`n_threads` threads.

    The other threads run in a copy of the caller's context, so numpy's error state
    (``np.errstate``) holds in them too. An exception in a task stops the threads from taking
    further tasks and is raised here once they have all stopped.
    """
    threads = min(n_threads(), n_tasks)
    if threads <= 1 or threading.current_thread() is not threading.main_thread():
        return [fn(i) for i in range(n_tasks)]
    results: list = [None] * n_tasks
    counter = itertools.count()
    failed = threading.Event()

    def work() -> None:
        try:
            for i in iter(counter.__next__, None):  # next() on a count is atomic under the GIL
                if i >= n_tasks or failed.is_set():
                    return
                results[i] = fn(i)
        except BaseException:
            failed.set()
            raise

    pool = _executor(threads - 1)
    futures = [pool.submit(contextvars.copy_context().run, work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        errors = [f.exception() for f in futures]  # waits for every helper thread
    for error in errors:
        if error is not None:
            raise error
    return results
