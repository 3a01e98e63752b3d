"""Text models: compile time, and the compiled NLL + gradient + Hessian against hand-written numpy.

    python benchmarks/textmodel.py            # 1,000,000 rows, 5 features
    python benchmarks/textmodel.py --quick    # 100,000 rows: a smoke run
    python benchmarks/textmodel.py --fit-only # whole fits: a poisson model against the family

Compile: seconds to import sympy, to parse + derive + compile the first model, a second model
(sympy already imported) and a cache hit (the same text again).

Evaluation (order 2: NLL, gradient and Hessian summed over the rows), the best of ``--repeat``
runs, each against the same sums written by hand in numpy on a design matrix built beforehand
(intercept column included, the best case for the hand-written code), run on all rows at once
and in blocks of the text model's block size; the ratio is model / the faster of the two (the
issue aims at about 2 or less). Everything runs on one thread, BLAS included:

* poisson, ``rate = exp(b0 + b1*x1 + ... + b5*x5)``: hand-written ``eta = X @ b``, ``mu = exp(eta)``,
  ``sum(mu - y*eta + gammaln(y+1))``, ``X.T @ (mu - y)``, ``X.T @ (mu[:, None] * X)``;
* normal, ``mean = ...``, ``sd = exp(s)``: hand-written likewise;
* bernoulli, ``prob = sigmoid(...)``: against mlefit's own bernoulli family's ``evaluate`` on the
  same blocks of a column-major design (as a fit calls it, without its threads).

Fit (``--fit``, or ``--fit-only``): ``mlefit.fit(frame, model="y ~ poisson(rate = exp(b0 + b1*x1 +
... + b5*x5))")`` against ``mlefit.fit(frame, "poisson")`` on the same table in the same run
(the issue's target: the model at most 3x the family), each the best of ``--repeat`` fits after
one first fit of the model, which derives and compiles it (its ``compile_seconds`` are printed;
later fits find it in the process's cache). Both fits read the same DataFrame the same way and
run on the engine's threads.

The load average is printed: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

P = 5


def best_seconds(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs (as timeit): on a shared machine the slower runs measure
    the other processes."""
    fn()  # warm up (first touch of temporaries)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def linear(prefix: str = "b") -> str:
    return " + ".join([f"{prefix}0"] + [f"{prefix}{j}*x{j}" for j in range(1, P + 1)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="100,000 rows, 3 repeats")
    ap.add_argument("--fit", action="store_true", help="also compare whole fits: a poisson model against the family")
    ap.add_argument("--fit-only", action="store_true", help="only the fit comparison")
    a = ap.parse_args()
    n, repeat = (100_000, 3) if a.quick else (int(a.rows), a.repeat)
    if a.fit_only:
        fit_comparison(n, repeat)
        return

    start = time.perf_counter()
    import sympy  # noqa: F401

    sympy_import = time.perf_counter() - start
    from scipy.special import expit, gammaln

    from mlefit.families import get_family
    from mlefit.engines.base import add_up
    from mlefit.textmodel import compile_model
    from mlefit.textmodel.compiled import BLOCK_ROWS

    columns = ["y"] + [f"x{j}" for j in range(1, P + 1)]
    poisson = compile_model(f"y ~ poisson(rate = exp({linear()}))", columns=columns)
    bernoulli = compile_model(f"y ~ bernoulli(prob = sigmoid({linear()}))", columns=columns)
    normal = compile_model(f"y ~ normal(mean = {linear()}, sd = exp(s))", columns=columns)
    again = time.perf_counter()
    compile_model(f"y ~ poisson(rate = exp({linear()}))", columns=columns)
    hit = time.perf_counter() - again

    print(f"load average {os.getloadavg()[0]:.2f}; {n:,} rows, {P} features + intercept; python {sys.version.split()[0]}")
    print(f"compile: import sympy {sympy_import:.2f} s; poisson {poisson.compile_seconds:.3f} s, "
          f"bernoulli {bernoulli.compile_seconds:.3f} s, normal {normal.compile_seconds:.3f} s; cache hit {hit * 1e3:.2f} ms")

    rng = np.random.default_rng(0)
    Xf = rng.normal(size=(n, P)) * 0.3
    X = np.column_stack([np.ones(n), Xf])
    beta = np.linspace(-0.5, 0.5, P + 1)
    eta = X @ beta
    y_count = rng.poisson(np.exp(eta)).astype(float)
    y_binary = (rng.random(n) < expit(eta)).astype(float)
    y_real = eta + rng.normal(size=n)

    def hand_poisson(X, y):
        e = X @ beta
        mu = np.exp(e)
        nll = np.sum(mu - y * e + gammaln(y + 1))
        return nll, X.T @ (mu - y), X.T @ (mu[:, None] * X)

    def hand_normal(X, y):
        p, s = beta, 0.1
        r = y - X @ p
        inv = np.exp(-2 * s)
        m = y.size
        nll = m * (s + 0.5 * np.log(2 * np.pi)) + 0.5 * inv * (r @ r)
        g = np.concatenate([-inv * (X.T @ r), [m - inv * (r @ r)]])
        H = np.zeros((P + 2, P + 2))
        H[:-1, :-1] = inv * (X.T @ X)
        H[:-1, -1] = H[-1, :-1] = 2 * inv * (X.T @ r)
        H[-1, -1] = 2 * inv * (r @ r)
        return nll, g, H

    family = get_family("bernoulli")
    XF = np.asfortranarray(X)

    def blocks(fn, X, y):
        def run():
            parts = [fn(X[s:s + BLOCK_ROWS], y[s:s + BLOCK_ROWS]) for s in range(0, n, BLOCK_ROWS)]
            return tuple(sum(part[i] for part in parts) for i in range(3))
        return run

    def family_blocks(X, y):
        b = add_up(family.evaluate(beta, X[s:s + BLOCK_ROWS], y[s:s + BLOCK_ROWS], order=2) for s in range(0, n, BLOCK_ROWS))
        return b.nll, b.grad, b.hess

    rows = []
    for label, model, y, params, references in [
        ("poisson", poisson, y_count, beta, [
            ("hand-written numpy, all rows", lambda: hand_poisson(X, y_count)),
            ("hand-written numpy, blocks", blocks(hand_poisson, X, y_count)),
        ]),
        ("normal", normal, y_real, np.append(beta, 0.1), [
            ("hand-written numpy, all rows", lambda: hand_normal(X, y_real)),
            ("hand-written numpy, blocks", blocks(hand_normal, X, y_real)),
        ]),
        ("bernoulli", bernoulli, y_binary, beta, [
            ("mlefit bernoulli family, blocks", lambda: family_blocks(XF, y_binary)),
        ]),
    ]:
        D = np.column_stack([y, Xf])
        got = model.evaluate(params, D)
        t_model = best_seconds(lambda: model.evaluate(params, D), repeat)
        best = None
        for ref_label, reference in references:
            want = reference()
            agree = max(
                abs(got[0] - want[0]) / abs(want[0]),
                np.max(np.abs(got[1] - want[1])) / np.max(np.abs(want[1])),
                np.max(np.abs(got[2] - want[2])) / np.max(np.abs(want[2])),
            )
            t_ref = best_seconds(reference, repeat)
            print(f"  {label}: {ref_label} {t_ref:.4f} s (largest relative difference {agree:.1e})")
            if best is None or t_ref < best[0]:
                best = (t_ref, ref_label)
        rows.append((label, t_model, best[0], best[1]))
    print(f"{'model':10s} {'text model s':>13s} {'reference s':>12s} {'ratio':>6s}  reference (the faster)")
    for label, t_model, t_ref, ref_label in rows:
        print(f"{label:10s} {t_model:13.4f} {t_ref:12.4f} {t_model / t_ref:6.2f}  {ref_label}")
    if a.fit:
        fit_comparison(n, repeat)


def fit_comparison(n: int, repeat: int) -> None:
    """A whole fit of a poisson model written as text against the poisson family (see the module
    docstring)."""
    import pandas as pd

    import mlefit
    from mlefit.textmodel import clear_cache

    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, P)) * 0.3
    beta = np.linspace(-0.5, 0.5, P + 1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, P + 1)])
    frame["y"] = rng.poisson(np.exp(beta[0] + X @ beta[1:]))
    text = f"y ~ poisson(rate = exp({linear()}))"
    load = os.getloadavg()[0]
    mlefit.fit(frame, "poisson", target="y")  # warm up: the imports every fit needs
    start = time.perf_counter()
    import sympy  # noqa: F401

    t_sympy = time.perf_counter() - start
    clear_cache()
    start = time.perf_counter()
    first = mlefit.fit(frame, model=text)
    t_first = time.perf_counter() - start
    family_times, model_times = [], []
    for _ in range(repeat):  # alternated, so a change of the machine's load hits both
        start = time.perf_counter()
        family = mlefit.fit(frame, "poisson", target="y")
        family_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        model = mlefit.fit(frame, model=text)
        model_times.append(time.perf_counter() - start)
    agree = max(
        float(np.max(np.abs(model.params - family.params) / np.abs(family.params))),
        float(np.max(np.abs(model.se - family.se) / family.se)),
    )
    t_family, t_model = min(family_times), min(model_times)
    print(f"fit: load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; {n:,} rows, {P} features; "
          f"best of {repeat}")
    print(f"  first model fit {t_first:.3f} s, of which derivation and compilation {first.compile_seconds:.3f} s "
          f"(importing sympy before it: {t_sympy:.3f} s)")
    print(f"  poisson family  {t_family:.3f} s ({family.n_iter} iterations)")
    print(f"  poisson model   {t_model:.3f} s ({model.n_iter} iterations), compiled text from the cache")
    print(f"  ratio model / family {t_model / t_family:.2f} (first fit, compilation included: "
          f"{t_first / t_family:.2f}); largest relative difference of estimates and standard errors {agree:.1e}")

if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    # One BLAS thread, as a fit's row blocks run: on a busy machine a second BLAS thread makes
    # small matrix-vector products erratic (tens of ms), whoever calls them.
    with threadpool_limits(1, user_api="blas"):
        main()
