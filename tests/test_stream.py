"""Streamed fits (mlefit.stream): the same numbers as in memory, chunk by chunk."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import MLEFIT, subprocess_env

RTOL = 1e-10


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def make_csv(path: Path, family: str, n: int = 900, seed: int = 7) -> Path:
    """A CSV whose chunks of 97 rows split the classes: levels 'b', 'c' of the text feature ``g``
    and classes of the target appear only after the first chunks."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    g[:300] = "a"
    eta = 0.5 + x1 - 0.5 * x2 + 0.7 * (g == "b")
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
        y[:150] = 0  # class 1 absent from the first chunk
    elif family == "categorical":
        y = np.where(rng.random(n) < 0.3, "z", np.where(eta > 0.8, "m", "k"))
        y[:250] = "k"  # classes m and z appear late
    else:
        y = eta + rng.normal(size=n)
    w = rng.integers(0, 4, n)
    pd.DataFrame({"x1": x1, "x2": x2, "g": g, "w": w, "y": y}).to_csv(path, index=False)
    return path


FAMILIES = ["bernoulli", "categorical", "gaussian"]
OPTIONS = [{}, {"weights": "w"}, {"cov": "robust"}, {"l2": 0.5}, {"intercept": False}]


@pytest.fixture
def first_passes(monkeypatch):
    """How many times the two-pass reader's first pass ran (0: the one-pass numeric reader)."""
    from mlefit.engines import stream

    calls = []
    original = stream._first_pass

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(stream, "_first_pass", counting)
    return calls


#: Every column (the text feature g: the two-pass reader), or only numeric features (one pass).
READERS = {"two-pass": {}, "one-pass": {"features": "x1,x2"}}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "weights", "robust", "l2", "no-intercept"])
@pytest.mark.parametrize("reader", READERS)
def test_streamed_fit_agrees_with_in_memory(tmp_path, family, options, reader, first_passes):
    path = make_csv(tmp_path / "d.csv", family)
    options = {**options, **READERS[reader]}
    mem = mlefit.fit(path, family, **options)
    st = mlefit.fit(path, family, stream=True, chunk_rows=97, **options)
    assert len(first_passes) == (reader == "two-pass")
    assert st.names == mem.names and st.levels == mem.levels and st.feature_names == mem.feature_names
    assert _rel(st.params, mem.params) < RTOL
    assert _rel(st.se, mem.se) < RTOL
    assert _rel(st.nll, mem.nll) < RTOL
    assert st.n_obs == mem.n_obs and st.n_rows == mem.n_rows
    assert st.converged and mem.converged
    dm, ds = mem.to_dict(), st.to_dict()
    assert set(ds) == set(dm)  # the JSON layout is the same
    assert {k for k, v in ds.items() if v is None} == {k for k, v in dm.items() if v is None}
    for key in ("null_loglik", "lr_stat", "pseudo_r2", "r2", "aic", "bic", "df_resid"):
        if dm.get(key) is not None and np.isfinite(dm[key]):
            assert _rel(ds[key], dm[key]) < 1e-9, key
    assert st.design == mem.design


def test_newton_trace_has_one_row_per_pass(tmp_path, monkeypatch):
    from mlefit.engines.base import RowsObjective

    path = make_csv(tmp_path / "d.csv", "categorical")
    passes = []
    original = RowsObjective.sums

    def counting(self, params, order, precise=False):
        if self.null_columns is None:  # not the intercept-only model's passes (over y alone)
            passes.append(order)
        return original(self, params, order, precise)

    monkeypatch.setattr(RowsObjective, "sums", counting)
    res = mlefit.fit(path, "categorical", stream=True, chunk_rows=50)
    assert len(res.trace) == res.n_iter + 1
    assert passes.count(2) == len(res.trace)  # every f, g, H evaluation is one pass and one row


