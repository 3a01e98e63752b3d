"""The README's examples are real: every ```console block is run and its output compared.

A block holds one or more commands, each on a line starting with ``$ ``, followed by what the
command prints (standard output and standard error together, as a terminal shows them). The timing
column of convergence tables is the only thing not compared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMING_ROW = re.compile(r"^(\s*\d+\s+\S+\s+\S+\s+\S+\s+)\d+\.\d{4}$")


def console_blocks(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs from the ```console blocks, in order."""
    pairs = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    pairs.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            pairs.append((command, "\n".join(output)))
    return pairs


def normalise(text: str) -> str:
    lines = [TIMING_ROW.sub(r"\1<seconds>", line.rstrip()) for line in text.strip("\n").splitlines()]
    return "\n".join(lines)


def run(command: str) -> str:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.stdout + proc.stderr


EXAMPLES = console_blocks(README.read_text())


def test_readme_has_examples():
    commands = [c for c, _ in EXAMPLES]
    assert any(c.startswith("mlefit fit") for c in commands)
    assert "make demo" in README.read_text() and "make test" in README.read_text()


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_output_is_real(command, expected):
    assert normalise(run(command)) == normalise(expected)


def test_readme_json_layout_lists_real_keys():
    """Every key the README documents for `--format json` is in the real output."""
    text = README.read_text()
    layout = re.search(r"<!-- json-layout -->\n```json\n(.*?)```", text, flags=re.S).group(1)
    documented = json.loads(layout)
    real = json.loads(run("mlefit fit sample_data/commute.csv --family categorical --format json"))
    assert set(documented) <= set(real)
    assert set(documented["parameters"][0]) == set(real["parameters"][0])
    assert set(documented["trace"][0]) == set(real["trace"][0])
