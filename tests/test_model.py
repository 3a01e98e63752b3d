"""Saved models and prediction: `fit --save`, `predict`, the model file, and pipelines."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mlefit
from mlefit.model import FORMAT_VERSION, Model

from conftest import read_exact, MLEFIT, SAMPLES, subprocess_env

ADMISSIONS = SAMPLES / "admissions.csv"
COMMUTE = SAMPLES / "commute.csv"
HOUSES = SAMPLES / "house_prices.csv"

CASES = {
    "bernoulli": (ADMISSIONS, "admitted"),
    "categorical": (COMMUTE, "mode"),
    "gaussian": (HOUSES, "price_k"),
}


def save_via_cli(invoke, tmp_path, family: str, *extra: str):
    path, target = CASES[family]
    model = tmp_path / f"{family}.json"
    result = invoke("fit", path, "-f", family, "-y", target, "--save", model, "--quiet", *extra)
    assert result.exit_code == 0, result.stderr
    return model


def predict_via_cli(invoke, model, frame: pd.DataFrame) -> pd.DataFrame:
    result = invoke("predict", model, "-", input=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return read_exact(io.StringIO(result.stdout))


def new_rows(frame: pd.DataFrame, features: list[str], n: int = 200, seed: int = 7) -> pd.DataFrame:
    """Rows the model never saw, reaching 20% beyond the range of each feature."""
    rng = np.random.default_rng(seed)
    lo, hi = frame[features].min(), frame[features].max()
    pad = 0.2 * (hi - lo)
    return pd.DataFrame({c: rng.uniform(lo[c] - pad[c], hi[c] + pad[c], n) for c in features})


def statsmodels_reference(family: str, frame: pd.DataFrame, target: str, features: list[str]):
    X = sm.add_constant(frame[features].to_numpy(float), has_constant="add")
    levels = sorted(frame[target].unique())
    if family == "bernoulli":
        y = (frame[target] == levels[-1]).astype(float)
        return sm.Logit(y, X).fit(method="newton", tol=1e-12, maxiter=100, disp=0), levels
    if family == "categorical":
        codes = frame[target].map({v: i for i, v in enumerate(levels)})
        return sm.MNLogit(codes, X).fit(method="newton", tol=1e-12, maxiter=100, disp=0), levels
    return sm.OLS(frame[target].to_numpy(float), X).fit(), levels


# -- agreement with statsmodels' predictions --------------------------------------------------------


@pytest.mark.parametrize("family", list(CASES))
@pytest.mark.parametrize("rows", ["sample", "new"])
def test_save_then_predict_matches_statsmodels(family, rows, invoke, tmp_path):
    path, target = CASES[family]
    frame = read_exact(path)
    features = [c for c in frame.columns if c != target]
    model = save_via_cli(invoke, tmp_path, family)
    scoring = frame if rows == "sample" else new_rows(frame, features)
    out = predict_via_cli(invoke, model, scoring)
    ref, levels = statsmodels_reference(family, frame, target, features)
    expected = np.asarray(ref.predict(sm.add_constant(scoring[features].to_numpy(float), has_constant="add")))

    # the input's columns come through unchanged
    pd.testing.assert_frame_equal(out[list(scoring.columns)], scoring, check_dtype=False)
    if family == "bernoulli":
        assert list(out.columns[len(scoring.columns):]) == ["prob_yes"]
        np.testing.assert_allclose(out["prob_yes"], expected, rtol=1e-8, atol=1e-12)
    elif family == "categorical":
        probs = [f"prob_{level}" for level in levels]
        assert list(out.columns[len(scoring.columns):]) == probs + ["predicted_mode"]
        np.testing.assert_allclose(out[probs].to_numpy(), expected, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(out[probs].sum(axis=1), 1.0, rtol=1e-12)
        assert list(out["predicted_mode"]) == [levels[k] for k in expected.argmax(axis=1)]
    else:
        assert list(out.columns[len(scoring.columns):]) == ["predicted_price_k"]
        np.testing.assert_allclose(out["predicted_price_k"], expected, rtol=1e-8)


def test_loaded_model_predicts_exactly_as_the_fit(tmp_path):
    res = mlefit.fit(COMMUTE, "categorical", target="mode")
    saved = mlefit.save_model(res, tmp_path / "m.json")
    loaded = mlefit.load_model(tmp_path / "m.json")
    assert loaded.params.tolist() == res.params.tolist()  # bit for bit through JSON
    assert loaded.se.tolist() == res.se.tolist()
    assert loaded.levels == res.levels == ("bike", "bus", "car", "walk")
    frame = read_exact(COMMUTE)
    pd.testing.assert_frame_equal(loaded.predict(frame), saved.predict(frame))
    pd.testing.assert_frame_equal(mlefit.predict(res, frame), mlefit.predict(tmp_path / "m.json", frame))


def test_cli_predictions_are_full_precision(invoke, tmp_path):
    model = save_via_cli(invoke, tmp_path, "bernoulli")
    frame = read_exact(ADMISSIONS)
    out = predict_via_cli(invoke, model, frame)
    api = mlefit.predict(model, frame)
    assert out["prob_yes"].tolist() == api["prob_yes"].tolist()


def test_model_file_holds_everything_prediction_needs(invoke, tmp_path):
    doc = json.loads(save_via_cli(invoke, tmp_path, "gaussian").read_text())
    res = mlefit.fit(HOUSES, "gaussian", target="price_k")
    assert doc["format"] == "mlefit-model" and doc["format_version"] == FORMAT_VERSION
    assert doc["family"] == "gaussian" and doc["target"] == "price_k" and doc["intercept"] is True
    assert doc["features"] == ["intercept", "area_m2", "bedrooms", "age_years"]
    assert doc["design"] == {
        "kind": "columns", "intercept": True, "features": ["intercept", "area_m2", "bedrooms", "age_years"],
        "columns": [{"column": c, "type": "numeric"} for c in ("area_m2", "bedrooms", "age_years")],
    }
    assert [p["name"] for p in doc["parameters"]] == list(res.names)
    assert [p["estimate"] for p in doc["parameters"]] == res.params.tolist()
    assert doc["sigma"] == res.params[-1]
    assert doc["levels"] is None
    assert doc["fit"]["converged"] is True and doc["fit"]["n_obs"] == res.n_obs


def test_categorical_model_file_names_classes(invoke, tmp_path):
    doc = json.loads(save_via_cli(invoke, tmp_path, "categorical").read_text())
    assert doc["levels"] == ["bike", "bus", "car", "walk"]
    assert [p["class"] for p in doc["parameters"]] == ["bus"] * 4 + ["car"] * 4 + ["walk"] * 4
    assert doc["sigma"] is None


def test_features_subset_and_no_intercept(invoke, tmp_path):
    model = tmp_path / "m.json"
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "-x", "gpa,essay_rating", "--no-intercept",
                    "--save", model, "--quiet")
    assert result.exit_code == 0
    # only the model's columns are needed; the column order of the input does not matter
    rows = pd.DataFrame({"essay_rating": [3.0, 5.0], "gpa": [2.5, 3.9]})
    out = predict_via_cli(invoke, model, rows)
    res = mlefit.fit(ADMISSIONS, "bernoulli", features=["gpa", "essay_rating"], intercept=False)
    eta = rows[["gpa", "essay_rating"]].to_numpy() @ res.params
    np.testing.assert_allclose(out["prob_yes"], 1.0 / (1.0 + np.exp(-eta)), rtol=1e-14)


def test_labels_of_any_kind_name_the_columns(tmp_path):
    frame = mlefit.simulate("categorical", [[1.0], [-1.0]], n=400, intercept=[0.2, 0.1], seed=3)
    frame["y"] = frame["y"].map({0: 10, 1: 20, 2: 30})
    res = mlefit.fit(frame, "categorical")
    out = mlefit.predict(res, frame)
    assert list(out.columns) == ["x1", "y", "prob_10", "prob_20", "prob_30", "predicted_y"]
    assert set(out["predicted_y"]) <= {10, 20, 30}
    binary = frame.assign(y=frame["y"] > 15)  # true/false labels
    out = mlefit.predict(mlefit.fit(binary, "bernoulli"), binary)
    assert "prob_true" in out.columns


def test_prediction_columns_never_overwrite_input_columns(tmp_path):
    res = mlefit.fit(COMMUTE, "categorical", target="mode")
    frame = read_exact(COMMUTE).assign(prob_bus=-1.0, predicted_mode="x", prob_car_2=-2.0, prob_car=-3.0)
    out = mlefit.predict(res, frame)
    added = list(out.columns[frame.shape[1]:])
    assert added == ["prob_bike", "prob_bus_2", "prob_car_3", "prob_walk", "predicted_mode_2"]
    assert (out["prob_bus"] == -1.0).all() and (out["prob_car"] == -3.0).all()
    plain = mlefit.predict(res, read_exact(COMMUTE))
    np.testing.assert_array_equal(out["prob_bus_2"], plain["prob_bus"])


def test_extreme_rows_give_exact_probabilities_without_warnings():
    # pytest turns RuntimeWarning (overflow in exp) into an error, so this also checks stability
    res = mlefit.fit(COMMUTE, "categorical", target="mode")
    rows = pd.DataFrame({"distance_km": [1e4, -1e4, 0.0], "income_k": [50.0, 50.0, 1e5], "age": [40.0, 40.0, 40.0]})
    out = mlefit.predict(res, rows)
    probs = out[["prob_bike", "prob_bus", "prob_car", "prob_walk"]].to_numpy()
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1.0)
    assert probs.max(axis=1).tolist() == [1.0, 1.0, 1.0]
    bern = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted")
    p = mlefit.predict(bern, pd.DataFrame({"gpa": [1e5, -1e5], "test_score": [0.0, 0.0], "essay_rating": [0.0, 0.0]}))
    assert p["prob_yes"].tolist() == [1.0, 0.0]


def test_exact_gaussian_fit_round_trips(tmp_path):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "y": [1.0, 3.0, 5.0, 7.0, 9.0]})
    res = mlefit.fit(frame, "gaussian")
    assert res.exact_fit
    model = mlefit.save_model(res, tmp_path / "m.json")
    out = mlefit.predict(tmp_path / "m.json", pd.DataFrame({"x": [10.0]}))
    assert model.sigma == 0.0
    assert out["predicted_y"].tolist() == pytest.approx([21.0], rel=1e-12)


# -- errors: one sentence, exit code 2 ----------------------------------------------------------------


def one_error_line(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]


def test_missing_feature_column_is_one_sentence(invoke, tmp_path):
    model = save_via_cli(invoke, tmp_path, "bernoulli")
    result = invoke("predict", model, "-", input="gpa,essay_rating\n3.1,4\n")
    one_error_line(result, "column 'test_score' of the model's design not found; available: gpa, essay_rating")


def test_text_in_a_numeric_feature_is_one_sentence(invoke, tmp_path):
    model = save_via_cli(invoke, tmp_path, "bernoulli")
    result = invoke("predict", model, "-", input="gpa,test_score,essay_rating\n3.1,600,4\n3.2,high,5\n")
    one_error_line(result, "feature column 'test_score' is not numeric: data row 2 has 'high'")


def test_missing_values_are_one_sentence(invoke, tmp_path):
    model = save_via_cli(invoke, tmp_path, "gaussian")
    result = invoke("predict", model, "-", input="area_m2,bedrooms,age_years\n80,3,10\n90,,12\n")
    one_error_line(result, "column 'bedrooms' has 1 missing value(s), the first in data row 2")


def rewrite(path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


BAD_MODELS = [
    ("not found", lambda p: p.unlink(), "not found"),
    ("not json", lambda p: p.write_text("{oops"), "is not valid JSON"),
    ("not a model", lambda p: p.write_text('{"a": 1}'), "is not an mlefit model file"),
    ("newer format", lambda p: rewrite(p, lambda d: d.update(format_version=FORMAT_VERSION + 1)),
     f"has format version {FORMAT_VERSION + 1}, newer than this mlefit reads ({FORMAT_VERSION})"),
    ("unknown design", lambda p: rewrite(p, lambda d: d["design"].update(kind="spline")),
     "builds its design in a way this version of mlefit does not know (kind 'spline'"),
    ("unknown family", lambda p: rewrite(p, lambda d: d.update(family="zipoisson")), "unknown family 'zipoisson'"),
    ("missing entry", lambda p: rewrite(p, lambda d: d.pop("parameters")),
     "is damaged: the entry 'parameters' is missing"),
    ("wrong count", lambda p: rewrite(p, lambda d: d["parameters"].pop()), "is damaged: 3 estimates"),
    ("bad number", lambda p: rewrite(p, lambda d: d["parameters"][0].update(estimate="x")), "is damaged"),
    ("design without columns", lambda p: rewrite(p, lambda d: d["design"].pop("columns")), "is damaged: its design"),
    ("design and features disagree", lambda p: rewrite(p, lambda d: d["design"]["features"].reverse()),
     "its design does not build the columns named in 'features'"),
]


@pytest.mark.parametrize("case", BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
def test_bad_model_file_is_one_sentence(case, invoke, tmp_path):
    _, spoil, fragment = case
    model = save_via_cli(invoke, tmp_path, "bernoulli")
    spoil(model)
    one_error_line(invoke("predict", model, ADMISSIONS), fragment)


def test_save_refuses_to_overwrite_the_input_but_replaces_a_model(invoke, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(ADMISSIONS.read_text())
    result = invoke("fit", data, "-f", "bernoulli", "--save", data)
    one_error_line(result, "--save")
    assert "refusing to overwrite" in result.stderr and data.read_text() == ADMISSIONS.read_text()
    model = tmp_path / "m.json"
    model.write_text("old")
    assert invoke("fit", data, "-f", "bernoulli", "--save", model, "--quiet").exit_code == 0
    assert Model.load(model).family == "bernoulli"


def test_save_to_an_unwritable_place_is_one_sentence(invoke, tmp_path):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--save", tmp_path / "no" / "m.json", "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot write the model to")


# -- real pipelines ---------------------------------------------------------------------------------


def run(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=subprocess_env(), timeout=120)


def test_pipeline_cat_data_into_predict(tmp_path):
    model = tmp_path / "m.json"
    fitted = run(f"{MLEFIT} fit {COMMUTE} -f categorical --save {model} --quiet")
    assert fitted.returncode == 0, fitted.stderr
    proc = run(f"set -o pipefail; cat {COMMUTE} | {MLEFIT} predict {model} -")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = read_exact(io.StringIO(proc.stdout))
    frame = read_exact(COMMUTE)
    assert out.shape == (1500, frame.shape[1] + 5)
    expected = mlefit.predict(mlefit.fit(COMMUTE, "categorical"), frame)
    pd.testing.assert_frame_equal(out, expected)


SIMULATE = (
    "import sys, mlefit; "
    "mlefit.simulate('bernoulli', [1.5, -2.0], intercept=0.5, n=4000, seed={seed}).to_csv(sys.stdout, index=False)"
)


def test_pipeline_simulate_into_fit_json():
    # `mlefit simulate` is a command of its own (another issue); the stream comes from the API here
    simulate = f'{sys.executable} -c "{SIMULATE.format(seed=1)}"'
    proc = run(f"set -o pipefail; {simulate} | {MLEFIT} fit - -f bernoulli --format json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["n_obs"] == 4000 and doc["converged"] is True
    est = {p["name"]: p for p in doc["parameters"]}
    for name, truth in {"intercept": 0.5, "x1": 1.5, "x2": -2.0}.items():
        assert abs(est[name]["estimate"] - truth) < 4 * est[name]["std_error"], name


def test_pipeline_simulate_fit_save_then_predict_new_data(tmp_path):
    model = tmp_path / "m.json"
    simulate = f'{sys.executable} -c "{SIMULATE.format(seed=2)}"'
    fitted = run(f"set -o pipefail; {simulate} | {MLEFIT} fit - -f bernoulli --save {model} --quiet")
    assert fitted.returncode == 0, fitted.stderr
    proc = run(f'set -o pipefail; {sys.executable} -c "{SIMULATE.format(seed=3)}" | {MLEFIT} predict {model} -')
    assert proc.returncode == 0, proc.stderr
    out = read_exact(io.StringIO(proc.stdout))
    assert list(out.columns) == ["x1", "x2", "y", "prob_1"] and len(out) == 4000
    # calibrated: the mean predicted probability is close to the observed rate of fresh data
    assert abs(out["prob_1"].mean() - out["y"].mean()) < 0.03
    truth = 1.0 / (1.0 + np.exp(-(0.5 + 1.5 * out["x1"] - 2.0 * out["x2"])))
    assert np.max(np.abs(out["prob_1"] - truth)) < 0.1


def test_digits_rounds_only_the_predictions(invoke, tmp_path):
    model = save_via_cli(invoke, tmp_path, "gaussian")
    rows = "area_m2,bedrooms,age_years,price_k\n92.123456789,4,56,198.2\n"
    result = invoke("predict", model, "-", "--digits", "3", input=rows)
    assert result.exit_code == 0
    header, line = result.stdout.splitlines()
    full = mlefit.predict(model, read_exact(io.StringIO(rows)))["predicted_price_k"].iloc[0]
    assert line == f"92.123456789,4,56,198.2,{full:.3g}"
    assert invoke("predict", model, "-", "--digits", "0", input=rows).exit_code == 2


def test_help_lists_the_commands():
    proc = run(f"{MLEFIT} --help")
    assert proc.returncode == 0
    for command in ("fit", "predict", "check-grad", "families"):
        assert command in proc.stdout
    assert "--save" in run(f"{MLEFIT} fit --help").stdout and "--plot" in run(f"{MLEFIT} fit --help").stdout


def test_predict_rebuilds_one_hot_and_refuses_an_unseen_level(invoke, tmp_path):
    """A text feature is one-hot encoded in the fit; prediction encodes new rows the same way."""
    rng = np.random.default_rng(3)
    n = 400
    region = rng.choice(["east", "north", "south"], n)
    x = rng.standard_normal(n)
    eta = 0.3 + 0.8 * x + np.select([region == "north", region == "south"], [1.0, -0.7], 0.0)
    frame = pd.DataFrame({"x": x, "region": region, "y": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)})
    res = mlefit.fit(frame, "bernoulli")
    assert res.names == ("intercept", "x", "region[north]", "region[south]")
    model = mlefit.save_model(res, tmp_path / "m.json")
    new = pd.DataFrame({"x": [0.5, -1.0], "region": ["south", "east"]})
    got = mlefit.predict(tmp_path / "m.json", new)["prob_1"].to_numpy()
    b = res.params
    expected = 1 / (1 + np.exp(-np.array([b[0] + 0.5 * b[1] + b[3], b[0] - 1.0 * b[1]])))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert model.design["columns"][1]["levels"] == ["east", "north", "south"]
    result = invoke("predict", tmp_path / "m.json", "-", input="x,region\n0.1,west\n")
    assert result.exit_code == 2 and "west" in result.stderr and "Traceback" not in result.stderr
