"""Present a FitResult: rich tables on a terminal, plain text otherwise, JSON or CSV for machines.

Used by the command line only. Consoles are made inside functions so ``NO_COLOR``, the terminal
width and redirection are honoured at the time of printing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TextIO

from .results import PARAMETER_FIELDS, PROFILE_FIELDS, TRACE_FIELDS, TRUTH_FIELDS, FitResult

#: Convergence tables longer than this show their first and last rows around an elision line.
TRACE_HEAD = 5
TRACE_TAIL = 5


def number(value: Any, digits: int = 6) -> str:
    """The one number formatter of the human tables: ``digits`` significant figures, NA for
    missing, ``inf`` for infinities."""
    if value is None:
        return "NA"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NA"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def p_value(value: float) -> str:
    if value is None or math.isnan(value):
        return "NA"
    return "<1e-16" if value < 1e-16 else f"{value:.3g}"


def separator_note(sep: str) -> str:
    """The report's line for a separator detected from the header."""
    return f"read with separator {SEPARATOR_NAMES.get(sep, repr(sep))} (detected from the header)"


#: How the reports name a separator that is not a visible character.
SEPARATOR_NAMES = {"\t": "tab", " ": "space"}


def use_rich(stream: TextIO) -> bool:
    """Rich output only on a terminal and never with NO_COLOR set."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


# -- the pieces of a fit report ------------------------------------------------------------------


def header_lines(result: FitResult) -> list[str]:
    if result.model is not None:
        lines = model_lines(result)
    else:
        from .families import get_family

        fam = get_family(result.family, **result.family_options)
        options = "".join(
            f", {k} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
            for k, v in result.family_options.items()
        )
        lines = [
            f"mlefit fit: {result.family} ({fam.title()}){options}, method {result.method}, "
            f"{result.gradient} gradient",
            f"target: {result.target}" + (f"; {result.target_note}" if result.target_note else ""),
        ]
    if result.separator_detected:
        lines.append(separator_note(result.separator))
    if result.weights is not None:
        lines.append(
            f"weights: '{result.weights}' (frequency weights: {number(result.n_obs)} observations "
            f"in {number(result.n_rows)} rows)"
        )
    if result.offset is not None or result.exposure is not None:
        parts = ([f"'{result.offset}'"] if result.offset is not None else []) + (
            [f"log('{result.exposure}')"] if result.exposure is not None else []
        )
        lines.append(f"offset: {' + '.join(parts)} added to the linear predictor (coefficient 1)")
    if result.penalty is not None:
        lines.append(f"objective: penalised (MAP), {result.objective}; l2 = {number(result.l2)}")
    if result.penalty is not None or result.cov_type != "model":
        lines.append(f"standard errors: {result.se_method}")
    if result.ci_method == "profile":
        from statistics import NormalDist

        q = NormalDist().inv_cdf(0.5 + 0.5 * result.level) ** 2  # chi2_1(level), to the digits shown
        lines.append(
            f"intervals: {percent(result.level)} profile likelihood, 2 (loglik_max - loglik_profile) <= "
            f"{number(q, 5)} = chi2_1({number(result.level)}); {result.profile_fits} constrained fits, "
            f"{result.profile_passes} passes over the rows"
        )
        lines += [f"profile: {note}" for note in result.profile_notes]
    return lines


def percent(level: float) -> str:
    """An interval's level as a percentage: 0.95 -> ``95%``, 0.999 -> ``99.9%``."""
    return f"{round(100.0 * level, 10):g}%"


def interval_headers(result: FitResult) -> list[str]:
    """The interval columns' headers: the interval in use and its level."""
    kind = "profile" if result.ci_method == "profile" else "CI"
    return [f"{percent(result.level)} {kind} low", f"{percent(result.level)} {kind} high"]


def _profile_cell(value: float, status: str) -> str:
    if status == "found":
        return number(value)
    return "unbounded" if status == "unbounded" else "NA"


