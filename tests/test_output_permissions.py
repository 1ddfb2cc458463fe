"""Outputs written through a temporary file (model files, tables, pipeline stage files) get the
same permissions as any other output: 0666 minus the umask, not mkstemp's 0600."""

import os
import stat

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex._files import temp_beside
from microplex._pipeline_manifest import Writes
from microplex.io import write_parquet_atomic, write_text_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_model_file_and_tables_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200), "c": rng.integers(0, 3, 200)})
    synth = Synthesizer(["x"], ["c"], epochs=1, verbose=False).fit(df, seed=0)
    synth.save(tmp_path / "m.mpx")
    write_parquet_atomic(df, tmp_path / "t.parquet")
    write_text_atomic("x", tmp_path / "a.txt")
    (tmp_path / "plain.txt").write_text("x")        # what open() gives: the reference
    expected = 0o666 & ~mask
    assert mode(tmp_path / "plain.txt") == expected
    for name in ("m.mpx", "t.parquet", "a.txt"):
        assert mode(tmp_path / name) == expected, name
    assert Synthesizer.load(tmp_path / "m.mpx").target_vars == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "m.mpx", "plain.txt", "t.parquet"]


def test_pipeline_stage_files_follow_the_umask(tmp_path, umask):
    umask(0o022)
    writes = Writes()
    tmp = writes(tmp_path / "out" / "scores.csv")
    tmp.write_text("a,b\n")
    writes.commit()
    assert mode(tmp_path / "out" / "scores.csv") == 0o644


def test_temp_beside_never_reuses_an_existing_file(tmp_path):
    names = {temp_beside(tmp_path / "m.mpx") for _ in range(50)}
    assert len(names) == 50 and all(p.exists() and p.suffix == ".mpx" for p in names)
