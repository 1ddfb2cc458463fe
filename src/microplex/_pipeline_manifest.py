"""A pipeline stage's manifest (resume and reproduce) and its atomic writes.

:class:`Manifest` is a stage's record in ``output/.microplex/<stage>.json``: the hash of its
settings, seeds, inputs and the package version (its fingerprint), and the hashes of its
outputs, the figures the stage reported and a checksum of the whole record. A stage whose record
matches, whose checksum holds, whose figures are what the stage writes (:data:`FIGURES`) and whose
outputs are untouched is skipped; its figures are then shown in the run's summary. Any other
record (unreadable, edited, or with figures of the wrong type) counts as absent: the stage runs
again and rewrites it, so no made-up figure reaches the summary. :class:`Writes`
writes a stage's files under temporary names and renames them together when the stage succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from ._errors import DataValidationError
from ._files import load_json, temp_beside
from ._params import to_python
from ._pipeline_config import MANIFESTS
from .io import file_sha256, write_text_atomic

__all__ = ["Manifest", "Writes", "check_removable", "discard_folder", "remove_orphans", "written_by_microplex",
           "FIGURES", "MANIFESTS", "MAX_RECORD_BYTES", "read_record", "read_verified", "valid_figures", "verified"]

logger = logging.getLogger(__name__)

#: Largest manifest read (a record is a few kilobytes; a bigger file is not one).
MAX_RECORD_BYTES = 1 << 20
#: Longest text figure (a stage's ``note``, the ``report`` path) a record may hold.
MAX_TEXT = 4096


# -- the figures each stage writes (``run(ctx) -> figures``, :mod:`microplex._pipeline_stages`) --------
def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**63


def _number(v: Any) -> bool:
    """A float or int figure (an error or a loss); NaN or infinite only as ``json`` writes a stage's own."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _error(v: Any) -> bool:
    """``max_rel_error``: a number >= 0 (or NaN), or ``None`` when the solver reports none."""
    return v is None or (_number(v) and (math.isnan(v) or v >= 0))


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT and "\x00" not in v


def _heldout(v: Any) -> bool:
    """``heldout_<population>`` of the evaluate stage: ``{cells, median, p90}`` of the held-out errors."""
    return (isinstance(v, dict) and set(v) == {"cells", "median", "p90"} and _count(v["cells"])
            and _number(v["median"]) and _number(v["p90"]))


def _correlation(v: Any) -> bool:
    """A correlation figure: a number in [-1, 1] (a float's rounding past 1 allowed), or NaN (none defined)."""
    return _number(v) and (math.isnan(v) or abs(v) <= 1 + 1e-9)


def _bound(v: Any) -> bool:
    """``widest_bound`` of the fuse stage: ``{y, z, lower, cia, upper, fused}`` of the widest range of correlations
    (:func:`microplex._pipeline_stages.widest_bound`): two column names, finite ``lower <= upper`` in [-1, 1]."""
    return (isinstance(v, dict) and set(v) == {"y", "z", "lower", "cia", "upper", "fused"} and _text(v["y"])
            and _text(v["z"]) and all(_correlation(v[k]) for k in ("lower", "cia", "upper", "fused"))
            and not math.isnan(v["lower"]) and not math.isnan(v["upper"]) and v["lower"] <= v["upper"])


#: Per stage, each figure its record may hold and the check of its value (key -> check); a key
#: ``"heldout_*"`` stands for every key with that prefix. A record holding any other figure, or a
#: figure failing its check, is invalid (the stage runs again).
FIGURES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "fuse": {"rows": _count, "note": _text, "bound_pairs": _count, "widest_bound": _bound, "fusion_bounds": _text,
             "fusion_diagnostics": _text, "fusion_shared": _text},
    "fit": {"epochs": _count, "loss": _number, "val_loss": _number, "train_rows": _count,
            "train_households": _count, "epsilon": _number, "delta": _number, "note": _text},
    "generate": {"rows": _count, "households": _count, "note": _text},
    "calibrate": {"targets": _count, "max_rel_error": _error, "converged": lambda v: v is None or isinstance(v, bool),
                  "passes": _count, "note": _text},
    "sparsify": {"kept": _count, "max_rel_error": _error, "note": _text},
    "evaluate": {"report": _text, "note": _text, "membership_auc": _number, "heldout_*": _heldout},
}


def valid_figures(stage: str, figures: Any) -> bool:
    """Whether ``figures`` are figures ``stage`` writes: known keys only, each of its type (:data:`FIGURES`)."""
    allowed = FIGURES.get(stage)
    if allowed is None or not isinstance(figures, dict):
        return False
    for key, value in figures.items():
        if not isinstance(key, str):
            return False
        check = allowed.get(key) or (allowed.get("heldout_*") if key.startswith("heldout_") and len(key) <= 200 else None)
        if check is None or not check(value):
            return False
    return True


