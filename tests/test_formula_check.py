"""--formula is parsed, never evaluated: formula_check holds every factor formulaic would evaluate
against the grammar of mlefit.formula_check, for fits and for the formula a model file carries.

The threat is real: formulaic alone runs a formula's Python (the first test shows it writing a file),
so each refusal below would otherwise have run code. The legitimate forms (every one the docs and
the other tests use, and each function of the allow-list) are fitted and compared with statsmodels
on the same design built by patsy, an independent implementation of the formula language.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.api as sm

import mlefit
from mlefit import formula_check
from mlefit.data import design_matrix
from mlefit.errors import DataError, ModelError, UsageError

from conftest import MLEFIT, SAMPLES, subprocess_env

EXPLOIT = "price_k ~ I(np.savetxt('pwned.txt', area_m2) or area_m2)"


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([MLEFIT, *args], capture_output=True, text=True, cwd=cwd, env=subprocess_env(), timeout=120)


def one_sentence(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- the exploit, through the command line ----------------------------------------------------------


def test_formulaic_alone_would_run_the_exploit(tmp_path, monkeypatch):
    """The reason for the check: handed to formulaic, the formula writes a file."""
    import formulaic

    monkeypatch.chdir(tmp_path)
    formulaic.model_matrix(EXPLOIT, pd.read_csv(SAMPLES / "house_prices.csv").head(5), context={})
    assert (tmp_path / "pwned.txt").exists()


def test_the_exploit_writes_nothing_and_is_one_sentence(tmp_path):
    done = run(["fit", str(SAMPLES / "house_prices.csv"), "-f", "gaussian", "--formula", EXPLOIT], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    line = one_sentence(done.stderr)
    assert line.startswith("Error: --formula: 'np.savetxt' is not an allowed function; allowed: I, C, poly")
    assert "np.log" in line
    assert list(tmp_path.iterdir()) == []


# -- refusals, each naming what it refuses ---------------------------------------------------------


@pytest.fixture(scope="module")
def frame():
    """A continuous target, two numeric columns, a text factor and a column whose name has a space."""
    rng = np.random.default_rng(3)
    n = 400
    out = pd.DataFrame({
        "x1": rng.normal(size=n),
        "income": np.exp(rng.normal(3.0, 0.4, size=n)),
        "region": rng.choice(["east", "north", "south"], size=n),
        "odd name": rng.uniform(1.0, 5.0, size=n),
    })
    effect = out["region"].map({"east": 0.0, "north": 0.7, "south": -0.5}).to_numpy()
    out["y"] = 1.0 + 0.8 * out["x1"] + 0.02 * out["income"] + effect + 0.3 * out["odd name"] + rng.normal(0, 0.5, n)
    return out


REFUSED = [
    ("y ~ __import__('os').system('touch pwned')", "'__import__' is not an allowed function"),
    ("y ~ open('pwned', 'w')", "'open' is not an allowed function"),
    ("y ~ I(exec('x = 1') or x1)", "'exec' is not an allowed function"),
    ("y ~ np.load('pwned.npy')", "'np.load' is not an allowed function"),
    ("y ~ np.savetxt('pwned', x1)", "'np.savetxt' is not an allowed function"),
    ("y ~ {x1.__class__}", "'x1.__class__' is not allowed; a dot may only call np.<function>(...)"),
    ("y ~ {x1.values}", "'x1.values' is not allowed"),
    ("y ~ {x1.cumsum()}", "'x1.cumsum' is not an allowed function"),
    ("y ~ {().__class__.__bases__}", "'().__class__.__bases__' is not allowed"),
    ("y ~ {np.random.seed(1)}", "'np.random.seed' is not an allowed function"),
    ("y ~ {(lambda: x1)()}", "'lambda: x1' is not an allowed function"),
    ("y ~ I(lambda: x1)", "'lambda: x1' is not allowed: a lambda"),
    ("y ~ {x1[0]}", "'x1[0]' is not allowed: a subscript"),
    ("y ~ {[v for v in x1]}", "'[v for v in x1]' is not allowed: a comprehension"),
    ("y ~ {x1 if x1 else x1}", "a conditional expression is not part of the formula grammar"),
    ("y ~ {x1 or income}", "'x1 or income' is not allowed: 'and'/'or'"),
    ("y ~ {x1 > 0}", "'x1 > 0' is not allowed: a comparison"),
    ("y ~ {(z := x1)}", "an assignment is not part of the formula grammar"),
    ("y ~ np.log(*income)", "'*income' is not allowed: a starred argument"),
    ("y ~ np.log(income, out=income)", "'out=' is not an option of np.log"),
    ("y ~ {x1 // 2}", "'//' in 'x1 // 2' is not an allowed operator"),
    ("y ~ {~x1}", "'~' in '~x1' is not an allowed operator"),
    ("y ~ {__builtins__}", "the name '__builtins__' is not allowed"),
    ("y ~ np.log(`__class__`)", "the name '__class__' is not allowed"),
    ("y ~ {np}", "'np' is a function, not a column"),
    ("y ~ I('abc')", "the string 'abc' is not allowed here"),
    ("y ~ np.log(income) + {'pwned' * 3}", "the string 'pwned' is not allowed here"),
    ("y ~ C(region, 'south')", "'south' is not allowed in C(...); it must be a contrast"),
    ("y ~ C(region, Treatment('a\" or print(1) #'))", "holds a quote, a backslash, a brace or a control character"),
    ("y ~ Treatment('east')", "'Treatment' is a contrast: it may only be the second argument of C(...)"),
    ("y ~ poly(x1, 1000)", "'1000' is not allowed in poly(...); it must be a whole number from 0 to 100"),
    ("y ~ poly(x1, degree='3')", "'3' is not allowed in poly(...); it must be a whole number"),
    ("y ~ bs(x1, extrapolation='pwned')", "it must be one of 'raise', 'clip', 'na', 'zero', 'extend'"),
    ("y ~ np.power(x1)", "np.power takes 2 argument(s)"),
    ("y ~ {9**9**9}", "'9**9**9' is too large a power of numbers"),
    ("y ~ {" + "-" * 30 + "x1}", "nests deeper than 20 levels"),
    ("y ~ (x1 + income)**200", "the power '**200' is too large; at most 100"),
    ("y ~ " + "*".join(["x1", "income", "region", "`odd name`"] * 3), "expands to more than 1000 terms"),
    ("y ~ " + " + ".join(["x1"] * 600), "characters; at most 2000 are read"),
    ("y ~ {x1 +}", "--formula: cannot read 'x1 +'"),
    ("y ~ x1 ** (-1)", "cannot read --formula 'y ~ x1 ** (-1)': formulaic cannot parse it"),
    ("y ~ - [ 1 )", "cannot read --formula"),
    ("y ~ -1", "--formula 'y ~ -1' gives no design columns"),
]


@pytest.mark.parametrize("formula, fragment", REFUSED, ids=[f[:40] for f, _ in REFUSED])
def test_outside_the_grammar_is_refused_naming_the_token(frame, formula, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        mlefit.fit(frame, "gaussian", formula=formula)
    message = str(caught.value)
    assert fragment in message and "\n" not in message, message
    assert list(tmp_path.iterdir()) == []


def test_a_name_that_is_not_a_column_is_a_data_error(frame):
    with pytest.raises(DataError, match=r"column 'incme' in --formula not found; available: x1, income, region"):
        mlefit.fit(frame, "gaussian", formula="y ~ np.log(incme)")


def test_refusals_through_the_cli_are_one_sentence(frame, tmp_path):
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    for formula, fragment in (REFUSED[0], REFUSED[5], REFUSED[12]):
        done = run(["fit", str(path), "-f", "gaussian", "--formula", formula], tmp_path)
        assert done.returncode == 2 and fragment in one_sentence(done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.csv"]


# -- a model file's formula ------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A gaussian model with a formula design, saved by `mlefit fit --save`, and its data."""
    data = SAMPLES / "house_prices.csv"
    done = run(["fit", str(data), "-f", "gaussian", "--formula", "price_k ~ np.log(area_m2) + center(age_years)",
                "--save", "model.json", "-q"], tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "model.json", data


def crafted(path, change) -> dict:
    doc = json.loads(path.read_text())
    change(doc["design"])
    path.write_text(json.dumps(doc))
    return doc


def test_a_model_file_that_predicts_runs_its_formula_only_after_the_check(saved):
    model, data = saved
    done = run(["predict", str(model), str(data)], model.parent)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(pd.io.common.StringIO(done.stdout))
    frame = pd.read_csv(data)
    X = np.column_stack([np.ones(len(frame)), np.log(frame["area_m2"]), frame["age_years"] - frame["age_years"].mean()])
    ref = sm.OLS(frame["price_k"], X).fit().params.to_numpy()
    np.testing.assert_allclose(predicted.iloc[:, -1], X @ ref, rtol=1e-9)


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d.update(formula="1 + np.log(np.savetxt('pwned.txt', area_m2) or area_m2)"),
     "the model's formula: 'np.savetxt' is not an allowed function"),
    (lambda d: d.update(formula="1 + __import__('os').system('touch pwned.txt')"),
     "the model's formula: '__import__' is not an allowed function"),
    (lambda d: d["encoder_state"].update({"__import__('os').system('touch pwned.txt')": ["numerical", {}]}),
     "the model's encoder state names '__import__('os').system('touch pwned.txt')', which is not a factor"),
    (lambda d: d.update(encoder_state=["np.log(area_m2)"]), "its encoder and transform states must be objects"),
    (lambda d: d["encoder_state"].update({"np.log(area_m2)": ["pwned", {}]}), "the encoder state of 'np.log(area_m2)'"),
    (lambda d: d.update(formula=5), "the model's formula must be text, not int"),
])
def test_a_crafted_model_file_is_refused_and_runs_nothing(saved, change, fragment):
    model, data = saved
    crafted(model, change)
    done = run(["predict", str(model), str(data)], model.parent)
    assert done.returncode == 2 and done.stdout == ""
    assert fragment in one_sentence(done.stderr)
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.json"]


