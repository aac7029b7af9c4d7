"""Run a private OpenLDAP slapd configured like the legacy BDII.

Used by the test-suite (as a reference server to compare against) and by
the benchmarks.  Self-contained on purpose: it imports nothing from the
``bdii`` package.

    from slapd_harness import Slapd, available, slapd_server

    with Slapd("dn: o=grid\\nobjectClass: organization\\no: grid\\n") as s:
        ldap3.Connection(s.url, auto_bind=True).search("o=grid", ...)

The server is an unprivileged throwaway: everything (slapd.conf, the three
mdb databases, pid/args files, logs) lives in one temporary directory that
``stop()`` removes.  slapd runs in the foreground (``-d 0``) as a child
process, as whatever user runs the tests (when root, privileges are not
dropped).

Configuration mirrors /usr/share/bdii/bdii-top-slapd.conf: the same schema
includes, global limits, three mdb databases (o=grid, o=glue, o=infosys)
with the same ``index`` lines, and the ARC relay databases for
``GLUE2GroupName=services,...,o=glue``; only the o=shadow relay trick is
left out (the o=grid indexes sit directly on the o=grid database).  Each
database has ``rootdn "<suffix>"`` / ``rootpw secret`` so tests can write.

CLI (for benchmarks):  python tests/slapd_harness.py --ldif FILE [--port N]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

__all__ = [
    "Slapd",
    "SlapdError",
    "available",
    "slapd_server",
    "split_ldif_by_suffix",
    "SUFFIXES",
    "ROOTPW",
]

SCHEMA_FILES = (
    "/etc/ldap/schema/core.schema",
    "/etc/ldap/schema/cosine.schema",
    "/etc/ldap/schema/nis.schema",
    "/etc/bdii/BDII.schema",
    "/etc/ldap/schema/Glue-CORE.schema",
    "/etc/ldap/schema/Glue-MDS.schema",
    "/etc/ldap/schema/Glue-CE.schema",
    "/etc/ldap/schema/Glue-CESEBind.schema",
    "/etc/ldap/schema/Glue-SE.schema",
    "/etc/ldap/schema/GLUE20.schema",
)
MODULE_PATH = "/usr/lib/ldap"
SUFFIXES = ("o=grid", "o=glue", "o=infosys")
ROOTPW = "secret"
# mdb map size (virtual address space; the files are sparse). ~150 MB of
# GLUE LDIF becomes well under 2 GiB of mdb with the BDII indexes.
MAXSIZE = {"o=grid": 8 << 30, "o=glue": 8 << 30, "o=infosys": 256 << 20}

# The legacy BDII's index lines (bdii-top-slapd.conf == bdii-slapd.conf).
BDII_INDEXES = {
    "o=grid": [
        "GlueCEAccessControlBaseRule eq",
        "GlueCESEBindCEUniqueID eq",
        "GlueCESEBindSEUniqueID eq",
        "GlueCEUniqueID eq",
        "GlueChunkKey eq",
        "GlueClusterUniqueID eq",
        "GlueSAAccessControlBaseRule eq",
        "GlueSALocalID eq",
        "GlueSEAccessProtocolType pres",
        "GlueSEUniqueID eq",
        "GlueServiceAccessControlRule eq",
        "GlueServiceAccessControlBaseRule eq",
        "GlueServiceType eq,sub",
        "GlueServiceEndpoint eq,sub",
        "GlueServiceURI eq,sub",
        "GlueServiceDataKey eq",
        "GlueSubClusterUniqueID eq",
        "GlueVOInfoAccessControlBaseRule eq",
        "objectClass eq,pres",
    ],
    "o=glue": [
        "GLUE2GroupID eq",
        "GLUE2ExtensionLocalID eq",
        "GLUE2LocationID eq",
        "GLUE2ContactID eq",
        "GLUE2DomainID eq",
        "GLUE2ServiceID eq",
        "GLUE2EndpointID eq",
        "GLUE2ShareID eq",
        "GLUE2ManagerID eq",
        "GLUE2ResourceID eq",
        "GLUE2ActivityID eq",
        "GLUE2PolicyID eq",
        "GLUE2BenchmarkID eq",
        "GLUE2ApplicationEnvironmentID eq",
        "GLUE2ApplicationHandleID eq",
        "GLUE2ToStorageServiceID eq",
        "GLUE2StorageServiceCapacityID eq",
        "GLUE2StorageAccessProtocolID eq",
        "GLUE2StorageShareSharingID eq",
        "GLUE2StorageShareCapacityID eq",
        "GLUE2EndpointInterfaceName eq",
        "GLUE2PolicyRule eq",
        "objectClass eq,pres",
    ],
    "o=infosys": [],
}

# The ARC DIT-change relays of the legacy config (before the o=glue db).
ARC_RELAYS = (
    ("GLUE2GroupName=services,o=glue", "GLUE2GroupID=resource,o=glue"),
    ("GLUE2GroupName=services,GLUE2DomainID=*,o=glue",
     "GLUE2GroupID=resource,GLUE2DomainID=*,o=glue"),
    ("GLUE2GroupName=services,GLUE2DomainID=*,GLUE2GroupName=grid,o=glue",
     "GLUE2GroupID=resource,GLUE2DomainID=*,GLUE2GroupID=grid,o=glue"),
)

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
APPARMOR_HINT = (
    "(if AppArmor confines /usr/sbin/slapd, e.g. on Ubuntu, run "
    "'sudo aa-disable /usr/sbin/slapd' or 'sudo aa-complain /usr/sbin/slapd')"
)


class SlapdError(RuntimeError):
    """slapd/slapadd failed; the message carries their stderr."""


# --------------------------------------------------------------------------
# locating the tools


def _which(name: str, env_var: str) -> str | None:
    override = os.environ.get(env_var)
    if override:
        return override if os.access(override, os.X_OK) else None
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return shutil.which(name, path=os.pathsep.join(path + list(_SBIN)))


def _slapd() -> str | None:
    return _which("slapd", "SLAPD")


def _slapadd() -> str | None:
    return _which("slapadd", "SLAPADD")


def _needs_moduleload(slapd: str) -> bool:
    """True unless this slapd has back-mdb built in (Debian: it is a module)."""
    try:
        out = subprocess.run([slapd, "-VVV"], capture_output=True, text=True,
                             timeout=10)
        text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        text = ""
    static = text.split("Included static backends:", 1)[-1] if (
        "Included static backends:" in text) else ""
    static = static.split("Included static overlays:", 1)[0]
    return not re.search(r"^\s*mdb\s*$", static, re.M)


def available() -> str | None:
    """None when slapd, slapadd and the schema files are present, else why not."""
    if _slapd() is None:
        return "slapd not found (apt-get install slapd)"
    if _slapadd() is None:
        return "slapadd not found (apt-get install slapd)"
    missing = [f for f in SCHEMA_FILES if not os.path.isfile(f)]
    if missing:
        return "schema files missing: " + ", ".join(missing) + (
            " (apt-get install slapd glue-schema bdii)")
    if _needs_moduleload(_slapd()) and not (
            Path(MODULE_PATH) / "back_mdb.la").exists() and not (
            Path(MODULE_PATH) / "back_mdb.so").exists():
        return f"back_mdb module not found in {MODULE_PATH}"
    return None


# --------------------------------------------------------------------------
# a tiny LDIF record splitter (content records only)


class _Record:
    __slots__ = ("dn", "lines", "source", "lineno")

    def __init__(self, dn: str, lines: list[bytes], source: str, lineno: int):
        self.dn, self.lines, self.source, self.lineno = dn, lines, source, lineno


def _iter_records(data: bytes, source: str) -> Iterator[_Record]:
    """Yield LDIF records with their raw (still folded) lines."""
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    raw = [ln[:-1] if ln.endswith(b"\r") else ln for ln in raw]
    block: list[bytes] = []
    start = 0
    for i, ln in enumerate(raw + [b""], 1):
        if ln.strip() == b"" and not (ln.startswith(b" ") and block):
            if block:
                rec = _parse_block(block, source, start)
                if rec is not None:
                    yield rec
            block = []
            continue
        if not block:
            start = i
        block.append(ln)


def _parse_block(block: list[bytes], source: str, lineno: int) -> _Record | None:
    """Parse one record: its DN (unfolded, base64 decoded) and its raw lines
    without comments and without a leading ``version:`` line."""
    # group physical lines into logical lines (folded comments included)
    logical: list[list[bytes]] = []
    for ln in block:
        if ln.startswith(b" ") and logical:
            logical[-1].append(ln)
        else:
            logical.append([ln])
    starts, offset = [], 0
    for group in logical:
        starts.append(offset)
        offset += len(group)
    items = [(st, g) for st, g in zip(starts, logical)
             if not g[0].startswith(b"#")]
    if items and re.match(rb"(?i)version:\s*\d+\s*$", b"".join(
            [items[0][1][0]] + [c[1:] for c in items[0][1][1:]])):
        items = items[1:]
    if not items:
        return None
    st0, g0 = items[0]
    first = b"".join([g0[0]] + [c[1:] for c in g0[1:]])
    m = re.match(rb"(?i)dn(::?)\s*(.*)$", first)
    if not m:
        raise SlapdError(f"{source}:{lineno + st0}: LDIF record does not start "
                         f"with 'dn:': {first[:80]!r}")
    try:
        if m.group(1) == b"::":
            dn = base64.b64decode(m.group(2), validate=False).decode("utf-8")
        else:
            dn = m.group(2).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as e:
        raise SlapdError(f"{source}:{lineno + st0}: bad dn line: {e}") from None
    lines = [ln for _st, g in items for ln in g]
    return _Record(dn, lines, source, lineno + st0)


_HEX = re.compile(r"\\([0-9A-Fa-f]{2})|\\(.)", re.S)
_O_NAMES = {"o", "organizationname", "2.5.4.10"}


def _unescape(value: str) -> str:
    def repl(m):
        return chr(int(m.group(1), 16)) if m.group(1) else m.group(2)
    # \XX hex pairs are UTF-8 bytes; decode properly
    if re.search(r"\\[0-9A-Fa-f]{2}", value):
        out = bytearray()
        i = 0
        while i < len(value):
            c = value[i]
            if c == "\\" and i + 1 < len(value):
                pair = value[i + 1:i + 3]
                if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                    out.append(int(pair, 16))
                    i += 3
                    continue
                out += value[i + 1].encode()
                i += 2
                continue
            out += c.encode()
            i += 1
        return out.decode("utf-8", "replace")
    return _HEX.sub(repl, value)


def last_rdn(dn: str) -> str:
    """Normalised last RDN of a DN string ('' for the empty DN)."""
    comps: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(dn):
        c = dn[i]
        if c == "\\" and i + 1 < len(dn):
            cur.append(dn[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in ",;" and not quoted:
            comps.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    comps.append("".join(cur))
    rdn = comps[-1].strip()
    if not rdn:
        return ""
    attr, sep, value = rdn.partition("=")
    if not sep:
        return rdn.lower()
    attr = attr.strip().lower()
    if attr in _O_NAMES:
        attr = "o"
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    value = _unescape(value).strip().lower()
    return f"{attr}={value}"


def _as_sources(ldif) -> list[tuple[str, bytes]]:
    if ldif is None:
        return []
    if isinstance(ldif, (list, tuple)):
        out = []
        for item in ldif:
            out += _as_sources(item)
        return out
    if isinstance(ldif, bytes):
        return [("<ldif>", ldif)]
    if isinstance(ldif, Path):
        return [(str(ldif), ldif.read_bytes())]
    if isinstance(ldif, str):
        s = ldif.lstrip()
        if "\n" in ldif or not s or re.match(r"(?i)(dn|version)\s*:|#", s):
            return [("<ldif>", ldif.encode("utf-8"))]
        return [(ldif, Path(ldif).read_bytes())]
    raise TypeError(f"LDIF must be text, bytes, a path or a list: {ldif!r}")


def split_ldif_by_suffix(ldif) -> dict[str, list[_Record]]:
    """Group the records of the given LDIF by database suffix."""
    out: dict[str, list[_Record]] = {s: [] for s in SUFFIXES}
    for source, data in _as_sources(ldif):
        for rec in _iter_records(data, source):
            key = last_rdn(rec.dn)
            if key not in out:
                raise SlapdError(
                    f"{rec.source}:{rec.lineno}: dn: {rec.dn!r}: no database "
                    f"for this DN (suffixes: {', '.join(SUFFIXES)})")
            out[key].append(rec)
    return out


# --------------------------------------------------------------------------
# the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Slapd:
    """A throwaway slapd loaded with LDIF.

    ``ldif_paths_or_text``: LDIF text (str containing a newline or starting
    with ``dn:``), bytes, a path (str/Path), or a list of these.
    ``workdir``: parent directory for the temporary server directory
    (default: the system temp dir); the server directory is always removed
    by ``stop()``.  ``port``: TCP port on 127.0.0.1 (default: a free one).
    ``indexes``: ``'bdii'`` (legacy BDII index lines), ``None``/``'none'``
    (no index lines), or a dict suffix -> list of ``index`` line bodies.
    ``relays``: include the legacy ARC ``GLUE2GroupName=services`` relays.
    """

    def __init__(self, ldif_paths_or_text=None, *, workdir=None, port=None,
                 indexes="bdii", relays=True, start_timeout=30.0):
        self._ldif = ldif_paths_or_text
        self._workdir_parent = workdir
        self._port = port
        self._fixed_port = port is not None
        if indexes == "bdii":
            self._indexes = BDII_INDEXES
        elif indexes in (None, "none", False):
            self._indexes = {}
        elif isinstance(indexes, dict):
            self._indexes = indexes
        else:
            raise ValueError(f"indexes must be 'bdii', None or a dict: {indexes!r}")
        self._relays = relays
        self._start_timeout = start_timeout
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.start_seconds: float | None = None
        self.entry_counts: dict[str, int] = {}

    # -- public API ----------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise SlapdError("slapd not started")
        return self._port

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.dir / "slapd.conf"

    def start(self) -> "Slapd":
        if self.proc is not None:
            raise SlapdError("slapd already started")
        reason = available()
        if reason:
            raise SlapdError(reason)
        t0 = time.monotonic()
        try:
            if self._workdir_parent is not None:
                os.makedirs(self._workdir_parent, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix="slapd-harness-",
                                             dir=self._workdir_parent))
            os.chmod(self.dir, 0o755)
            self._write_conf()
            self._load()
            for attempt in range(5):
                if self._port is None or (attempt and not self._fixed_port):
                    self._port = _free_port()
                if self._launch():
                    break
            else:
                raise SlapdError(f"slapd could not bind a port "
                                 f"(last: {self._port})")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "Slapd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):  # best effort: never leave a stray slapd behind
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        except Exception:
            pass

    # -- internals -----------------------------------------------------
    def _write_conf(self) -> None:
        d = self.dir
        lines = [f"include {f}" for f in SCHEMA_FILES]
        lines.append("")
        mods = []
        if _needs_moduleload(_slapd()):
            mods.append("back_mdb")
        if self._relays:
            mods += ["rwm", "back_relay"]
        if mods:
            lines.append(f"modulepath {MODULE_PATH}")
            lines += [f"moduleload {m}" for m in mods]
        lines += [
            "allow bind_v2",
            f'pidfile "{d / "slapd.pid"}"',
            f'argsfile "{d / "slapd.args"}"',
            "loglevel 0",
            "idletimeout 120",
            "sizelimit unlimited",
            "timelimit 2400",
            "threads 64",
            "",
        ]
        for suffix in SUFFIXES:
            if suffix == "o=glue" and self._relays:
                for rsuffix, target in ARC_RELAYS:
                    lines += [
                        "database relay",
                        f'suffix "{rsuffix}"',
                        "overlay rwm",
                        f'suffixmassage "{target}"',
                        "",
                    ]
            dbdir = d / "db" / suffix.split("=", 1)[1]
            dbdir.mkdir(parents=True, mode=0o755)
            lines += [
                "database mdb",
                f'suffix "{suffix}"',
                "checkpoint 1024 0",
                "dbnosync",
                f'rootdn "{suffix}"',
                f"rootpw {ROOTPW}",
                f'directory "{dbdir}"',
                f"maxsize {MAXSIZE[suffix]}",
            ]
            lines += [f"index {ix}" for ix in self._indexes.get(suffix, [])]
            lines.append("")
        self.conf_path.write_text("\n".join(lines))

    def _load(self) -> None:
        groups = split_ldif_by_suffix(self._ldif)
        errors = []
        for suffix, recs in groups.items():
            self.entry_counts[suffix] = len(recs)
            if not recs:
                continue
            name = suffix.split("=", 1)[1]
            path = self.dir / f"load-{name}.ldif"
            origin = []  # (line in split file, source, line in source)
            n = 1
            with open(path, "wb") as fh:
                for rec in recs:
                    origin.append((n, rec.source, rec.lineno, rec.dn))
                    for ln in rec.lines:
                        fh.write(ln + b"\n")
                    fh.write(b"\n")
                    n += len(rec.lines) + 1
            res = subprocess.run(
                [_slapadd(), "-q", "-c", "-f", str(self.conf_path),
                 "-b", suffix, "-l", str(path)],
                capture_output=True, text=True, errors="replace",
                stdin=subprocess.DEVNULL)
            msg = _annotate_lines(res.stderr, origin)
            if res.returncode != 0 or _slapadd_rejected(res.stderr):
                errors.append(f"slapadd -b {suffix} failed "
                              f"(exit {res.returncode}):\n{msg.strip()}")
        if errors:
            raise SlapdError("\n".join(errors))

    def _launch(self) -> bool:
        """Start slapd; True once it answers, False if the port was taken."""
        log = open(self.dir / "slapd.log", "wb")
        cmd = [_slapd(), "-d", "0", "-f", str(self.conf_path),
               "-h", f"ldap://127.0.0.1:{self._port}/"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        log.close()
        deadline = time.monotonic() + self._start_timeout
        attempts = 0
        while True:
            attempts += 1
            rc = self.proc.poll()
            if rc is not None:
                out = (self.dir / "slapd.log").read_text(errors="replace")
                self.proc = None
                if "Address already in use" in out or _port_in_use(self._port):
                    if not self._fixed_port:
                        return False
                    raise SlapdError(f"port {self._port} on 127.0.0.1 is "
                                     f"already in use\n{out.strip()}")
                hint = f" {APPARMOR_HINT}" if (
                    "Permission denied" in out or "could not stat" in out) else ""
                raise SlapdError(f"slapd exited with status {rc}{hint}: "
                                 f"{' '.join(cmd)}\n{out.strip()}")
            if self._answers():
                return True
            if time.monotonic() > deadline or attempts > 2000:
                out = (self.dir / "slapd.log").read_text(errors="replace")
                raise SlapdError(f"slapd did not answer on {self.url} after "
                                 f"{attempts} attempts\n{out.strip()}")
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self._port), 0.5):
                pass
        except OSError:
            return False
        try:
            import ldap3
        except ImportError:  # TCP accept is good enough without ldap3
            return True
        try:
            conn = ldap3.Connection(
                ldap3.Server("127.0.0.1", port=self._port, get_info=ldap3.NONE,
                             connect_timeout=2),
                auto_bind=True, receive_timeout=5)
            try:
                return bool(conn.search("", "(objectClass=*)",
                                        search_scope=ldap3.BASE))
            finally:
                conn.unbind()
        except Exception:
            return False


def _slapadd_rejected(stderr: str) -> bool:
    return bool(re.search(r"could not add entry|\(line=\d+\)", stderr))


def _annotate_lines(stderr: str, origin) -> str:
    """Add the original source:line to slapadd's (line=N) references."""
    if not origin:
        return stderr

    def repl(m):
        n = int(m.group(1))
        best = None
        for start, source, lineno, _dn in origin:
            if start <= n:
                best = (start, source, lineno, _dn)
            else:
                break
        if best is None:
            return m.group(0)
        start, source, lineno, dn = best
        return f"{m.group(0)} [{source}:{lineno + (n - start)} dn: {dn}]"

    text = "\n".join(ln for ln in stderr.splitlines()
                     if not re.search(r"slapd\.conf: line \d+: warning", ln))
    return re.sub(r"\(line=(\d+)\)", repl, text)


