"""The trust property shared by every property-based test.

A call on any input either returns a correct result or raises a :class:`~microplex.MicroplexError`;
the caller's data is unchanged; nothing is written outside the output folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from microplex import MicroplexError


def snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """A deep copy to compare the caller's frame against after the call."""
    return frame.copy(deep=True)


def assert_unchanged(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """The caller's frame holds the same columns, index, dtypes and values as before."""
    assert list(before.columns) == list(after.columns)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def result_or_microplex_error(fn: Callable[[], Any]) -> tuple[Any, MicroplexError | None]:
    """Runs ``fn``; a :class:`MicroplexError` is returned as the second item, any other exception fails."""
    try:
        return fn(), None
    except MicroplexError as exc:
        assert str(exc), "a microplex error must carry a message"
        return None, exc


def files_under(root: Path) -> set[Path]:
    return {p for p in Path(root).rglob("*")}


@contextlib.contextmanager
def nothing_written_outside(sandbox: Path, allowed: Path, *also: Path) -> Iterator[None]:
    """Asserts that, inside ``sandbox``, files appear only under ``allowed`` (or the folders ``also``)
    (and the working directory is ``sandbox`` while the block runs, so relative paths land there)."""
    before = files_under(sandbox)
    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        yield
    finally:
        os.chdir(cwd)
    new = files_under(sandbox) - before
    folders = [Path(a) for a in (allowed, *also)]
    outside = [p for p in new if not any(a in p.parents or p == a for a in folders)]
    assert not outside, f"written outside {allowed}: {sorted(map(str, outside))[:5]}"
