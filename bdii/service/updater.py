"""The refresh loop: gather, build in a worker thread, swap.

`LoopingCall` waits for the Deferred each cycle returns, so cycles never
overlap; the body is guarded so that one failed cycle is logged, keeps
the previous snapshot, and the loop goes on (a bare `TimerService` would
stop at the first uncaught failure).
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from bdii.core.config import Config
from bdii.core.pipeline import BuildResult, State, build
from bdii.core.urls import RemoteSource, parse_urls
from bdii.service.cache import SourceCache
from bdii.service.fcr import FcrSources
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.remote import fetch_all
from bdii.service.selfprovider import SelfProvider
from bdii.service.sitelist import SiteList, read_manual
from bdii.service.sources import read_ldif_files, run_directory
from bdii.service.store import StateStore

log = Logger()

Runner = Callable[..., defer.Deferred]
HISTORY = 60  # cycles kept in Updater.history


def build_quietly(*args: Any) -> Any:
    """`build` with the cyclic GC paused: a build allocates millions of
    long-lived objects, and the collections that would trigger meanwhile
    each walk the whole heap while holding the GIL (measured: 2.5x slower
    builds and long reactor stalls). Entries hold no reference cycles, so
    nothing is lost by collecting later."""
    gc.disable()
    try:
        result = build(*args)
        # Move the new objects out of the young generation before the
        # collector is back on: otherwise the first allocation after
        # gc.enable() starts a collection of every one of them (a 2 s
        # stall measured at 122k entries). freeze() is a list splice.
        gc.freeze()
        return result
    finally:
        gc.enable()


def release_in_steps(box: list[Any]) -> None:
    """Drop a retired snapshot a slice at a time (see Snapshot.release).

    If a search still streams from it, it is left alone and goes when that
    search ends.
    """
    snap = box.pop()
    # References: `snap` here and getrefcount's argument.
    if sys.getrefcount(snap) <= 2:
        for _ in snap.release():
            time.sleep(0)  # let the reactor thread take the GIL


def release_state_in_steps(box: list[Any]) -> None:
    """Drop a retired State's mappings a slice at a time, as snapshots.

    Its entries are mostly the next state's, so a slice is mostly reference
    counts written, not objects freed: large slices (a millisecond or two
    each) keep the cycle short, which now waits for this.
    """
    state = box.pop()
    for mapping in (state.entries, state.times):
        if isinstance(mapping, dict):
            while mapping:
                for _ in range(8192):
                    if not mapping:
                        break
                    mapping.popitem()
                time.sleep(0)


def in_thread(reactor: Any) -> Runner:
    def run(fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

    return run


def in_line(fn: Callable[..., Any], *args: Any) -> defer.Deferred:
    """Run the build synchronously (tests on a fake clock)."""
    return defer.maybeDeferred(fn, *args)


class Updater(Service):
    """Owns the refresh state; hands each new snapshot to `holder`."""

    def __init__(self, config: Config, reactor: Any, holder: SnapshotHolder,
                 store: StateStore | None = None, run: Runner | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.reactor = reactor
        self.holder = holder
        self.store = store
        self.run = run or in_thread(reactor)
        self.wall = wall
        # The source cache belongs with the state store: a dry run
        # (`bdii update`) has neither and touches nothing on disk.
        self.cache = SourceCache(config.var_dir / "cache") if store is not None else None
        self.state = State(pending=store.load() if store else State().pending,
                           last_good=self.cache.load() if self.cache else {})
        self.sources: list[RemoteSource] = []
        self.site_list = SiteList(config, reactor, wall) if (config.gocdb_url or config.gocdb_file) else None
        fcr = FcrSources(config, reactor, wall, keep_on_disk=store is not None)
        self.fcr = fcr if fcr.configured else None
        self.self_provider = SelfProvider()
        self.last_build_time = 0.0
        self.cycles = 0
        self.last_stats = None
        # The last cycles' statistics, oldest first (the status page's chart).
        self.history: deque[Any] = deque(maxlen=HISTORY)
        self._loop: task.LoopingCall | None = None

    @defer.inlineCallbacks
    def cycle(self):  # type: ignore[no-untyped-def]
        """One refresh: fires with the BuildResult (errors propagate)."""
        cfg = self.config
        t0 = time.monotonic()
        if self.site_list is not None:
            yield self.site_list.refresh_if_due()
        if self.fcr is not None:
            yield self.fcr.refresh_if_due()
        reads = self.run(read_ldif_files, cfg.ldif_dir, self.wall)
        providers = run_directory(self.reactor, cfg.provider_dir, "provider", cfg.read_timeout, self.wall)
        # site and top level: this BDII's own bdii_site / bdii_top service (BDII_SELF_PROVIDER)
        own = self.self_provider.run(self.reactor, cfg, self.wall)
        plugins = run_directory(self.reactor, cfg.plugin_dir, "plugin", cfg.read_timeout, self.wall)
        remote = fetch_all(self.reactor, self.remote_sources(), cfg.source_timeout,
                           int(cfg.source_max_mb * 1e6), cfg.exclude_objectclasses, self.wall)
        ldif_results = yield reads
        t_read = time.monotonic() - t0
        provider_results = (yield providers) + (yield own)
        t_prov = time.monotonic() - t0
        plugin_results = yield plugins
        t_plug = time.monotonic() - t0
        remote_results = yield remote
        results = [*ldif_results, *provider_results, *remote_results, *plugin_results]
        timings = {
            "read": t_read,
            "providers": max((r.duration for r in provider_results), default=0.0) or t_prov,
            "plugins": max((r.duration for r in plugin_results), default=0.0) or t_plug,
            "update": time.monotonic() - t0 + self.last_build_time,
            "db_update": self.last_build_time,
        }
        b0 = time.monotonic()
        fcr = self.fcr.inputs() if self.fcr is not None else None
        result: BuildResult = yield self.run(build_quietly, results, self.state, cfg, self.wall(), timings, fcr)
        self.last_build_time = time.monotonic() - b0
        # What the sources returned is in the snapshot now: drop the raw data
        # before the swap (serving processes forked then would inherit it).
        fresh = [(r.name, r.data) for r in remote_results if r.data is not None] if self.cache is not None else []
        del results, ldif_results, provider_results, plugin_results, remote_results
        del reads, providers, own, plugins, remote  # their Deferreds hold the same lists
        if fresh:
            # Before the swap, so that no serving process forked at the swap
            # inherits the fetched data (a top level's is the size of its tree).
            try:
                yield self.run(self.cache.save, fresh)  # in a thread
            except Exception:  # noqa: BLE001 - a full disk must not stop the refresh
                log.failure("writing the source cache failed")
            del fresh
        # The old state goes first, and before the swap: its DNs and entries
        # are mostly the new state's, so dropping it writes their reference
        # counts, and once the serving processes are forked each page
        # written here would become a copy (70 MB per cycle, measured).
        old = [self.state]
        self.state = result.state
        try:
            yield self.run(release_state_in_steps, old)
        except Exception:  # noqa: BLE001 - memory, not data: the cycle goes on
            log.failure("releasing the previous state failed")
        old = [self.holder.current]
        swapped = self.holder.swap(result.snapshot)
        self.retire(old)
        del old
        try:
            yield swapped  # serving processes (if any) answer from the new snapshot from here on
        except Exception:  # noqa: BLE001 - the snapshot is in; the old workers keep serving
            log.failure("handing snapshot {g} to the serving processes failed", g=result.snapshot.generation)
        self.cycles += 1
        self.last_stats = result.stats
        self.history.append(result.stats)
        for p in result.problems:
            level = log.error if "source failed" in p.message else log.warn
            level("{problem}", problem=str(p), source=p.where, line=p.line, dn=p.dn)
        for p in result.debug:
            log.debug("{problem}", problem=str(p), source=p.where, line=p.line, dn=p.dn)
        s = result.stats
        log.info(
            "cycle {n}: {total} entries ({new} new, {modified} modified, {deleted} deleted, "
            "{pending} pending delete) in {secs:.2f}s (build {build:.2f}s)",
            n=self.cycles, total=s.total, new=s.new, modified=s.modified, deleted=s.deleted,
            pending=s.pending_deletes, secs=time.monotonic() - t0, build=self.last_build_time)
        if self.store is not None:
            self.store.save(result.state.pending)
        return result

    def remote_sources(self) -> list[RemoteSource]:
        """`BDII_URLS_FILE` (read each cycle; the previous list stays in use
        when it cannot be read), then the GOCDB/file site list, then
        `BDII_MANUAL_URLS_FILE`; a name already listed is not added again."""
        path = self.config.urls_file
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                log.error("cannot read BDII_URLS_FILE {path}: {err}; using the previous list of {n} sources",
                          path=str(path), err=exc.strerror, n=len(self.sources))
            else:
                sources, problems = parse_urls(text, str(path))
                for p in problems:
                    log.warn("{problem}", problem=str(p), source=p.where, line=p.line)
                self.sources = sources
        combined = list(self.sources)
        names = {s.name for s in combined}
        extra = (self.site_list.sites if self.site_list else []) + read_manual(self.config.manual_urls_file)
        for s in extra:
            if s.name not in names:
                names.add(s.name)
                combined.append(s)
        return combined

    def retire(self, old: list[Any]) -> None:
        """Free the previous snapshot from a worker thread, in steps.

        `old` must hold the only reference the updater had; it is emptied
        here so that the worker thread holds the last one.
        """
        snap = old.pop()
        self.run(release_in_steps, [snap]).addErrback(
            lambda f: log.failure("releasing the previous snapshot failed", f))
        del snap

    @defer.inlineCallbacks
    def guarded_cycle(self):  # type: ignore[no-untyped-def]
        try:
            yield self.cycle()
        except Exception:  # noqa: BLE001 - a failed cycle keeps the old snapshot
            log.failure("refresh cycle failed; still serving snapshot generation {g}",
                        g=self.holder.current.generation)

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.guarded_cycle)
        self._loop.clock = self.reactor
        self._loop.start(self.config.breathe_time, now=True)

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return None
