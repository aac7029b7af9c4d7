"""State kept across restarts, written atomically (write, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from twisted.logger import Logger

from bdii.core.delay import PendingDeletes

log = Logger()

PENDING_FILE = "delayed-delete.json"


def write_atomic(path: Path, text: str) -> None:
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class StateStore:
    """The delayed-delete list in `BDII_VAR_DIR`, as readable JSON."""

    def __init__(self, var_dir: Path) -> None:
        self.path = var_dir / PENDING_FILE
        self._last = ""

    def load(self) -> PendingDeletes:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return PendingDeletes()
        except OSError as exc:
            log.error("cannot read {path}: {err}; starting with no pending deletes", path=str(self.path), err=exc)
            return PendingDeletes()
        try:
            pending = PendingDeletes.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("{path} is not a valid delayed-delete state ({err}); starting with no pending deletes",
                      path=str(self.path), err=exc)
            return PendingDeletes()
        self._last = text
        log.info("loaded {n} pending deletes from {path}", n=len(pending.since), path=str(self.path))
        return pending

    def save(self, pending: PendingDeletes) -> None:
        text = pending.to_json()
        if text == self._last:
            return
        try:
            write_atomic(self.path, text)
            self._last = text
        except OSError as exc:
            log.error("cannot write {path}: {err}", path=str(self.path), err=exc)
