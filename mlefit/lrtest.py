"""The likelihood-ratio test between two saved fits (``mlefit lrtest SMALL.json BIG.json``).

For a model SMALL nested in a model BIG (SMALL's parameters are BIG's with some held at zero),
both fitted by maximum likelihood to the same observations, Wilks' statistic
``LR = 2 (loglik_BIG - loglik_SMALL)`` is asymptotically chi-squared with
``df = n_params_BIG - n_params_SMALL`` degrees of freedom under SMALL. The test is refused, with
one sentence, whenever that does not hold or cannot be checked: different families, targets, class
labels, offsets or exposures; different rows (the fits' fingerprints of their target, weights and
row count differ, :mod:`mlefit.fingerprint`); SMALL's parameters (by name and class) not all among
BIG's; SMALL not smaller; a fit that did not converge or was penalised (``--l2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .inference import chi2_sf
from .model import Model, load_model
from .results import json_safe, param_labels

#: A log-likelihood of BIG below SMALL's by more than this (relative to their size) is not rounding.
LOGLIK_RTOL = 1e-9


@dataclass(frozen=True)
class FitSummary:
    """One side of the test: the file and its fit's figures."""

    file: str
    n_params: int
    loglik: float
    aic: float
    bic: float
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LRTestResult:
    """The likelihood-ratio test of ``small`` against ``big``.

    ``lr_stat`` is ``2 (big.loglik - small.loglik)`` (0 when BIG gains less than rounding), ``df``
    the difference in parameter counts, ``p_value`` ``P(chi2(df) > lr_stat)``; ``added`` the
    labels of BIG's parameters that SMALL holds at zero.
    """

    small: FitSummary
    big: FitSummary
    family: str
    target: str
    n_obs: float
    data_fingerprint: str
    lr_stat: float
    df: int
    p_value: float
    added: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        def side(s: FitSummary) -> dict[str, Any]:
            return {"file": s.file, "n_params": s.n_params, "loglik": s.loglik, "aic": s.aic, "bic": s.bic,
                    "parameters": list(s.labels)}

        return json_safe({
            "test": "likelihood ratio",
            "family": self.family,
            "target": self.target,
            "n_obs": self.n_obs,
            "data_fingerprint": self.data_fingerprint,
            "small": side(self.small),
            "big": side(self.big),
            "lr_stat": self.lr_stat,
            "df": self.df,
            "p_value": self.p_value,
            "added": list(self.added),
        })


