"""The read-only HTTP view (`BDII_HTTP_PORT`; off by default).

- `GET /search?base=...&scope=base|one|sub&filter=...&attrs=a,b` — the LDAP
  search, as JSON, from the same snapshot with the same semantics: the
  filter is parsed as ldapsearch would send it and compiled by the same
  matching rules, attributes are selected as `Selection` does for LDAP
  (`*`, `+`, `1.1`, names in any case, answered in schema spelling,
  operational attributes only when asked for), `sizelimit`/`timelimit`
  and `typesonly` as in LDAP. Entries stream one `request.write` each,
  a batch per reactor turn under a push producer, so a full dump neither
  builds one big string nor outruns a slow client. The final `result` names the LDAP result code.
  Errors before the first entry are JSON too, with an HTTP status:
  noSuchObject (404, with matchedDN), invalidDNSyntax, filterError (a
  filter string that does not parse: what ldapsearch calls "Bad search
  filter", -7) and protocolError (bad scope or limit) as 400.
- `GET /status` — the `o=infosys` content (UpdateStats and every
  bdiiSource entry) as JSON, with entry counts per naming context.
- `GET /metrics` — Prometheus text format (see `bdii.service.metrics`).
- `GET /` — a status page (jinja2, `templates/status.html`): sources with
  freshness and errors, the last cycles as a small SVG chart, a search box.

Every request reads `holder.current` once, like an LDAP search.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from ldaptor import ldapfilter
from twisted.internet.interfaces import IPushProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from bdii.core import ber
from bdii.core import filters as F
from bdii.core.dn import DN
from bdii.core.errors import DNError
from bdii.core.matching import matcher
from bdii.core.snapshot import BASE, ONE, SUB, SearchLimit, Snapshot, gtime
from bdii.service.ldapserver import (
    INVALID_DN,
    NO_SUCH_OBJECT,
    PROTOCOL_ERROR,
    SIZE_LIMIT,
    SUCCESS,
    TIME_LIMIT,
    Selection,
    SnapshotHolder,
    _root_dse_matches,
    root_dse,
    to_filter,
)
from bdii.service.metrics import Metrics, entries_per_suffix, exposition, result_name

FILTER_ERROR = -7  # libldap's LDAP_FILTER_ERROR: "Bad search filter"
SCOPES = {"base": BASE, "one": ONE, "onelevel": ONE, "sub": SUB, "subtree": SUB}
SCOPE_NAMES = {BASE: "base", ONE: "one", SUB: "sub"}
BATCH_BYTES = 64 * 1024  # written per reactor turn, then other clients get their turn
INFOSYS = DN.parse("o=infosys")
JSON_TYPE = b"application/json; charset=utf-8"


class SearchError(Exception):
    """A search that cannot start: an LDAP result code and an HTTP status."""

    def __init__(self, code: int, message: str, status: int = 400, matched: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.matched = matched


def result_json(code: int, matched: str = "", message: str = "") -> dict[str, Any]:
    name = "filterError" if code == FILTER_ERROR else result_name(code)
    return {"code": code, "name": name, "matchedDN": matched, "message": message}


# Runs of escaped bytes >= 0x80 (`\c3\a9`): UTF-8, which ldaptor would
# decode one byte at a time into Latin-1 characters.
_HIGH_ESCAPES = re.compile(r"(?:\\[89a-fA-F][0-9a-fA-F])+")


def parse_filter(text: str) -> F.Filter:
    """A filter string as ldapsearch takes it (the outer parentheses optional)."""
    text = text.strip() or "(objectClass=*)"
    if not text.startswith("("):
        text = f"({text})"
    text = _HIGH_ESCAPES.sub(lambda m: bytes.fromhex(m.group(0).replace("\\", "")).decode(
        "utf-8", "surrogateescape"), text)
    try:
        with warnings.catch_warnings():  # pyparsing's and ldaptor's deprecation notices
            warnings.simplefilter("ignore", DeprecationWarning)
            return to_filter(ldapfilter.parseFilter(text))
    except Exception as exc:  # noqa: BLE001 - pyparsing and ldaptor raise several kinds
        raise SearchError(FILTER_ERROR, f"Bad search filter: {exc}") from None


@dataclass(frozen=True, slots=True)
class Query:
    """One /search request, parsed."""

    base: str
    scope: int
    filter_text: str
    filter: F.Filter
    selection: Selection
    size_limit: int = 0
    time_limit: int = 0

    @classmethod
    def from_args(cls, args: Mapping[bytes, Sequence[bytes]]) -> Query:
        def get(name: str, default: str = "") -> str:
            values = args.get(name.encode())
            return values[-1].decode("utf-8", "surrogateescape") if values else default

        scope_text = get("scope", "sub").strip().lower()
        if scope_text not in SCOPES:
            raise SearchError(PROTOCOL_ERROR, f"scope must be base, one or sub, not {scope_text!r}")
        filter_text = get("filter", "(objectClass=*)")
        names = [n for v in args.get(b"attrs", ()) for n in re.split(r"[\s,]+", v.decode("utf-8", "replace")) if n]
        limits = []
        for name in ("sizelimit", "timelimit"):
            try:
                value = int(get(name, "0") or "0")
            except ValueError:
                value = -1
            if value < 0:
                raise SearchError(PROTOCOL_ERROR, f"{name} must be a whole number (0: no limit)")
            limits.append(value)
        types_only = get("typesonly", "").lower() in ("1", "true", "yes", "on")
        return cls(get("base").strip(), SCOPES[scope_text], filter_text, parse_filter(filter_text),
                   Selection.parse(names, types_only), limits[0], limits[1])


def entry_json(snap: Snapshot, i: int, sel: Selection) -> dict[str, Any]:
    """One entry as /search returns it: the attributes LDAP would send (see `encode_entry`)."""
    entry = snap.entries[i]
    attrs: dict[str, list[str]] = {}
    for name, values in entry.items():
        if sel.all_user or name.lower() in sel.keys or matcher(name).key in sel.keys:
            attrs[name] = [] if sel.types_only else list(values)
    if sel.operational:
        for key, (name, values) in snap.operational(i).items():
            if sel.all_operational or key in sel.keys:
                attrs[name] = [] if sel.types_only else list(values)
    return {"dn": str(entry.dn), "attributes": attrs}


def root_dse_json(snap: Snapshot, sel: Selection) -> dict[str, Any]:
    """The root DSE, decoded from exactly what the LDAP server sends."""
    ((_dn, pairs),) = ber.iter_entries(root_dse(snap, replace(sel, types_only=False)))
    attrs: dict[str, list[str]] = {}
    for name, value in pairs:
        attrs.setdefault(name, [])
        if not sel.types_only:
            attrs[name].append(value)
    return {"dn": "", "attributes": attrs}


def dumps(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a value that was not UTF-8 (kept as surrogates): escape it
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def start_search(snap: Snapshot, q: Query, clock: Callable[[], float] = time.monotonic
                 ) -> tuple[Iterator[dict[str, Any]], float | None]:
    """Resolve the base and return the matching entries (lazily) and the deadline."""
    deadline = clock() + q.time_limit if q.time_limit else None
    if not q.base:
        if q.scope != BASE:
            raise SearchError(NO_SUCH_OBJECT, "", status=404)
        found = [root_dse_json(snap, q.selection)] if _root_dse_matches(q.filter) else []
        return iter(found), deadline
    try:
        base = DN.parse(q.base)
    except DNError as exc:
        raise SearchError(INVALID_DN, str(exc)) from None
    i = snap.find(base)
    if i is None:
        matched = snap.matched_dn(base)
        raise SearchError(NO_SUCH_OBJECT, "", status=404, matched=str(matched) if matched else "")
    compiled = snap.compile(q.filter)
    sel = q.selection
    return (entry_json(snap, n, sel) for n in snap.search(i, q.scope, compiled, deadline, clock)), deadline


def _call_soon(delay: float, fn: Callable[[], None]) -> object:
    from twisted.internet import reactor

    return reactor.callLater(delay, fn)  # type: ignore[attr-defined]


@implementer(IPushProducer)
class SearchStream:
    """Writes one search's entries to an HTTP response, a batch per reactor turn.

    A push producer, like the LDAP protocol: the transport pauses it when
    its buffer is full and resumes it when the client has read, so a slow
    client holds back the search instead of making us buffer the result.
    (A pull producer under twisted.web's adapter loses count when several
    writes hit a full buffer: it gets paused more often than resumed.)
    """

    def __init__(self, request: Request, entries: Iterator[dict[str, Any]], size_limit: int,
                 deadline: float | None, clock: Callable[[], float],
                 schedule: Callable[[float, Callable[[], None]], object]) -> None:
        self.request = request
        self.entries = entries
        self.size_limit = size_limit
        self.deadline = deadline
        self.clock = clock
        self.schedule = schedule
        self.count = 0
        self.paused = False
        self.stopped = False
        self.pending = False  # a batch is scheduled or being written

    def start(self, head: bytes) -> None:
        self.request.notifyFinish().addErrback(lambda _f: self.stopProducing())
        self.request.registerProducer(self, True)
        self.request.write(head)
        self._pump()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if not self.pending and not self.stopped:
            self._pump()

    def stopProducing(self) -> None:
        self.stopped = True
        self.entries = iter(())

    def _pump(self) -> None:
        self.pending = True
        budget = BATCH_BYTES
        try:
            while budget > 0 and not self.paused and not self.stopped:
                entry = next(self.entries, None)
                if entry is None:
                    self._finish(SUCCESS)
                    return
                if self.size_limit and self.count >= self.size_limit:
                    self._finish(SIZE_LIMIT)
                    return
                data = (b",\n" if self.count else b"") + dumps(entry)
                self.request.write(data)
                self.count += 1
                budget -= len(data)
                if self.deadline is not None and self.clock() > self.deadline:
                    raise SearchLimit()
        except SearchLimit:
            self._finish(TIME_LIMIT)
            return
        if self.paused or self.stopped:
            self.pending = False  # resumeProducing starts the next batch
        else:
            self.schedule(0, self._pump)  # let other clients in between batches

    def _finish(self, code: int) -> None:
        self.stopped = True
        self.pending = False
        self.request.unregisterProducer()
        self.request.write(b"\n],\n" + dumps({"count": self.count, "result": result_json(code)})[1:] + b"\n")
        self.request.finish()


class SearchResource(Resource):
    isLeaf = True

    def __init__(self, holder: SnapshotHolder, clock: Callable[[], float] = time.monotonic,
                 schedule: Callable[[float, Callable[[], None]], object] = _call_soon) -> None:
        super().__init__()
        self.holder = holder
        self.clock = clock
        self.schedule = schedule

    def render_GET(self, request: Request) -> bytes | int:
        snap = self.holder.current  # read once: this search never sees another generation
        request.setHeader(b"content-type", JSON_TYPE)
        try:
            q = Query.from_args(request.args or {})
            entries, deadline = start_search(snap, q, self.clock)
        except SearchError as exc:
            request.setResponseCode(exc.status)
            return dumps({"entries": [], "count": 0, "result": result_json(exc.code, exc.matched, exc.message)}) + b"\n"
        head = dumps({"base": q.base, "scope": SCOPE_NAMES[q.scope], "filter": q.filter_text,
                      "generation": snap.generation})[:-1] + b',"entries":[\n'
        SearchStream(request, entries, q.size_limit, deadline, self.clock, self.schedule).start(head)
        return NOT_DONE_YET

    render_POST = render_GET  # the status page's form, or a client with a long filter


def status_json(snap: Snapshot, mode: str | None = None) -> dict[str, Any]:
    """`o=infosys` as JSON: the UpdateStats entry and one entry per source."""
    sel = Selection.parse(["*", "createTimestamp", "modifyTimestamp"], False)
    stats = None
    sources = []
    i = snap.find(INFOSYS)
    if i is not None:
        lo, hi = snap.subtree_range(i)
        for n in range(lo + 1, hi):
            e = snap.entries[n]
            if e.has_object_class("bdiiSource"):
                sources.append(entry_json(snap, n, sel))
            elif e.has_object_class("UpdateStats"):
                stats = entry_json(snap, n, sel)
    return {
        "generation": snap.generation,
        "built": gtime(snap.built_at) if snap.generation else None,
        "mode": mode,
        "entries": entries_per_suffix(snap),
        "updateStats": stats,
        "sources": sources,
    }


class StatusResource(Resource):
    isLeaf = True

    def __init__(self, holder: SnapshotHolder, updater: Any | None) -> None:
        super().__init__()
        self.holder = holder
        self.updater = updater

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", JSON_TYPE)
        mode = self.updater.config.mode if self.updater is not None else None
        return dumps(status_json(self.holder.current, mode)) + b"\n"


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, holder: SnapshotHolder, updater: Any | None, metrics: Metrics | None,
                 wall: Callable[[], float]) -> None:
        super().__init__()
        self.holder = holder
        self.updater = updater
        self.metrics = metrics
        self.wall = wall

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return exposition(self.holder.current, self.updater, self.metrics, self.wall()).encode("utf-8")


# --- the status page ---------------------------------------------------------------

_STATE_ORDER = {"failed": 0, "too-large": 1, "recursive": 2, "stale": 3, "ok": 4}


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def size_text(n: int) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} GB"


def cycle_chart(history: Sequence[Any], width: int = 640, height: int = 150) -> dict[str, Any] | None:
    """Bars for each cycle's update time, a line for its entry count (both scaled to fit)."""
    if not history:
        return None
    pad_left, pad_right, pad_top, pad_bottom = 44, 56, 10, 18
    w, h = width - pad_left - pad_right, height - pad_top - pad_bottom
    n = len(history)
    max_t = max(max(s.update_time for s in history), 0.001)
    max_e = max(max(s.total for s in history), 1)
    slot = min(w / n, 40.0)
    bars, points, dots = [], [], []
    for k, s in enumerate(history):
        bh = h * s.update_time / max_t
        x = pad_left + k * slot
        bars.append({"x": round(x + slot * 0.15, 1), "y": round(pad_top + h - bh, 1),
                     "w": round(max(slot * 0.7, 1.0), 1), "h": round(max(bh, 0.5), 1),
                     "title": f"cycle at {gtime(s.finished)}: {s.update_time:.2f} s, {s.total} entries"})
        cx, cy = round(x + slot / 2, 1), round(pad_top + h - h * s.total / max_e, 1)
        points.append(f"{cx},{cy}")
        dots.append({"x": cx, "y": cy, "title": f"{s.total} entries"})
    return {"width": width, "height": height, "left": pad_left, "right": width - pad_right,
            "top": pad_top, "bottom": pad_top + h, "bars": bars, "points": " ".join(points), "dots": dots,
            "max_t": f"{max_t:.2f} s", "max_e": str(max_e), "count": n}