def test_a_crafted_design_is_refused_from_python(saved):
    model, data = saved
    design = crafted(model, lambda d: d.update(formula="1 + {area_m2.__class__}"))["design"]
    with pytest.raises(ModelError, match=r"the model's formula: '\{area_m2.__class__\}'|'area_m2.__class__' is not allowed"):
        design_matrix(design, data)


# -- the grammar's legitimate forms fit as they did ------------------------------------------------

# (mlefit's formula, the same design in patsy's spelling)
LEGITIMATE = [
    ("y ~ x1 + C(region) + np.log(income)", None),
    ("y ~ x1 + region", None),
    ("y ~ x1 + C(region, Treatment('south'))", None),
    ("y ~ x1 + C(region, contr.treatment('north'))", "y ~ x1 + C(region, Treatment('north'))"),
    ("y ~ C(region, levels=['south', 'east', 'north'])", None),
    ("y ~ C(region, Sum) + x1", None),
    ("y ~ C(region, Helmert) + x1", None),
    ("y ~ C(region, Poly) + x1", None),
    ("y ~ C(region, Diff) + x1", None),
    ("y ~ I(x1 / income) + x1:income", None),
    ("y ~ x1*income - 1", None),
    ("y ~ x1 + income + 0", None),
    ("y ~ (x1 + income + region)**2", None),
    ("y ~ poly(x1, 3, raw=True)", "y ~ x1 + I(x1**2) + I(x1**3)"),
    ("y ~ x1 + I(x1**2) + {x1**3} + np.power(x1, 4)", "y ~ x1 + I(x1**2) + I(x1**3) + I(x1**4)"),
    ("y ~ x1 + {-x1 * 2 + income ** 0.5} + {x1 ** -1}", "y ~ x1 + I(-x1 * 2 + income ** 0.5) + I(x1 ** -1)"),
    ("y ~ np.log1p(income) + np.sqrt(income) + np.square(x1) + np.abs(x1)", None),
    ("y ~ np.exp(x1) + np.expm1(x1 / 2) + np.tanh(x1)", None),
    ("y ~ np.sin(x1) + np.cos(x1) + np.clip(x1, -1, 1)", None),
    ("y ~ np.log2(income) + np.exp(x1 / 3)", None),
    ("y ~ log10(income) + exp(x1)", "y ~ np.log10(income) + np.exp(x1)"),
    ("y ~ log2(income) + exp2(x1)", "y ~ np.log2(income) + np.exp2(x1)"),
    ("y ~ log(income) + x1", "y ~ np.log(income) + x1"),
    ("y ~ center(x1) + scale(income)", "y ~ center(x1) + I((income - income.mean()) / income.std(ddof=1))"),
    ("y ~ standardize(x1) + income", None),
    ("y ~ bs(x1, df=4)", None),
    ("y ~ bs(x1, knots=[-0.5, 0.5], degree=2)", "y ~ bs(x1, knots=(-0.5, 0.5), degree=2)"),
    ("y ~ cr(x1, df=4) - 1", None),
    ("y ~ `odd name` + np.log(`odd name` + 10)", "y ~ Q('odd name') + np.log(Q('odd name') + 10)"),
    ("y ~ Q('odd name') + x1", None),
    ("np.log(income) ~ x1 + region - 1", None),
]


