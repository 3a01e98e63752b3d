"""mlefit side by side with statsmodels, scikit-learn and glum, on the same data, in one process.

Run it as ``make bench`` (which installs the ``bench`` extra) or directly::

    python benchmarks/compare.py                 # the full comparison (a few minutes)
    python benchmarks/compare.py --quick         # tiny sizes, one repeat: a smoke test
    python benchmarks/compare.py --only bernoulli,startup --repeat 5 --json bench.json

Every comparison draws its data from one seeded generator, then times each tool on the same arrays,
interleaved (tool A, tool B, ..., tool A, tool B, ...) so that a burst of load on the machine hits
every tool alike (each round in a rotated order, after a short pause), and reports the median of
``--repeat`` runs after one untimed round (imports and first use of memory out of the way for
every tool). mlefit's time includes its standard
errors (the whole ``mlefit.fit``); the references' need not. Command-line children (the CSV end to
end, start-up) run with their bytecode cached as an installed package has it (:func:`child_env`).

Columns of the table:
- seconds: median wall time;
- ratio: the tool's time / the fastest reference's time (the issue's targets are on mlefit's row;
  in start-up, ``mlefit --help`` is against ``python -c 'import typer'``, the fit against statsmodels);
- agreement: max over the estimates of |estimate - statsmodels| / |statsmodels|.

Comparisons: bernoulli (n=1e6, p=20), categorical (n=2e5, p=20, K=5), gaussian (n=1e6, p=20), wide
bernoulli designs (n=1e5 p=200, n=2e4 p=500, n=1e4 p=1000), categorical with many parameters (n=1e5
p=50 K=10, n=5e4 p=20 K=30), the command line end to end on a 1e6-row CSV of 21 numeric columns
(with its peak memory against the float64 design matrix), and start-up (``mlefit --help`` against
``python -c "import typer"``; a 1,000-row fit against a statsmodels script). In the wide and
many-class comparisons statsmodels runs once, untimed for the ratios, as the reference of the
agreement (``--quick`` divides their column counts by 10 and keeps 20 rows per parameter).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SEED = 20240611
COMPARISONS = ("bernoulli", "categorical", "gaussian", "wide", "classes", "csv", "startup")
#: The wide bernoulli designs (n, p) and the many-class categorical ones (n, p, K), at --scale 1.
WIDE = ((100_000, 200), (20_000, 500), (10_000, 1_000))
CLASSES = ((100_000, 50, 10), (50_000, 20, 30))
BIN = Path(sys.executable).parent
MLEFIT = str(BIN / "mlefit")


def have(module: str) -> bool:
    """Whether an optional reference library is installed (glum and pyarrow come with the bench
    extra; without them their rows are left out and pandas reads the CSV)."""
    return importlib.util.find_spec(module) is not None


@dataclass
class Row:
    comparison: str
    tool: str
    seconds: float
    ratio: float | None = None
    agreement: float | None = None
    reference: bool = True
    note: str = ""
    runs: list[float] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------------


def design(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    """Correlated standard-normal features (a mild, realistic condition number)."""
    Z = rng.standard_normal((n, p))
    Z[:, 1:] += 0.3 * Z[:, :-1]
    return Z


def coef_sd(p: int) -> float:
    """Coefficients' spread: 0.3 at 20 columns, shrinking as 1/sqrt(p) beyond, so that the linear
    predictor spreads alike at any width (standard deviation about 1.4; with 0.3 at 1,000 columns
    it would be about 10, and 10,000 rows would be separable)."""
    return 0.3 * min(1.0, (20 / p) ** 0.5)


def bernoulli_data(rng, n, p):
    X = design(rng, n, p)
    beta = rng.normal(0.0, coef_sd(p), p)
    eta = 0.2 + X @ beta
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    return X, y


def categorical_data(rng, n, p, k):
    X = design(rng, n, p)
    B = rng.normal(0.0, coef_sd(p), (p, k - 1))
    eta = np.column_stack([np.zeros(n), 0.1 + X @ B])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (P.cumsum(axis=1)[:, :-1] < rng.random((n, 1))).sum(axis=1)
    return X, y


def gaussian_data(rng, n, p):
    X = design(rng, n, p)
    beta = rng.normal(0.0, 1.0, p)
    y = 1.0 + X @ beta + rng.standard_normal(n)
    return X, y


# -- timing ------------------------------------------------------------------------------------------


#: Untimed rounds first: every tool has imported its modules and touched its memory once before
#: the clock runs (mlefit imports scipy.linalg inside its first fit; the references are imported
#: at the top of each comparison).
WARMUP = 1
#: Seconds of quiet before each timed run (0 with --quick).
PAUSE = 0.5


def interleave(runners: dict[str, Callable[[], np.ndarray]], repeat: int) -> dict[str, tuple[list[float], np.ndarray]]:
    """Run every runner ``repeat`` times, round-robin, after WARMUP untimed rounds; the estimates
    of the last run of each."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    estimates: dict[str, np.ndarray] = {}
    for _ in range(WARMUP):
        for run in runners.values():
            run()
    names = list(runners)
    for round_ in range(repeat):
        # Each round in a rotated order, with a pause before each run: a library's worker
        # threads spin for a while after it returns (OpenMP, OpenBLAS), and would otherwise slow
        # whichever tool always comes next.
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            time.sleep(PAUSE)
            start = time.perf_counter()
            estimates[name] = runners[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (times[name], estimates[name]) for name in runners}


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)))


