"""The elementwise kernels of compiled text models against mpmath at 50 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import special

from mlefit.textmodel.kernels import dsigmoid, softplus, trigamma

mpmath.mp.dps = 50


def test_softplus_is_accurate_in_both_tails():
    x = np.concatenate([np.linspace(-745, 745, 1491), np.linspace(-3, 3, 601), [0.0, 1e-300, -1e-300]])
    want = np.array([float(mpmath.log1p(mpmath.exp(mpmath.mpf(v)))) for v in x])
    got = softplus(x)
    tiny = want < 1e-300  # exp(-745) and below: both are subnormal or zero
    np.testing.assert_allclose(got[~tiny], want[~tiny], rtol=4e-16)
    assert softplus(1000.0) == 1000.0 and softplus(-1000.0) == 0.0
    assert isinstance(softplus(0.5), float)


def test_sigmoid_derivative_is_accurate_in_both_tails():
    x = np.linspace(-700, 700, 1401)
    want = np.array([float(mpmath.exp(-abs(mpmath.mpf(v))) / (1 + mpmath.exp(-abs(mpmath.mpf(v)))) ** 2) for v in x])
    np.testing.assert_allclose(dsigmoid(x), want, rtol=4e-16)
    # 1 - sigmoid(x) cancels to 0 for x > 37; the kernel does not
    assert dsigmoid(40.0) == pytest.approx(float(mpmath.exp(-40) / (1 + mpmath.exp(-40)) ** 2), rel=1e-15)


@pytest.mark.parametrize("x", [np.geomspace(1e-8, 1e8, 801), np.linspace(0.05, 25, 500), np.array([9.999999, 10.0, 10.000001])])
def test_trigamma_equals_mpmath(x):
    want = np.array([float(mpmath.psi(1, mpmath.mpf(v))) for v in x])
    np.testing.assert_allclose(trigamma(x), want, rtol=2e-15)


def test_trigamma_of_non_positive_arguments_is_scipys():
    x = np.array([-2.5, -0.5, 0.0])
    np.testing.assert_array_equal(trigamma(np.append(x, 3.0))[:3], special.polygamma(1, x))
    assert trigamma(2.0) == pytest.approx(np.pi**2 / 6 - 1, rel=1e-15)
