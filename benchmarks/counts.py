"""mlefit's count and positive-data families beside statsmodels, scikit-learn and glum.

Run it after ``make bench`` (which installs the ``bench`` extra: statsmodels, scikit-learn, glum)::

    python benchmarks/counts.py                       # poisson n=1e6 p=20; negbin and gamma likewise
    python benchmarks/counts.py --quick               # small n, one run: a smoke test
    python benchmarks/counts.py --only poisson --profile --json counts.json

Every comparison draws its data from one seeded generator (correlated standard-normal features, a
mean ``exp(0.5 + x'b)``), then times each tool on the same arrays, interleaved (tool A, tool B, ...,
tool A, tool B, ...; each round in a rotated order after a short pause, so that a burst of load
hits every tool alike), and reports the median of ``--repeat`` runs after one untimed round.
mlefit's time includes its standard errors (the whole ``mlefit.fit``); the references' do not.

- poisson: statsmodels GLM Poisson (IRLS), scikit-learn ``PoissonRegressor(alpha=0)`` with the
  lbfgs and newton-cholesky solvers (tol 1e-10), glum (IRLS);
- negbin: statsmodels ``NegativeBinomial(loglike_method="nb2")`` (Newton, alpha estimated); glum's
  negative binomial with alpha fixed at statsmodels' estimate (glum does not estimate it, so it
  solves an easier problem: the coefficients only);
- gamma (log link): statsmodels GLM Gamma (IRLS), scikit-learn ``GammaRegressor(alpha=0)`` (lbfgs,
  newton-cholesky), glum. These fit the coefficients only (the GLM dispersion is not a maximum-
  likelihood shape); mlefit estimates the shape too.

Columns: seconds (median wall time); ratio (the time over the fastest reference's; the issue's
target for poisson is mlefit at 0.5x or less); agreement (max over the coefficients, and alpha for
negbin, of |estimate - statsmodels| / |statsmodels|). The load average is printed with the table:
the machine's other work inflates every time, the ratios less so.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

# the helpers every benchmark of this folder shares (run as a script, the folder is on the path)
from compare import Row, design, have, quiet, rel_diff, table

SEED = 20240613
COMPARISONS = ("poisson", "negbin", "gamma")
#: Untimed rounds before the timed ones (imports, first touches of memory).
WARMUP = 1
#: Seconds of quiet before each timed run (0 with --quick).
PAUSE = 0.5


# -- data ------------------------------------------------------------------------------------------


def mean(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    beta = rng.normal(0.0, 0.1, X.shape[1])
    return np.exp(0.5 + X @ beta)


def draw(family: str, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED + COMPARISONS.index(family))
    X = design(rng, n, p)
    mu = mean(rng, X)
    if family == "poisson":
        y = rng.poisson(mu)
    elif family == "negbin":
        y = rng.poisson(rng.gamma(2.0, mu / 2.0))  # alpha = 0.5
    else:
        y = rng.gamma(2.0, mu / 2.0)  # shape 2
    return X, y.astype(np.float64)


# -- timing ------------------------------------------------------------------------------------------


def interleave(runners: dict[str, Callable[[], np.ndarray]], repeat: int) -> dict[str, tuple[list[float], np.ndarray]]:
    """Run every runner ``repeat`` times, round-robin in rotated orders, after WARMUP untimed
    rounds; the times and the estimates of the last run of each."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    estimates: dict[str, np.ndarray] = {}
    for _ in range(WARMUP):
        for run in runners.values():
            run()
    names = list(runners)
    for round_ in range(repeat):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            time.sleep(PAUSE)
            start = time.perf_counter()
            estimates[name] = runners[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (times[name], estimates[name]) for name in runners}


def rows_for(comparison: str, results, truth_name: str, notes: dict[str, str]) -> list[Row]:
    truth = results[truth_name][1]
    fastest = min(statistics.median(t) for name, (t, _) in results.items() if name != "mlefit")
    rows = []
    for name, (t, est) in results.items():
        med = statistics.median(t)
        agreement = rel_diff(est[: len(truth)], truth[: len(est)])
        rows.append(Row(comparison, name, med, med / fastest, agreement, name != "mlefit", notes.get(name, ""), t))
    return rows


# -- the comparisons ---------------------------------------------------------------------------------


def sklearn_glm(cls, X, y, solver):
    def run():
        m = cls(alpha=0.0, solver=solver, tol=1e-10, max_iter=10_000).fit(X, y)
        return np.concatenate([[m.intercept_], m.coef_])

    return quiet(run)


#: glum runs with its defaults, as in benchmarks/compare.py; its agreement column shows where they stop.
GLUM_NOTE = "glum's default gradient_tol"


def glum_glm(X, y, family):
    def run():
        import glum

        m = glum.GeneralizedLinearRegressor(family=family, link="log", alpha=0.0).fit(X, y)
        return np.concatenate([[m.intercept_], m.coef_])

    return quiet(run)


def bench_poisson(n: int, p: int, repeat: int) -> list[Row]:
    import statsmodels.api as sm
    from sklearn.linear_model import PoissonRegressor

    import mlefit

    X, y = draw("poisson", n, p)
    Xc = np.column_stack([np.ones(n), X])  # statsmodels' design, built outside its timing
    runners = {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="poisson").params,
        "statsmodels GLM Poisson (IRLS)": quiet(lambda: sm.GLM(y, Xc, family=sm.families.Poisson()).fit().params),
        "sklearn PoissonRegressor lbfgs": sklearn_glm(PoissonRegressor, X, y, "lbfgs"),
        "sklearn PoissonRegressor newton-cholesky": sklearn_glm(PoissonRegressor, X, y, "newton-cholesky"),
    }
    if have("glum"):
        runners["glum (IRLS)"] = glum_glm(X, y, "poisson")
    notes = {"mlefit": "with standard errors; target: ratio <= 0.5x", "glum (IRLS)": GLUM_NOTE}
    return rows_for(f"poisson n={n:,} p={p}", interleave(runners, repeat), "statsmodels GLM Poisson (IRLS)", notes)


