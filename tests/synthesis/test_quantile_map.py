"""Quantile standardization of continuous segments (``Synthesizer(standardize="quantile")``)."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from microplex import DataValidationError, Synthesizer, VariableSpec
from microplex._stats import weighted_quantile
from microplex.synthesis import _quantile_map as qmap
from microplex.synthesis.transforms import ContinuousEncoder


def _hours(n, rng):
    """Annual hours: zeros, a peak just below full time with a long left tail, heaps at 2000 and 1960."""
    x = np.clip(2080 - rng.gamma(1.2, 260, n), 10, None).round()
    x[rng.random(n) < 0.25] = 0
    x[rng.random(n) < 0.04] = 2000
    x[rng.random(n) < 0.02] = 1960
    return x


def test_interpolated_quantiles_are_hazen_quantiles_and_weights_count_as_copies():
    rng = np.random.default_rng(0)
    x = rng.normal(size=501)
    q = np.linspace(0, 1, 41)
    assert np.allclose(weighted_quantile(x, q, method="interpolated"), np.quantile(x, q, method="hazen"))
    v, k = rng.normal(size=60), rng.integers(1, 4, size=60)
    assert np.allclose(weighted_quantile(v, q, k, method="interpolated"),
                       weighted_quantile(np.repeat(v, k), q, method="interpolated"))
    # zero-weight values hold no position (else the interpolation table would not increase)
    assert np.allclose(weighted_quantile([1.0, 2.0, 3.0], [0.25, 0.75], [1, 0, 1], method="interpolated"), [1.0, 3.0])
    with pytest.raises(DataValidationError, match="'method'"):
        weighted_quantile(x, 0.5, method="linear")


def test_knots_are_strictly_increasing_sized_by_the_sample_and_never_on_an_extreme_record():
    rng = np.random.default_rng(1)
    for n, want in ((100, qmap.MIN_KNOTS), (1_000, 50), (100_000, qmap.MAX_KNOTS)):
        t = rng.normal(size=n)
        kt, kz, _ = qmap.fit_knots(t, np.ones(n))
        assert len(kt) == want and np.all(np.diff(kt) > 0) and np.all(np.diff(kz) > 0)
        # half a knot's share of the records lies beyond each end knot
        assert np.mean(t < kt[0]) >= 0.5 / want - 1.5 / n and np.mean(t > kt[-1]) >= 0.5 / want - 1.5 / n
    assert qmap.fit_knots(np.full(100, 3.0), np.ones(100)) is None  # one value: no map


def test_map_round_trips_and_its_log_slope_is_the_derivative_including_tails():
    rng = np.random.default_rng(2)
    knots = qmap.fit_knots(rng.gamma(2.0, size=2_000), np.ones(2_000))
    kt = knots[0]
    t = np.r_[kt[0] - 3.0, np.sort(rng.uniform(kt[0] - 1, kt[-1] + 1, 500)), kt[-1] + 5.0]
    z = qmap.forward(t, *knots)
    assert np.all(np.diff(z) > 0) and np.allclose(qmap.inverse(z, *knots), t)
    h = 1e-7
    numeric = np.log((qmap.forward(t + h, *knots) - qmap.forward(t - h, *knots)) / (2 * h))
    near_knot = np.min(np.abs(t[:, None] - kt[None, :]), axis=1) < 1e-6
    assert np.allclose(qmap.log_slope(t, *knots)[~near_knot], numeric[~near_knot], atol=1e-5)


def test_tails_give_the_records_beyond_each_end_knot_a_normal_tail_s_mean_excess():
    # A Pareto upper tail on the log scale is exponential; the sparse last interval would set a slope
    # far too flat. The tail slope makes the records beyond the end knot exceed it in z by what a
    # standard normal beyond that point does on average.
    rng = np.random.default_rng(7)
    t = np.log(rng.pareto(2.0, 3_000) + 1.0)
    w = rng.uniform(0.5, 2.0, 3_000)
    kt, kz, slopes = qmap.fit_knots(t, w)
    z = qmap.forward(t, kt, kz, slopes)
    for side, end in ((-1, 0), (1, -1)):
        beyond = side * (t - kt[end]) > 0
        a = abs(kz[end])
        want = stats.norm.pdf(a) / stats.norm.sf(a) - a
        assert np.average(side * (z[beyond] - kz[end]), weights=w[beyond]) == pytest.approx(want, rel=1e-9)


def test_quantile_standardized_values_are_close_to_normal_where_moments_leave_the_skew():
    rng = np.random.default_rng(3)
    x = _hours(5_000, rng)
    out = {}
    for mode in ("moments", "quantile"):
        enc = ContinuousEncoder("h", integer=True).fit(x, np.ones(len(x)), VariableSpec(), 0.01, 5, heap_threshold=0.003,
                                                        max_heaps=8, min_heap_count=20, standardize=mode)
        state, u = enc.encode(x, np.random.default_rng(0))
        free = (state >= len(enc.point_masses)) & (enc.heap_index(x) == 0)
        out[mode] = u[free]
        assert {1960.0, 2000.0} <= set(enc.heaps)
        state0, u0 = enc.encode(x)
        assert np.array_equal(enc.decode(u0, state0, enc.heap_index(x)), x)
    assert stats.kstest(out["moments"], "norm").statistic > 0.05
    assert stats.kstest(out["quantile"], "norm").statistic < 0.01


def test_quantile_standardization_fits_a_peaked_skewed_marginal_that_moments_smear():
    rng = np.random.default_rng(4)
    n = 4_000
    df = pd.DataFrame({"a": rng.normal(size=n)})
    df["hours"] = _hours(n, rng).astype(int)
    df["inc"] = np.exp(rng.normal(3, 0.5, n) + 0.3 * df.a) * 10
    ks = {}
    for mode in ("moments", "quantile"):
        synth = Synthesizer(["hours", "inc"], ["a"], standardize=mode, verbose=False).fit(df, seed=0)
        out = synth.generate(df[["a"]], seed=1)
        ks[mode] = stats.ks_2samp(out.hours[out.hours > 0], df.hours[df.hours > 0]).statistic
        assert np.array_equal(out.hours, out.hours.round())
    assert ks["quantile"] < 0.04 < ks["moments"], ks


def test_log_prob_is_exact_with_quantile_standardization():
    rng = np.random.default_rng(5)
    n = 2_000
    df = pd.DataFrame({"x": np.where(rng.random(n) < 0.3, 0.0, rng.gamma(1.5, 10, n)), "g": rng.normal(size=n)})
    synth = Synthesizer(["x"], ["g"], epochs=5, verbose=False).fit(df, seed=0)
    assert synth.encoders_["x"].segments[0].knots is not None
    grid = np.geomspace(1e-12, 1e4, 200_001)  # the density rises steeply near the lower bound 0
    lp = synth.log_prob(pd.DataFrame({"x": grid, "g": 0.3}))
    mass0 = np.exp(synth.log_prob(pd.DataFrame({"x": [0.0], "g": 0.3})))[0]
    assert abs(mass0 + np.trapezoid(np.exp(lp), grid) - 1.0) < 2e-3


def test_standardize_is_saved_old_files_load_as_moments_and_tampered_knots_are_refused(tmp_path):
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"x": rng.gamma(2.0, 5.0, 600), "g": rng.normal(size=600)})
    synth = Synthesizer(["x"], ["g"], epochs=2, verbose=False).fit(df, seed=0)
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.standardize == "quantile"
    pd.testing.assert_frame_equal(loaded.generate(df[["g"]], seed=1), synth.generate(df[["g"]], seed=1))

    def rewrite(name, edit):
        with zipfile.ZipFile(tmp_path / "m.mpx") as src, zipfile.ZipFile(tmp_path / name, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                if item.filename.endswith("metadata.json"):
                    meta = json.loads(data)
                    edit(meta)
                    data = json.dumps(meta).encode()
                dst.writestr(item, data)
        return tmp_path / name

    def old(meta):  # a file written before the parameter: moments, whatever its segments say
        del meta["params"]["standardize"]
        meta["format_version"] = 1  # version 2 records every parameter
        for seg in meta["encoders"]["x"]["segments"]:
            seg.pop("knots")
    assert Synthesizer.load(rewrite("old.mpx", old)).standardize == "moments"

    def swap(meta):
        knots = meta["encoders"]["x"]["segments"][0]["knots"]
        knots["t"][1], knots["t"][2] = knots["t"][2], knots["t"][1]
    with pytest.raises(DataValidationError, match="knots"):
        Synthesizer.load(rewrite("bad.mpx", swap))

    def flat(meta):
        meta["encoders"]["x"]["segments"][0]["knots"]["slopes"][1] = 0.0
    with pytest.raises(DataValidationError, match="slopes"):
        Synthesizer.load(rewrite("flat.mpx", flat))


def test_standardize_is_checked():
    df = pd.DataFrame({"x": np.arange(200.0), "g": np.arange(200.0)})
    with pytest.raises(DataValidationError, match="'standardize'"):
        Synthesizer(["x"], ["g"], standardize="rank", verbose=False).fit(df)


# -- knots of a (noisy) histogram: the DP standardization ---------------------------------------
def test_knots_of_a_histogram_are_its_exact_quantiles_with_mean_excess_tails():
    edges = np.array([0.0, 1.0, 2.0, 4.0])
    mass = np.array([1.0, 2.0, 1.0])  # CDF 0, 1/4, 3/4, 1 at the edges, linear inside each bin
    kt, kz, slopes = qmap.knots_from_histogram(edges, mass, k=4)
    p = (np.arange(4) + 0.5) / 4  # 1/8, 3/8, 5/8, 7/8
    assert np.allclose(kt, [0.5, 1.25, 1.75, 3.0]) and np.allclose(kz, stats.norm.ppf(p))
    # below kt[0] = 0.5 lies mass 1/8, uniform on [0, 0.5]: mean excess 0.25; above kt[-1] = 3, uniform on [3, 4]: 0.5
    a = abs(kz[0])
    gauss = stats.norm.pdf(a) / stats.norm.sf(a) - a  # E[Z - a | Z > a]
    assert slopes == pytest.approx([gauss / 0.25, gauss / 0.5], rel=1e-9)
    # the map sends the histogram's own distribution to a standard normal at the knots
    assert np.allclose(qmap.forward(kt, kt, kz, slopes), kz)


def test_knots_of_a_noisy_histogram_clip_negative_counts_and_match_sample_knots():
    rng = np.random.default_rng(3)
    t = rng.normal(1.0, 2.0, 200_000)
    edges = np.linspace(-9.0, 9.0, 33)
    hist = np.histogram(t, edges)[0].astype(float)
    noisy = hist + rng.normal(0, 5.0, size=hist.shape)  # some empty tail bins turn negative
    assert (noisy < 0).any()
    kt, kz, _ = qmap.knots_from_histogram(edges, noisy, k=16)
    assert np.all(np.diff(kt) > 0)
    # a histogram of 32 bins keeps the quantiles to within a fraction of a bin (0.56 wide)
    assert np.abs(kt - (1.0 + 2.0 * kz)).max() < 0.15
    assert qmap.knots_from_histogram(edges, -np.abs(noisy)) is None  # no positive mass
