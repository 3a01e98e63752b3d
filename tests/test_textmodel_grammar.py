"""Text models: the grammar, its refusals, the names found, the stable rewrites and the cache."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mlefit.errors import UsageError
from mlefit.textmodel import MAX_DEPTH, MAX_LENGTH, clear_cache, compile_model
from mlefit.textmodel import expr as E
from mlefit.textmodel.grammar import parse_model, parse_nll

COLUMNS = ["y", "x", "z", "n"]


def refused(text: str, columns=COLUMNS, nll: bool = False) -> str:
    """The error's text (message and hint), after checking the message is one sentence."""
    with pytest.raises(UsageError) as info:
        if nll:
            compile_model(nll=text, columns=columns)
        else:
            compile_model(text, columns=columns)
    message = info.value.message
    assert ". " not in message and message.endswith("."), f"not one sentence: {message}"
    return str(info.value)


def test_columns_and_parameters_are_found_in_order_of_first_appearance():
    m = compile_model("y ~ normal(mean = a + b*x, sd = exp(log_s))", columns=["y", "x", "z"])
    assert m.target == "y" and m.distribution == "normal"
    assert m.data_columns == ["y", "x"]
    assert m.covariate_columns == ["x"]
    assert m.param_names == ["a", "b", "log_s"]
    m = compile_model("y ~ gamma(scale = exp(c0 + c1*z + c2*x), shape = k)", columns=COLUMNS)
    assert m.data_columns == ["y", "z", "x"]
    assert m.param_names == ["c0", "c1", "c2", "k"]


def test_positional_arguments_follow_the_table_order():
    by_name = compile_model("y ~ normal(sd = exp(s), mean = a + b*x)", columns=COLUMNS)
    by_position = compile_model("y ~ normal(a + b*x, exp(s))", columns=COLUMNS)
    mixed = compile_model("y ~ normal(a + b*x, sd = exp(s))", columns=COLUMNS)
    D = np.array([[1.0, 0.5], [2.0, -1.0], [0.3, 2.0]])
    assert by_position.param_names == mixed.param_names == ["a", "b", "s"]
    assert by_name.param_names == ["s", "a", "b"]
    rows = by_position.nll_rows(np.array([0.1, 0.7, -0.2]), D)
    np.testing.assert_array_equal(mixed.nll_rows(np.array([0.1, 0.7, -0.2]), D), rows)
    np.testing.assert_allclose(by_name.nll_rows(np.array([-0.2, 0.1, 0.7]), D), rows, rtol=1e-15)


def test_nll_text_reads_columns_and_parameters():
    m = compile_model(nll="exp(a + b*x) - y*(a + b*x)", columns=["x", "y"])
    assert m.target is None and m.distribution is None
    assert m.data_columns == ["x", "y"] and m.param_names == ["a", "b"]


def test_line_breaks_and_tabs_read_as_spaces():
    m = compile_model("y ~ normal(\n    mean = a + b*x,\n\tsd = exp(s))", columns=COLUMNS)
    assert m.param_names == ["a", "b", "s"]


