"""Every exception and warning mlefit raises on purpose.

A :class:`MlefitError` is a problem with what the user gave (a file, a column, an option): it carries
one sentence saying what was wrong, an optional hint saying what to do, and the process exit code
the command line uses for it. Anything else that escapes is a bug and keeps its traceback.

Exit codes (documented in the README):

====  =====================================================================
0     the fit converged (or the command succeeded)
1     an unexpected internal error (a bug: Python's own code for a traceback)
2     a usage or input error: bad option, missing file or column, bad values
3     the fit ran but did not converge; its results are still printed
4     the classes are separated: the maximum-likelihood estimates do not exist
5     ``check-grad``, or a text model before its fit: the analytic derivatives disagree with
      finite differences
====  =====================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_SEPARATION = 4
EXIT_CHECK_FAILED = 5


class MlefitError(Exception):
    """A problem with the user's input, reported as one sentence and an exit code.

    Parameters
    ----------
    message : str
        What was wrong, naming the offending column, value or option.
    hint : str, optional
        What to do about it.
    """

    exit_code = EXIT_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class DataError(MlefitError):
    """The data cannot be used: a missing file or column, missing or non-numeric values."""


class CollinearityError(DataError):
    """The design matrix is rank-deficient: some feature columns are linear combinations of others."""


class SeparationError(MlefitError):
    """Some feature columns separate the classes (bernoulli, categorical): the MLE does not exist.

    Under complete or quasi-complete separation the likelihood keeps increasing as some
    coefficients go to infinity, so there is no finite maximum to report. A penalty (``--l2``)
    gives finite MAP estimates.
    """

    exit_code = EXIT_SEPARATION


class FamilyError(MlefitError):
    """The target does not fit the family (wrong labels, a single class, a non-numeric target)."""


class UsageError(MlefitError):
    """An option value that cannot be used (an unknown family or method, a bad tolerance)."""


class ModelError(MlefitError):
    """A saved model file cannot be read or used (not a model, a newer format, an unknown design)."""


class DerivativeError(MlefitError):
    """The derivatives derived for a text model disagree with finite differences at the start of
    its fit: a bug of mlefit, not a mistake of the user's (exit code 5, as ``check-grad``'s)."""

    exit_code = EXIT_CHECK_FAILED


class ConvergenceWarning(UserWarning):
    """The optimiser stopped before the convergence test was met; the result says why."""
