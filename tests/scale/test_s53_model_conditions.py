"""Session 53: a fully synthetic population streamed out of core (conditions drawn from the condition model)."""

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.scale import generate_dataset
from microplex.scale.sources import ModelConditions, as_source

from .test_generate import _files

KEY = ["age", "black", "marr", "re78"]


@pytest.fixture(scope="module")
def full_synth(cps1):
    return Synthesizer(["re78"], ["age", "black", "marr"], epochs=2, verbose=False, condition_model=True).fit(
        cps1.head(3000), seed=0)


def _rows(path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame[KEY].astype({"marr": "int64"}).sort_values(KEY).reset_index(drop=True)


def test_a_fully_synthetic_model_streams_a_population(full_synth, cps1, small_blocks, tmp_path):
    """Was: generate_dataset(conditions=None) refused a condition_model=True model ("holds no training conditions
    to resample"), so a fully synthetic population could only be drawn in memory. Now the conditions are drawn by
    the condition model block by block: the same rows whatever the files and partitions, the model's shares."""
    assert isinstance(as_source(None, full_synth, 5), ModelConditions)
    a = generate_dataset(full_synth, n=2_500, path=tmp_path / "a", rows_per_file=700, seed=5, progress=False)
    b = generate_dataset(full_synth, n=2_500, path=tmp_path / "b", rows_per_file=1_000, partition_by="marr", seed=5,
                         progress=False)
    assert a["rows"] == b["rows"] == 2_500
    pd.testing.assert_frame_equal(_rows(tmp_path / "a"), _rows(tmp_path / "b"), check_exact=True)
    pop = pd.read_parquet(tmp_path / "a")
    real = cps1.head(3000)
    assert abs(pop["marr"].mean() - real["marr"].mean()) < 0.05 and abs(pop["black"].mean() - real["black"].mean()) < 0.05
    other = generate_dataset(full_synth, n=2_500, path=tmp_path / "c", rows_per_file=700, seed=6, progress=False)
    assert other["rows"] == 2_500 and not _rows(tmp_path / "c").equals(_rows(tmp_path / "a"))
    # rows [start, stop) of the source are those of the whole draw, whatever the range
    source = as_source(None, full_synth, 5)
    whole = source.draw(full_synth, 0, 700)
    pd.testing.assert_frame_equal(source.draw(full_synth, 250, 650), whole.iloc[250:650].reset_index(drop=True),
                                  check_exact=True)
    assert source.draw(full_synth, 3, 3).empty and list(source.draw(full_synth, 3, 3).columns) == source.columns


def test_a_fully_synthetic_stream_on_dask_is_the_local_bytes(full_synth, small_blocks, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    kwargs = dict(n=1_200, rows_per_file=400, seed=3, progress=False)
    generate_dataset(full_synth, path=tmp_path / "local", **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        generate_dataset(full_synth, path=tmp_path / "dask", client=client, **kwargs)
    assert _files(tmp_path / "local") == _files(tmp_path / "dask")
    assert np.isfinite(pd.read_parquet(tmp_path / "dask")["re78"]).all()
