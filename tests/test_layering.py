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


COMMANDS = ("fit", "simulate", "recover", "predict", "check-grad", "families")


def help_modules(*args: str) -> tuple[set[str], str]:
    """The libraries loaded by ``mlefit ARGS`` (a help page) in a fresh process, and its output."""
    code = (
        "import io, sys\nfrom mlefit.cli import app\nsys.stdout = out = io.StringIO()\n"
        f"try:\n    app({list(args)!r}, prog_name='mlefit')\nexcept SystemExit:\n    pass\n"
        "sys.stdout = sys.__stdout__\nprint(repr(out.getvalue()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nprint('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    page, _, modules = out.partition("\n")
    return {m.split(".")[0] for m in modules.split()}, ast.literal_eval(page)


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]], ids=" ".join)
def test_help_loads_neither_numpy_nor_pandas_nor_scipy(args):
    loaded, page = help_modules(*args)
    assert "Usage: mlefit" in page  # the help page was printed, not an error
    assert not {"numpy", "scipy", "pandas"} & loaded, args


def test_public_names_load_on_first_use():
    loaded = modules_after("import mlefit\nassert 'fit' in mlefit.__all__ and 'fit' in dir(mlefit)")
    assert "numpy" not in loaded
    loaded = modules_after("from mlefit import fit, RecoveryResult")
    assert "numpy" in loaded  # the function, not a stand-in


def test_public_functions_stay_functions_whatever_is_imported_first():
    # importing the submodule mlefit.fit (mlefit.recover does) must not hide the function mlefit.fit
    code = (
        "import mlefit.recover, mlefit.simulate, mlefit.fit\nimport mlefit\n"
        "assert all(callable(getattr(mlefit, n)) for n in mlefit.__all__ if n not in ('errors', '__version__')), "
        "[type(getattr(mlefit, n)) for n in mlefit.__all__]\n"
        "assert mlefit.fit.__module__ == 'mlefit.fit' and mlefit.simulate.__name__ == 'simulate'"
    )
    modules_after(code)


ALLOWED = {
    "errors": set(),
    "csvformat": {"errors"},
    "progress": set(),
    "linalg": {"numpy", "scipy"},
    "families": {"numpy", "scipy", "errors", "families", "linalg"},
    "data": {"numpy", "pandas", "errors", "families", "formulaic", "linalg", "parallel", "csvformat"},
    "checks": {"numpy", "scipy", "errors", "parallel"},
    "parallel": {"threadpoolctl", "errors"},
    "optimize": {"numpy", "scipy", "results", "errors", "linalg", "progress"},
    "inference": {"numpy", "scipy", "errors", "linalg"},
    "render": {"rich", "numpy", "results", "families"},
    "model": {"numpy", "pandas", "data", "families", "results", "errors", "mlefit"},
    "checkgrad": {"numpy", "pandas", "numdiff", "data", "objective", "optimize", "families", "results", "errors"},
    "plot": {"numpy", "matplotlib", "results", "errors"},
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
