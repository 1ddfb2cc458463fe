"""Model files without pickle: a zip archive of JSON metadata, safetensors and Parquet.

An ``.mpx`` archive holds ``metadata.json`` (with ``format`` and ``format_version``),
``weights.safetensors`` (tensors only) and any number of ``<name>.parquet`` tables. Nothing in
it is executable on load. Archives are written to a temporary file and renamed, so a failed
save never leaves a half-written model.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .._errors import DataValidationError

__all__ = ["FORMAT_VERSION", "write_archive", "read_archive"]

#: Version of the archive layout; bumped on incompatible changes.
FORMAT_VERSION = 1


def write_archive(
    path: str | os.PathLike,
    metadata: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Atomically writes a model archive to ``path``."""
    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, **metadata}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mpx", dir=path.parent or ".")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            _write_member(zf, "metadata.json", json.dumps(meta, indent=1, default=_json_default).encode())
            contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            _write_member(zf, "weights.safetensors", save_tensors(contiguous))
            for name, table in (tables or {}).items():
                buf = io.BytesIO()
                table.to_parquet(buf, index=False)
                _write_member(zf, f"{name}.parquet", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Writes one member with a fixed timestamp, so equal models give byte-identical files."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def read_archive(
    path: str | os.PathLike, expected_format: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, pd.DataFrame]]:
    """Reads a model archive; checks its ``format`` and ``format_version``."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, FileNotFoundError, IsADirectoryError) as exc:
        raise DataValidationError(f"{str(path)!r} is not a microplex model file: {exc}") from exc
    with zf:
        names = set(zf.namelist())
        if "metadata.json" not in names:
            raise DataValidationError(f"{str(path)!r} is not a microplex model file (no metadata.json).")
        meta = json.loads(zf.read("metadata.json"))
        if meta.get("format") != expected_format:
            raise DataValidationError(
                f"{str(path)!r} holds a {meta.get('format')!r} model, expected {expected_format!r}."
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataValidationError(
                f"{str(path)!r} has format version {meta.get('format_version')}; this microplex "
                f"reads version {FORMAT_VERSION}."
            )
        tensors = load_tensors(zf.read("weights.safetensors"))
        tables = {
            n[: -len(".parquet")]: pd.read_parquet(io.BytesIO(zf.read(n)))
            for n in names
            if n.endswith(".parquet")
        }
    return meta, tensors, tables


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
