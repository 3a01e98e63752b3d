"""Draw synthetic data from known parameters, and compare a fit with the truth it came from.

The truth of a simulation is a :class:`Truth`: the family, the label ``(name, class)`` of every
parameter exactly as :func:`mlefit.fit` names it, and its value on the reported scale (gaussian's
sigma, not log sigma). Its :meth:`Truth.to_dict` has the ``parameters`` layout of
``mlefit fit --format json`` (``name``, ``class``, ``estimate``), so truth and estimates join by
``(name, class)``; :func:`compare_truth` does that join for ``mlefit fit --truth``.

Conventions of a simulation:

* Features are independent standard normals ``x1..xp`` unless a design is given.
* The intercept is part of the truth unless switched off: its default value is 0.0 (per class for
  categorical), written in the truth like any other parameter, so ``simulate | fit`` (which fits
  an intercept by default) matches the truth row for row. ``intercept=None`` (``--no-intercept``)
  leaves it out of both the data-generating model and the truth.
* A family with K classes and a coefficient row per non-reference class (categorical) takes one
  row per class; the labels are ``0..K-1`` with 0 the reference and class ``k`` driven by row
  ``k``, so they sort in the order the rows were given.
* A family's ancillary parameters (gaussian's ``sigma``, negbin's ``alpha``, ...) take the values
  given in ``ancillary`` (``--sigma``, ``--alpha``, ...), else the family's defaults.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .errors import DataError, UsageError
from .families import FAMILY_NAMES, get_family
from .families.base import Family
from .results import param_labels

if TYPE_CHECKING:
    import pandas as pd

    from .results import FitResult

#: Name of the simulated target column.
TARGET = "y"
#: Name of the simulated event indicator of a family whose rows may be censored (1 observed, 0 censored).
EVENT = "event"
#: Rows drawn when neither ``n`` nor a design is given.
DEFAULT_N = 1000

CoefLike = "str | float | Sequence[float] | Sequence[Sequence[float]]"
InterceptLike = "str | float | Sequence[float] | None"


# -- parsing -------------------------------------------------------------------------------------


def parse_numbers(text: str, option: str) -> list[float]:
    """``"0.2, -0.1"`` to ``[0.2, -0.1]``; a UsageError naming ``option`` for anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise UsageError(f"{option} '{text}' has an empty value; write numbers separated by commas, e.g. 1,-2.")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise UsageError(f"{option}: '{p}' is not a number.") from None
        if not math.isfinite(v):
            raise UsageError(f"{option}: '{p}' is not a finite number.")
        values.append(v)
    return values


def parse_coef(text: str) -> list[list[float]]:
    """``"1,-2;0.5,0"`` to ``[[1, -2], [0.5, 0]]``: rows separated by ``;``, values by ``,``."""
    rows = [parse_numbers(row, "--coef") for row in str(text).split(";")]
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise UsageError(
            f"--coef rows have different lengths ({', '.join(map(str, lengths))}); "
            "every class needs one coefficient per feature."
        )
    return rows


def _coef_rows(coef: Any) -> np.ndarray:
    if isinstance(coef, str):
        coef = parse_coef(coef)
    try:
        rows = np.atleast_2d(np.asarray(coef, dtype=float))
    except ValueError:
        raise UsageError("the coefficient rows have different lengths; give one value per feature in every row.") from None
    if rows.ndim != 2 or rows.size == 0:
        raise UsageError("give at least one coefficient (one per feature).")
    if not np.all(np.isfinite(rows)):
        raise UsageError("the coefficients must be finite numbers.")
    return rows


def _intercepts(intercept: Any, n_rows: int) -> np.ndarray | None:
    if intercept is None:
        return None
    if isinstance(intercept, str):
        intercept = parse_numbers(intercept, "--intercept")
    values = np.asarray(intercept, dtype=float)
    if values.ndim == 0:  # a Python scalar is one value for every class
        values = np.full(n_rows, float(values))
    values = values.ravel()
    if values.size != n_rows:
        raise UsageError(
            f"{values.size} intercept value(s) given for {n_rows} coefficient row(s); "
            "give one intercept per non-reference class."
        )
    if not np.all(np.isfinite(values)):
        raise UsageError("the intercept must be a finite number.")
    return values