def test_dropna_agrees(tmp_path):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    frame = pd.read_csv(path)
    frame.loc[[5, 400, 801], "x2"] = np.nan
    frame.to_csv(path, index=False)
    mem = mlefit.fit(path, "bernoulli", dropna=True)
    st = mlefit.fit(path, "bernoulli", dropna=True, stream=True, chunk_rows=100)
    assert st.n_dropped == mem.n_dropped == 3
    assert _rel(st.params, mem.params) < RTOL


@pytest.mark.parametrize(
    "column, row, value, family",
    [
        ("x2", 850, "oops", "bernoulli"),  # a word in a numeric column, in the last chunk
        ("x1", 700, "", "bernoulli"),  # a missing value late
        ("w", 777, -1, "bernoulli"),  # a negative weight late
        ("y", 820, "maybe", "bernoulli"),  # a third label late
        ("y", 820, "text", "gaussian"),  # a non-numeric target late
    ],
)
def test_late_bad_input_gives_the_in_memory_message(tmp_path, invoke, column, row, value, family):
    path = make_csv(tmp_path / "d.csv", family)
    frame = pd.read_csv(path)
    frame[column] = frame[column].astype(object)
    frame.loc[row - 1, column] = value  # data row numbers are 1-based
    frame.to_csv(path, index=False)
    extra = ["--weights", "w"] if column == "w" else []
    mem = invoke("fit", path, "--family", family, *extra)
    st = invoke("fit", path, "--family", family, *extra, "--stream", "--chunk-rows", "100")
    assert mem.exit_code == st.exit_code == 2
    assert st.stderr == mem.stderr
    if column != "y":
        assert f"data row {row}" in st.stderr


@pytest.mark.parametrize("column, row, value", [("x2", 850, "oops"), ("x1", 700, ""), ("w", 777, -1), ("y", 820, "maybe")])
def test_late_bad_value_in_a_numeric_file_gives_the_in_memory_message(tmp_path, invoke, column, row, value):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    frame = pd.read_csv(path).drop(columns="g")  # every feature numeric: the one-pass reader's case
    frame[column] = frame[column].astype(object)
    frame.loc[row - 1, column] = value
    frame.to_csv(path, index=False)
    extra = ["--weights", "w"] if column == "w" else []
    mem = invoke("fit", path, "--family", "bernoulli", *extra)
    st = invoke("fit", path, "--family", "bernoulli", *extra, "--stream", "--chunk-rows", "100")
    assert mem.exit_code == st.exit_code == 2
    assert st.stderr == mem.stderr


def test_one_pass_reader_recodes_labels_seen_late(tmp_path, first_passes):
    """Text labels: the first chunks hold only 'yes', cached as code 0 until 'no' (sorted first) appears."""
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    frame = pd.read_csv(path).drop(columns="g")
    frame["y"] = np.where(frame["y"] == 1, "no", "yes")
    frame.loc[:150, "y"] = "yes"
    frame.to_csv(path, index=False)
    mem = mlefit.fit(path, "bernoulli", weights="w")
    st = mlefit.fit(path, "bernoulli", weights="w", stream=True, chunk_rows=64)
    assert not first_passes
    assert st.levels == mem.levels == ("no", "yes") and st.target_note == mem.target_note
    assert _rel(st.params, mem.params) < RTOL and _rel(st.se, mem.se) < RTOL
    assert _rel(st.to_dict()["null_loglik"], mem.to_dict()["null_loglik"]) < RTOL


