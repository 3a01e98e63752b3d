"""The command line: output formats, standard input, exit codes and every bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

import mlefit

from conftest import MLEFIT, SAMPLES, subprocess_env

ADMISSIONS = str(SAMPLES / "admissions.csv")


def test_json_output_matches_the_api(fit_json):
    doc, _ = fit_json(ADMISSIONS, "--family", "bernoulli", "--target", "admitted")
    res = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted")
    assert doc["family"] == "bernoulli" and doc["method"] == "newton" and doc["gradient"] == "analytic"
    assert doc["target"] == "admitted" and doc["n_obs"] == 600 and doc["n_params"] == 4
    assert doc["converged"] is True and doc["iterations"] == res.n_iter
    # full float64 precision survives the JSON round trip
    assert [p["estimate"] for p in doc["parameters"]] == res.params.tolist()
    assert [p["std_error"] for p in doc["parameters"]] == res.se.tolist()
    assert doc["nll"] == res.nll and doc["loglik"] == res.loglik and doc["aic"] == res.aic
    assert doc["cov"] == res.cov.tolist()
    assert [p["name"] for p in doc["parameters"]] == ["intercept", "gpa", "test_score", "essay_rating"]
    assert all(p["class"] is None for p in doc["parameters"])
    assert doc["loss"] == "binary cross-entropy"
    assert "'yes' is 1" in doc["target_note"]


def test_json_has_no_nan_and_sigma_row(fit_json):
    doc, result = fit_json(str(SAMPLES / "house_prices.csv"), "-f", "gaussian")
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    sigma = doc["parameters"][-1]
    assert sigma["name"] == "sigma" and sigma["z"] is None and sigma["p_value"] is None
    assert doc["trace"][0]["step"] is None
    assert doc["residual_std_error"] > sigma["estimate"]  # n-k versus n in the denominator


def test_categorical_rows_name_their_class(fit_json):
    doc, _ = fit_json(str(SAMPLES / "commute.csv"), "-f", "categorical")
    classes = [p["class"] for p in doc["parameters"]]
    assert classes == ["bus"] * 4 + ["car"] * 4 + ["walk"] * 4
    assert doc["levels"] == ["bike", "bus", "car", "walk"]


def test_standard_input(fit_json):
    text = (SAMPLES / "admissions.csv").read_text()
    doc, _ = fit_json("-", "-f", "bernoulli", input=text)
    ref, _ = fit_json(ADMISSIONS, "-f", "bernoulli")
    # the same numbers; the file path reads into a column-major matrix, stdin through pandas, so
    # BLAS may add in another order (last-bit differences)
    assert [p["name"] for p in doc["parameters"]] == [p["name"] for p in ref["parameters"]]
    for a, b in zip(doc["parameters"], ref["parameters"]):
        assert a["estimate"] == pytest.approx(b["estimate"], rel=1e-12)
        assert a["std_error"] == pytest.approx(b["std_error"], rel=1e-12)


def test_csv_format_is_the_estimates_table(invoke):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    res = mlefit.fit(ADMISSIONS, "bernoulli")
    assert [r["name"] for r in rows] == list(res.names)
    assert [float(r["estimate"]) for r in rows] == res.params.tolist()
    assert list(rows[0]) == ["name", "class", "estimate", "std_error", "z", "p_value", "ci_low", "ci_high"]


def test_plain_text_report_names_the_target_and_statistics(invoke):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli")
    assert result.exit_code == 0
    out = result.stdout
    assert "\x1b[" not in out  # no colour codes off a terminal
    assert "target: admitted" in out and "'yes' is 1" in out
    assert "mean NLL (binary cross-entropy)" in out
    assert "Convergence" in out and "grad_norm" in out
    assert result.stderr == ""


def test_features_and_no_intercept(fit_json):
    doc, _ = fit_json(ADMISSIONS, "-f", "bernoulli", "-x", "gpa,test_score", "--no-intercept")
    assert [p["name"] for p in doc["parameters"]] == ["gpa", "test_score"]


def test_long_trace_is_elided_unless_verbose(invoke, tmp_path):
    args = ("fit", ADMISSIONS, "-f", "bernoulli", "--method", "gd", "--max-iter", "40")
    short = invoke(*args)
    full = invoke(*args, "--verbose")
    assert short.exit_code == full.exit_code == 3
    section = lambda out: out.split("Convergence\n")[1].strip().splitlines()  # noqa: E731
    assert len(section(full.stdout)) == 42  # header + iterations 0..40
    assert len(section(short.stdout)) == 1 + 5 + 1 + 5
    assert "..." in short.stdout


def test_trace_out_writes_every_iteration(invoke, tmp_path):
    out = tmp_path / "trace.csv"
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--trace-out", out)
    assert result.exit_code == 0
    rows = list(csv.DictReader(out.open()))
    res = mlefit.fit(ADMISSIONS, "bernoulli")
    assert len(rows) == len(res.trace)
    assert [float(r["nll"]) for r in rows] == [r.nll for r in res.trace]
    assert rows[0]["step"] == ""


def test_trace_out_refuses_to_overwrite_the_input(invoke, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text((SAMPLES / "admissions.csv").read_text())
    before = data.read_text()
    result = invoke("fit", data, "-f", "bernoulli", "--trace-out", data)
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.stderr
    assert data.read_text() == before


def test_not_converged_prints_results_and_exits_3(invoke):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--max-iter", "1", "--format", "json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["converged"] is False and "iteration limit (1)" in doc["message"]
    assert "did not converge" in result.stderr


def test_quiet_prints_only_estimates(invoke):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--quiet")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split()[:3] == ["name", "estimate", "std_error"]
    assert "Convergence" not in result.stdout


# -- bad input: one sentence on stderr, exit code 2, no traceback ---------------------------------


def write(tmp_path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_INPUTS = [
    ("missing file", lambda p: ["nope.csv", "-f", "bernoulli"], "file 'nope.csv' not found"),
    ("empty file", lambda p: [write(p, ""), "-f", "bernoulli"], "is empty"),
    ("header only", lambda p: [write(p, "a,y\n"), "-f", "bernoulli"], "no data rows"),
    ("missing target", lambda p: [ADMISSIONS, "-f", "bernoulli", "-y", "admit"],
     "target column 'admit' not found; available: gpa, test_score, essay_rating, admitted"),
    ("missing feature", lambda p: [ADMISSIONS, "-f", "bernoulli", "-x", "gpa,sat"], "feature column 'sat' not found"),
    ("missing values", lambda p: [write(p, "a,b,y\n1,2,0\n2,,1\n3,1,0\n4,5,1\n"), "-f", "bernoulli"],
     "column 'b' has 1 missing value(s), the first in data row 2"),
    ("non-numeric value in a numeric feature", lambda p: [write(p, "a,b,y\n1,2,0\n2,x,1\n3,1,0\n4,5,1\n"), "-f", "bernoulli"],
     "feature column 'b' is not numeric: data row 2 has 'x'"),
    ("three labels for bernoulli", lambda p: [write(p, "a,y\n1,x\n2,y\n3,z\n4,x\n5,y\n"), "-f", "bernoulli"],
     "has 3 distinct value(s)"),
    ("one label for categorical", lambda p: [write(p, "a,y\n1,x\n2,x\n3,x\n"), "-f", "categorical"], "single class"),
    ("text target for gaussian", lambda p: [write(p, "a,y\n1,x\n2,y\n3,z\n"), "-f", "gaussian"], "is not numeric"),
    ("fewer rows than parameters", lambda p: [write(p, "a,b,y\n1,2,0\n2,1,1\n"), "-f", "bernoulli"],
     "2 rows are too few for 3 parameters"),
    ("target as feature", lambda p: [ADMISSIONS, "-f", "bernoulli", "-x", "gpa,admitted", "-y", "admitted"],
     "is the target and cannot also be a feature"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_one_sentence_and_exit_code_2(case, invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, args, fragment = case
    result = invoke("fit", *args(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_family_is_a_usage_error(invoke):
    result = invoke("fit", ADMISSIONS, "--family", "binomial")
    assert result.exit_code == 2
    assert "binomial" in result.stderr and "bernoulli" in result.stderr


def test_family_is_required(invoke):
    result = invoke("fit", ADMISSIONS)
    assert result.exit_code == 2 and "--family" in result.stderr


# -- real processes ----------------------------------------------------------------------------------


def run(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=subprocess_env(), timeout=120, **kw)


def test_pipeline_from_standard_input_to_json():
    proc = run(f"cat {ADMISSIONS} | {MLEFIT} fit - --family bernoulli --format json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["n_obs"] == 600 and doc["converged"]


def test_piping_into_head_ends_quietly():
    proc = run(
        f"{MLEFIT} fit {ADMISSIONS} -f bernoulli --verbose --method gd --max-iter 3000 | head -n 2; "
        'echo "status ${PIPESTATUS[0]}" >&2'
    )
    assert proc.stdout.count("\n") == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    # killed by SIGPIPE (128 + 13) as Unix tools are, not exit 1 (a bug) nor a usage code
    assert proc.stderr.strip().splitlines()[-1] == "status 141"


def test_python_dash_m_and_exit_code_of_bad_input():
    import sys

    proc = subprocess.run([sys.executable, "-m", "mlefit", "fit", "missing.csv", "-f", "gaussian"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: file 'missing.csv' not found."


def test_help_lists_families_and_commands():
    proc = run(f"{MLEFIT} fit --help")
    assert proc.returncode == 0
    for name in ("bernoulli", "categorical", "gaussian", "--trace-out", "--no-intercept"):
        assert name in proc.stdout


def test_rich_tables_never_cut_a_number(monkeypatch):
    """On a narrow terminal the rich report keeps every digit (no ellipsis)."""
    from mlefit import render

    monkeypatch.setenv("COLUMNS", "60")
    res = mlefit.fit(str(SAMPLES / "commute.csv"), "categorical")
    buf = io.StringIO()
    render.print_fit_rich(res, file=buf)
    out = buf.getvalue()
    assert "…" not in out
    for row in res.parameter_rows():
        assert render.number(row["estimate"]) in out
        assert render.number(row["ci_high"]) in out
