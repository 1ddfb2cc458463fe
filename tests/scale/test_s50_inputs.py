"""Input sweep of microplex.scale: resumed runs whose inputs changed."""

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
