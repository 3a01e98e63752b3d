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
from typing import Any, Sequence, TextIO

from .results import PARAMETER_FIELDS, TRACE_FIELDS, FitResult

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


def use_rich(stream: TextIO) -> bool:
    """Rich output only on a terminal and never with NO_COLOR set."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


# -- the pieces of a fit report ------------------------------------------------------------------


def header_lines(result: FitResult) -> list[str]:
    from .families import get_family

    fam = get_family(result.family)
    lines = [
        f"mlefit fit: {result.family} ({fam.description.split(':')[0]}), method {result.method}, "
        f"{result.gradient} gradient",
        f"target: {result.target}" + (f"; {result.target_note}" if result.target_note else ""),
    ]
    return lines


def estimate_table(result: FitResult) -> tuple[list[str], list[list[str]]]:
    categorical = any(c is not None for c in result.classes)
    headers = ["name"] + (["class"] if categorical else []) + ["estimate", "std_error", "z", "p_value", "ci_low", "ci_high"]
    rows = []
    for row in result.parameter_rows():
        cells = [row["name"]] + ([row["class"]] if categorical else [])
        cells += [number(row["estimate"]), number(row["std_error"]), number(row["z"], 4), p_value(row["p_value"]),
                  number(row["ci_low"]), number(row["ci_high"])]
        rows.append(cells)
    return headers, rows


def summary_rows(result: FitResult) -> list[tuple[str, str]]:
    rows = [
        ("rows used", number(result.n_obs)),
        ("parameters", number(result.n_params)),
        ("total NLL", number(result.nll, 10)),
        (f"mean NLL ({result.loss_name})", number(result.mean_nll, 10)),
    ]
    if result.mse is not None:
        rows.append(("MSE (RSS / n)", number(result.mse, 10)))
    rows += [
        ("log-likelihood", number(result.loglik, 10)),
        ("AIC", number(result.aic, 10)),
        ("BIC", number(result.bic, 10)),
    ]
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
    headers, rows = estimate_table(result)
    table = Table(box=box.SIMPLE_HEAD, title="Estimates", title_justify="left", title_style="bold")
    for h in headers:
        table.add_column(h, justify="left" if h in ("name", "class") else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    if quiet:
        console.print(table)
        return
    for line in header_lines(result):
        console.print(line, markup=False)
    console.print(table)
    fit_table = Table(box=box.SIMPLE, show_header=False, title="Fit", title_justify="left", title_style="bold")
    fit_table.add_column("statistic")
    fit_table.add_column("value")
    for k, v in summary_rows(result):
        style = "bold red" if k == "converged" and v == "NO" else None
        fit_table.add_row(k, v, style=style)
    console.print(fit_table)
    trace = Table(box=box.SIMPLE_HEAD, title="Convergence", title_justify="left", title_style="bold")
    for h in TRACE_FIELDS:
        trace.add_column(h, justify="right")
    for r in trace_rows(result, verbose):
        trace.add_row(*(r if r is not None else ["..."] * len(TRACE_FIELDS)))
    console.print(trace)


def fit_json(result: FitResult) -> str:
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


def fit_csv(result: FitResult) -> str:
    """The estimates table as CSV with full float64 precision (empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PARAMETER_FIELDS)
    for row in result.parameter_rows():
        writer.writerow([_csv_cell(row[k]) for k in PARAMETER_FIELDS])
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


def families_text(entries: Sequence[dict[str, Any]], *, full: bool = False) -> str:
    """``mlefit families``: a block per family, its fields aligned; ``full`` adds the target's
    domain, the Hessian, convexity and the docstring."""
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
