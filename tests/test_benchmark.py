"""benchmarks/compare.py runs end to end on tiny sizes and its estimates agree (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, subprocess_env

pytest.importorskip("statsmodels")
pytest.importorskip("sklearn")


def test_compare_quick_prints_every_comparison_and_agrees_with_statsmodels(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    # the wide designs (p / 10 with --quick) and many classes, statsmodels run once for the agreement
    wide_names = [f"bernoulli n={20 * (p + 1):,} p={p}" for p in (20, 50, 100)] + [
        "categorical n=1,080 p=5 K=10", "categorical n=1,740 p=2 K=30"
    ]
    by_comparison: dict[str, dict[str, dict]] = {}
    wide: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["comparison"] in wide_names:
            wide.setdefault(row["comparison"], {})[row["tool"]] = row
        else:
            by_comparison.setdefault(row["comparison"].split(" ")[0], {})[row["tool"]] = row
    assert set(by_comparison) == {"bernoulli", "categorical", "gaussian", "CSV", "start-up"}
    assert {"mlefit", "statsmodels Logit newton", "sklearn lbfgs", "sklearn newton-cholesky"} <= set(by_comparison["bernoulli"])
    assert {"mlefit", "statsmodels MNLogit newton", "sklearn lbfgs"} <= set(by_comparison["categorical"])
    assert {"mlefit", "statsmodels OLS", "sklearn LinearRegression"} <= set(by_comparison["gaussian"])
    assert sorted(wide) == sorted(wide_names)
    for name, tools in wide.items():
        assert tools["mlefit"]["agreement"] < 1e-6, name
        assert {"sklearn lbfgs", "sklearn newton-cholesky"} <= set(tools), name
        truth = "statsmodels Logit newton" if name.startswith("bernoulli") else "statsmodels MNLogit newton"
        assert tools[truth]["agreement"] == 0.0 and "agreement's reference" in tools[truth]["note"]
    assert "mlefit CLI" in by_comparison["CSV"]
    assert set(by_comparison["start-up"]) == {
        "python -c 'import typer'", "mlefit --help", "mlefit fit (1,000 rows)", "statsmodels script (1,000 rows)"
    }
    startup = by_comparison["start-up"]
    help_ratio = startup["mlefit --help"]["seconds"] / startup["python -c 'import typer'"]["seconds"]
    assert startup["mlefit --help"]["ratio"] == pytest.approx(help_ratio)
    for name in ("bernoulli", "categorical", "gaussian"):
        assert by_comparison[name]["mlefit"]["agreement"] < 1e-8, name
        assert by_comparison[name]["mlefit"]["ratio"] > 0
    assert by_comparison["CSV"]["mlefit CLI"]["agreement"] < 1e-8
    assert "peak RSS" in by_comparison["CSV"]["mlefit CLI"]["note"]
    for row in rows:
        assert row["seconds"] > 0 and len(row["runs"]) == 1
        assert row["tool"] in proc.stdout  # the printed table has the same rows


def test_stream_benchmark_quick_runs_and_agrees(tmp_path):
    out = tmp_path / "stream.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stream.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["rows"] for r in rows] == [20_000, 80_000]
    for r in rows:
        assert r["max_rel_diff"] < 1e-10 and r["stream_peak_mb"] > 0


def test_parquet_benchmark_quick_runs_and_agrees_with_the_csv(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "parquet.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "parquet.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["rows"] for r in rows] == [20_000, 80_000]
    assert rows[0]["max_rel_diff"] < 1e-10 and rows[0]["ratio"] == pytest.approx(
        rows[0]["stream_seconds"] / rows[0]["csv_seconds"]
    )
    assert all(r["stream_peak_mb"] > 0 and r["load_1min"] >= 0 for r in rows)
    assert report["peak_growth"] == pytest.approx(rows[-1]["stream_peak_mb"] / rows[0]["stream_peak_mb"])
    assert "peak memory, 80,000 rows over 20,000" in proc.stdout
