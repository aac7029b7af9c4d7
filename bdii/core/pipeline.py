"""One refresh cycle as a pure function: source outputs in, snapshot out.

`build(results, previous, config, now)` parses every source's LDIF,
merges, applies plugins, reduces the legacy MDS/GlueTop entries, applies
delayed delete, adds the `o=infosys` status and builds the snapshot. It does
no I/O and reads no clock, so the shell can run it in a thread and tests can
run it with integers for `now`.

With `BDII_VALIDATE=warn|strict` each source's entries are validated as
soon as every source is in (see `_validate_sources`), before plugins.

Duplicate DNs merge predictably: sources are taken in a fixed order (static
LDIF files, then providers, then remote LDAP sources, each by name; plugins
last); for each attribute the first
source that publishes it wins and later sources only add attributes the
entry does not have yet. Each duplicate is reported at debug level.

A refresh reuses the last cycle's work, with the same result as a build
from scratch (tests/test_incremental.py): a record that comes back byte for
byte is not parsed again but takes its entry from `State.memos`, so that
old and new snapshots share most Entry objects, and the snapshot starts
from the last one (`State.snapshot`, see `Snapshot.build`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from hashlib import blake2b, sha256
from itertools import chain, islice

from .ber import BerError, decode_entry, iter_ops
from .changes import apply_record
from .config import Config
from .delay import DelayStep, PendingDeletes, step
from .dn import DN
from .entry import Entry
from .errors import DNError, Problem
from .infosys import SourceStatus, UpdateStats, fcr_entries, infosys_entries
from .ldif import Blocks, ChangeRecord, EntryRecord, Record, block_records, parse_ldif, strip_block
from .policy import Blacklist, FcrInput, FcrStatus, apply_sources
from .rewrite import MDS_KEY, Recursive, Rewriter
from .schema import Schema
from .snapshot import Snapshot, Timestamps, gtime
from .validation import ERROR, PROFILES, WARNING, Layouts, validate_entries

KINDS = ("ldif", "provider", "ldap", "plugin")
SERVED = (DN.parse("o=grid"), DN.parse("o=glue"))
INFOSYS = DN.parse("o=infosys")
ROOTS = {
    SERVED[0]: Entry.from_pairs(SERVED[0], [("objectClass", "organization"), ("o", "grid")]),
    SERVED[1]: Entry.from_pairs(SERVED[1], [("objectClass", "organization"), ("o", "glue")]),
}


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one source gave in this cycle (`data` is None when it failed)."""

    name: str
    kind: str  # ldif | provider | ldap | plugin
    data: bytes | None  # LDIF; for "ldap", SearchResultEntry protocolOps (BER)
    started: float
    duration: float
    error: str | None = None
    url: str | None = None
    state: str | None = None  # why it failed: "failed" | "too-large"

    @property
    def order(self) -> tuple[int, str]:
        return KINDS.index(self.kind), self.name


# What a memo holds for a fetched record that gives no entry.
EXCLUDED, RECURSIVE = "excluded", "recursive"


def record_key(raw: bytes) -> bytes:
    """A record's identity across cycles: a 128-bit BLAKE2b digest of its
    exact bytes. Keeping the digest rather than the bytes saves the size of
    the input (120 MB at top level); two different records giving the same
    digest is a 2^-128 chance."""
    return blake2b(raw, digest_size=16).digest()


def source_digest(data: bytes) -> bytes:
    """A source's identity across cycles: SHA-256 of all its bytes (the
    fastest strong digest here, 1.8 GB/s with the CPU's SHA instructions)."""
    return sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Memo:
    """One source's records of a cycle, by the digest of their exact bytes
    (an LDIF record, a SearchResultEntry), and the entries made from them.

    Most records of a grid come back byte for byte every cycle: the next
    cycle takes their entries from here instead of parsing them again, and
    the new snapshot shares those Entry objects with the old one. Only
    records whose entry depends on nothing but their bytes and `context`
    (the settings the source's entries depend on) are kept; any other
    record is parsed as on a first load. Never mutated once built.

    A source whose bytes all come back (`digest`) is not even split into
    records: what it gave is taken whole from `gathered`.
    """

    context: tuple
    # record_key(record bytes) -> what they gave
    entries: Mapping[bytes, Entry | str]
    digest: bytes = b""
    gathered: Gathered | None = None


