"""Pictures of a fit: the optimisation's trace, and a recovery study's estimates against the truth.

matplotlib is optional (``pip install 'mlefit[plot]'``) and is imported inside the functions. They
draw on matplotlib's object API with the Agg canvas, so they never touch pyplot's global state or
need a display, and the image has exactly ``size`` inches at ``dpi`` dots per inch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import UsageError

if TYPE_CHECKING:
    from .results import FitResult, IterationRecord

#: Default figure size in inches and resolution: 1000 x 450 pixels.
SIZE = (10.0, 4.5)
DPI = 100


def require_matplotlib() -> None:
    """Raise a UsageError saying how to install matplotlib when it cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "plotting needs matplotlib, which is not installed.",
            "Install it with: pip install 'mlefit[plot]'.",
        ) from None


def _figure(size: tuple[float, float], dpi: int):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: "str | Path", dpi: int) -> None:
    try:
        fig.savefig(path, dpi=dpi, format=Path(path).suffix.lstrip(".").lower() or "png")
    except OSError as exc:
        raise UsageError(f"cannot write the plot to '{path}': {exc.strerror or exc}.") from None
    except ValueError as exc:  # an image format matplotlib does not know
        raise UsageError(f"cannot write the plot to '{path}': {exc}.") from None


def plot_trace(
    trace: "FitResult | Sequence[IterationRecord]",
    path: "str | Path",
    *,
    title: str | None = None,
    size: tuple[float, float] = SIZE,
    dpi: int = DPI,
) -> None:
    """Plot the NLL and the gradient's max-norm (log scale) against the iteration.

    Parameters
    ----------
    trace : FitResult or sequence of IterationRecord
        A fit (its ``trace`` is used) or its iteration records.
    path : str or Path
        Where to write the image; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).
    title : str, optional
        Default: the family and method of the fit.
    size, dpi
        Figure size in inches and dots per inch (a PNG is ``size * dpi`` pixels).
    """
    records = getattr(trace, "trace", trace)
    if title is None and hasattr(trace, "family"):
        title = f"mlefit fit: {trace.family}, method {trace.method}, {trace.gradient} gradient"
    it = np.array([r.iteration for r in records], dtype=float)
    nll = np.array([r.nll for r in records], dtype=float)
    gnorm = np.array([r.grad_norm for r in records], dtype=float)
    fig = _figure(size, dpi)
    ax_nll, ax_grad = fig.subplots(1, 2)
    keep = np.isfinite(nll)
    ax_nll.plot(it[keep], nll[keep], marker="o", markersize=3)
    ax_nll.set_xlabel("iteration")
    ax_nll.set_ylabel("NLL")
    ax_nll.set_title("negative log-likelihood")
    # A gradient of exactly 0 has no place on a log axis: it is left out.
    keep = np.isfinite(gnorm) & (gnorm > 0)
    ax_grad.plot(it[keep], gnorm[keep], marker="o", markersize=3, color="tab:red")
    ax_grad.set_yscale("log")
    ax_grad.set_xlabel("iteration")
    ax_grad.set_ylabel("max |gradient|")
    ax_grad.set_title("gradient norm (log scale)")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_nll, ax_grad):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    _save(fig, path, dpi)