# -- the truth -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Truth:
    """The parameters a simulation was drawn from, labelled as :func:`mlefit.fit` labels them.

    Attributes
    ----------
    family : str
    names, classes : tuple of str, tuple of (str or None)
        One ``(name, class)`` label per parameter, in the order of the fit's parameters.
    values : ndarray of shape (n_params,)
        The true values on the reported scale (an ancillary parameter as itself, not its log).
    feature_names : tuple of str
        The feature columns (without ``intercept``).
    intercept : bool
        Whether the model has an intercept.
    levels : tuple of int or None
        Class labels ``0..K-1`` (bernoulli ``(0, 1)``, gaussian None).
    n_obs, seed, design : optional
        How the data were drawn, when known (``seed`` is the entropy that reproduces them).
    source : str or None
        Where a truth was read from, for error messages.
    """

    family: str
    names: tuple[str, ...]
    classes: tuple[str | None, ...]
    values: np.ndarray
    feature_names: tuple[str, ...]
    intercept: bool
    levels: tuple | None = None
    n_obs: int | None = None
    seed: int | None = None
    design: str | None = None
    source: str | None = None
    #: The family's options (``link``) the data were drawn with.
    family_options: dict = field(default_factory=dict)
    #: A model written as text (``simulate --model``): its text; the family is then ``model``.
    model: str | None = None

    @property
    def n_params(self) -> int:
        return len(self.values)

    @property
    def labels(self) -> list[str]:
        """``name`` or ``class:name`` per parameter, as :attr:`FitResult.labels`."""
        return param_labels(self.names, self.classes)

    @property
    def params(self) -> np.ndarray:
        """The values on the optimiser's scale (gaussian: log sigma; a text model's as they are)."""
        if self.model is not None:
            return self.values
        n_classes = len(self.levels) if self.levels is not None else None
        return get_family(self.family, **self.family_options).from_natural(self.values, n_classes)

    def design_matrix(self, X: np.ndarray) -> np.ndarray:
        """``X`` of shape (n_obs, n_features) with the intercept column prepended if needed."""
        return np.column_stack([np.ones(len(X)), X]) if self.intercept else X

    def parameter_rows(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "class": c, "estimate": float(v)}
            for n, c, v in zip(self.names, self.classes, self.values)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The truth file of ``mlefit simulate --truth``: ``parameters`` as in ``fit --format json``."""
        if self.model is not None:
            return {
                "family": self.family, "model": self.model, "features": list(self.feature_names),
                "intercept": False, "n_obs": self.n_obs, "seed": self.seed, "design": self.design,
                "parameters": self.parameter_rows(),
            }
        ancillary = get_family(self.family, **self.family_options).ancillary_values(self.values)
        return {
            "family": self.family,
            "target": TARGET,
            "features": list(self.feature_names),
            "intercept": self.intercept,
            "levels": list(self.levels) if self.levels is not None else None,
            "sigma": ancillary.get("sigma"),
            "ancillary": ancillary,
            "family_options": self.family_options,
            "n_obs": self.n_obs,
            "seed": self.seed,
            "design": self.design,
            "parameters": self.parameter_rows(),
        }


def make_truth(
    family: "str | Family",
    coef: CoefLike,
    *,
    intercept: InterceptLike = 0.0,
    sigma: float | None = None,
    n_classes: int | None = None,
    feature_names: Sequence[str] | None = None,
    ancillary: "Mapping[str, float | None] | None" = None,
    cutpoints: "str | Sequence[float] | None" = None,
) -> Truth:
    """The :class:`Truth` of a model, validated.

    Parameters
    ----------
    family : str or Family
    coef : str, sequence of float, or sequence of rows
        One row of p coefficients, or one row per non-reference class for a family with a row of
        coefficients per class (categorical). A string is parsed as ``"1,-2"`` or ``"1,-2;0.5,0"``.
    intercept : float, sequence of float, str or None, default 0.0
        One value per coefficient row (a scalar is used for every row); None for no intercept. A
        family whose other parameters take the intercept's place (ordinal cutpoints) has none: only
        0 (the default) or None are accepted for it.
    sigma : float, optional
        Shorthand for ``ancillary={"sigma": sigma}``.
    n_classes : int, optional
        The number of classes K of a family with classes; default one more than the coefficient
        rows, and if given it must be.
    feature_names : sequence of str, optional
        Default ``x1..xp``.
    ancillary : mapping, optional
        True values of the family's ancillary parameters (``{"alpha": 0.5}``), each > 0; the
        family's defaults for those not given. A name the family does not have is a UsageError.
    cutpoints : str, sequence of float, optional
        A family with cutpoints (ordinal): their true values, increasing (``"-1,0.5"``: K - 1 of
        them for K classes); default the family's (see ``Family.simulation_cutpoints``).
    """
    fam = get_family(family)
    given = {k: v for k, v in dict(ancillary or {}).items() if v is not None}
    if sigma is not None:
        given["sigma"] = sigma
    rows = _coef_rows(coef)
    n_rows, n_features = rows.shape
    if isinstance(cutpoints, str):
        cutpoints = parse_numbers(cutpoints, "--cutpoints")
    cuts = fam.simulation_cutpoints(cutpoints, n_classes)
    if cuts is not None:
        n_classes = len(cuts) + 1
    n_classes = fam.simulation_classes(n_rows, n_classes)
    for name, value in given.items():
        if name not in fam.ancillary:
            having = [f for f in FAMILY_NAMES if name in get_family(f).ancillary]
            raise UsageError(
                f"--{name} applies to {', '.join(having) or 'no family'} only, not {fam.name}."
            )
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"--{name} must be a positive number; got {value:g}.")
    extra = [float(given.get(name, fam.ancillary_defaults[name])) for name in fam.ancillary]

    names = [f"x{j + 1}" for j in range(n_features)] if feature_names is None else [str(c) for c in feature_names]
    if len(names) != n_features:
        raise UsageError(
            f"{n_features} coefficient(s) per row given for {len(names)} feature column(s) "
            f"({', '.join(names)}).",
            "Give one coefficient per feature.",
        )
    if not fam.intercept_column:
        if intercept is not None and np.any(_intercepts(intercept, n_rows) != 0.0):
            raise UsageError(
                f"--intercept does not apply to {fam.name}, whose model has no intercept: other parameters "
                f"take its place (mlefit families {fam.name})."
            )
        intercept = None
    icpt = _intercepts(intercept, n_rows)
    if icpt is not None:
        if "intercept" in names:
            raise UsageError("a feature column is named 'intercept', which clashes with the intercept.")
        rows = np.column_stack([icpt, rows])
    values = np.concatenate([rows.ravel(), [] if cuts is None else cuts, extra])
    levels = fam.simulation_levels(n_classes)
    column_names = (["intercept"] if icpt is not None else []) + names
    labels = fam.param_names(column_names, levels)
    return Truth(
        family=fam.name, family_options=fam.options_given(),
        names=tuple(n for n, _ in labels),
        classes=tuple(c for _, c in labels),
        values=values,
        feature_names=tuple(names),
        intercept=icpt is not None,
        levels=levels,
    )


def true_params(
    family: "str | Family",
    coef: CoefLike,
    intercept: InterceptLike = None,
    sigma: float | None = None,
) -> tuple[np.ndarray, int]:
    """Optimiser-scale parameters and the number of features (see :func:`make_truth`)."""
    truth = make_truth(family, coef, intercept=intercept, sigma=sigma)
    return truth.params, len(truth.feature_names)


# -- drawing data ----------------------------------------------------------------------------------


def make_rng(seed: int | None = None, rng: np.random.Generator | None = None) -> tuple[np.random.Generator, int | None]:
    """The generator to draw from and the seed that reproduces it.

    ``rng`` wins when given (its seed is then unknown: None). Without a seed the fresh entropy is
    returned, since ``np.random.default_rng(entropy)`` gives the same stream again.
    """
    if rng is not None:
        return rng, None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise UsageError(f"--seed must be a non-negative integer; got {seed}.")
    rng = np.random.default_rng(seed)
    return rng, (int(seed) if seed is not None else rng.bit_generator.seed_seq.entropy)


def read_design(
    design: "str | Path | pd.DataFrame", features: "str | Sequence[str] | None" = None,
    exclude: Sequence[str] = (),
) -> "pd.DataFrame":
    """The feature columns of a table to simulate from: ``features``, else every column but ``y``
    and those in ``exclude`` (an exposure column).

    Raises DataError for a missing or non-numeric column, missing or infinite values.
    """
    import pandas as pd

    from .data import read_csv, split_names

    name = "the design" if isinstance(design, pd.DataFrame) else f"design '{design}'"
    frame = design if isinstance(design, pd.DataFrame) else read_csv(design)
    frame = frame.rename(columns=str)
    columns = list(frame.columns)
    wanted = split_names(features)
    if wanted is None:
        wanted = [c for c in columns if c != TARGET and c not in exclude]
    else:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataError(
                f"feature column '{missing[0]}' not found in {name}; available: {', '.join(columns)}.",
                "Check --features.",
            )
        taken = [c for c in wanted if c in exclude]
        if taken:
            raise DataError(f"column '{taken[0]}' holds the exposure and cannot also be a feature.")
        if TARGET in wanted:
            raise DataError(f"column '{TARGET}' is the simulated target and cannot be a feature.")
        if len(set(wanted)) != len(wanted):
            dup = next(c for c in wanted if wanted.count(c) > 1)
            raise DataError(f"feature column '{dup}' is listed twice in --features.")
    if not wanted:
        raise DataError(f"{name} has no feature columns.")
    out = frame[wanted].copy()
    for col in wanted:
        series = out[col]
        if pd.api.types.is_bool_dtype(series):
            out[col] = series.astype(np.int64)
        elif not pd.api.types.is_numeric_dtype(series):
            raise DataError(
                f"feature column '{col}' of {name} is not numeric.",
                "Choose numeric columns with --features.",
            )
        if out[col].isna().any():
            raise DataError(f"feature column '{col}' of {name} has missing values.")
        if not np.all(np.isfinite(out[col].to_numpy(dtype=float))):
            raise DataError(f"feature column '{col}' of {name} has infinite values.")
    return out


def resolve_design(
    X: Any, design: "str | Path | pd.DataFrame | None", features, exclude: Sequence[str] = ()
) -> tuple[Any, str | None]:
    """The design to simulate from, ``X`` or the feature columns of ``design`` (``exclude``: columns
    that are not features), and the design's name (a path) for the record."""
    import pandas as pd

    if X is not None and design is not None:
        raise UsageError("give either X or a design, not both.")
    if design is None:
        if features is not None:
            raise UsageError("--features chooses columns of --design; give a design file too.")
        return X, None
    return read_design(design, features, exclude), None if isinstance(design, pd.DataFrame) else str(design)


