"""benchmarks/counts.py runs end to end on small sizes and its estimates agree (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, subprocess_env

pytest.importorskip("statsmodels")
pytest.importorskip("sklearn")


def test_counts_benchmark_quick_prints_every_comparison_and_agrees_with_statsmodels(tmp_path):
    out = tmp_path / "counts.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "counts.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, env=subprocess_env(), timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert (doc["n"], doc["p"], doc["repeat"]) == (20_000, 5, 1)
    by_comparison: dict[str, dict[str, dict]] = {}
    for row in doc["rows"]:
        by_comparison.setdefault(row["comparison"].split(" ")[0], {})[row["tool"]] = row
    assert set(by_comparison) == {"poisson", "negbin", "gamma"}
    assert {"mlefit", "statsmodels GLM Poisson (IRLS)", "sklearn PoissonRegressor lbfgs",
            "sklearn PoissonRegressor newton-cholesky"} <= set(by_comparison["poisson"])
    assert {"mlefit", "statsmodels NegativeBinomial nb2 (newton)"} <= set(by_comparison["negbin"])
    assert {"mlefit", "statsmodels GLM Gamma log (IRLS)", "sklearn GammaRegressor lbfgs",
            "sklearn GammaRegressor newton-cholesky"} <= set(by_comparison["gamma"])
    for name, tools in by_comparison.items():
        # mlefit's estimates (alpha too for negbin) are statsmodels' (measured 1e-11 or better)
        assert tools["mlefit"]["agreement"] < 1e-8, name
        assert tools["mlefit"]["reference"] is False and tools["mlefit"]["ratio"] > 0
        assert min(r["ratio"] for r in tools.values() if r["reference"]) == pytest.approx(1.0)
    # the Newton-type references solve the same problem to their tolerance
    assert by_comparison["poisson"]["sklearn PoissonRegressor newton-cholesky"]["agreement"] < 1e-7
    assert by_comparison["gamma"]["sklearn GammaRegressor newton-cholesky"]["agreement"] < 1e-7
    for row in doc["rows"]:
        assert row["seconds"] > 0 and len(row["runs"]) == 1
        assert row["tool"] in proc.stdout  # the printed table has the same rows
    assert "load average (1, 5, 15 min):" in proc.stdout
    assert len(doc["machine"]["load average (1, 5, 15 min) at start"].split()) == 3
