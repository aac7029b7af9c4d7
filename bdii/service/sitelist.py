"""Where a top-level BDII gets its list of sites: GOCDB, a file, manual additions.

GOCDB is asked on its own, longer interval (`BDII_GOCDB_INTERVAL`); its
last good answer is kept in memory and in `BDII_VAR_DIR/gocdb-site-list.xml`
(so a restart without GOCDB still knows the sites), and used whenever GOCDB
cannot be reached — a GOCDB outage must not empty the top level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.web.client import Agent, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers

from bdii.core.config import Config
from bdii.core.gocdb import parse_site_list, site_list_url
from bdii.core.urls import RemoteSource
from bdii.service.store import write_atomic_bytes

log = Logger()
CACHE_NAME = "gocdb-site-list.xml"


class SiteList:
    def __init__(self, config: Config, reactor: Any, wall: Any = time.time) -> None:
        self.config = config
        self.reactor = reactor
        self.wall = wall
        self.sites: list[RemoteSource] = []
        self.last_attempt: float | None = None
        self.last_error: str | None = None
        self.cache = config.var_dir / CACHE_NAME
        if config.gocdb_url:
            self._load_cache()

    def _parse(self, data: bytes, source: str) -> list[RemoteSource]:
        sites, problems = parse_site_list(data, source, self.config.gocdb_certification,
                                          self.config.gocdb_production)
        for p in problems:
            log.warn("{problem}", problem=str(p))
        return sites

    def _load_cache(self) -> None:
        try:
            self.sites = self._parse(self.cache.read_bytes(), str(self.cache))
            log.info("{n} sites from the cached GOCDB answer {path}", n=len(self.sites), path=str(self.cache))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.error("ignoring the cached GOCDB answer: {err}", err=exc)

    @defer.inlineCallbacks
    def refresh_if_due(self):  # type: ignore[no-untyped-def]
        """Ask GOCDB / read the file when the interval has passed."""
        now = self.wall()
        if self.last_attempt is not None and now - self.last_attempt < self.config.gocdb_interval:
            return self.sites
        self.last_attempt = now
        cfg = self.config
        try:
            if cfg.gocdb_url:
                data = yield self._get(site_list_url(cfg.gocdb_url, cfg.gocdb_certification, cfg.gocdb_production))
                sites = self._parse(data, cfg.gocdb_url)
                try:
                    write_atomic_bytes(self.cache, data)
                except OSError as exc:
                    log.error("cannot keep the GOCDB answer in {path}: {err}", path=str(self.cache), err=exc)
            elif cfg.gocdb_file:
                sites = self._parse(cfg.gocdb_file.read_bytes(), str(cfg.gocdb_file))
            else:
                return self.sites
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good list
            self.last_error = str(exc)
            log.error("cannot get the site list ({err}); keeping the last good list of {n} sites",
                      err=exc, n=len(self.sites))
            return self.sites
        self.last_error = None
        if self.sites and len(sites) < len(self.sites) // 2:
            log.warn("the site list shrank from {old} to {new} sites", old=len(self.sites), new=len(sites))
        self.sites = sites
        log.info("site list: {n} sites", n=len(sites))
        return sites

    def _get(self, url: str) -> defer.Deferred:
        return http_get(self.reactor, url, self.config.source_timeout)


MAX_BODY = 64 * 1024 * 1024


class _Body(protocol.Protocol):
    """Collects a response body (a bounded one: GOCDB's list is ~1 MB)."""

    def __init__(self, done: defer.Deferred) -> None:
        self.done = done
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_BODY:
            self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if self.size > MAX_BODY:
            self.done.errback(ValueError(f"answer larger than {MAX_BODY} bytes"))
        elif reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _body(response: Any) -> defer.Deferred:
    done: defer.Deferred = defer.Deferred()
    response.deliverBody(_Body(done))
    return done


@defer.inlineCallbacks
def http_get(reactor: Any, url: str, timeout: float):  # type: ignore[no-untyped-def]
    """GET a small document (GOCDB's site list, an FCR blacklist): the body,
    or an exception for a non-200 answer, a refused connection or `timeout`."""
    agent = Agent(reactor, connectTimeout=timeout)
    d = agent.request(b"GET", url.encode(), Headers({b"User-Agent": [b"bdii"]}))
    timer = reactor.callLater(timeout * 2, d.cancel)
    try:
        response = yield d
        body = yield _body(response)
    finally:
        if timer.active():
            timer.cancel()
    if response.code != 200:
        raise ValueError(f"HTTP {response.code} from {url}")
    return body


def read_manual(path: Path | None) -> list[RemoteSource]:
    """BDII_MANUAL_URLS_FILE: sources added by hand, in the urls file format."""
    if path is None:
        return []
    from bdii.core.urls import parse_urls

    try:
        sources, problems = parse_urls(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        log.error("cannot read BDII_MANUAL_URLS_FILE {path}: {err}", path=str(path), err=exc.strerror)
        return []
    for p in problems:
        log.warn("{problem}", problem=str(p))
    return sources