def model_lines(result: FitResult) -> list[str]:
    """The first lines of the report of a text model: the text, the columns and parameters found."""
    written = "~" in result.model
    derivatives = "exact derivatives (sympy)" if result.gradient == "analytic" else "numeric gradient"
    lines = [
        f"mlefit fit: {'model' if written else 'NLL'} written as text, method {result.method}, {derivatives}",
        f"{'model' if written else 'nll'}: {result.model}",
    ]
    others = ", ".join(result.feature_names) or "none"
    if written:
        lines.append(f"target: {result.target}; other columns read: {others}")
    else:
        lines.append(f"columns read: {', '.join([result.target, *result.feature_names])}")
    found = ", ".join(result.names) + ("".join(f", {k} = {number(v)} (fixed)" for k, v in (result.fixed or {}).items()))
    lines.append(f"parameters found: {found}")
    if result.gradient != "analytic" and result.derivatives is not None and not result.derivatives.startswith("exact"):
        lines.append(f"derivatives: {result.derivatives}")
    return lines


def estimate_table(result: FitResult) -> tuple[list[str], list[list[str]]]:
    categorical = any(c is not None for c in result.classes)
    robust = result.cov_type != "model"
    profile = result.ci_method == "profile"
    headers = (["name"] + (["class"] if categorical else []) + ["estimate", "std_error"]
               + (["model_se"] if robust else []) + ["z", "p_value"] + interval_headers(result))
    if result.truth is not None:
        headers += list(TRUTH_FIELDS)
    rows = []
    statuses = result.profile_status or ()
    for i, row in enumerate(result.parameter_rows(model_se=robust, profile=profile)):
        cells = [row["name"]] + ([row["class"]] if categorical else [])
        cells += [number(row["estimate"]), number(row["std_error"])]
        cells += [number(row["model_std_error"])] if robust else []
        cells += [number(row["z"], 4), p_value(row["p_value"])]
        if profile:
            low, high = statuses[i]
            cells += [_profile_cell(row["profile_ci_low"], low), _profile_cell(row["profile_ci_high"], high)]
        else:
            cells += [number(row["ci_low"]), number(row["ci_high"])]
        if result.truth is not None:
            cells += [number(row["truth"]), number(row["error_se"], 3)]
        rows.append(cells)
    return headers, rows


def summary_rows(result: FitResult) -> list[tuple[str, str]]:
    n_rows = result.n_obs if result.n_rows is None else result.n_rows
    dropped = f" ({result.n_dropped} dropped for missing values)" if result.n_dropped else ""
    rows = [("rows used", number(n_rows) + dropped)]
    if result.weights is not None:
        rows.append(("observations (sum of weights)", number(result.n_obs)))
    for name, value in (result.target_counts or {}).items():
        rows.append((name.removeprefix("n_").replace("_", " "), number(value)))
    rows += [
        ("parameters", number(result.n_params)),
        ("total NLL", number(result.nll, 10)),
        (f"mean NLL ({result.loss_name})", number(result.mean_nll, 10)),
    ]
    if result.penalty is not None:
        rows.append(("penalised objective", number(result.objective_value, 10)))
    if result.mse is not None:
        rows.append(("MSE (RSS / n)", number(result.mse, 10)))
    rows += [
        ("log-likelihood", number(result.loglik, 10)),
        ("AIC", number(result.aic, 10)),
        ("BIC", number(result.bic, 10)),
    ]
    if result.null_loglik is not None:
        rows.append((f"null log-likelihood ({result.null_model or 'intercept only'})", number(result.null_loglik, 10)))
        if result.lr_stat is not None:
            rows.append((f"LR statistic vs null (chi2, {result.lr_df} df)", number(result.lr_stat, 10)))
            rows.append(("LR p-value", p_value(result.lr_p_value)))
        if result.pseudo_r2 is not None:
            rows.append(("McFadden pseudo R^2", number(result.pseudo_r2)))
        if result.r2 is not None:
            rows.append(("R^2", number(result.r2)))
    if result.residual_std_error is not None:
        sigma = result.params[-1]
        rows += [
            ("sigma (MLE, sqrt(RSS / n))", number(sigma, 10)),
            (f"residual std. error (OLS, sqrt(RSS / {number(result.df_resid)}))", number(result.residual_std_error, 10)),
        ]
    rows += [
        ("iterations", number(result.n_iter)),
        ("converged", "yes" if result.converged else "NO"),
        ("message", result.message),
    ]
    return rows


