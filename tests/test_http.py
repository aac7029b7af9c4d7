"""The HTTP view: /search and /status checked against LDAP on the same snapshot,
/metrics in the Prometheus text format, and the status page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import Counter
from pathlib import Path

import ldap3
import pytest
import pytest_twisted
from support import SKELETON, in_thread, ldap3_search, snapshot_from_ldif
from test_ldap_server import BIG, DATA
from twisted.internet import defer, reactor

from bdii.core.config import Config
from bdii.core.errors import ConfigError
from bdii.service.http import BATCH_BYTES, SearchResource, make_site
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.updater import Updater


class Web:
    """An HTTP view on 127.0.0.1 over the same snapshot holder as an LDAP server."""

    def __init__(self, holder: SnapshotHolder, updater: object | None = None, metrics: object | None = None) -> None:
        self.port = reactor.listenTCP(0, make_site(holder, updater, metrics), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    def get(self, path: str, **params: str) -> tuple[int, dict[str, str], bytes]:
        """A blocking GET (run it in a thread): status, headers, body; errors are answers too."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def web(serve):  # type: ignore[no-untyped-def]
    """(LDAP server, HTTP view) on one snapshot."""
    started: list[Web] = []

    def start(snapshot):  # type: ignore[no-untyped-def]
        server = serve(snapshot)
        w = Web(server.holder, metrics=server.factory.metrics)
        started.append(w)
        return server, w

    yield start
    for w in started:
        pytest_twisted.blockon(defer.maybeDeferred(w.port.stopListening))


def as_text(entries: list[tuple[str, dict]]) -> dict[str, dict[str, list[str]]]:
    """ldap3's raw entries as {dn: {attribute: [values]}}."""
    return {dn: {k: [v.decode() for v in vs or ()] for k, vs in attrs.items()} for dn, attrs in entries}


def from_json(body: bytes) -> dict[str, dict[str, list[str]]]:
    doc = json.loads(body)
    assert doc["count"] == len(doc["entries"])
    return {e["dn"]: e["attributes"] for e in doc["entries"]}


SCOPES = {"base": "BASE", "one": "LEVEL", "sub": "SUBTREE"}

# (base, scope, filter, attributes): what clients ask, over both protocols.
QUERIES = [
    ("o=grid", "sub", "(objectClass=*)", []),
    ("o=glue", "sub", "(objectClass=*)", ["*", "+"]),
    ("mds-vo-name=resource,o=grid", "one", "(objectClass=GlueCE)",
     ["GlueCEUniqueID", "glueceaccesscontrolbaserule"]),
    ("Mds-Vo-Name=resource,O=grid", "sub", "(GlueServiceEndpoint=*host.example.org*)", ["1.1"]),
    ("o=glue", "sub", "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointHealthState=ok))", ["+"]),
    ("o=glue", "sub", "(GLUE2EndpointHealthState=OK)", []),  # GLUE 2.0 strings are case-exact
    ("o=grid", "sub", "(GlueCEAccessControlBaseRule=vo:ATLAS)", ["GlueCEUniqueID"]),  # GLUE 1.3: not
    ("o=grid", "sub", "(GlueCEStateRunningJobs>=10)", ["GlueCEUniqueID", "modifyTimestamp"]),
    ("o=glue", "sub", "(GLUE2ServiceDescription=*Zürich*)", ["GLUE2ServiceDescription", "entryDN"]),
    ("o=glue", "sub", "(GLUE2GroupID:dn:=resource)", ["objectClass"]),
    ("o=grid", "sub", "(GlueServiceDataKey=a\\2cb*)", ["*"]),
    ("GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue", "base", "(objectClass=*)", ["*", "hasSubordinates"]),
    ("o=infosys", "sub", "(|(objectClass=UpdateStats)(objectClass=bdiiSource))", []),
    ("o=grid", "sub", "(!(objectClass=GlueCE))", ["objectClass"]),
    ("", "base", "(objectClass=*)", ["+"]),  # the root DSE
]


