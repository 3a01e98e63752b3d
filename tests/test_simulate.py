"""`mlefit simulate`, the truth it writes, and `mlefit fit --truth`."""

from __future__ import annotations

import io
import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit.errors import DataError, UsageError
from mlefit.results import PARAMETER_FIELDS, PROFILE_FIELDS, TRUTH_FIELDS
from mlefit.simulate import make_truth, parse_coef, read_truth, simulate_with_truth

from conftest import MLEFIT, SAMPLES, subprocess_env

# One truth per family, as the CLI spells it and as the API takes it.
CASES = {
    "bernoulli": dict(coef="1,-2", intercept="0.5"),
    "categorical": dict(coef="1,-2;0.5,0", intercept="0.2,-0.1"),
    "gaussian": dict(coef="1,-2", intercept="0.5", sigma=2.0),
}


def cli_args(family: str) -> list[str]:
    case = CASES[family]
    args = ["--family", family, "--coef", case["coef"], "--intercept", case["intercept"]]
    if "sigma" in case:
        args += ["--sigma", str(case["sigma"])]
    return args


def read_back(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


# -- parsing and the truth -----------------------------------------------------------------------


def test_parse_coef_rows_and_values():
    assert parse_coef("1,-2;0.5,0") == [[1.0, -2.0], [0.5, 0.0]]
    assert parse_coef(" 1 , -2 ") == [[1.0, -2.0]]
    assert parse_coef("1e-3") == [[0.001]]


@pytest.mark.parametrize("text", ["", "1,,2", "1;", "a,1", "1,inf", "1,2;3"])
def test_parse_coef_rejects(text):
    with pytest.raises(UsageError):
        parse_coef(text)


@pytest.mark.parametrize("family", sorted(CASES))
def test_truth_labels_are_the_fit_labels(family):
    """Truth and fit name every parameter alike, in the same order: the join key is exact."""
    frame, truth = simulate_with_truth(family, **CASES[family], n=300, seed=1)
    result = mlefit.fit(frame, family)
    assert truth.names == result.names
    assert truth.classes == result.classes
    assert truth.labels == result.labels


def test_truth_layout_matches_fit_json():
    frame, truth = simulate_with_truth("categorical", **CASES["categorical"], n=200, seed=2)
    data = truth.to_dict()
    assert data["family"] == "categorical"
    assert data["levels"] == [0, 1, 2]
    assert data["n_obs"] == 200 and data["seed"] == 2
    assert [set(p) for p in data["parameters"]] == [{"name", "class", "estimate"}] * 6
    rows = [(p["name"], p["class"], p["estimate"]) for p in data["parameters"]]
    assert rows == [
        ("intercept", "1", 0.2), ("x1", "1", 1.0), ("x2", "1", -2.0),
        ("intercept", "2", -0.1), ("x1", "2", 0.5), ("x2", "2", 0.0),
    ]
    fit_keys = [(p["name"], p["class"]) for p in mlefit.fit(frame, "categorical").to_dict()["parameters"]]
    assert fit_keys == [(n, c) for n, c, _ in rows]


def test_gaussian_truth_reports_sigma_not_log_sigma():
    truth = make_truth("gaussian", [1, -2], intercept=0.5, sigma=2.0)
    assert truth.labels[-1] == "sigma" and truth.values[-1] == 2.0
    assert truth.params[-1] == pytest.approx(np.log(2.0))
    assert make_truth("gaussian", [1]).values[-1] == 1.0  # default sigma


def test_omitted_intercept_is_zero_and_in_the_truth():
    truth = make_truth("categorical", "1;2")
    assert truth.labels == ["1:intercept", "1:x1", "2:intercept", "2:x1"]
    assert truth.values.tolist() == [0.0, 1.0, 0.0, 2.0]
    none = make_truth("bernoulli", [1, 2], intercept=None)
    assert none.labels == ["x1", "x2"] and not none.intercept


def test_omitted_intercept_draws_the_same_data_as_no_intercept():
    """An intercept of 0 changes the truth, not the data."""
    a = mlefit.simulate("bernoulli", [1, -2], n=100, seed=5)
    b = mlefit.simulate("bernoulli", [1, -2], n=100, seed=5, intercept=None)
    pd.testing.assert_frame_equal(a, b)


# -- what is drawn -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(CASES))
def test_large_sample_recovers_every_parameter_within_4_se(family):
    frame, truth = simulate_with_truth(family, **CASES[family], n=20000, seed=20000)
    result = mlefit.compare_truth(mlefit.fit(frame, family), truth)
    assert result.converged
    err = result.error_se
    assert np.all(np.abs(err) < 4), dict(zip(result.labels, err.round(2)))
    assert np.allclose(err, (result.params - truth.values) / result.se)


def test_large_sample_without_intercept():
    frame, truth = simulate_with_truth("bernoulli", [0.8, -1.5, 0.3], intercept=None, n=20000, seed=3)
    result = mlefit.compare_truth(mlefit.fit(frame, "bernoulli", intercept=False), truth)
    assert np.all(np.abs(result.error_se) < 4)


def test_categorical_labels_follow_the_coefficient_rows():
    """Class k is driven by row k: a large intercept on the second row makes class 2 common."""
    frame = mlefit.simulate("categorical", "0,0;0,0", intercept=[-3.0, 3.0], n=2000, seed=0)
    counts = frame["y"].value_counts()
    assert set(counts.index) == {0, 1, 2}
    assert counts[2] > 10 * counts[1] and counts[0] > 5 * counts[1]
    assert frame["y"].dtype == np.int64


def test_gaussian_noise_scale():
    frame = mlefit.simulate("gaussian", [0.0], sigma=3.0, n=20000, seed=0)
    assert frame["y"].std() == pytest.approx(3.0, rel=0.03)


def test_seed_none_records_entropy_that_reproduces_the_data():
    frame, truth = simulate_with_truth("gaussian", [1.0], n=20)
    assert isinstance(truth.seed, int)
    pd.testing.assert_frame_equal(frame, mlefit.simulate("gaussian", [1.0], n=20, seed=truth.seed))


def test_design_array_and_frame():
    X = np.arange(12.0).reshape(6, 2)
    frame = mlefit.simulate("gaussian", [1, 1], X=X, seed=0)
    assert frame[["x1", "x2"]].to_numpy().tolist() == X.tolist()
    named = mlefit.simulate("gaussian", [1, 1], X=pd.DataFrame(X, columns=["a", "b"]), seed=0)
    assert list(named.columns) == ["a", "b", "y"]
    assert named["y"].tolist() == frame["y"].tolist()
    with pytest.raises(UsageError, match="coefficient"):
        mlefit.simulate("gaussian", [1, 1, 1], X=X)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(family="bernoulli", coef=[[1, 2], [3, 4]]), "one row"),
        (dict(family="categorical", coef=[1, 2], n_classes=1), "at least 2 classes"),
        (dict(family="categorical", coef=[1, 2], n_classes=3), "need 2 coefficient row"),
        (dict(family="categorical", coef=[[1], [2]], intercept=[1, 2, 3]), "3 intercept value"),
        (dict(family="gaussian", coef=[1], sigma=0.0), "positive"),
        (dict(family="gaussian", coef=[1], sigma=-2.0), "positive"),
        (dict(family="bernoulli", coef=[1], sigma=1.0), "gaussian only"),
        (dict(family="bernoulli", coef=[1], n=0), "at least 1"),
        (dict(family="bernoulli", coef=[1], seed=-1), "non-negative"),
        (dict(family="bernoulli", coef=[]), "at least one coefficient"),
    ],
)
def test_api_rejects_bad_arguments(kwargs, match):
    with pytest.raises(UsageError, match=match):
        mlefit.simulate(**kwargs)


