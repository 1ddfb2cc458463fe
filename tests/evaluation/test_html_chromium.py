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
