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
