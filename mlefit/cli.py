"""The ``mlefit`` command line: a thin Typer layer over the Python API.

Each command parses its options, calls one public function, renders the result and maps
:class:`~mlefit.errors.MlefitError` to its exit code. Heavy modules (numpy's users scipy and
pandas, rich) load inside the commands, so ``mlefit --help`` answers at once.

No ``from __future__ import annotations`` here: Typer reads every command's annotations when the
app starts, and annotations kept as strings cost an ``eval`` each (about 20 ms, a third of
Typer's work for ``mlefit --help``).
"""

import enum
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from .errors import EXIT_CHECK_FAILED, EXIT_NOT_CONVERGED, MlefitError, UsageError
from .families import DISTRIBUTION_NAMES, FAMILY_NAMES

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


class CI(str, enum.Enum):
    wald = "wald"
    profile = "profile"


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


class ReportFormat(str, enum.Enum):
    table = "table"
    json = "json"


class InputFormat(str, enum.Enum):
    csv = "csv"
    parquet = "parquet"


app = typer.Typer(
    name="mlefit",
    help="Fit statistical models by maximum likelihood.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# -- shared options (defined once) ---------------------------------------------------------------
DataArg = Annotated[
    str, typer.Argument(help="CSV file, Parquet file or folder of Parquet files, or - for standard input.", metavar="DATA")
]
InputFormatOpt = Annotated[
    Optional[InputFormat],
    typer.Option(
        "--input-format", help="How DATA is read (Parquet needs pyarrow: pip install 'mlefit[parquet]').",
        show_default="parquet for names ending in .parquet, .parq or .pq and for folders, else csv",
    ),
]
FamilyOpt = Annotated[
    FamilyName,
    typer.Option(
        "--family", "-f", metavar="FAMILY", case_sensitive=False,
        help=f"Model family: {', '.join(FAMILY_NAMES)}.",
    ),
]
MaybeFamilyOpt = Annotated[
    Optional[FamilyName],
    typer.Option(
        "--family", "-f", metavar="FAMILY", case_sensitive=False,
        help=f"Model family: {', '.join(FAMILY_NAMES)} (or a model written as text: --model).",
    ),
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model", metavar="TEXT",
        help="A likelihood written as text instead of a family: 'y ~ normal(mean = a + b*x, sd = exp(log_s))' "
        "(the grammar is below; docs/models.md).",
    ),
]
NllOpt = Annotated[
    Optional[str],
    typer.Option("--nll", metavar="EXPR", help="The per-row negative log-likelihood written out, instead of a family."),
]
StartOpt = Annotated[
    Optional[str],
    typer.Option("--start", metavar="A=V,...", help="Text models: the start, e.g. a=0.5,b=1 (0 for a parameter not named)."),
]
FixedOpt = Annotated[
    Optional[str],
    typer.Option("--fixed", metavar="A=V,...", help="Text models: hold these parameters at these values."),
]
#: The grammar of text models, for the help pages (kept here, not imported, so that --help loads no
#: numpy; a test checks it against the grammar's tables).
MODEL_HELP = """\b
Text models (--model, --nll; exact derivatives need sympy: pip install 'mlefit[model]'):
  --model "TARGET ~ DISTRIBUTION(argument = EXPR, ...)"  or  --nll "EXPR" (the per-row NLL)
  distributions: normal(mean, sd), bernoulli(prob), binomial(size, prob), poisson(rate),
    negbin(mean, alpha), gamma(shape, scale), weibull(shape, scale), exponential(rate),
    lognormal(meanlog, sdlog), beta(a, b), student_t(df, loc, scale)
  EXPR: numbers, column names, parameter names, + - * / ** and parentheses, and the functions
    exp, log, log1p, expm1, sqrt, sigmoid (expit), logit, softplus, lgamma, digamma
  A name that is not a column of the data is a parameter. Example:
    mlefit fit data.csv --model "rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(s))" --start vmax=200,km=0.1
"""
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
EventOpt = Annotated[
    Optional[str],
    typer.Option(
        "--event", metavar="COLUMN",
        help="Censored survival times: 1 (true) for an observed event, 0 (false) for a right-censored row.",
    ),
]
LinkOpt = Annotated[
    Optional[str],
    typer.Option("--link", help="The family's link, where it has a choice (mlefit families FAMILY lists them)."),
]
LevelsOpt = Annotated[
    Optional[str],
    typer.Option("--levels", metavar="A,B,C", help="Ordered outcomes: the order of the target's labels, lowest first."),
]
OffsetOpt = Annotated[
    Optional[str],
    typer.Option("--offset", metavar="COLUMN", help="Column added to the linear predictor with coefficient 1."),
]
ExposureOpt = Annotated[
    Optional[str],
    typer.Option(
        "--exposure", metavar="COLUMN",
        help="Column of positive exposures (times, sizes) whose log is added to the linear predictor (log-link "
        "families).",
    ),
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
SepOpt = Annotated[
    Optional[str],
    typer.Option(
        "--sep", metavar="CHAR", help="The CSV's field separator, one character ('\\t' for a tab).",
        show_default="from the header: ';' or tab when it has no comma, else ','",
    ),
]
CIOpt = Annotated[
    Optional[CI],
    typer.Option(
        "--ci", help="Intervals: Wald (estimate +- z SE) or profile likelihood (each endpoint a few constrained fits).",
        show_default="wald; profile with --profile",
    ),
]
ProfileOpt = Annotated[
    Optional[str],
    typer.Option(
        "--profile", metavar="NAMES",
        help="Profile only these parameters (comma-separated; class:name for one categorical row).",
        show_default="every parameter",
    ),
]
LevelOpt = Annotated[float, typer.Option("--level", help="Level of every interval (Wald and profile).")]

# -- options of simulate and recover (the truth and how to draw the data) -------------------------
CoefOpt = Annotated[
    str,
    typer.Option(
        "--coef",
        help="True coefficients, one per feature: 1,-2. categorical: one row per non-reference class, "
        "rows separated by ';': \"1,-2;0.5,0\".",
    ),
]
TrueInterceptOpt = Annotated[
    Optional[str],
    typer.Option(
        "--intercept",
        help="True intercept; categorical: one per non-reference class, e.g. 0.2,-0.1 (default: 0, written "
        "in --truth like any parameter).",
    ),
]
NoInterceptFlag = Annotated[bool, typer.Option("--no-intercept", help="Simulate a model without an intercept.")]
SigmaOpt = Annotated[Optional[float], typer.Option("--sigma", help="True noise scale sigma > 0 (gaussian; default 1).")]
AlphaOpt = Annotated[
    Optional[float], typer.Option("--alpha", help="True overdispersion alpha > 0, Var = mu + alpha mu^2 (negbin; default 1).")
]
ShapeOpt = Annotated[Optional[float], typer.Option("--shape", help="True shape > 0 (gamma; default 2).")]
ScaleOpt = Annotated[
    Optional[float], typer.Option("--scale", help="True scale > 0 of log T (weibull, lognormal; default 1).")
]
CensorRateOpt = Annotated[
    Optional[float],
    typer.Option(
        "--censor-rate", help="Survival families: right-censor this fraction of the rows (0 to 1), at uniform times.",
    ),
]
CensorTimeOpt = Annotated[
    Optional[str],
    typer.Option("--censor-time", metavar="COLUMN", help="Survival families: censor each row at this column of --design."),
]
TrueExposureOpt = Annotated[
    Optional[str],
    typer.Option(
        "--exposure", metavar="COLUMN",
        help="Log-link families: an exposure column of --design, or drawn uniformly on (0.5, 2) and written as "
        "this column; log(exposure) is every row's offset.",
    ),
]
ClassesOpt = Annotated[
    Optional[int],
    typer.Option(
        "--classes", "-k",
        help="Number of classes K: categorical (default: coefficient rows + 1; checked), ordinal (or --cutpoints).",
    )
]
CutpointsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--cutpoints", metavar="C1,C2,...",
        help="True cutpoints between ordered classes, increasing, K - 1 for K classes (ordinal; default with "
        "--classes K: equally likely classes at x'b = 0).",
    ),
]
DesignOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--design", help="Reuse the feature columns of this CSV instead of standard-normal features.", dir_okay=False
    ),
]
DesignFeaturesOpt = Annotated[
    Optional[str],
    typer.Option("--features", "-x", help="Comma-separated columns of --design (default: all but 'y')."),
]
SeedOpt = Annotated[
    Optional[int], typer.Option("--seed", help="Random seed; the same seed gives the same output (default: fresh entropy).")
]


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
    """Fit statistical models by maximum likelihood (mlefit families lists the models)."""
    _quiet_broken_pipe()


