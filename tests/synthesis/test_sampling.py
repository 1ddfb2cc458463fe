"""Stratified (Latin hypercube) draws across the records of a chunk, and how a fitted part's state is kept."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from microplex import DataValidationError, Synthesizer
from microplex.synthesis._training import _overfits
from microplex.synthesis.sampling import normals, uniforms
from microplex.synthesis.serialization import read_archive, write_archive


def test_stratified_uniforms_hold_one_draw_per_stratum_in_every_column():
    u = uniforms(1000, 3, torch.Generator().manual_seed(0), stratified=True)
    assert u.shape == (1000, 3) and u.dtype == torch.float32
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    for j in range(3):
        assert sorted((u[:, j].double() * 1000).floor().long().tolist()) == list(range(1000))
    # the columns are permuted independently: no rank correlation between them
    assert abs(stats.spearmanr(u[:, 0], u[:, 1]).statistic) < 0.1


def test_every_record_of_a_stratified_draw_is_exactly_uniform_and_normal():
    # the first record's draw over many seeds: uniform (and standard normal), as with independent draws
    first_u = [float(uniforms(50, 1, torch.Generator().manual_seed(s), stratified=True)[0, 0]) for s in range(2000)]
    assert stats.kstest(first_u, "uniform").pvalue > 0.01
    first_z = [float(normals(50, 1, torch.Generator().manual_seed(s), stratified=True)[0, 0]) for s in range(2000)]
    assert stats.kstest(first_z, "norm").pvalue > 0.01
    z = normals(100_000, 2, torch.Generator().manual_seed(0), stratified=True)
    assert torch.isfinite(z).all() and float(z.abs().max()) < 7.1
    assert abs(float(z.mean())) < 1e-3 and abs(float(z.std()) - 1.0) < 2e-3  # near-exact moments: stratified


def test_independent_draws_are_torch_rand_and_randn():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(uniforms(7, 2, g1, stratified=False), torch.rand(7, 2, generator=g2))
    assert torch.equal(normals(7, 2, g1, stratified=False), torch.randn(7, 2, generator=g2))
    assert uniforms(0, 1, g1, stratified=True).shape == (0, 1) and normals(5, 0, g1, stratified=True).shape == (5, 0)


@pytest.fixture(scope="module")
def zero_model():
    rng = np.random.default_rng(0)
    n = 3000
    g = rng.integers(0, 2, n)
    x = np.where(rng.random(n) < 0.25 + 0.2 * g, 0.0, rng.lognormal(8 + 0.3 * g, 0.6, n))
    df = pd.DataFrame({"y": x, "g": g})
    return df, Synthesizer(["y"], ["g"], epochs=20, verbose=False).fit(df, seed=0)


def test_stratified_generate_halves_the_noise_of_shares_and_keeps_their_mean(zero_model):
    df, synth = zero_model
    cond = df[["g"]].iloc[:2000]
    shares = {}
    for mode in ("stratified", "independent"):
        synth.set_params(sampling=mode)
        shares[mode] = np.array([(synth.generate(cond, seed=s).y == 0).mean() for s in range(40)])
    synth.set_params(sampling="stratified")
    # the same expected share (each record is a draw from the model) ...
    assert shares["stratified"].mean() == pytest.approx(shares["independent"].mean(), abs=0.004)
    # ... with much less Monte Carlo noise across draws (binomial sd here ~0.011)
    assert shares["stratified"].std() < 0.6 * shares["independent"].std()


def test_sampling_is_checked_saved_and_old_files_load_with_independent_draws(zero_model, tmp_path):
    df, synth = zero_model
    with pytest.raises(DataValidationError, match="sampling"):
        Synthesizer(["y"], ["g"], sampling="lhs").fit(df, seed=0)
    synth.set_params(sampling="independent").save(tmp_path / "iid.mpx")
    synth.set_params(sampling="stratified").save(tmp_path / "m.mpx")
    cond = df[["g"]].iloc[:500]
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.sampling == "stratified"
    pd.testing.assert_frame_equal(loaded.generate(cond, seed=4), synth.generate(cond, seed=4), check_exact=True)
    # a file written before the parameter (no 'sampling' key) loads with independent draws
    meta, tensors, tables = read_archive(tmp_path / "iid.mpx", "microplex.Synthesizer")
    del meta["params"]["sampling"]
    meta["format_version"] = 1  # version 2 records every parameter (a file lacking one is refused)
    write_archive(tmp_path / "old.mpx", meta, tensors, tables)
    old = Synthesizer.load(tmp_path / "old.mpx")
    assert old.sampling == "independent"
    pd.testing.assert_frame_equal(old.generate(cond, seed=4),
                                  Synthesizer.load(tmp_path / "iid.mpx").generate(cond, seed=4), check_exact=True)
    assert not old.generate(cond, seed=4).equals(loaded.generate(cond, seed=4))


def test_overfits_asks_for_a_significant_paired_difference():
    rng = np.random.default_rng(0)
    w = torch.full((400,), 1 / 400, dtype=torch.float64)
    base = torch.as_tensor(rng.normal(-1.0, 1.0, 400))
    noise = torch.as_tensor(rng.normal(0.0, 0.5, 400))
    assert not _overfits(base + 0.01 + noise, base, w)  # 0.01 nats within the noise (se 0.025)
    assert _overfits(base + 0.2 + noise, base, w)  # 0.2 nats: 8 standard errors
    assert not _overfits(base - 0.2 + noise, base, w)  # final better than best: never over-fitting