def page_context(snap: Snapshot, updater: Any | None, now: float) -> dict[str, Any]:
    cfg = getattr(updater, "config", None)
    sources = []
    stats = None
    history: list[Any] = []
    if updater is not None:
        for s in sorted(updater.state.sources.values(), key=lambda s: (_STATE_ORDER.get(s.state, 0), s.kind, s.name)):
            sources.append({
                "name": s.name, "kind": s.kind, "state": s.state, "url": s.url,
                "entries": s.entries, "duration": f"{s.duration:.2f} s",
                "bytes": size_text(s.size) if s.kind == "ldap" else "",
                "last_success": gtime(s.last_success) if s.last_success is not None else "",
                "age": age_text(None if s.last_success is None else now - s.last_success),
                "error": s.error or "",
            })
        stats = updater.last_stats
        history = list(updater.history)
    return {
        "hostname": stats.hostname if stats is not None else (cfg.hostname if cfg else ""),
        "mode": cfg.mode if cfg else "",
        "generation": snap.generation,
        "built": gtime(snap.built_at) if snap.generation else "",
        "built_age": age_text(now - snap.built_at) if snap.generation else "",
        "suffixes": entries_per_suffix(snap),
        "sources": sources,
        "failing": sum(1 for s in sources if s["state"] != "ok"),
        "stats": stats,
        "history": history[-10:][::-1],
        "chart": cycle_chart(history),
        "cycles": getattr(updater, "cycles", 0),
        "ldap_port": cfg.port if cfg else 2170,
    }


