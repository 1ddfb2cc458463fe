"""Editing saved model files in tests: their zip members, a metadata field (the tampered-file tests)."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Callable, Sequence
from typing import Any


def members(data: bytes) -> list[tuple[str, bytes]]:
    """The (name, bytes) of every member of the zip ``data``, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def zip_members(items: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``items`` (deflated, fixed dates; a name may repeat)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicated names
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in items:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def replace_member(data: bytes, member: str, fn: Callable[[bytes], bytes]) -> bytes:
    """The zip ``data`` with ``member``'s bytes replaced by ``fn`` of them."""
    return zip_members([(n, fn(b) if n == member else b) for n, b in members(data)])


def edit_metadata(data: bytes, fn: Callable[[dict], Any]) -> bytes:
    """The model file ``data`` with its ``metadata.json`` edited in place by ``fn``."""
    def edit(raw: bytes) -> bytes:
        meta = json.loads(raw)
        fn(meta)
        return json.dumps(meta).encode()
    return replace_member(data, "metadata.json", edit)


def _parent(meta: dict, path: Sequence[str] | str) -> tuple[Any, str]:
    *keys, last = path.split(".") if isinstance(path, str) else path
    d = meta
    for k in keys:
        d = d[k]
    return d, last


def set_field(path: Sequence[str] | str, value: Any) -> Callable[[dict], None]:
    """An edit that sets the metadata field at ``path`` (keys, or a dotted string) to ``value``."""
    def fn(meta: dict) -> None:
        d, last = _parent(meta, path)
        d[last] = value
    return fn


def delete_field(path: Sequence[str] | str) -> Callable[[dict], None]:
    """An edit that deletes the metadata field at ``path``."""
    def fn(meta: dict) -> None:
        d, last = _parent(meta, path)
        del d[last]
    return fn
