"""Progress of long work (mlefit.progress): what the readers and the optimiser report, and the
command line drawing it on standard error only when that is a terminal, never with NO_COLOR or
--quiet, with standard output left clean."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import threading

import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import MLEFIT
from mlefit import progress, render
from mlefit.fit import wants_warm_start
from test_stream import make_csv

ESC = "\x1b["


class Recorder:
    """A reporter that keeps what it is told."""

    def __init__(self):
        self.reads: list[tuple[int, int | None, str]] = []
        self.iterations: list[tuple[int, float]] = []

    def read(self, done, total, what):
        self.reads.append((done, total, what))

    def iteration(self, iteration, nll):
        self.iterations.append((iteration, nll))


def trace_of(result) -> list[tuple[int, float]]:
    return [(r.iteration, r.nll) for r in result.trace]


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory):
    """120,000 rows: enough for the warm start from a subsample (whose iterations are not the fit's)."""
    rng = np.random.default_rng(11)
    n = 120_000
    X = rng.standard_normal((n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + X @ [0.8, -0.4, 0.3])))).astype(int)
    path = tmp_path_factory.mktemp("progress") / "large.csv"
    pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "y": y}).to_csv(path, index=False)
    assert wants_warm_start(n, 4)
    return path


def test_without_a_reporter_nothing_is_called():
    assert progress.read(10, 100) is None and progress.iteration(3, 1.5) is None


def test_a_reporter_belongs_to_its_context():
    seen = Recorder()
    with progress.reporting(seen):
        progress.iteration(0, 2.0)
        worker = threading.Thread(target=progress.iteration, args=(1, 1.0))  # another context
        worker.start()
        worker.join()
        with progress.muted():
            progress.read(5, 10)
    progress.iteration(2, 0.5)  # uninstalled
    assert seen.iterations == [(0, 2.0)] and seen.reads == []


def test_streamed_fit_reports_each_chunk_read_then_each_iteration(large_csv):
    seen = Recorder()
    with progress.reporting(seen):
        result = mlefit.fit(large_csv, "bernoulli", stream=True, chunk_rows=25_000)
    size = large_csv.stat().st_size
    assert len(seen.reads) == 5  # one call per chunk of 25,000 rows
    done = [d for d, _, _ in seen.reads]
    assert done == sorted(done) and done[-1] == size and done[0] > 0
    assert {(total, what) for _, total, what in seen.reads} == {(size, "reading")}
    # the iterations are exactly the fit's trace: the warm start's sub-fit is not reported
    assert seen.iterations == trace_of(result) and len(seen.iterations) >= 2


def test_two_pass_stream_reports_both_passes(tmp_path):
    path = make_csv(tmp_path / "t.csv", "categorical")  # a text feature: two passes
    frame = pd.read_csv(path)
    seen = Recorder()
    with progress.reporting(seen):
        result = mlefit.fit(path, "categorical", stream=True, chunk_rows=100)
    size = path.stat().st_size
    passes = [what for _, _, what in seen.reads]
    chunks = -(-len(frame) // 100)
    assert passes == ["reading (pass 1 of 2)"] * chunks + ["reading (pass 2 of 2)"] * chunks
    assert seen.reads[chunks - 1][0] == size and seen.reads[-1][0] == size
    assert seen.iterations == trace_of(result)


def test_in_memory_fit_reports_iterations_only(large_csv):
    seen = Recorder()
    with progress.reporting(seen):
        result = mlefit.fit(large_csv, "bernoulli")
    assert seen.reads == []  # so the terminal display, which starts with a read, stays off
    assert seen.iterations == trace_of(result)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_fit_progress_draws_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    with render.fit_progress(io.StringIO()) as reporter:
        assert reporter is None  # a pipe or a file
    with render.fit_progress(FakeTerminal(), enabled=False) as reporter:
        assert reporter is None  # --quiet
    monkeypatch.setenv("NO_COLOR", "1")
    with render.fit_progress(FakeTerminal()) as reporter:
        assert reporter is None
    monkeypatch.delenv("NO_COLOR")
    screen = FakeTerminal()
    with render.fit_progress(screen) as reporter:
        reporter.iteration(0, 9.0)  # before any read: an in-memory fit, nothing drawn
        assert screen.getvalue() == ""
        reporter.read(1_500_000, 3_000_000, "reading")
        reporter.read(3_000_000, 3_000_000, "reading")
        reporter.iteration(2, 123.456789)
    drawn = screen.getvalue()
    assert "reading" in drawn and "3.0 of 3.0 MB" in drawn
    assert "iteration 2, NLL 123.456789" in drawn


def run_with_stderr_on_terminal(args: list[str], *, no_color: bool = False) -> tuple[str, str, int]:
    """Run mlefit with standard error on a pseudo-terminal and standard output on a pipe:
    ``(stdout, what the terminal got, exit code)``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([MLEFIT, *map(str, args)], stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done writing
                break
            if not data:
                break
            chunks.append(data)
        stdout, _ = proc.communicate(timeout=300)
    finally:
        os.close(leader)
    return stdout.decode(), b"".join(chunks).decode(errors="replace"), proc.returncode


@pytest.mark.parametrize("output", [["--format", "json"], []], ids=["json", "table"])
def test_streamed_fit_shows_progress_on_a_terminal_and_keeps_stdout_clean(large_csv, output):
    args = ["fit", large_csv, "-f", "bernoulli", "--stream", "--chunk-rows", "20000", *output]
    stdout, terminal, code = run_with_stderr_on_terminal(args)
    assert code == 0, terminal
    assert "reading" in terminal and " MB" in terminal and "iteration" in terminal and "NLL" in terminal
    assert ESC not in stdout and "iteration 1," not in stdout and "reading" not in stdout
    if output:
        reference = mlefit.fit(large_csv, "bernoulli", stream=True, chunk_rows=20_000)
        doc = json.loads(stdout)
        np.testing.assert_allclose([p["estimate"] for p in doc["parameters"]], reference.params, rtol=1e-12)


@pytest.mark.parametrize(
    "extra, no_color",
    [([], True), (["--quiet"], False)],
    ids=["NO_COLOR", "quiet"],
)
def test_no_progress_with_no_color_or_quiet(large_csv, extra, no_color):
    args = ["fit", large_csv, "-f", "bernoulli", "--stream", "--chunk-rows", "20000", *extra]
    stdout, terminal, code = run_with_stderr_on_terminal(args, no_color=no_color)
    assert code == 0
    assert terminal == ""  # nothing at all on standard error
    assert "Estimates" in stdout or "intercept" in stdout


def test_no_progress_off_a_terminal_or_for_an_in_memory_fit(large_csv):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.run(
        [MLEFIT, "fit", large_csv, "-f", "bernoulli", "--stream", "--chunk-rows", "20000"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    stdout, terminal, code = run_with_stderr_on_terminal(["fit", large_csv, "-f", "bernoulli", "--format", "json"])
    assert code == 0 and terminal == ""
    assert json.loads(stdout)["converged"] is True