def check_censoring(fam: Family, rate: float | None, column: str | None, design: Any) -> None:
    """UsageError unless the censoring asked for applies: a family whose rows may be censored, a
    rate in [0, 1), a censoring column only with a design."""
    if rate is None and column is None:
        return
    option = "--censor-rate" if rate is not None else "--censor-time"
    if not fam.censored:
        raise UsageError(f"{option} does not apply to {fam.name}: its rows are never censored.")
    if rate is not None and column is not None:
        raise UsageError("--censor-rate and --censor-time cannot be used together.")
    if rate is not None and not 0.0 <= rate < 1.0:
        raise UsageError(f"--censor-rate must be at least 0 and below 1; got {rate:g}.")
    if column is not None and design is None:
        raise UsageError("--censor-time names a column of --design; give a design file too.")


def censoring_limits(times: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Censoring times ``c u_i`` (``u_i`` uniform on (0, 1)) with ``c`` chosen so that the fraction
    of ``times`` beyond their limit is ``rate`` (to the nearest row): bisection on ``log c``, since
    that fraction falls as ``c`` grows."""
    u = rng.random(len(times))
    if rate <= 0.0:
        return np.full(len(times), np.inf)
    target = rate * len(times)
    lo, hi = np.log(times.min()) - 1.0, np.log(times.max()) + 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.count_nonzero(times > np.exp(mid) * u) > target:
            lo = mid
        else:
            hi = mid
    return np.exp(hi) * u


def censored(fam: Family, y: np.ndarray, rate: float | None, column: str | None, design: Any, rng) -> np.ndarray:
    """``y`` (times drawn by the family) right-censored as asked (see :func:`check_censoring`)."""
    import pandas as pd

    from .data import numeric_values, read_csv

    if rate is None and column is None:
        return y
    if rate is not None:
        return fam.censor(y, censoring_limits(y, rate, rng))
    frame = design if isinstance(design, pd.DataFrame) else read_csv(design)
    frame = frame.rename(columns=str)
    if column not in frame.columns:
        raise DataError(f"censoring column '{column}' not found in the design; available: {', '.join(frame.columns)}.")
    limits = numeric_values(frame[column], f"censoring column '{column}'", np.arange(1, len(frame) + 1))
    if np.any(limits <= 0):
        raise DataError(f"censoring column '{column}' has a value that is not positive ({limits[limits <= 0][0]:g}).")
    return fam.censor(y, limits)


#: An exposure drawn for a simulation without a design is uniform on this interval.
EXPOSURE_RANGE = (0.5, 2.0)


def resolve_exposure(
    fam: Family, exposure: Any, design: "str | Path | pd.DataFrame | None", n_obs: int,
    rng: np.random.Generator,
) -> tuple[str | None, np.ndarray | None]:
    """``(column name, values)`` of a simulation's exposure (``(None, None)`` without one): a column
    of ``design`` named by ``exposure``, an array, or, without a design, drawn uniformly on
    :data:`EXPOSURE_RANGE`. The family must have a log link."""
    import pandas as pd

    from .data import numeric_values, read_csv

    if exposure is None:
        return None, None
    if not fam.log_link:
        raise UsageError(
            f"--exposure applies to families with a log link, where log(exposure) is an offset; "
            f"{fam.name}'s link is not the log."
        )
    if not isinstance(exposure, str):
        values = np.asarray(exposure, dtype=float)
        if values.shape != (n_obs,) or not np.all(np.isfinite(values) & (values > 0)):
            raise UsageError(f"the exposure must be {n_obs} positive numbers, one per row.")
        return "exposure", values
    if design is None:
        return exposure, rng.uniform(*EXPOSURE_RANGE, size=n_obs)
    frame = design if isinstance(design, pd.DataFrame) else read_csv(design)
    frame = frame.rename(columns=str)
    if exposure not in frame.columns:
        raise DataError(f"exposure column '{exposure}' not found in the design; available: {', '.join(frame.columns)}.")
    values = numeric_values(frame[exposure], f"exposure column '{exposure}'", np.arange(1, len(frame) + 1))
    if np.any(values <= 0):
        raise DataError(f"exposure column '{exposure}' has a value that is not positive ({values[values <= 0][0]:g}).")
    return exposure, values


def simulate_with_truth(
    family: "str | Family",
    coef: CoefLike,
    *,
    n: int | None = None,
    intercept: InterceptLike = 0.0,
    sigma: float | None = None,
    n_classes: int | None = None,
    X: Any = None,
    design: "str | Path | pd.DataFrame | None" = None,
    features: "str | Sequence[str] | None" = None,
    feature_names: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    ancillary: "Mapping[str, float | None] | None" = None,
    exposure: Any = None,
    link: str | None = None,
    censor_rate: float | None = None,
    censor_time: str | None = None,
    cutpoints: "str | Sequence[float] | None" = None,
) -> "tuple[pd.DataFrame, Truth]":
    """:func:`simulate`, also returning the :class:`Truth` (with ``n_obs``, ``seed``, ``design``)."""
    import pandas as pd

    fam = get_family(family, link=link)
    check_censoring(fam, censor_rate, censor_time, design)
    excluded = tuple(c for c in (exposure, censor_time) if isinstance(c, str))
    X, design_name = resolve_design(X, design, features, excluded)
    frame = values = None
    if X is not None:
        if n is not None:
            raise UsageError("--n cannot be combined with a design: the design's rows set n.")
        if isinstance(X, pd.DataFrame):
            frame = X.reset_index(drop=True)
            if feature_names is None:
                feature_names = [str(c) for c in frame.columns]
        values = np.asarray(X, dtype=float)
        if values.ndim != 2:
            raise UsageError(f"X must be a 2-D array of shape (n_obs, n_features); got {values.ndim} dimension(s).")
        if values.shape[0] < 1:
            raise UsageError("the design has no rows.")
        if feature_names is None:
            feature_names = [f"x{j + 1}" for j in range(values.shape[1])]
    truth = make_truth(
        fam, coef, intercept=intercept, sigma=sigma, n_classes=n_classes, feature_names=feature_names,
        ancillary=ancillary, cutpoints=cutpoints,
    )
    rng, seed_used = make_rng(seed, rng)
    if values is None:
        n = DEFAULT_N if n is None else n
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UsageError(f"--n must be at least 1; got {n}.")
        values = rng.standard_normal((int(n), len(truth.feature_names)))
    exposure_name, exposure_values = resolve_exposure(fam, exposure, design, len(values), rng)
    offset = None if exposure_values is None else np.log(exposure_values)
    y = fam.simulate(truth.params, truth.design_matrix(values), rng, offset=offset)
    y = censored(fam, y, censor_rate, censor_time, design, rng)
    if frame is None:
        frame = pd.DataFrame(values, columns=list(truth.feature_names))
    else:
        frame = frame.copy()
        frame.columns = list(truth.feature_names)
    if exposure_name is not None:
        if exposure_name in frame.columns:
            raise UsageError(f"a feature is named '{exposure_name}', which clashes with the exposure column.")
        frame[exposure_name] = exposure_values
    if TARGET in frame.columns:
        raise UsageError(f"a feature is named '{TARGET}', which clashes with the simulated target.")
    y, event = fam.split_target(y)
    frame[TARGET] = y.astype(np.int64) if fam.integer_target else y
    if event is not None:
        if EVENT in frame.columns:
            raise UsageError(f"a feature is named '{EVENT}', which clashes with the simulated event indicator.")
        frame[EVENT] = event.astype(np.int64)
    truth = replace(truth, n_obs=len(frame), seed=seed_used, design=design_name)
    return frame, truth


def simulate(
    family: "str | Family",
    coef: CoefLike,
    *,
    n: int | None = None,
    intercept: InterceptLike = 0.0,
    sigma: float | None = None,
    n_classes: int | None = None,
    X: Any = None,
    design: "str | Path | pd.DataFrame | None" = None,
    features: "str | Sequence[str] | None" = None,
    feature_names: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    ancillary: "Mapping[str, float | None] | None" = None,
    exposure: Any = None,
    link: str | None = None,
    censor_rate: float | None = None,
    censor_time: str | None = None,
    cutpoints: "str | Sequence[float] | None" = None,
) -> "pd.DataFrame":
    """Simulate a table with feature columns and a target ``y`` from known parameters.

    Parameters
    ----------
    family : str or Family
    coef : str, sequence of float, or sequence of rows
        bernoulli, gaussian: one coefficient per feature. categorical: one row per non-reference
        class (``[[1, -2], [0.5, 0]]`` or ``"1,-2;0.5,0"``), K = rows + 1.
    n : int, optional
        Rows to draw, >= 1 (default 1000); not with a design, whose rows set n.
    intercept : float, sequence of float, str or None, default 0.0
        One value per coefficient row; a scalar is used for every row. None: no intercept.
    sigma : float, optional
        gaussian's noise scale, > 0 (default 1.0); shorthand for ``ancillary={"sigma": sigma}``.
    n_classes : int, optional
        categorical's K, checked against the coefficient rows.
    ancillary : mapping, optional
        True values of the family's ancillary parameters (``{"alpha": 0.5}``; see :func:`make_truth`).
    exposure : str or array-like, optional
        For a family with a log link: the exposure, a column of ``design``, or drawn uniformly on
        :data:`EXPOSURE_RANGE` and written as a column of that name; ``log(exposure)`` is the
        offset of every row.
    link : str, optional
        The family's link, where it has a choice.
    cutpoints : str or sequence of float, optional
        A family with cutpoints between ordered classes (ordinal): their true values, increasing,
        K - 1 of them for K classes (default: with ``n_classes``, the family's, see
        :func:`make_truth`).
    censor_rate, censor_time : optional
        For a family whose rows may be censored (survival times): right-censor about this fraction
        of the rows at times drawn uniformly (see :func:`censoring_limits`), or each row at this
        column of ``design``; the table then has an ``event`` column (1 observed, 0 censored).
    X : ndarray of shape (n_obs, n_features) or DataFrame, optional
        A design to reuse (a DataFrame's column names become the feature names).
    design, features : path or DataFrame, str or list of str, optional
        A table whose ``features`` columns (default all but ``y``) are the design.
    feature_names : sequence of str, optional
        Default ``x1..xp`` (or the design's columns).
    rng, seed
        A generator, or a seed to build one with ``np.random.default_rng(seed)``. The features
        are drawn first, then y, so the same seed gives the same table.

    Returns
    -------
    DataFrame
        Feature columns (then the exposure) then ``y``: class labels 0..K-1 (0 the reference
        class, class k drawn from coefficient row k) and counts as int64, other targets float64.
    """
    frame, _ = simulate_with_truth(
        family, coef, n=n, intercept=intercept, sigma=sigma, n_classes=n_classes, X=X,
        design=design, features=features, feature_names=feature_names, rng=rng, seed=seed,
        ancillary=ancillary, exposure=exposure, link=link, censor_rate=censor_rate, censor_time=censor_time,
        cutpoints=cutpoints,
    )
    return frame


def simulate_model_with_truth(
    model: str,
    params: "str | Mapping[str, float]",
    *,
    n: int | None = None,
    design: "str | Path | pd.DataFrame | None" = None,
    features: "str | Sequence[str] | None" = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> "tuple[pd.DataFrame, Truth]":
    """Draw the target of a model written as text (``"y ~ poisson(rate = exp(a + b*x))"``) given
    its other columns, at the parameter values ``params`` (``"a=1,b=2"`` or a mapping).

    The other columns come from ``design`` (a CSV path or a table; ``features``: which of its
    columns, default all), or, without one, are ``n`` rows (default 1000) of independent standard
    normals, one column for each name in ``features`` (``"x,z"`` or a list). Every other name of
    the text is a parameter and needs a value in ``params``. The table returned holds the columns the model
    reads (in order of first appearance), then the target: whole numbers for a count or 0/1
    distribution, floats otherwise. The truth's family is ``model``.

    Raises
    ------
    UsageError
        The text is outside the grammar or is an NLL (it has no distribution to draw from), a
        parameter has no value or ``params`` names something else, or a distribution's argument
        is outside its domain in some row (naming it and the row).
    """
    import pandas as pd

    from .data import read_csv, split_names
    from .textmodel import compile_model
    from .textmodel.distributions import DISTRIBUTIONS
    from .textmodel.family import parse_values
    from .textmodel.grammar import parse_model

    values = parse_values(params, "--param")
    parsed = parse_model(model)
    rng, seed_used = make_rng(seed, rng)
    frame = None
    if design is not None:
        if n is not None:
            raise UsageError("--n cannot be combined with a design: the design's rows set n.")
        frame = design if isinstance(design, pd.DataFrame) else read_csv(design)
        frame = frame.rename(columns=str).reset_index(drop=True)
        wanted = split_names(features)
        if wanted is not None:
            absent = [c for c in wanted if c not in frame.columns]
            if absent:
                raise DataError(f"column '{absent[0]}' of --features is not in the design; its columns are {', '.join(frame.columns)}.")
            frame = frame[wanted]
        frame = frame[[c for c in frame.columns if c != parsed.target]]
        columns = [parsed.target, *frame.columns]
    else:
        columns = [parsed.target, *(split_names(features) or [])]
    compiled = compile_model(model, columns=columns, derivatives=False)
    for name in values:
        if name not in compiled.param_names:
            what = "a column" if name in columns else "not a name of the model"
            raise UsageError(f"--param names '{name}', which is {what}; the model's parameters are {', '.join(compiled.param_names)}.")
    missing = [name for name in compiled.param_names if name not in values]
    if missing:
        where = "columns of --design" if design is not None else "the standard-normal columns --features names"
        raise UsageError(
            f"--param gives no value to '{missing[0]}'; the model's parameters are {', '.join(compiled.param_names)} "
            f"(its columns are {where})."
        )
    covariates = compiled.covariate_columns
    if frame is None:
        n = DEFAULT_N if n is None else n
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UsageError(f"--n must be at least 1; got {n}.")
        frame = pd.DataFrame(rng.standard_normal((int(n), len(covariates))), columns=covariates)
    name = "the design" if isinstance(design, pd.DataFrame) or design is None else f"design '{design}'"
    for column in covariates:
        series = frame[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise DataError(f"column '{column}' of {name} is not numeric, and the model reads it as a number.")
        if not np.all(np.isfinite(series.to_numpy(dtype=float))):
            raise DataError(f"column '{column}' of {name} has missing or infinite values.")
    D = frame[covariates].to_numpy(dtype=float).reshape(len(frame), len(covariates))
    truth_values = np.array([values[p] for p in compiled.param_names])
    y = compiled.simulate(truth_values, D, rng)
    if DISTRIBUTIONS[compiled.distribution].support in ("count", "binary"):
        y = y.astype(np.int64)
    frame = frame[covariates].copy()
    frame[compiled.target] = y
    truth = Truth(
        family="model", model=model, names=tuple(compiled.param_names), classes=(None,) * compiled.n_params,
        values=truth_values, feature_names=tuple(covariates), intercept=False, n_obs=len(frame), seed=seed_used,
        design=None if design is None or isinstance(design, pd.DataFrame) else str(design),
    )
    return frame, truth


# -- truth files and the comparison with a fit -----------------------------------------------------


def write_truth(truth: Truth, path: "str | Path") -> None:
    """Write ``truth.to_dict()`` as JSON (UsageError if the file cannot be written)."""
    text = json.dumps(truth.to_dict(), indent=2, allow_nan=False) + "\n"
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write --truth '{path}': {exc.strerror}.") from None


def truth_from_dict(data: Any, source: str = "the truth") -> Truth:
    """A :class:`Truth` from the JSON layout of :meth:`Truth.to_dict` (or of ``fit --format json``).

    Only ``family`` and ``parameters`` (each with ``name``, ``class`` and ``estimate``) are needed.
    """
    def bad(what: str) -> DataError:
        return DataError(f"{source} is not a truth file: {what}.", "Write one with mlefit simulate --truth.")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    family = data.get("family")
    if not isinstance(family, str):
        raise bad("no 'family'")
    rows = data.get("parameters")
    if not isinstance(rows, list) or not rows:
        raise bad("no 'parameters' list")
    names, classes, values = [], [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "name" not in row or "estimate" not in row:
            raise bad(f"parameter {i + 1} lacks 'name' or 'estimate'")
        value = row["estimate"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(f"parameter '{row['name']}' has no finite 'estimate'")
        cls = row.get("class")
        names.append(str(row["name"]))
        classes.append(None if cls is None else str(cls))
        values.append(float(value))
    keys = list(zip(names, classes))
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise bad(f"parameter {_label(*dup)} is listed twice")
    levels = data.get("levels")
    options = data.get("family_options") if isinstance(data.get("family_options"), dict) else {}
    model = data.get("model") if isinstance(data.get("model"), str) else None
    return Truth(
        family=family if model is not None else get_family(family).name, model=model,
        family_options=options, names=tuple(names), classes=tuple(classes),
        values=np.array(values), feature_names=tuple(data.get("features") or ()),
        intercept=bool(data.get("intercept", "intercept" in names)),
        levels=tuple(levels) if isinstance(levels, list) else None,
        n_obs=data.get("n_obs"), seed=data.get("seed"), design=data.get("design"), source=source,
    )


def read_truth(path: "str | Path") -> Truth:
    """Read a truth file written by ``mlefit simulate --truth`` (DataError if unusable)."""
    source = f"truth file '{path}'"
    p = Path(path)
    if not p.exists():
        raise DataError(f"{source} not found.")
    if p.is_dir():
        raise DataError(f"{source} is a directory.")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{source} is not valid JSON ({exc}).") from None
    return truth_from_dict(data, source)


def _label(name: str, cls: str | None) -> str:
    return f"'{name}'" if cls is None else f"'{name}' (class {cls})"


def compare_truth(result: "FitResult", truth: Truth) -> "FitResult":
    """The fit with ``truth`` attached: each parameter's true value, joined by ``(name, class)``.

    The result's :meth:`~mlefit.FitResult.parameter_rows` then carry ``truth`` and
    ``error_se = (estimate - truth) / std_error``. A truth that names other parameters than the
    fit, or another family, is a DataError.
    """
    source = truth.source or "the truth"
    if truth.family != result.family:
        raise DataError(f"{source} is for family {truth.family} but the fit is {result.family}.")
    table = {(n, c): v for n, c, v in zip(truth.names, truth.classes, truth.values)}
    keys = list(zip(result.names, result.classes))
    missing = [k for k in keys if k not in table]
    extra = [k for k in table if k not in set(keys)]
    if missing or extra:
        what = (
            f"it has no value for the fit's parameter {_label(*missing[0])}"
            if missing
            else f"its parameter {_label(*extra[0])} is not one the fit estimates"
        )
        raise DataError(
            f"{source} does not match the fit: {what}.",
            f"The fit estimates {', '.join(result.labels)}; the truth has {', '.join(truth.labels)}.",
        )
    return replace(result, truth=np.array([table[k] for k in keys]))