@dataclass(frozen=True, slots=True)
class Gathered:
    """What one source gave in a cycle, before it met the other sources."""

    own: Mapping[DN, Entry]  # its entries, its own duplicates merged
    given: tuple[Entry, ...]  # every entry in the order given (validation reads them)
    problems: tuple[Problem, ...]
    debug: tuple[Problem, ...]
    recursive: int = 0
    mds: tuple[DN, ...] = ()  # its DNs named by mds-vo-name (see _fix_mds)

    @property
    def count(self) -> int:
        return len(self.given)


@dataclass(frozen=True, slots=True)
class State:
    """What one cycle hands to the next."""

    entries: Mapping[DN, Entry] = field(default_factory=dict)
    times: Mapping[DN, Timestamps] = field(default_factory=dict)
    pending: PendingDeletes = field(default_factory=PendingDeletes)
    sources: Mapping[str, SourceStatus] = field(default_factory=dict)
    last_good: Mapping[str, tuple[float, bytes]] = field(default_factory=dict)
    generation: int = 0
    # The FCR blacklist in force per source ("file", "url"): a refused or
    # unreadable new one leaves it in force.
    fcr: Mapping[str, Blacklist] = field(default_factory=dict)
    # Per source, its records of the last cycle that gave data (see Memo).
    memos: Mapping[str, Memo] = field(default_factory=dict)
    # The snapshot of that cycle, weakly: while it is served (until the
    # next one replaces it) it is what the next snapshot starts from (see
    # Snapshot.build); a state kept past it does not keep it alive.
    snapshot: weakref.ref[Snapshot] | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    snapshot: Snapshot
    state: State
    stats: UpdateStats
    problems: tuple[Problem, ...]
    debug: tuple[Problem, ...] = ()
    fcr: tuple[FcrStatus, ...] = ()


def _is_served(dn: DN) -> bool:
    return any(dn.is_within(s) for s in SERVED)


def _fix_mds(entry: Entry) -> Entry:
    """Legacy `fix()`: an `MDS` + `GlueTop` entry named by mds-vo-name is
    reduced to its objectClass MDS and name, so that aggregated trees do
    not repeat the GlueTop content of every level."""
    rdn = entry.dn.rdn_values
    if len(rdn) != 1 or rdn[0][0].lower() != "mds-vo-name":
        return entry
    if entry.has_object_class("MDS") and entry.has_object_class("GlueTop"):
        return Entry.from_pairs(entry.dn, [("objectClass", "MDS"), ("mds-vo-name", rdn[0][1])])
    return entry


# State attributes published as unknown when the data is not fresh (an
# entry kept by delayed delete, a site-level source served from its cache):
# whole values replaced, never appended to.
UNKNOWN_STATE = {
    "GlueServiceStatus": "Unknown",
    "GlueCEStateStatus": "Unknown",
    "GlueSEStatus": "Unknown",
    "GLUE2EndpointHealthState": "unknown",
    "GLUE2EndpointServingState": "unknown",
    "GLUE2ComputingShareServingState": "unknown",
    "GLUE2StorageShareServingState": "unknown",
    "GLUE2ComputingActivityState": "unknown",
    "GLUE2ComputingActivityRestartState": "unknown",
    "GLUE2ApplicationEnvironmentState": "unknown",
}
UNKNOWN_INFO = {
    "GLUE2EndpointHealthState": "GLUE2EndpointHealthStateInfo",
    "GlueServiceStatus": "GlueServiceStatusInfo",
}
KEPT_NOTE = "No longer published by its source; kept until BDII_DELETE_DELAY expires"
STALE_NOTE = "Source unreachable; last known data served from the BDII cache"