@pytest.mark.parametrize("formula, spelled", LEGITIMATE, ids=[f for f, _ in LEGITIMATE])
def test_legitimate_forms_fit_the_design_patsy_builds(frame, formula, spelled):
    res = mlefit.fit(frame, "gaussian", formula=formula)
    Y, X = (np.asarray(m) for m in patsy.dmatrices(spelled or formula, frame))
    ref = sm.OLS(Y[:, 0], X).fit().params
    # the same columns, perhaps in another order: match each of mlefit's design columns to patsy's
    ours = design_matrix(res.design, frame)
    assert res.names[-1] == "sigma" and ours.shape == X.shape
    order = [int(np.flatnonzero(np.all(np.isclose(X, col[:, None], rtol=1e-9, atol=1e-12), axis=0))[0])
             for col in ours.T]
    assert sorted(order) == list(range(X.shape[1]))
    np.testing.assert_allclose(res.params[:-1], ref[order], rtol=1e-7, atol=1e-9)


def test_a_saved_design_of_every_kind_rebuilds_for_new_rows(frame):
    """The formula a fit records reads back to the same terms (braces, backticks and the missing
    intercept kept), passes the check, and gives new rows the fitted columns: the stateful
    transforms keep the fitted state, so 7 rows alone get the first 7 rows of the full design."""
    for formula, _ in LEGITIMATE:
        res = mlefit.fit(frame, "gaussian", formula=formula)
        design = json.loads(json.dumps(res.design))
        full = design_matrix(design, frame)
        np.testing.assert_allclose(design_matrix(design, frame.head(7)), full[:7], rtol=1e-12, err_msg=formula)


