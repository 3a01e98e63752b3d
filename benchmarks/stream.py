"""Streamed fits: peak memory as the CSV grows, and streamed against in-memory time.

    python benchmarks/stream.py --quick                  # 20k / 80k rows: a smoke test (seconds)
    python benchmarks/stream.py                          # 250k / 1M / 4M rows
    python benchmarks/stream.py --sizes 1e6,4e6,16e6     # the issue's sizes (GBs of disk, minutes)

Each size is a bernoulli CSV of 20 numeric features and the target (21 columns, about 190 bytes a
row), written once to a temporary folder. Every fit runs as
``mlefit fit FILE --family bernoulli --format json`` (with and without ``--stream``) in its own
process, ``--repeat`` times, the two alternating; its peak resident memory is the child's max RSS
from ``os.wait4``. Columns: rows, file MB, streamed peak MB, streamed seconds (median), and, for
the files that fit in memory, in-memory peak MB, in-memory seconds (median), the ratio of the
medians streamed / in memory (the issue asks for at most 1.25), and the largest relative
difference of the estimates. The load average is printed with every row: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MLEFIT = str(Path(sys.executable).with_name("mlefit"))
P = 20


def write_csv(path: Path, n: int, seed: int = 0, block: int = 500_000) -> None:
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1, 1, P)
    with open(path, "w") as f:
        f.write(",".join([f"x{j + 1}" for j in range(P)] + ["y"]) + "\n")
        for start in range(0, n, block):
            m = min(block, n - start)
            X = rng.normal(size=(m, P))
            y = (rng.random(m) < 1 / (1 + np.exp(-(0.3 + X @ beta)))).astype(int)
            np.savetxt(f, np.column_stack([X, y]), fmt=["%.6f"] * P + ["%d"], delimiter=",")


def run(args: list[str]) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MB) of this child alone (``os.wait4``), and its JSON output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([MLEFIT, *args, "--format", "json"], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(err.read())
        return seconds, usage.ru_maxrss / 1024, json.loads(out.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", help="comma-separated row counts (default 250k,1M,4M)")
    ap.add_argument("--in-memory-max", type=float, default=4e6, help="largest size also fitted in memory")
    ap.add_argument("--repeat", type=int, help="runs of each fit; the median time is shown (default 3, 1 with --quick)")
    ap.add_argument("--json", type=Path)
    opts = ap.parse_args()
    repeat = opts.repeat or (1 if opts.quick else 3)
    sizes = [20_000, 80_000] if opts.quick else [int(float(s)) for s in (opts.sizes or "250e3,1e6,4e6").split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'rows':>10} {'file MB':>8} {'stream MB':>10} {'stream s':>9} {'memory MB':>10} "
              f"{'memory s':>9} {'ratio':>6} {'max rel diff':>12}  load (1, 5 min)")
        for n in sorted(sizes):
            path = Path(tmp) / f"d{n}.csv"
            write_csv(path, n)
            size_mb = path.stat().st_size / 2**20
            in_memory = n <= opts.in_memory_max
            runs = {"stream": [], "memory": []}
            load = [os.getloadavg()[:2]]
            for _ in range(repeat):
                runs["stream"].append(run(["fit", str(path), "--family", "bernoulli", "--stream"]))
                if in_memory:
                    runs["memory"].append(run(["fit", str(path), "--family", "bernoulli"]))
            load.append(os.getloadavg()[:2])
            st_s = float(np.median([r[0] for r in runs["stream"]]))
            st = runs["stream"][0][2]
            row = {"rows": n, "file_mb": size_mb, "stream_peak_mb": max(r[1] for r in runs["stream"]),
                   "stream_seconds": st_s, "stream_runs": [r[0] for r in runs["stream"]],
                   "load_1min": max(l[0] for l in load), "load_5min": max(l[1] for l in load)}
            if in_memory:
                mem_s = float(np.median([r[0] for r in runs["memory"]]))
                mem = runs["memory"][0][2]
                a = np.array([p["estimate"] for p in st["parameters"]])
                b = np.array([p["estimate"] for p in mem["parameters"]])
                row.update(memory_peak_mb=max(r[1] for r in runs["memory"]), memory_seconds=mem_s,
                           memory_runs=[r[0] for r in runs["memory"]], ratio=st_s / mem_s,
                           max_rel_diff=float(np.max(np.abs(a - b) / np.abs(b))))
            rows.append(row)
            print(f"{n:>10} {size_mb:>8.0f} {row['stream_peak_mb']:>10.0f} {st_s:>9.2f} "
                  f"{row.get('memory_peak_mb', float('nan')):>10.0f} {row.get('memory_seconds', float('nan')):>9.2f} "
                  f"{row.get('ratio', float('nan')):>6.2f} {row.get('max_rel_diff', float('nan')):>12.1e}"
                  f"  {row['load_1min']:.1f}, {row['load_5min']:.1f}", flush=True)
            path.unlink()
    if opts.json:
        opts.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
