"""A generated dataset folder read by the usual Parquet readers.

The data folder holds only Parquet files: the manifest, the task markers, the schema file and the
lock sit in the hidden side folder ``.NAME.microplex`` beside it. So pyarrow, pandas, DuckDB and
polars all read the folder as it is; ``polars.scan_parquet(folder)`` refuses a folder holding any
other file (checked with polars 2.1: it skips neither ``_`` nor ``.`` names, not even in hidden
subfolders). DuckDB and polars run where installed (the ``test`` extra installs them).
``dataset_schema`` (the side folder's ``_common_metadata``) holds the full schema: readers given it
keep the partition columns' types. A folder of the earlier layout (everything inside) still reads,
resumes and gives the same bytes.
"""

import importlib.util

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from microplex import DataValidationError
from microplex.scale import dataset_schema, generate_dataset, read_manifest
from microplex.scale._layout import layout

N = 1500


@pytest.fixture(scope="module")
def folder(tiny_synth, tmp_path_factory):
    path = tmp_path_factory.mktemp("readers") / "population"
    generate_dataset(tiny_synth, n=N, path=path, partition_by=["black"], rows_per_file=500, seed=3, progress=False)
    return path


def needs(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} is not installed")


def test_pyarrow_reads_the_folder_with_its_partitions(folder):
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == N
    assert set(table.column_names) == {"age", "educ", "black", "re74", "re78"}
    assert set(table.column("black").to_pylist()) == {0, 1}


def test_pandas_reads_the_folder(folder):
    df = pd.read_parquet(folder)
    assert len(df) == N and df["re78"].notna().all()
    assert sorted(int(v) for v in df["black"].unique()) == [0, 1]


def test_the_data_folder_holds_only_parquet_files_and_the_rest_sits_beside_it(folder):
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    assert files and all(f.endswith(".parquet") and not f.split("/")[-1].startswith((".", "_")) for f in files)
    meta = folder.parent / ".population.microplex"
    assert layout(folder).meta == meta
    assert sorted(p.name for p in meta.iterdir()) == ["_common_metadata", "_microplex_manifest.json", "_microplex_tasks"]
    manifest = read_manifest(folder)
    assert manifest["status"] == "complete" and manifest["rows"] == N
    assert sorted(f["path"] for f in manifest["files"]) == files


def test_common_metadata_keeps_the_partition_column_types(folder, tiny_synth, tmp_path):
    schema = dataset_schema(folder)
    assert schema.field("black").type == pa.int64() and set(schema.names) == {"age", "educ", "black", "re74", "re78"}
    inferred = pd.read_parquet(folder)
    assert isinstance(inferred["black"].dtype, pd.CategoricalDtype)      # what readers infer from the paths
    kept = pd.read_parquet(folder, schema=schema)
    flat = generate_dataset(tiny_synth, n=N, path=tmp_path / "flat", rows_per_file=500, seed=3, progress=False)
    plain = pd.read_parquet(tmp_path / "flat")
    assert flat["rows"] == N and kept["black"].dtype == plain["black"].dtype == "int64"
    table = ds.dataset(folder, format="parquet", partitioning="hive", schema=schema).to_table()
    assert table.schema.field("black").type == pa.int64() and table.num_rows == N


def _old_layout(folder, dest):
    """A copy of ``folder`` as an earlier version wrote it: manifest, markers and schema inside."""
    import shutil

    shutil.copytree(folder, dest)
    for entry in layout(folder).meta.iterdir():
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, dest / entry.name)
    return dest


