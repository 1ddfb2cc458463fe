"""Input sweep of microplex.scale: resumed runs whose inputs changed; partition values read as written."""

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import ParquetSource, generate_dataset
from microplex.scale import generate as generate_module


def test_parquet_conditions_rewritten_at_the_same_size_do_not_resume_the_old_run(tiny_synth, tmp_path, monkeypatch):
    cond, out = tmp_path / "cond.parquet", tmp_path / "out"
    first = pd.DataFrame({"age": np.full(600, 30, dtype=np.int64), "educ": 12, "black": 0})
    first.to_parquet(cond)
    size, fingerprint = cond.stat().st_size, ParquetSource(cond).fingerprint()
    write_task = generate_module.write_task

    def killed_at_the_second_task(path, task, tables, parts):
        if task == 1:
            raise RuntimeError("killed")
        return write_task(path, task, tables, parts)

    monkeypatch.setattr(generate_module, "write_task", killed_at_the_second_task)
    with pytest.raises(RuntimeError, match="killed"):
        generate_dataset(tiny_synth, cond, path=out, rows_per_file=300, progress=False)
    monkeypatch.setattr(generate_module, "write_task", write_task)
    first.assign(age=np.int64(60)).to_parquet(cond)  # other values, the same bytes count
    assert cond.stat().st_size == size
    assert ParquetSource(cond).fingerprint() != fingerprint
    # The finished part holds records of age 30: resuming would mix two sets of conditions in one dataset.
    with pytest.raises(DataValidationError, match="holds another run"):
        generate_dataset(tiny_synth, cond, path=out, rows_per_file=300, progress=False)
    # The original conditions resume as before.
    first.to_parquet(cond)
    manifest = generate_dataset(tiny_synth, cond, path=out, rows_per_file=300, progress=False)
    assert manifest["rows"] == 600 and set(pd.read_parquet(out)["age"]) == {30}


@pytest.fixture(scope="module")
def coded_synth():
    from microplex import Synthesizer

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"s": rng.choice(["01", "02", "x"], 300), "b": rng.random(300) < 0.5, "y": rng.normal(size=300)})
    return Synthesizer(["y"], ["s", "b"], epochs=1, verbose=False).fit(df, seed=0)


@pytest.mark.parametrize("column, margin", [("s", {"01": 200.0, "02": 300.0, "x": 500.0}),
                                            ("b", {True: 400.0, False: 600.0})])
def test_partition_values_that_look_like_numbers_are_read_as_written(coded_synth, tmp_path, column, margin):
    """Partition folders s=01, s=02 were read as the numbers 1 and 2 (by Dask beside s=x: as missing
    values), b=True as the text 'True': a margin on them "selected no record", or was met on the wrong
    rows. They are read with the types of the dataset's schema file."""
    import pyarrow.dataset as pads

    from microplex.scale import rake_dataset, write_calibrated
    from microplex.scale._layout import hive_partitioning

    out, copy = tmp_path / "pop", tmp_path / "weighted"
    generate_dataset(coded_synth, n=600, path=out, partition_by=[column], rows_per_file=200, progress=False, seed=0)
    read = pads.dataset(out, format="parquet", partitioning=hive_partitioning(out)).to_table().to_pandas()
    assert set(read[column]) == set(margin)
    result = rake_dataset(out, {column: margin})
    write_calibrated(result, out, copy)
    weighted = pd.read_parquet(copy, partitioning=hive_partitioning(out))
    assert weighted.groupby(column)["weight"].sum().to_dict() == pytest.approx(margin, rel=1e-8)


def test_a_single_file_or_a_folder_without_schema_is_read_as_before(tmp_path):
    from microplex.scale._layout import hive_partitioning

    f = tmp_path / "one.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(f)
    assert hive_partitioning(f) == "hive" and hive_partitioning(tmp_path / "none") == "hive"


def test_the_pipeline_reads_a_streamed_population_with_its_partition_values_as_written(tmp_path):
    """Folders s=01, s=02, s=10 were read as the integers 1, 2, 10 and cast back to '1', '2', '10'."""
    from microplex import Synthesizer
    from microplex._pipeline_inputs import _read_population

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"s": rng.choice(["01", "02", "10"], 300), "y": rng.normal(size=300)})
    synth = Synthesizer(["y"], ["s"], epochs=1, verbose=False).fit(df, seed=0)
    pop, train = tmp_path / "pop", tmp_path / "train.parquet"
    generate_dataset(synth, n=300, path=pop, partition_by=["s"], rows_per_file=100, progress=False, seed=0)
    df.to_parquet(train)

    class Context:
        config = {"generate": {"partition_by": ["s"]}, "model": {}, "sources": [{"name": "a"}]}

        def input(self, name):
            return pop if name == "population" else train

    assert sorted(_read_population(Context())["s"].unique()) == ["01", "02", "10"]
