"""The on-disk cache of remote sources' last good answers (`BDII_VAR_DIR/cache`).

Each source's entries are kept as received (the LDAP wire encoding of its
search results), one file per source, written atomically and only when they
changed; on start the files come back, with their modification times, as the
sources' last good data. So a restarted site or top BDII serves a source
that is down from its cache instead of dropping it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote, unquote

from twisted.logger import Logger

from bdii.service.store import write_atomic_bytes

log = Logger()
SUFFIX = ".ber"


class SourceCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._digests: dict[str, bytes] = {}

    def _path(self, name: str) -> Path:
        return self.directory / (quote(name, safe="") + SUFFIX)

    def load(self) -> dict[str, tuple[float, bytes]]:
        """Every cached source: name -> (time it was fetched, data)."""
        out: dict[str, tuple[float, bytes]] = {}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return out
        except OSError as exc:
            log.error("cannot read the source cache {dir}: {err}", dir=str(self.directory), err=exc)
            return out
        for fname in names:
            if not fname.endswith(SUFFIX):
                continue
            path = self.directory / fname
            try:
                data = path.read_bytes()
                mtime = path.stat().st_mtime
            except OSError as exc:
                log.error("cannot read cached source {path}: {err}", path=str(path), err=exc)
                continue
            name = unquote(fname[: -len(SUFFIX)])
            out[name] = (mtime, data)
            self._digests[name] = hashlib.sha1(data).digest()
        if out:
            log.info("loaded the cached data of {n} sources from {dir}", n=len(out), dir=str(self.directory))
        return out

    def save(self, items: list[tuple[str, bytes]]) -> int:
        """Write the sources whose data changed (blocking: run in a thread)."""
        written = 0
        for name, data in items:
            digest = hashlib.sha1(data).digest()
            if self._digests.get(name) == digest:
                # Unchanged: only the time of the last good fetch moves on.
                try:
                    os.utime(self._path(name))
                except OSError:
                    pass
                continue
            try:
                write_atomic_bytes(self._path(name), data)
            except OSError as exc:
                log.error("cannot write the cache of {name}: {err}", name=name, err=exc)
                continue
            self._digests[name] = digest
            written += 1
        return written