# -- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(CASES))
def test_csv_is_exact_and_labels_are_integers(invoke, family):
    result = invoke("simulate", *cli_args(family), "--n", "50", "--seed", "7")
    assert result.exit_code == 0, result.stderr
    expected, _ = simulate_with_truth(family, **CASES[family], n=50, seed=7)
    lines = result.stdout.splitlines()
    assert lines[0] == "x1,x2,y"
    cells = [line.split(",") for line in lines[1:]]
    # repr-exact: every float reads back bit for bit (Python's float(), not a CSV parser's)
    assert np.array_equal([[float(a), float(b)] for a, b, _ in cells], expected[["x1", "x2"]].to_numpy())
    assert np.array_equal([float(c[2]) for c in cells], expected["y"].to_numpy())
    y_text = [c[2] for c in cells]
    if family == "gaussian":
        assert any("." in v for v in y_text)
    else:
        assert all(v.isdigit() for v in y_text)


def test_same_seed_gives_byte_identical_output(invoke, tmp_path):
    args = ["simulate", *cli_args("categorical"), "--n", "300", "--seed", "42"]
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout
    assert invoke(*args[:-1], "43").stdout != first.stdout
    out = tmp_path / "data.csv"
    assert invoke(*args, "-o", out).stdout == ""
    assert out.read_text() == first.stdout


