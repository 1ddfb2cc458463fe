from pathlib import Path

import pytest

from microplex.scale import CellCounts, generate_dataset

from .test_generate import _cells, _files

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("partition_by", [None, ["black"]])
def test_dask_output_is_bit_identical_to_local(tiny_synth, small_blocks, tmp_path, client, partition_by):
    src = CellCounts(_cells())
    kwargs = dict(partition_by=partition_by, rows_per_file=450, seed=11, progress=False)
    local = generate_dataset(tiny_synth, src, path=tmp_path / "local", **kwargs)
    dist = generate_dataset(tiny_synth, src, path=tmp_path / "dask", client=client, **kwargs)
    assert local["files"] == dist["files"] and len(local["files"]) >= 3
    assert _files(tmp_path / "local") == _files(tmp_path / "dask")


def test_dask_resumes_a_local_run(tiny_synth, small_blocks, tmp_path, client):
    kwargs = dict(n=1500, rows_per_file=300, seed=4, progress=False)
    generate_dataset(tiny_synth, path=tmp_path / "ref", **kwargs)
    root = tmp_path / "run"
    generate_dataset(tiny_synth, path=root, **kwargs)
    for marker in sorted((root / "_microplex_tasks").glob("*.json"))[2:]:
        marker.unlink()  # as if the run had stopped after two tasks
    (root / "part-000004.parquet").unlink()
    generate_dataset(tiny_synth, path=root, client=client, **kwargs)
    assert _files(root) == _files(tmp_path / "ref")