@pytest_twisted.inlineCallbacks
def test_search_returns_what_ldap_returns(web):  # type: ignore[no-untyped-def]
    """For each query, /search and an ldap3 search give the same DNs, attribute names and values."""
    server, w = web(snapshot_from_ldif(DATA))
    for base, scope, flt, attrs in QUERIES:
        result, entries = yield in_thread(ldap3_search, server.url, base, flt, SCOPES[scope],
                                          attributes=attrs or ldap3.ALL_ATTRIBUTES)
        status, headers, body = yield in_thread(w.get, "/search", base=base, scope=scope, filter=flt,
                                                attrs=",".join(attrs))
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        doc = json.loads(body)
        assert doc["result"]["name"] == "success" and result["result"] == 0, (base, flt)
        assert from_json(body) == as_text(entries), (base, scope, flt, attrs)
    # Something was compared: the queries are not all empty.
    status, _h, body = yield in_thread(w.get, "/search", base="o=glue")
    assert len(from_json(body)) == 4


@pytest_twisted.inlineCallbacks
def test_types_only_and_size_limit_as_in_ldap(web):  # type: ignore[no-untyped-def]
    """typesonly gives names without values; sizelimit stops with sizeLimitExceeded after the limit."""
    server, w = web(snapshot_from_ldif(DATA))
    result, entries = yield in_thread(ldap3_search, server.url, "o=grid", "(objectClass=GlueCE)",
                                      attributes=["GlueCEUniqueID"], types_only=True)
    _s, _h, body = yield in_thread(w.get, "/search", base="o=grid", filter="(objectClass=GlueCE)",
                                   attrs="GlueCEUniqueID", typesonly="1")
    assert from_json(body) == as_text(entries)
    assert all(v == [] for attrs in from_json(body).values() for v in attrs.values())

    result, entries = yield in_thread(ldap3_search, server.url, "o=grid", size_limit=2, attributes=["1.1"])
    status, _h, body = yield in_thread(w.get, "/search", base="o=grid", sizelimit="2", attrs="1.1")
    doc = json.loads(body)
    assert result["result"] == 4 and len(entries) == 2
    assert status == 200 and doc["result"]["name"] == "sizeLimitExceeded" and doc["count"] == 2
    assert set(from_json(body)) == {dn for dn, _ in entries}


@pytest_twisted.inlineCallbacks
def test_errors_are_json_with_ldap_result_names(web):  # type: ignore[no-untyped-def]
    """A missing base is noSuchObject with LDAP's matchedDN (404); a bad filter, DN or scope is a 400."""
    server, w = web(snapshot_from_ldif(DATA))
    missing = "GLUE2ServiceID=nope,GLUE2GroupID=resource,o=glue"
    result, _entries = yield in_thread(ldap3_search, server.url, missing)
    status, headers, body = yield in_thread(w.get, "/search", base=missing)
    doc = json.loads(body)
    assert result["result"] == 32
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert doc["result"]["name"] == "noSuchObject" and doc["result"]["code"] == 32
    assert doc["result"]["matchedDN"] == result["dn"] == "GLUE2GroupID=resource,o=glue"
    assert doc["entries"] == []

    for params, name in ((dict(base="o=glue", filter="(objectClass=GLUE2Service"), "filterError"),
                         (dict(base="o=glue", filter="(&(a=b)"), "filterError"),
                         (dict(base="not a dn"), "invalidDNSyntax"),
                         (dict(base="o=glue", scope="children"), "protocolError"),
                         (dict(base="o=glue", sizelimit="many"), "protocolError")):
        status, _h, body = yield in_thread(w.get, "/search", **params)
        assert status == 400, params
        assert json.loads(body)["result"]["name"] == name, params


