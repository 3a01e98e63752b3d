"""`fit --plot` and plot_recovery: real PNG files of the expected size; a clear message without
matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.image import imread

import mlefit
from mlefit.errors import UsageError
from mlefit.plot import DPI, SIZE, plot_recovery, plot_trace

from conftest import SAMPLES

ADMISSIONS = SAMPLES / "admissions.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_PIXELS = (round(SIZE[1] * DPI), round(SIZE[0] * DPI))  # (height, width) = (450, 1000)


def read_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.shape[:2] == EXPECTED_PIXELS
    return image


def test_fit_plot_writes_a_png_of_the_expected_size(invoke, tmp_path):
    out = tmp_path / "trace.png"
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--plot", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    image = read_png(out)
    # something was drawn: far from a blank canvas, with coloured (non-grey) line pixels
    rgb = image[..., :3]
    assert rgb.std() > 0.05
    assert np.any(np.abs(rgb[..., 0] - rgb[..., 2]) > 0.3)


def test_plot_of_a_long_trace_and_of_an_exact_fit(tmp_path):
    with pytest.warns(mlefit.ConvergenceWarning):
        res = mlefit.fit(ADMISSIONS, "bernoulli", method="gd", max_iter=300)
    plot_trace(res, tmp_path / "gd.png", size=(6, 3), dpi=50)
    assert imread(tmp_path / "gd.png").shape[:2] == (150, 300)
    exact = mlefit.fit(X=[[0.0], [1.0], [2.0], [3.0]], y=[1.0, 3.0, 5.0, 7.0], family="gaussian")
    plot_trace(exact, tmp_path / "exact.png")  # an infinite NLL and a zero gradient: nothing to draw
    read_png(tmp_path / "exact.png")
    plot_trace(res.trace, tmp_path / "records.svg", title="records only")
    assert (tmp_path / "records.svg").read_text().lstrip().startswith("<?xml")


def test_plot_recovery_draws_each_parameter(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.array([0.5, 1.0, -2.0])
    estimates = truth + 0.1 * rng.standard_normal((40, 3))
    plot_recovery(["intercept", "x1", "x2"], truth, estimates, tmp_path / "recovery.png")
    image = read_png(tmp_path / "recovery.png")
    assert image[..., :3].std() > 0.05
    plot_recovery(["sigma"], [1.0], np.array([0.9, 1.1, 1.0]), tmp_path / "one.png")  # one parameter
    read_png(tmp_path / "one.png")


def test_plot_recovery_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(UsageError, match="a name and a true value per column"):
        plot_recovery(["a", "b"], [1.0, 2.0], np.zeros((5, 3)), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_the_input_file(invoke, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(ADMISSIONS.read_text())
    result = invoke("fit", data, "-f", "bernoulli", "--plot", data)
    assert result.exit_code == 2 and "refusing to overwrite" in result.stderr
    assert data.read_text() == ADMISSIONS.read_text()


def test_unwritable_plot_is_one_sentence(invoke, tmp_path):
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--plot", tmp_path / "nope" / "p.png")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot write the plot to") and len(result.stderr.splitlines()) == 1


def test_missing_matplotlib_is_a_clear_error(invoke, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    out = tmp_path / "p.png"
    result = invoke("fit", ADMISSIONS, "-f", "bernoulli", "--plot", out)
    assert result.exit_code == 2
    assert result.stdout == ""  # refused before fitting, so nothing half-done
    assert result.stderr.strip() == (
        "Error: plotting needs matplotlib, which is not installed. Install it with: pip install 'mlefit[plot]'."
    )
    assert not out.exists()
    with pytest.raises(UsageError, match="mlefit\\[plot\\]"):
        plot_recovery(["a"], [1.0], [[1.0]], out)
    # without --plot, fitting does not need matplotlib
    assert invoke("fit", ADMISSIONS, "-f", "bernoulli", "--quiet").exit_code == 0


def test_recover_plot_writes_a_png(invoke, tmp_path):
    out = tmp_path / "recovery.png"
    result = invoke("recover", "-f", "bernoulli", "--coef", "1,-2", "--n", "200", "--reps", "20",
                    "--seed", "1", "--format", "json", "--plot", out)
    assert result.exit_code == 0, result.stderr
    import matplotlib.image

    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