def mark_unknown(entry: Entry, note: str = KEPT_NOTE) -> Entry:
    """Set the state attributes an entry has to Unknown (others untouched)."""
    updates: dict[str, tuple[str, ...]] = {}
    for attr, value in UNKNOWN_STATE.items():
        if entry.get(attr):
            updates[attr] = (value,)
            if attr in UNKNOWN_INFO:
                updates[UNKNOWN_INFO[attr]] = (note,)
    return entry.replace(updates) if updates else entry


def mode_roots(config: Config) -> list[Entry]:
    """The branch entries a site or top level hangs fetched trees on."""
    if config.mode == "site" and config.site_name:
        site = config.site_name
        grid = DN.parse("o=grid").child((("Mds-Vo-name", site),))
        glue = DN.parse("o=glue").child((("GLUE2DomainID", site),))
        return [Entry.from_pairs(grid, [("objectClass", "MDS"), ("Mds-Vo-name", site)]),
                Entry.from_pairs(glue, [("objectClass", "GLUE2Domain"), ("objectClass", "GLUE2AdminDomain"),
                                        ("GLUE2DomainID", site)])]
    if config.mode == "top":
        local = DN.parse("mds-vo-name=local,o=grid")
        grid = DN.parse("GLUE2GroupID=grid,o=glue")
        return [Entry.from_pairs(local, [("objectClass", "MDS"), ("Mds-Vo-name", "local")]),
                Entry.from_pairs(grid, [("objectClass", "GLUE2Group"), ("GLUE2GroupID", "grid")])]
    return []


def _has_orphans(merged: Mapping[DN, Entry], last: Mapping[DN, Entry]) -> bool:
    """Whether an entry's parent is missing. The DNs of the last cycle (which
    kept no orphan) answer the common case with one lookup per DN, without
    making a key for each parent."""
    if len(merged) == len(last) and all(dn in last for dn in merged):
        return False
    keys = {dn.key for dn in merged}
    return any(dn.key[1:] not in keys for dn in merged if len(dn.key) > 1)


def _touched(made: dict[str, Timestamps], created: str, stamp: str) -> Timestamps:
    """Timestamps(created, stamp), one object per creation time."""
    t = made.get(created)
    if t is None:
        t = made[created] = Timestamps(created, stamp)
    return t


def _changed_in_place(merged: Mapping[DN, Entry],
                      last: Mapping[DN, Entry]) -> list[tuple[DN, Entry, Entry]] | None:
    """(DN, entry, last cycle's entry) for each entry that is not the very
    object of last cycle, when `merged` has the same DNs in the same order
    as `last`; None otherwise. Sources that give what they gave last time
    make their dicts in the same order, so a refresh is told from the last
    cycle by one pass comparing objects, without hashing a DN."""
    if len(merged) != len(last):
        return None
    changed = []
    for (dn, e), (old_dn, old) in zip(merged.items(), last.items()):
        if e is not old:
            if dn is not old_dn and dn != old_dn:
                return None
            changed.append((dn, e, old))
        elif dn is not old_dn and dn != old_dn:
            return None
    return changed


def _merge_into(merged: dict[DN, Entry], entry: Entry) -> bool:
    """Merge a duplicate: existing attributes win. True if it was a duplicate."""
    n = len(merged)
    old = merged.setdefault(entry.dn, entry)  # one lookup in the usual case
    if len(merged) > n:
        return False
    old_attrs = old.attrs
    extra = {k: v for k, v in entry.attrs.items() if k not in old_attrs}
    if extra:
        merged[entry.dn] = Entry(old.dn, {**old_attrs, **extra})
    return True


