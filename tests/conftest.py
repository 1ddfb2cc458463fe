"""Shared fixtures of the test suite (the seeding of every test is in the root ``conftest.py``)."""

import io
import json
import zipfile

import pandas as pd
import pytest
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from microplex.datasets import load_dataset


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
