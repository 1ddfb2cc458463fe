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