def build(results: Sequence[SourceResult], previous: State, config: Config, now: float,
          timings: Mapping[str, float] | None = None,
          fcr: Sequence[FcrInput] | None = None) -> BuildResult:
    """One cycle. `fcr`: the configured FCR blacklist sources (None: none),
    applied after plugins and delayed delete, so a blacklisted VO value is
    never brought back as a "vanished" entry."""
    problems: list[Problem] = []
    debug: list[Problem] = []
    merged: dict[DN, Entry] = {}
    statuses: dict[str, SourceStatus] = {}
    last_good: dict[str, tuple[float, bytes]] = {}
    failed = 0
    plugins: list[tuple[SourceResult, bytes]] = []
    validating = config.validate != "off"
    per_source: list[tuple[str, list[Entry]]] = []  # what each source gave, to validate
    memos: dict[str, Memo] = {}
    mds_named: list[tuple[DN, ...]] = []
    for res in sorted(results, key=lambda r: r.order):
        data = res.data
        stale_since: float | None = None
        prev_status = previous.sources.get(res.name)
        if data is None:
            failed += 1
            problems.append(Problem(res.name, f"source failed: {res.error}"))
            cached = previous.last_good.get(res.name)
            if cached is not None and now - cached[0] <= config.cache_ttl:
                # Serve the last good output rather than lose the source.
                stale_since, data = cached
                last_good[res.name] = cached
                problems.append(Problem(res.name, f"serving its last good output from {gtime(cached[0])}"))
        elif res.kind != "ldif":
            # Kept to stand in for a provider that fails later; a static
            # file is simply read again, so its bytes are not kept.
            last_good[res.name] = (now, data)
        count = recursive = 0
        if data is not None:
            if res.kind == "plugin":
                plugins.append((res, data))
            else:
                stale = stale_since is not None
                context = _remote_context(config, stale) if res.kind == "ldap" else LDIF_CONTEXT
                memo = _reuse_or_gather(res, data, previous.memos.get(res.name), context, config, stale)
                memos[res.name] = memo
                got = memo.gathered
                assert got is not None
                problems.extend(got.problems)
                debug.extend(got.debug)
                _add_source(merged, got.own, res.name, debug)
                mds_named.append(got.mds)
                count, recursive = got.count, got.recursive
                if validating:
                    per_source.append((res.name, list(got.given)))
        elif res.name in previous.memos:
            memos[res.name] = previous.memos[res.name]  # for when it comes back
        state = "ok" if res.data is not None else ("stale" if stale_since is not None else (res.state or "failed"))
        if recursive and state == "ok":
            state = "recursive"
        statuses[res.name] = SourceStatus(
            name=res.name,
            kind=res.kind,
            ok=res.data is not None,
            entries=count,
            duration=res.duration,
            last_attempt=res.started,
            last_success=res.started if res.data is not None else (prev_status.last_success if prev_status else None),
            error=res.error,
            stale_since=stale_since,
            url=res.url,
            size=len(res.data) if res.data is not None else 0,
            state=state,
            recursive=recursive,
        )
    totals = (0, 0, 0)
    if validating:
        totals = _validate_sources(per_source, merged, statuses, problems, config, now)
    for res, data in plugins:
        parsed = parse_ldif(data, res.name)
        problems.extend(parsed.problems)
        for record in parsed.records:
            p = apply_record(merged, record, res.name)
            if p is not None:
                problems.append(p)
    # Only an entry named by mds-vo-name can be reduced. Each source knows
    # its own (a pass over 100k+ DNs would touch every one of them: in a
    # process that serving processes share pages with, each touched page
    # is copied); a plugin may have added any, so then all are looked at.
    named = merged if plugins else chain.from_iterable(mds for mds in mds_named)
    for dn in list(named):
        e = merged.get(dn)
        if e is not None and dn.key and dn.key[0][0][0] == MDS_KEY:
            fixed = _fix_mds(e)
            if fixed is not e:
                merged[dn] = fixed  # an existing key: the order stays
    for dn, root in ROOTS.items():
        merged.setdefault(dn, root)
    for root in mode_roots(config):
        # The level's own branch, unless a provider publishes a fuller entry.
        merged.setdefault(root.dn, root)

    prev_entries, prev_times = previous.entries, previous.times
    # The same DNs in the same order as last cycle (the usual refresh): the
    # entries that are not the very objects of last cycle, else None.
    changed = _changed_in_place(merged, prev_entries)
    if not previous.pending.since and changed is not None:
        delayed = DelayStep({}, [], PendingDeletes())  # nothing vanished, nothing pending
    else:
        delayed = step(previous.pending, prev_entries, merged, now, config.delete_delay)
    for dn, e in delayed.kept.items():
        if dn not in merged:
            merged[dn] = mark_unknown(e)

    fcr_in_force: Mapping[str, Blacklist] = {}
    fcr_statuses: tuple[FcrStatus, ...] = ()
    if fcr:
        fcr_in_force, fcr_statuses, fcr_problems = apply_sources(merged, fcr, previous.fcr, config.fcr_max_share)
        problems.extend(fcr_problems)

    failed_adds = 0
    if delayed.kept or fcr:  # entries kept or filtered since: look again
        changed = _changed_in_place(merged, prev_entries)
    if changed is None and _has_orphans(merged, prev_entries):
        # Some entries have no parent: drop them and their subtrees, top down.
        for dn in sorted(merged, key=len):
            parent = dn.parent()
            if parent and parent not in merged:
                failed_adds += 1
                problems.append(Problem("merge", "entry dropped: its parent entry does not exist", dn=str(dn)))
                del merged[dn]

    new = modified = deleted = 0
    stamp = gtime(now)
    # One Timestamps per distinct pair, not per entry (122k objects less).
    fresh = Timestamps(stamp, stamp)
    touched: dict[str, Timestamps] = {}
    times: dict[DN, Timestamps]
    # Last cycle's status entries: in `times` after the tree's DNs.
    last_status = list(islice(reversed(prev_times), max(0, len(prev_times) - len(prev_entries))))
    if changed is not None:
        # Unchanged entries keep their times: copy them all (but the status
        # entries') and look at the others.
        times = dict(prev_times)
        for dn in last_status:
            if dn not in merged:
                del times[dn]
        for dn, e, old in changed:
            if not e.same_content(old):
                modified += 1
                times[dn] = _touched(touched, prev_times[dn].created, stamp)
    else:
        times = {}
        still = 0  # entries of the last cycle that are still there
        for dn, e in merged.items():
            old = prev_entries.get(dn)
            if old is not None:
                still += 1
            old_t = prev_times.get(dn)
            if old is None or old_t is None:
                new += 1
                times[dn] = fresh
            elif old is not e and not e.same_content(old):  # the same object: an unchanged record
                modified += 1
                times[dn] = _touched(touched, old_t.created, stamp)
            else:
                times[dn] = old_t
        deleted = len(prev_entries) - still

    t = dict(timings or {})
    stats = UpdateStats(
        hostname=config.hostname,
        total=len(merged),
        new=new,
        modified=modified,
        deleted=deleted,
        failed_adds=failed_adds,
        failed_sources=failed,
        pending_deletes=len(delayed.pending.since),
        update_time=t.get("update", 0.0),
        providers_time=t.get("providers", 0.0),
        plugins_time=t.get("plugins", 0.0),
        read_time=t.get("read", 0.0),
        db_update_time=t.get("db_update", 0.0),
        finished=now,
        validate=config.validate,
        validation_errors=totals[0],
        validation_warnings=totals[1],
        validation_dropped=totals[2],
    )
    status_entries = infosys_entries(stats, statuses.values(), now)
    status_entries += fcr_entries(config.hostname, fcr_statuses, now)
    all_entries = dict(merged)
    for e in status_entries:
        all_entries[e.dn] = e
        times[e.dn] = Timestamps(prev_times[e.dn].created if e.dn in prev_times else stamp, stamp)
    generation = previous.generation + 1
    served = previous.snapshot() if previous.snapshot is not None else None
    hint = None
    if changed is not None and {e.dn for e in status_entries} == set(last_status):
        # The same DNs as the snapshot served (status entries are made anew
        # each cycle): the snapshot needs to look at these only.
        hint = [dn for dn, _e, _o in changed] + [e.dn for e in status_entries]
    snapshot = Snapshot.build(all_entries, times, generation=generation, now=now, previous=served, changed=hint)
    state = State(
        entries=merged,
        times=times,
        pending=delayed.pending,
        sources=statuses,
        last_good=last_good,
        generation=generation,
        fcr=fcr_in_force,
        memos=memos,
        snapshot=weakref.ref(snapshot),
    )
    return BuildResult(snapshot, state, stats, tuple(problems), tuple(debug), fcr_statuses)