def rows_for(comparison: str, results, truth_name: str, note: str = "", truth: tuple[float, np.ndarray] | None = None) -> list[Row]:
    """A row per tool, ratios to the fastest reference, agreement with ``results[truth_name]`` (or,
    given ``truth``: the seconds and estimates of one untimed run of ``truth_name``, which gets a
    row of its own and is left out of the fastest)."""
    truth_est = results[truth_name][1] if truth is None else truth[1]
    ref_times = [statistics.median(t) for name, (t, _) in results.items() if name != "mlefit"]
    fastest = min(ref_times)
    rows = []
    for name, (t, est) in results.items():
        med = statistics.median(t)
        rows.append(
            Row(comparison, name, med, med / fastest, rel_diff(est, truth_est), reference=name != "mlefit",
                note=note if name == "mlefit" else "", runs=t)
        )
    if truth is not None:
        rows.append(Row(comparison, truth_name, truth[0], truth[0] / fastest, 0.0,
                        note="one run after the others, the agreement's reference", runs=[truth[0]]))
    return rows


def quiet(fn):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    return run


# -- the in-memory comparisons ---------------------------------------------------------------------


def bernoulli_runners(X: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """mlefit and the fast references (scikit-learn's two solvers, glum) on one bernoulli data set."""
    from sklearn.linear_model import LogisticRegression

    import mlefit

    def sk(solver):
        def run():
            m = LogisticRegression(C=np.inf, solver=solver, tol=1e-8, max_iter=10_000).fit(X, y)
            return np.concatenate([m.intercept_, m.coef_.ravel()])

        return quiet(run)

    def glm():
        import glum

        m = glum.GeneralizedLinearRegressor(family="binomial", alpha=0).fit(X, y)
        return np.concatenate([[m.intercept_], m.coef_])

    runners = {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="bernoulli").params,
        "sklearn lbfgs": sk("lbfgs"),
        "sklearn newton-cholesky": sk("newton-cholesky"),
    }
    if have("glum"):
        runners["glum irls"] = quiet(glm)
    return runners


def statsmodels_logit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    import statsmodels.api as sm

    Xc = np.column_stack([np.ones(len(y)), X])
    return np.asarray(quiet(lambda: sm.Logit(y, Xc).fit(method="newton", disp=0).params)())