@pytest_twisted.inlineCallbacks
def test_filter_without_parentheses_and_utf8_escapes(web):  # type: ignore[no-untyped-def]
    """As ldapsearch: `objectClass=X` needs no parentheses; `\\c3\\bc` is the UTF-8 of ü."""
    _server, w = web(snapshot_from_ldif(DATA))
    _s, _h, bare = yield in_thread(w.get, "/search", base="o=glue", filter="objectClass=GLUE2Service", attrs="1.1")
    _s, _h, esc = yield in_thread(w.get, "/search", base="o=glue", filter="(GLUE2ServiceDescription=*Z\\c3\\bcrich*)",
                                  attrs="1.1")
    assert list(from_json(bare)) == list(from_json(esc)) == ["GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue"]


@pytest_twisted.inlineCallbacks
def test_search_form_post_is_the_same_search(web):  # type: ignore[no-untyped-def]
    """The page's form may POST: same answer as GET."""
    _server, w = web(snapshot_from_ldif(DATA))
    form = urllib.parse.urlencode({"base": "o=grid", "filter": "(objectClass=GlueCE)", "attrs": "GlueCEUniqueID"})

    def post() -> bytes:
        with urllib.request.urlopen(w.url + "/search", data=form.encode(), timeout=30) as r:
            return r.read()

    posted = yield in_thread(post)
    _s, _h, got = yield in_thread(w.get, "/search", base="o=grid", filter="(objectClass=GlueCE)", attrs="GlueCEUniqueID")
    assert from_json(posted) == from_json(got) and len(from_json(got)) == 2


@pytest_twisted.inlineCallbacks
def test_a_large_result_streams_in_chunks(web):  # type: ignore[no-untyped-def]
    """2000 entries (1.2 MB) arrive complete, chunked, and equal to the LDAP answer."""
    server, w = web(snapshot_from_ldif(BIG))
    status, headers, body = yield in_thread(w.get, "/search", base="o=glue", filter="(objectClass=GLUE2Service)")
    _r, entries = yield in_thread(ldap3_search, server.url, "o=glue", "(objectClass=GLUE2Service)")
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    assert len(body) > 1_000_000
    assert from_json(body) == as_text(entries) and len(entries) == 2000


class FakeRequest:
    """Just what SearchResource uses of a twisted.web Request, with the producer driven by the test."""

    def __init__(self, **args: str) -> None:
        self.args = {k.encode(): [v.encode()] for k, v in args.items()}
        self.written: list[bytes] = []
        self.code = 200
        self.producer = None
        self.finished = False
        self.done: defer.Deferred = defer.Deferred()

    def setHeader(self, name: bytes, value: bytes) -> None:
        pass

    def setResponseCode(self, code: int) -> None:
        self.code = code

    def write(self, data: bytes) -> None:
        assert not self.finished
        self.written.append(data)

    def registerProducer(self, producer, streaming: bool) -> None:
        assert streaming  # a push producer: the transport pauses and resumes it
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def notifyFinish(self) -> defer.Deferred:
        return self.done

    def finish(self) -> None:
        self.finished = True


def test_entries_are_written_a_batch_per_turn_and_wait_for_a_slow_client() -> None:
    """One write per entry, about BATCH_BYTES per reactor turn; nothing while the transport is paused."""
    holder = SnapshotHolder(snapshot_from_ldif(BIG))
    turns: list = []
    req = FakeRequest(base="o=glue", filter="(objectClass=GLUE2Service)")
    SearchResource(holder, schedule=lambda _delay, fn: turns.append(fn)).render_GET(req)  # type: ignore[arg-type]
    first = req.written[1:]  # after the head: the first batch, then the next turn is scheduled
    assert 50 < len(first) < 2000 and BATCH_BYTES <= sum(map(len, first)) < BATCH_BYTES + 1000
    assert len(turns) == 1
    req.producer.pauseProducing()  # the client does not read: the send buffer is full
    n = len(req.written)
    turns.pop()()
    assert len(req.written) == n and not turns  # nothing written, nothing scheduled
    req.producer.resumeProducing()  # the client has read
    assert len(req.written) > n and len(turns) == 1
    rounds = 2
    while turns:
        turns.pop()()
        rounds += 1
    assert req.finished and req.producer is None and rounds > 10
    assert json.loads(b"".join(req.written))["count"] == 2000


