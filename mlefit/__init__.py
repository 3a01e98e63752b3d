"""mlefit: maximum-likelihood fits of the families in ``mlefit.families`` and of likelihoods
written as text.

The public API (``docs/python-api.md`` shows each call with its output)::

    import mlefit
    result = mlefit.fit("data.csv", family=name)   # name: one of `mlefit families`
    result.params, result.se, result.to_dict()
    mlefit.save_model(result, "model.json")
    mlefit.predict("model.json", "new_rows.csv")      # a DataFrame: the rows plus predictions
    mlefit.check_grad("data.csv", family=name).passed
    mlefit.fit("data.csv", family=name, ci="profile", level=0.9)   # profile-likelihood intervals
    mlefit.lr_test("small.json", "big.json").p_value   # two fits saved by save_model / fit --save
    fits = mlefit.fit_distributions("claims.csv", "amount")   # the default distributions, ranked by AIC
    fits.best.name, fits.best.parameters, fits.to_dict()

    data = mlefit.simulate(name, [1, -2], intercept=0.5, n=1000, seed=0)
    study = mlefit.recover(name, [1, -2], n=500, reps=200, seed=0)
    study.coverage, study.se_ratio, study.to_dict()

Importing mlefit loads none of numpy, scipy and pandas: each public name is imported on first use,
and scipy and pandas load inside the functions that use them.
"""

from __future__ import annotations

import sys
import types

from . import errors
from .errors import ConvergenceWarning, DataError, FamilyError, MlefitError, ModelError, UsageError

__version__ = "0.1.0"

__all__ = [
    "fit",
    "simulate",
    "recover",
    "RecoveryResult",
    "Truth",
    "make_truth",
    "read_truth",
    "compare_truth",
    "get_family",
    "FitResult",
    "IterationRecord",
    "Model",
    "save_model",
    "load_model",
    "predict",
    "check_grad",
    "GradCheck",
    "lr_test",
    "LRTestResult",
    "fit_distributions",
    "DistributionFits",
    "errors",
    "MlefitError",
    "DataError",
    "FamilyError",
    "UsageError",
    "ModelError",
    "ConvergenceWarning",
    "__version__",
]

#: Where each public name lives: imported on first use (PEP 562), so that ``import mlefit`` and the
#: command line's start-up (``mlefit --help``) load none of the numerical code.
_LAZY = {
    "fit": "fit",
    "get_family": "families",
    "FitResult": "results",
    "IterationRecord": "results",
    "RecoveryResult": "recover",
    "recover": "recover",
    "Truth": "simulate",
    "compare_truth": "simulate",
    "make_truth": "simulate",
    "read_truth": "simulate",
    "simulate": "simulate",
    "GradCheck": "checkgrad",
    "fit_distributions": "dist",
    "DistributionFits": "dist",
    "check_grad": "checkgrad",
    "Model": "model",
    "load_model": "model",
    "predict": "model",
    "save_model": "model",
    "lr_test": "lrtest",
    "LRTestResult": "lrtest",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlefit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """The package's module type: importing a submodule named like a public function
    (``mlefit.fit``, ``mlefit.simulate``, ``mlefit.recover``) sets that attribute of the package
    to the submodule; the function of that name is kept instead, as an eager ``from .fit import
    fit`` would, so ``mlefit.fit(...)`` works whatever was imported first."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