@pytest.mark.parametrize(
    "text, token",
    [
        ("y ~ normal(mean = a + b.x, sd = s)", "b.x"),
        ("y ~ normal(mean = os.system, sd = s)", "os.system"),
        ("y ~ normal(mean = foo(a), sd = s)", "foo"),
        ("y ~ normal(mean = eval(a), sd = s)", "eval"),
        ("y ~ normal(mean = __import__('os').system('ls'), sd = s)", "__import__('os').system"),
        ("y ~ normal(mean = (lambda: 1)(), sd = s)", "lambda"),
        ("y ~ normal(mean = lambda: a, sd = s)", "lambda"),
        ("y ~ normal(mean = x[0], sd = s)", "x[0]"),
        ("y ~ normal(mean = 'a', sd = s)", "'a'"),
        ("y ~ normal(mean = b'a', sd = s)", "b'a'"),
        ("y ~ normal(mean = a < b, sd = s)", "a < b"),
        ("y ~ normal(mean = a == b, sd = s)", "a == b"),
        ("y ~ normal(mean = a and b, sd = s)", "a and b"),
        ("y ~ normal(mean = not a, sd = s)", "not"),
        ("y ~ normal(mean = a if b else c, sd = s)", "a if b else c"),
        ("y ~ normal(mean = True, sd = s)", "True"),
        ("y ~ normal(mean = None, sd = s)", "None"),
        ("y ~ normal(mean = 2j, sd = s)", "2j"),
        ("y ~ normal(mean = 1e999, sd = s)", "1e999"),
        ("y ~ normal(mean = x^2, sd = s)", "^"),
        ("y ~ normal(mean = a % 2, sd = s)", "%"),
        ("y ~ normal(mean = a // 2, sd = s)", "//"),
        ("y ~ normal(mean = a @ b, sd = s)", "@"),
        ("y ~ normal(mean = (a := 2), sd = s)", "a := 2"),
        ("y ~ normal(mean = [a], sd = s)", "[a]"),
        ("y ~ normal(mean = {a: 1}, sd = s)", "{a: 1}"),
        ("y ~ normal(mean = f'{a}', sd = s)", "f'{a}'"),
        ("y ~ normal(mean = [a for a in x], sd = s)", "[a for a in x]"),
        ("y ~ normal(mean = exp(*a), sd = s)", "exp(*a)"),
        ("y ~ normal(mean = exp(x=a), sd = s)", "exp(x=a)"),
        ("y ~ normal(mean = exp(a, b), sd = s)", "exp(a, b)"),
        ("y ~ normal(mean = __class__, sd = s)", "__class__"),
        ("y ~ normal(mean = a if, sd = s)", "',' (character 23)"),
        ("y ~ normal(mean = import, sd = s)", "import"),
        ("y ~ normal(mean = a, sd = s", "("),
        ("y ~ normal(mean = a + , sd = s)", ","),
        ("y ~ normal(mean = a\x00, sd = s)", "'\\x00'"),
        ("y ~ normal(mean = normal(a, s), sd = s)", "normal"),
    ],
)
def test_text_outside_the_grammar_is_refused_naming_the_token(text, token):
    message = refused(text)
    assert token in message, message


@pytest.mark.parametrize(
    "text, words",
    [
        ("y ~ norml(mean = a, sd = s)", ["norml", "Did you mean 'normal'"]),
        ("y ~ normal(mu = a, sd = s)", ["'mu'", "mean, sd"]),
        ("y ~ normal(mean = a)", ["'sd'"]),
        ("y ~ normal(mean = a, mean = b, sd = s)", ["'mean'", "twice"]),
        ("y ~ normal(a, s, t)", ["2 argument", "3 are given"]),
        ("y ~ normal(mean = a, sd = s, **k)", ["**"]),
        ("q ~ normal(mean = a, sd = s)", ["'q'", "not a column"]),
        ("log(y) ~ normal(mean = a, sd = s)", ["log(y)", "column name"]),
        ("y ~ normal(mean = x, sd = z)", ["no parameters"]),
        ("y normal(mean = a, sd = s)", ["no '~'"]),
        ("y ~ x ~ normal(mean = a, sd = s)", ["more than one '~'"]),
        ("y ~ normal(mean = a, sd = s) + 1", ["distribution"]),
        ("y ~ a + b", ["distribution"]),
        ("y ~ normal(mean = a + y, sd = s)", ["'y'", "'mean'"]),
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("y ~ ", ["nothing right of '~'"]),
        ("y ~ normal(mean = a - a, sd = exp(s))", ["'a'", "does not enter"]),
        ("y ~ normal(mean = b + 0*c, sd = exp(s))", ["'c'", "does not enter"]),
    ],
)
def test_bad_models_are_refused_in_one_sentence(text, words):
    message = refused(text, columns=["y", "x", "z"])
    for word in words:
        assert word in message, (word, message)


def test_nll_text_refusals():
    assert "'~'" in refused("y ~ normal(mean = a, sd = s)", nll=True)
    assert "__import__('os').system" in refused("__import__('os').system('ls')", nll=True)
    assert "no parameters" in refused("y*log(x)", nll=True)


