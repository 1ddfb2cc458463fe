"""Datasets partitioned by a categorical column: read by rake_dataset, write_calibrated and the pipeline."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.scale import generate_dataset


@pytest.fixture(scope="module")
def categorical_synth():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"k": rng.integers(1, 4, 300), "c": pd.Categorical(rng.choice(["a", "b", "z"], 300)),
                       "d": pd.Categorical(rng.choice(["u", "v"], 300)), "y": rng.normal(size=300)})
    return df, Synthesizer(["y"], ["k", "c", "d"], epochs=1, verbose=False).fit(df, seed=0)


def test_a_dataset_partitioned_by_a_categorical_column_is_raked(categorical_synth, tmp_path):
    """Dask took the categorical columns from the files' pandas metadata, the partition column among them,
    and failed: "Cannot read the Parquet dataset ...: Not all columns are categoricals"."""
    from microplex.scale import rake_dataset, write_calibrated

    _, synth = categorical_synth
    out, copy = tmp_path / "pop", tmp_path / "weighted"
    generate_dataset(synth, n=600, path=out, partition_by=["c"], rows_per_file=200, progress=False, seed=0)
    margins = {"c": {"a": 200.0, "b": 300.0, "z": 500.0}, "d": {"u": 400.0, "v": 600.0}}
    result = rake_dataset(out, margins)
    write_calibrated(result, out, copy)
    weighted = pd.read_parquet(copy)
    assert isinstance(weighted["d"].dtype, pd.CategoricalDtype)  # a stored categorical stays one
    for column, margin in margins.items():
        got = weighted.groupby(weighted[column].astype(str))["weight"].sum().to_dict()
        assert got == pytest.approx(margin, rel=1e-8)


def test_the_pipeline_reads_a_population_partitioned_by_a_categorical_column(categorical_synth, tmp_path):
    """The pipeline cast a partition column back to the training table's type with ``to_pandas_dtype``,
    which has no dictionary types: NotImplementedError for a categorical training column."""
    from microplex._pipeline_inputs import _read_population

    df, synth = categorical_synth
    pop, train = tmp_path / "pop", tmp_path / "train.parquet"
    generate_dataset(synth, n=300, path=pop, partition_by=["c"], rows_per_file=100, progress=False, seed=0)
    df.to_parquet(train)

    class Context:
        config = {"generate": {"partition_by": ["c"]}, "model": {}, "sources": [{"name": "a"}]}

        def input(self, name: str) -> Path:
            return pop if name == "population" else train

    records = _read_population(Context())
    assert isinstance(records["c"].dtype, pd.CategoricalDtype)
    assert sorted(records["c"].astype(str).unique()) == ["a", "b", "z"] and len(records) == 300


def test_a_local_run_writes_the_bytes_of_one_thread_by_default(tmp_path):
    """The flow's matrix products add in another order at another torch thread count (float32 rounding, about
    1e-6 relative): a local run at torch's setting (two threads here, the old default) wrote other bytes than a
    Dask run, whose workers use one. The default is one thread now; other counts agree to rounding."""
    import torch

    from microplex.datasets import load_dataset

    cps = load_dataset("cps1")
    synth = Synthesizer(["re74", "re75", "re78"], ["age", "educ", "black", "hisp", "marr", "nodeg"],
                        epochs=3, verbose=False).fit(cps, seed=0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate_dataset(synth, n=20_000, path=tmp_path / "default", progress=False, seed=1)
        assert torch.get_num_threads() == 2
        generate_dataset(synth, n=20_000, path=tmp_path / "two", torch_threads=2, progress=False, seed=1)
    finally:
        torch.set_num_threads(before)
    generate_dataset(synth, n=20_000, path=tmp_path / "one", torch_threads=1, progress=False, seed=1)
    one, default, two = (pd.read_parquet(tmp_path / name) for name in ("one", "default", "two"))
    pd.testing.assert_frame_equal(default, one, check_exact=True)
    # (two threads: the same values to float32 rounding; not asserted different, which depends on the machine)
    pd.testing.assert_frame_equal(two, one, check_exact=False, rtol=1e-5, atol=0.05)