# Findings logged per source and cycle; the counts in o=infosys are complete.
VALIDATION_LOG_LIMIT = 100


class _CycleEntries:
    """Every source's entries of this cycle, merged: where a reference that
    one source leaves unresolved may still resolve (the `Elsewhere` of
    validation). Each index is built on first use, so a cycle whose sources
    resolve their own references builds none."""

    __slots__ = ("entries", "rdns", "values")

    def __init__(self, entries: Mapping[DN, Entry]) -> None:
        self.entries = entries
        self.values: dict[str, frozenset[str]] = {}
        self.rdns: frozenset[tuple[str, object]] | None = None

    def has_value(self, key: str, value: str) -> bool:
        index = self.values.get(key)
        if index is None:
            found = (e.values_of(key) for e in self.entries.values())
            index = self.values[key] = frozenset(chain.from_iterable(v for v in found if v))
        return value in index

    def has_rdn(self, ava: tuple[str, object]) -> bool:
        if self.rdns is None:
            self.rdns = frozenset(chain.from_iterable(dn.key[0] for dn in self.entries if dn.key))
        return ava in self.rdns


def _validate_sources(sources: Sequence[tuple[str, list[Entry]]], merged: dict[DN, Entry],
                      statuses: dict[str, SourceStatus], problems: list[Problem], config: Config,
                      now: float) -> tuple[int, int, int]:
    """BDII_VALIDATE: each source's entries through `validate_entries`, on
    their own, before plugins. Findings become problems (logged; infos are
    not), counts go to the source's status; `strict` drops the entries with
    errors from `merged`. Returns the totals (errors, warnings, dropped).

    Judged per source, a rule must not fail what the merged tree would pass:
    * references (GLUE 2.0 foreign keys, GlueForeignKey/GlueChunkKey, the EGI
      contact and location of a domain) that the source does not resolve
      are looked up in every source of the cycle;
    * an entry whose DN is published more than once (by two sources, or twice
      by one) is merged from its pieces, so errors on one piece (a MUST that
      another piece brings, the duplicate DN itself) count as warnings;
    * plugins change the merged tree afterwards and are not validated.
    """
    when = datetime.fromtimestamp(now, timezone.utc)
    strict = config.validate == "strict"
    published: dict[DN, int] = {}
    for _name, entries in sources:
        for e in entries:
            published[e.dn] = published.get(e.dn, 0) + 1
    elsewhere = _CycleEntries(merged)
    schema, profile = Schema.default(), PROFILES[config.validate_profile]
    layouts = Layouts(schema, profile)  # sources of one level share their layouts
    drop: list[DN] = []
    totals = [0, 0, 0]
    for name, entries in sources:
        report = validate_entries(entries, when, profile, schema=schema, elsewhere=elsewhere, layouts=layouts)
        errors = warnings = logged = 0
        dropped: set[DN] = set()
        for f in report.findings:
            if f.severity not in (ERROR, WARNING):
                continue  # infos (GLUE 1.3 placeholders) are no problem of the source
            severity, note = f.severity, ""
            if severity == ERROR:
                dn = DN.parse(f.dn)
                if published.get(dn, 0) > 1:
                    severity, note = WARNING, " (on one piece of an entry published more than once)"
                elif strict:
                    note = " (entry dropped)"
                    dropped.add(dn)
            if severity == ERROR:
                errors += 1
            else:
                warnings += 1
            if logged < VALIDATION_LOG_LIMIT:
                logged += 1
                problems.append(Problem(name, f"validation {severity}: {f.attribute or '-'}: {f.rule}: "
                                              f"{f.message}{note}", dn=f.dn))
        if errors or warnings:
            more = errors + warnings - logged
            problems.append(Problem(name, f"validation (profile {config.validate_profile}): {errors} errors, "
                                          f"{warnings} warnings, {len(dropped)} entries dropped"
                                    + (f"; {more} more findings not logged (bdii validate lists them)"
                                       if more else "")))
        drop += dropped
        statuses[name] = replace(statuses[name], validated=True, validation_errors=errors,
                                 validation_warnings=warnings, validation_dropped=len(dropped))
        totals[0] += errors
        totals[1] += warnings
        totals[2] += len(dropped)
    for dn in drop:
        merged.pop(dn, None)
    return totals[0], totals[1], totals[2]