def once(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    """Seconds and result of one run (after a pause)."""
    time.sleep(PAUSE)
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_bernoulli(n: int, p: int, repeat: int) -> list[Row]:
    import statsmodels.api as sm

    X, y = bernoulli_data(np.random.default_rng(SEED), n, p)
    Xc = np.column_stack([np.ones(n), X])  # statsmodels' design, built outside its timing
    runners = bernoulli_runners(X, y)
    runners = {
        "mlefit": runners.pop("mlefit"),
        "statsmodels Logit newton": quiet(lambda: sm.Logit(y, Xc).fit(method="newton", disp=0).params),
    } | runners
    return rows_for(f"bernoulli n={n:,} p={p}", interleave(runners, repeat), "statsmodels Logit newton")


def bench_wide(n: int, p: int, repeat: int) -> list[Row]:
    """A wide bernoulli design: the fast references timed, statsmodels run once for the agreement."""
    X, y = bernoulli_data(np.random.default_rng(SEED + 5 + p), n, p)
    results = interleave(bernoulli_runners(X, y), repeat)
    truth = once(lambda: statsmodels_logit(X, y))
    return rows_for(f"bernoulli n={n:,} p={p}", results, "statsmodels Logit newton", truth=truth)


def categorical_runners(X: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """mlefit and scikit-learn's two multinomial solvers on one categorical data set (glum has no
    multinomial family)."""
    from sklearn.linear_model import LogisticRegression

    import mlefit

    def sk(solver):
        def run():
            m = LogisticRegression(C=np.inf, solver=solver, tol=1e-8, max_iter=10_000).fit(X, y)
            W = np.column_stack([m.intercept_, m.coef_])  # (K, p+1), symmetric parametrisation
            return (W[1:] - W[0]).ravel()  # reference class 0, class-major like mlefit

        return quiet(run)

    return {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="categorical").params,
        "sklearn lbfgs": sk("lbfgs"),
        "sklearn newton-cholesky": sk("newton-cholesky"),
    }


def statsmodels_mnlogit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    import statsmodels.api as sm

    Xc = np.column_stack([np.ones(len(y)), X])
    # MNLogit's params are (p+1, K-1); mlefit's layout is class-major.
    return np.asarray(quiet(lambda: sm.MNLogit(y, Xc).fit(method="newton", disp=0).params)()).T.ravel()


def bench_categorical(n: int, p: int, k: int, repeat: int) -> list[Row]:
    import statsmodels.api as sm

    X, y = categorical_data(np.random.default_rng(SEED + 1), n, p, k)
    Xc = np.column_stack([np.ones(n), X])
    runners = categorical_runners(X, y)
    runners = {
        "mlefit": runners.pop("mlefit"),
        # MNLogit's params are (p+1, K-1); mlefit's layout is class-major.
        "statsmodels MNLogit newton": quiet(lambda: np.asarray(sm.MNLogit(y, Xc).fit(method="newton", disp=0).params).T.ravel()),
    } | runners
    return rows_for(f"categorical n={n:,} p={p} K={k}", interleave(runners, repeat), "statsmodels MNLogit newton")


def bench_classes(n: int, p: int, k: int, repeat: int) -> list[Row]:
    """Categorical with many parameters: the fast references timed, statsmodels run once."""
    X, y = categorical_data(np.random.default_rng(SEED + 6 + p + k), n, p, k)
    results = interleave(categorical_runners(X, y), repeat)
    truth = once(lambda: statsmodels_mnlogit(X, y))
    return rows_for(f"categorical n={n:,} p={p} K={k}", results, "statsmodels MNLogit newton", truth=truth)


def bench_gaussian(n: int, p: int, repeat: int) -> list[Row]:
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression

    import mlefit

    X, y = gaussian_data(np.random.default_rng(SEED + 2), n, p)
    Xc = np.column_stack([np.ones(n), X])

    def sm_ols():
        r = sm.OLS(y, Xc).fit()
        return np.append(r.params, np.sqrt(r.ssr / n))  # sigma's MLE, as mlefit reports it

    def with_sigma(coef):
        resid = y - Xc @ coef
        return np.append(coef, np.sqrt(resid @ resid / n))

    def sk():
        m = LinearRegression().fit(X, y)
        return with_sigma(np.concatenate([[m.intercept_], m.coef_]))

    def glm():
        import glum

        m = glum.GeneralizedLinearRegressor(family="normal", alpha=0).fit(X, y)
        return with_sigma(np.concatenate([[m.intercept_], m.coef_]))

    runners = {
        "mlefit": lambda: mlefit.fit(X=X, y=y, family="gaussian").params,
        "statsmodels OLS": quiet(sm_ols),
        "sklearn LinearRegression": quiet(sk),
    }
    if have("glum"):
        runners["glum"] = quiet(glm)
    rows = rows_for(f"gaussian n={n:,} p={p}", interleave(runners, repeat), "statsmodels OLS")
    rows[0].note = "sklearn and glum: sigma from their residuals, outside their timing"
    return rows


# -- the command line ------------------------------------------------------------------------------


# A small launcher measures the child's peak RSS: a child forked from this (large) process would
# count this process's pages before its exec.
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss * 1024}")
"""


#: The children's environment (:func:`child_env`); None: this process's.
CHILD_ENV: dict[str, str] | None = None


def child_env(workdir: Path) -> dict[str, str]:
    """This process's environment, with bytecode cached under ``workdir`` (``PYTHONPYCACHEPREFIX``)
    and written even where ``PYTHONDONTWRITEBYTECODE`` is set: every command-line child starts as
    from an installed package, whose modules pip compiles at install time (the untimed first round
    writes the cache), rather than compiling mlefit's modules on each run (0.04-0.08 s here)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def run_child(args: list[str], capture: bool = False) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS in bytes and (when ``capture``) the stdout of one child process."""
    with tempfile.NamedTemporaryFile("r", suffix=".rusage") as report:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, *args],
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV,
        )
        seconds = time.perf_counter() - start
        code, rss = report.read().split()
    if proc.returncode or int(code):
        raise RuntimeError(f"{' '.join(args)} exited {code}: {proc.stderr.decode()[-2000:]}")
    return seconds, float(rss), proc.stdout if capture else b""


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    """Columns y, x1..xp; every float written so that it reads back exactly."""
    columns = {"y": y.astype(np.int64)} | {f"x{j + 1}": X[:, j] for j in range(X.shape[1])}
    if have("pyarrow"):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        pacsv.write_csv(pa.table(columns), path)
    else:
        import pandas as pd

        pd.DataFrame(columns).to_csv(path, index=False, float_format="%.17g")