def test_a_client_that_goes_away_stops_the_search() -> None:
    """When the connection is lost, nothing more is written or scheduled."""
    holder = SnapshotHolder(snapshot_from_ldif(BIG))
    turns: list = []
    req = FakeRequest(base="o=glue")
    SearchResource(holder, schedule=lambda _delay, fn: turns.append(fn)).render_GET(req)  # type: ignore[arg-type]
    n = len(req.written)
    req.done.errback(ConnectionError("gone"))
    turns.pop()()
    assert len(req.written) == n and not turns and not req.finished


@pytest_twisted.inlineCallbacks
def test_status_is_the_infosys_tree(web):  # type: ignore[no-untyped-def]
    """/status holds the UpdateStats and bdiiSource entries as LDAP shows them, and entry counts."""
    server, w = web(snapshot_from_ldif(DATA, SKELETON))
    _r, entries = yield in_thread(ldap3_search, server.url, "o=infosys",
                                  "(|(objectClass=UpdateStats)(objectClass=bdiiSource))",
                                  attributes=["*", "createTimestamp", "modifyTimestamp"])
    status, _h, body = yield in_thread(w.get, "/status")
    doc = json.loads(body)
    assert status == 200
    ldap = as_text(entries)
    got = {e["dn"]: e["attributes"] for e in [doc["updateStats"], *doc["sources"]]}
    assert got == ldap and len(doc["sources"]) == 2
    total = int(doc["updateStats"]["attributes"]["TotalEntries"][0])
    assert total == doc["entries"]["o=grid"] + doc["entries"]["o=glue"]
    assert doc["entries"] == {"o=grid": 6, "o=glue": 4, "o=infosys": 4}


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                         r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')


def parse_metrics(text: str) -> dict[str, float]:
    """The exposition format, strictly: every sample well-formed and of a declared family."""
    families: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _h, _t, name, kind = line.split(" ")
            assert name not in families
            families[name] = kind
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP ")
            continue
        m = METRIC_LINE.match(line)
        assert m, line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in families else name
        assert family in families, line
        key = line.rsplit(" ", 1)[0]
        assert key not in samples
        samples[key] = float(line.rsplit(" ", 1)[1])
    return samples


@pytest_twisted.inlineCallbacks
def test_metrics_count_ldap_requests_by_operation_and_result(web):  # type: ignore[no-untyped-def]
    """Searches, binds and a noSuchObject show up by operation and result code, with latencies."""
    server, w = web(snapshot_from_ldif(DATA))
    for _ in range(3):
        yield in_thread(ldap3_search, server.url, "o=glue", attributes=["1.1"])
    yield in_thread(ldap3_search, server.url, "o=nowhere")
    conn = ldap3.Connection(ldap3.Server(server.url, get_info=ldap3.NONE))
    yield in_thread(conn.bind)  # stays open while /metrics is read
    try:
        status, headers, body = yield in_thread(w.get, "/metrics")
    finally:
        yield in_thread(conn.unbind)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(body.decode())
    assert m['bdii_ldap_requests_total{operation="search",result="success"}'] == 3
    assert m['bdii_ldap_requests_total{operation="search",result="noSuchObject"}'] == 1
    assert m['bdii_ldap_requests_total{operation="bind",result="success"}'] == 5
    assert m['bdii_ldap_request_duration_seconds_count{operation="search"}'] == 4
    assert m['bdii_ldap_request_duration_seconds_bucket{operation="search",le="+Inf"}'] == 4
    buckets = [v for k, v in m.items() if k.startswith('bdii_ldap_request_duration_seconds_bucket{operation="search"')]
    assert buckets == sorted(buckets)  # cumulative
    assert m["bdii_ldap_connections_total"] == 5 and m["bdii_ldap_connections_open"] >= 1
    assert m['bdii_entries{suffix="o=glue"}'] == 4 and m['bdii_entries{suffix="o=infosys"}'] == 3


