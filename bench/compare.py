#!/usr/bin/env python3
"""Side-by-side benchmark: `bdii serve` against OpenLDAP slapd on the same data (issue 8, item 1).

    python bench/compare.py [--sites 300] [--seconds 1.5] [--quick] [--no-legacy]

1. Generates (bench/gridgen.py, cached in bench/data/) the top-level data set and
   loads the SAME LDIF file into our server (`bdii serve`, bench.start_server) and
   into a private slapd (tests/slapd_harness.py: Debian slapd, GLUE schemas, mdb,
   the legacy BDII's indexes). If slapd cannot be started the script says why and
   exits with status 2.
2. Runs the SAME requests against both, one server after the other for every
   point: the queries Q1-Q24 of ../shared/QUERIES.md with parameters drawn from
   the data, at 1, 4 and 16 concurrent connections, each *cold* (thousands of
   distinct parameter sets, all encoded before timing, walked in order so a
   request repeats only once the whole set is used; parameterless queries get a
   never-matching `(objectClass=benchNoMatchN)` OR-branch so that every cold
   request is distinct while the answer is the same) and *warm* (5 requests
   repeated); then a weighted mix of all of them (cheap lookups 10, mid-size 3,
   dump-sized / OR lists 1) and full dumps of o=grid and o=glue.
   Load: bench.run_load (asyncio raw-BER clients in up to nCPU spawned processes).
   Every point prints client CPU and server CPU (% of one core, from getrusage of
   the clients and /proc of the server) so a client-bound point is visible.
3. Refresh: our snapshot build in a fresh process (bench.bench_build), our
   server's first cycle and a second cycle (SIGHUP) from its log; the legacy
   /usr/sbin/bdii-update (two daemon cycles against a second, empty harness
   slapd; OpenLDAP 2.5's ldap tools dropped -h/-p, so small wrappers turn
   them into -H) unless --no-legacy.
4. Peak RSS (VmHWM) of our server vs slapd (and bdii-update).

Results also go to bench/out/compare-<sites>.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import bench  # noqa: E402

OUT = HERE / "out"
CONNS = (1, 4, 16)
WARM_N = 5

GROUPS = {
    "indexed lookups (Q11-Q16,Q19)": ["Q11", "Q12", "Q13", "Q14", "Q15", "Q16", "Q19"],
    "one-site subtrees (Q21,Q22)": ["Q21", "Q22"],
    "dump-sized (Q1,Q2,Q23)": ["Q1", "Q2", "Q23"],
    "OR lists (Q8,Q9)": ["Q8", "Q9"],
    "other (Q3-7,Q10,Q17,Q18,Q20,Q24)": ["Q3", "Q4", "Q5", "Q6", "Q7", "Q10", "Q17", "Q18", "Q20", "Q24"],
}
# weights in the mix: cheap indexed lookups dominate production traffic
WEIGHTS = {q: 10 for q in ("Q11", "Q12", "Q13", "Q15", "Q16", "Q17", "Q18", "Q19", "Q24")}
WEIGHTS.update({q: 3 for q in ("Q3", "Q4", "Q5", "Q6", "Q7", "Q10", "Q20")})
WEIGHTS.update({q: 1 for q in ("Q1", "Q2", "Q8", "Q9", "Q14", "Q21", "Q22", "Q23")})


# --- parameters from the data -------------------------------------------------
def _records(path: Path):
    """(dn, {lowercased attr: [values]}) for every entry of an LDIF file (unfolded, base64 decoded)."""
    def flush(lines):
        dn, attrs = None, {}
        for ln in lines:
            name, sep, val = ln.partition(":")
            if not sep:
                continue
            if val.startswith(":"):
                try:
                    val = base64.b64decode(val[1:].strip()).decode("utf-8", "replace")
                except ValueError:
                    continue
            else:
                val = val.strip()
            if name.lower() == "dn":
                dn = val
            else:
                attrs.setdefault(name.lower(), []).append(val)
        return dn, attrs

    lines: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            raw = raw.rstrip("\n")
            if raw.startswith(" ") and lines:
                lines[-1] += raw[1:]
            elif raw.strip() == "":
                if lines:
                    yield flush(lines)
                lines = []
            elif not raw.startswith("#"):
                lines.append(raw)
    if lines:
        yield flush(lines)


def _host(url: str) -> str | None:
    m = re.match(r"[\w+.-]+://\[?([^:/\]]+)", url)
    return m.group(1) if m else None


def extract_parameters(path: Path) -> dict:
    vos, ce_vos, sa_pairs, se_hosts, srm_hosts = set(), [], set(), set(), set()
    svc2_hosts, endpoint_hosts, sites13, sites2 = set(), set(), [], []
    share_ids, resource_ids = [], []
    for dn, a in _records(path):
        ocs = {o.lower() for o in a.get("objectclass", [])}
        low = dn.lower()
        if "gluece" in ocs and low.startswith("glueceuniqueid="):
            vs = sorted({r.split(":", 1)[1] for r in a.get("glueceaccesscontrolbaserule", []) if r.startswith("VO:")})
            ce_vos.append((dn, vs))
            vos.update(vs)
        if "gluesa" in ocs:
            hosts = [k.split("=", 1)[1] for k in a.get("gluechunkkey", []) if k.lower().startswith("glueseuniqueid=")]
            for r in a.get("gluesaaccesscontrolbaserule", []):
                vo = r.split(":", 1)[1] if r.startswith("VO:") else r
                for h in hosts:
                    sa_pairs.add((vo, h))
        if "gluese" in ocs:
            se_hosts.update(a.get("glueseuniqueid", []))
        if "glueservice" in ocs:
            for ep in a.get("glueserviceendpoint", []):
                h = _host(ep)
                if h:
                    endpoint_hosts.add(h)
                    if any(t.lower().startswith("srm") for t in a.get("glueservicetype", [])):
                        srm_hosts.add(h)
        if "mds" in ocs and low.endswith(",mds-vo-name=local,o=grid") and low.count(",") == 2:
            sites13.append(dn.split(",")[0].split("=", 1)[1])
        if "glue2domain" in ocs and low.count(",") == 2 and low.endswith("glue2groupid=grid,o=glue"):
            sites2.append(a.get("glue2domainid", [dn.split(",")[0].split("=", 1)[1]])[0])
        if "glue2service" in ocs:
            for sid in a.get("glue2serviceid", []):
                h = sid.split("_")[0]
                if "." in h:
                    svc2_hosts.add(h)
        if "glue2policy" in ocs:
            vos.update(r.split(":", 1)[1] for r in a.get("glue2policyrule", []) if r.lower().startswith("vo:"))
        if "glue2share" in ocs:
            share_ids += a.get("glue2shareid", [])
        if "glue2executionenvironment" in ocs:
            resource_ids += a.get("glue2resourceid", [])
    return {"vo": sorted(vos), "ce": ce_vos, "sa": sorted(sa_pairs), "se": sorted(se_hosts),
            "srm": sorted(srm_hosts | se_hosts), "svc2": sorted(svc2_hosts), "endpoint": sorted(endpoint_hosts),
            "site13": sites13, "site2": sites2, "share": share_ids, "resource": resource_ids}


# --- the queries of QUERIES.md ----------------------------------------------
def _vof(vo: str, attr: str) -> str:
    return f"(|({attr}=VOMS:/{vo}/*)({attr}=VOMS:/{vo})({attr}=VO:{vo}))"


def make_query(q: str, P: dict, rng: random.Random) -> tuple[tuple, str]:
    """One (base, filter, attrs, scope) for query `q` with parameters drawn by `rng`, and a key."""
    vo = rng.choice(P["vo"])
    if q == "Q1":
        return ("o=grid", f"(&(ObjectClass=GlueCE)(GlueCEAccessControlBaseRule=VO*:{vo}))", [], 2), vo
    if q == "Q2":
        return ("o=grid", f"(&(ObjectClass=GlueSA)(|(GlueSAAccessControlBaseRule=VO*:{vo})"
                f"(GlueSAAccessControlBaseRule={vo})))", [], 2), vo
    if q == "Q3":
        return ("o=grid", "(|(&(ObjectClass=GlueSEAccessProtocol)(|(GlueSEAccessProtocolType=gsiftp)"
                "(GlueSEAccessProtocolType=xroot*)))(&(ObjectClass=GlueSEControlProtocol)"
                "(|(GlueSEControlProtocolType=SRM*)(GlueSEControlProtocolType=xroot*))))",
                ["GlueChunkKey", "GlueSEAccessProtocolType", "GlueSEControlProtocolType"], 2), ""
    if q == "Q4":
        return ("o=grid", "(objectClass=GlueSite)", [], 2), ""
    if q == "Q5":
        return ("mds-vo-name=local,o=grid", "(&(objectclass=GlueService)(GlueServiceType=bdii_top))", [], 2), ""
    if q == "Q6":
        return ("o=glue", "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=org.glite.FileTransfer))",
                [], 2), ""
    if q == "Q7":
        return ("o=glue", f"(&(objectClass=GLUE2Policy)(|(GLUE2PolicyRule=VO:{vo})(GLUE2PolicyRule=vo:{vo})))",
                [], 2), vo
    if q == "Q8":
        ids = rng.sample(P["share"], min(len(P["share"]), rng.randint(100, 400)))
        return ("o=glue", "(&(objectClass=GLUE2Share)(|" + "".join(f"(GLUE2ShareID={i})" for i in ids) + "))",
                [], 2), "|".join(ids)
    if q == "Q9":
        real = P["resource"]
        ids = rng.sample(real, min(len(real), rng.randint(600, 1000)))
        ids += [f"gone{rng.randrange(10**9)}.example.org" for _ in range(1000 - len(ids))]  # CEs DIRAC still lists
        rng.shuffle(ids)
        return ("o=glue", "(&(objectClass=GLUE2ExecutionEnvironment)(|"
                + "".join(f"(GLUE2ResourceID={i})" for i in ids) + "))", [], 2), "|".join(ids)
    if q == "Q10":
        return ("Mds-Vo-name=local,o=grid", f"(&(GlueCEUniqueID=*){_vof(vo, 'GlueCEAccessControlBaseRule')})",
                [], 2), vo
    if q == "Q11":
        ce, vs = rng.choice(P["ce"])
        if vs and rng.random() < 0.8:     # mostly a VO the CE supports, as DIRAC asks
            vo = rng.choice(vs)
        return (ce, f"(&(objectClass=GlueVOView){_vof(vo, 'GlueCEAccessControlBaseRule')})", [], 2), ce + vo
    if q == "Q12":
        vo, h = rng.choice(P["sa"])
        return ("Mds-Vo-name=local,o=grid", f"(&(GlueSAAccessControlBaseRule=VO:{vo})"
                f"(GlueChunkKey=GlueSEUniqueID={h}))", ["GlueSATotalOnlineSize", "GlueSAFreeOnlineSize"], 2), vo + h
    if q == "Q13":
        h = rng.choice(P["se"])
        return ("o=grid", f"(|(GlueSEUniqueID=*{h}*)(&(GlueServiceType=srm*)(GlueServiceEndpoint=*://{h}*)))",
                ["GlueServiceVersion", "GlueServiceEndpoint", "GlueServiceType"], 2), h
    if q == "Q14":
        return ("o=glue", "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointURL=*)(|(GLUE2EndpointInterfaceName=SRM)"
                "(GLUE2EndpointInterfaceName=xroot)(GLUE2EndpointInterfaceName=webdav)"
                "(GLUE2EndpointInterfaceName=gsiftp)(GLUE2EndpointInterfaceName=http)"
                "(GLUE2EndpointInterfaceName=https)))", ["GLUE2EndpointURL", "GLUE2EndpointServiceForeignKey"], 2), ""
    if q == "Q15":
        h = rng.choice(P["svc2"])
        return ("o=glue", f"(&(objectClass=GLUE2Service)(GLUE2ServiceID=*{h}*))",
                ["GLUE2ServiceAdminDomainForeignKey"], 2), h
    if q == "Q16":
        h = rng.choice(P["srm"])
        return ("o=grid", f"(|(&(GlueChunkKey=GlueSEUniqueID={h})(|(GlueSAAccessControlBaseRule=ops)"
                f"(GlueSAAccessControlBaseRule=VO:ops)))(&(GlueChunkKey=GlueSEUniqueID={h})"
                f"(|(GlueVOInfoAccessControlBaseRule=ops)(GlueVOInfoAccessControlBaseRule=VO:ops)))"
                f"(&(GlueServiceUniqueID=*://{h}*)(GlueServiceVersion=2.*)(GlueServiceType=srm*)))",
                ["GlueServiceEndpoint", "GlueSAPath", "GlueVOInfoPath"], 2), h
    if q == "Q17":
        return ("o=infosys", "(|(objectClass=UpdateStats)(objectClass=InfoSystemStats))", ["modifyTimestamp"], 2), ""
    if q == "Q18":
        h = rng.choice(P["endpoint"])
        return ("Mds-Vo-Name=local,O=grid", f"(GlueServiceEndpoint=*{h}*)", ["1.1"], 2), h
    if q == "Q19":
        s = rng.choice(P["site2"])
        return (f"GLUE2DomainID={s},GLUE2GroupID=grid,o=glue", f"(&(objectClass=GLUE2Domain)(GLUE2DomainID={s}))",
                [], 2), s
    if q == "Q20":
        return ("o=glue", "(GLUE2GroupID:dn:=cloud)", [], 2), ""
    if q == "Q21":
        s = rng.choice(P["site13"])
        return (f"mds-vo-name={s},mds-vo-name=local,o=grid", "(|(objectClass=GlueTop)(objectClass=MDS)"
                "(objectClass=GlueClusterTop)(objectClass=GlueCETop)(objectClass=GlueGeneralTop)"
                "(objectClass=GlueSETop)(objectClass=GlueSATop))", [], 2), s
    if q == "Q22":
        s = rng.choice(P["site2"])
        return (f"GLUE2DomainID={s},GLUE2GroupID=grid,o=glue",
                "(!(|(objectClass=GLUE2ApplicationEnvironment)(objectClass=GLUE2Activity)))", [], 2), s
    if q == "Q23":
        return ("o=grid", "(|(objectClass=gluevoview)(|(objectClass=gluecesebind)(|(objectClass=gluece)"
                "(|(objectClass=gluecluster)(objectClass=gluesubcluster)))))", [], 2), ""
    if q == "Q24":
        return ("", "(objectClass=*)", [], 0), ""
    if q in ("DUMP o=grid", "DUMP o=glue"):
        return (q.split()[1], "(objectClass=*)", [], 2), ""
    raise KeyError(q)


QUERIES = [f"Q{i}" for i in range(1, 25)]
DUMPS = ["DUMP o=grid", "DUMP o=glue"]


def _encode(args) -> bytes:
    base, flt, attrs, scope = args
    return bench.encode_search(base, flt, attrs, scope)


def request_sets(P: dict, names: list[str], cold_n: int, cold_n_big: int, seed: int = 1) -> dict:
    """{query: {"cold": [distinct encoded ops], "warm": [WARM_N encoded ops]}}, all encoded up front."""
    plan: dict[str, dict[str, list]] = {}
    for q in names:
        rng = random.Random(f"{seed}-{q}")
        n = cold_n_big if q in ("Q8", "Q9") or q.startswith("DUMP") else cold_n
        seen, cold = set(), []
        for _ in range(n * 4):
            spec, key = make_query(q, P, rng)
            if key == "":              # no parameter: make each cold request distinct, same answer
                base, flt, attrs, scope = spec
                spec = (base, f"(|{flt}(objectClass=benchNoMatch{len(cold)}))", attrs, scope)
                key = str(len(cold))
            if key in seen:
                continue
            seen.add(key)
            cold.append(spec)
            if len(cold) >= n:
                break
        wrng = random.Random(f"warm-{seed}-{q}")
        warm = [make_query(q, P, wrng)[0] for _ in range(WARM_N)]
        plan[q] = {"cold": cold, "warm": warm}
    flat = [(q, m, i) for q in plan for m in ("cold", "warm") for i in range(len(plan[q][m]))]
    with mp.get_context("spawn").Pool(os.cpu_count() or 2) as pool:
        blobs = pool.map(_encode, [plan[q][m][i] for q, m, i in flat], chunksize=64)
    out: dict[str, dict[str, list[bytes]]] = {q: {"cold": [], "warm": []} for q in plan}
    for (q, m, _i), b in zip(flat, blobs):
        out[q][m].append(b)
    return out


class Rotating:
    """A sequence for bench._client's rng.choice(ops): returns the ops in order from a
    random starting point (per process), so cold requests only repeat once all are used."""

    def __init__(self, ops: list[bytes]):
        self.ops = ops
        self.pos = 0

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.pos = random.Random(os.getpid() * 7919 + time.time_ns()).randrange(max(1, len(self.ops)))

    def __len__(self) -> int:
        return len(self.ops)

    def __getitem__(self, _i: int) -> bytes:
        op = self.ops[self.pos % len(self.ops)]
        self.pos += 1
        return op


# --- server side measurements --------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def cpu_seconds(pids: list[int]) -> float:
    tot = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            tot += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return tot / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field: str) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def probe(port: int, op: bytes) -> tuple[int, int]:
    """(entries, resultCode) of one request, synchronously: answers must agree before timing."""
    from bdii.core import ber

    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(ber.message(1, op))
        buf, n = bytearray(), 0
        while True:
            data = s.recv(1 << 20)
            if not data:
                return n, -1
            buf += data
            pos = 0
            while True:
                end = bench._frame(buf, pos)
                if end is None:
                    break
                _mid, tag, _ts, cs, ce = ber.split_message(bytes(buf[pos:end]))
                if tag == 0x64:
                    n += 1
                elif tag == 0x65:
                    return n, ber.result_code(bytes(buf[pos:end]), cs, ce)[0]
                pos = end
            del buf[:pos]


def pss_kb(pids: list[int]) -> int:
    """Proportional set size of a process tree: shared pages (copy-on-write
    after fork) counted once in all, not once per process as RSS would."""
    tot = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    tot += int(line.split()[1])
                    break
        except OSError:
            pass
    return tot


class PeakPss:
    """Samples the PSS of a process tree every 0.5 s in a thread; keeps the peak."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak, self.stop_ = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_.wait(0.5):
            self.peak = max(self.peak, pss_kb(tree(self.pid)))

    def stop(self) -> float:
        self.stop_.set()
        self.thread.join()
        return self.peak / 1024