def lr_test(small: "Model | str | Path", big: "Model | str | Path") -> LRTestResult:
    """The likelihood-ratio test of the model ``small`` nested in ``big`` (models or model files
    written by ``mlefit fit --save``); raises :class:`~mlefit.errors.UsageError` with one
    sentence when the pair cannot be tested (see the module's docstring)."""
    a_name, a = _load(small, "SMALL")
    b_name, b = _load(big, "BIG")
    if a.family != b.family:
        raise UsageError(
            f"{a_name} is a {a.family} model and {b_name} a {b.family} one; "
            "a likelihood-ratio test compares two models of one family."
        )
    if dict(a.family_options) != dict(b.family_options):
        raise UsageError(
            f"{a_name} and {b_name} are {a.family} models with different options ({_options(a)} against "
            f"{_options(b)}), so their likelihoods are of different models."
        )
    if a.target != b.target:
        raise UsageError(f"{a_name} models the target '{a.target}' and {b_name} '{b.target}'; both must model the same target.")
    if a.levels != b.levels:
        raise UsageError(
            f"{a_name} and {b_name} read the target's labels differently ({_levels(a.levels)} against "
            f"{_levels(b.levels)}), so their likelihoods are of different outcomes."
        )
    for what in ("offset", "exposure"):
        if getattr(a, what) != getattr(b, what):
            raise UsageError(
                f"{a_name} has the {what} {_column(getattr(a, what))} and {b_name} {_column(getattr(b, what))}; "
                f"nested models share the {what}, so both must be fitted with the same one."
            )
    for name, m in ((a_name, a), (b_name, b)):
        if m.fit.get("converged") is not True:
            raise UsageError(
                f"{name} is from a fit that did not converge, so its log-likelihood is not the maximum "
                "that a likelihood-ratio test needs; refit it to convergence."
            )
        if m.fit.get("penalty") is not None or m.fit.get("l2") is not None:
            raise UsageError(
                f"{name} is a penalised (--l2) fit, whose estimates do not maximise the likelihood; "
                "a likelihood-ratio test needs unpenalised fits."
            )
        if not m.fit.get("data_fingerprint"):
            raise UsageError(
                f"{name} carries no fingerprint of the rows it was fitted to (it was saved by an older "
                "mlefit, or from Python without fingerprint=True), so lrtest cannot check that both fits "
                "used the same rows; refit it with mlefit fit --save."
            )
        if not isinstance(m.fit.get("loglik"), (int, float)) or not math.isfinite(m.fit["loglik"]):
            raise UsageError(f"{name} has no finite log-likelihood (an exact fit), so there is nothing to test.")
    if a.fit["data_fingerprint"] != b.fit["data_fingerprint"]:
        rows = ""
        if a.fit.get("n_rows") is not None and a.fit.get("n_rows") != b.fit.get("n_rows"):
            rows = f": {a.fit['n_rows']} rows against {b.fit['n_rows']}"
        raise UsageError(
            f"{a_name} and {b_name} were fitted to different rows (the fingerprints of their target, "
            f"weights and row count differ{rows}), so their likelihoods cannot be compared."
        )
    a_labels = param_labels(a.names, a.classes)
    b_labels = param_labels(b.names, b.classes)
    if len(a_labels) >= len(b_labels):
        order = "give the smaller model first" if len(a_labels) > len(b_labels) else "neither is nested in the other with fewer"
        raise UsageError(
            f"{a_name} has {len(a_labels)} parameters and {b_name} {len(b_labels)}; "
            f"SMALL must have fewer parameters than BIG ({order})."
        )
    missing = [label for label in a_labels if label not in set(b_labels)]
    if missing:
        raise UsageError(
            f"{a_name}'s parameter '{missing[0]}' is not a parameter of {b_name}, so {a_name} is not nested in "
            f"{b_name} (every parameter of SMALL must be one of BIG's, by name and class)."
        )
    ll_a, ll_b = float(a.fit["loglik"]), float(b.fit["loglik"])
    stat = 2.0 * (ll_b - ll_a)
    if stat < 0:
        if -stat > LOGLIK_RTOL * max(abs(ll_a), abs(ll_b), 1.0):
            raise UsageError(
                f"{b_name}'s log-likelihood ({ll_b:.10g}) is below {a_name}'s ({ll_a:.10g}), which a model "
                "nesting SMALL cannot have at its maximum; check that both fits reached their maxima."
            )
        stat = 0.0
    df = len(b_labels) - len(a_labels)
    return LRTestResult(
        small=_summary(a_name, a, a_labels), big=_summary(b_name, b, b_labels), family=a.family, target=a.target,
        n_obs=a.fit.get("n_obs"), data_fingerprint=a.fit["data_fingerprint"], lr_stat=stat, df=df,
        p_value=chi2_sf(stat, df), added=tuple(label for label in b_labels if label not in set(a_labels)),
    )


def _load(model: "Model | str | Path", role: str) -> tuple[str, Model]:
    if isinstance(model, Model):
        return role, model
    return str(model), load_model(model)


def _options(m: Model) -> str:
    options = dict(m.family_options)
    return ", ".join(f"{k} {v}" for k, v in sorted(options.items())) or "none"


def _column(name: str | None) -> str:
    return "none" if name is None else f"'{name}'"


def _levels(levels) -> str:
    return "none" if levels is None else ", ".join(map(str, levels))


def _summary(name: str, m: Model, labels: list[str]) -> FitSummary:
    f = m.fit
    return FitSummary(
        name, len(labels), float(f["loglik"]), float(_nan(f.get("aic"))), float(_nan(f.get("bic"))), tuple(labels),
    )


def _nan(value) -> float:
    return math.nan if value is None else value
