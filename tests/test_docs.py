"""The manual is true: README.md and every docs/ page.

* Every ```console block is run, page by page, and its output compared (tests/docs_examples.py
  says how, and rewrites a page's outputs when they change on purpose).
* Every ```pycon block is a doctest, run in the same kind of working folder.
* Every relative link points to a file that exists, and an anchor to a heading of that file.
* The JSON layouts the manual documents list real keys; the exit codes agree with mlefit.errors.
"""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import pytest

import mlefit.errors
from docs_examples import (
    DOCS, README, ROOT, differences, examples, make_workdir, normalise, pages, run, run_page, updated,
)

PAGES = pages()
WITH_EXAMPLES = [p for p in PAGES if examples(p.read_text())]
COMMANDS = ("fit", "simulate", "recover", "predict", "lrtest", "check-grad", "families")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)\)")
PYCON = re.compile(r"^```pycon\n(.*?)^```", flags=re.S | re.M)


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", WITH_EXAMPLES, ids=name)
def test_console_examples_print_what_the_page_shows(page, tmp_path):
    results = run_page(page, make_workdir(tmp_path))
    report = differences(page, results)
    assert not report, (
        f"{name(page)}: the real output differs from the page.\n{report}\n\nIf the change is meant, "
        f"rewrite the page's outputs with: .venv/bin/python tests/docs_examples.py --update {name(page)}"
    )


def test_examples_leave_the_repository_alone(tmp_path):
    """A page's files (models, plots, simulated CSVs) are written in its own working folder."""
    folder = make_workdir(tmp_path)
    assert run("mlefit simulate -f bernoulli --coef 1 --n 3 --seed 0 -o sim.csv && ls sim.csv", folder) == "sim.csv\n"
    assert (folder / "sample_data" / "admissions.csv").is_file() and not (ROOT / "sim.csv").exists()


def test_examples_parser_reads_commands_continuations_and_outputs():
    page = "text\n```console\n$ echo a \\\n> b\na b\n$ true\n```\n```sh\n$ not an example\n```\n"
    found = examples(page)
    assert [(e.command, e.expected, e.line) for e in found] == [("echo a \\\nb", "a b", 3), ("true", "", 6)]
    assert normalise("        3  1.5  2e-3  0.1   0.0042  \n") == "        3  1.5  2e-3  0.1   <seconds>"


def test_update_rewrites_only_outputs_that_changed():
    page = "# t\n```console\n$ a \\\n> b\nold\n$ c\n        1  2.5  3  4  0.0010\n```\nprose\n"
    a, c = examples(page)
    same = updated(page, [(a, "old\n"), (c, "        1  2.5  3  4  0.0099\n")])
    assert same == page  # only the seconds column differs: kept as it is
    new = updated(page, [(a, "new\nlines\n"), (c, "        1  2.5  3  4  0.0099\n")])
    assert new == page.replace("old\n", "new\nlines\n")
    assert [(e.command, e.expected) for e in examples(new)] == [("a \\\nb", "new\nlines"), (c.command, c.expected)]


@pytest.mark.parametrize("page", [p for p in PAGES if PYCON.search(p.read_text())], ids=name)
def test_python_examples_are_doctests(page, tmp_path, monkeypatch):
    monkeypatch.chdir(make_workdir(tmp_path))
    text = page.read_text()
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    globs: dict = {}
    for match in PYCON.finditer(text):
        line = text.count("\n", 0, match.start(1))
        test = parser.get_doctest(match.group(1), globs, name(page), name(page), line)
        runner.run(test, out=report.append, clear_globs=False)
        globs = test.globs  # a DocTest works on a copy: the next block goes on from this one's names
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0


# -- the front page and the table of contents ----------------------------------------------------


def test_readme_is_a_front_page_with_an_example_of_every_command():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    commands = [e.command for e in examples(text)]
    for command in COMMANDS:
        assert any(re.search(rf"(^|[|;&(]\s*)mlefit {command}\b", c, flags=re.M) for c in commands), command


def test_every_docs_page_is_in_the_table_of_contents():
    index = (DOCS / "index.md").read_text()
    linked = {Path(t.split("#")[0]).name for t in LINK.findall(FENCE.sub("", index))}
    assert {p.name for p in DOCS.glob("*.md")} - {"index.md"} <= linked
    assert "docs/index.md" in LINK.findall(README.read_text())


# -- links -------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", page.read_text()), flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_anchor_slugs_follow_github():
    assert slug("Files larger than memory: `--stream` and `--engine dask`") == (
        "files-larger-than-memory---stream-and---engine-dask"
    )
    assert slug("Exit codes") == "exit-codes"


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_relative_links_point_to_existing_files_and_headings(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {name(file)}")
    assert not broken, "\n".join(broken)


# -- documented layouts and exit codes ---------------------------------------------------------------


def documented(page: str, marker: str) -> dict:
    text = (DOCS / page).read_text()
    return json.loads(re.search(rf"<!-- {marker} -->\n```json\n(.*?)```", text, flags=re.S).group(1))


def test_json_layout_lists_real_keys():
    """Every key docs/json-and-models.md documents for `fit --format json` is in the real output."""
    layout = documented("json-and-models.md", "json-layout")
    real = json.loads(run("mlefit fit sample_data/commute.csv --family categorical --format json", ROOT))
    assert set(layout) <= set(real)
    assert set(layout["parameters"][0]) == set(real["parameters"][0])
    assert set(layout["trace"][0]) == set(real["trace"][0])
    assert set(layout["design"]) <= set(real["design"])


def test_model_file_layout_lists_real_keys(tmp_path):
    layout = documented("json-and-models.md", "model-layout")
    run("mlefit fit sample_data/admissions.csv -f bernoulli -y admitted --quiet --save model.json", make_workdir(tmp_path))
    real = json.loads((tmp_path / "model.json").read_text())
    assert set(layout) == set(real)
    assert set(layout["parameters"][0]) == set(real["parameters"][0])
    assert set(layout["fit"]) == set(real["fit"])
    assert set(layout["design"]) == set(real["design"])
    assert layout["features"] == real["features"] and layout["levels"] == real["levels"]


def test_recovery_json_layout_lists_real_keys():
    layout = documented("simulate-and-recover.md", "recovery-layout")
    real = json.loads(run("mlefit recover -f bernoulli --coef 1 --reps 2 --n 50 --seed 0 --format json", ROOT))
    assert set(layout) == set(real)
    assert set(layout["parameters"][0]) == set(real["parameters"][0])
    assert set(layout["replications"][0]) == set(real["replications"][0])


def test_exit_codes_agree_with_mlefit_errors():
    table = re.search(r"^## Exit codes\n(.*?)(?=^#|\Z)", README.read_text(), flags=re.S | re.M).group(1)
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    constants = {v for k, v in vars(mlefit.errors).items() if k.startswith("EXIT_")}
    in_docstring = {int(c) for c in re.findall(r"^(\d+) {2,}", mlefit.errors.__doc__, flags=re.M)}
    assert constants <= codes
    assert in_docstring == codes - {141}