def dump_once(port: int, op: bytes) -> tuple[float, int, int]:
    """(seconds, bytes, entries) of one full dump read by a minimal client: it
    only walks the BER frame headers (~1 us a message), so it can take
    several hundred MB/s and the server, not the client, sets the pace."""
    from bdii.core import ber

    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(ber.message(1, op))
        buf = bytearray(64 << 20)
        view = memoryview(buf)
        have = pos = total = n = 0
        while True:
            if len(buf) - have < (1 << 20):
                del view
                buf[:have - pos] = buf[pos:have]
                have, pos = have - pos, 0
                view = memoryview(buf)
            got = s.recv_into(view[have:], len(buf) - have)
            if not got:
                raise RuntimeError("connection closed before the end of the dump")
            have += got
            total += got
            while True:
                if have - pos < 6:
                    break
                first = buf[pos + 1]
                if first < 0x80:
                    hdr, size = 2, first
                else:
                    k = first & 0x7F
                    hdr, size = 2 + k, int.from_bytes(buf[pos + 2:pos + 2 + k], "big")
                end = pos + hdr + size
                if end > have:
                    break
                # messageID is a short INTEGER: the op tag follows it
                tag = buf[pos + hdr + 2 + buf[pos + hdr + 1]]
                if tag == 0x65:
                    return time.perf_counter() - t0, total, n
                n += 1
                pos = end


