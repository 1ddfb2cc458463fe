"""The calibrated copy of a dataset keeps its files' Arrow types (session 74).

``write_calibrated`` turned every file into pandas and wrote it back with ``DataFrame.to_parquet``: under pandas 3 a
text column the source stored as Arrow ``string`` came back as ``large_string`` (a ``dictionary<int32, string>`` as
``dictionary<int8, large_string>``, ...), while the copy's schema file, copied from the source, still said
``string``. Every reader that checks the schema file (``read_table``, ``dataset_schema``, ``rake_dataset``, the
pipeline's ``[sparsify]`` and ``[evaluate]`` of a streamed population) then refused the copy: "The schema file ...
does not describe the dataset's files ... columns ['area: large_string in the files'] differ". The copy now writes
each source file's Arrow table with the weight column set (float64), so its files store the source's types.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microplex import Synthesizer
from microplex.io import read_table
from microplex.scale import dataset_schema, generate_dataset, rake_dataset, write_calibrated
from microplex.scale.writer import write_common_metadata


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))


def _assert_copy_keeps_types(src, copy, column):
    """Every file of ``copy`` stores the fields of its source file (names, order, types), ``column`` float64."""
    assert _files(copy) == _files(src) and _files(src)
    for rel in _files(src):
        before, after = pq.read_schema(src / rel), pq.read_schema(copy / rel)
        expected = [(f.name, pa.float64() if f.name == column else f.type) for f in before]
        if column not in before.names:
            expected.append((column, pa.float64()))
        assert [(f.name, f.type) for f in after] == expected
        listed = {c["name"]: c["pandas_type"] for c in json.loads(after.metadata[b"pandas"])["columns"]}
        assert listed[column] == "float64" and set(listed) <= set(after.names)  # pandas reads the weights as numbers
    schema = dataset_schema(copy)  # before: DataValidationError, the schema file did not describe the files
    source = dataset_schema(src)
    assert [(f.name, f.type) for f in schema if f.name != column] == [
        (f.name, f.type) for f in source if f.name != column]
    assert schema.field(column).type == pa.float64()


def _same_bytes(a, b):
    assert _files(a) == _files(b)
    for rel in _files(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


@pytest.fixture(scope="module")
def area_synth():
    rng = np.random.default_rng(0)
    region = rng.choice(["north", "south"], 400)
    df = pd.DataFrame({"region": region, "area": [f"{r}:{k}" for r, k in zip(region, rng.integers(1, 4, 400))],
                       "inc": rng.lognormal(8, 1, 400)})
    return Synthesizer(["inc"], ["region", "area"], epochs=1, hidden_features=(8,), transforms=1,
                       verbose=False).fit(df, seed=0), df


@pytest.mark.parametrize("partition_by", [None, ["region"]])
def test_calibrated_copy_of_a_streamed_population_with_a_text_column_reads_back(area_synth, tmp_path, partition_by):
    synth, df = area_synth
    cond = tmp_path / "cond.parquet"
    pq.write_table(pa.table({c: pa.array(df[c].tolist(), pa.string()) for c in ("region", "area")}), cond)
    pop = tmp_path / "pop"
    generate_dataset(synth, cond, path=pop, partition_by=partition_by, rows_per_file=150, seed=0, progress=False)
    assert pq.read_schema(pop / _files(pop)[0]).field("area").type == pa.string()
    margins = {"region": {"north": 300.0, "south": 250.0}}
    res = rake_dataset(pop, margins)
    write_calibrated(res, pop, tmp_path / "cal")
    cal = tmp_path / "cal"
    _assert_copy_keeps_types(pop, cal, "weight")
    back, source = read_table(cal), read_table(pop)  # before: DataValidationError naming 'area: large_string'
    assert len(back) == len(source) == len(df)
    key = ["region", "area", "inc"]
    back, source = back.sort_values(key).reset_index(drop=True), source.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(back[source.columns], source)
    np.testing.assert_allclose(back["weight"].to_numpy(), res.weights(back), rtol=0, atol=0)
    sums = back.groupby(back["region"].astype(str))["weight"].sum()
    assert sums["north"] == pytest.approx(300.0, rel=1e-9) and sums["south"] == pytest.approx(250.0, rel=1e-9)
    again = rake_dataset(cal, margins, weight_col="weight")  # before: DataValidationError "Cannot read"
    assert again.converged and again.n_iter <= 1
    write_calibrated(res, pop, tmp_path / "cal2")
    _same_bytes(cal, tmp_path / "cal2")



def test_weights_written_over_a_text_column_read_back_as_numbers(area_synth, tmp_path):
    """A dataset generated from in-memory conditions stores text as ``large_string`` (the copy read back before);
    weights written over its text column ``area`` came back as the text '1.675977653631285': the schema file's
    pandas metadata still called the column text."""
    synth, df = area_synth
    generate_dataset(synth, df[["region", "area"]], path=tmp_path / "pop", partition_by=["region"], seed=0,
                     progress=False)
    res = rake_dataset(tmp_path / "pop", {"region": {"north": 300.0, "south": 250.0}})
    write_calibrated(res, tmp_path / "pop", tmp_path / "cal", column="area")
    _assert_copy_keeps_types(tmp_path / "pop", tmp_path / "cal", "area")
    back = read_table(tmp_path / "cal")
    assert str(back["area"].dtype) == "float64"
    sums = back.groupby(back["region"].astype(str))["area"].sum()
    assert sums["north"] == pytest.approx(300.0, rel=1e-9) and sums["south"] == pytest.approx(250.0, rel=1e-9)

def _write_dataset(root, tables, keys=None):
    """Writes Arrow ``tables`` (one per file) under ``root`` (hive folders from ``keys``) and its schema file."""
    for k, table in enumerate(tables):
        folder = root / (f"region={keys[k]}" if keys else "")
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{k:06d}.parquet")
    schema = tables[0].schema
    if keys:
        schema = schema.append(pa.field("region", pa.string()))
    (root.parent / f".{root.name}.microplex").mkdir()
    write_common_metadata(root, schema)


def test_calibrated_copy_keeps_every_arrow_type_and_replaces_a_text_column(tmp_path):
    types = pa.schema([("area", pa.string()), ("kind", pa.dictionary(pa.int32(), pa.string())), ("n", pa.int32()),
                       ("x", pa.float32()), ("day", pa.date32()), ("at", pa.timestamp("ms")), ("note", pa.string())])
    rows = [("a", "p", 1, 0.5, dt.date(2020, 1, 2), dt.datetime(2020, 1, 2, 3), "x"),
            ("b", "q", 2, 1.5, dt.date(2021, 3, 4), dt.datetime(2021, 3, 4, 5), "y"),
            ("a", "q", 3, 2.5, dt.date(2022, 5, 6), dt.datetime(2022, 5, 6, 7), "z")]
    frame = pd.DataFrame(rows, columns=types.names)
    tables = [pa.Table.from_pandas(frame.iloc[s], schema=types, preserve_index=False) for s in (slice(0, 2),
                                                                                               slice(2, 3))]
    src = tmp_path / "src"
    _write_dataset(src, tables, keys=["n1", "n2"])
    res = rake_dataset(src, {"area": {"a": 4.0, "b": 2.0}})
    write_calibrated(res, src, tmp_path / "cal", column="note")  # a text column replaced by the weights
    _assert_copy_keeps_types(src, tmp_path / "cal", "note")
    back = read_table(tmp_path / "cal").sort_values("n").reset_index(drop=True)
    assert str(back["note"].dtype) == "float64"  # the pandas metadata describes the weights, not the old text
    np.testing.assert_allclose(back["note"].to_numpy(), [2.0, 2.0, 2.0], rtol=1e-9)
    assert back["day"].tolist() == [r[4] for r in rows] and back["kind"].astype(str).tolist() == ["p", "q", "q"]


def test_calibrated_household_pair_keeps_the_arrow_types(tmp_path):
    hh = [pa.table({"hid": pa.array([1, 2, 3], pa.int64()), "tenure": pa.array(["own", "rent", "own"], pa.string())}),
          pa.table({"hid": pa.array([4, 5], pa.int64()), "tenure": pa.array(["rent", "own"], pa.string())})]
    pp = [pa.table({"hid": pa.array([1, 1, 2, 3, 3], pa.int64()),
                    "sex": pa.array(["F", "M", "F", "M", "M"], pa.string())}),
          pa.table({"hid": pa.array([4, 5, 5], pa.int64()), "sex": pa.array(["F", "F", "M"], pa.string())})]
    _write_dataset(tmp_path / "h", hh, keys=["n1", "n2"])
    _write_dataset(tmp_path / "p", pp, keys=["n1", "n2"])
    margins = {"sex": {"F": 8.0, "M": 8.0}}
    res = rake_dataset(tmp_path / "h", margins, persons=tmp_path / "p", household_id="hid")
    outs = {}
    for name in ("a", "b"):
        outs[name] = tmp_path / f"{name}_h", tmp_path / f"{name}_p"
        n = write_calibrated(res, tmp_path / "h", outs[name][0], persons=tmp_path / "p", persons_out=outs[name][1])
        assert n == 5
    for src, copy in zip((tmp_path / "h", tmp_path / "p"), outs["a"]):
        _assert_copy_keeps_types(src, copy, "weight")
        _same_bytes(copy, tmp_path / f"b{copy.name[1:]}")
    ch, cp = read_table(outs["a"][0]), read_table(outs["a"][1])  # before: DataValidationError (large_string)
    assert len(ch) == 5 and len(cp) == 8
    w = ch.set_index("hid")["weight"]
    np.testing.assert_array_equal(cp["weight"].to_numpy(), w.reindex(cp["hid"]).to_numpy())
    sums = cp.groupby(cp["sex"].astype(str))["weight"].sum()
    assert sums["F"] == pytest.approx(8.0, rel=1e-9) and sums["M"] == pytest.approx(8.0, rel=1e-9)
    again = rake_dataset(outs["a"][0], margins, weight_col="weight", persons=outs["a"][1], household_id="hid")
    assert again.converged and again.n_iter <= 1


def test_pipeline_calibrates_then_sparsifies_a_partitioned_population_with_a_text_area(tmp_path):
    from microplex.datasets import load_dataset
    from microplex.pipeline import run_pipeline

    census = load_dataset("census2000")
    src = census[census["state"].isin(["Delaware", "Vermont", "Wyoming"])]
    src.to_csv(tmp_path / "census.csv", index=False)
    puma_id = src["state"] + ":" + src["puma"].astype(str)
    n = 1500
    rows = [("count", f"state == '{s}'", c / len(src) * n) for s, c in src["state"].value_counts().items()]
    rows += [("count", f"state == '{p.split(':')[0]}' & puma_id == '{p}'", c / len(src) * n)
             for p, c in puma_id.value_counts().items()]
    pd.DataFrame(rows, columns=["aggregate", "filter", "value"]).to_csv(tmp_path / "targets.csv", index=False)
    out = tmp_path / "out"
    config = {"output": str(out), "seed": 0,
              "sources": [{"name": "c", "path": str(tmp_path / "census.csv"),
                           "combine": {"puma_id": ["state", "puma"]}}],
              "model": {"targets": ["educ", "exper"], "conditions": ["state", "puma_id"], "epochs": 1},
              "generate": {"n": n, "partition_by": ["state"], "dataset": "pop"},
              "calibrate": {"targets": str(tmp_path / "targets.csv"), "geography": ["state", "puma_id"]},
              "sparsify": {"by": "state", "max_records": 150, "tolerance": 0.05}}
    result = run_pipeline(config, progress=False)  # before: DataValidationError in [sparsify] (large_string)
    assert list(result.stages) == ["fit", "generate", "calibrate", "sparsify"]
    _assert_copy_keeps_types(out / "pop", out / "calibrated", "weight")
    assert pq.read_schema(out / "calibrated" / _files(out / "calibrated")[0]).field("puma_id").type == pa.string()
    calibrated = read_table(out / "calibrated")
    assert len(calibrated) == n
    got = calibrated.groupby(calibrated["puma_id"].astype(str))["weight"].sum()
    want = puma_id.value_counts() / len(src) * n
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-6)
    assert len(pd.read_parquet(out / "subset.parquet")) == 150