def plot_recovery(
    names: Sequence[str],
    true_values: "Sequence[float] | np.ndarray",
    estimates: "np.ndarray | Sequence[Sequence[float]]",
    path: "str | Path",
    *,
    title: str | None = None,
    size: tuple[float, float] = SIZE,
    dpi: int = DPI,
) -> None:
    """Plot a recovery study: each parameter's estimates over the replications against its true
    value.

    One panel per parameter, side by side: the estimates as points (spread sideways in
    replication order so they do not hide each other), their mean with a bar of ±2 standard
    deviations across the replications, and the true value as a horizontal line.

    Parameters
    ----------
    names : sequence of str, length n_params
        A label per parameter (``intercept``, ``x1``, ``bus:x1``, ``sigma``, ...).
    true_values : array-like of shape (n_params,)
    estimates : array-like of shape (n_reps, n_params)
        One row per replication, on the same scale as ``true_values``.
    path, title, size, dpi
        As for :func:`plot_trace`.
    """
    names = [str(n) for n in names]
    truth = np.asarray(true_values, dtype=float).reshape(-1)
    est = np.asarray(estimates, dtype=float)
    if est.ndim == 1:
        est = est[:, None] if len(names) == 1 else est[None, :]
    if not (len(names) == truth.size == est.shape[1]) or est.shape[0] == 0:
        raise UsageError(
            f"plot_recovery needs a name and a true value per column of the estimates; got "
            f"{len(names)} name(s), {truth.size} true value(s) and estimates of shape {est.shape}."
        )
    n_reps, n_params = est.shape
    fig = _figure(size, dpi)
    axes = np.atleast_1d(fig.subplots(1, n_params, squeeze=False)[0])
    offsets = np.linspace(-0.3, 0.3, n_reps) if n_reps > 1 else np.zeros(1)
    for j, ax in enumerate(axes):
        column = est[:, j]
        finite = np.isfinite(column)
        ax.scatter(offsets[finite], column[finite], s=8, alpha=0.5, color="tab:blue", label="estimates")
        if finite.any():
            mean, sd = float(column[finite].mean()), float(column[finite].std())
            ax.errorbar([0.0], [mean], yerr=[2.0 * sd], fmt="s", color="black", capsize=6, label="mean ± 2 sd")
        ax.axhline(truth[j], color="tab:red", linewidth=1.5, label="true value")
        ax.set_xlim(-0.5, 0.5)
        ax.set_xticks([])
        ax.set_title(names[j], fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("estimate")
    axes[0].legend(loc="best", fontsize="small")
    fig.suptitle(title or f"recovery: {n_reps} replication(s), estimates against the true values")
    _save(fig, path, dpi)


#: At most this many points of the sample are drawn on the Q-Q and P-P panels (evenly spaced in rank).
MAX_POINTS = 2000
#: Counts spanning more values than this are drawn as a histogram, not a bar per value.
MAX_BARS = 200


def plot_distributions(
    values: np.ndarray,
    weights: np.ndarray | None,
    fits: "Sequence[tuple[str, object]]",
    path: "str | Path",
    *,
    discrete: bool = False,
    survival: "tuple[np.ndarray, np.ndarray] | None" = None,
    title: str | None = None,
    size: tuple[float, float] = (10.0, 8.0),
    dpi: int = DPI,
) -> None:
    """The four panels of R's fitdistrplus for fitted distributions, each in its own colour: the
    histogram (counts: the observed frequencies) with the fitted densities, the empirical and
    fitted CDFs, a Q-Q plot (fitted quantiles against the sorted data) and a P-P plot (fitted CDF
    against the empirical probabilities).

    Parameters
    ----------
    values : ndarray of shape (n_rows,)
        The data, ascending.
    weights : ndarray of shape (n_rows,) or None
        Frequency weights.
    fits : sequence of (name, distribution)
        Each fitted distribution with the methods ``pdf`` (``pmf`` when ``discrete``), ``cdf`` and
        ``ppf`` (a scipy.stats frozen distribution).
    path : str or Path
        Where to write the image.
    discrete : bool
        Counts: frequencies and probabilities instead of a histogram and densities.
    survival : (times, S), optional
        Right-censored data: the Kaplan-Meier estimate ``S`` just after each event time, which
        takes the place of the empirical CDF (``1 - S``); the density panel then shows the fitted
        densities alone (a histogram of censored data would mislead).
    title, size, dpi
        As for :func:`plot_trace`.
    """
    values = np.asarray(values, dtype=float)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    fig = _figure(size, dpi)
    (ax_pdf, ax_cdf), (ax_qq, ax_pp) = fig.subplots(2, 2)
    colours = [f"C{k}" for k in range(10)]  # matplotlib's ten default colours (tab10)
    total = float(w.sum())
    # the empirical CDF at each sorted value (after it) and the plotting positions (mid-steps)
    if survival is None:
        cum = np.cumsum(w) / total
        x_emp, p_emp = values, cum - 0.5 * w / total
        steps_x, steps_p = values, cum
        if discrete:  # a point per distinct count, at the empirical CDF there
            last = np.r_[values[1:] != values[:-1], True]
            x_emp, p_emp = values[last], np.minimum(cum[last], 1.0)
    else:
        times, S = survival
        before = np.r_[1.0, S[:-1]]
        x_emp, p_emp = times, 1.0 - 0.5 * (before + S)
        steps_x, steps_p = times, 1.0 - S
    lo, hi = float(values[0]), float(values[-1])
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    if discrete and hi - lo > MAX_BARS:
        # counts over a wide range: a histogram of them, the probabilities as curves
        ks = np.arange(int(lo), int(hi) + 1, max(1, int((hi - lo) // 2000)))
        ax_pdf.hist(values, bins=60, weights=w, density=True, color="0.85", edgecolor="0.6", label="observed")
        for k, (name, dist) in enumerate(fits):
            ax_pdf.plot(ks, dist.pmf(ks), color=colours[k % len(colours)], linewidth=1.5, label=name)
        ax_pdf.set_title("observed frequencies and fitted probabilities")
        ax_pdf.set_ylabel("probability")
    elif discrete:
        ks = np.arange(int(lo), int(hi) + 1)
        freq = np.bincount((values - lo).astype(np.intp), weights=w, minlength=len(ks))[: len(ks)] / total
        ax_pdf.bar(ks, freq, width=0.8, color="0.8", edgecolor="0.5", label="observed")
        width = 0.6 / max(len(fits), 1)
        for k, (name, dist) in enumerate(fits):
            offset = (k - (len(fits) - 1) / 2.0) * width
            ax_pdf.vlines(ks + offset, 0.0, dist.pmf(ks), color=colours[k % len(colours)], linewidth=2, label=name)
        ax_pdf.set_title("observed frequencies and fitted probabilities")
        ax_pdf.set_ylabel("probability")
    else:
        grid = np.linspace(lo - pad, hi + pad, 400)
        top = 0.0
        if survival is None:
            bins = np.histogram_bin_edges(values, bins=min(60, max(10, int(np.sqrt(len(values))))))
            heights, _, _ = ax_pdf.hist(values, bins=bins, weights=w, density=True, color="0.85", edgecolor="0.6",
                                        label="data")
            top = float(np.max(heights))
        for k, (name, dist) in enumerate(fits):
            with np.errstate(all="ignore"):
                dens = dist.pdf(grid)
            ax_pdf.plot(grid, dens, color=colours[k % len(colours)], linewidth=1.5, label=name)
            if survival is not None:
                top = max(top, float(np.nanmax(np.where(np.isfinite(dens), dens, np.nan))))
        if top > 0:
            ax_pdf.set_ylim(0.0, 1.3 * top)
        ax_pdf.set_title("histogram and fitted densities" if survival is None else "fitted densities (censored data)")
        ax_pdf.set_ylabel("density")
    ax_cdf.step(steps_x, steps_p, where="post", color="black", linewidth=1.2,
                label="empirical" if survival is None else "Kaplan-Meier")
    step = max(1, int((hi - lo) // 2000))
    grid = np.arange(int(lo), int(hi) + 1, step) if discrete else np.linspace(lo - pad, hi + pad, 400)
    for k, (name, dist) in enumerate(fits):
        colour = colours[k % len(colours)]
        if discrete:
            ax_cdf.step(grid, dist.cdf(grid), where="post", color=colour, linewidth=1.2, label=name)
        else:
            ax_cdf.plot(grid, dist.cdf(grid), color=colour, linewidth=1.2, label=name)
    ax_cdf.set_title("empirical and fitted CDFs")
    ax_cdf.set_ylabel("CDF")
    pick = np.unique(np.linspace(0, len(x_emp) - 1, min(MAX_POINTS, len(x_emp))).astype(np.intp))
    xs, ps = x_emp[pick], p_emp[pick]
    for k, (name, dist) in enumerate(fits):
        colour = colours[k % len(colours)]
        with np.errstate(all="ignore"):
            ax_qq.plot(dist.ppf(ps), xs, "o", markersize=2.5, color=colour, alpha=0.7, label=name)
            ax_pp.plot(ps, dist.cdf(xs), "o", markersize=2.5, color=colour, alpha=0.7, label=name)
    ax_qq.axline((lo, lo), slope=1.0, color="black", linewidth=0.8)
    ax_qq.set_xlabel("fitted quantiles")
    ax_qq.set_ylabel("empirical quantiles")
    ax_qq.set_title("Q-Q plot")
    ax_pp.axline((0.0, 0.0), slope=1.0, color="black", linewidth=0.8)
    ax_pp.set_xlabel("empirical probabilities")
    ax_pp.set_ylabel("fitted probabilities")
    ax_pp.set_title("P-P plot")
    for ax in (ax_pdf, ax_cdf):
        ax.set_xlabel("value")
    for ax in (ax_pdf, ax_cdf, ax_qq, ax_pp):
        ax.grid(True, alpha=0.3)
    ax_cdf.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    _save(fig, path, dpi)