def bench_negbin(n: int, p: int, repeat: int) -> list[Row]:
    from statsmodels.discrete.discrete_model import NegativeBinomial

    import mlefit

    X, y = draw("negbin", n, p)
    Xc = np.column_stack([np.ones(n), X])

    def statsmodels_nb2():
        return np.asarray(NegativeBinomial(y, Xc, loglike_method="nb2").fit(method="newton", disp=0, maxiter=100).params)

    runners = {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="negbin").params,
        "statsmodels NegativeBinomial nb2 (newton)": quiet(statsmodels_nb2),
    }
    notes = {"mlefit": "alpha estimated, with standard errors", "statsmodels NegativeBinomial nb2 (newton)": "alpha estimated"}
    if have("glum"):
        import glum

        alpha = float(quiet(statsmodels_nb2)()[-1])  # outside the timing
        runners["glum negative binomial, alpha fixed"] = glum_glm(X, y, glum.NegativeBinomialDistribution(theta=alpha))
        notes["glum negative binomial, alpha fixed"] = f"alpha held at statsmodels' estimate: coefficients only; {GLUM_NOTE}"
    return rows_for(f"negbin n={n:,} p={p}", interleave(runners, repeat), "statsmodels NegativeBinomial nb2 (newton)", notes)


def bench_gamma(n: int, p: int, repeat: int) -> list[Row]:
    import statsmodels.api as sm
    from sklearn.linear_model import GammaRegressor

    import mlefit

    X, y = draw("gamma", n, p)
    Xc = np.column_stack([np.ones(n), X])
    family = sm.families.Gamma(sm.families.links.Log())
    runners = {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="gamma").params,
        "statsmodels GLM Gamma log (IRLS)": quiet(lambda: sm.GLM(y, Xc, family=family).fit().params),
        "sklearn GammaRegressor lbfgs": sklearn_glm(GammaRegressor, X, y, "lbfgs"),
        "sklearn GammaRegressor newton-cholesky": sklearn_glm(GammaRegressor, X, y, "newton-cholesky"),
    }
    if have("glum"):
        runners["glum gamma (IRLS)"] = glum_glm(X, y, "gamma")
    notes = {"mlefit": "shape estimated by ML, with standard errors; the references: coefficients only",
             "glum gamma (IRLS)": GLUM_NOTE}
    return rows_for(f"gamma n={n:,} p={p}", interleave(runners, repeat), "statsmodels GLM Gamma log (IRLS)", notes)


BENCHES = {"poisson": bench_poisson, "negbin": bench_negbin, "gamma": bench_gamma}


def profile(family: str, n: int, p: int, top: int = 18) -> str:
    """cProfile of one mlefit fit (after an untimed one): the functions with the most cumulative
    and own time."""
    import mlefit

    X, y = draw(family, n, p)
    mlefit.fit(X=X, y=y, family=family)
    prof = cProfile.Profile()
    prof.enable()
    mlefit.fit(X=X, y=y, family=family)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- report ----------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, str]:
    import numpy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "load average (1, 5, 15 min) at start": load_average(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mlefit", "statsmodels", "scikit-learn", "glum", "numpy", "scipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(COMPARISONS), help=f"comma-separated subset of: {', '.join(COMPARISONS)}")
    parser.add_argument("--n", type=int, default=1_000_000, help="rows of every comparison (default 1,000,000)")
    parser.add_argument("--p", type=int, default=20, help="features (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool (median reported; default 3)")
    parser.add_argument("--quick", action="store_true", help="n=20,000, p=5, one run, no pauses: a smoke test")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of mlefit's fit of each family")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(only) - set(COMPARISONS)
    if unknown:
        parser.error(f"unknown comparison(s): {', '.join(sorted(unknown))}")
    n, p, repeat = (20_000, 5, 1) if args.quick else (args.n, args.p, args.repeat)
    if args.quick:
        global PAUSE
        PAUSE = 0.0

    info = machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    rows: list[Row] = []
    profiles: dict[str, str] = {}
    for comparison in only:
        start = time.perf_counter()
        rows += BENCHES[comparison](n, p, repeat)
        print(f"  {comparison}: {time.perf_counter() - start:.0f} s (load average {load_average()})",
              file=sys.stderr, flush=True)
        if args.profile:
            profiles[comparison] = profile(comparison, n, p)
    info["load average (1, 5, 15 min) at end"] = load_average()
    print(table(rows))
    print(f"load average (1, 5, 15 min): {info['load average (1, 5, 15 min) at start']} at start, "
          f"{info['load average (1, 5, 15 min) at end']} at end; {info['cores']} cores")
    for comparison, text in profiles.items():
        print(f"\ncProfile of mlefit.fit, {comparison} n={n:,} p={p} (own time):\n{text}")
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "versions": versions(), "n": n, "p": p, "repeat": repeat,
             "rows": [asdict(r) for r in rows], "profiles": profiles},
            indent=2,
        ) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
