"""Shared fixtures: paths, the CLI runner and the installed `mlefit` executable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_data"
#: NIST StRD linear least-squares problems (public data; tests/data/nist/README.md names the source).
NIST = Path(__file__).resolve().parent / "data" / "nist"
#: Rossi, Berk and Lenihan's (1980) recidivism data: right-censored times (tests/data/rossi/README.md).
ROSSI = Path(__file__).resolve().parent / "data" / "rossi" / "rossi.csv"
MLEFIT = str(Path(sys.executable).with_name("mlefit"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the CLI in-process with NO_COLOR set; returns the click Result."""
    from mlefit.cli import app

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, env={"NO_COLOR": "1"})

    return run


@pytest.fixture
def fit_json(invoke):
    """Run `mlefit fit ... --format json` and return (parsed JSON, result)."""

    def run(*args: str, input: str | None = None, expect_exit: int = 0):
        result = invoke("fit", *args, "--format", "json", input=input)
        assert result.exit_code == expect_exit, result.stderr or result.stdout
        return json.loads(result.stdout), result

    return run


@pytest.fixture(scope="module")
def client():
    """A Dask client of an in-process LocalCluster (one worker, two threads) for a test module;
    the module is skipped when dask is not installed."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0",
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


def data_objective(fam, X, y, weights=None, offset=None, rows=None):
    """The in-memory objective of a family on arrays (``rows``: the block size)."""
    from mlefit.engines.base import RowsObjective
    from mlefit.engines.memory import MemoryRows

    return RowsObjective(fam, MemoryRows(X, y, weights, offset, rows=rows))


def read_exact(*args, **kwargs):
    """``pandas.read_csv`` converting every number to the nearest float64 (pandas 2's default
    parser can be a bit off on 17-digit numbers): the reference the readers are compared with."""
    import pandas as pd

    return pd.read_csv(*args, float_precision="round_trip", **kwargs)
