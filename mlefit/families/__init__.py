"""The registry of families.

Adding a family is one file in this folder and one line in ``_REGISTRY``. The registry names the
classes by path so that listing the names (for ``--family`` choices and ``mlefit --help``) imports
nothing numeric.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .base import Family

_REGISTRY = {
    "bernoulli": "bernoulli:Bernoulli",
    "categorical": "categorical:Categorical",
    "gaussian": "gaussian:Gaussian",
    "poisson": "poisson:Poisson",
    "negbin": "negbin:NegBin",
    "gamma": "gamma:Gamma",
    "weibull": "weibull:Weibull",
    "exponential": "exponential:Exponential",
    "lognormal": "lognormal:LogNormal",
    "loglogistic": "loglogistic:LogLogistic",
    "ordinal": "ordinal:Ordinal",
}

FAMILY_NAMES: tuple[str, ...] = tuple(_REGISTRY)
#: The distributions of ``mlefit dist`` in the order of its listings, continuous then discrete
#: (:mod:`mlefit.families.distributions` describes each); named here so that the command line's
#: help lists them without loading numpy.
DISTRIBUTION_NAMES: tuple[str, ...] = (
    "normal", "lognormal", "exponential", "gamma", "weibull", "loglogistic", "beta", "student_t", "logistic",
    "gumbel", "poisson", "negbin", "geometric",
)
#: The family of ``mlefit.fit`` when none is named.
DEFAULT_FAMILY = "bernoulli"


def _load(name: str) -> type:
    module, cls = _REGISTRY[name].split(":")
    return getattr(import_module(f"{__name__}.{module}"), cls)


def get_family(name: "str | Family", **options) -> "Family":
    """The family called ``name`` with ``options`` (``link``, ``levels``, ...; None values are not
    given), or a UsageError listing the known names; a Family instance is returned as it is."""
    if not isinstance(name, str):
        if any(v is not None for v in options.values()):
            raise UsageError("give a family's options with its name, not with a Family instance.")
        return name
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise UsageError(
            f"unknown family '{name}'.", f"Choose one of: {', '.join(FAMILY_NAMES)}."
        )
    return _load(key)(**options)


def __getattr__(attr: str):
    if attr == "FAMILIES":
        return {name: _load(name) for name in _REGISTRY}
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