def trace_rows(result: FitResult, verbose: bool = False) -> list[list[str] | None]:
    """Rows of the convergence table; ``None`` stands for the elision line."""
    records = result.trace
    rows: list[list[str] | None] = []
    if result.compile_seconds is not None:  # a text model: its derivation and compilation first
        rows.append(["compile", "NA", "NA", "NA", f"{result.compile_seconds:.4f}"])
    cut = not verbose and len(records) > TRACE_HEAD + TRACE_TAIL + 1
    for i, r in enumerate(records):
        if cut and TRACE_HEAD <= i < len(records) - TRACE_TAIL:
            if i == TRACE_HEAD:
                rows.append(None)
            continue
        rows.append([str(r.iteration), number(r.nll, 12), number(r.grad_norm, 3), number(r.step, 3), f"{r.seconds:.4f}"])
    return rows


# -- layouts -------------------------------------------------------------------------------------


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str] | None], left: int = 1) -> str:
    """Columns padded with two spaces; the first ``left`` columns left-aligned, the rest right.
    A ``None`` row prints as an elision line."""
    real = [r for r in rows if r is not None]
    widths = [max(len(h), *(len(r[j]) for r in real)) if real else len(h) for j, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    lines = [line(headers)]
    for r in rows:
        lines.append("  ..." if r is None else line(r))
    return "\n".join(lines)


def fit_text(result: FitResult, *, verbose: bool = False, quiet: bool = False) -> str:
    """The plain-text report (no colour, no markup)."""
    headers, rows = estimate_table(result)
    categorical = "class" in headers
    est = plain_table(headers, rows, left=2 if categorical else 1)
    if quiet:
        return est + "\n"
    parts = ["\n".join(header_lines(result)), "Estimates\n" + est]
    summary = summary_rows(result)
    width = max(len(k) for k, _ in summary)
    parts.append("Fit\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in summary))
    parts.append("Convergence\n" + plain_table(TRACE_FIELDS, trace_rows(result, verbose), left=0))
    return "\n\n".join(parts) + "\n"


def print_fit_rich(result: FitResult, *, verbose: bool = False, quiet: bool = False, file: TextIO | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, highlight=False)
    compact = dict(
        box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
        title_justify="left", title_style="bold",
    )
    headers, rows = estimate_table(result)
    table = Table(title="Estimates", **compact)
    for h in headers:
        table.add_column(h, justify="left" if h in ("name", "class") else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    # A number is never cut short: when the estimates do not fit the terminal, the table keeps its
    # natural width (the terminal wraps the lines) instead of eliding digits.
    needed = console.measure(table, options=console.options.update_width(10_000)).maximum
    if needed > console.width:
        console = Console(file=file or sys.stdout, highlight=False, width=needed)
    if quiet:
        console.print(table)
        return
    for line in header_lines(result):
        console.print(line, markup=False)
    console.print(table)
    fit_table = Table(title="Fit", show_header=False, **compact)
    fit_table.add_column("statistic", overflow="fold")
    fit_table.add_column("value", overflow="fold")
    for k, v in summary_rows(result):
        style = "bold red" if k == "converged" and v == "NO" else None
        fit_table.add_row(k, v, style=style)
    console.print(fit_table)
    trace = Table(title="Convergence", **compact)
    for h in TRACE_FIELDS:
        trace.add_column(h, justify="right", overflow="fold")
    for r in trace_rows(result, verbose):
        trace.add_row(*(r if r is not None else ["..."] * len(TRACE_FIELDS)))
    console.print(trace)


def fit_json(result: FitResult) -> str:
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


def fit_csv(result: FitResult) -> str:
    """The estimates table as CSV with full float64 precision (empty cells for missing values);
    with robust standard errors a column ``model_std_error`` holds the model-based ones, with
    profile intervals columns ``profile_ci_low``, ``profile_ci_high`` and ``profile_status``
    (``ci_low``/``ci_high`` are the Wald intervals at the same level)."""
    robust = result.cov_type != "model"
    profile = result.ci_method == "profile"
    fields = PARAMETER_FIELDS + (("model_std_error",) if robust else ()) + (PROFILE_FIELDS if profile else ())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if result.truth is not None:
        fields += TRUTH_FIELDS
    writer.writerow(fields)
    for row in result.parameter_rows(model_se=robust, profile=profile):
        writer.writerow([_csv_cell(row[k]) for k in fields])
    return buf.getvalue()


def trace_csv(result: FitResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRACE_FIELDS)
    for r in result.trace:
        writer.writerow([_csv_cell(getattr(r, k)) for k in TRACE_FIELDS])
    return buf.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


# -- simulate and recover ------------------------------------------------------------------------


def data_csv(frame: Any) -> str:
    """A simulated table as CSV: floats written exactly (``repr``, the shortest text that reads
    back to the same float64), integer columns (class labels) as integers. The same values give
    the same bytes."""
    import numpy as np

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([str(c) for c in frame.columns])
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind in "iu":
            columns.append(list(map(str, values.tolist())))
        else:
            columns.append(list(map(repr, values.astype(np.float64).tolist())))
    buf.writelines(",".join(row) + "\n" for row in zip(*columns))
    return buf.getvalue()


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


@contextmanager
def progress_bar(description: str, total: int, stream: TextIO | None = None) -> Iterator[Callable[[int, int], None]]:
    """Yield ``update(done, total)``: a rich progress bar on ``stream`` (default stderr) when it is
    a terminal and NO_COLOR is not set, else a function that does nothing."""
    stream = stream or sys.stderr
    if not use_rich(stream):
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done, total: progress.update(task, completed=done, total=total)


class FitProgress:
    """A :mod:`mlefit.progress` reporter drawing a fit's progress on a terminal: the bytes each
    pass over the file has read, then each iteration of the optimiser with its NLL.

    The display starts with the first read reported, so only a streamed or Dask fit shows it; an
    in-memory fit, which reports its iterations only (and is over in moments), shows nothing. It
    is removed when the fit ends (``close``). Standard output is left alone.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.progress: Any = None
        self.task: Any = None

    def read(self, done: int, total: int | None, what: str) -> None:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"))
            self.progress = Progress(
                *columns, console=Console(file=self.stream), transient=True, redirect_stdout=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(what, total=total, detail="")
        detail = f"{done / 1e6:,.1f} of {total / 1e6:,.1f} MB" if total else f"{done / 1e6:,.1f} MB"
        # drawn at once at the start and the end of a pass (a short pass would not be seen)
        edge = done == 0 or done == total or what != self.progress.tasks[0].description
        self.progress.update(self.task, description=what, completed=done, total=total, detail=detail, refresh=edge)

    def iteration(self, iteration: int, nll: float) -> None:
        if self.progress is None:
            return
        self.progress.update(
            self.task, description="fitting", completed=0, total=None,
            detail=f"iteration {iteration}, NLL {number(nll, 10)}", refresh=True,
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextmanager
def fit_progress(stream: TextIO | None = None, enabled: bool = True) -> Iterator[FitProgress | None]:
    """A :class:`FitProgress` on ``stream`` (default stderr) when it is a terminal, NO_COLOR is
    not set and ``enabled`` (the command line passes ``not --quiet``), else None (no reporter)."""
    stream = stream or sys.stderr
    if not enabled or not use_rich(stream):
        yield None
        return
    reporter = FitProgress(stream)
    try:
        yield reporter
    finally:
        reporter.close()


def recovery_header(result: Any) -> list[str]:
    design = (f"the design {result.design}" if result.design else "a fixed design") if result.fixed_design \
        else "standard-normal features redrawn each time"
    lines = [
        f"mlefit recover: {result.family}, {result.n_reps} replications of n = {result.n_obs} "
        f"({design}), method {result.method}, {result.gradient} gradient, seed {result.seed}",
        f"fits: {result.n_converged} converged, {result.n_not_converged} did not converge, "
        f"{result.n_failed} failed; averages over the {result.n_used} converged fits",
    ]
    if result.ci_method == "profile" or result.level != 0.95:  # else the 95% Wald intervals, as always
        profile = " (profile_coverage: of the profile-likelihood intervals found, profile_n)"
        lines.append(
            f"coverage: the share of the {percent(result.level)} Wald intervals"
            f"{profile if result.ci_method == 'profile' else ''} that contain the truth"
        )
    return lines


def recovery_problems(result: Any, limit: int = 5) -> list[str]:
    """Why fits did not converge or failed, one line per reason (most frequent first)."""
    lines = []
    groups = result.problems()
    for status, message, reps in groups[:limit]:
        shown = ", ".join(str(r) for r in reps[:8]) + (", ..." if len(reps) > 8 else "")
        lines.append(f"{len(reps)} {status} (replication {shown}): {message}")
    if len(groups) > limit:
        lines.append(f"... and {len(groups) - limit} other reason(s)")
    return lines


RECOVERY_COLUMNS = ("truth", "mean_estimate", "bias", "rmse", "mean_se", "empirical_sd", "se_ratio", "coverage")
RECOVERY_HEADERS = {"mean_estimate": "mean\nestimate", "mean_se": "mean\nSE", "empirical_sd": "empirical\nSD",
                    "se_ratio": "SE\nratio", "profile_coverage": "profile\ncoverage", "profile_n": "profile\nn"}


def recovery_table(result: Any) -> tuple[list[str], list[list[str]]]:
    categorical = any(c is not None for c in result.classes)
    columns = RECOVERY_COLUMNS + (("profile_coverage", "profile_n") if result.ci_method == "profile" else ())
    headers = ["name"] + (["class"] if categorical else []) + list(columns)
    rows = []
    for row in result.parameter_rows():
        cells = [row["name"]] + ([row["class"]] if categorical else [])
        cells += [number(row[k], 6 if k == "truth" else 3) for k in columns]
        rows.append(cells)
    return headers, rows


def recovery_text(result: Any) -> str:
    headers, rows = recovery_table(result)
    parts = ["\n".join(recovery_header(result)), "Recovery\n" + plain_table(headers, rows, left=2 if "class" in headers else 1)]
    problems = recovery_problems(result)
    if problems:
        parts.append("Not converged or failed\n" + "\n".join(problems))
    return "\n\n".join(parts) + "\n"


def print_recovery_rich(result: Any, file: TextIO | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, highlight=False)
    for line in recovery_header(result):
        console.print(line, markup=False)
    headers, rows = recovery_table(result)
    # Two-line headers and no padding (the box separates columns) keep the ten columns within 80 characters.
    table = Table(box=box.SIMPLE_HEAD, title="Recovery", title_justify="left", title_style="bold",
                  padding=0, pad_edge=False, show_edge=False)
    for h in headers:
        label = RECOVERY_HEADERS.get(h, h)
        table.add_column(label, justify="left" if h in ("name", "class") else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    problems = recovery_problems(result)
    if problems:
        console.print("Not converged or failed", style="bold red")
        for line in problems:
            console.print(line, markup=False)


def recovery_csv(result: Any) -> str:
    """The per-parameter summary as CSV with full float64 precision."""
    rows = result.parameter_rows()
    fields = list(rows[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_cell(row[k]) for k in fields])
    return buf.getvalue()


# -- predictions ---------------------------------------------------------------------------------


def predictions_csv(frame: Any, n_added: int, digits: int | None = None) -> str:
    """A scored table (a DataFrame whose last ``n_added`` columns are predictions) as CSV.

    Numbers are written at full float64 precision, or the predicted numbers rounded to ``digits``
    significant figures; the input's columns are written as they were read.
    """
    if digits is not None:
        frame = frame.copy()
        for col in list(frame.columns)[frame.shape[1] - n_added:]:
            if frame[col].dtype.kind == "f":
                frame[col] = [number(v, digits) for v in frame[col]]
    return frame.to_csv(index=False, lineterminator="\n")


def rounded_predictions(frame: Any, n_added: int, digits: int | None = None) -> Any:
    """A scored table with its predicted numbers rounded to ``digits`` significant figures (kept as
    numbers, for a Parquet file); the table itself when ``digits`` is None."""
    if digits is None:
        return frame
    frame = frame.copy()
    for col in list(frame.columns)[frame.shape[1] - n_added:]:
        if frame[col].dtype.kind == "f":
            frame[col] = [float(number(v, digits)) if v == v else v for v in frame[col]]
    return frame


# -- lrtest --------------------------------------------------------------------------------------


def lrtest_text(result: Any) -> str:
    """``mlefit lrtest``'s report: the two fits side by side, then the test."""
    head = [
        f"mlefit lrtest: likelihood-ratio test of {result.small.file} nested in {result.big.file}",
        f"{result.family}, target {result.target}; both fitted to the same {number(result.n_obs)} observations "
        f"(data fingerprint {result.data_fingerprint[:12]})",
    ]
    rows = [
        [role, s.file, number(s.n_params), number(s.loglik, 10), number(s.aic, 10), number(s.bic, 10)]
        for role, s in (("small", result.small), ("big", result.big))
    ]
    table = plain_table(["model", "file", "parameters", "log-likelihood", "AIC", "BIC"], rows, left=2)
    test = [
        ("parameters added in big", ", ".join(result.added)),
        (f"LR statistic (chi2, {result.df} df)", number(result.lr_stat, 10)),
        ("p-value", p_value(result.p_value)),
    ]
    width = max(len(k) for k, _ in test)
    return "\n\n".join([
        "\n".join(head), "Models\n" + table, "Test\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in test),
    ]) + "\n"


# -- check-grad ----------------------------------------------------------------------------------

ERROR_COLUMNS = ("grad_abs_err", "grad_rel_err", "hess_abs_err", "hess_rel_err")


def _err(value: float) -> str:
    """An error with two significant figures (they are rounding noise beyond that)."""
    return number(value, 2)


def _worst(values: Sequence[float | None]) -> float:
    """The largest value, a missing one (None, NaN) counting as infinite; 0 for none."""
    return max((math.inf if v is None or math.isnan(v) else v for v in values), default=0.0)


def gradcheck_text(check: Any, *, verbose: bool = False, quiet: bool = False) -> str:
    """The plain-text report of ``check-grad`` for a :class:`~mlefit.checkgrad.GradCheck`: the
    points, each parameter's worst errors over them (or, with ``verbose``, every parameter at
    every point) and the verdict."""
    verdict = gradcheck_verdict(check)
    if quiet:
        return verdict + "\n"
    doc = check.to_dict()
    n = doc["n_params"]
    categorical = any(c is not None for c in check.classes)
    head = [
        f"mlefit check-grad: {check.family}, {check.n_obs} rows, {n} parameters; analytic derivatives "
        "against central finite differences",
        f"relative error of the gradient: {doc['metric']['gradient']}",
        f"relative error of the Hessian:  {doc['metric']['hessian']}",
        f"tolerance: {number(check.tol)} on every relative error",
    ]
    if check.separator_detected:
        head.append(separator_note(check.separator))
    point_rows = []
    for p in doc["points"]:
        worst = _worst(p["grad_rel_err"] + p["hess_rel_err"])
        point_rows.append([
            p["label"], number(p["nll"], 12), number(_worst([abs(g) for g in p["grad"]]), 3),
            _err(_worst(p["grad_rel_err"])), _err(_worst(p["hess_rel_err"])),
            "yes" if worst <= check.tol else "NO",
        ])
    points = plain_table(["point", "nll", "grad_norm", "grad_rel_err", "hess_rel_err", "passed"], point_rows)
    label_headers = ["name"] + (["class"] if categorical else [])

    def labels(i: int) -> list[str]:
        return [check.names[i]] + ([check.classes[i] or ""] if categorical else [])

    if verbose:
        rows = [
            [p["label"], *labels(i), number(p["grad"][i]), number(p["grad_numeric"][i]),
             *(_err(p[f][i]) for f in ERROR_COLUMNS)]
            for p in doc["points"] for i in range(n)
        ]
        headers = ["point", *label_headers, "gradient", "numeric", *ERROR_COLUMNS]
        detail = "Every point\n" + plain_table(headers, rows, left=1 + len(label_headers))
    else:
        rows = [[*labels(i), *(_err(row[f]) for f in ERROR_COLUMNS)] for i, row in enumerate(doc["parameters"])]
        detail = "Worst over the points\n" + plain_table([*label_headers, *ERROR_COLUMNS], rows, left=len(label_headers))
    return "\n\n".join(["\n".join(head), "Points\n" + points, detail, verdict]) + "\n"


def gradcheck_verdict(check: Any) -> str:
    """One line: passed, or how many errors exceed the tolerance and where the largest is."""
    tol = number(check.tol)
    if check.passed:
        return f"passed: every relative error is at most the tolerance {tol}."
    cells = [
        (_worst([v]), what, i, p["label"])
        for p in check.to_dict()["points"]
        for what, key in (("gradient", "grad_rel_err"), ("Hessian row", "hess_rel_err"))
        for i, v in enumerate(p[key])
    ]
    bad = sum(1 for v, *_ in cells if not v <= check.tol)
    value, what, i, where = max(cells, key=lambda c: c[0])
    name = check.names[i] if check.classes[i] is None else f"{check.classes[i]}:{check.names[i]}"
    return (
        f"FAILED: {bad} relative error(s) exceed the tolerance {tol}; the largest is "
        f"{_err(value)} ({what} of {name} at {where})."
    )


def gradcheck_json(check: Any) -> str:
    return json.dumps(check.to_dict(), indent=2, allow_nan=False) + "\n"


# -- families ------------------------------------------------------------------------------------

FAMILY_FIELDS = (
    ("distribution", "distribution"),
    ("link", "link"),
    ("parameters", "parameters"),
    ("nll", "NLL"),
    ("loss", "loss"),
    ("gradient", "gradient"),
)
FAMILY_EXTRA_FIELDS = (("y", "target"), ("hessian", "Hessian"))


def families_list(entries: Sequence[dict[str, Any]]) -> str:
    """``mlefit families``: a line per family, its name and what it fits."""
    width = max(len(entry["name"]) for entry in entries)
    lines = [f"{entry['name'].ljust(width)}  {entry['description']}" for entry in entries]
    lines += ["", "One in full (distribution, link, parameters, NLL, loss, derivatives, notes): mlefit families NAME"]
    return "\n".join(lines) + "\n"


def families_text(entries: Sequence[dict[str, Any]], *, full: bool = False) -> str:
    """Families as blocks, their fields aligned; ``full`` adds the target's domain, the Hessian,
    convexity and the docstring (``mlefit families NAME``)."""
    fields = FAMILY_FIELDS + (FAMILY_EXTRA_FIELDS if full else ())
    width = max(len(label) for _, label in fields)
    blocks = []
    for entry in entries:
        lines = [f"{entry['name']}: {entry['description']}"]
        lines += [f"  {label.ljust(width)}  {entry[key]}" for key, label in fields]
        if full:
            convex = "yes" if entry["convex"] else "no (not jointly; see the notes)"
            lines.append(f"  {'convex'.ljust(width)}  {convex}")
            lines += ["", "Notes", *(f"  {line}".rstrip() for line in entry["doc"].splitlines())]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def families_json(entries: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(entries), indent=2) + "\n"


# -- mlefit dist -----------------------------------------------------------------------------------

#: The statistics columns of the ranking, by kind of data: (JSON key, header, significant digits).
DIST_STATISTICS = {
    "continuous": (("ks", "KS", 4), ("cvm", "CvM", 4), ("ad", "AD", 4)),
    "discrete": (("chi2", "chi2", 5), ("chi2_df", "df", 0), ("chi2_p_value", "p_value", 0)),
    "censored": (),
}
DIST_CSV_FIELDS = ("distribution", "status", "rank", "best", "parameter", "estimate", "std_error", "ci_low",
                   "ci_high", "loglik", "aic", "bic", "n_params", "converged")


def _dist_kind(result: Any) -> str:
    return "censored" if result.event is not None else "discrete" if result.discrete else "continuous"


def dist_header(result: Any) -> list[str]:
    s = result.summary
    observations = f"{number(result.n_obs)} observations" + (
        f" in {number(result.n_rows)} rows (weights '{result.weights}')" if result.weights is not None else ""
    )
    lines = [
        f"mlefit dist: column '{result.column}', {observations}; min {number(s['min'])}, max {number(s['max'])}, "
        f"mean {number(s['mean'])}, sd {number(s['sd'])}",
    ]
    if result.event is not None:
        lines.append(
            f"right-censored by '{result.event}': {number(result.n_events)} events, "
            f"{number(result.n_obs - result.n_events)} censored"
        )
    kind = _dist_kind(result)
    legend = {
        "continuous": "; KS, CvM, AD: Kolmogorov-Smirnov, Cramér-von Mises, Anderson-Darling (smaller is closer)",
        "discrete": "; chi2 on grouped counts, its df and p_value",
        "censored": "",
    }[kind]
    what = "discrete" if result.discrete else "continuous"
    lines.append(f"{what} distributions ranked by AIC, * the best{legend}")
    if result.statistics_note:
        lines.append(f"note: {result.statistics_note}")
    return lines


def dist_ranking(result: Any) -> tuple[list[str], list[list[str]]]:
    stats = DIST_STATISTICS[_dist_kind(result)]
    headers = ["rank", "distribution", "loglik", "AIC", "BIC", "delta_AIC"] + [h for _, h, _ in stats]
    best = result.best
    rows = []
    for f in result.fits:
        if f.status != "fitted":
            continue
        rank = "-" if f.rank is None else f"{f.rank}{' *' if f.best else ''}"
        delta = number(f.aic - best.aic, 4) if best is not None and f.rank is not None else "NA"
        cells = [rank, f.name, number(f.loglik, 8), number(f.aic, 8), number(f.bic, 8), delta]
        for key, _, digits in stats:
            value = f.statistics.get(key)
            if key == "chi2_p_value":
                cells.append(p_value(value))
            elif key == "chi2_df":
                cells.append("NA" if value is None else str(value))
            else:
                cells.append(number(value, digits))
        rows.append(cells)
    return headers, rows


def dist_parameters(result: Any) -> tuple[list[str], list[list[str]]]:
    headers = ["distribution", "parameter", "estimate", "std_error", "ci_low", "ci_high"]
    rows = []
    for f in result.fits:
        for p in f.parameters:
            rows.append([f.name, p.name, number(p.estimate), number(p.std_error), number(p.ci_low), number(p.ci_high)])
    return headers, rows


def dist_notes(result: Any) -> list[str]:
    """A line per distribution that did not converge, failed or does not apply, with the reason."""
    lines = []
    width = max((len(f.name) for f in result.fits), default=0)
    for f in result.fits:
        if f.status == "fitted" and f.converged:
            continue
        what = {"fitted": "did not converge", "failed": "failed", "not_applicable": "not applicable"}[f.status]
        lines.append(f"{f.name.ljust(width)}  {what}: {f.message}")
    return lines


def dist_text(result: Any) -> str:
    parts = ["\n".join(dist_header(result))]
    headers, rows = dist_ranking(result)
    if rows:
        parts.append("Ranking\n" + plain_table(headers, rows, left=2))
        headers, rows = dist_parameters(result)
        parts.append(f"Parameters ({number(100 * result.level)}% intervals)\n" + plain_table(headers, rows, left=2))
    notes = dist_notes(result)
    if notes:
        parts.append("Not fitted, or not converged\n" + "\n".join(notes))
    return "\n\n".join(parts) + "\n"


def print_dist_rich(result: Any, file: TextIO | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, highlight=False)
    compact = dict(
        box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
        title_justify="left", title_style="bold",
    )
    for line in dist_header(result):
        console.print(line, markup=False)
    for title, (headers, rows) in (
        ("Ranking", dist_ranking(result)),
        (f"Parameters ({number(100 * result.level)}% intervals)", dist_parameters(result)),
    ):
        if not rows:
            continue
        table = Table(title=title, **compact)
        for j, h in enumerate(headers):
            table.add_column(h, justify="left" if j < 2 else "right", no_wrap=True)
        for r in rows:
            table.add_row(*r, style="bold" if r[0].endswith("*") else None)
        console.print(table)
    notes = dist_notes(result)
    if notes:
        console.print("Not fitted, or not converged", style="bold")
        for line in notes:
            console.print(line, markup=False)


def dist_csv(result: Any) -> str:
    """A row per parameter of each fitted distribution (a row with empty parameter cells for the
    others), the distribution's figures repeated on its rows, then its statistics and message."""
    stats = [key for key, _, _ in DIST_STATISTICS[_dist_kind(result)]]
    fields = list(DIST_CSV_FIELDS) + stats + ["message"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for f in result.fits:
        entry = f.to_dict()
        common = {k: entry.get(k) for k in ("status", "rank", "best", "loglik", "aic", "bic", "n_params", "converged")}
        common.update({k: entry["statistics"].get(k) for k in stats}, distribution=f.name, message=f.message)
        for p in entry["parameters"] or [{}]:
            row = {**common, "parameter": p.get("name"), **{k: p.get(k) for k in ("estimate", "std_error", "ci_low", "ci_high")}}
            writer.writerow([_csv_cell(_lower_bool(row[k])) for k in fields])
    return buf.getvalue()


def _lower_bool(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value
