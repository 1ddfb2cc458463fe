"""Targets files read as the file writes them: ids beyond 2**53, pandas read options, header checks under those
options, and the advice for a file separated by ';'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets

A, B = 2**60, 2**60 + 1  # adjacent 64-bit ids: float64 holds both as 2**60


def _records() -> pd.DataFrame:
    return pd.DataFrame({"hid": np.array([A] * 10 + [B] * 10 + [7] * 10, dtype=np.int64), "w": 1.0})


def _count_of(targets: Targets, hid: int) -> float:
    rec = _records()
    w = np.asarray(Calibrator(method="linear").fit(rec, targets, weight_col="w").weights, float)
    return float(w[(rec.hid == hid).to_numpy()].sum())


# -- 1. ids beyond 2**53 in an equality column with an empty cell ----------------------------------------------
def test_csv_ids_beyond_2_53_with_an_empty_cell_keep_their_digits(tmp_path):
    """Before: the empty cell made pandas read the column as float64, and the id 2**60+1 became 2**60: the target
    ``count[hid == 1152921504606846976]`` put the total 40 on another record's id (the file's id weighed 10)."""
    p = tmp_path / "t.csv"
    p.write_text(f"value,hid\n40,{B}\n60,\n")
    t = Targets.from_csv(p)
    assert t[0].filters == {"hid": B} and type(t[0].filters["hid"]) is int
    assert t[0].name == f"count[hid == {B}]" and t[1].filters == {}
    assert abs(_count_of(t, B) - 40.0) < 1e-9
    assert abs(_count_of(t, A) - 40.0) > 1.0
    # a negative id and a padded one keep theirs too; small ids read as before
    p.write_text(f"value,hid,k\n40,-{B},5\n60,,\n")
    assert Targets.from_csv(p)[0].filters == {"hid": -B, "k": 5}


def test_csv_big_code_written_as_a_float_that_float64_cannot_hold_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(f"value,hid\n40,{B}.0\n60,\n")
    with pytest.raises(DataValidationError, match=rf"t.csv'.*column 'hid' holds '{B}.0', beyond 2\*\*53.*"
                                                  rf"reads it as 1.152921504606847e\+18"):
        Targets.from_csv(p)
    p.write_text("value,hid\n40,1e18\n60,\n")  # float64 holds 10**18 exactly: read as written
    assert Targets.from_csv(p)[0].filters == {"hid": 10**18}


def test_parquet_int64_ids_with_a_null_keep_their_digits(tmp_path):
    """Before: pandas read the int64 column holding a null as float64: ``count[hid == 1152921504606846976]``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"value": [40.0, 60.0, 5.0], "hid": pa.array([B, None, 7], pa.int64()),
                             "u": pa.array([2**64 - 1, None, 3], pa.uint64())}), p)
    t = Targets.from_parquet(p)
    assert [x.filters for x in t] == [{"hid": B, "u": 2**64 - 1}, {}, {"hid": 7, "u": 3}]
    pq.write_table(pa.table({"value": [40.0, 60.0], "hid": pa.array([B, None], pa.int64())}), p)
    t = Targets.from_parquet(p)
    assert t.names == [f"count[hid == {B}]", "count[]"]
    assert abs(_count_of(t, B) - 40.0) < 1e-9