def _quiet_broken_pipe() -> None:
    """A reader that stops early (``mlefit ... | head``) ends mlefit the Unix way: the default
    SIGPIPE action, silently, with the shell's status 141, not a BrokenPipeError traceback or
    Click's exit code 1 (which mlefit reserves for bugs)."""
    import signal

    if hasattr(signal, "SIGPIPE") and sys.stdout is sys.__stdout__:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


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


def _refuse_overwrite(source: "str | Path | None", what: str, outputs: dict[str, "Path | None"]) -> None:
    """Nothing the user gave is overwritten: refuse an output option naming the input ``source``."""
    if source is None:
        return
    for option, path in outputs.items():
        if path is not None and _same_file(path, str(source)):
            raise UsageError(f"{option} '{path}' is {what}; refusing to overwrite it.")


def _write_text(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {option} '{path}': {exc.strerror}.") from None


def _ancillary(**values: float | None) -> dict[str, float]:
    """The truth options of ancillary parameters (``--sigma``, ``--alpha``, ...) that were given."""
    return {name: value for name, value in values.items() if value is not None}


def _true_intercept(intercept: str | None, no_intercept: bool) -> str | float | None:
    """``--intercept VALUES`` / ``--no-intercept`` to the API's ``intercept`` (0.0 when omitted)."""
    if no_intercept and intercept is not None:
        raise UsageError("--intercept and --no-intercept cannot be used together.")
    if no_intercept:
        return None
    return 0.0 if intercept is None else intercept


@app.command(epilog=MODEL_HELP)
def fit(
    data: DataArg,
    family: MaybeFamilyOpt = None,
    model: ModelOpt = None,
    nll: NllOpt = None,
    start: StartOpt = None,
    fixed: FixedOpt = None,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    intercept: InterceptOpt = True,
    formula: FormulaOpt = None,
    weights: WeightsOpt = None,
    offset: OffsetOpt = None,
    exposure: ExposureOpt = None,
    event: EventOpt = None,
    link: LinkOpt = None,
    levels: LevelsOpt = None,
    dropna: DropnaOpt = False,
    l2: L2Opt = None,
    cov: CovOpt = Cov.model,
    ci: CIOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.95,
    method: MethodOpt = Method.newton,
    grad: GradOpt = Gradient.analytic,
    tol: TolOpt = None,
    max_iter: MaxIterOpt = None,
    format: FormatOpt = Format.table,
    trace_out: Annotated[
        Optional[Path], typer.Option("--trace-out", help="Write every iteration to this CSV file.", dir_okay=False)
    ] = None,
    save: Annotated[
        Optional[Path],
        typer.Option("--save", help="Save the model to this JSON file, for mlefit predict.", dir_okay=False),
    ] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot", dir_okay=False,
            help="Draw the NLL and the gradient norm against the iteration to this image (.png); needs matplotlib.",
        ),
    ] = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    truth: Annotated[
        Optional[Path],
        typer.Option(
            "--truth",
            help="A truth file from 'mlefit simulate --truth': add each parameter's true value and its error "
            "in standard errors, (estimate - truth) / std_error.",
            dir_okay=False,
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Read the CSV in chunks through a binary cache instead of into memory (for files larger "
            "than memory); Newton runs one pass over the rows per iteration.",
        ),
    ] = False,
    chunk_rows: Annotated[
        Optional[int], typer.Option("--chunk-rows", help="Rows per chunk when streaming (default 32768).")
    ] = None,
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--cache-dir", file_okay=False,
            help="Keep the streamed binary cache in this folder (default: a temporary folder, removed afterwards).",
        ),
    ] = None,
    memory_limit: Annotated[
        Optional[str],
        typer.Option(
            "--memory-limit",
            help="Stream CSV files larger than this (bytes, or with K, M, G; default a quarter of the machine's memory).",
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this process) or dask (a Dask cluster, see --scheduler).")
    ] = "local",
    scheduler: Annotated[
        Optional[str],
        typer.Option("--scheduler", help="With --engine dask: tcp://HOST:PORT, or local for a LocalCluster here."),
    ] = None,
    sep: SepOpt = None,
    input_format: InputFormatOpt = None,
) -> None:
    """Fit a model to a CSV or Parquet data and print estimates, fit statistics and the convergence table.

    Exit codes: 0 converged; 2 usage or input error; 3 not converged (results still printed);
    4 the classes are separated (the MLE does not exist; try --l2); 5 a text model's derived
    derivatives disagree with finite differences (a bug).
    """
    from . import progress, render
    from .errors import ConvergenceWarning
    from .fit import fit as fit_model

    with user_errors():
        _family_or_model(family, model, nll)
        _refuse_overwrite(data, "the input file", {"--trace-out": trace_out, "--save": save, "--plot": plot})
        if plot is not None:
            from .plot import require_matplotlib

            require_matplotlib()
        # a streamed or Dask fit draws its progress on standard error when that is a terminal
        with warnings.catch_warnings(), render.fit_progress(enabled=not quiet) as reporter, \
                progress.reporting(reporter):
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit_model(
                data, None if family is None else family.value, model=model, nll=nll, start=start, fixed=fixed,
                target=target, features=features, intercept=intercept,
                formula=formula, weights=weights, offset=offset, exposure=exposure, event=event, link=link, levels=levels, dropna=dropna, l2=l2,
                cov=cov.value,
                method=method.value, gradient=grad.value, tol=tol, max_iter=max_iter,
                stream=stream, chunk_rows=chunk_rows, cache_dir=cache_dir,
                memory_limit=_bytes(memory_limit), engine=engine, scheduler=scheduler, sep=sep,
                input_format=_format(input_format),
                ci=None if ci is None else ci.value, profile=profile, level=level, fingerprint=save is not None,
            )
        if truth is not None:
            from .simulate import compare_truth, read_truth

            # Read only after the data: in `simulate --truth t.json | fit - --truth t.json` the file
            # is complete once standard input has ended (simulate writes it before the CSV).
            result = compare_truth(result, read_truth(truth))
        if trace_out is not None:
            _write_text(trace_out, render.trace_csv(result), "--trace-out")
        if save is not None:
            from .model import save_model

            save_model(result, save)
        if plot is not None:
            from .plot import plot_trace

            plot_trace(result, plot)
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