def read_reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The fastest reader at hand, every column typed float64, to one float64 array: pyarrow's
    CSV reader, or pandas' C engine without pyarrow."""
    if have("pyarrow"):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(path)
        table = table.cast(pa.schema([(name, pa.float64()) for name in table.column_names]))
        X = np.empty((table.num_rows, table.num_columns - 1), order="F")
        for j, name in enumerate(table.column_names[1:]):
            X[:, j] = table.column(name).to_numpy()
        return X, table.column("y").to_numpy()
    import pandas as pd

    frame = pd.read_csv(path, dtype=np.float64, engine="c")
    return frame.drop(columns="y").to_numpy(), frame["y"].to_numpy()


def bench_csv(n: int, p: int, repeat: int, workdir: Path) -> list[Row]:
    import statsmodels.api as sm

    import mlefit

    X, y = bernoulli_data(np.random.default_rng(SEED + 3), n, p)
    path = workdir / f"bernoulli_{n}.csv"
    write_csv(path, X, y)
    del X, y
    size_mb = path.stat().st_size / 1e6

    def cli():
        seconds, rss, out = run_child([MLEFIT, "fit", str(path), "--family", "bernoulli", "--format", "json"], capture=True)
        cli.rss.append(rss)
        cli.out = out
        return seconds

    cli.rss = []

    def reference():
        start = time.perf_counter()
        Xr, yr = read_reference(path)
        read = time.perf_counter() - start
        fit_start = time.perf_counter()
        reference.params = mlefit.fit(X=Xr, y=yr, family="bernoulli").params
        reference.parts.append((read, time.perf_counter() - fit_start))
        return time.perf_counter() - start

    reference.parts = []
    reader = "pyarrow" if have("pyarrow") else "pandas"
    ref_name = f"{reader} read + mlefit.fit"
    times = {"mlefit CLI": [], ref_name: []}
    for _ in range(WARMUP):
        cli(), reference()
    for _ in range(repeat):
        time.sleep(PAUSE)
        times["mlefit CLI"].append(cli())
        time.sleep(PAUSE)
        times[ref_name].append(reference())

    cli_params = np.array([row["estimate"] for row in json.loads(cli.out)["parameters"]])
    cli.rss = cli.rss[WARMUP:]
    Xr, yr = read_reference(path)
    truth = np.asarray(sm.Logit(yr, np.column_stack([np.ones(len(yr)), Xr])).fit(method="newton", disp=0).params)
    design_bytes = Xr.shape[0] * (Xr.shape[1] + 1) * 8.0
    del Xr, yr
    peak = max(cli.rss)
    parts = reference.parts[WARMUP:]
    read_med = statistics.median(r for r, _ in parts)
    fit_med = statistics.median(f for _, f in parts)
    ref_med = statistics.median(times[ref_name])
    cli_med = statistics.median(times["mlefit CLI"])
    name = f"CSV end to end n={n:,}, {p + 1} columns ({size_mb:.0f} MB)"
    return [
        Row(name, "mlefit CLI", cli_med, cli_med / ref_med, rel_diff(cli_params, truth), reference=False,
            note=f"peak RSS {peak / 1e6:.0f} MB = {peak / design_bytes:.2f}x the float64 design matrix "
                 f"({design_bytes / 1e6:.0f} MB)", runs=times["mlefit CLI"]),
        Row(name, ref_name, ref_med, 1.0, rel_diff(reference.params, truth),
            note=f"read {read_med:.2f} s + fit {fit_med:.2f} s", runs=times[ref_name]),
    ]


