"""Draw the simulated data of the text-model examples (docs/models.md) and tests.

    python tests/data/textmodels/make_data.py

* ``zip.csv``: 500 counts ``y`` from a zero-inflated Poisson with a covariate ``x`` (standard
  normal): with probability sigmoid(-0.6) a structural zero, else Poisson with mean
  exp(0.5 + 0.8 x); ``zero`` is 1 where ``y`` is 0.
* ``mixture.csv``: 400 values ``y`` from a two-component normal mixture, 35% N(-1, 0.6^2) and
  65% N(2, 1.1^2).

Values are written with 6 significant digits; the seeds make the files reproducible.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(20240611)
    n = 500
    x = rng.normal(size=n)
    structural = rng.random(n) < 1 / (1 + np.exp(0.6))
    y = np.where(structural, 0, rng.poisson(np.exp(0.5 + 0.8 * x)))
    with open(HERE / "zip.csv", "w") as fh:
        fh.write("y,x,zero\n")
        fh.writelines(f"{a},{b:.6g},{int(a == 0)}\n" for a, b in zip(y, x))

    rng = np.random.default_rng(20240612)
    n = 400
    first = rng.random(n) < 0.35
    y = np.where(first, rng.normal(-1.0, 0.6, n), rng.normal(2.0, 1.1, n))
    with open(HERE / "mixture.csv", "w") as fh:
        fh.write("y\n")
        fh.writelines(f"{v:.6g}\n" for v in y)


if __name__ == "__main__":
    main()
