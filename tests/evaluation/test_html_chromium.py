"""Renders the HTML report in headless Chromium: it loads without console messages and is not blank.

Skipped when no Chromium is installed (CI: ``apt-get install -y chromium``).
"""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from microplex.evaluation import evaluate

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def render(html_path, tmp_path, size="1200,2000"):
    shot = tmp_path / "shot.png"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        f"--screenshot={shot}", f"--window-size={size}", html_path.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc, shot, console


def non_white_share(png):
    from PIL import Image

    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    return float(np.mean(img < 245)), float(img.std())


def test_console_check_catches_a_script_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    _, _, console = render(page, tmp_path, size="400,300")
    assert any("undefinedFunction" in line for line in console)


def test_report_renders_without_console_errors_and_is_not_blank(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    real = pd.DataFrame({"age": rng.integers(18, 80, n), "sex": rng.choice(["f", "m"], n),
                         "income": np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(10, 1, n))})
    synth = real.assign(income=real["income"] * rng.lognormal(0, 0.3, n))
    path = evaluate(real, synth, conditions=["sex"], holdout_df=real.sample(200, random_state=1),
                    pmse=False).to_html(tmp_path / "report.html")
    proc, shot, console = render(path, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    assert console == []
    share, spread = non_white_share(shot)
    assert share > 0.02 and spread > 5.0


def test_report_sections_render_their_plots(tmp_path):
    """The plot sections parse into the page (DOM after loading) and draw: the DCR histogram's shaded
    "closer than holdout" band, the pair plots' colour scale, every embedded image decoded."""
    from PIL import Image

    class Model:
        history_ = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.5, 2.3], "val_loss": [3.1, 2.7, 2.6]})

    rng = np.random.default_rng(0)

    def frame(n, shift=0.0):
        income = np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(10 + shift, 1, n))
        return pd.DataFrame({"age": rng.integers(18, 80, n), "sex": rng.choice(["f", "m"], n),
                             "employed": (rng.random(n) < 0.6).astype(int), "income": income,
                             "tax": 0.2 * income + rng.normal(0, 50, n)})

    path = evaluate(frame(600), frame(600, 0.3), conditions=["sex"], holdout_df=frame(300),
                    pmse=False).to_html(tmp_path / "report.html", model=Model())
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=90).stdout
    for section in ("variables", "subgroups", "correlations", "pairs", "privacy", "training", "all-scores"):
        assert f'id="{section}"' in dom, section
    assert "<details open" not in dom and dom.count("<img") == path.read_text().count("<img")
    proc, shot, console = render(path, tmp_path, size="1280,9000")
    assert proc.returncode == 0 and console == []
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    for name, color in (("DCR band", (0xF3, 0xD3, 0xD3)), ("viridis top", (0xFD, 0xE7, 0x25))):
        assert (np.abs(rgb - color).sum(axis=2) < 12).sum() > 100, name
    rows = np.nonzero((rgb < 245).any(axis=(1, 2)))[0]
    assert rows.max() > 4000     # the page is drawn down to its last sections, not cut after the header