STATSMODELS_SCRIPT = """
import sys
import pandas as pd
import statsmodels.api as sm
frame = pd.read_csv(sys.argv[1])
X = sm.add_constant(frame.drop(columns="y"))
print(sm.Logit(frame["y"], X).fit(disp=0).summary())
"""


#: The start-up baseline: a Python process that imports typer and nothing else.
TYPER_BASELINE = "python -c 'import typer'"


def bench_startup(repeat: int, workdir: Path) -> list[Row]:
    X, y = bernoulli_data(np.random.default_rng(SEED + 4), 1000, 20)
    path = workdir / "sample_1000.csv"
    write_csv(path, X, y)
    script = workdir / "statsmodels_fit.py"
    script.write_text(STATSMODELS_SCRIPT)
    runners = {
        # the floor for any Typer command line: the interpreter and typer itself
        TYPER_BASELINE: [sys.executable, "-c", "import typer"],
        "mlefit --help": [MLEFIT, "--help"],
        "mlefit fit (1,000 rows)": [MLEFIT, "fit", str(path), "--family", "bernoulli"],
        "statsmodels script (1,000 rows)": [sys.executable, str(script), str(path)],
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(WARMUP):
        for args in runners.values():
            subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=CHILD_ENV)
    for _ in range(repeat):
        for name, args in runners.items():
            time.sleep(PAUSE)
            start = time.perf_counter()
            subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=CHILD_ENV)
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    sm_time = med["statsmodels script (1,000 rows)"]
    typer_time = med[TYPER_BASELINE]
    return [
        Row("start-up", TYPER_BASELINE, typer_time, 1.0, None, True, "the baseline of mlefit --help",
            runs=times[TYPER_BASELINE]),
        Row("start-up", "mlefit --help", med["mlefit --help"], med["mlefit --help"] / typer_time, None, False,
            "target < 0.25 s and <= 1.5x python -c 'import typer'", runs=times["mlefit --help"]),
        Row("start-up", "mlefit fit (1,000 rows)", med["mlefit fit (1,000 rows)"],
            med["mlefit fit (1,000 rows)"] / sm_time, None, False, "target < 0.5 s and <= 0.25x",
            runs=times["mlefit fit (1,000 rows)"]),
        Row("start-up", "statsmodels script (1,000 rows)", sm_time, 1.0, None, True,
            runs=times["statsmodels script (1,000 rows)"]),
    ]