def test_very_long_and_very_deep_texts_are_refused():
    long_text = "y ~ poisson(rate = exp(" + " + ".join(f"b{i}*x" for i in range(400)) + "))"
    assert len(long_text) > MAX_LENGTH
    assert f"the limit is {MAX_LENGTH}" in refused(long_text)
    deep = "y ~ normal(mean = " + "exp(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1) + ", sd = s)"
    assert f"deeper than {MAX_DEPTH} levels" in refused(deep)
    minus = "y ~ normal(mean = " + "-" * 200 + "a, sd = s)"
    assert "deeper" in refused(minus)
    parens = "y ~ normal(mean = " + "(" * 300 + "a" + ")" * 300 + ", sd = s)"
    assert "too many nested parentheses" in refused(parens)


def test_long_sums_count_as_one_level():
    text = "y ~ poisson(rate = exp(" + " + ".join(f"b{i}*x" for i in range(150)) + "))"
    m = compile_model(text, columns=["y", "x"])
    assert len(m.param_names) == 150


def test_the_text_is_never_evaluated(tmp_path, monkeypatch):
    marker = tmp_path / "touched"
    monkeypatch.chdir(tmp_path)
    for text in [
        f"y ~ normal(mean = __import__('os').system('touch {marker}'), sd = s)",
        f"y ~ normal(mean = open('{marker}', 'w'), sd = s)",
        "y ~ normal(mean = exec('import os'), sd = s)",
    ]:
        refused(text)
    assert not marker.exists()


def test_unicode_names_are_parameters():
    m = compile_model("y ~ normal(mean = α + β*x, sd = exp(σ))", columns=["y", "x"])
    assert m.param_names == ["α", "β", "σ"]


# -- stable rewrites --------------------------------------------------------------------------------
def tree(text: str) -> E.Expr:
    return parse_nll(text).nll


@pytest.mark.parametrize(
    "written, stable",
    [
        ("log(exp(a))", "a"),
        ("log(sigmoid(a))", "-softplus(-a)"),
        ("log(1 - sigmoid(a))", "-softplus(a)"),
        ("log1p(-sigmoid(a))", "-softplus(a)"),
        ("log(1 + a*x)", "log1p(a*x)"),
        ("log(a*x + 1)", "log1p(a*x)"),
        ("log(1 - a)", "log1p(-a)"),
        ("exp(a) - 1", "expm1(a)"),
        ("log(1/a)", "-log(a)"),
        ("log(sqrt(a))", "0.5*log(a)"),
        ("sigmoid(logit(a))", "a"),
        ("logit(expit(a))", "a"),
        ("exp(a)**2", "exp(2*a)"),
        ("1/(1 + exp(-a))", "sigmoid(a)"),
        ("1/(exp(a*x) + 1)", "sigmoid(-a*x)"),
    ],
)
def test_unstable_forms_are_rewritten(written, stable):
    assert tree(written) == tree(stable)


def test_bernoulli_with_a_sigmoid_becomes_softplus_terms():
    parsed = parse_model("y ~ bernoulli(prob = sigmoid(a + b*x))")
    from mlefit.textmodel.distributions import DISTRIBUTIONS

    nll = DISTRIBUTIONS["bernoulli"].nll(E.Sym("y"), **dict(parsed.args))
    assert nll == tree("softplus(a + b*x) - y*(a + b*x)")
    written_out = parse_model("y ~ bernoulli(prob = 1/(1 + exp(-(a + b*x))))")
    assert DISTRIBUTIONS["bernoulli"].nll(E.Sym("y"), **dict(written_out.args)) == nll
    m = compile_model("y ~ bernoulli(prob = sigmoid(a + b*x))", columns=["y", "x"])
    D = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, -1.0], [0.0, -1.0]])
    # Far in both tails: a naive log(sigmoid) gives log(0) = -inf and 0 * inf = nan.
    rows = m.nll_rows(np.array([0.0, 800.0]), D)
    np.testing.assert_allclose(rows, [0.0, 800.0, 800.0, 0.0], atol=1e-300)
    nll, grad, hess = m.evaluate(np.array([0.0, 40.0]), D)
    assert np.isfinite(nll) and np.isfinite(grad).all() and np.isfinite(hess).all()
    assert hess[1, 1] > 0  # sigmoid(40) sigmoid(-40) = 4.2e-18, not 0 from 1 - sigmoid(40)