# --- the status page, with a real refresh loop and a real browser ------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,900"]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium not found: install Debian's chromium (apt-get install chromium)"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=180, check=False)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB/RGBA PNG (enough for Chromium's screenshots)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line[i] for x in range(width) for i in range(x * bpp, x * bpp + 3))
                    if bpp == 4 else bytes(line))
        prev = line
    return width, height, rows


def colours(rows: list[bytes]) -> Counter:
    return Counter(r[x:x + 3] for r in rows for x in range(0, len(r), 3))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def site_bdii(serve, tmp_path):  # type: ignore[no-untyped-def]
    """A site BDII's refresh loop, two cycles run: one good resource BDII, one down, a broken provider."""
    resource = serve(snapshot_from_ldif(DATA))
    (tmp_path / "ldif").mkdir()
    (tmp_path / "provider").mkdir()
    (tmp_path / "plugin").mkdir()
    broken = tmp_path / "provider" / "broken-provider"
    broken.write_text("#!/bin/sh\necho 'cannot read /etc/grid-info.conf' >&2\nexit 3\n")
    broken.chmod(0o755)
    urls = tmp_path / "urls.conf"
    urls.write_text(f"good-resource {resource.url}/mds-vo-name=resource,o=grid\n"
                    f"down-resource ldap://127.0.0.1:{_closed_port()}/mds-vo-name=resource,o=grid\n")
    text = (f"BDII_MODE=site\nBDII_SITE_NAME=TEST-SITE\nBDII_URLS_FILE={urls}\nBDII_LDIF_DIR=ldif\n"
            f"BDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\nBDII_VAR_DIR=var\nBDII_HOSTNAME=site-bdii.example.org\n"
            "BDII_SOURCE_TIMEOUT=10\nBDII_READ_TIMEOUT=10\n"
            "BDII_SELF_PROVIDER=no\n")  # only the sources above (the self provider: test_aggregation)
    config = Config.from_legacy_text(text, "bdii.conf", base=tmp_path)
    holder = SnapshotHolder()
    updater = Updater(config, reactor, holder)
    pytest_twisted.blockon(updater.cycle())
    pytest_twisted.blockon(updater.cycle())
    w = Web(holder, updater)
    yield w, updater
    pytest_twisted.blockon(defer.maybeDeferred(w.port.stopListening))


@pytest_twisted.inlineCallbacks
def test_status_page_in_headless_chromium(site_bdii, tmp_path):  # type: ignore[no-untyped-def]
    """Chromium renders the page: the DOM has a row per source with its state and error, the
    cycle chart and the search form; the screenshot shows the table's ok and failed badges."""
    w, updater = site_bdii
    assert {s.state for s in updater.state.sources.values()} == {"ok", "failed"}
    dom = yield in_thread(chromium, tmp_path / "profile", "--dump-dom", w.url + "/")
    html = dom.stdout.decode()
    rows = re.findall(r'<tr class="source state-([a-z-]+)" data-source="([^"]+)"', html)
    assert sorted(rows) == [("failed", "ldap/down-resource"), ("failed", "provider/broken-provider"),
                            ("ok", "ldap/good-resource")], dom.stderr.decode()[-2000:]
    assert "cannot read /etc/grid-info.conf" in html
    assert "Connection refused" in html or "refused" in html.lower()
    chart = re.search(r'<svg id="cycle-chart".*?</svg>', html, re.DOTALL)
    assert chart and len(re.findall(r'<rect class="bar"', chart.group(0))) == 2
    assert '<form id="search-form" action="/search" method="get">' in html
    assert all(f'name="{n}"' in html for n in ("base", "scope", "filter", "attrs"))
    assert "site-bdii.example.org" in html

    shot = tmp_path / "page.png"
    proc = yield in_thread(chromium, tmp_path / "profile", f"--screenshot={shot}", w.url + "/")
    assert shot.is_file(), proc.stderr.decode()[-2000:]
    assert shot.stat().st_size > 20_000  # a blank 1200x900 page compresses to a few kB
    width, height, rows_ = yield in_thread(read_png, shot)
    assert (width, height) == (1200, 900)
    seen = colours(rows_)
    assert len(seen) > 200  # text, anti-aliased: not a flat or blank image
    assert seen[bytes((0x1F, 0x3A, 0x5F))] > 10_000  # the header bar
    assert seen[bytes((0x2E, 0x7D, 0x32))] > 300  # the sources table's green "ok" badge
    assert seen[bytes((0xC6, 0x28, 0x28))] > 600  # ... and two red "failed" badges
    assert seen[bytes((0xFD, 0xEC, 0xEC))] > 2_000  # ... on the failed rows' tint


