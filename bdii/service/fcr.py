"""Where the FCR blacklists come from: `BDII_FCR_FILE` and `BDII_FCR_URL`.

The file is read every cycle. The URL is fetched on its own interval
(`BDII_FCR_INTERVAL`) with `BDII_SOURCE_TIMEOUT`; its last good copy is
kept in memory and in `BDII_VAR_DIR/fcr-blacklist` (so a restart while the
VO's feed is down still applies it) and used whenever a fetch fails. What
to do with the bytes (parse, refuse, apply) is the core's business
(`bdii.core.policy`): this module only hands over `FcrInput` values.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from bdii.core.config import Config
from bdii.core.policy import FcrInput
from bdii.service.sitelist import http_get
from bdii.service.store import write_atomic_bytes

log = Logger()
CACHE_NAME = "fcr-blacklist"


class FcrSources:
    """The configured blacklist sources; `inputs()` gives this cycle's copies."""

    def __init__(self, config: Config, reactor: Any, wall: Any = time.time, keep_on_disk: bool = True) -> None:
        self.config = config
        self.reactor = reactor
        self.wall = wall
        self.keep_on_disk = keep_on_disk
        self.cache = config.var_dir / CACHE_NAME
        self.url_copy: tuple[float, bytes] | None = None  # (fetched, data): the last good answer
        self.url_error: str | None = None
        self.last_attempt: float | None = None
        if config.fcr_url:
            self._load_cache()

    @property
    def configured(self) -> bool:
        return bool(self.config.fcr_file or self.config.fcr_url)

    def _load_cache(self) -> None:
        try:
            data = self.cache.read_bytes()
            fetched = self.cache.stat().st_mtime
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("ignoring the cached FCR blacklist {path}: {err}", path=str(self.cache), err=exc)
            return
        self.url_copy = (fetched, data)
        log.info("FCR blacklist from the cached copy {path}", path=str(self.cache))

    @defer.inlineCallbacks
    def refresh_if_due(self):  # type: ignore[no-untyped-def]
        """Fetch `BDII_FCR_URL` when its interval has passed; failures keep the last good copy."""
        url = self.config.fcr_url
        now = self.wall()
        if not url or (self.last_attempt is not None and now - self.last_attempt < self.config.fcr_interval):
            return
        self.last_attempt = now
        try:
            data = yield self._get(url)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good copy
            self.url_error = str(exc) or exc.__class__.__name__
            log.error("cannot fetch the FCR blacklist {url} ({err}); {what}", url=url, err=self.url_error,
                      what="keeping its last good copy" if self.url_copy else "no copy to use")
            return
        self.url_error = None
        self.url_copy = (now, data)
        if self.keep_on_disk:
            try:
                write_atomic_bytes(self.cache, data)
            except OSError as exc:
                log.error("cannot keep the FCR blacklist in {path}: {err}", path=str(self.cache), err=exc)

    def _get(self, url: str) -> defer.Deferred:
        return http_get(self.reactor, url, self.config.source_timeout)

    def inputs(self) -> list[FcrInput]:
        """This cycle's copy of each configured source (the file is read now)."""
        out = []
        path = self.config.fcr_file
        if path is not None:
            try:
                data = path.read_bytes()
                out.append(FcrInput("file", str(path), data, path.stat().st_mtime))
            except OSError as exc:
                out.append(FcrInput("file", str(path), None, None, f"cannot read: {exc.strerror}"))
        if self.config.fcr_url:
            fetched, data = self.url_copy if self.url_copy else (None, None)
            out.append(FcrInput("url", self.config.fcr_url, data, fetched, self.url_error))
        return out
