import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from microplex.scale import CellCounts, FrameSource, generate_dataset
from microplex.scale._layout import layout

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
    for marker in sorted(layout(root).tasks.glob("*.json"))[2:]:
        marker.unlink()  # as if the run had stopped after two tasks
    (root / "part-000004.parquet").unlink()
    generate_dataset(tiny_synth, path=root, client=client, **kwargs)
    assert _files(root) == _files(tmp_path / "ref")


class FlakySource(FrameSource):
    """Fails to read rows past ``fail_from`` while the file ``flag`` exists (a disk or worker
    fault); other reads take ``delay`` seconds then, so tasks are still running when one fails."""

    def __init__(self, frame, flag, fail_from, delay=0.0):
        super().__init__(frame)
        self.flag, self.fail_from, self.delay = str(flag), fail_from, delay

    def read(self, start, stop):
        if Path(self.flag).exists():
            if stop > self.fail_from:
                raise OSError(5, "Input/output error")
            time.sleep(self.delay)
        return super().read(start, stop)


def test_dask_task_failure_then_resume(tiny_synth, small_blocks, tmp_path, client):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    frame = tiny_synth.training_conditions_.head(1800)
    flag = tmp_path / "fail"
    flag.touch()
    src = FlakySource(frame, flag, fail_from=1500, delay=0.5)
    kwargs = dict(rows_per_file=300, seed=8, progress=False)
    with pytest.raises(OSError, match="Input/output error"):
        generate_dataset(tiny_synth, src, path=tmp_path / "run", client=client, **kwargs)
    visible = _files(tmp_path / "run")
    assert "part-000005.parquet" not in visible and not list((tmp_path / "run").rglob(".tmp-*"))
    time.sleep(1.0)  # nothing still running writes after the call has returned
    assert _files(tmp_path / "run") == visible and not list((tmp_path / "run").rglob(".tmp-*"))
    for rel in visible:  # every visible file is whole
        assert pq.read_table(tmp_path / "run" / rel).num_rows == 300
    flag.unlink()
    generate_dataset(tiny_synth, src, path=tmp_path / "run", client=client, **kwargs)
    generate_dataset(tiny_synth, FrameSource(frame), path=tmp_path / "ref", **kwargs)
    assert _files(tmp_path / "run") == _files(tmp_path / "ref")


def test_rake_dataset_on_the_cluster_matches_local(tiny_synth, tmp_path, client):
    from microplex.scale import rake_dataset

    path = tmp_path / "pop"
    generate_dataset(tiny_synth, n=2000, path=path, partition_by=["black"], rows_per_file=500, seed=3, progress=False)
    df = pd.read_parquet(path)
    margins = {"black": {0: 3000.0, 1: 1000.0}, "educ": (df["educ"].value_counts() * 2.0).to_dict()}
    local = rake_dataset(path, margins)
    dist = rake_dataset(path, margins, client=client)
    assert local.converged and dist.converged and dist.n_cells == local.n_cells > 0
    np.testing.assert_allclose(dist.lam, local.lam, rtol=1e-12, atol=1e-12)
