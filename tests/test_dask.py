"""--engine dask: a LocalCluster, and a real scheduler and worker on tcp:// loopback, give the
local engine's numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mlefit
from conftest import MLEFIT, subprocess_env
from mlefit.families import get_family
from test_stream import FAMILIES, RTOL, _rel, make_csv

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("options", [{}, {"weights": "w", "cov": "robust"}], ids=["plain", "weights-robust"])
def test_dask_fit_agrees_with_local(tmp_path, client, family, options):
    path = make_csv(tmp_path / "d.csv", family)
    local = mlefit.fit(path, family, **options)
    # partitions of about 100 rows: classes and text levels missing from the first ones
    remote = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100, **options)
    assert remote.names == local.names and remote.levels == local.levels
    assert _rel(remote.params, local.params) < RTOL
    assert _rel(remote.se, local.se) < RTOL
    assert _rel(remote.nll, local.nll) < RTOL
    assert set(remote.to_dict()) == set(local.to_dict())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_large_dask_fit_starts_from_a_subsample_on_the_client(tmp_path, client, family, monkeypatch):
    """As in memory, a large Newton fit starts from the fit of a subsample (runs of rows from every
    partition, brought to the client): fewer Hessian passes over the partitions, the same MLE."""
    import importlib

    import pandas as pd

    from mlefit.engines import cluster
    from mlefit.engines.base import RowsObjective

    fit_module = importlib.import_module("mlefit.fit")
    monkeypatch.setattr(fit_module, "WARM_START_ROWS", 1_000)
    path = tmp_path / "d.csv"
    pd.read_csv(make_csv(path, family, n=40_000)).drop(columns="g").to_csv(path, index=False)
    local = mlefit.fit(path, family, weights="w")
    hessians, samples = [], []
    sums, subsample = RowsObjective.sums, cluster.DaskParts.subsample
    monkeypatch.setattr(
        RowsObjective, "sums",
        lambda self, params, order, precise=False: (
            hessians.append(type(self.rows).__name__) if order == 2 and self.null_columns is None else None
        ) or sums(self, params, order, precise),
    )
    monkeypatch.setattr(
        cluster.DaskParts, "subsample", lambda self, which: samples.append(which) or subsample(self, which)
    )
    warm = mlefit.fit(path, family, weights="w", engine="dask", client=client, chunk_rows=5_000)
    assert samples == [0, 1] and warm.converged
    assert _rel(warm.params, local.params) < RTOL and _rel(warm.se, local.se) < RTOL
    on_parts = hessians.count("DaskParts")
    hessians.clear()
    monkeypatch.setattr(cluster, "SUBSAMPLE_BYTES", 0)  # no subsample: Newton from the usual start
    cold = mlefit.fit(path, family, weights="w", engine="dask", client=client, chunk_rows=5_000)
    assert "MemoryRows" not in hessians
    # gaussian's Newton converges in a step or two from either start
    assert hessians.count("DaskParts") > on_parts if family != "gaussian" else hessians.count("DaskParts") >= on_parts
    assert _rel(cold.params, warm.params) < RTOL


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_the_null_model_of_classes_takes_one_pass(tmp_path, client, family, monkeypatch):
    """The intercept-only model of a family with classes starts from every class's total weight
    (not from the first partition, which here holds one class): one pass over the targets confirms
    it, and the null log-likelihood is the in-memory one."""
    from mlefit.engines.base import RowsObjective

    path = make_csv(tmp_path / "d.csv", family)
    local = mlefit.fit(path, family)
    null_passes = []
    original = RowsObjective.sums

    def counting(self, params, order, precise=False):
        if self.null_columns is not None:
            null_passes.append(order)
        return original(self, params, order, precise)

    monkeypatch.setattr(RowsObjective, "sums", counting)
    remote = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100)
    assert null_passes == [2]
    assert local.null_loglik is not None and _rel(remote.null_loglik, local.null_loglik) < 1e-12
    assert _rel(remote.lr_stat, local.lr_stat) < RTOL


@pytest.mark.parametrize("family", FAMILIES)
def test_numeric_files_take_the_one_pass_reader(tmp_path, client, family, monkeypatch):
    """A CSV of numbers only is parsed once on the workers (float64 partitions, encoded there) and
    gives the local engine's numbers, weights included; a text value sends it to the general reader."""
    import pandas as pd

    from mlefit.engines import cluster
    from mlefit.readers import csvfast

    path = make_csv(tmp_path / "d.csv", family)
    frame = pd.read_csv(path).drop(columns="g")
    frame.to_csv(path, index=False)
    taken, fallback = [], []
    arrow, pandas_reader = cluster._load_numeric_arrow, cluster._load_numeric
    monkeypatch.setattr(cluster, "_load_numeric_arrow", lambda *a, **k: taken.append(arrow(*a, **k)) or taken[-1])
    monkeypatch.setattr(cluster, "_load_numeric", lambda *a, **k: fallback.append(pandas_reader(*a, **k)) or fallback[-1])
    local = mlefit.fit(path, family, weights="w")
    remote = mlefit.fit(path, family, weights="w", engine="dask", client=client, chunk_rows=100)
    assert taken[-1][0] is not None and not fallback  # the one-pass reader took it, with pyarrow
    assert remote.names == local.names and remote.levels == local.levels
    assert _rel(remote.params, local.params) < RTOL and _rel(remote.se, local.se) < RTOL
    assert remote.to_dict()["levels"] == local.to_dict()["levels"]  # 0/1 labels stay integers
    # without pyarrow, pandas parses the same partitions (dd.read_csv's): the same sums, bit for bit
    with monkeypatch.context() as without_pyarrow:
        without_pyarrow.setattr(csvfast, "available", lambda: False)
        by_pandas = mlefit.fit(path, family, weights="w", engine="dask", client=client, chunk_rows=100)
    assert taken[-1] == (None, False) and fallback[-1] is not None
    np.testing.assert_array_equal(by_pandas.params, remote.params)
    np.testing.assert_array_equal(by_pandas.se, remote.se)
    from mlefit.errors import DataError

    big = pd.read_csv(make_csv(tmp_path / "big.csv", family, n=3_000)).drop(columns="g")
    # a text value in the first 64 KiB: refused before a pass, and pandas' numeric reader refuses it
    # too; in the last partition of a larger file: read once by pyarrow, then the general reader
    # says where
    for rows, arrow_said, pandas_said in ((frame, (None, False), [None]), (big, (None, True), [])):
        rows["x1"] = rows["x1"].astype(object)
        rows.loc[len(rows) - 3, "x1"] = "oops"
        rows.to_csv(path, index=False)
        fallback.clear()
        with pytest.raises(DataError, match=f"data row {len(rows) - 2} has 'oops'"):
            mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100)
        assert taken[-1] == arrow_said and fallback == pandas_said


