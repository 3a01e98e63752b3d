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
    assert not {"scipy", "pandas", "matplotlib", "sympy"} & loaded


def test_text_models_load_sympy_only_to_compile():
    assert not {"sympy", "scipy", "pandas"} & modules_after("import mlefit.textmodel")
    compiled = modules_after(
        "from mlefit.textmodel import compile_model\n"
        "compile_model('y ~ poisson(rate = exp(a + b*x))', columns=['y', 'x'])"
    )
    assert "sympy" in compiled and "pandas" not in compiled


def test_cli_module_loads_neither_pandas_nor_scipy():
    loaded = modules_after("import mlefit.cli")
    assert "typer" in loaded
    assert not {"scipy", "pandas", "rich"} & loaded


COMMANDS = ("fit", "simulate", "recover", "predict", "check-grad", "dist", "lrtest", "families")


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
    assert "pydantic" not in loaded, args  # typer 0.29's adapters (pinned out) doubled a help page's time


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
    "linalg": {"numpy", "scipy", "parallel"},
    "families": {"numpy", "scipy", "errors", "families", "linalg"},
    "data": {"numpy", "pandas", "errors", "families", "formulaic", "formula_check", "linalg", "parallel", "csvformat",
             "readers"},
    # what a formula may say: the standard library's ast only, never formulaic
    "formula_check": {"errors"},
    "checks": {"numpy", "scipy", "errors", "parallel"},
    "parallel": {"threadpoolctl", "errors"},
    "optimize": {"numpy", "scipy", "results", "errors", "linalg", "progress"},
    "inference": {"numpy", "scipy", "errors", "linalg"},
    "render": {"rich", "numpy", "results", "families"},
    "model": {"numpy", "pandas", "data", "families", "results", "errors", "mlefit", "textmodel", "readers"},
    "checkgrad": {"numpy", "pandas", "numdiff", "data", "engines", "optimize", "families", "results", "errors",
                  "textmodel", "readers"},
    "engines": {"numpy", "scipy", "pandas", "errors", "families", "engines", "checks", "data", "parallel", "dask",
                "distributed", "csvformat", "progress", "readers"},
    # how rows arrive: Parquet through pyarrow (the optional extra `parquet`), formulas over chunks
    "readers": {"numpy", "pandas", "pyarrow", "formulaic", "errors", "families", "data", "csvformat", "progress",
                "linalg", "readers", "formula_check"},
    "objective": {"numpy", "numdiff"},
    "plot": {"numpy", "matplotlib", "results", "errors"},
    "profile": {"numpy", "errors", "inference", "optimize"},
    "fingerprint": {"numpy"},
    "lrtest": {"errors", "inference", "model", "results"},
    # a tool over the public API: the column (data), the fits (fit), their families and pictures
    "dist": {"numpy", "scipy", "pandas", "errors", "results", "families", "fit", "data", "inference", "parallel", "plot", "readers"},
    # likelihoods written as text: sympy (the optional extra `model`) loads on the first compile;
    # family.py puts a compiled text in the Family protocol
    "textmodel": {"numpy", "scipy", "sympy", "errors", "numdiff", "families"},
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


# -- the architecture: families own their likelihoods; modules keep their private names -------------

MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(path: Path, level: int, module: str | None) -> str:
    """The absolute name of a relative import in ``path``."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + (module.split(".") if module else []))


def mlefit_imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every import of an mlefit module in ``path`` (lazy ones included,
    those only for type checkers not)."""
    out = []
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n) for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            target = resolve(path, node.level, node.module) if node.level else (node.module or "")
            if target == "mlefit" or target.startswith("mlefit."):
                out.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("mlefit")]
    return out


def is_module(name: str) -> bool:
    rel = name.split(".")[1:]
    return (PACKAGE.joinpath(*rel).with_suffix(".py")).exists() or (PACKAGE.joinpath(*rel) / "__init__.py").exists()


def test_no_module_imports_another_modules_private_names():
    for path in MODULES:
        for target, names in mlefit_imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__") and not is_module(f"{target}.{n}")]
            assert not private, f"{module_name(path)} imports {private} from {target}"
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            # module._name on a module imported by name (from . import data; data._x)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name):
                    imported = {n for t, names in mlefit_imports(path) for n in names if is_module(f"{t}.{n}")}
                    assert node.value.id not in imported, f"{module_name(path)} uses {node.value.id}.{node.attr}"


