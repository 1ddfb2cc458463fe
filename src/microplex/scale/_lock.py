"""One writer per output folder: a lock file created atomically (``O_CREAT | O_EXCL``).

The lock ``_microplex.lock`` (in the dataset's side folder, see :mod:`._layout`) holds the writer's pid, host, boot id, pid namespace, process
start time and the time it was taken (JSON). A second :func:`~microplex.scale.generate_dataset`
on the same folder finds it and refuses (:class:`~microplex.MicroplexError`), so it never removes
the first writer's temporary files nor writes beside it. The lock is removed when the call ends,
by an error too.

A lock left by a writer that was killed (``kill -9``, power loss) is *stale*. It is taken over
only when its holder is provably dead: same host, same boot and pid namespace, and no process
with that pid (or one that started at another time, i.e. a reused pid). The take-over is logged
as a warning. Any other lock (another host, an unreadable file, a live process) is reported with
the holder and how to clear it; it is never taken silently.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from .._errors import DataValidationError, MicroplexError
from .._files import load_json
from ._layout import check_side_folder

__all__ = ["LOCK_NAME", "OutputLock"]

logger = logging.getLogger(__name__)

LOCK_NAME = "_microplex.lock"
_BREAK_SUFFIX = ".break"
_MAX_LOCK_BYTES = 4096


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MAX_LOCK_BYTES).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _boot_id() -> str | None:
    return _read_text("/proc/sys/kernel/random/boot_id")


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), ``None`` when unknown."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()
    try:
        return int(fields[19])  # field 22 of /proc/PID/stat; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def _pid_exists(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:  # on Windows os.kill terminates the process; pid <= 0 is a group
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict[str, Any] | None, raw: str | None) -> str:
    if holder is None:
        return f"an unreadable lock ({raw[:80]!r})" if raw else "an empty or unreadable lock"
    return f"pid {holder.get('pid')!r} on host {holder.get('host')!r} since {holder.get('time')!r}"


def _parse(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        holder = load_json(raw, "the lock")  # a key given twice: an unreadable lock
    except ValueError:
        return None
    if not isinstance(holder, dict):
        return None
    pid = holder.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return None
    return holder


def _provably_dead(holder: dict[str, Any] | None) -> bool:
    """Whether the lock's holder is certainly not running (same host, boot and pid namespace)."""
    if holder is None or holder.get("host") != socket.gethostname():
        return False
    boot, ns = _boot_id(), _pid_namespace()
    if boot is None or ns is None or holder.get("boot_id") != boot or holder.get("pid_ns") != ns:
        return False
    pid = holder["pid"]
    if not _pid_exists(pid):
        return True
    started = holder.get("start")
    now = _start_ticks(pid)
    return isinstance(started, int) and now is not None and now != started  # the pid was reused


class OutputLock:
    """Context manager holding ``folder/_microplex.lock`` while one run writes into ``root``.

    ``folder`` (default: ``root``) is where the lock lives: the dataset's side folder. Creates it (and
    parents) when missing; when the run fails and it was created here and is still empty, removes it.
    ``writer`` names the kind of run in the message that refuses a second one.
    """

    def __init__(self, root: str | os.PathLike, folder: str | os.PathLike | None = None,
                 writer: str = "generate_dataset run") -> None:
        self.root, self.writer = Path(root), writer
        self.folder = Path(root if folder is None else folder)
        self.path = self.folder / LOCK_NAME
        self.token = uuid.uuid4().hex
        self.created = False

    def _info(self) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "pid": pid,
            "host": socket.gethostname(),
            "boot_id": _boot_id(),
            "pid_ns": _pid_namespace(),
            "start": _start_ticks(pid),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token": self.token,
        }

    def _refuse(self, holder, raw, extra: str = "") -> MicroplexError:
        return MicroplexError(
            f"Output path {str(self.root)!r} is being written by another {self.writer} "
            f"({_describe(holder, raw)}; lock file {str(self.path)!r}){extra}. Wait for it to finish, or, if no "
            f"run is writing there (it was killed), delete {str(self.path)!r} and repeat the call to resume."
        )

    def _break_stale(self, holder: dict[str, Any], raw: str) -> None:
        guard = self.path.with_name(LOCK_NAME + _BREAK_SUFFIX)
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise self._refuse(holder, raw, f"; another process is clearing it ({str(guard)!r} exists)") from None
        os.close(fd)
        try:
            if _read_text(str(self.path)) == raw:  # still the stale lock we judged, not a fresh one
                self.path.unlink(missing_ok=True)
                logger.warning(
                    "Took over the stale lock %s of %s: that process is no longer running.", self.path,
                    _describe(holder, raw),
                )
        finally:
            guard.unlink(missing_ok=True)

    def __enter__(self) -> OutputLock:
        check_side_folder(self.root, self.folder)
        for folder in dict.fromkeys((self.root, self.folder)):
            if folder.exists() and not folder.is_dir():
                raise DataValidationError(f"Output path {str(folder)!r} exists and is not a directory.")
        if not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.created = True
        for attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raw = _read_text(str(self.path))
                holder = _parse(raw)
                if attempt == 0 and _provably_dead(holder):
                    self._break_stale(holder, raw)
                    continue
                self._cleanup_created()
                raise self._refuse(holder, raw) from None
            try:
                os.write(fd, json.dumps(self._info(), sort_keys=True).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return self
        self._cleanup_created()  # pragma: no cover - the stale lock came back between two attempts
        raise self._refuse(None, None)

    def _cleanup_created(self) -> None:
        if self.created:
            try:
                self.folder.rmdir()
            except OSError:
                pass

    def __exit__(self, exc_type, exc, tb) -> None:
        holder = _parse(_read_text(str(self.path)))
        if holder is not None and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        if exc_type is not None and self.created:
            entries = [p for p in self.folder.iterdir()] if self.folder.is_dir() else []
            if not entries:
                self._cleanup_created()