def test_truth_file_written(invoke, tmp_path):
    path = tmp_path / "truth.json"
    result = invoke("simulate", *cli_args("gaussian"), "--n", "20", "--seed", "1", "--truth", path)
    assert result.exit_code == 0, result.stderr
    data = json.loads(path.read_text())
    assert data["family"] == "gaussian" and data["sigma"] == 2.0 and data["seed"] == 1 and data["n_obs"] == 20
    assert [(p["name"], p["estimate"]) for p in data["parameters"]] == [
        ("intercept", 0.5), ("x1", 1.0), ("x2", -2.0), ("sigma", 2.0)
    ]


def test_no_intercept_option(invoke, tmp_path):
    path = tmp_path / "truth.json"
    result = invoke("simulate", "-f", "bernoulli", "--coef", "1", "--no-intercept", "--n", "5", "--truth", path)
    assert result.exit_code == 0, result.stderr
    assert [p["name"] for p in json.loads(path.read_text())["parameters"]] == ["x1"]


def test_design_reuses_the_feature_columns(invoke, tmp_path):
    design = SAMPLES / "house_prices.csv"
    source = pd.read_csv(design)
    truth = tmp_path / "truth.json"
    result = invoke(
        "simulate", "-f", "gaussian", "--design", design, "--features", "area_m2,bedrooms,age_years",
        "--coef", "1.5,10,-0.5", "--intercept", "20", "--sigma", "5", "--seed", "0", "--truth", truth,
    )
    assert result.exit_code == 0, result.stderr
    out = read_back(result.stdout)
    assert list(out.columns) == ["area_m2", "bedrooms", "age_years", "y"]
    pd.testing.assert_frame_equal(out[["area_m2", "bedrooms", "age_years"]], source[["area_m2", "bedrooms", "age_years"]])
    assert out["bedrooms"].dtype.kind == "i"  # integer columns stay integers
    # y really comes from the truth: the fit finds it again
    fit = invoke("fit", "-", "-f", "gaussian", "--truth", truth, "--format", "json", input=result.stdout)
    assert fit.exit_code == 0, fit.stderr
    params = json.loads(fit.stdout)["parameters"]
    assert [p["truth"] for p in params] == [20.0, 1.5, 10.0, -0.5, 5.0]
    assert all(abs(p["error_se"]) < 4 for p in params)


def test_design_default_columns_leave_out_y(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0], "b": [0.5, 0.1, 0.2]}).to_csv(path, index=False)
    frame = mlefit.simulate("bernoulli", [1, 1], design=path, seed=0)
    assert list(frame.columns) == ["a", "b", "y"]
    with pytest.raises(DataError, match="'c' not found"):
        mlefit.simulate("bernoulli", [1], design=path, features="c")


BAD_ARGUMENTS = [
    (["-f", "bernoulli", "--coef", "1,2", "--design", str(SAMPLES / "house_prices.csv")], "coefficient"),
    (["-f", "categorical", "--coef", "1,2;3,4", "--intercept", "0.5"], "intercept"),
    (["-f", "categorical", "--coef", "1,2;3", ], "different lengths"),
    (["-f", "bernoulli", "--coef", "1,2;3,4"], "one row"),
    (["-f", "categorical", "--coef", "1,2", "--classes", "1"], "at least 2 classes"),
    (["-f", "categorical", "--coef", "1,2", "--classes", "0"], "at least 2 classes"),
    (["-f", "categorical", "--coef", "1,2", "--classes", "4"], "coefficient row"),
    (["-f", "gaussian", "--coef", "1", "--sigma", "0"], "--sigma must be a positive"),
    (["-f", "gaussian", "--coef", "1", "--sigma", "-1.5"], "--sigma must be a positive"),
    (["-f", "bernoulli", "--coef", "1", "--n", "0"], "--n must be at least 1"),
    (["-f", "bernoulli", "--coef", "1", "--n", "-3"], "--n must be at least 1"),
    (["-f", "bernoulli", "--coef", "1,abc"], "not a number"),
    (["-f", "bernoulli", "--coef", "1", "--intercept", "1", "--no-intercept"], "together"),
]


@pytest.mark.parametrize("command", ["simulate", "recover"])
@pytest.mark.parametrize("args, match", BAD_ARGUMENTS)
def test_bad_arguments_give_one_sentence_and_exit_2(invoke, command, args, match):
    result = invoke(command, *args, "--seed", "0")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], result.stderr


# -- fit --truth ---------------------------------------------------------------------------------


