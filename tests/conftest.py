"""Shared fixtures of the test suite (the seeding of every test is in the root ``conftest.py``)."""

import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from microplex.datasets import load_dataset


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): much faster
    on a shared machine, and the bytes of the library's default draws; the previous count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cps1():
    return load_dataset("cps1")


def _edit_model_file(data: bytes, meta_fn=None, tensor_fn=None, add_table=False) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            raw = src.read(name)
            if name == "metadata.json" and meta_fn:
                meta = json.loads(raw)
                meta_fn(meta)
                raw = json.dumps(meta).encode()
            if name == "weights.safetensors" and tensor_fn:
                tensors = load_tensors(raw)
                tensor_fn(tensors)
                raw = save_tensors(tensors)
            dst.writestr(name, raw)
        if add_table:
            buf = io.BytesIO()
            pd.DataFrame({"age": [1.0], "__weight__": [1.0]}).to_parquet(buf)
            dst.writestr("conditions.parquet", buf.getvalue())
    out.seek(0)
    return out


@pytest.fixture(scope="session")
def edit_model_file():
    """A model file's bytes rewritten (an untrusted file to load): ``meta_fn`` edits the metadata,
    ``tensor_fn`` the tensors, ``add_table`` adds a conditions table; returns a readable buffer."""
    return _edit_model_file


def _figure_differences(now, pinned, rel: float, atol: float = 0.0, numbers_as_text: bool = False,
                        path: str = "") -> list[str]:
    """Where nested dicts/lists of figures ``now`` differ from ``pinned``: the same structure, labels
    and booleans, each number equal or within ``atol + rel * |pinned|`` (NaN only against NaN). With
    ``numbers_as_text`` a string that parses as a number is compared as one (figures written as text)."""
    if isinstance(pinned, dict):
        if not isinstance(now, dict) or now.keys() != pinned.keys():
            return [f"{path}: keys"]
        return [d for k in pinned for d in _figure_differences(now[k], pinned[k], rel, atol, numbers_as_text,
                                                               f"{path}.{k}")]
    if isinstance(pinned, list):
        if not isinstance(now, list) or len(now) != len(pinned):
            return [f"{path}: length"]
        return [d for i, (a, b) in enumerate(zip(now, pinned))
                for d in _figure_differences(a, b, rel, atol, numbers_as_text, f"{path}[{i}]")]
    a, b = now, pinned
    if numbers_as_text and isinstance(a, str) and isinstance(b, str):
        try:
            a, b = float(a), float(b)
        except ValueError:  # a label
            pass
    numeric = (isinstance(a, (int, float)) and isinstance(b, (int, float))
               and not isinstance(a, bool) and not isinstance(b, bool))
    if not numeric:
        return [] if now == pinned else [f"{path}: {now!r} != {pinned!r}"]
    if a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rel * abs(b):
        return []
    return [f"{path}: {now!r} != {pinned!r}"]


@pytest.fixture(scope="session")
def figure_differences():
    """Where two nested dicts/lists of figures differ, numbers to a tolerance (:func:`_figure_differences`)."""
    return _figure_differences


@pytest.fixture(scope="module")
def text_code_model(tmp_path_factory):
    """A folder holding ``m.mpx``: a model of income given household size ('1', '2', '3+'), county ('013', '100',
    '245', text codes) and age; the command-line tests of text categories in condition files share it."""
    from microplex import Synthesizer

    folder = tmp_path_factory.mktemp("text_codes")
    rng = np.random.default_rng(0)
    n = 1500
    hh = rng.choice(["1", "2", "3+"], n)
    df = pd.DataFrame({"hh": hh, "county": rng.choice(["013", "100", "245"], n), "age": rng.integers(18, 80, n),
                       "inc": (np.where(hh == "1", 20000, 50000) * rng.lognormal(0, 0.2, n)).round(2)})
    Synthesizer(["inc"], ["hh", "county", "age"], epochs=1, verbose=False).fit(df, seed=0).save(folder / "m.mpx")
    return folder


@pytest.fixture(scope="module")
def west() -> pd.DataFrame:
    """census2000's Idaho, Nevada and Utah, with ``puma_id`` (state and PUMA code: PUMA codes repeat across states)
    and unit weights."""
    from microplex.datasets import load_dataset

    df = load_dataset("census2000")
    df = df[df.state.isin(["Idaho", "Nevada", "Utah"])].copy().reset_index(drop=True)
    df["puma_id"] = df.state + ":" + df.puma.astype(str)
    df["weight"] = 1.0
    return df
