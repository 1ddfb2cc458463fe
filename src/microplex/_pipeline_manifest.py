"""A pipeline stage's manifest (resume and reproduce) and its atomic writes.

:class:`Manifest` is a stage's record in ``output/.microplex/<stage>.json``: the hash of its
settings, seeds, inputs and the package version (its fingerprint), and the hashes of its
outputs. A stage whose record matches and whose outputs are untouched is skipped. :class:`Writes`
writes a stage's files under temporary names and renames them together when the stage succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from . import __version__
from ._files import temp_beside
from ._pipeline_config import MANIFESTS
from .io import file_sha256, write_text_atomic

__all__ = ["Manifest", "Writes", "MANIFESTS", "MAX_RECORD_BYTES"]

logger = logging.getLogger(__name__)

#: Largest manifest read (a record is a few kilobytes; a bigger file is not one).
MAX_RECORD_BYTES = 1 << 20


class Manifest:
    """A stage's record: it is done when the record shows the same settings, seeds, inputs and outputs."""

    def __init__(self, out: Path, name: str, settings: dict[str, Any], inputs: list[Path], outputs: list[Path]):
        self.out, self.name, self.settings = out, name, settings
        self.inputs, self.outputs = inputs, outputs
        self.manifest = out / MANIFESTS / f"{name}.json"
        payload = {
            "settings": settings,
            "inputs": {str(p): _output_hash(p) for p in inputs},
            "microplex_version": __version__,
        }
        self.input_hashes = payload["inputs"]
        self.fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def is_done(self) -> dict[str, Any] | None:
        """The manifest record when the stage is up to date; ``None`` (run it) otherwise.

        A manifest is untrusted: an unreadable, oversized or wrongly shaped one means "not done",
        so the stage runs again and rewrites it.
        """
        if not self.manifest.is_file() or self.manifest.stat().st_size > MAX_RECORD_BYTES:
            return None
        try:
            record = json.loads(self.manifest.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError):
            logger.warning("The manifest %s is unreadable; stage %s runs again.", self.manifest, self.name)
            return None
        if not isinstance(record, dict) or not isinstance(record.get("outputs"), dict) \
                or not isinstance(record.get("figures", {}), dict) or record.get("fingerprint") != self.fingerprint:
            return None
        for p in self.outputs:
            if not p.exists() or record["outputs"].get(str(p)) != _output_hash(p):
                return None
        return record

    def finish(self, seconds: float, figures: dict[str, Any]) -> None:
        """Writes the record of a stage that just ran (atomically)."""
        record = {
            "stage": self.name,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "inputs": self.input_hashes,
            "outputs": {str(p): _output_hash(p) for p in self.outputs},
            "microplex_version": __version__,
            "seconds": round(seconds, 3),
            "figures": figures,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_text_atomic(json.dumps(record, indent=1, default=str), self.manifest)


class Writes:
    """A stage's outputs, written to temporary files beside them and renamed together at the end.

    A stage function writes to ``ctx.output(name)``, a temporary beside the final file. When it returns,
    :meth:`commit` renames every file onto its final name; :meth:`discard` (always called) removes
    what is left, so a failed stage leaves its previous outputs as they were and no half-written
    file. Only a streamed dataset folder is written in place, by ``generate_dataset``, which writes
    each part file atomically and resumes from its own manifest.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __call__(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(final)  # 0666 minus the umask, like the outputs written directly
        self._pending.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)


def _output_hash(path: Path) -> str:
    """Hash of a stage file; for a streamed dataset folder, of its manifest."""
    from .scale._layout import layout

    if path.is_dir() and layout(path).manifest.exists():
        return file_sha256(layout(path).manifest)
    return file_sha256(path) if path.exists() else ""