def _parts(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.parquet")}


def test_a_folder_of_the_earlier_layout_still_reads_and_resumes(folder, tiny_synth, tmp_path):
    old = _old_layout(folder, tmp_path / "old")
    assert layout(old).legacy and read_manifest(old)["rows"] == N and dataset_schema(old) == dataset_schema(folder)
    assert len(pd.read_parquet(old)) == N
    assert ds.dataset(old, format="parquet", partitioning="hive").count_rows() == N
    # an unfinished run of the earlier layout resumes in place, to the same bytes, with nothing beside it
    manifest = layout(old).manifest
    stored = read_manifest(old)
    manifest.write_text(__import__("json").dumps({k: stored[k] for k in ("format_version", "spec")} | {"status": "running"}))
    (old / "_microplex_tasks" / "task-000001.json").unlink()
    for part in old.rglob("part-000001.parquet"):
        part.unlink()
    again = generate_dataset(tiny_synth, n=N, path=old, partition_by=["black"], rows_per_file=500, seed=3,
                             progress=False)
    assert again["rows"] == N and read_manifest(old)["status"] == "complete"
    assert _parts(old) == _parts(folder) and not (tmp_path / ".old.microplex").exists()


def test_a_folder_without_common_metadata_still_reads_and_resumes(folder, tiny_synth, tmp_path):
    old = _old_layout(folder, tmp_path / "old")
    (old / "_common_metadata").unlink()                                   # as written by an earlier version
    assert len(pd.read_parquet(old)) == N
    with pytest.raises(DataValidationError, match="has no schema file"):
        dataset_schema(old)
    again = generate_dataset(tiny_synth, n=N, path=old, partition_by=["black"], rows_per_file=500, seed=3,
                             progress=False)                              # the same call: complete, nothing rewritten
    assert again["rows"] == N and not (old / "_common_metadata").exists()


def test_read_manifest_refuses_a_folder_without_one_and_a_damaged_one(folder, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataValidationError, match="is not a microplex dataset: there is no manifest"):
        read_manifest(tmp_path / "plain")
    old = _old_layout(folder, tmp_path / "old")
    (old / "_microplex_manifest.json").write_text('{"format_version": 1, "status": "rm -rf", "spec": {}}')
    with pytest.raises(DataValidationError, match="has status 'rm -rf'"):
        read_manifest(old)
    (old / "_common_metadata").write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="is not a Parquet schema file"):
        dataset_schema(old)


@needs("duckdb")
def test_duckdb_reads_the_folder_and_the_glob(folder):
    import duckdb

    assert duckdb.sql(f"select count(*) from read_parquet('{folder}')").fetchall()[0][0] == N
    rows = duckdb.sql(f"select black, count(*) from read_parquet('{folder}/**/*.parquet', hive_partitioning=true) "
                      "group by black order by black").fetchall()
    assert [r[0] for r in rows] == [0, 1] and sum(r[1] for r in rows) == N


@needs("polars")
def test_polars_reads_the_glob(folder):
    import polars as pl

    df = pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True).collect()
    assert df.height == N and sorted(df["black"].unique().to_list()) == [0, 1]


@needs("polars")
def test_polars_reads_the_folder(folder):
    import polars as pl

    df = pl.scan_parquet(folder).collect()
    assert df.height == N and sorted(df["black"].unique().to_list()) == [0, 1]
    assert pl.read_parquet(folder).height == N


@needs("polars")
def test_polars_reads_household_datasets_and_calibrated_copies(hs, small_hh_blocks, tmp_path):
    import polars as pl

    from microplex.calibration import Targets
    from microplex.scale import generate_household_dataset, rake_dataset, write_calibrated

    root = tmp_path / "hh"
    m = generate_household_dataset(hs, 120, path=root, households_per_file=50, partition_by="db040", seed=1,
                                   progress=False)
    assert sorted(p.name for p in root.iterdir()) == [".households.microplex", ".persons.microplex", "households",
                                                      "persons"]
    for name in ("households", "persons"):
        assert pl.scan_parquet(root / name).collect().height == m[name]["rows"]
        assert read_manifest(root / name)["rows"] == m[name]["rows"]
    h = pd.read_parquet(root / "households")
    targets = Targets.from_margins({"hsize": (h.groupby("hsize")["db090"].sum() * 1.1).to_dict()})
    res = rake_dataset(root / "households", targets, "db090")
    write_calibrated(res, root / "households", tmp_path / "cal", column="cw")
    assert pl.scan_parquet(tmp_path / "cal").collect()["cw"].null_count() == 0


@pytest.mark.parametrize("edit", ["retype", "drop", "add", "drop_key"])
def test_a_schema_file_that_does_not_describe_the_files_is_refused(folder, tmp_path, edit):
    """The schema file is untrusted data: edited, readers given it returned what it said (re78 as timestamps)."""
    import shutil

    import pyarrow.parquet as pq

    copy = tmp_path / "population"
    shutil.copytree(folder, copy)
    shutil.copytree(layout(folder).meta, layout(copy).meta)
    schema = dataset_schema(copy)
    if edit == "retype":
        schema = schema.set(schema.get_field_index("re78"), pa.field("re78", pa.timestamp("ns")))
    elif edit == "drop":
        schema = schema.remove(schema.get_field_index("re78"))
    elif edit == "add":
        schema = schema.append(pa.field("income", pa.float64()))
    else:
        schema = schema.remove(schema.get_field_index("black"))
    pq.write_metadata(schema, layout(copy).schema)
    with pytest.raises(DataValidationError, match="does not describe the dataset's files"):
        dataset_schema(copy)