# -- report ----------------------------------------------------------------------------------------


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
    blas = "unknown"
    try:
        config = numpy.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001 (numpy < 2 has no dict mode)
        pass
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "blas": blas,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in load),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mlefit", "statsmodels", "scikit-learn", "glum", "pyarrow", "pandas", "scipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def table(rows: list[Row]) -> str:
    header = ("comparison", "tool", "seconds", "ratio", "agreement", "note")
    cells = [header]
    for r in rows:
        cells.append((
            r.comparison, r.tool, f"{r.seconds:.3f}",
            "" if r.ratio is None else f"{r.ratio:.2f}x",
            "" if r.agreement is None else f"{r.agreement:.1e}",
            r.note,
        ))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for i, c in enumerate(cells):
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(COMPARISONS),
                        help=f"comma-separated subset of: {', '.join(COMPARISONS)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (median reported; default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every n by this (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one run: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(only) - set(COMPARISONS)
    if unknown:
        parser.error(f"unknown comparison(s): {', '.join(sorted(unknown))}")
    scale, repeat = (0.002, 1) if args.quick else (args.scale, args.repeat)
    if args.quick:
        global PAUSE
        PAUSE = 0.0

    def n(base: int, n_params: int = 0) -> int:
        # --quick: at least 20 rows per parameter, so the tiny wide fits have an MLE
        return max(int(base * scale), 200, 20 * n_params if args.quick else 0)

    def cols(p: int) -> int:
        return max(p // 10, 2) if args.quick else p

    info = machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    rows: list[Row] = []
    global CHILD_ENV
    with tempfile.TemporaryDirectory(prefix="mlefit-bench-") as tmp:
        CHILD_ENV = child_env(Path(tmp))
        for comparison in only:
            start = time.perf_counter()
            if comparison == "bernoulli":
                rows += bench_bernoulli(n(1_000_000), 20, repeat)
            elif comparison == "categorical":
                rows += bench_categorical(n(200_000), 20, 5, repeat)
            elif comparison == "gaussian":
                rows += bench_gaussian(n(1_000_000), 20, repeat)
            elif comparison == "wide":
                for size, p in WIDE:
                    rows += bench_wide(n(size, cols(p) + 1), cols(p), repeat)
                    print(f"    p={p}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            elif comparison == "classes":
                for size, p, k in CLASSES:
                    rows += bench_classes(n(size, (cols(p) + 1) * (k - 1)), cols(p), k, repeat)
                    print(f"    p={p} K={k}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            elif comparison == "csv":
                rows += bench_csv(n(1_000_000), 20, repeat, Path(tmp))
            elif comparison == "startup":
                rows += bench_startup(repeat, Path(tmp))
            print(f"  {comparison}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    info["load average (1, 5, 15 min) at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "versions": versions(), "repeat": repeat, "rows": [asdict(r) for r in rows]},
            indent=2,
        ) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
