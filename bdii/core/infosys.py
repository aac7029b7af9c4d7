"""The `o=infosys` status tree: legacy UpdateStats plus one entry per source.

`check_bdii_entries -f stats` reads the `modifyTimestamp` of the
UpdateStats entry for freshness, so the entry is rewritten every cycle.
Legacy values are whole seconds (the legacy schema's INTEGER syntax).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .dn import DN, escape_value
from .entry import Entry
from .policy import FcrStatus
from .snapshot import gtime


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: str
    ok: bool
    entries: int
    duration: float
    last_attempt: float
    last_success: float | None
    error: str | None = None
    stale_since: float | None = None  # serving cached output from then
    url: str | None = None
    size: int = 0  # bytes received
    state: str = "ok"  # ok | stale | failed | too-large | recursive
    recursive: int = 0  # entries dropped because they were our own
    # BDII_VALIDATE: what validating this source's entries found (validated
    # False: validation off, or nothing to validate).
    validated: bool = False
    validation_errors: int = 0
    validation_warnings: int = 0
    validation_dropped: int = 0  # entries with errors left out (strict)


@dataclass(frozen=True, slots=True)
class UpdateStats:
    hostname: str
    total: int
    new: int
    modified: int
    deleted: int
    failed_adds: int
    failed_sources: int
    pending_deletes: int
    update_time: float
    providers_time: float
    plugins_time: float
    read_time: float
    db_update_time: float
    finished: float
    validate: str = "off"  # BDII_VALIDATE; the totals below are over every source
    validation_errors: int = 0
    validation_warnings: int = 0
    validation_dropped: int = 0


def infosys_entries(stats: UpdateStats, sources: Iterable[SourceStatus], now: float) -> list[Entry]:
    root = DN.parse("o=infosys")
    host = DN.parse(f"Hostname={escape_value(stats.hostname)},o=infosys")
    out = [
        Entry.from_pairs(root, [("objectClass", "organization"), ("o", "infosys")]),
        Entry.from_pairs(host, [
            ("objectClass", "UpdateStats"),
            # An auxiliary class of ours carries the validation totals.
            *([("objectClass", "bdiiValidationStats")] if stats.validate != "off" else []),
            ("Hostname", stats.hostname),
            ("TotalEntries", str(stats.total)),
            ("UpdateTime", str(round(stats.update_time))),
            ("DBUpdateTime", str(round(stats.db_update_time))),
            ("NewEntries", str(stats.new)),
            ("QueryTime", "0"),
            ("ProvidersTime", str(round(stats.providers_time))),
            ("PluginsTime", str(round(stats.plugins_time))),
            ("ReadTime", str(round(stats.read_time))),
            ("FailedAdds", str(stats.failed_adds)),
            ("ModifiedEntries", str(stats.modified)),
            ("DeletedEntries", str(stats.deleted)),
            ("FailedDeletes", "0"),
            ("FailedModifies", "0"),
            *_validation_pairs(stats.validate != "off", stats.validation_errors,
                               stats.validation_warnings, stats.validation_dropped),
        ]),
    ]
    for s in sorted(sources, key=lambda s: s.name):
        pairs = [
            ("objectClass", "bdiiSource"),
            ("bdiiSourceName", s.name),
            ("bdiiSourceKind", s.kind),
            ("bdiiSourceStatus", s.state),
            ("bdiiSourceEntries", str(s.entries)),
            ("bdiiSourceDurationMs", str(round(s.duration * 1000))),
            ("bdiiSourceLastAttempt", gtime(s.last_attempt)),
        ]
        if s.url:
            pairs.append(("bdiiSourceURL", s.url))
        if s.kind == "ldap":
            pairs.append(("bdiiSourceBytes", str(s.size)))
        if s.recursive:
            pairs.append(("bdiiSourceRecursiveEntries", str(s.recursive)))
        pairs += _validation_pairs(s.validated, s.validation_errors, s.validation_warnings,
                                   s.validation_dropped)
        if s.last_success is not None:
            pairs.append(("bdiiSourceLastSuccess", gtime(s.last_success)))
        if s.error:
            pairs.append(("bdiiSourceLastError", s.error))
        out.append(Entry.from_pairs(host.child((("bdiiSourceName", s.name),)), pairs))
    return out


def _validation_pairs(on: bool, errors: int, warnings: int, dropped: int) -> list[tuple[str, str]]:
    if not on:
        return []
    return [("bdiiValidationErrors", str(errors)), ("bdiiValidationWarnings", str(warnings)),
            ("bdiiValidationDropped", str(dropped))]


def fcr_entries(hostname: str, statuses: Iterable[FcrStatus], now: float) -> list[Entry]:
    """One `bdiiBlacklist` entry per FCR source: the blacklist in force and what each rule did."""
    host = DN.parse(f"Hostname={escape_value(hostname)},o=infosys")
    out = []
    for s in statuses:
        bl = s.in_force
        pairs = [
            ("objectClass", "bdiiBlacklist"),
            ("bdiiBlacklistName", s.name),
            ("bdiiBlacklistLocation", s.location),
            ("bdiiBlacklistStatus", s.state),
            ("bdiiBlacklistRules", str(len(bl.rules) if bl else 0)),
            ("bdiiBlacklistEntriesChanged", str(sum(r.changed for r in s.reports))),
        ]
        if bl is not None:
            pairs.append(("bdiiBlacklistFetched", gtime(bl.fetched)))
            pairs.append(("bdiiBlacklistAge", str(max(0, round(now - bl.fetched)))))
        for r in s.reports:
            pairs.append(("bdiiBlacklistRule", f"{r.rule.where}: {r.rule.text} -> {r.changed} entries changed"
                          + ("" if r.matched else " (matches no resource)")))
        if s.error:
            pairs.append(("bdiiBlacklistLastError", s.error))
        if s.refusal:
            pairs.append(("bdiiBlacklistRefusal", s.refusal))
        out.append(Entry.from_pairs(host.child((("bdiiBlacklistName", s.name),)), pairs))
    return out
