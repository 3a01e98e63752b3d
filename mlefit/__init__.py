"""mlefit: maximum-likelihood fits of bernoulli, categorical and gaussian models.

The public API::

    import mlefit
    result = mlefit.fit("data.csv", family="bernoulli")
    result.params, result.se, result.to_dict()

Importing mlefit loads numpy only: scipy and pandas load inside the functions that use them.
"""

from __future__ import annotations

from . import errors
from .errors import ConvergenceWarning, DataError, FamilyError, MlefitError, UsageError

__version__ = "0.1.0"

__all__ = [
    "fit",
    "simulate",
    "get_family",
    "FitResult",
    "IterationRecord",
    "errors",
    "MlefitError",
    "DataError",
    "FamilyError",
    "UsageError",
    "ConvergenceWarning",
    "__version__",
]

from .families import get_family  # noqa: E402
from .fit import fit  # noqa: E402
from .results import FitResult, IterationRecord  # noqa: E402
from .simulate import simulate  # noqa: E402
