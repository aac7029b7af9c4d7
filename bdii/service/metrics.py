"""What `/metrics` reports, in the Prometheus text exposition format (0.0.4).

`Metrics` is the LDAP front end's share: plain counters the protocol bumps
on the reactor thread (connections, requests by operation and result code,
a latency histogram per operation). `exposition()` renders those together
with what the snapshot and the refresh loop already know: entries per
suffix, the last cycle's statistics and every source's state, age, bytes
and entries (the same `SourceStatus` values the `o=infosys` bdiiSource
entries are made from).

https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bdii.core.snapshot import Snapshot

# RFC 4511 appendix A.1: result code names, as clients and slapd's logs spell them.
RESULT_NAMES = {
    0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded",
    4: "sizeLimitExceeded", 5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported",
    8: "strongerAuthRequired", 10: "referral", 11: "adminLimitExceeded",
    12: "unavailableCriticalExtension", 13: "confidentialityRequired", 14: "saslBindInProgress",
    16: "noSuchAttribute", 17: "undefinedAttributeType", 18: "inappropriateMatching",
    19: "constraintViolation", 20: "attributeOrValueExists", 21: "invalidAttributeSyntax",
    32: "noSuchObject", 33: "aliasProblem", 34: "invalidDNSyntax", 36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication", 49: "invalidCredentials", 50: "insufficientAccessRights",
    51: "busy", 52: "unavailable", 53: "unwillingToPerform", 54: "loopDetect",
    64: "namingViolation", 65: "objectClassViolation", 66: "notAllowedOnNonLeaf",
    67: "notAllowedOnRDN", 68: "entryAlreadyExists", 69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs", 80: "other",
}

# ldaptor request class name -> the operation label.
OPERATIONS = {
    "LDAPBindRequest": "bind", "LDAPSearchRequest": "search", "LDAPCompareRequest": "compare",
    "LDAPExtendedRequest": "extended", "LDAPModifyRequest": "modify", "LDAPAddRequest": "add",
    "LDAPDelRequest": "delete", "LDAPModifyDNRequest": "modrdn",
}

# Upper bounds in seconds: a cached entry lookup is well under a millisecond,
# a full top-level dump to a slow client can take tens of seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SOURCE_STATES = ("ok", "stale", "failed", "too-large", "recursive")


def result_name(code: int) -> str:
    return RESULT_NAMES.get(code, str(code))


class Histogram:
    """Cumulative bucket counts, their sum and count (Prometheus histogram)."""

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1
        for n, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[n] += 1


class Metrics:
    """Counters of the LDAP front end; the protocol calls these, nothing else.

    @ivar connections_open: client connections open now.
    @ivar connections_total: connections accepted since start.
    @ivar requests: (operation, result code) -> requests answered.
    @ivar latency: operation -> time from request to its final response.
    """

    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total = 0
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, Histogram] = {}

    def connection_opened(self) -> None:
        self.connections_open += 1
        self.connections_total += 1

    def connection_closed(self) -> None:
        self.connections_open -= 1

    def request_done(self, request_type: str, code: int, seconds: float) -> None:
        op = OPERATIONS.get(request_type, request_type)
        self.requests[(op, code)] += 1
        hist = self.latency.get(op)
        if hist is None:
            hist = self.latency[op] = Histogram()
        hist.observe(seconds)


class _Text:
    """Builds the exposition: one `# HELP`/`# TYPE` pair per family, then samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, doc: str) -> None:
        self.lines.append(f"# HELP {name} {doc}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            name = f"{name}{{{inner}}}"
        self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def entries_per_suffix(snap: Snapshot) -> dict[str, int]:
    """Entries under each naming context (a subtree is one contiguous range)."""
    out = {}
    for dn in snap.suffixes():
        i = snap.find(dn)
        if i is not None:
            lo, hi = snap.subtree_range(i)
            out[str(dn)] = hi - lo
    return out


def exposition(snap: Snapshot, updater: Any | None, metrics: Metrics | None, now: float) -> str:
    """The whole `/metrics` page. `updater` is the refresh loop (its `last_stats`,
    `cycles` and `state.sources`), `now` the wall clock."""
    out = _Text()
    out.family("bdii_entries", "gauge", "Entries served under each naming context.")
    for suffix, n in entries_per_suffix(snap).items():
        out.sample("bdii_entries", n, {"suffix": suffix})
    out.family("bdii_snapshot_generation", "gauge", "Generation of the snapshot being served.")
    out.sample("bdii_snapshot_generation", snap.generation)
    if snap.generation:
        out.family("bdii_snapshot_built_timestamp_seconds", "gauge", "When the served snapshot was built.")
        out.sample("bdii_snapshot_built_timestamp_seconds", float(snap.built_at))
    if updater is not None:
        _refresh(out, updater, now)
    if metrics is not None:
        _ldap(out, metrics)
    return out.text()


def _refresh(out: _Text, updater: Any, now: float) -> None:
    out.family("bdii_cycles_total", "counter", "Refresh cycles completed since start.")
    out.sample("bdii_cycles_total", int(updater.cycles))
    s = updater.last_stats
    if s is not None:
        out.family("bdii_cycle_finished_timestamp_seconds", "gauge", "When the last refresh cycle finished.")
        out.sample("bdii_cycle_finished_timestamp_seconds", float(s.finished))
        out.family("bdii_cycle_duration_seconds", "gauge",
                   "Phases of the last refresh cycle (the legacy UpdateStats times).")
        for phase, value in (("update", s.update_time), ("read", s.read_time), ("providers", s.providers_time),
                             ("plugins", s.plugins_time), ("build", s.db_update_time)):
            out.sample("bdii_cycle_duration_seconds", float(value), {"phase": phase})
        out.family("bdii_cycle_entries", "gauge", "Entries of the last refresh cycle, by change.")
        for change, value in (("total", s.total), ("new", s.new), ("modified", s.modified),
                              ("deleted", s.deleted), ("pending_delete", s.pending_deletes),
                              ("failed_add", s.failed_adds)):
            out.sample("bdii_cycle_entries", int(value), {"change": change})
        out.family("bdii_cycle_failed_sources", "gauge", "Sources that failed in the last refresh cycle.")
        out.sample("bdii_cycle_failed_sources", int(s.failed_sources))
    sources = sorted(updater.state.sources.values(), key=lambda x: (x.kind, x.name))
    _sources(out, sources, now)


def _sources(out: _Text, sources: Iterable[Any], now: float) -> None:
    sources = list(sources)
    if not sources:
        return
    out.family("bdii_source_state", "gauge",
               "1 for the state each source is in (ok, stale, failed, too-large, recursive), else 0.")
    for s in sources:
        for state in SOURCE_STATES:
            out.sample("bdii_source_state", int(s.state == state), {"source": s.name, "kind": s.kind, "state": state})
    rows: tuple[tuple[str, str, str, Any], ...] = (
        ("bdii_source_last_success_age_seconds", "gauge", "Seconds since the source last answered.",
         lambda s: None if s.last_success is None else max(0.0, now - s.last_success)),
        ("bdii_source_last_attempt_timestamp_seconds", "gauge", "When the source was last asked.",
         lambda s: float(s.last_attempt)),
        ("bdii_source_duration_seconds", "gauge", "How long the source took in the last cycle.",
         lambda s: float(s.duration)),
        ("bdii_source_entries", "gauge", "Entries the source contributed in the last cycle.",
         lambda s: int(s.entries)),
        ("bdii_source_bytes", "gauge", "Bytes the source sent in the last cycle.",
         lambda s: int(s.size)),
    )
    for name, kind, doc, get in rows:
        out.family(name, kind, doc)
        for s in sources:
            value = get(s)
            if value is not None:
                out.sample(name, value, {"source": s.name, "kind": s.kind})


def _ldap(out: _Text, m: Metrics) -> None:
    out.family("bdii_ldap_connections_open", "gauge", "LDAP client connections open now.")
    out.sample("bdii_ldap_connections_open", m.connections_open)
    out.family("bdii_ldap_connections_total", "counter", "LDAP client connections accepted since start.")
    out.sample("bdii_ldap_connections_total", m.connections_total)
    out.family("bdii_ldap_requests_total", "counter", "LDAP requests answered, by operation and result code.")
    for (op, code), n in sorted(m.requests.items()):
        out.sample("bdii_ldap_requests_total", n, {"operation": op, "result": result_name(code)})
    out.family("bdii_ldap_request_duration_seconds", "histogram",
               "Time from an LDAP request to its final response (a search: its last entry written).")
    for op, h in sorted(m.latency.items()):
        for bound, n in zip(BUCKETS, h.buckets):
            out.sample("bdii_ldap_request_duration_seconds_bucket", n, {"operation": op, "le": _number(bound)})
        out.sample("bdii_ldap_request_duration_seconds_bucket", h.count, {"operation": op, "le": "+Inf"})
        out.sample("bdii_ldap_request_duration_seconds_sum", h.total, {"operation": op})
        out.sample("bdii_ldap_request_duration_seconds_count", h.count, {"operation": op})