def _format(value: "InputFormat | None") -> str | None:
    return None if value is None else value.value


def _family_or_model(family, model: str | None, nll: str | None) -> None:
    """Exactly one of --family, --model and --nll."""
    given = [o for o, v in (("--family", family), ("--model", model), ("--nll", nll)) if v is not None]
    if not given:
        raise UsageError(
            f"say what to fit: --family FAMILY (one of {', '.join(FAMILY_NAMES)}), or a likelihood written "
            "as text with --model or --nll."
        )
    if len(given) > 1:
        raise UsageError(f"{given[0]} and {given[1]} cannot be used together: give one of --family, --model and --nll.")


def _bytes(text: str | None) -> int | None:
    """``--memory-limit``: ``"500000000"``, ``"512M"``, ``"2G"`` to bytes."""
    if text is None:
        return None
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    scale = units.get(value[-1:], 1)
    if scale > 1:
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"--memory-limit must be a size such as 2G or 500M; got '{text}'.") from None
    if not number > 0:
        raise UsageError(f"--memory-limit must be positive; got '{text}'.")
    return int(number * scale)


@app.command()
def simulate(
    family: MaybeFamilyOpt = None,
    coef: Annotated[Optional[str], typer.Option("--coef", metavar="TEXT", help=CoefOpt.__metadata__[0].help)] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", metavar="TEXT",
            help="Draw from a model written as text instead of a family: 'y ~ poisson(rate = exp(a + b*x))' "
            "(see mlefit fit --help), with --param.",
        ),
    ] = None,
    param: Annotated[
        Optional[str],
        typer.Option("--param", metavar="A=V,...", help="With --model: the true value of every parameter, e.g. a=1,b=2."),
    ] = None,
    intercept: TrueInterceptOpt = None,
    no_intercept: NoInterceptFlag = False,
    sigma: SigmaOpt = None,
    alpha: AlphaOpt = None,
    shape: ShapeOpt = None,
    scale: ScaleOpt = None,
    link: LinkOpt = None,
    censor_rate: CensorRateOpt = None,
    censor_time: CensorTimeOpt = None,
    classes: ClassesOpt = None,
    cutpoints: CutpointsOpt = None,
    exposure: TrueExposureOpt = None,
    n: Annotated[Optional[int], typer.Option("--n", "-n", help="Rows to draw (default: 1000; with --design its rows).")] = None,
    design: DesignOpt = None,
    features: Annotated[
        Optional[str],
        typer.Option(
            "--features", "-x",
            help="Comma-separated columns of --design (default: all but 'y'); with --model and no --design, the "
            "columns of standard normals to draw.",
        ),
    ] = None,
    seed: SeedOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", dir_okay=False,
            help="Write the data here instead of standard output: Parquet for a name ending in .parquet (.parq, "
            ".pq), else CSV.",
        ),
    ] = None,
    truth: Annotated[
        Optional[Path],
        typer.Option("--truth", help="Write the true parameters as JSON (for 'mlefit fit --truth').", dir_okay=False),
    ] = None,
) -> None:
    """Draw a CSV (features x1..xp and target y) from known parameters, ready for 'mlefit fit -'.

    Floats are written exactly; the same --seed gives byte-identical output. Class labels are
    0..K-1 with 0 the reference; class k is driven by the k-th coefficient row. With --model, the
    model's columns (from --design, or standard normals named by --features) and its target.
    """
    from . import render
    from .simulate import simulate_model_with_truth, simulate_with_truth, write_truth

    with user_errors():
        _refuse_overwrite(design, "the --design file", {"--output": output, "--truth": truth})
        if output is not None and truth is not None and _same_file(output, str(truth)):
            raise UsageError("--output and --truth name the same file.")
        if model is not None:
            given = {
                "--family": family, "--coef": coef, "--intercept": intercept, "--no-intercept": no_intercept or None,
                "--sigma": sigma, "--alpha": alpha, "--shape": shape, "--scale": scale, "--link": link,
                "--censor-rate": censor_rate, "--censor-time": censor_time, "--classes": classes,
                "--exposure": exposure, "--cutpoints": cutpoints,
            }
            for option, value in given.items():
                if value is not None:
                    raise UsageError(f"{option} does not apply with --model: the model's text and --param say it all.")
            if param is None:
                raise UsageError("--model needs the true parameters: --param a=1,b=2.")
            frame, known = simulate_model_with_truth(model, param, n=n, design=design, features=features, seed=seed)
        else:
            if param is not None:
                raise UsageError("--param applies with --model; a family takes --coef.")
            if family is None or coef is None:
                raise UsageError(
                    "say what to draw from: --family FAMILY with --coef, or a model written as text with --model and --param."
                )
            frame, known = simulate_with_truth(
                family.value, coef, n=n, intercept=_true_intercept(intercept, no_intercept),
                ancillary=_ancillary(sigma=sigma, alpha=alpha, shape=shape, scale=scale), exposure=exposure,
                link=link, censor_rate=censor_rate, censor_time=censor_time,
                n_classes=classes, cutpoints=cutpoints, design=design, features=features, seed=seed,
            )
        from .readers.parquet import is_parquet_output, write_frame

        parquet = is_parquet_output(output)
        text = None if parquet else render.data_csv(frame)
        # The truth first: a `fit - --truth` downstream reads it once the CSV has ended.
        if truth is not None:
            write_truth(known, truth)
        if parquet:
            write_frame(frame, output, "--output")
        elif output is not None:
            _write_text(output, text, "--output")
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()


