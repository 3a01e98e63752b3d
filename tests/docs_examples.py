"""Run the console examples of the manual (README.md and docs/*.md), and rewrite their outputs.

Every ```console block of a page holds commands, each on a line starting with ``$ `` (a long
command may go on over lines starting with ``> ``, as a shell's second prompt shows it), each
followed by what it prints: its standard output, then its standard error (a page writes ``2>&1``
where their order matters, as a terminal would show it). A page's commands run in order with
bash, ``NO_COLOR=1`` and ``COLUMNS=100``, the running Python's ``bin`` folder first on ``PATH``
(so ``mlefit`` is the installed one), in a fresh temporary folder holding a copy of what the
examples read (:data:`COPIED`). Files an example writes stay there, so a later command of the
same page can read them, and never land in the repository. The seconds column of a convergence
table is the only thing not compared.

tests/test_docs.py checks every page. When an output changes on purpose, rerun a page's examples
and write their real outputs into it (the maintainer's tool; read the diff before committing)::

    .venv/bin/python tests/docs_examples.py docs/fit.md            # show what differs
    .venv/bin/python tests/docs_examples.py --update docs/fit.md   # rewrite the outputs in place
    .venv/bin/python tests/docs_examples.py --update               # every page
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: What the examples read, copied into each page's working folder (paths relative to the root).
COPIED = ("sample_data", "tests/data")
BLOCK = re.compile(r"^```console\n(.*?)^```", flags=re.S | re.M)
#: A row of a convergence table (a text model's first row is its compilation, ``compile``).
TIMING_ROW = re.compile(r"^(\s*(?:\d+|compile)\s+\S+\s+\S+\s+\S+\s+)\d+\.\d{4}$")
TIMEOUT = 300


def pages() -> list[Path]:
    """README.md, then every page of docs/ in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


@dataclass(frozen=True)
class Example:
    """One command of a console block and the output the page shows for it."""

    command: str
    expected: str
    line: int  # 1-based line of the command in the page


def examples(text: str) -> list[Example]:
    """The commands of the page's ```console blocks with their outputs, in order."""
    out = []
    for match in BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start(1)) + 1
        out += _block_examples(match.group(1), first_line)
    return out


def _block_examples(block: str, first_line: int) -> list[Example]:
    out: list[Example] = []
    command: list[str] | None = None
    output: list[str] = []
    line = 0

    def close() -> None:
        if command is not None:
            out.append(Example("\n".join(command), "\n".join(output), line))

    for i, text in enumerate(block.splitlines()):
        if text.startswith("$ "):
            close()
            command, output, line = [text[2:]], [], first_line + i
        elif text.startswith("> ") and command is not None and not output and command[-1].endswith("\\"):
            command.append(text[2:])
        elif command is None:
            raise ValueError(f"line {first_line + i}: a console block must start with a '$ ' command")
        else:
            output.append(text)
    close()
    return out


def normalise(text: str) -> str:
    """Trailing spaces and blank edges dropped; a convergence table's seconds column masked."""
    lines = [TIMING_ROW.sub(r"\1<seconds>", line.rstrip()) for line in text.strip("\n").splitlines()]
    return "\n".join(lines)


def make_workdir(folder: Path) -> Path:
    """Fill ``folder`` with copies of :data:`COPIED` and return it."""
    for name in COPIED:
        shutil.copytree(ROOT / name, folder / name)
    return folder


def environment() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100")
    env.pop("FORCE_COLOR", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run(command: str, cwd: Path) -> str:
    """What the command prints, standard output then standard error."""
    proc = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=environment(), capture_output=True, text=True, timeout=TIMEOUT
    )
    return proc.stdout + proc.stderr


def run_page(page: Path, cwd: Path) -> list[tuple[Example, str]]:
    """Run the page's examples in order in ``cwd``: (example, real output) pairs."""
    return [(ex, run(ex.command, cwd)) for ex in examples(page.read_text())]


def differences(page: Path, results: list[tuple[Example, str]]) -> str:
    """A report of the examples whose output differs from the page's, empty when all match."""
    name = page.relative_to(ROOT)
    parts = []
    for ex, real in results:
        if normalise(real) != normalise(ex.expected):
            diff = difflib.unified_diff(
                normalise(ex.expected).splitlines(), normalise(real).splitlines(),
                f"{name}:{ex.line} (the page)", "the real output", lineterm="",
            )
            parts.append(f"$ {ex.command}\n" + "\n".join(diff))
    return "\n\n".join(parts)


def updated(text: str, results: list[tuple[Example, str]]) -> str:
    """The page with each example's output replaced by its real one (an output that differs
    only in the seconds column is kept as it is)."""
    real = iter(results)

    def block(match: re.Match) -> str:
        lines = []
        first_line = text.count("\n", 0, match.start(1)) + 1
        for ex in _block_examples(match.group(1), first_line):
            example, output = next(real)
            assert example == ex
            keep = normalise(output) == normalise(ex.expected)
            command = ex.command.split("\n")
            lines += ["$ " + command[0], *("> " + c for c in command[1:])]
            shown = (ex.expected if keep else output).strip("\n")
            lines += [line.rstrip() for line in shown.splitlines()]
        return "```console\n" + "".join(line + "\n" for line in lines) + "```"

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to run (default: README.md and docs/*.md)")
    parser.add_argument("--update", action="store_true", help="write the real outputs into the pages")
    args = parser.parse_args(argv)
    status = 0
    for page in [p.resolve() for p in args.pages] or pages():
        with tempfile.TemporaryDirectory(prefix="mlefit-docs-") as tmp:
            results = run_page(page, make_workdir(Path(tmp)))
        report = differences(page, results)
        name = page.relative_to(ROOT)
        if args.update:
            text = page.read_text()
            new = updated(text, results)
            if new != text:
                page.write_text(new)
            print(f"{name}: {len(results)} examples, {'rewritten' if new != text else 'unchanged'}")
        elif report:
            print(report + "\n")
            status = 1
        else:
            print(f"{name}: {len(results)} examples, all match")
    return status


if __name__ == "__main__":
    sys.exit(main())
