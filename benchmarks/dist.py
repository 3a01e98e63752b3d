"""``mlefit dist`` on a million-row column: every default distribution against one gamma fit.

    python benchmarks/dist.py                  # n = 1e6, the median of 3 interleaved rounds
    python benchmarks/dist.py --n 100000 --repeat 1
    python benchmarks/dist.py --csv            # also through the command line, on a CSV file

The column is drawn from a gamma distribution (shape 2.5, scale 3, seeded), so every continuous
distribution applies. Timed, on the same array in memory and interleaved (gamma, dist, gamma,
dist, ... after one untimed round):

- one gamma fit: ``mlefit.fit`` with an intercept only (the estimates, standard errors and the
  convergence verdict);
- ``mlefit.fit_distributions``: every default distribution fitted the same way, its parameters
  reparametrised, and its goodness-of-fit statistics (KS, Cramér-von Mises, Anderson-Darling) on
  the sorted column.

The issue's target: the second under 10 times the first. With ``--csv`` the two are also timed as
commands, ``mlefit fit FILE -f gamma -x ''`` against ``mlefit dist FILE``, each reading the CSV
(the time a user waits). The load average is printed with the table: the machine's other work
inflates every time, the ratios less so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SEED = 20261129
PAUSE = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (default 1e6)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (median reported)")
    parser.add_argument("--csv", action="store_true", help="also time the commands on a CSV file")
    args = parser.parse_args()

    import mlefit

    y = np.random.default_rng(SEED).gamma(2.5, 3.0, args.n)
    empty = np.empty((args.n, 0))

    def gamma_fit():
        return mlefit.fit(X=empty, y=y, family="gamma")

    def all_fits():
        return mlefit.fit_distributions(y)

    times: dict[str, list[float]] = {"gamma": [], "dist": []}
    for round_ in range(args.repeat + 1):
        for name, run in (("gamma", gamma_fit), ("dist", all_fits)):
            time.sleep(PAUSE)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = run()
            if round_:
                times[name].append(time.perf_counter() - start)
    fitted = [f for f in out.fits if f.status == "fitted"]
    gamma = statistics.median(times["gamma"])
    every = statistics.median(times["dist"])
    print(f"mlefit dist benchmark: n = {args.n:,}, {args.repeat} round(s), load average {os.getloadavg()[0]:.1f}")
    print(f"distributions fitted: {len(fitted)} ({', '.join(f.name for f in fitted)}), "
          f"{sum(f.converged for f in fitted)} converged")
    print(f"{'one gamma fit (mlefit.fit)':42s} {gamma:8.3f} s")
    print(f"{'every default distribution (fit_distributions)':42s} {every:8.3f} s   ratio {every / gamma:5.2f}")
    per = _per_distribution(mlefit, y)
    for name, seconds in per:
        print(f"  {name:12s} {seconds:7.3f} s  ({seconds / gamma:4.2f} gamma fits)")
    if args.csv:
        _commands(y)


def _per_distribution(mlefit, y) -> list[tuple[str, float]]:
    """Each default distribution alone (its fit and statistics), for the breakdown."""
    names = [f.name for f in mlefit.fit_distributions(y[:1000]).fits if f.status == "fitted"]
    out = []
    for name in names:
        start = time.perf_counter()
        mlefit.fit_distributions(y, families=name)
        out.append((name, time.perf_counter() - start))
    return out


def _commands(y: np.ndarray) -> None:
    mlefit = str(Path(sys.executable).with_name("mlefit"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "column.csv"
        path.write_text("y\n" + "\n".join(map(repr, y.tolist())) + "\n")
        timings = {}
        for label, cmd in (
            ("mlefit fit FILE -f gamma -x ''", [mlefit, "fit", str(path), "-f", "gamma", "-x", "", "--quiet"]),
            ("mlefit dist FILE", [mlefit, "dist", str(path)]),
        ):
            time.sleep(PAUSE)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            timings[label] = time.perf_counter() - start
        base = timings["mlefit fit FILE -f gamma -x ''"]
        for label, seconds in timings.items():
            print(f"{label:42s} {seconds:8.3f} s   ratio {seconds / base:5.2f}")


if __name__ == "__main__":
    main()