@pytest.mark.parametrize("family", FAMILIES)
def test_dask_profile_intervals_and_fingerprint_agree_with_local(tmp_path, client, family):
    path = make_csv(tmp_path / "d.csv", family)
    options = dict(weights="w", profile="x1,x2", fingerprint=True)
    local = mlefit.fit(path, family, **options)
    remote = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100, **options)
    assert remote.profile_status == local.profile_status
    profiled = [i for i, s in enumerate(local.profile_status) if s == ("found", "found")]
    assert len(profiled) >= 2
    assert _rel(remote.profile_ci_low[profiled], local.profile_ci_low[profiled]) < 1e-8
    assert _rel(remote.profile_ci_high[profiled], local.profile_ci_high[profiled]) < 1e-8
    assert remote.data_fingerprint == local.data_fingerprint is not None


def test_dask_late_bad_value_names_the_row(tmp_path, client):
    import pandas as pd

    from mlefit.errors import DataError

    path = make_csv(tmp_path / "d.csv", "bernoulli")
    frame = pd.read_csv(path)
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[849, "x2"] = "oops"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="data row 850 has 'oops'"):
        mlefit.fit(path, "bernoulli", engine="dask", client=client, chunk_rows=100)


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


def test_dask_separated_data_gives_the_in_memory_error(tmp_path, client, rng):
    from mlefit.errors import SeparationError
    from test_stream import _separated_frames

    frame, family = _separated_frames(rng)["categorical"]
    path = tmp_path / "sep.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SeparationError) as local:
        mlefit.fit(path, family)
    with pytest.raises(SeparationError) as remote:
        mlefit.fit(path, family, engine="dask", client=client, chunk_rows=60)
    assert str(remote.value) == str(local.value)


# -- a real scheduler and worker on tcp:// loopback ---------------------------------------------------