LDIF_CONTEXT = ("ldif",)


def _remote_context(config: Config, stale: bool) -> tuple:
    """What a fetched record's entry depends on besides its bytes."""
    return ("ldap", config.mode, config.site_name, tuple(sorted(c.lower() for c in config.exclude_objectclasses)),
            stale and config.mode == "site")


def _reuse_or_gather(res: SourceResult, data: bytes, last: Memo | None, context: tuple,
                     config: Config, stale: bool) -> Memo:
    """The source's Memo for this cycle: the last one when every byte came
    back under the same settings (nothing to split, parse or look up),
    else gathered anew, reusing the records that came back."""
    digest = source_digest(data)
    if last is not None and last.context == context and last.digest == digest and last.gathered is not None:
        return last
    old = last.entries if last is not None and last.context == context else None
    own: dict[DN, Entry] = {}
    problems: list[Problem] = []
    debug: list[Problem] = []
    given: list[Entry] = []
    memo: dict[bytes, Entry | str] = {}
    recursive = 0
    if res.kind == "ldap":
        recursive = _gather_remote(res.name, data, own, problems, debug, config, stale, given, old, memo)
    else:
        _gather(res.name, data, own, problems, debug, given, old, memo)
    mds = tuple(dn for dn in own if dn.key and dn.key[0][0][0] == MDS_KEY)
    return Memo(context, memo, digest, Gathered(own, tuple(given), tuple(problems), tuple(debug), recursive, mds))


