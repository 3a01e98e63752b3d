"""Progress of long work, told to whoever listens, and by default to no one.

The readers and the optimiser say how far they are with one call each: :func:`read` per chunk
of a file (bytes read so far, of how many) and :func:`iteration` per step of the optimiser
(iteration number and NLL). Who listens is a *reporter* installed for a block of code with
:func:`reporting` (the command line installs one that draws on a terminal; see
``render.FitProgress``); without one, a call is a context-variable lookup and returns. The
reporter is context-local (:mod:`contextvars`), so it belongs to the call that installed it: a
fit running in another thread or task reports nothing to it, and nothing here knows of rich or
of the command line.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Iterator, Protocol


class Reporter(Protocol):
    """What a reporter is told. Its methods must be quick and must not raise."""

    def read(self, done: int, total: int | None, what: str) -> None:
        """``done`` bytes of ``total`` (None: unknown) read by the pass named ``what``."""

    def iteration(self, iteration: int, nll: float) -> None:
        """The optimiser reached ``iteration`` (0: the start) with objective value ``nll``."""


_REPORTER: ContextVar[Reporter | None] = ContextVar("mlefit_progress", default=None)


def read(done: int, total: int | None = None, what: str = "reading") -> None:
    """Tell the reporter, if any, that ``done`` of ``total`` bytes have been read."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter.read(done, total, what)


def iteration(iteration: int, nll: float) -> None:
    """Tell the reporter, if any, that the optimiser reached ``iteration`` with value ``nll``."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter.iteration(iteration, nll)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[Reporter | None]:
    """Install ``reporter`` for the block (None: report to no one)."""
    token = _REPORTER.set(reporter)
    try:
        yield reporter
    finally:
        _REPORTER.reset(token)


def muted() -> AbstractContextManager[None]:
    """No reporting for the block: work that is not the user's fit (a warm start's sub-fit)."""
    return reporting(None)