def test_normal_uses_log_sd():
    m = compile_model("y ~ normal(mean = a, sd = exp(s))", columns=["y"])
    assert "log(exp" not in m.formula and "log(" not in m.formula
    # sd = exp(800) overflows but log(sd) does not: the NLL stays finite.
    nll, _, _ = m.evaluate(np.array([0.0, 800.0]), np.array([[1.0], [2.0]]), order=0)
    np.testing.assert_allclose(nll, 2 * (800.0 + 0.5 * np.log(2 * np.pi)), rtol=1e-15)


def test_non_finite_rows_give_inf_without_warnings():
    m = compile_model("y ~ normal(mean = a, sd = s)", columns=["y"])
    D = np.array([[1.0], [2.0]])
    nll, grad, hess = m.evaluate(np.array([0.0, -1.0]), D)  # a negative sd: log(-1) is NaN
    assert nll == np.inf
    sentence = m.why_not_finite(np.array([0.0, -1.0]), D)
    assert "data row 1" in sentence and "'sd'" in sentence and "positive" in sentence
    assert m.why_not_finite(np.array([0.0, 1.0]), D) is None


# -- cache and compile time -------------------------------------------------------------------------
def test_compiled_models_are_cached_per_text_and_columns():
    clear_cache()
    text = "y ~ poisson(rate = exp(a + b*x))"
    first = compile_model(text, columns=["y", "x", "z"])
    again = compile_model(text, columns=["x", "y"])  # the same columns read
    assert first.compile_seconds > 0 and again.compile_seconds == 0.0
    assert again.param_names == first.param_names
    other = compile_model(text, columns=["y"])  # x is now a parameter
    assert other.compile_seconds > 0 and other.param_names == ["a", "b", "x"]


def test_without_derivatives_only_the_nll_is_available():
    text = "y ~ gamma(shape = exp(k), scale = exp(a + b*x))"
    exact = compile_model(text, columns=["y", "x"])
    plain = compile_model(text, columns=["y", "x"], derivatives=False)
    assert exact.symbolic and not plain.symbolic
    rng = np.random.default_rng(3)
    D = np.column_stack([rng.gamma(2.0, 1.0, 50), rng.normal(size=50)])
    p = np.array([0.3, 0.1, -0.2])
    np.testing.assert_allclose(plain.nll_rows(p, D), exact.nll_rows(p, D), rtol=1e-13)
    np.testing.assert_allclose(plain.evaluate(p, D, order=0)[0], exact.evaluate(p, D, order=0)[0], rtol=1e-13)
    with pytest.raises(UsageError, match=r"pip install 'mlefit\[model\]'"):
        plain.evaluate(p, D, order=2)


def test_without_sympy_the_model_compiles_and_says_how_to_get_derivatives():
    code = (
        "import sys; sys.modules['sympy'] = None\n"
        "import numpy as np\n"
        "from mlefit.errors import UsageError\n"
        "from mlefit.textmodel import compile_model, have_sympy\n"
        "m = compile_model('y ~ poisson(rate = exp(a + b*x))', columns=['y', 'x'])\n"
        "D = np.array([[1.0, 0.5], [3.0, 1.5]])\n"
        "print(have_sympy(), m.symbolic, m.evaluate([0.1, 0.2], D, order=0)[0])\n"
        "try:\n    m.evaluate([0.1, 0.2], D, order=1)\nexcept UsageError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    flag, symbolic, value = out.splitlines()[0].split()
    assert flag == "False" and symbolic == "False"
    eta = 0.1 + 0.2 * np.array([0.5, 1.5])
    from scipy.stats import poisson

    np.testing.assert_allclose(float(value), -poisson.logpmf([1, 3], np.exp(eta)).sum(), rtol=1e-14)
    assert "pip install 'mlefit[model]'" in out.splitlines()[1]


def test_importing_the_package_loads_neither_sympy_nor_scipy():
    code = "import mlefit.textmodel, sys; print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'scipy', 'pandas'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