def test_the_module_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        if path == PACKAGE / "__init__.py":
            continue  # the package's public API imports everything
        edges = set()
        for target, names in mlefit_imports(path):
            for name in names or [""]:
                full = f"{target}.{name}" if name and is_module(f"{target}.{name}") else target
                if full != "mlefit":
                    edges.add(full)
        graph[module_name(path)] = edges - {module_name(path)}
    # a package's __init__ is a node of its own; its modules are not implied by it
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"import cycle: {' -> '.join(trail + [node])}"
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def test_nothing_outside_the_families_names_a_family():
    """A family is one file: what is particular to a likelihood lives in mlefit/families/, so no
    other module uses a family's name as a value."""
    import re

    from mlefit.families import FAMILY_NAMES

    pattern = re.compile(r"(?<![A-Za-z])[\"'](%s)[\"'](?![A-Za-z])" % "|".join(FAMILY_NAMES))
    for path in MODULES:
        if (PACKAGE / "families") in path.parents:
            continue
        if path == PACKAGE / "textmodel" / "distributions.py":
            continue  # the grammar's distributions (poisson(rate = ...)): the user's words, not families
        tree = ast.parse(path.read_text())
        exempt = {  # the design description's one-hot column type (see mlefit.data.ONE_HOT_TYPE)
            id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["ONE_HOT_TYPE"]
        }
        docstrings = exempt | {
            id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not pattern.search(repr(node.value)) and node.value not in FAMILY_NAMES, (
                    f"{module_name(path)} names a family: {node.value!r}"
                )


def _design_matmuls(source: str) -> list[int]:
    """Lines of ``@`` products with the design (an operand named ``X`` or ``X.T``) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            sides = [s.value if isinstance(s, ast.Attribute) and s.attr == "T" else s for s in (node.left, node.right)]
            if any(isinstance(side, ast.Name) and side.id == "X" for side in sides):
                found.append(node.lineno)
    return found


def test_the_families_products_with_the_design_release_the_interpreter_lock():
    """The engines evaluate blocks on several threads, and numpy's ``@`` holds the interpreter lock
    through its BLAS call (the threads then take turns), where ``np.dot`` releases it: every
    family's product with the design is written ``np.dot`` (see ``mlefit.families.base``)."""
    offenders = [
        f"{path.name}:{line}" for path in sorted((PACKAGE / "families").glob("*.py"))
        for line in _design_matmuls(path.read_text())
    ]
    assert offenders == []
    assert _design_matmuls("eta = X @ b\ng = X.T @ r\nc = b @ b\n") == [1, 2]  # the check sees them


def test_a_streamed_numeric_csv_fit_does_not_import_pandas(tmp_path):
    """pyarrow parses a plainly numeric CSV and its columns go straight to the cache: pandas (0.3 s
    to import) is not loaded for a numeric target."""
    pytest.importorskip("pyarrow")
    rng = __import__("numpy").random.default_rng(3)
    rows = ["y,a,b"] + [f"{int(rng.random() < 0.4)},{rng.normal():.6f},{rng.normal():.6f}" for _ in range(3000)]
    path = tmp_path / "numeric.csv"
    path.write_text("\n".join(rows) + "\n")
    loaded = modules_after(
        f"import mlefit\nr = mlefit.fit({str(path)!r}, family='bernoulli', stream=True, chunk_rows=1000)\n"
        "assert r.converged and r.n_obs == 3000"
    )
    assert "pyarrow" in loaded and "pandas" not in loaded


def test_a_dask_numeric_csv_fit_imports_neither_pandas_nor_dask_dataframe(tmp_path):
    """On Dask, a plainly numeric CSV's partitions are byte ranges parsed by pyarrow on the workers:
    neither dask.dataframe nor pandas (0.7 s to import together) is loaded."""
    pytest.importorskip("pyarrow")
    pytest.importorskip("distributed")
    rng = __import__("numpy").random.default_rng(4)
    rows = ["y,a,b"] + [f"{int(rng.random() < 0.4)},{rng.normal():.6f},{rng.normal():.6f}" for _ in range(3000)]
    path = tmp_path / "numeric.csv"
    path.write_text("\n".join(rows) + "\n")
    out = subprocess.run(
        [sys.executable, "-c",
         f"import sys, mlefit\nr = mlefit.fit({str(path)!r}, family='bernoulli', engine='dask', chunk_rows=1000)\n"
         "assert r.converged and r.n_obs == 3000\nprint(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()
    assert "pyarrow" in out and "distributed" in out
    assert "pandas" not in out and "dask.dataframe" not in out
