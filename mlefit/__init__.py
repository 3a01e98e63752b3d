"""mlefit: maximum-likelihood fits of bernoulli, categorical and gaussian models.

The public API::

    import mlefit
    result = mlefit.fit("data.csv", family="bernoulli")
    result.params, result.se, result.to_dict()
    mlefit.save_model(result, "model.json")
    mlefit.predict("model.json", "new_rows.csv")      # a DataFrame: the rows plus predictions
    mlefit.check_grad("data.csv", family="bernoulli").passed
    mlefit.fit("data.csv", family="bernoulli", ci="profile", level=0.9)   # profile-likelihood intervals
    mlefit.lr_test("small.json", "big.json").p_value   # two fits saved by save_model / fit --save

    data = mlefit.simulate("bernoulli", [1, -2], intercept=0.5, n=1000, seed=0)
    study = mlefit.recover("bernoulli", [1, -2], n=500, reps=200, seed=0)
    study.coverage, study.se_ratio, study.to_dict()

Importing mlefit loads numpy only: scipy and pandas load inside the functions that use them.
"""

from __future__ import annotations

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
    "errors",
    "MlefitError",
    "DataError",
    "FamilyError",
    "UsageError",
    "ModelError",
    "ConvergenceWarning",
    "__version__",
]

from .families import get_family  # noqa: E402
from .fit import fit  # noqa: E402
from .results import FitResult, IterationRecord  # noqa: E402
from .recover import RecoveryResult, recover  # noqa: E402
from .simulate import Truth, compare_truth, make_truth, read_truth, simulate  # noqa: E402
from .checkgrad import GradCheck, check_grad  # noqa: E402
from .model import Model, load_model, predict, save_model  # noqa: E402
from .lrtest import LRTestResult, lr_test  # noqa: E402