@pytest_twisted.inlineCallbacks
def test_page_search_and_metrics_agree_with_the_refresh_loop(site_bdii):  # type: ignore[no-untyped-def]
    """The form's default search answers; /metrics reports each source's state, bytes and the cycles."""
    w, updater = site_bdii
    status, _h, body = yield in_thread(w.get, "/search", base="o=glue", scope="sub",
                                       filter="(objectClass=GLUE2Service)", attrs="")
    assert status == 200 and list(from_json(body)) == [
        "GLUE2ServiceID=svc-1,GLUE2GroupID=resource,GLUE2DomainID=TEST-SITE,o=glue"]
    _s, _h, body = yield in_thread(w.get, "/metrics")
    m = parse_metrics(body.decode())
    assert m["bdii_cycles_total"] == 2
    assert m['bdii_source_state{source="ldap/good-resource",kind="ldap",state="ok"}'] == 1
    assert m['bdii_source_state{source="ldap/down-resource",kind="ldap",state="failed"}'] == 1
    assert m['bdii_source_state{source="ldap/down-resource",kind="ldap",state="ok"}'] == 0
    assert m['bdii_source_bytes{source="ldap/good-resource",kind="ldap"}'] > 1000
    assert m['bdii_source_entries{source="ldap/good-resource",kind="ldap"}'] == updater.state.sources["ldap/good-resource"].entries
    assert 'bdii_source_last_success_age_seconds{source="ldap/down-resource",kind="ldap"}' not in m
    assert m['bdii_source_last_success_age_seconds{source="ldap/good-resource",kind="ldap"}'] >= 0
    assert m['bdii_cycle_entries{change="total"}'] == updater.last_stats.total
    assert m["bdii_cycle_failed_sources"] == 2
    _s, _h, body = yield in_thread(w.get, "/status")
    states = {s["attributes"]["bdiiSourceName"][0]: s["attributes"]["bdiiSourceStatus"][0]
              for s in json.loads(body)["sources"]}
    assert states == {"ldap/good-resource": "ok", "ldap/down-resource": "failed", "provider/broken-provider": "failed"}


def test_http_settings() -> None:
    """BDII_HTTP_PORT is off by default, must be a port other than BDII_PORT; the address defaults to LDAP's."""
    from bdii.service.app import http_endpoint_string

    assert Config().http_port is None and http_endpoint_string(Config()) is None
    cfg = Config.from_legacy_text("BDII_HTTP_PORT=8080\nBDII_BIND_ADDRESS=127.0.0.1\n", "c")
    assert http_endpoint_string(cfg) == "tcp:port=8080:interface=127.0.0.1:backlog=1024"
    cfg = Config.from_legacy_text("BDII_HTTP_PORT=8080\nBDII_HTTP_BIND_ADDRESS=::1\n", "c")
    assert http_endpoint_string(cfg) == "tcp6:port=8080:interface=\\:\\:1:backlog=1024"
    with pytest.raises(ConfigError) as err:
        Config.from_legacy_text("BDII_HTTP_PORT=2170\n", "c")
    assert "BDII_HTTP_PORT must differ from BDII_PORT" in str(err.value.problems)
    with pytest.raises(ConfigError):
        Config.from_legacy_text("BDII_HTTP_PORT=http\n", "c")
    assert os.path.isfile(Path(__file__).parent.parent / "bdii" / "service" / "templates" / "status.html")