def test_warm_start_from_runs_of_the_cache(tmp_path, monkeypatch):
    """A large fit starts Newton from a fit to runs of rows spread over the cache (at most
    SUBSAMPLE_MAX_ROWS of them): fewer passes, the same estimates."""
    import importlib

    from mlefit.engines import stream

    fitting = importlib.import_module("mlefit.fit")  # the module, not the function mlefit.fit

    rng = np.random.default_rng(5)
    n = 40_000
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -2.0, 0.5])))).astype(int)
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}).to_csv(path, index=False)
    mem = mlefit.fit(path, "bernoulli")
    read = []
    original = stream.Cache.runs

    def runs(self, starts, length):
        out = original(self, starts, length)
        read.append(out.n_obs)
        return out

    monkeypatch.setattr(stream.Cache, "runs", runs)
    monkeypatch.setattr(stream, "SUBSAMPLE_MAX_ROWS", 2048)
    cold = mlefit.fit(path, "bernoulli", stream=True, chunk_rows=5000)
    assert read == [2048]  # the intercept-only model's start; fewer rows than fit.WARM_START_ROWS
    read.clear()
    monkeypatch.setattr(fitting, "WARM_START_ROWS", 10_000)
    warm = mlefit.fit(path, "bernoulli", stream=True, chunk_rows=5000)
    assert read == [2048, 2048]  # the subsample (read once) and the held-out runs, capped
    assert len(warm.trace) < len(cold.trace)
    for res in (cold, warm):
        assert res.converged and _rel(res.params, mem.params) < RTOL and _rel(res.se, mem.se) < RTOL


def test_stdin_streams_through_the_cache(tmp_path, fit_json):
    path = make_csv(tmp_path / "d.csv", "categorical")
    text = path.read_text()
    mem, _ = fit_json("-", "--family", "categorical", input=text)
    st, _ = fit_json("-", "--family", "categorical", "--stream", "--chunk-rows", "64", input=text)
    for key in ("estimate", "std_error"):
        assert _rel([p[key] for p in st["parameters"]], [p[key] for p in mem["parameters"]]) < RTOL
    assert _rel(st["nll"], mem["nll"]) < RTOL


def test_cache_dir_removed_unless_given(tmp_path, monkeypatch):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    mlefit.fit(path, "bernoulli", stream=True, chunk_rows=100)
    assert list(scratch.iterdir()) == []
    kept = tmp_path / "cache"
    mlefit.fit(path, "bernoulli", stream=True, chunk_rows=100, cache_dir=kept)
    assert (kept / "X.bin").stat().st_size == 900 * 6 * 8  # intercept, x1, x2, g[b], g[c], w


def test_memory_limit_streams_large_files(tmp_path, fit_json):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    cache = tmp_path / "cache"
    small, _ = fit_json(path, "--family", "bernoulli", "--cache-dir", cache, "--memory-limit", "1G")
    assert not cache.exists()  # smaller than the limit: in memory
    big, _ = fit_json(path, "--family", "bernoulli", "--cache-dir", cache, "--memory-limit", "10K")
    assert (cache / "X.bin").exists()  # larger than the limit: streamed
    assert _rel(big["nll"], small["nll"]) < RTOL


def test_bad_memory_limit_is_a_usage_error(tmp_path, invoke):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    res = invoke("fit", path, "--family", "bernoulli", "--memory-limit", "lots")
    assert res.exit_code == 2 and "--memory-limit" in res.stderr