@contextlib.contextmanager
def slapd_server(ldif, **kwargs) -> Iterator[Slapd]:
    """``with slapd_server(ldif) as s: ... s.url ...``"""
    server = Slapd(ldif, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Run a throwaway slapd configured like the legacy BDII.")
    p.add_argument("--ldif", action="append", default=[], metavar="FILE",
                   help="LDIF to load (repeatable)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workdir", default=None,
                   help="parent directory for the temporary server directory")
    p.add_argument("--no-indexes", action="store_true",
                   help="omit the legacy BDII index lines")
    args = p.parse_args(argv)
    reason = available()
    if reason:
        print(f"slapd_harness: {reason}", file=sys.stderr)
        return 2
    try:
        server = Slapd(args.ldif, workdir=args.workdir, port=args.port,
                       indexes=None if args.no_indexes else "bdii").start()
    except (SlapdError, OSError) as e:
        print(f"slapd_harness: {e}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{k}: {v}" for k, v in server.entry_counts.items())
    try:
        # Inside the try: a Ctrl-C right after the URL is printed (a test's
        # SIGINT on a loaded machine) is a clean stop too.
        print(server.url, flush=True)
        print(f"slapd_harness: started in {server.start_seconds:.3f}s ({counts}); "
              f"Ctrl-C to stop", file=sys.stderr, flush=True)
        if server.proc is not None:
            server.proc.wait()  # until slapd exits or Ctrl-C
        print("slapd_harness: slapd exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