_templates = Environment(loader=PackageLoader("bdii.service", "templates"), autoescape=select_autoescape(["html"]),
                         trim_blocks=True, lstrip_blocks=True)
_templates.filters["gtime"] = gtime


class PageResource(Resource):
    isLeaf = True

    def __init__(self, holder: SnapshotHolder, updater: Any | None, wall: Callable[[], float]) -> None:
        super().__init__()
        self.holder = holder
        self.updater = updater
        self.wall = wall

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        ctx = page_context(self.holder.current, self.updater, self.wall())
        return _templates.get_template("status.html").render(**ctx).encode("utf-8")


class _QuietSite(Site):
    """No access log: a Prometheus scrape every 15 s is not news (LDAP logs no requests either)."""

    def log(self, request: Request) -> None:
        pass


def make_site(holder: SnapshotHolder, updater: Any | None = None, metrics: Metrics | None = None,
              wall: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic) -> Site:
    """The whole HTTP view; `updater` (the refresh loop) and `metrics` are optional."""
    root = Resource()
    root.putChild(b"", PageResource(holder, updater, wall))
    root.putChild(b"search", SearchResource(holder, clock))
    root.putChild(b"status", StatusResource(holder, updater))
    root.putChild(b"metrics", MetricsResource(holder, updater, metrics, wall))
    site = _QuietSite(root)
    site.noisy = False
    site.displayTracebacks = False
    return site