def test_pipeline_simulate_to_streamed_fit(tmp_path):
    env = subprocess_env()
    sim = subprocess.run(
        [MLEFIT, "simulate", "--family", "categorical", "--coef", "1,-1;0.5,2", "--n", "3000", "--seed", "3"],
        capture_output=True, text=True, env=env, check=True,
    )
    runs = [
        subprocess.run([MLEFIT, "fit", "-", "--family", "categorical", "--format", "json", *extra],
                       input=sim.stdout, capture_output=True, text=True, env=env)
        for extra in ([], ["--stream", "--chunk-rows", "500"])
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr
    mem, st = (json.loads(r.stdout) for r in runs)
    assert _rel([p["estimate"] for p in st["parameters"]], [p["estimate"] for p in mem["parameters"]]) < RTOL


# -- separation ---------------------------------------------------------------------------------------


def _separated_frames(rng) -> dict[str, tuple[pd.DataFrame, str]]:
    n = 300
    x1, x2 = np.round(rng.normal(size=(2, n)), 3)
    x1[x1 == 0] = 0.5
    group = np.repeat(["a", "b", "c"], n // 3)
    return {
        # complete, numeric features: the one-pass reader
        "complete": (pd.DataFrame({"x1": x1, "x2": x2, "y": np.where(x1 > 0, "yes", "no")}), "bernoulli"),
        # quasi-complete, a text feature: the two-pass reader
        "quasi": (pd.DataFrame({"x1": x2, "group": group,
                                "y": np.where(group == "a", "yes", np.where(rng.random(n) < 0.5, "yes", "no"))}),
                  "bernoulli"),
        "categorical": (pd.DataFrame({"x1": x1, "x2": x2, "y": np.where(x2 > 0.8, "c", np.where(rng.random(n) < 0.5, "a", "b"))}),
                        "categorical"),
    }


@pytest.mark.parametrize("case", ["complete", "quasi", "categorical"])
def test_separated_data_streamed_exit_4_with_the_in_memory_message(tmp_path, invoke, rng, case):
    frame, family = _separated_frames(rng)[case]
    path = tmp_path / "sep.csv"
    frame.to_csv(path, index=False)
    mem = invoke("fit", path, "--family", family)
    st = invoke("fit", path, "--family", family, "--stream", "--chunk-rows", "40")
    assert mem.exit_code == st.exit_code == 4
    assert st.stdout == "" and st.stderr == mem.stderr
    assert "separation" in st.stderr


def test_separation_check_too_large_for_memory_is_named_in_the_message(tmp_path, invoke, rng):
    frame, _ = _separated_frames(rng)["complete"]
    path = tmp_path / "sep.csv"
    frame.to_csv(path, index=False)
    # a file larger than --memory-limit is streamed anyway, and its rows are too many to read back
    res = invoke("fit", path, "--family", "bernoulli", "--memory-limit", "2K", "--format", "json")
    assert res.exit_code in (0, 3), res.stderr
    doc = json.loads(res.stdout)
    assert "the exact check needs all 300 rows in memory" in doc["message"]
    assert "more than the memory limit of" in doc["message"] and "--l2" in doc["message"]


def test_ordinary_streamed_fit_runs_no_linear_programme(tmp_path, monkeypatch):
    from mlefit import checks

    def refuse(*args, **kwargs):
        raise AssertionError("the separation check ran on data without symptoms")

    monkeypatch.setattr(checks, "check_separation", refuse)
    path = make_csv(tmp_path / "d.csv", "categorical")
    res = mlefit.fit(path, "categorical", stream=True, chunk_rows=97)
    assert res.converged


def test_streamed_separation_screen_reads_the_last_pass(tmp_path, monkeypatch, rng):
    """A converged streamed fit with a class probability below exp(-20) (one far outlier, not
    separated) is screened from the optimiser's last pass, with no pass of its own, and then
    checked exactly, as in memory."""
    import importlib

    from mlefit import checks

    fit_module = importlib.import_module("mlefit.fit")
    n = 400
    x = rng.standard_normal(n)
    x[0] = 80.0  # eta there about 80 x slope: the other class's probability far below exp(-20)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + 0.8 * x)))).astype(int)
    y[0] = 1
    path = tmp_path / "outlier.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(path, index=False)

    real_screen = fit_module._suspect_separation

    def from_the_last_pass(objective, params):
        assert objective.min_log_prob(params) is not None, "the screen made a pass of its own"
        return real_screen(objective, params)

    calls = []
    real_check = checks.check_separation
    monkeypatch.setattr(fit_module, "_suspect_separation", from_the_last_pass)
    monkeypatch.setattr(checks, "check_separation", lambda *a, **k: calls.append(1) or real_check(*a, **k))
    streamed = mlefit.fit(path, "bernoulli", stream=True, chunk_rows=97)
    assert streamed.converged and calls == [1]  # screened positive, checked, not separated
    in_memory = mlefit.fit(path, "bernoulli")
    np.testing.assert_allclose(streamed.params, in_memory.params, rtol=1e-10)