def _add_source(merged: dict[DN, Entry], own: Mapping[DN, Entry], name: str, debug: list[Problem]) -> None:
    """One source's entries into the cycle's: existing attributes win (see
    `_merge_into`). Sources rarely share a DN, and then one dict update
    (no hashing: the dict keeps its keys' hashes) does it all."""
    if not merged or merged.keys().isdisjoint(own):
        merged.update(own)
        return
    for dn, e in own.items():
        if _merge_into(merged, e):
            debug.append(Problem(name, "duplicate DN merged (earlier values kept)", dn=str(dn)))


def _gather_remote(name: str, data: bytes, merged: dict[DN, Entry], problems: list[Problem],
                   debug: list[Problem], config: Config, stale: bool, keep: list[Entry],
                   old: Mapping[bytes, Entry | str] | None, memo: dict[bytes, Entry | str]) -> int:
    """A remote source's search results: rewritten for our level, own
    entries dropped (recursion), excluded object classes left out.

    Each record found in `old` (the last cycle's, same settings) is taken
    from there; each record that gives an entry, or is excluded or
    recursive, goes to `memo` for the next cycle."""
    rewriter = Rewriter(config.mode, config.site_name) if config.mode in ("site", "top") else None
    excluded = {c.lower() for c in config.exclude_objectclasses}
    recursive = 0
    old = old or {}
    try:
        for start, end in iter_ops(data):
            op = data[start:end]
            key = record_key(op)
            outcome = old.get(key)
            if outcome is None:
                outcome = _remote_entry(name, op, problems, config, stale, rewriter, excluded)
                if outcome is None:
                    continue
            memo[key] = outcome
            if outcome is RECURSIVE:
                recursive += 1
                continue
            if outcome is EXCLUDED:
                continue
            assert isinstance(outcome, Entry)
            keep.append(outcome)
            if _merge_into(merged, outcome):
                debug.append(Problem(name, "duplicate DN merged (earlier values kept)", dn=decode_entry(op)[0]))
    except BerError as exc:
        problems.append(Problem(name, f"malformed search results, rest of the source skipped: {exc}"))
    if recursive:
        problems.append(Problem(name, f"{recursive} entries dropped: already in our own tree "
                                      "(the source returns this BDII's data: a loop between BDIIs?)"))
    return recursive