def _plain(value: Any) -> Any:
    """A value ``json`` cannot write: a numpy scalar (``np.int64`` cells) as its number, anything else as text."""
    value = to_python(value)
    return value if isinstance(value, int | float | bool) else str(value)


def read_record(path: Path) -> dict[str, Any] | None:
    """A stage record (or start marker) read as untrusted JSON: the object it holds, or ``None`` when the
    path is no regular file, is over :data:`MAX_RECORD_BYTES`, is not UTF-8 JSON, gives a key twice in one object
    (:func:`~microplex._files.load_json`) or holds no object."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return None
        record = load_json(path.read_bytes().decode("utf-8"), repr(str(path)))  # a key given twice: unreadable
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _checksum(record: Mapping[str, Any]) -> str:
    """SHA-256 of ``record`` without its ``checksum``, in canonical JSON (sorted keys)."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def verified(record: Mapping[str, Any], stage: str) -> bool:
    """Whether ``record`` is a finished record of ``stage`` as :meth:`Manifest.finish` wrote it: it names the stage
    and its checksum holds. Any other (an edited record) counts as absent: its stage runs again, and nothing it
    lists is trusted (:func:`read_verified`)."""
    return record.get("stage") == stage and record.get("checksum") == _checksum(record)


def read_verified(path: Path, stage: str) -> dict[str, Any] | None:
    """The finished record of ``stage`` at ``path`` (:func:`read_record`) when it is :func:`verified`, else
    ``None``: what reads a record to act on it (skip the stage, remove the outputs it lists) reads it so."""
    record = read_record(path)
    return record if record is not None and verified(record, stage) else None


class Manifest:
    """A stage's record: it is done when the record shows the same settings, seeds, inputs and outputs.

    ``read``: the hash of each input file the runner read before the first stage (targets, public
    metadata), taken when it was read: the record names the content the stage used, not the file's content
    when the stage starts. Every other input is hashed now.
    """

    def __init__(self, out: Path, name: str, settings: dict[str, Any], inputs: list[Path], outputs: list[Path],
                 read: Mapping[Path, str] | None = None):
        self.out, self.name, self.settings = out, name, settings
        self.inputs, self.outputs = inputs, outputs
        self.manifest = out / MANIFESTS / f"{name}.json"
        self.started = out / MANIFESTS / f"{name}.started.json"
        payload = {
            "settings": settings,
            "inputs": {str(p): (read or {}).get(p) or _output_hash(p) for p in inputs},
            "microplex_version": __version__,
        }
        self.input_hashes = payload["inputs"]
        self.fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def is_done(self) -> dict[str, Any] | None:
        """The manifest record when the stage is up to date; ``None`` (run it) otherwise.

        A manifest is untrusted: an unreadable, oversized or wrongly shaped one, one whose checksum
        does not match its content (an edited record) or whose figures are not what the stage writes
        (:func:`valid_figures`) means "not done", so the stage runs again and rewrites it. The
        figures of a returned record are therefore checked.
        """
        if not self.manifest.is_file():
            return None
        record = read_record(self.manifest)
        if record is None:
            logger.warning("The manifest %s is unreadable; stage %s runs again.", self.manifest, self.name)
            return None
        if not isinstance(record.get("outputs"), dict) \
                or not isinstance(record.get("figures", {}), dict) or record.get("fingerprint") != self.fingerprint:
            return None
        if not verified(record, self.name) or not valid_figures(self.name, record.get("figures")):
            logger.warning("The manifest %s was edited or holds invalid figures; stage %s runs again.",
                           self.manifest, self.name)
            return None
        for p in self.outputs:
            if not p.exists() or record["outputs"].get(str(p)) != _output_hash(p):
                return None
        return record

    def restarts(self) -> bool:
        """Whether the last attempt at this stage had another fingerprint (other settings, seeds, inputs or
        version), so that what it streamed in place is not this run's: from the start marker
        :meth:`start` writes, else from the finished record. ``False`` when neither exists (a first run,
        or an output folder of an earlier version interrupted in this stage: its writer then resumes
        or names the difference); ``True`` when the marker is unreadable (an attempt of unknown settings)."""
        for path in (self.started, self.manifest):
            if not path.exists() and not path.is_symlink():
                continue
            record = read_record(path)
            return record is None or record.get("fingerprint") != self.fingerprint
        return False

    def start(self) -> None:
        """Marks the stage as attempted with this fingerprint (before it writes anything in place)."""
        write_text_atomic(json.dumps({"stage": self.name, "fingerprint": self.fingerprint}), self.started)

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
        record = json.loads(json.dumps(record, default=_plain))  # the record as it is read back
        record["checksum"] = _checksum(record)
        write_text_atomic(json.dumps(record, indent=1), self.manifest)