def _stop(proc: subprocess.Popen) -> None:
    """End the process we started and its children (its own process group), by its id."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def tcp_scheduler(tmp_path_factory):
    """``dask scheduler`` on 127.0.0.1 (a free port) with one ``dask worker`` (one process, one
    thread), both killed in the finaliser however the tests end."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    loopback = ["--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
    procs = []
    log = open(folder / "log.txt", "wb")

    def start(*args: str) -> None:
        procs.append(subprocess.Popen([dask, *args, *loopback], stdout=log, stderr=log, cwd=folder,
                                      start_new_session=True, env=subprocess_env()))

    try:
        start("scheduler", "--port", "0", "--scheduler-file", str(info), "--idle-timeout", "300s")
        deadline = time.monotonic() + 60
        while not (info.exists() and info.stat().st_size) and time.monotonic() < deadline:
            assert procs[0].poll() is None, (folder / "log.txt").read_text()
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        start("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
              "--local-directory", str(folder), "--death-timeout", "60")
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


@pytest.mark.parametrize("family", ["categorical", "gaussian"])
def test_tcp_scheduler_fit_agrees_with_local(tmp_path, tcp_scheduler, family):
    path = make_csv(tmp_path / "d.csv", family)
    local = mlefit.fit(path, family, weights="w")
    proc = subprocess.run(
        [MLEFIT, "fit", str(path), "--family", family, "--weights", "w", "--engine", "dask",
         "--scheduler", tcp_scheduler, "--chunk-rows", "100", "--format", "json"],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [p["name"] for p in doc["parameters"]] == list(local.names)
    assert _rel([p["estimate"] for p in doc["parameters"]], local.params) < RTOL
    assert _rel([p["std_error"] for p in doc["parameters"]], local.se) < RTOL
    assert _rel(doc["nll"], local.nll) < RTOL


def test_local_scheduler_is_a_cluster_in_this_process(tmp_path, monkeypatch):
    """``--scheduler local``: a LocalCluster of one worker with a thread per usable core in this
    process (no port opened), closed afterwards."""
    from mlefit import parallel
    from mlefit.engines import cluster as dask_engine

    clusters = []
    original = dask_engine._client

    def spy(scheduler):
        client, cluster = original(scheduler)
        clusters.append((cluster, set(client.run(os.getpid).values()), client.nthreads()))
        return client, cluster

    monkeypatch.setattr(dask_engine, "_client", spy)
    path = make_csv(tmp_path / "d.csv", "bernoulli")
    local = mlefit.fit(path, "bernoulli")
    remote = mlefit.fit(path, "bernoulli", engine="dask", scheduler="local", chunk_rows=100)
    assert _rel(remote.params, local.params) < RTOL and _rel(remote.se, local.se) < RTOL
    (cluster, pids, threads), = clusters
    assert pids == {os.getpid()} and list(threads.values()) == [parallel.n_threads()]
    assert cluster.scheduler_address.startswith("inproc://")
    assert cluster.status.name == "closed"


def test_dask_reads_the_separator_and_refuses_duplicate_names(tmp_path, client):
    """The Dask reader settles the header as every reader does (mlefit.csvformat)."""
    from mlefit.errors import DataError

    path = make_csv(tmp_path / "d.csv", "bernoulli")
    local = mlefit.fit(path, "bernoulli")
    semi = tmp_path / "d.txt"
    semi.write_text(path.read_text().replace(",", ";"))
    for sep, detected in ((None, True), (";", False)):
        remote = mlefit.fit(semi, "bernoulli", engine="dask", client=client, chunk_rows=100, sep=sep)
        assert remote.names == local.names and _rel(remote.params, local.params) < RTOL
        assert (remote.separator, remote.separator_detected) == (";", detected)
    lines = path.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(["x1,x2,g,x1,y", *lines[1:]]) + "\n")
    with pytest.raises(DataError) as err:
        mlefit.fit(dup, "bernoulli", engine="dask", client=client, chunk_rows=100)
    assert str(err.value) == f"column 'x1' appears twice in the header of '{dup}' (columns 1 and 4); rename one."


def test_dask_reports_partitions_read_then_iterations(tmp_path, client):
    from mlefit import progress

    path = make_csv(tmp_path / "d.csv", "gaussian")
    reads, iterations = [], []

    class Recorder:
        def read(self, done, total, what):
            reads.append((done, total))

        def iteration(self, iteration, nll):
            iterations.append((iteration, nll))

    with progress.reporting(Recorder()):
        result = mlefit.fit(path, "gaussian", engine="dask", client=client, chunk_rows=100)
    size = path.stat().st_size
    assert len(reads) >= 5  # one per partition of about 100 rows
    assert [d for d, _ in reads] == sorted(d for d, _ in reads) and reads[-1] == (size, size)
    assert iterations == [(r.iteration, r.nll) for r in result.trace]
