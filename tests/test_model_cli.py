"""The command line with models written as text: fit --model/--nll/--start/--fixed, the report and
its JSON, bad models (one sentence, exit 2, nothing written), check-grad --model, simulate --model,
--save and predict, the grammar in --help, and a fit without sympy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import MLEFIT, subprocess_env

DATA = Path(__file__).parent / "data"
PUROMYCIN = DATA / "puromycin" / "treated.csv"
MM = "rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(s))"
MM_START = "vmax=200,km=0.1,s=2"


@pytest.fixture
def counts(tmp_path) -> Path:
    rng = np.random.default_rng(21)
    x = rng.normal(size=400)
    df = pd.DataFrame({"x": x, "g": rng.normal(size=400), "y": rng.poisson(np.exp(0.4 + 0.6 * x))})
    path = tmp_path / "counts.csv"
    df.to_csv(path, index=False)
    return path


def test_report_lists_the_text_columns_parameters_and_the_compilation(invoke):
    result = invoke("fit", PUROMYCIN, "--model", MM, "--start", MM_START)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mlefit fit: model written as text, method newton, exact derivatives (sympy)"
    assert lines[1] == f"model: {MM}"
    assert lines[2] == "target: rate; other columns read: conc"
    assert lines[3] == "parameters found: vmax, km, s"
    convergence = result.stdout.split("Convergence\n")[1].splitlines()
    assert convergence[1].split()[:4] == ["compile", "NA", "NA", "NA"]
    assert convergence[2].split()[0] == "0"
    assert "mean NLL (per row)" in result.stdout and "AIC" in result.stdout and "BIC" in result.stdout


def test_json_has_the_keys_of_a_familys_and_the_models(fit_json, counts):
    model, _ = fit_json(counts, "--model", "y ~ poisson(rate = exp(a + b*x))", "--fixed", "a=0.4")
    family, _ = fit_json(counts, "--family", "poisson", "--features", "x")
    assert set(family) <= set(model)
    assert model["family"] == "model" and model["model"] == "y ~ poisson(rate = exp(a + b*x))"
    assert model["fixed"] == {"a": 0.4} and model["start"] == {"b": 0.0}
    assert model["compile_seconds"] >= 0 and model["derivatives"].startswith("exact")
    assert [p["name"] for p in model["parameters"]] == ["b"] and model["features"] == ["x"]
    row = model["parameters"][0]
    assert {"estimate", "std_error", "z", "p_value", "ci_low", "ci_high"} <= set(row)
    assert row["z"] == pytest.approx(row["estimate"] / row["std_error"], rel=1e-12)


def test_standard_input_and_the_nll_form(fit_json, counts):
    doc, _ = fit_json("-", "--nll", "exp(a + b*x) - y*(a + b*x)", input=counts.read_text())
    family, _ = fit_json(counts, "--family", "poisson", "--features", "x")
    # the same likelihood up to the constant lgamma(y + 1): the same estimates and standard errors
    np.testing.assert_allclose([p["estimate"] for p in doc["parameters"]], [p["estimate"] for p in family["parameters"]], rtol=1e-8)
    np.testing.assert_allclose([p["std_error"] for p in doc["parameters"]], [p["std_error"] for p in family["parameters"]], rtol=1e-6)
    assert doc["target"] == "x" and doc["features"] == ["y"]  # an NLL's first column plays the target


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "rate ~ gaussian(mean = a, sd = 1)"], "unknown distribution 'gaussian'"),
        (["--model", "rate ~ normal(mean = a, scale = 1)"], "normal has no argument 'scale'"),
        (["--model", "rate ~ normal(mean = a + 0*b*conc, sd = exp(s))"], "the parameter 'b' does not enter the NLL"),
        (["--model", "rate ~ normal(mean = a + b + c*conc, sd = exp(s))"], "the Hessian is singular"),
        (["--model", "velocity ~ normal(mean = a, sd = exp(s))"], "the target 'velocity' is not a column"),
        (["--model", "rate ~ normal(mean = vmax*conc/(km + conc), sd = s)"],
         "the start (vmax=0, km=0, s=0) is outside the model: the NLL is nan in data row 1 and 11 other row(s) "
         "(normal's argument 'sd' is 0 there; it must be positive); choose another with --start."),
        (["--model", "rate ~ normal(mean = a.b, sd = 1)"], "attribute access ('a.b') is not allowed"),
        (["--model", "rate ~ normal(mean = (lambda: 1)(), sd = 1)"], "not allowed"),
        (["--model", MM, "--family", "gaussian"], "--family and --model cannot be used together"),
        (["--model", MM, "--start", "vmax=200,k=0.1"], "--start names 'k', which is not a parameter"),
        (["--model", MM, "--l2", "1"], "--l2 does not apply to a text model"),
        ([], "say what to fit: --family FAMILY"),
    ],
)
def test_bad_models_are_one_sentence_exit_2_and_nothing_written(invoke, tmp_path, args, words):
    saved, trace = tmp_path / "model.json", tmp_path / "trace.csv"
    result = invoke("fit", PUROMYCIN, *args, "--save", saved, "--trace-out", trace)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not saved.exists() and not trace.exists()


def test_a_derivation_that_disagrees_with_finite_differences_exits_5(invoke, monkeypatch):
    from mlefit.textmodel.symbolic import Derivatives

    original = Derivatives.sums

    def wrong(self, params, D, weights, order):
        nll, grad, hess = original(self, params, D, weights, order)
        return nll, grad, None if hess is None else hess * 1.1

    monkeypatch.setattr(Derivatives, "sums", wrong)
    result = invoke("fit", PUROMYCIN, "--model", MM, "--start", MM_START)
    assert result.exit_code == 5 and result.stdout == ""
    assert "disagree with finite differences" in result.stderr and "bug of mlefit" in result.stderr


def test_check_grad_of_a_model(invoke, counts):
    result = invoke("check-grad", counts, "--model", "y ~ poisson(rate = exp(a + b*x))", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["family"] == "model" and [p["name"] for p in doc["parameters"]] == ["a", "b"]
    assert [p["label"] for p in doc["points"]] == ["start", "random 1", "random 2", "random 3", "optimum"]
    assert doc["largest_grad_rel_err"] < 1e-8 and doc["largest_hess_rel_err"] < 1e-8
    bad = invoke("check-grad", counts, "--nll", "exp(a + b*x) - y*(a + b*x)", "--family", "poisson")
    assert bad.exit_code == 2 and "cannot be used together" in bad.stderr


def test_simulate_draws_from_the_model_given_the_design(invoke, tmp_path):
    rng = np.random.default_rng(3)
    design = tmp_path / "design.csv"
    pd.DataFrame({"dose": rng.uniform(0, 2, 200), "other": "text"}).to_csv(design, index=False)
    result = invoke("simulate", "--model", "deaths ~ poisson(rate = exp(a + b*dose))", "--param", "a=1,b=0.5",
                    "--design", design, "--seed", "5")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(out.columns) == ["dose", "deaths"]
    dose = pd.read_csv(design)["dose"].to_numpy()
    want = np.random.default_rng(5).poisson(np.exp(1 + 0.5 * dose))
    np.testing.assert_array_equal(out["deaths"].to_numpy(), want)
    np.testing.assert_array_equal(out["dose"].to_numpy(), dose)


def test_simulate_then_fit_with_the_truth(invoke, tmp_path):
    truth = tmp_path / "truth.json"
    text = "y ~ normal(mean = a + b*x, sd = exp(s))"
    drawn = invoke("simulate", "--model", text, "--param", "a=1,b=-2,s=-0.5", "--features", "x", "--n", "300",
                   "--seed", "2", "--truth", truth)
    assert drawn.exit_code == 0, drawn.stderr
    assert json.loads(truth.read_text())["model"] == text
    fitted = invoke("fit", "-", "--model", text, "--truth", truth, "--format", "json", input=drawn.stdout)
    assert fitted.exit_code == 0, fitted.stderr
    rows = json.loads(fitted.stdout)["parameters"]
    assert [r["truth"] for r in rows] == [1.0, -2.0, -0.5]
    assert all(abs(r["error_se"]) < 4 for r in rows)
    missing = invoke("simulate", "--model", text, "--param", "a=1,b=-2", "--features", "x")
    assert missing.exit_code == 2 and "--param gives no value to 's'" in missing.stderr
    nll = invoke("simulate", "--model", "y ~ normal(mean = a, sd = 1)", "--coef", "1", "--param", "a=1")
    assert nll.exit_code == 2 and "--coef does not apply with --model" in nll.stderr


def test_save_keeps_the_text_and_predict_gives_the_mean(invoke, tmp_path):
    saved = tmp_path / "mm.json"
    fitted = invoke("fit", PUROMYCIN, "--model", MM, "--start", MM_START, "--save", saved, "--format", "json")
    assert fitted.exit_code == 0, fitted.stderr
    doc = json.loads(saved.read_text())
    assert doc["family"] == "model" and doc["model"]["text"] == MM and doc["model"]["columns"] == ["rate", "conc"]
    vmax, km, _ = (p["estimate"] for p in doc["parameters"])
    new = tmp_path / "new.csv"
    pd.DataFrame({"conc": [0.05, 0.5, 2.0]}).to_csv(new, index=False)  # no target column needed
    result = invoke("predict", saved, new)
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(pd.io.common.StringIO(result.stdout))
    conc = np.array([0.05, 0.5, 2.0])
    np.testing.assert_allclose(out["predicted_rate"].to_numpy(), vmax * conc / (km + conc), rtol=1e-14)


def test_a_model_file_is_parsed_never_evaluated(invoke, tmp_path):
    saved = tmp_path / "m.json"
    assert invoke("fit", PUROMYCIN, "--model", MM, "--start", MM_START, "--save", saved).exit_code == 0
    doc = json.loads(saved.read_text())
    marker = tmp_path / "PWNED"
    doc["model"]["text"] = f"rate ~ normal(mean = __import__('os').system('touch {marker}'), sd = 1)"
    saved.write_text(json.dumps(doc))
    result = invoke("predict", saved, PUROMYCIN)
    assert result.exit_code == 2 and "not allowed" in result.stderr and result.stdout == ""
    assert not marker.exists()


def test_predict_from_an_nll_says_it_has_no_distribution(invoke, tmp_path, counts):
    saved = tmp_path / "nll.json"
    assert invoke("fit", counts, "--nll", "exp(a + b*x) - y*(a + b*x)", "--save", saved).exit_code == 0
    result = invoke("predict", saved, counts)
    assert result.exit_code == 2 and "an --nll text has no distribution to predict from" in result.stderr


def test_fit_help_states_the_grammar():
    from mlefit.textmodel import DISTRIBUTIONS, FUNCTIONS

    proc = subprocess.run([MLEFIT, "fit", "--help"], capture_output=True, text=True, env={**subprocess_env(), "COLUMNS": "120"})
    page = " ".join(proc.stdout.split())
    for name, dist in DISTRIBUTIONS.items():
        assert f"{name}({', '.join(dist.args)})" in page, name
    for function in FUNCTIONS:
        assert function in page
    assert "--model" in page and "--nll" in page and "--start" in page and "--fixed" in page


def test_without_sympy_the_report_says_the_derivatives_are_numeric(tmp_path):
    code = (
        "import sys\nsys.modules['sympy'] = None\nfrom mlefit.cli import app\n"
        f"app(['fit', {str(PUROMYCIN)!r}, '--model', {MM!r}, '--start', {MM_START!r}], prog_name='mlefit')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "method newton, numeric gradient" in proc.stdout
    assert "derivatives: finite differences: sympy is not installed (install it with: pip install 'mlefit[model]')" in proc.stdout
    estimates = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.split("Estimates\n")[1].splitlines()[1:4]}
    assert estimates["vmax"] == pytest.approx(212.68, abs=0.01) and estimates["km"] == pytest.approx(0.06412, abs=1e-5)


def test_dask_worker_processes_compile_the_model_from_its_text(counts):
    pytest.importorskip("distributed")
    text = "y ~ poisson(rate = exp(a + b*x))"
    local = subprocess.run([MLEFIT, "fit", str(counts), "--model", text, "--format", "json"],
                           capture_output=True, text=True, env=subprocess_env(), timeout=120)
    remote = subprocess.run(
        [MLEFIT, "fit", str(counts), "--model", text, "--engine", "dask", "--scheduler", "local",
         "--chunk-rows", "50", "--format", "json"],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    for p, q in zip(a["parameters"], b["parameters"]):
        assert q["estimate"] == pytest.approx(p["estimate"], rel=1e-10)
        assert q["std_error"] == pytest.approx(p["std_error"], rel=1e-10)