def _dump_proc(port: int, op: bytes, q) -> None:
    q.put(dump_once(port, op))


def parallel_dumps(port: int, op: bytes, k: int) -> tuple[float, int]:
    """k simultaneous dumps from k client processes: (wall seconds, total bytes)."""
    res, wall = bench.in_processes(mp.get_context("fork"), _dump_proc, [(port, op)] * k)
    return wall, sum(r[1] for r in res)


# --- the run ---------------------------------------------------------------------
class Runner:
    def __init__(self, servers: dict, seconds: float):
        self.servers = servers            # name -> (port, pid)
        self.seconds = seconds
        self.rows: list[dict] = []

    def point(self, label: str, mode: str, conns: int, ops, seconds: float | None = None,
              extra: bool = False) -> dict:
        """One load point against ours and slapd (and, with `extra`, the extra
        servers too: ours before an optimisation, in the same run)."""
        secs = seconds or self.seconds
        res = {}
        for name, (port, pid) in self.servers.items():
            if name not in ("ours", "slapd") and not extra:
                continue
            pids = tree(pid)
            c0, t0 = cpu_seconds(pids), time.perf_counter()
            r = bench.run_load(port, ops, conns, secs)
            wall = time.perf_counter() - t0
            r["server_cpu"] = (cpu_seconds(pids) - c0) / max(secs, wall - 0.3)
            r["n"] = round(r["qps"] * secs)
            r["bytes_per_req"] = r["MBps"] * secs * 1e6 / max(1, r["n"])
            res[name] = r
        o, s = res["ours"], res["slapd"]
        row = {"query": label, "mode": mode, "conns": conns, "secs": secs, "ours": o, "slapd": s,
               "ratio": o["qps"] / s["qps"] if s["qps"] else float("nan")}
        self.rows.append(row)
        print(f"{label:<12}{mode:>5}{conns:>4} | {o['qps']:>8.1f}{o['p50_ms']:>9.2f}{o['p99_ms']:>9.2f}"
              f"{o['MBps']:>8.1f}{o['client_cpu']:>6.0%}{o['server_cpu']:>6.0%} | {s['qps']:>8.1f}"
              f"{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['MBps']:>8.1f}{s['client_cpu']:>6.0%}"
              f"{s['server_cpu']:>6.0%} | {row['ratio']:>6.2f}"
              + "".join(f" | {n}: {r['qps']:.1f} q/s, p99 {r['p99_ms']:.2f} ms, srv {r['server_cpu']:.0%},"
                        f" ratio {r['qps'] / s['qps'] if s['qps'] else float('nan'):.2f}"
                        for n, r in res.items() if n not in ("ours", "slapd")), flush=True)
        for n, r in res.items():
            if n not in ("ours", "slapd"):
                row[n] = r
                row["ratio " + n] = r["qps"] / s["qps"] if s["qps"] else float("nan")
        return row


