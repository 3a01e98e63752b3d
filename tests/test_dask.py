"""--engine dask: a LocalCluster on loopback gives the local engine's numbers."""

from __future__ import annotations

import pytest

import mlefit
from mlefit.families import get_family
from test_stream import FAMILIES, RTOL, _rel, make_csv

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,  # in-process: no sockets
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("options", [{}, {"weights": "w", "cov": "robust"}], ids=["plain", "weights-robust"])
def test_dask_fit_agrees_with_local(tmp_path, client, family, options):
    from mlefit.dask_engine import fit_dask

    path = make_csv(tmp_path / "d.csv", family)
    local = mlefit.fit(path, family, **options)
    # partitions of about 5 KB (~100 rows): classes and text levels missing from the first ones
    remote = fit_dask(path, get_family(family), client=client, tol=1e-8, max_iter=100, blocksize=5000, **options)
    assert remote.names == local.names and remote.levels == local.levels
    assert _rel(remote.params, local.params) < RTOL
    assert _rel(remote.se, local.se) < RTOL
    assert _rel(remote.nll, local.nll) < RTOL
    assert set(remote.to_dict()) == set(local.to_dict())


def test_dask_late_bad_value_names_the_row(tmp_path, client):
    import pandas as pd

    from mlefit.dask_engine import fit_dask
    from mlefit.errors import DataError

    path = make_csv(tmp_path / "d.csv", "bernoulli")
    frame = pd.read_csv(path)
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[849, "x2"] = "oops"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="data row 850 has 'oops'"):
        fit_dask(path, get_family("bernoulli"), client=client, tol=1e-8, max_iter=100, blocksize=5000)


def test_missing_dask_is_one_clear_sentence(tmp_path, invoke, monkeypatch):
    import sys

    path = make_csv(tmp_path / "d.csv", "bernoulli")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    res = invoke("fit", path, "--family", "bernoulli", "--engine", "dask", "--scheduler", "local")
    assert res.exit_code == 2
    assert "needs the dask and distributed packages" in res.stderr and "mlefit[dask]" in res.stderr


def test_bad_scheduler_address_is_a_usage_error(tmp_path, invoke):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    res = invoke("fit", path, "--family", "bernoulli", "--engine", "dask", "--scheduler", "nowhere")
    assert res.exit_code == 2 and "--scheduler must be tcp://HOST:PORT or local" in res.stderr


def test_unknown_engine(tmp_path, invoke):
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    res = invoke("fit", path, "--family", "bernoulli", "--engine", "spark")
    assert res.exit_code == 2 and "unknown engine 'spark'" in res.stderr
