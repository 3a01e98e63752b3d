"""The ``mlefit`` command line: a thin Typer layer over the Python API.

Each command parses its options, calls one public function, renders the result and maps
:class:`~mlefit.errors.MlefitError` to its exit code. Heavy modules (numpy's users scipy and
pandas, rich) load inside the commands, so ``mlefit --help`` answers at once.
"""

from __future__ import annotations

import enum
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from .errors import EXIT_NOT_CONVERGED, MlefitError, UsageError
from .families import FAMILY_NAMES

FamilyName = enum.Enum("FamilyName", {name: name for name in FAMILY_NAMES}, type=str)


class Method(str, enum.Enum):
    newton = "newton"
    lbfgs = "lbfgs"
    gd = "gd"


class Gradient(str, enum.Enum):
    analytic = "analytic"
    numeric = "numeric"


class Cov(str, enum.Enum):
    model = "model"
    robust = "robust"


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


app = typer.Typer(
    name="mlefit",
    help="Fit statistical models by maximum likelihood: bernoulli, categorical, gaussian.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# -- shared options (defined once) ---------------------------------------------------------------
DataArg = Annotated[str, typer.Argument(help="CSV file, or - for standard input.", metavar="DATA")]
FamilyOpt = Annotated[
    FamilyName,
    typer.Option(
        "--family", "-f", metavar="FAMILY", case_sensitive=False,
        help=f"Model family: {', '.join(FAMILY_NAMES)}.",
    ),
]
TargetOpt = Annotated[
    Optional[str],
    typer.Option("--target", "-y", help="Target column.", show_default="'y' if present, else the last column"),
]
FeaturesOpt = Annotated[
    Optional[str],
    typer.Option("--features", "-x", help="Comma-separated feature columns.", show_default="every other column"),
]
InterceptOpt = Annotated[bool, typer.Option("--intercept/--no-intercept", help="Add an intercept column.")]
FormulaOpt = Annotated[
    Optional[str],
    typer.Option(
        "--formula", metavar="FORMULA",
        help="Build the design from a formula, e.g. 'y ~ x1 + C(region) + np.log(income)' (needs formulaic).",
    ),
]
WeightsOpt = Annotated[
    Optional[str], typer.Option("--weights", metavar="COLUMN", help="Column of frequency weights.")
]
DropnaOpt = Annotated[bool, typer.Option("--dropna", help="Drop rows with missing values instead of failing.")]
L2Opt = Annotated[
    Optional[float],
    typer.Option(
        "--l2", metavar="LAMBDA",
        help="MAP fit: minimise NLL + (LAMBDA/2)||w||^2 (intercepts not penalised).",
    ),
]
CovOpt = Annotated[
    Cov, typer.Option("--cov", help="Standard errors: model-based (inverse Hessian) or robust sandwich (HC0).")
]
MethodOpt = Annotated[Method, typer.Option("--method", "-m", help="Optimiser.")]
GradOpt = Annotated[
    Gradient, typer.Option("--grad", help="Analytic derivatives, or central finite differences of the NLL.")
]
TolOpt = Annotated[
    Optional[float],
    typer.Option(
        help="Stop when the Newton decrement (distance to the optimum in standard errors) is below this.",
        show_default="1e-8 newton, 1e-6 lbfgs, gd or numeric",
    ),
]
MaxIterOpt = Annotated[
    Optional[int],
    typer.Option("--max-iter", help="Iteration limit.", show_default="100 newton, 2000 lbfgs, 20000 gd"),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output: tables, one JSON document, or CSV estimates.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show every row of the convergence table.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the estimates.")]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"mlefit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Fit statistical models by maximum likelihood: bernoulli, categorical, gaussian."""


@contextmanager
def user_errors() -> Iterator[None]:
    """The one boundary: a MlefitError becomes ``Error: ...`` on stderr and its exit code."""
    try:
        yield
    except MlefitError as exc:
        _stderr(f"Error: {exc}")
        raise typer.Exit(exc.exit_code) from None


def _stderr(message: str) -> None:
    typer.echo(message, err=True)


def _same_file(a: Path, b: str) -> bool:
    return b != "-" and a.resolve() == Path(b).resolve()


@app.command()
def fit(
    data: DataArg,
    family: FamilyOpt,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    intercept: InterceptOpt = True,
    formula: FormulaOpt = None,
    weights: WeightsOpt = None,
    dropna: DropnaOpt = False,
    l2: L2Opt = None,
    cov: CovOpt = Cov.model,
    method: MethodOpt = Method.newton,
    grad: GradOpt = Gradient.analytic,
    tol: TolOpt = None,
    max_iter: MaxIterOpt = None,
    format: FormatOpt = Format.table,
    trace_out: Annotated[
        Optional[Path], typer.Option("--trace-out", help="Write every iteration to this CSV file.", dir_okay=False)
    ] = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit a model to a CSV and print estimates, fit statistics and the convergence table.

    Exit codes: 0 converged; 2 usage or input error; 3 not converged (results still printed);
    4 the classes are separated (the MLE does not exist; try --l2).
    """
    from . import render
    from .errors import ConvergenceWarning
    from .fit import fit as fit_model

    with user_errors():
        if trace_out is not None and _same_file(trace_out, data):
            raise UsageError(f"--trace-out '{trace_out}' is the input file; refusing to overwrite it.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit_model(
                data, family.value, target=target, features=features, intercept=intercept,
                formula=formula, weights=weights, dropna=dropna, l2=l2, cov=cov.value,
                method=method.value, gradient=grad.value, tol=tol, max_iter=max_iter,
            )
        if trace_out is not None:
            try:
                trace_out.write_text(render.trace_csv(result))
            except OSError as exc:
                raise UsageError(f"cannot write --trace-out '{trace_out}': {exc.strerror}.") from None
    if format is Format.json:
        sys.stdout.write(render.fit_json(result))
    elif format is Format.csv:
        sys.stdout.write(render.fit_csv(result))
    elif render.use_rich(sys.stdout):
        render.print_fit_rich(result, verbose=verbose, quiet=quiet)
    else:
        sys.stdout.write(render.fit_text(result, verbose=verbose, quiet=quiet))
    sys.stdout.flush()
    if not result.converged:
        _stderr(f"Warning: the fit did not converge: {result.message}")
        raise typer.Exit(EXIT_NOT_CONVERGED)