@app.command()
def recover(
    family: FamilyOpt,
    coef: CoefOpt,
    intercept: TrueInterceptOpt = None,
    no_intercept: NoInterceptFlag = False,
    sigma: SigmaOpt = None,
    alpha: AlphaOpt = None,
    shape: ShapeOpt = None,
    scale: ScaleOpt = None,
    link: LinkOpt = None,
    censor_rate: CensorRateOpt = None,
    censor_time: CensorTimeOpt = None,
    classes: ClassesOpt = None,
    cutpoints: CutpointsOpt = None,
    exposure: TrueExposureOpt = None,
    n: Annotated[Optional[int], typer.Option("--n", "-n", help="Rows per dataset (default: 500; with --design its rows).")] = None,
    reps: Annotated[int, typer.Option("--reps", "-r", help="Number of simulated datasets.")] = 200,
    design: DesignOpt = None,
    features: DesignFeaturesOpt = None,
    seed: SeedOpt = None,
    method: MethodOpt = Method.newton,
    grad: GradOpt = Gradient.analytic,
    tol: TolOpt = None,
    max_iter: MaxIterOpt = None,
    ci: Annotated[
        CI, typer.Option("--ci", help="Intervals whose coverage is reported: Wald, or profile likelihood too.")
    ] = CI.wald,
    level: LevelOpt = 0.95,
    format: Annotated[
        Format, typer.Option("--format", help="Output: a table, one JSON document (with every replication), or CSV.")
    ] = Format.table,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot", dir_okay=False,
            help="Draw each parameter's estimates against its true value to this image (.png); needs matplotlib.",
        ),
    ] = None,
) -> None:
    """Parameter recovery: simulate --reps datasets from known parameters, fit each, and report per
    parameter the truth, mean estimate, bias, RMSE, mean SE, empirical SD and the coverage of the
    intervals (95% Wald by default; with --ci profile also the profile-likelihood intervals').

    Averages use the converged fits; fits that did not converge or failed are counted and listed.
    Exit codes: 0 every fit converged, 2 usage or input error, 3 some fits did not converge or
    failed (results are still printed).
    """
    from . import render
    from .recover import recover as run_recovery

    with user_errors():
        if plot is not None:
            from .plot import require_matplotlib

            require_matplotlib()
            _refuse_overwrite(design, "the --design file", {"--plot": plot})
        with render.progress_bar("fitting", reps) as update:
            result = run_recovery(
                family.value, coef, n=n, reps=reps, intercept=_true_intercept(intercept, no_intercept),
                ancillary=_ancillary(sigma=sigma, alpha=alpha, shape=shape, scale=scale), exposure=exposure,
            link=link, censor_rate=censor_rate, censor_time=censor_time,
                n_classes=classes, cutpoints=cutpoints, design=design, features=features, seed=seed,
                method=method.value, gradient=grad.value, tol=tol, max_iter=max_iter, progress=update,
                ci=ci.value, level=level,
            )
        if plot is not None:
            from .plot import plot_recovery

            plot_recovery(
                result.labels, result.truth, result.estimates[result.used], plot,
                title=f"mlefit recover: {result.family}, {result.n_used} converged fits of n = {result.n_obs}",
            )
    if format is Format.json:
        sys.stdout.write(render.json_text(result.to_dict()))
    elif format is Format.csv:
        sys.stdout.write(render.recovery_csv(result))
    elif render.use_rich(sys.stdout):
        render.print_recovery_rich(result)
    else:
        sys.stdout.write(render.recovery_text(result))
    sys.stdout.flush()
    bad = result.n_reps - result.n_converged
    if bad:
        _stderr(
            f"Warning: {bad} of {result.n_reps} fits did not converge or failed; "
            f"the averages use the {result.n_converged} converged fits."
        )
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command()
def predict(
    model: Annotated[
        Path, typer.Argument(help="A model file written by mlefit fit --save.", metavar="MODEL", dir_okay=False)
    ],
    data: DataArg,
    digits: Annotated[
        Optional[int],
        typer.Option("--digits", min=1, max=17, help="Round the predictions to this many significant digits.",
                     show_default="full precision"),
    ] = None,
    sep: SepOpt = None,
    at: Annotated[
        Optional[float],
        typer.Option("--at", metavar="T", help="Survival models: also give each row's probability of surviving past T."),
    ] = None,
    input_format: InputFormatOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", dir_okay=False,
            help="Write the scored rows here instead of standard output: Parquet for a name ending in .parquet "
            "(.parq, .pq), else CSV.",
        ),
    ] = None,
) -> None:
    """Score rows with a saved model: CSV to stdout (or -o FILE, CSV or Parquet) with the input's
    columns plus the predictions.

    bernoulli adds prob_<label of 1>; categorical adds prob_<label> per class and
    predicted_<target> (the most likely class); gaussian adds predicted_<target> (the mean). A name
    already used by an input column gets _2 (_3, ...) appended. The output is comma-separated.
    """
    from . import render
    from .data import read_table
    from .model import load_model
    from .readers import is_parquet

    with user_errors():
        _refuse_overwrite(data, "the input file", {"--output": output})
        _refuse_overwrite(model, "the model file", {"--output": output})
        loaded = load_model(model)
        detected = None
        if is_parquet(data, _format(input_format)):
            from .readers.parquet import read_frame

            frame = read_frame(data, strict=False)
        else:
            frame, header = read_table(data, sep)
            detected = header.sep if header.detected else None
        scored = loaded.predict(frame, at=at)
        n_added = len(loaded.prediction_names(at=at))
        if output is not None:
            from .readers.parquet import is_parquet_output, write_frame

            if is_parquet_output(output):
                write_frame(render.rounded_predictions(scored, n_added, digits), output, "--output")
            else:
                _write_text(output, render.predictions_csv(scored, n_added=n_added, digits=digits), "--output")
    if detected is not None:
        _stderr(f"Note: {render.separator_note(detected)}.")
    if output is None:
        sys.stdout.write(render.predictions_csv(scored, n_added=n_added, digits=digits))
        sys.stdout.flush()


