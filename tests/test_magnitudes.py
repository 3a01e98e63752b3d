"""Feature columns of any finite float64 magnitude fit like the same data rescaled: the estimates
and standard errors scale back exactly, on every engine, with no RuntimeWarning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit.errors import UsageError
from mlefit.families import get_family

FAMILIES = [
    "bernoulli", "categorical", "gaussian", "poisson", "negbin", "gamma", "weibull", "exponential", "lognormal",
    "loglogistic",
]
SCALES = {"1e200": 1e200, "1e-200": 1e-200, "2^700": 2.0**700, "mixed": np.array([1e200, 1e-200, 1.0])}


def problem(family: str, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    fam = get_family(family)
    n_classes = 3 if fam.n_coef_rows(3) > 1 else None
    params = np.append(0.3 * rng.standard_normal(fam.n_coef_rows(n_classes) * 4), np.log(0.8) * np.ones(len(fam.ancillary)))
    y = fam.simulate(params, np.column_stack([np.ones(n), x]), rng)
    return x, y


def per_parameter(family: str, scale, n_params: int) -> np.ndarray:
    """The factor each reported parameter gets when feature column j is multiplied by scale[j]."""
    fam = get_family(family)
    inverse = np.broadcast_to(1.0 / np.asarray(scale, float), (3,))
    rows = (n_params - len(fam.ancillary)) // 4
    return np.concatenate([np.tile(np.append(1.0, inverse), rows), np.ones(len(fam.ancillary))])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scale", list(SCALES.values()), ids=list(SCALES))
def test_extreme_columns_fit_like_the_data_rescaled(family, scale):
    x, y = problem(family)
    plain = mlefit.fit(X=x, y=y, family=family)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning, no ConvergenceWarning
        scaled = mlefit.fit(X=x * scale, y=y, family=family)
    factor = per_parameter(family, scale, len(plain.params))
    assert scaled.converged
    np.testing.assert_allclose(scaled.params / factor, plain.params, rtol=1e-12)
    np.testing.assert_allclose(scaled.se / factor, plain.se, rtol=1e-12)
    np.testing.assert_allclose(scaled.z, plain.z, rtol=1e-10)
    assert scaled.loglik == pytest.approx(plain.loglik, rel=1e-13)
    json.dumps(scaled.to_dict(), allow_nan=False)  # finite where defined, null otherwise


def test_robust_standard_errors_scale_back(rng):
    x, y = problem("poisson")
    plain = mlefit.fit(X=x, y=y, family="poisson", cov="robust")
    scaled = mlefit.fit(X=x * 1e180, y=y, family="poisson", cov="robust")
    factor = per_parameter("poisson", 1e180, len(plain.params))
    np.testing.assert_allclose(scaled.se / factor, plain.se, rtol=1e-12)


@pytest.mark.parametrize("options", [{}, {"stream": True, "chunk_rows": 97}], ids=["memory", "stream"])
def test_a_csv_with_extreme_columns_through_the_cli(tmp_path, fit_json, options):
    x, y = problem("bernoulli")
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": x[:, 0] * 1e200, "b": x[:, 1] * 1e-200, "c": x[:, 2], "y": y}).to_csv(path, index=False)
    args = [path, "-f", "bernoulli"] + (["--stream", "--chunk-rows", "97"] if options else [])
    doc, result = fit_json(*args)
    assert result.stderr == ""
    plain = mlefit.fit(X=x, y=y, family="bernoulli")
    estimates = np.array([p["estimate"] for p in doc["parameters"]])
    np.testing.assert_allclose(estimates * [1, 1e200, 1e-200, 1], plain.params, rtol=1e-10)


def test_a_penalty_on_extreme_columns_is_refused_with_a_true_sentence():
    x, y = problem("bernoulli")
    with pytest.raises(UsageError, match=r"feature column 'x2' has values of magnitude about 2\^-66[0-9]"):
        mlefit.fit(X=x * [1.0, 1e-200, 1.0], y=y, family="bernoulli", l2=1.0)


def test_ordinary_magnitudes_are_not_scaled():
    """Columns within 2^-64..2^64 are fitted as they are (no copy, the same arithmetic); beyond,
    each extreme column is brought to magnitudes in [0.5, 1) by a power of two."""
    import importlib

    from mlefit.data import dataset_from_arrays

    fit_module = importlib.import_module("mlefit.fit")  # the module, not the function mlefit.fit
    x, y = problem("bernoulli")

    def scale(columns):
        return fit_module.column_scale(fit_module.source_of(dataset_from_arrays(columns, y, get_family("bernoulli"))).rows)

    assert scale(x * 1e15) is None and scale(x * 1e-15) is None
    found = scale(x * [1e200, 1.0, 1e-15])
    assert found[0] == 1.0 and found[2:].tolist() == [1.0, 1.0]  # the intercept and ordinary columns
    top = np.abs(x[:, 0] * 1e200).max() * found[1]
    assert 0.5 <= top < 1.0 and np.log2(found[1]).is_integer()
