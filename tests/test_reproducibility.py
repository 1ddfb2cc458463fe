"""The same seed gives identical bytes in processes with different string hashing (``PYTHONHASHSEED``).

Each test runs one entry point in two fresh interpreters whose ``hash()`` of strings differs, so any
output that follows the iteration order of a ``set`` of strings (or of a dict built from one) differs
between them.
"""

import hashlib
import os
import subprocess
import sys
import textwrap


def _run_with_hash_seed(code: str, hash_seed: int, cwd) -> str:
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_format_filter_and_target_names_do_not_follow_set_order(tmp_path):
    # values that print alike (1 and '1') used to keep the set's iteration order, which the hash seed sets
    code = """
        from microplex import Target, Targets
        from microplex.calibration import format_filter
        for i in range(64):
            print(format_filter({"x": {i, str(i)}}))
        t = Targets([Target(value=5.0, filters={"x": {15, "15", "a"}}), Target(value=1.0, filters={"x": {True, "True"}})])
        print([x.name for x in t])
        print(t.to_frame().to_csv())
    """
    out = [_run_with_hash_seed(code, s, tmp_path) for s in (0, 1)]
    assert "x in {'0', 0}" in out[0]
    assert out[0] == out[1]


def test_synthesizer_fit_save_sample_identical_across_hash_seeds(tmp_path):
    # string categories in targets and conditions (object and categorical dtypes), point masses, heaps,
    # the condition model: model file bytes and drawn records
    code = """
        import hashlib, sys
        import numpy as np, pandas as pd, torch
        torch.set_num_threads(1)
        from microplex import Synthesizer
        from microplex.datasets import load_dataset
        df = load_dataset("acs12").dropna(subset=["income", "hrs_work"]).head(500).reset_index(drop=True)
        df["edu"] = df["edu"].astype("category")
        df["w"] = np.linspace(0.5, 2.0, len(df))
        s = Synthesizer(["income", "hrs_work", "employment"], ["race", "gender", "age", "edu"],
                        condition_model=True, epochs=1, min_heap_count=10, verbose=False)
        s.fit(df, weight_col="w", seed=0)
        s.save("m.mpx")
        print(s.heaps_, s.point_masses_)
        print(hashlib.sha256(open("m.mpx", "rb").read()).hexdigest())
        for frame in (s.sample(200, seed=1), s.generate(df.head(100), seed=2)):
            print(frame.dtypes.to_dict())
            print(hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest())
    """
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _run_with_hash_seed(code, 0, tmp_path / "a")
    b = _run_with_hash_seed(code, 12345, tmp_path / "b")
    assert a == b
    assert hashlib.sha256((tmp_path / "a" / "m.mpx").read_bytes()).digest() == \
        hashlib.sha256((tmp_path / "b" / "m.mpx").read_bytes()).digest()