class Writes:
    """A stage's outputs, written to temporary files beside them and renamed together at the end.

    A stage function writes to ``ctx.output(name)``, a temporary beside the final file. When it returns,
    :meth:`commit` renames every file onto its final name; :meth:`discard` (always called) removes
    what is left, so a failed stage leaves its previous outputs as they were and no half-written
    file. Only a streamed dataset folder is written in place, by ``generate_dataset``, which writes
    each part file atomically and resumes from its own manifest; the runner removes such a folder first
    (:func:`discard_folder`) when the stage's last attempt had another fingerprint (:meth:`Manifest.restarts`).
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


#: A temporary of :func:`microplex._files.temp_beside` (``.tmp-`` + 12 hex digits + ``-`` + stem + suffix).
_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{12}-")


def remove_orphans(folders: Iterable[Path]) -> list[Path]:
    """Removes the temporaries a killed run left in ``folders`` (files named as :func:`temp_beside` names
    them; a failing stage removes its own). Called under the pipeline's lock, so no other run is writing
    them. Returns the removed paths."""
    removed = []
    for folder in dict.fromkeys(folders):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            if _TEMPORARY.match(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    if removed:
        logger.info("Removed %d temporary files of an interrupted run: %s", len(removed), [p.name for p in removed])
    return removed


def written_by_microplex(path: Path) -> bool:
    """Whether the folder ``path`` may be removed as a stage's output: it is empty, or microplex wrote it, as
    its markers show: a dataset's side folder ``.NAME.microplex`` beside it (or, written by an earlier
    version, its manifest inside), or a household population, which holds only its ``households`` and
    ``persons`` datasets (besides hidden entries), each with its side folder."""
    from .scale._layout import layout

    def marked(folder: Path) -> bool:
        meta = layout(folder).meta
        return meta.is_dir() and not meta.is_symlink()

    if marked(path):
        return True
    entries = list(path.iterdir())
    if not entries:
        return True
    names = {e.name for e in entries if not e.name.startswith(".")}
    return bool(names) and names <= {"households", "persons"} \
        and all((path / n).is_dir() and not (path / n).is_symlink() and marked(path / n) for n in names)


def check_removable(path: Path, hint: str = "choose another output folder") -> None:
    """Refuses (:class:`~microplex.DataValidationError`) to remove the folder ``path`` unless
    :func:`written_by_microplex`: a folder of the user's where a stage writes its output (a link or a file is
    not a folder, and is left for the writer to refuse). ``hint``: how to pick another name."""
    if path.is_dir() and not path.is_symlink() and not written_by_microplex(path):
        from .scale._layout import layout

        raise DataValidationError(
            f"The folder {str(path)!r}, where the pipeline writes an output, holds files that microplex did not write "
            f"(it has no side folder {layout(path).meta.name!r} beside it); refusing to remove it. Move it elsewhere, "
            f"or {hint}.")


def discard_folder(path: Path, hint: str = "choose another output folder") -> None:
    """Removes a dataset folder a stage writes (a folder streamed into in place, a calibrated copy) and its
    side folder (``.NAME.microplex``); a link or a file at ``path`` is left for the writer to refuse, and a
    folder that microplex did not write is refused (:func:`check_removable`), not removed."""
    from .scale._layout import layout

    check_removable(path, hint)
    lay = layout(path)
    for folder in (lay.root, lay.meta):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)


def _output_hash(path: Path) -> str:
    """Hash of a stage file; for a streamed dataset folder, of its manifest and of the name and size of every
    part file (a part deleted, or replaced by one of another size, changes it, so the stage that wrote the
    folder is not skipped: it runs again and its resume checks the parts). Reading every part to hash its
    bytes would cost a pass over the data at each run; a part replaced by another of the same size is found
    by ``--force`` (the resume's checks of the Parquet footers) only."""
    from .scale._layout import layout

    if path.is_dir() and layout(path).manifest.exists():
        digest = hashlib.sha256(file_sha256(layout(path).manifest).encode())
        root = layout(path).root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # hidden: metadata, temporaries
            for name in sorted(filenames):
                if name.startswith("part-") and name.endswith(".parquet"):
                    f = Path(dirpath, name)
                    digest.update(f"{f.relative_to(root).as_posix()}\0{f.stat().st_size}\n".encode())
        return digest.hexdigest()
    return file_sha256(path) if path.exists() else ""