@pytest.fixture
def simulated(invoke, tmp_path):
    """(csv path, truth path) of a simulated categorical dataset."""
    data, truth = tmp_path / "data.csv", tmp_path / "truth.json"
    result = invoke("simulate", *cli_args("categorical"), "--n", "3000", "--seed", "11", "-o", data, "--truth", truth)
    assert result.exit_code == 0, result.stderr
    return data, truth


def test_fit_truth_json_adds_keys_and_keeps_the_old_ones(fit_json, simulated):
    data, truth = simulated
    plain, _ = fit_json(data, "-f", "categorical")
    with_truth, _ = fit_json(data, "-f", "categorical", "--truth", truth)
    tail = ["model_std_error", *PROFILE_FIELDS]
    assert [list(p) for p in plain["parameters"]] == [list(PARAMETER_FIELDS) + tail] * 6
    assert [list(p) for p in with_truth["parameters"]] == [list(PARAMETER_FIELDS + TRUTH_FIELDS) + tail] * 6
    known = {(p["name"], p["class"]): p["estimate"] for p in json.loads(truth.read_text())["parameters"]}
    for old, new in zip(plain["parameters"], with_truth["parameters"]):
        assert {k: new[k] for k in old} == old
        assert new["truth"] == known[(new["name"], new["class"])]
        assert new["error_se"] == pytest.approx((new["estimate"] - new["truth"]) / new["std_error"], rel=1e-12)
        assert abs(new["error_se"]) < 4
    unchanged = set(plain) - {"parameters", "trace"}  # the trace holds timings
    assert list(with_truth) == list(plain)
    assert {k: with_truth[k] for k in unchanged} == {k: plain[k] for k in unchanged}


def test_fit_truth_csv_and_table(invoke, simulated):
    data, truth = simulated
    csv_out = invoke("fit", data, "-f", "categorical", "--truth", truth, "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.stderr
    table = read_back(csv_out.stdout)
    assert list(table.columns) == list(PARAMETER_FIELDS + TRUTH_FIELDS)
    assert table["truth"].tolist() == [0.2, 1.0, -2.0, -0.1, 0.5, 0.0]
    assert np.allclose(table["error_se"], (table["estimate"] - table["truth"]) / table["std_error"])
    text = invoke("fit", data, "-f", "categorical", "--truth", truth)
    assert text.exit_code == 0, text.stderr
    header = next(line for line in text.stdout.splitlines() if line.startswith("name"))
    assert header.split()[-2:] == ["truth", "error_se"]


def test_fit_truth_mismatch_is_an_input_error(invoke, simulated, tmp_path):
    data, truth = simulated
    cases = [
        (["-f", "categorical", "--features", "x1"], "does not match"),  # x2 missing from the fit
        (["-f", "categorical", "--no-intercept"], "does not match"),
        (["-f", "gaussian", "--target", "x2", "--features", "x1"], "for family categorical"),
    ]
    for args, match in cases:
        result = invoke("fit", data, *args, "--truth", truth)
        assert result.exit_code == 2, result.stdout
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and match in lines[0], result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "not valid JSON" in invoke("fit", data, "-f", "categorical", "--truth", broken).stderr
    broken.write_text('{"family": "categorical"}')
    assert "not a truth file" in invoke("fit", data, "-f", "categorical", "--truth", broken).stderr
    missing = invoke("fit", data, "-f", "categorical", "--truth", tmp_path / "none.json")
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_read_truth_accepts_fit_json(tmp_path, simulated):
    """A fit's own JSON has the same parameters layout, so it can serve as a truth."""
    data, _ = simulated
    result = mlefit.fit(data, "categorical")
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(result.to_dict()))
    compared = mlefit.compare_truth(result, read_truth(path))
    assert np.all(compared.error_se == 0)


def test_simulate_fit_subprocess_pipeline(tmp_path):
    truth = tmp_path / "truth.json"
    env = subprocess_env()
    sim = subprocess.Popen(
        [MLEFIT, "simulate", *cli_args("bernoulli"), "--n", "4000", "--seed", "0", "--truth", str(truth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    fit = subprocess.run(
        [MLEFIT, "fit", "-", "--family", "bernoulli", "--format", "json", "--truth", str(truth)],
        stdin=sim.stdout, capture_output=True, text=True, env=env, timeout=120,
    )
    sim.stdout.close()
    assert sim.wait(timeout=60) == 0, sim.stderr.read()
    sim.stderr.close()
    assert fit.returncode == 0, fit.stderr
    out = json.loads(fit.stdout)
    assert out["n_obs"] == 4000 and out["converged"]
    assert [p["truth"] for p in out["parameters"]] == [0.5, 1.0, -2.0]
    assert all(abs(p["error_se"]) < 4 for p in out["parameters"])