HEADER = (f"{'query':<12}{'mode':>5}{'con':>4} | {'ours q/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'MB/s':>8}"
          f"{'cli':>6}{'srv':>6} | {'slapd q/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'MB/s':>8}{'cli':>6}{'srv':>6}"
          f" | {'ours/slapd':>6}")


def gmean(xs: list[float]) -> float:
    xs = [x for x in xs if x and x > 0 and not math.isnan(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# --- legacy bdii-update ------------------------------------------------------------
WRAPPER = """#!/usr/bin/python3
# OpenLDAP 2.5 dropped -h/-p; bdii-update 6.0.0 still passes them: turn them into -H.
import os, sys
a, host, port, out = sys.argv[1:], None, None, []
i = 0
while i < len(a):
    if a[i] == "-h": host = a[i + 1]; i += 2; continue
    if a[i] == "-p": port = a[i + 1]; i += 2; continue
    out.append(a[i]); i += 1
if host or port:
    out = ["-H", "ldap://" + (host or "localhost") + ":" + (port or "389")] + out
os.execv("/usr/bin/TOOL", ["TOOL"] + out)
"""


def start_legacy(tmp: Path, slapd: Any, place: Callable[[Path], None]) -> None:
    """Lay out a legacy BDII in `tmp` (its one LDIF file put at ldif/grid.ldif by
    `place`), pointed at `slapd` through the ldap tool wrappers, and start
    /usr/sbin/bdii-update as a daemon; it logs to tmp/bdii-update.log."""
    for d in ("ldif", "provider", "plugin", "var/archive", "run", "bin"):
        (tmp / d).mkdir(parents=True)
    place(tmp / "ldif" / "grid.ldif")
    for tool in ("ldapadd", "ldapmodify", "ldapdelete", "ldapsearch"):
        w = tmp / "bin" / tool
        w.write_text(WRAPPER.replace("TOOL", tool))
        w.chmod(0o755)
    conf = tmp / "bdii.conf"
    conf.write_text("\n".join([
        f"BDII_LOG_FILE={tmp}/bdii-update.log", f"BDII_PID_FILE={tmp}/run/bdii-update.pid",
        "BDII_LOG_LEVEL=INFO", f"BDII_LDIF_DIR={tmp}/ldif", f"BDII_PROVIDER_DIR={tmp}/provider",
        f"BDII_PLUGIN_DIR={tmp}/plugin", f"BDII_PORT={slapd.port}", "BDII_BREATHE_TIME=1",
        "BDII_READ_TIMEOUT=3000", "BDII_ARCHIVE_SIZE=0", "BDII_DELETE_DELAY=0",
        f"BDII_VAR_DIR={tmp}/var", f"BDII_RUN_DIR={tmp}/run", "BDII_HOSTNAME=127.0.0.1",
        f"SLAPD_CONF={slapd.conf_path}", ""]))
    env = dict(os.environ, PATH=f"{tmp}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}", LANG="C.UTF-8")
    subprocess.run(["/usr/bin/python3", "/usr/sbin/bdii-update", "-c", str(conf), "-d"], env=env,
                   check=True, stdin=subprocess.DEVNULL)


def legacy_cycles(data: Path, Slapd, timeout: float = 3600) -> dict:
    """Two cycles of /usr/sbin/bdii-update (daemon mode) into an empty harness slapd."""
    if not os.path.exists("/usr/sbin/bdii-update"):
        return {"error": "/usr/sbin/bdii-update not installed (apt-get install bdii)"}
    tmp = Path(tempfile.mkdtemp(prefix="bdii-legacy-"))
    slapd = Slapd(None).start()
    pid = None
    try:
        start_legacy(tmp, slapd, lambda path: path.symlink_to(data))
        log = tmp / "bdii-update.log"
        deadline = time.time() + timeout
        hwm = 0
        while time.time() < deadline:
            if pid is None and (tmp / "run/bdii-update.pid").exists():
                txt = (tmp / "run/bdii-update.pid").read_text().strip()
                pid = int(txt) if txt else None
            if pid is not None:
                hwm = max(hwm, status_kb(pid, "VmHWM"))
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count("Sleeping for") >= 2:
                break
            if pid is not None and not os.path.exists(f"/proc/{pid}"):
                return {"error": "bdii-update died: " + text[-1500:]}
            time.sleep(0.5)
        else:
            return {"error": f"bdii-update did not finish two cycles in {timeout:.0f}s"}

        def ts(line: str) -> float:
            t = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
            return time.mktime(t) + int(line[20:23]) / 1000

        starts = [ts(ln) for ln in text.splitlines() if "Starting Update" in ln and "Process" not in ln]
        ends = [ts(ln) for ln in text.splitlines() if "Sleeping for" in ln]
        stats = [ln.split("] ", 1)[1] for ln in text.splitlines()
                 if re.search(r"\] (UpdateTime|DBUpdateTime|TotalEntries|NewEntries|ModifiedEntries|Failed\w+):", ln)]
        return {"first_cycle_s": ends[0] - starts[0], "second_cycle_s": ends[1] - starts[1],
                "bdii_update_hwm_mb": hwm / 1024, "slapd_hwm_mb": status_kb(slapd.proc.pid, "VmHWM") / 1024,
                "stats": stats, "errors": [ln for ln in text.splitlines() if "ERROR" in ln][:5]}
    finally:
        if pid is not None and os.path.exists(f"/proc/{pid}"):
            try:
                os.killpg(os.getpgid(pid), signal.SIGTERM) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        slapd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- main --------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=1.5, help="seconds per point (default 1.5)")
    ap.add_argument("--quick", action="store_true", help="20 sites, 1 s points")
    ap.add_argument("--cold-n", type=int, default=3000, help="distinct cold requests per query (default 3000)")
    ap.add_argument("--no-legacy", action="store_true", help="skip the legacy bdii-update cycles")
    ap.add_argument("--only", default="", help="comma-separated subset of queries (e.g. Q11,Q19)")
    ap.add_argument("--before", default="BDII_WORKERS=0",
                    help="bdii.conf line(s), ';'-separated, of a second server of ours run on the mix and the "
                         "dumps in the same run, as the 'before' of an optimisation (default: BDII_WORKERS=0, "
                         "one process; '' to skip)")
    args = ap.parse_args()
    sites = 20 if args.quick else args.sites
    seconds = 1.0 if args.quick else args.seconds
    t_start = time.time()

    import slapd_harness
    why = slapd_harness.available()
    if why:
        print(f"compare: cannot start OpenLDAP slapd: {why}", file=sys.stderr)
        return 2

    data = bench.dataset(sites)
    print(f"# machine: {os.cpu_count()} CPUs; data {data.name}: {bench.count_entries(data)} entries, "
          f"{data.stat().st_size / 1e6:.0f} MB")
    t0 = time.time()
    P = extract_parameters(data)
    print(f"# parameters ({time.time() - t0:.1f}s): " + ", ".join(f"{len(v)} {k}" for k, v in P.items()))
    names = [q for q in args.only.split(",") if q] or QUERIES
    for q in list(names):
        try:
            make_query(q, P, random.Random(0))
        except IndexError:
            print(f"# skipping {q}: no parameters for it in the data")
            names.remove(q)
    t0 = time.time()
    reqs = request_sets(P, names + DUMPS, args.cold_n, max(50, args.cold_n // 20))
    print(f"# encoded {sum(len(v['cold']) + len(v['warm']) for v in reqs.values())} requests up front "
          f"in {time.time() - t0:.1f}s (cold: distinct per query, see 'distinct' below)")

    t0 = time.time()
    try:
        slapd = slapd_harness.Slapd(str(data)).start()
    except (slapd_harness.SlapdError, OSError) as e:
        print(f"compare: cannot start OpenLDAP slapd: {e}", file=sys.stderr)
        return 2
    print(f"# slapd: slapadd + start {time.time() - t0:.1f}s ({slapd.entry_counts})")
    t0 = time.time()
    proc, port, tmp = bench.start_server(data)
    peak = PeakPss(proc.pid)
    print(f"# bdii serve: first cycle done {time.time() - t0:.1f}s after start; {len(tree(proc.pid))} processes")
    before = None
    if args.before:
        t0 = time.time()
        before = bench.start_server(data, "".join(x.strip() + "\n" for x in args.before.split(";")))
        print(f"# 'before' server ({args.before}): first cycle done {time.time() - t0:.1f}s after start")
    results: dict = {"sites": sites, "seconds": seconds, "cpus": os.cpu_count(), "before": args.before}
    try:
        servers = {"ours": (port, proc.pid), "slapd": (slapd.port, slapd.proc.pid)}
        if before is not None:
            servers["before"] = (before[1], before[0].pid)
        # same answers? (entry count and result code of the first warm request of each query)
        print("\n## answers (entries, resultCode) of one request per query: ours vs slapd")
        mism = []
        for q in names + DUMPS:
            a, b = probe(port, reqs[q]["warm"][0]), probe(slapd.port, reqs[q]["warm"][0])
            c, d = probe(port, reqs[q]["cold"][0]), probe(slapd.port, reqs[q]["cold"][0])
            flag = "" if (a, c) == (b, d) else "  <-- DIFFERENT"
            if flag and q == "Q17":
                flag = "  (expected: o=infosys holds our own status entries; the slapd was only slapadd-ed)"
            elif flag:
                mism.append(q)
            print(f"{q:<12} warm {a} vs {b}; cold {c} vs {d}; distinct cold requests {len(reqs[q]['cold'])}{flag}")
        results["mismatches"] = mism

        run = Runner(servers, seconds)
        print("\n## per query (q/s, latency, MB/s; cli/srv = client/server CPU in % of one core)")
        print(HEADER)
        for q in names:
            for conns in CONNS:
                for mode in ("cold", "warm"):
                    ops = Rotating(reqs[q]["cold"]) if mode == "cold" else reqs[q]["warm"]
                    run.point(q, mode, conns, ops)
        print("\n## the mix (weights: " + ", ".join(f"{q}:{WEIGHTS[q]}" for q in names) + ")")
        print(HEADER)
        mrng = random.Random(5)
        cold_mix = [op for q in names for op in reqs[q]["cold"][:WEIGHTS[q] * 40]]
        mrng.shuffle(cold_mix)
        warm_mix = [op for q in names for op in reqs[q]["warm"] * WEIGHTS[q]]
        mix_secs = max(seconds, 4.0)  # a few dump-sized answers weigh a lot: longer points, steadier ratios
        for conns in CONNS:
            run.point("MIX", "cold", conns, Rotating(cold_mix), mix_secs, extra=True)
            run.point("MIX", "warm", conns, warm_mix, mix_secs, extra=True)
        print("\n## full dumps (objectClass=*, all attributes)")
        print(HEADER)
        for q in DUMPS:
            for conns in (1, 4):
                run.point(q, "cold", conns, Rotating(reqs[q]["cold"]), max(seconds, 3.0), extra=True)
                run.point(q, "warm", conns, reqs[q]["warm"], max(seconds, 3.0), extra=True)
        results["rows"] = run.rows
        print("\n## full dumps with a minimal client (frame headers only): MB/s, best of 3 single dumps; "
              "4 simultaneous dumps")
        light = {}
        for q in DUMPS:
            op = reqs[q]["warm"][0]
            for name, (sport, _pid) in servers.items():
                best = min(dump_once(sport, op) for _ in range(3))
                wall4, bytes4 = parallel_dumps(sport, op, 4)
                light[(q, name)] = (best[1] / best[0] / 1e6, bytes4 / wall4 / 1e6)
                print(f"  {q} {name:<7} 1 dump {best[0]:.2f} s {light[(q, name)][0]:6.0f} MB/s ({best[2]} entries); "
                      f"4 at once {wall4:.2f} s {light[(q, name)][1]:6.0f} MB/s", flush=True)
        results["light_dumps"] = {f"{k[0]} {k[1]}": v for k, v in light.items()}
        # cross-check with a compiled client: OpenLDAP's ldapsearch (C), output to /dev/null
        print("\n## full dumps with ldapsearch (C client, -LLL > /dev/null), best of 2: wall s (ldapsearch CPU s)")
        ls_dumps = {}
        for q in DUMPS:
            line = []
            for name, (sport, _pid) in servers.items():
                best = None
                for _ in range(2):
                    r0 = os.times()
                    t0 = time.perf_counter()
                    subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", f"ldap://127.0.0.1:{sport}",
                                    "-b", q.split()[1], "(objectClass=*)"], stdout=subprocess.DEVNULL, check=True)
                    wall = time.perf_counter() - t0
                    r1 = os.times()
                    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
                    if best is None or wall < best[0]:
                        best = (wall, cpu)
                ls_dumps[(q, name)] = best
                line.append(f"{name} {best[0]:.2f} s ({best[1]:.2f} s CPU)")
            print(f"  {q}: " + ", ".join(line) + f"; ratio {ls_dumps[(q, 'slapd')][0] / ls_dumps[(q, 'ours')][0]:.2f}")
        results["ldapsearch_dumps"] = {f"{k[0]} {k[1]}": v for k, v in ls_dumps.items()}

        rss_ours = sum(status_kb(p, "VmHWM") for p in tree(proc.pid)) / 1024
        rss_slapd = status_kb(slapd.proc.pid, "VmHWM") / 1024
        slapd_anon = status_kb(slapd.proc.pid, "RssAnon") / 1024
        slapd_file = status_kb(slapd.proc.pid, "RssFile") / 1024

        # p99 of indexed lookups (Q19, Q11 cold at 4 connections) idle and during a refresh
        probe_ops = Rotating([op for q in ("Q19", "Q11") if q in reqs for op in reqs[q]["cold"]])
        during: dict = {}
        for name, (sport, spid, stmp) in [("ours", (port, proc.pid, tmp))] + (
                [("before", (before[1], before[0].pid, before[2]))] if before is not None else []):
            idle = bench.run_load(sport, probe_ops, 4, 6.0)
            os.kill(spid, signal.SIGHUP)  # a refresh cycle now (same data: every entry re-read and rebuilt)
            busy = bench.run_load(sport, probe_ops, 4, 6.0)
            during[name] = {"idle": idle, "refresh": busy}
            print(f"## p99 during a refresh ({name}): idle {idle['p99_ms']:.2f} ms ({idle['qps']:.0f} q/s), during "
                  f"the refresh {busy['p99_ms']:.2f} ms ({busy['qps']:.0f} q/s): x{busy['p99_ms'] / idle['p99_ms']:.2f}",
                  flush=True)
        results["refresh_p99"] = during
        # our refresh: the second cycle (SIGHUP above), read from its log
        log = tmp / "serve.log"
        deadline = time.time() + 900
        while time.time() < deadline and "cycle 2:" not in log.read_text(errors="replace"):
            time.sleep(0.2)
        # and a third, idle: cycle 2 ran under query load (its threads yield the CPU to queries)
        time.sleep(2)
        os.kill(proc.pid, signal.SIGHUP)
        while time.time() < deadline and "cycle 3:" not in log.read_text(errors="replace"):
            time.sleep(0.2)
        cyc = re.findall(r"cycle (\d+): (.*?) in ([\d.]+)s \(build ([\d.]+)s\)", log.read_text(errors="replace"))
        rss_ours_after = sum(status_kb(p, "VmHWM") for p in tree(proc.pid)) / 1024
        pss_ours = peak.stop()
    finally:
        peak.stop()
        for p, _port, t in [(proc, port, tmp)] + ([before] if before is not None else []):
            p.terminate()
            p.wait()
            shutil.rmtree(t, ignore_errors=True)
        slapd.stop()

    build = bench.bench_build(data)
    legacy = None
    if not args.no_legacy:
        print("\n# legacy bdii-update: two cycles into an empty slapd ...", flush=True)
        try:
            legacy = legacy_cycles(data, slapd_harness.Slapd)
        except Exception as e:  # noqa: BLE001 - report, do not hide the rest
            legacy = {"error": f"{type(e).__name__}: {e}"}
    results.update({"rss": {"ours_mb": rss_ours, "ours_after_refresh_mb": rss_ours_after, "ours_peak_pss_mb": pss_ours,
                            "slapd_mb": rss_slapd,
                            "slapd_anon_mb": slapd_anon, "slapd_file_mb": slapd_file},
                    "our_cycles": cyc, "build": build, "legacy": legacy})

    # --- summary ------------------------------------------------------------------
    print("\n## summary: ratios ours/slapd (q/s; geometric mean over the group)")
    by = {(r["query"], r["mode"], r["conns"]): r for r in run.rows}
    for conns in CONNS:
        line = [f"{conns:>2} conns"]
        for g, qs in GROUPS.items():
            qs = [q for q in qs if q in names]
            if qs:
                line.append(f"{g.split(' (')[0]} " + "/".join(
                    f"{gmean([by[(q, m, conns)]['ratio'] for q in qs]):.2f}" for m in ("cold", "warm")))
        line.append("MIX " + "/".join(f"{by[('MIX', m, conns)]['ratio']:.2f}" for m in ("cold", "warm")))
        print("  " + "; ".join(line) + "   (cold/warm)")
    for q in DUMPS:
        r = by[(q, "warm", 1)]
        rc = by[(q, "cold", 1)]
        mb = lambda x: x["bytes_per_req"] / 1e6 / (x["p50_ms"] / 1000)  # noqa: E731
        print(f"  {q}: 1 conn {r['ours']['bytes_per_req'] / 1e6:.0f} MB per dump; ours {mb(rc['ours']):.0f}/"
              f"{mb(r['ours']):.0f} MB/s, slapd {mb(rc['slapd']):.0f}/{mb(r['slapd']):.0f} MB/s (cold/warm); "
              f"ratio {mb(rc['ours']) / mb(rc['slapd']):.2f}/{mb(r['ours']) / mb(r['slapd']):.2f}")
    print("  p99 ms at 16 conns, ours vs slapd (cold | warm):")
    for q in ("Q11", "Q12", "Q13", "Q14", "Q15", "Q16", "Q19"):
        if q in names:
            c, w = by[(q, "cold", 16)], by[(q, "warm", 16)]
            print(f"    {q}: {c['ours']['p99_ms']:.2f} vs {c['slapd']['p99_ms']:.2f} (x{c['ours']['p99_ms'] / c['slapd']['p99_ms']:.2f})"
                  f" | {w['ours']['p99_ms']:.2f} vs {w['slapd']['p99_ms']:.2f} (x{w['ours']['p99_ms'] / w['slapd']['p99_ms']:.2f})")
    print("  per query at 16 conns, q/s ratio cold/warm: " + ", ".join(
        f"{q} {by[(q, 'cold', 16)]['ratio']:.2f}/{by[(q, 'warm', 16)]['ratio']:.2f}" for q in names))
    cli = [r[s]["client_cpu"] for r in run.rows for s in ("ours", "slapd")]
    small = [r[s]["client_cpu"] * r["secs"] / r[s]["n"] * 1e6 for r in run.rows for s in ("ours", "slapd")
             if r[s]["n"] > 100 and r[s]["bytes_per_req"] < 10_000]
    big = [r[s]["client_cpu"] * r["secs"] / (r[s]["MBps"] * r["secs"]) * 1e3 for r in run.rows
           for s in ("ours", "slapd") if r[s]["bytes_per_req"] > 1e6 and r[s]["MBps"]]
    busy = [r[s]["client_cpu"] + r[s]["server_cpu"] for r in run.rows for s in ("ours", "slapd")]
    print(f"  load generator: up to {min(os.cpu_count() or 1, 16)} client processes; client CPU per point max "
          f"{max(cli):.0%} of one core; client CPU per small answer (<10 kB) {sorted(small)[len(small) // 2] if small else float('nan'):.0f} us"
          f" (median), per MB of big answers {sorted(big)[len(big) // 2] if big else float('nan'):.1f} ms; "
          f"client+server CPU max {max(busy):.0%} of {os.cpu_count()} cores")
    if mism:
        print(f"  WARNING: answers differ on {', '.join(mism)} (see the answers section): their ratios compare "
              f"different work")
    print(f"\n## memory: ours peak PSS (all processes, shared pages counted once, sampled every 0.5 s) "
          f"{pss_ours:.0f} MB; sum of the processes' peak RSS (VmHWM, shared pages counted per process) "
          f"{rss_ours:.0f} MB after the query runs, {rss_ours_after:.0f} MB after a refresh cycle; "
          f"slapd {rss_slapd:.0f} MB (now {slapd_anon:.0f} MB anon + {slapd_file:.0f} MB mdb file pages)")
    for q in DUMPS:
        if (q, "ours") in light:
            print(f"  {q} minimal client: ours/slapd 1 dump {light[(q, 'ours')][0] / light[(q, 'slapd')][0]:.2f}, "
                  f"4 at once {light[(q, 'ours')][1] / light[(q, 'slapd')][1]:.2f}")
    if "before" in servers:
        print("  MIX ratio ours/slapd (before -> now): " + ", ".join(
            f"{m}@{c} {by[('MIX', m, c)]['ratio before']:.2f} -> {by[('MIX', m, c)]['ratio']:.2f}"
            for c in CONNS for m in ("cold", "warm")))
    print("\n## refresh")
    notes = {"1": "first load", "2": "refresh under the p99 query load", "3": "refresh, idle"}
    for n, what, secs, b in cyc:
        print(f"  ours cycle {n} ({notes.get(n, '')}): {what} in {float(secs):.2f}s (build {float(b):.2f}s)")
    print(f"  ours snapshot build in a fresh process (bench.bench_build): {build['seconds']:.2f}s, "
          f"{build['entries']} entries, peak RSS {build['peak_rss_mb']:.0f} MB")
    if legacy is None:
        print("  legacy bdii-update: skipped (--no-legacy)")
    elif "error" in legacy:
        print(f"  legacy bdii-update: NOT measured: {legacy['error']}")
    else:
        ours2 = float(cyc[-1][2]) if cyc else float("nan")
        ours1 = float(cyc[0][2]) if cyc else float("nan")
        print(f"  legacy bdii-update: first cycle (load into empty slapd) {legacy['first_cycle_s']:.1f}s, second cycle "
              f"(same data) {legacy['second_cycle_s']:.1f}s; peak RSS bdii-update {legacy['bdii_update_hwm_mb']:.0f} MB"
              f", its slapd {legacy['slapd_hwm_mb']:.0f} MB")
        b1 = float(cyc[0][3]) if cyc else float("nan")
        b2 = float(cyc[-1][3]) if cyc else float("nan")
        print(f"    ratio legacy/ours, whole cycles (ours: read + build + encode for the workers + swap): first load "
              f"{legacy['first_cycle_s'] / ours1:.1f}x, refresh {legacy['second_cycle_s'] / ours2:.1f}x; "
              f"against our build alone (merge into a new snapshot): first load {legacy['first_cycle_s'] / b1:.1f}x, "
              f"refresh {legacy['second_cycle_s'] / b2:.1f}x (ours from the serve log)")
        print("    bdii-update stats: " + "; ".join(legacy["stats"][-8:]))
        if legacy["errors"]:
            print("    bdii-update errors: " + " | ".join(legacy["errors"]))
    OUT.mkdir(exist_ok=True)
    out = OUT / f"compare-{sites}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\n# total {time.time() - t_start:.0f}s; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
