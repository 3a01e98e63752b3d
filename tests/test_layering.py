"""Who may import what: the API without the CLI's libraries, the CLI without scipy and pandas."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlefit"


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return {m.split(".")[0] for m in out.split()}


def test_import_mlefit_loads_neither_typer_nor_rich_nor_heavy_libraries():
    loaded = modules_after("import mlefit")
    assert not {"typer", "rich", "click"} & loaded
    assert not {"scipy", "pandas", "matplotlib"} & loaded


def test_cli_module_loads_neither_pandas_nor_scipy():
    loaded = modules_after("import mlefit.cli")
    assert "typer" in loaded
    assert not {"scipy", "pandas", "rich"} & loaded


def test_help_runs_without_scipy_or_pandas():
    code = (
        "import sys\nfrom mlefit.cli import app\n"
        "try:\n    app(['--help'], prog_name='mlefit')\nexcept SystemExit:\n    pass\n"
        "sys.stdout = sys.__stdout__"
    )
    loaded = modules_after(code)
    assert not {"scipy", "pandas"} & loaded


ALLOWED = {
    "errors": set(),
    "linalg": {"numpy", "scipy"},
    "families": {"numpy", "scipy", "errors", "families", "linalg"},
    "data": {"numpy", "pandas", "errors", "families", "formulaic", "linalg", "parallel"},
    "checks": {"numpy", "scipy", "errors", "parallel"},
    "parallel": {"threadpoolctl", "errors"},
    "optimize": {"numpy", "scipy", "results", "errors", "linalg"},
    "inference": {"numpy", "scipy", "errors", "linalg"},
    "render": {"rich", "numpy", "results", "families"},
    "model": {"numpy", "pandas", "data", "families", "results", "errors", "mlefit"},
    "checkgrad": {"numpy", "pandas", "numdiff", "data", "objective", "optimize", "families", "results", "errors"},
    "plot": {"numpy", "matplotlib", "results", "errors"},
    "profile": {"numpy", "errors", "inference", "optimize"},
    "fingerprint": {"numpy"},
    "lrtest": {"errors", "inference", "model", "results"},
}


def imports_of(path: Path) -> set[str]:
    """Top-level libraries and mlefit modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    inside = path.parent.relative_to(PACKAGE).parts  # () for mlefit/*.py, ("families",) below
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = list(inside[: len(inside) - (node.level - 1)])
            if node.module:
                names.add((base + node.module.split("."))[0])
            elif base:
                names.add(base[0])
            else:  # `from .. import linalg`: the imported names are modules (or mlefit's own names)
                names |= {
                    a.name if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir() else "mlefit"
                    for a in node.names
                }
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


STDLIB = set(sys.stdlib_module_names) | {"__future__"}


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_module_imports_follow_the_layering(module):
    paths = sorted((PACKAGE / module).glob("*.py")) if (PACKAGE / module).is_dir() else [PACKAGE / f"{module}.py"]
    for path in paths:
        extra = imports_of(path) - STDLIB - ALLOWED[module] - {module}
        assert not extra, f"{path.name} imports {extra}"


def test_nothing_but_cli_imports_typer():
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("cli.py", "__main__.py"):
            assert "typer" not in imports_of(path), path