@app.command()
def lrtest(
    small: Annotated[
        Path, typer.Argument(help="The smaller model's file (mlefit fit --save).", metavar="SMALL", dir_okay=False)
    ],
    big: Annotated[
        Path, typer.Argument(help="The larger model's file, nesting SMALL.", metavar="BIG", dir_okay=False)
    ],
    format: Annotated[
        ReportFormat, typer.Option("--format", help="Output: a table or one JSON document.")
    ] = ReportFormat.table,
) -> None:
    """Likelihood-ratio test of SMALL nested in BIG, two fits saved with --save: the LR statistic,
    its degrees of freedom and p-value, both log-likelihoods, AIC and BIC.

    Refused (exit 2, one sentence) unless both fits converged without --l2 on the same rows (a
    fingerprint in each file), of the same family, target and labels, and every parameter of SMALL
    is one of BIG's.
    """
    from . import render
    from .lrtest import lr_test

    with user_errors():
        result = lr_test(small, big)
    if format is ReportFormat.json:
        sys.stdout.write(render.json_text(result.to_dict()))
    else:
        sys.stdout.write(render.lrtest_text(result))
    sys.stdout.flush()


@app.command("check-grad", epilog=MODEL_HELP)
def check_grad(
    data: DataArg,
    family: MaybeFamilyOpt = None,
    model: ModelOpt = None,
    nll: NllOpt = None,
    start: StartOpt = None,
    fixed: FixedOpt = None,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    intercept: InterceptOpt = True,
    weights: WeightsOpt = None,
    offset: OffsetOpt = None,
    exposure: ExposureOpt = None,
    event: EventOpt = None,
    link: LinkOpt = None,
    levels: LevelsOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for the random points.")] = 0,
    points: Annotated[int, typer.Option("--points", help="How many random points near the start.")] = 3,
    tol: Annotated[
        float, typer.Option(help="Largest relative error allowed (see the report for the metric).")
    ] = 1e-5,
    format: Annotated[
        ReportFormat, typer.Option("--format", help="Output: tables or one JSON document.")
    ] = ReportFormat.table,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every parameter at every point.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdict.")] = False,
    sep: SepOpt = None,
    input_format: InputFormatOpt = None,
) -> None:
    """Check the family's (or a text model's) analytic gradient and Hessian against central
    finite differences at the start, at random points near it and at the optimum.

    Exit codes: 0 every relative error within --tol; 2 usage or input error; 5 they disagree.
    """
    from . import render
    from .checkgrad import check_grad as run_check

    with user_errors():
        _family_or_model(family, model, nll)
        check = run_check(
            data, None if family is None else family.value, model=model, nll=nll, start=start, fixed=fixed,
            target=target, features=features, intercept=intercept, weights=weights,
            offset=offset, exposure=exposure, event=event, link=link, levels=levels, n_random=points, seed=seed,
            tol=tol, sep=sep, input_format=_format(input_format),
        )
    if format is ReportFormat.json:
        sys.stdout.write(render.gradcheck_json(check))
    else:
        sys.stdout.write(render.gradcheck_text(check, verbose=verbose, quiet=quiet))
    sys.stdout.flush()
    if not check.passed:
        _stderr(
            "Error: the analytic derivatives disagree with finite differences beyond the tolerance "
            f"{render.number(check.tol)}."
        )
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def dist(
    data: DataArg,
    column: Annotated[
        Optional[str],
        typer.Option("--column", "-y", help="The column to fit.", show_default="'y' if present, else the last column"),
    ] = None,
    family: Annotated[
        Optional[str],
        typer.Option(
            "--family", "-f", metavar="NAMES",
            help=f"Comma-separated distributions to fit: {', '.join(DISTRIBUTION_NAMES)}.",
            show_default="every distribution whose support holds the data",
        ),
    ] = None,
    event: EventOpt = None,
    weights: WeightsOpt = None,
    level: Annotated[
        float,
        typer.Option("--level", help="Level of the intervals (Wald; on the log scale for positive parameters)."),
    ] = 0.95,
    format: Annotated[
        Format, typer.Option("--format", help="Output: tables, one JSON document, or CSV (a row per parameter).")
    ] = Format.table,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot", dir_okay=False,
            help="Draw histogram and densities, CDFs, Q-Q and P-P plots of the fits to this image (.png); needs "
            "matplotlib.",
        ),
    ] = None,
    sep: SepOpt = None,
    input_format: InputFormatOpt = None,
) -> None:
    """Fit univariate distributions to one column by maximum likelihood and rank them by AIC.

    Each fit reports its parameters with standard errors and intervals, the log-likelihood, AIC,
    BIC and goodness of fit (Kolmogorov-Smirnov, Cramér-von Mises and Anderson-Darling statistics;
    chi-squared on grouped counts for discrete distributions). Exit codes: 0 every fit converged;
    2 usage or input error (such as a value outside a named distribution's support); 3 some fit
    did not converge or failed (the results are still printed).
    """
    from . import render
    from .dist import fit_distributions, plot_fits

    with user_errors():
        _refuse_overwrite(data, "the input file", {"--plot": plot})
        if plot is not None:
            from .plot import require_matplotlib

            require_matplotlib()
        result = fit_distributions(
            data, column, families=family, weights=weights, event=event, level=level, sep=sep,
            input_format=_format(input_format),
        )
        if plot is not None:
            plot_fits(result, plot)
    if format is Format.json:
        sys.stdout.write(render.json_text(result.to_dict()))
    elif format is Format.csv:
        sys.stdout.write(render.dist_csv(result))
    elif render.use_rich(sys.stdout):
        render.print_dist_rich(result)
    else:
        sys.stdout.write(render.dist_text(result))
    sys.stdout.flush()
    bad = [f.name for f in result.fits if f.status == "failed" or (f.status == "fitted" and not f.converged)]
    if bad:
        _stderr(f"Warning: {', '.join(bad)} did not converge or failed; see the message of each.")
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command()
def families(
    name: Annotated[Optional[str], typer.Argument(help="Show this family in full.", metavar="[FAMILY]")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="Output: text or JSON.")] = ReportFormat.table,
) -> None:
    """List the families, a line each. With a name, that family in full: distribution, link,
    parameters, NLL, the loss it equals, the gradient and Hessian in closed form, notes."""
    from . import render
    from .families import get_family

    with user_errors():
        names = FAMILY_NAMES if name is None else (get_family(name).name,)
        entries = [get_family(n).describe(full=name is not None) for n in names]
    if format is ReportFormat.json:
        sys.stdout.write(render.families_json(entries))
    elif name is None:
        sys.stdout.write(render.families_list(entries))
    else:
        sys.stdout.write(render.families_text(entries, full=True))