# -- the checker on its own ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "np.log(x)", "x ** 2", "C(g, Treatment('a'))", "poly(x, degree=3, raw=True)", "bs(x, df=4, extrapolation='clip')",
    "np.log(`a b` + 1)", "I(-x / 2 + 2 ** 0.5)", "cr(x, knots=[1, 2.5], constraints='center')", "C(g, levels=[1, 2, 3])",
])
def test_expressions_in_the_grammar_pass(text):
    formula_check.check_expression(text, ["x", "g", "a b"])


def test_the_source_names_the_model_and_raises_model_error():
    with pytest.raises(ModelError, match=r"^the model's formula: 'open' is not an allowed function"):
        formula_check.check_expression("open('f')", ["x"], formula_check.MODEL)
    with pytest.raises(DataError, match=r"^column 'z' of the model's formula not found; available: x\.$"):
        formula_check.check_expression("np.log(z)", ["x"], formula_check.MODEL)


def test_term_bound_reads_formulaics_parse_tree_without_expanding_it():
    from formulaic.parser import DefaultFormulaParser

    def tree(text):
        return DefaultFormulaParser().get_ast(text)

    formula_check.term_bound(tree("y ~ (a + b + c)**2 + d*e*f"))  # 6 + 7 terms: fine
    names = [f"x{i}" for i in range(9)]
    formula_check.term_bound(tree("y ~ " + "*".join(names)))  # 2^9 - 1 = 511 terms
    with pytest.raises(UsageError, match="expands to more than 1000 terms"):
        formula_check.term_bound(tree("y ~ " + "*".join(names + ["x9"])))  # 1023
    with pytest.raises(UsageError, match="expands to more than 1000 terms"):
        formula_check.term_bound(tree("y ~ (" + " + ".join(names) + ")**4 - a"))
