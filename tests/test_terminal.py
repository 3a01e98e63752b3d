"""Colour and rich tables appear only on a terminal, and never with NO_COLOR."""

from __future__ import annotations

import io
import os
import pty
import subprocess

import pytest

from mlefit import render

from conftest import MLEFIT, SAMPLES

ADMISSIONS = str(SAMPLES / "admissions.csv")
ESC = "\x1b["


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_rich_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert render.use_rich(FakeTerminal()) is True
    assert render.use_rich(io.StringIO()) is False  # a pipe or a file
    monkeypatch.setenv("NO_COLOR", "1")
    assert render.use_rich(FakeTerminal()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert render.use_rich(FakeTerminal()) is False


def run_on_terminal(args: list[str], no_color: bool) -> str:
    """Run mlefit with its standard output on a pseudo-terminal; return what it wrote."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([MLEFIT, *args], stdout=follower, stderr=subprocess.PIPE, env=env)
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
        proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("command", [["fit", ADMISSIONS, "-f", "bernoulli"]])
def test_terminal_gets_colour_unless_no_color(command):
    coloured = run_on_terminal(command, no_color=False)
    assert ESC in coloured  # rich tables with bold titles
    plain = run_on_terminal(command, no_color=True)
    assert ESC not in plain
    assert "Estimates" in plain and "Convergence" in plain


def test_pipe_gets_no_colour_even_without_no_color():
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    for args in (["fit", ADMISSIONS, "-f", "bernoulli"], ["check-grad", ADMISSIONS, "-f", "bernoulli"],
                 ["families"]):
        proc = subprocess.run([MLEFIT, *args], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert ESC not in proc.stdout and ESC not in proc.stderr, args
