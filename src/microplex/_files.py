"""Temporary files beside an output, created with the permissions of any other output.

:func:`tempfile.mkstemp` creates its file with mode 0600 whatever the umask, and a file written
through it and renamed onto its final name keeps that mode: a model or table would then be
readable by its owner only, unlike the report or the dataset folder written beside it.
:func:`temp_beside` creates the temporary file exclusively with mode 0666 minus the umask, as
``open(path, "w")`` does.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["temp_beside"]


def temp_beside(path: str | os.PathLike, prefix: str = ".tmp-") -> Path:
    """Creates an empty hidden file in ``path``'s folder (same suffix) and returns its path.

    The name is ``prefix`` + 12 random hex digits + the stem of ``path`` (cut to 40 characters) +
    its suffix; it is created exclusively (``O_EXCL``, never an existing file) with mode
    ``0o666 & ~umask``. The caller renames it onto ``path`` or removes it.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> tmp = temp_beside(folder / "model.mpx")
    >>> tmp.parent == folder, tmp.suffix, tmp.name.startswith(".tmp-"), tmp.stat().st_size
    (True, '.mpx', True, 0)
    """
    path = Path(path)
    folder = path.parent
    for _ in range(100):
        tmp = folder / f"{prefix}{uuid.uuid4().hex[:12]}-{path.stem[:40]}{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"Could not create a temporary file beside {str(path)!r}.")  # pragma: no cover