def _remote_entry(name: str, op: bytes, problems: list[Problem], config: Config, stale: bool,
                  rewriter: Rewriter | None, excluded: set[str]) -> Entry | str | None:
    """One fetched record: its entry, EXCLUDED or RECURSIVE; None when it is
    dropped with a problem (and so not remembered). Raises BerError."""
    dn_text, pairs = decode_entry(op)
    try:
        dn = DN.parse(dn_text)
    except DNError as exc:
        problems.append(Problem(name, f"entry skipped: {exc}"))
        return None
    if not _is_served(dn):
        problems.append(Problem(name, "entry dropped: outside the served suffixes o=grid and o=glue",
                                dn=dn_text))
        return None
    entry = Entry.from_pairs(dn, pairs)
    if excluded and any(v.lower() in excluded for v in entry.get("objectClass")):
        return EXCLUDED
    if rewriter is not None:
        try:
            entry = rewriter.entry(entry)
        except Recursive:
            return RECURSIVE
    if stale and config.mode == "site":
        entry = mark_unknown(entry, STALE_NOTE)
    return entry


def _gather(name: str, data: bytes, merged: dict[DN, Entry], problems: list[Problem],
            debug: list[Problem], keep: list[Entry], old: Mapping[bytes, Entry | str] | None,
            memo: dict[bytes, Entry | str]) -> None:
    """An LDIF source's entries into `merged`. A record found in `old` (the
    last cycle's) is not parsed again; each plain record (see
    `block_records`) that gives an entry goes to `memo` for the next cycle."""
    first = True
    old_get = (old or {}).get
    blocks = Blocks(data, name, problems)
    for off, raws in blocks.windows():
        for raw in raws:
            start = off
            off += len(raw) + 2
            key = record_key(raw)
            hit = old_get(key)
            if hit is not None:
                assert isinstance(hit, Entry)
                first = False
                memo[key] = hit
                keep.append(hit)
                if _merge_into(merged, hit):
                    # The DN as written and the line, found again (rare: debug only).
                    body, at = strip_block(raw, start)
                    line = blocks.line(at)
                    dn_text = block_records(body, line, name, [])[0][0].dn
                    debug.append(Problem(name, "duplicate DN merged (earlier values kept)", line, dn_text))
                continue
            body, at = strip_block(raw, start)
            if not body:
                continue
            records, plain = block_records(body, blocks.line(at), name, problems, first)
            if not records:
                continue
            first = False
            for record in records:
                entry = _ldif_entry(name, record, problems)
                if entry is None:
                    continue
                if plain:
                    memo[key] = entry
                keep.append(entry)
                if _merge_into(merged, entry):
                    debug.append(Problem(name, "duplicate DN merged (earlier values kept)", record.line, record.dn))


def _ldif_entry(name: str, record: Record, problems: list[Problem]) -> Entry | None:
    """The entry of one LDIF record, or None (dropped with a problem)."""
    if isinstance(record, ChangeRecord):
        problems.append(Problem(name, "change records belong in plugins; record skipped",
                                record.line, record.dn))
        return None
    assert isinstance(record, EntryRecord)
    try:
        dn = DN.parse(record.dn)
    except DNError as exc:
        problems.append(Problem(name, f"record skipped: {exc}", record.line))
        return None
    if not _is_served(dn):
        why = "o=infosys is the BDII's own status" if dn.is_within(INFOSYS) else \
            "outside the served suffixes o=grid and o=glue"
        problems.append(Problem(name, f"entry dropped: {why}", record.line, record.dn))
        return None
    if not record.attrs:
        problems.append(Problem(name, "entry without attributes skipped", record.line, record.dn))
        return None
    return Entry.from_pairs(dn, record.attrs)
