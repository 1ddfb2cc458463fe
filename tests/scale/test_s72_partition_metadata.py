"""A dataset partitioned by a nullable column read by ``pd.read_parquet(folder)`` (session 72).

``generate_dataset(..., partition_by="employed")`` (a ``boolean`` target) or ``"kids"`` (``Int64``) wrote data files
whose Arrow ``pandas`` metadata still listed the partition column with its extension dtype: ``pd.read_parquet(pop)``
raised ``TypeError: Expected array of boolean type, got dictionary<...>`` (``NotImplementedError`` for Int64), against
docs/scale.md's "every Parquet reader reads pop/ as a folder". The data files' pandas metadata now lists only the
columns they store; the schema file keeps the partition columns' types for microplex's readers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from microplex import Synthesizer
from microplex.io import read_table
from microplex.scale import dataset_schema, generate_dataset


@pytest.fixture(scope="module")
def nullable_synth():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"age": rng.integers(18, 90, n), "inc": rng.lognormal(8, 1, n),
                       "employed": pd.array(rng.random(n) < 0.5, dtype="boolean"),
                       "kids": pd.array(rng.integers(0, 3, n), dtype="Int64")})
    return Synthesizer(["inc", "employed", "kids"], ["age"], epochs=1, hidden_features=(8,), transforms=1,
                       verbose=False).fit(df, seed=0)


@pytest.mark.parametrize("column, dtype, folders", [("employed", "boolean", {"True", "False"}),
                                                    ("kids", "Int64", {"0", "1", "2"})])
def test_pandas_reads_a_folder_partitioned_by_a_nullable_column(nullable_synth, tmp_path, column, dtype, folders):
    pop = tmp_path / column
    generate_dataset(nullable_synth, n=1000, path=pop, partition_by=column, rows_per_file=500, seed=1,
                     progress=False)
    files = sorted(pop.glob("*/*.parquet"))
    assert files
    for f in files:  # the pandas metadata lists the columns the file stores, no partition column
        stored = pq.read_schema(f)
        listed = [c["name"] for c in json.loads(stored.metadata[b"pandas"])["columns"]]
        assert column not in stored.names and column not in listed and set(listed) <= set(stored.names)
    plain = pd.read_parquet(pop)  # before: TypeError (boolean) / NotImplementedError (Int64)
    assert len(plain) == 1000 and isinstance(plain[column].dtype, pd.CategoricalDtype)
    assert set(plain[column].astype(str)) <= folders
    # the other columns keep their pandas dtypes; microplex's readers and the schema restore the partition column
    assert str(plain["inc"].dtype) == "float64"
    typed = pd.read_parquet(pop, schema=dataset_schema(pop))
    back = read_table(pop)
    for frame in (typed, back):
        assert str(frame[column].dtype) == dtype and len(frame) == 1000
    other = "kids" if column == "employed" else "employed"
    assert str(back[other].dtype) == {"kids": "Int64", "employed": "boolean"}[other]
    counts = plain[column].astype(str).value_counts().sort_index()
    assert counts.to_dict() == back[column].astype(str).value_counts().sort_index().to_dict()
