"""Saved models: everything a fit needs to predict, written to and read from a JSON file.

A model file is one JSON object (``mlefit fit ... --save model.json``)::

    {
      "format": "mlefit-model", "format_version": 1, "mlefit_version": "0.1.0",
      "family": "<name>", "target": "admitted", "levels": ["no", "yes"],
      "intercept": true, "features": ["intercept", "gpa", ...],
      "design": {"kind": "columns", "intercept": true, "features": ["intercept", "gpa", ...],
                 "columns": [{"column": "gpa", "type": "numeric"}, ...]},
      "parameters": [{"name": "intercept", "class": null, "estimate": -20.77, "std_error": 2.5}, ...],
      "sigma": null, "ancillary": {}, "offset": null, "exposure": null,
      "fit": {"n_obs": 600, "nll": 294.7, "converged": true, "method": "newton", "n_params": 4,
              "loglik": -294.7, "aic": 597.4, "bic": 615.0, "n_rows": 600, "weights": null,
              "penalty": null, "l2": null, "data_fingerprint": "3f5c..."}
    }

``design`` says how the design matrix is built from a table (:func:`mlefit.data.design_matrix`);
``features`` names its columns; ``parameters`` holds the estimates on the reported scale (a
family's ancillary parameters last, each as itself: gaussian's sigma, negbin's alpha, also given in
``ancillary`` and, for sigma, ``sigma``), in the order of ``FitResult.params``. ``offset`` and
``exposure`` name the columns whose values (the exposure's log) were added to the linear predictor:
prediction needs them too. Every number is written at full float64 precision, so a loaded model
predicts exactly as the fitted one. ``fit`` records where the estimates came from, with what
``mlefit lrtest`` compares: the log-likelihood, the parameter count, AIC, BIC, the penalty and
``data_fingerprint`` (:mod:`mlefit.fingerprint`; null when the fit did not compute it).

A reader refuses a file of a newer ``format_version`` or an unknown design ``kind`` with a
:class:`~mlefit.errors.ModelError`, rather than predicting from a design it would build wrongly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import DESIGN_KINDS, INTERCEPT, design_matrix, read_csv
from .errors import ModelError
from .families import FAMILY_NAMES, get_family
from .results import FitResult, json_safe

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "mlefit-model"
#: The version this mlefit writes; it reads this one and every older one.
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Model:
    """A fitted model reduced to what prediction needs.

    Attributes
    ----------
    family : str
    target : str
        The target column of the fit (used to name the prediction columns).
    feature_names : tuple of str
        A name per design column, ``intercept`` first when present.
    intercept : bool
    names, classes : tuple
        A label per parameter, as in :class:`~mlefit.results.FitResult`.
    params : ndarray of shape (n_params,)
        Estimates on the reported scale (ancillary parameters as themselves).
    levels : tuple or None
        The target's labels in code order (bernoulli: the label of 0, then of 1).
    design : dict
        How the design is built from a table (``Dataset.design``; :func:`mlefit.data.design_matrix` rebuilds it).
    se : ndarray of shape (n_params,) or None
        Standard errors, kept for the record (prediction does not use them).
    fit : dict
        Where the estimates came from: ``n_obs``, ``nll``, ``converged``, ``method``, and (since
        lrtest) ``n_params``, ``loglik``, ``aic``, ``bic``, ``n_rows``, ``weights``, ``penalty``,
        ``l2``, ``data_fingerprint``.
    offset, exposure : str or None
        The columns of the offset and the exposure, which prediction reads too.
    family_options : dict
        The family's options of the fit (``link``, ``levels``), which prediction uses too.
    text_model : dict or None
        A likelihood written as text (family ``model``): ``{"text", "columns", "fixed"}``, the
        text, the data columns it read (target first) and the parameters held fixed; prediction
        parses and compiles the text again (it is never evaluated).
    """

    family: str
    target: str
    feature_names: tuple[str, ...]
    intercept: bool
    names: tuple[str, ...]
    classes: tuple[str | None, ...]
    params: np.ndarray
    levels: tuple | None
    design: dict[str, Any]
    se: np.ndarray | None = None
    fit: dict[str, Any] = field(default_factory=dict)
    offset: str | None = None
    exposure: str | None = None
    family_options: dict[str, Any] = field(default_factory=dict)
    text_model: dict[str, Any] | None = None

    @cached_property
    def fam(self):
        """The family, with the fit's options (a text model's, compiled from its text)."""
        if self.text_model is not None:
            from .textmodel.family import family_from_record

            return family_from_record(self.text_model)
        return get_family(self.family, **self.family_options)

    # -- from a fit, to and from JSON -------------------------------------------------------------
    @classmethod
    def from_result(cls, result: FitResult) -> "Model":
        """The model of a fit."""
        design = result.design
        if design is None:  # a result built by hand: its features are plain numeric columns
            columns = [n for n in result.feature_names if not (result.intercept and n == INTERCEPT)]
            design = {
                "kind": "columns", "intercept": result.intercept, "features": list(result.feature_names),
                "columns": [{"column": c, "type": "numeric"} for c in columns],
            }
        return cls(
            family=result.family, target=result.target, feature_names=tuple(result.feature_names),
            intercept=result.intercept, names=tuple(result.names), classes=tuple(result.classes),
            params=np.asarray(result.params, dtype=float).copy(), levels=result.levels,
            design=design,
            se=np.asarray(result.se, dtype=float).copy(),
            fit={
                "n_obs": result.n_obs, "nll": result.nll, "converged": result.converged, "method": result.method,
                "n_params": result.n_params, "loglik": result.loglik, "aic": result.aic, "bic": result.bic,
                "n_rows": result.n_rows, "weights": result.weights, "penalty": result.penalty, "l2": result.l2,
                "data_fingerprint": result.data_fingerprint,
            },
            offset=result.offset, exposure=result.exposure, family_options=dict(result.family_options),
            text_model=None if result.model is None else {
                "text": result.model, "columns": [result.target, *result.feature_names],
                "fixed": dict(result.fixed or {}),
            },
        )

    @property
    def ancillary(self) -> dict[str, float]:
        """The family's ancillary parameters, ``{name: estimate}``."""
        return self.fam.ancillary_values(self.params)

    @property
    def sigma(self) -> float | None:
        """The ancillary parameter named ``sigma`` (gaussian's noise scale), else None."""
        return self.ancillary.get("sigma")

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        se = self.se if self.se is not None else np.full(len(self.params), np.nan)
        return json_safe({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mlefit_version": __version__,
            "family": self.family,
            "target": self.target,
            "levels": list(self.levels) if self.levels is not None else None,
            "intercept": self.intercept,
            "features": list(self.feature_names),
            "design": self.design,
            "parameters": [
                {"name": n, "class": c, "estimate": float(v), "std_error": float(s)}
                for n, c, v, s in zip(self.names, self.classes, self.params, se)
            ],
            "sigma": self.sigma,
            "ancillary": self.ancillary,
            "offset": self.offset,
            "exposure": self.exposure,
            "family_options": self.family_options,
            "fit": self.fit,
            **({} if self.text_model is None else {"model": self.text_model}),
        })

    @classmethod
    def from_dict(cls, doc: Any, source: str = "the model") -> "Model":
        """Validate a model document (as written by :meth:`to_dict`) and build the model."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelError(f"{source} is not an mlefit model file (it has no \"format\": \"{FORMAT}\").",
                             "Write one with: mlefit fit ... --save model.json.")
        version = doc.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelError(f"{source} has an invalid format_version ({version!r}).")
        if version > FORMAT_VERSION:
            raise ModelError(
                f"{source} has format version {version}, newer than this mlefit reads ({FORMAT_VERSION}).",
                "Upgrade mlefit, or refit and save the model with this version.",
            )
        try:
            family = doc["family"]
            text_model = doc.get("model")
            if text_model is not None:
                if not isinstance(text_model, dict):
                    raise ValueError(f"its model {text_model!r} is not an object")
                text_model = {"text": text_model["text"], "columns": text_model["columns"],
                              "fixed": text_model.get("fixed") or {}}
            elif family not in FAMILY_NAMES:
                raise ModelError(f"{source} is of an unknown family '{family}'; known: {', '.join(FAMILY_NAMES)}.")
            design = doc["design"]
            kind = design.get("kind") if isinstance(design, dict) else None
            if kind not in DESIGN_KINDS:
                raise ModelError(
                    f"{source} builds its design in a way this version of mlefit does not know "
                    f"(kind '{kind}'; known: {', '.join(DESIGN_KINDS)}).",
                    "Upgrade mlefit.",
                )
            params = doc["parameters"]
            levels = doc["levels"]
            model = cls(
                family=family, target=str(doc["target"]),
                feature_names=tuple(str(n) for n in doc["features"]), intercept=bool(doc["intercept"]),
                names=tuple(str(p["name"]) for p in params), classes=tuple(p["class"] for p in params),
                params=np.array([_number(p["estimate"]) for p in params], dtype=float),
                levels=tuple(levels) if levels is not None else None, design=design,
                se=np.array([_number(p.get("std_error")) for p in params], dtype=float),
                fit=dict(doc.get("fit") or {}),
                offset=_name(doc.get("offset")), exposure=_name(doc.get("exposure")),
                family_options=_options(doc.get("family_options")),
                text_model=text_model,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{source} is damaged: {_describe(exc)}.") from None
        model._check(source)
        return model

    def _check(self, source: str) -> None:
        features = self.design.get("features")
        if not isinstance(features, list) or tuple(features) != self.feature_names:
            raise ModelError(f"{source} is damaged: its design does not build the columns named in 'features'.")
        if self.design["kind"] == "columns":
            columns, intercept = self.design.get("columns"), self.design.get("intercept")
            named = isinstance(columns, list) and all(
                isinstance(c, dict) and isinstance(c.get("column"), str) for c in columns
            )
            if not (named and isinstance(intercept, bool)):
                raise ModelError(
                    f"{source} is damaged: its design needs a list of columns and an intercept flag."
                )
        elif not all(k in self.design for k in ("formula", "intercept", "encoder_state", "transform_state")):
            raise ModelError(
                f"{source} is damaged: its formula design needs the formula and the encoder and transform states."
            )
        try:
            fam = self.fam
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source} is damaged: {_describe(exc)}.") from None
        n_classes = len(self.levels) if fam.classes and self.levels is not None else None
        if fam.classes and (n_classes is None or n_classes < 2):
            raise ModelError(f"{source} is damaged: a {fam.name} model needs its class labels (levels).")
        expected = fam.n_params(len(self.feature_names), n_classes)
        if len(self.params) != expected:
            raise ModelError(
                f"{source} is damaged: {len(self.params)} estimates where a {fam.name} model with "
                f"{len(self.feature_names)} design columns has {expected}."
            )
        if not np.all(np.isfinite(self.params)):
            raise ModelError(f"{source} is damaged: some estimates are missing or not finite.")

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: "str | Path") -> None:
        """Write the model as JSON to ``path`` (replacing a file already there)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        try:
            Path(path).write_text(text)
        except OSError as exc:
            raise ModelError(f"cannot write the model to '{path}': {exc.strerror}.") from None

    @classmethod
    def load(cls, path: "str | Path") -> "Model":
        """Read a model written by :meth:`save` (or ``mlefit fit --save``)."""
        source = f"model file '{path}'"
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ModelError(f"{source} not found.") from None
        except IsADirectoryError:
            raise ModelError(f"{source} is a directory.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read {source}: {_describe(exc)}.") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        return cls.from_dict(doc, source)

    # -- prediction ----------------------------------------------------------------------------
    def design_matrix(self, frame: "pd.DataFrame") -> np.ndarray:
        """The design of shape (n_obs, n_features) for ``frame``, built as the fit built it."""
        X = design_matrix(self.design, frame)
        if X.shape[1] != len(self.feature_names):
            raise ModelError("the model's design does not match its feature names; the model file is damaged.")
        return X

    def offset_values(self, frame: "pd.DataFrame") -> np.ndarray | None:
        """The rows' offset (the offset column plus the log of the exposure column), or None."""
        from .data import offset_values

        for role, name in (("offset", self.offset), ("exposure", self.exposure)):
            if name is not None and name not in frame.columns:
                raise ModelError(
                    f"the model was fitted with {role} column '{name}', which the data to score do not have; "
                    f"available: {', '.join(map(str, frame.columns))}."
                )
        if self.offset is None and self.exposure is None:
            return None
        return offset_values(frame, self.offset, self.exposure, np.arange(1, len(frame) + 1))

    def predict_values(self, data: "pd.DataFrame | str | Path", sep: str | None = None) -> np.ndarray:
        """The raw predictions (see ``Family.predict``): the mean (n_obs,), ``P(y = 1)`` (n_obs,)
        for two classes, the class probabilities (n_obs, n_classes) for more."""
        frame = _frame(data, sep)
        return self.fam.predict(self.params, self.design_matrix(frame), offset=self.offset_values(frame))

    def _columns(self, frame: "pd.DataFrame", options: dict[str, Any]) -> dict[str, np.ndarray]:
        X = self.design_matrix(frame)
        return self.fam.prediction_columns(
            self.params, X, levels=self.levels, target=self.target, offset=self.offset_values(frame), **options,
        )

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The prediction options given (None values dropped), each one the family takes."""
        given = {k: v for k, v in options.items() if v is not None}
        for key in given:
            if key not in self.fam.prediction_options:
                raise ModelError(f"--{key} does not apply to a {self.family} model.")
        return given

    def prediction_names(self, taken: "list[str] | tuple[str, ...]" = (), **options: Any) -> list[str]:
        """Names of the prediction columns (``Family.prediction_columns``: ``predicted_<target>``,
        ``prob_<label>``, ...), none of which is in ``taken``: a name already in ``taken`` (an input
        column) gets ``_2``, ``_3``, ... appended until it is new, so an input column is never
        overwritten."""
        wanted = self.fam.prediction_columns(
            self.params, np.empty((0, len(self.feature_names))), levels=self.levels, target=self.target,
            offset=None if self.offset is None and self.exposure is None else np.empty(0),
            **self.check_options(options),
        )
        used = set(map(str, taken))
        out = []
        for name in wanted:
            unique, k = name, 1
            while unique in used:
                k += 1
                unique = f"{name}_{k}"
            used.add(unique)
            out.append(unique)
        return out

    def predict(self, data: "pd.DataFrame | str | Path", sep: str | None = None, **options: Any) -> "pd.DataFrame":
        """The input table with the prediction columns appended (see :meth:`prediction_names`).

        Parameters
        ----------
        data : DataFrame, path or ``"-"``
            Rows to score (a CSV, or a Parquet file or folder): the model's feature columns, and its
            offset and exposure columns (any others, such as the target, are carried through untouched).
        sep : str, optional
            The CSV's separator (default: detected from its header, see :func:`mlefit.data.read_table`).
        options
            The family's prediction options (survival families: ``at``, a time).
        """
        options = self.check_options(options)
        frame = _frame(data, sep)
        columns = self._columns(frame, options)
        names = self.prediction_names([str(c) for c in frame.columns], **options)
        out = frame.copy()
        for name, values in zip(names, columns.values()):
            out[name] = values
        return out


# -- module-level API ---------------------------------------------------------------------------


def save_model(result: FitResult, path: "str | Path") -> Model:
    """Save the model of a fit to ``path`` as JSON; returns the :class:`Model`."""
    model = Model.from_result(result)
    model.save(path)
    return model


def load_model(path: "str | Path") -> Model:
    """Read a model file written by :func:`save_model` or ``mlefit fit --save``."""
    return Model.load(path)


def predict(
    model: "Model | FitResult | str | Path", data: "pd.DataFrame | str | Path", sep: str | None = None,
    **options: Any,
) -> "pd.DataFrame":
    """Score ``data`` with a model (a :class:`Model`, a ``FitResult`` or a model file's path):
    the input table plus the prediction columns (see :meth:`Model.prediction_names`); ``options``
    are the family's prediction options (survival: ``at``)."""
    if isinstance(model, FitResult):
        model = Model.from_result(model)
    elif not isinstance(model, Model):
        model = Model.load(model)
    return model.predict(data, sep, **options)


def _frame(data: "pd.DataFrame | str | Path", sep: str | None = None) -> "pd.DataFrame":
    import pandas as pd

    from .readers import is_parquet

    if is_parquet(data):  # a Parquet file or folder: every column, those of other types as they are
        from .readers.parquet import read_frame

        data = read_frame(data, strict=False)
    frame = data if isinstance(data, pd.DataFrame) else read_csv(data, sep)
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    return frame


def _name(value: Any) -> str | None:
    """A column name from a model file (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a column name")
    return value


def _options(value: Any) -> dict[str, Any]:
    """A model file's family options: a JSON object (lists become tuples, as the family takes them)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"family_options {value!r} is not an object")
    return {str(k): tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _number(value: Any) -> float:
    """A JSON number (``null`` is NaN, as written for missing values)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the entry {exc.args[0]!r} is missing"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

