#!/usr/bin/env python3
"""Baseline benchmark of the resource-level BDII: prints figures, asserts nothing.

    python bench/bench.py [--sites 300] [--quick]

1. Snapshot build: the whole refresh pipeline (parse LDIF, merge, index)
   on ~10k and ~100k+ entries, each in a fresh process: seconds and peak RSS.
2. Reactor blocking: one refresh cycle of the big data set inside a running
   reactor, with a 5 ms ticker measuring the longest gap between ticks.
3. Queries: `bdii serve` in its own process on the big data set; a load
   generator of our own (asyncio, raw BER, several client processes so the
   client is not the bottleneck) runs typical client queries at 1 and 16
   concurrent connections: searches/s, p50/p99 latency; then full dumps of
   o=grid and o=glue: MB/s.
Data comes from bench/gridgen.py, generated on demand into bench/data/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE / "data"


# --- data ---------------------------------------------------------------------
def dataset(sites: int) -> Path:
    import gridgen

    DATA.mkdir(exist_ok=True)
    path = DATA / f"grid-{sites}.ldif"
    if not path.exists():
        t0 = time.time()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for chunk in gridgen.to_ldif(gridgen.generate_records(sites, 1)):
                fh.write(chunk)
        tmp.rename(path)
        print(f"# generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.time() - t0:.1f}s")
    return path


def count_entries(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.startswith(b"dn:"))


# --- 1. snapshot build in a fresh process ----------------------------------
def _build_child(path: str, q: mp.Queue) -> None:
    from dataclasses import replace

    from bdii.core.config import Config
    from bdii.core.pipeline import SourceResult, State
    from bdii.service.updater import build_quietly as build  # as the daemon runs it

    data = Path(path).read_bytes()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = build([SourceResult("ldif/grid.ldif", "ldif", data, 0.0, 0.0)], State(),
                replace(Config(), hostname="bench"), time.time())
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q.put({"entries": len(res.snapshot), "seconds": secs, "peak_rss_mb": rss / 1024,
           "build_rss_mb": (rss - base) / 1024, "problems": len(res.problems)})


def bench_build(path: Path) -> dict:
    q: mp.Queue = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_build_child, args=(str(path), q))
    p.start()
    out = q.get()
    p.join()
    return out


# --- 2. reactor blocking during a cycle -------------------------------------
def bench_blocking(path: Path) -> dict:
    code = f"""
import json, time
from dataclasses import replace
from pathlib import Path
from twisted.internet import reactor, task, defer
from bdii.core.config import Config
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.updater import Updater
tmp = Path({str(tempfile.mkdtemp(prefix='bdii-bench-'))!r})
for d in ('ldif', 'provider', 'plugin', 'var'):
    (tmp / d).mkdir(exist_ok=True)
(tmp / 'ldif' / 'grid.ldif').symlink_to({str(path)!r})
cfg = replace(Config(), ldif_dir=tmp/'ldif', provider_dir=tmp/'provider', plugin_dir=tmp/'plugin',
              var_dir=tmp/'var', hostname='bench')
gaps = []
last = [time.perf_counter()]
def tick():
    now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
loop = task.LoopingCall(tick); loop.start(0.005)
@defer.inlineCallbacks
def main():
    up = Updater(cfg, reactor, SnapshotHolder())
    yield up.cycle()          # first load
    gaps.clear(); last[0] = time.perf_counter()
    t0 = time.perf_counter()
    yield up.cycle()          # a refresh with a previous snapshot to diff against
    secs = time.perf_counter() - t0
    g = sorted(gaps)
    print(json.dumps({{"cycle_s": secs, "max_gap_ms": g[-1]*1000, "p99_gap_ms": g[int(len(g)*0.99)]*1000,
                      "ticks": len(g)}}))
    reactor.stop()
reactor.callWhenRunning(main)
reactor.run()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- 3. queries against `bdii serve` ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, extra: str = "") -> tuple[subprocess.Popen, int, Path]:
    """`bdii serve` on an LDIF file (or every file of a directory), first cycle done;
    `extra`: more bdii.conf lines (e.g. "BDII_WORKERS=0\n")."""
    tmp = Path(tempfile.mkdtemp(prefix="bdii-bench-"))
    for d in ("ldif", "provider", "plugin", "var"):
        (tmp / d).mkdir()
    for f in (sorted(path.iterdir()) if path.is_dir() else [path]):
        (tmp / "ldif" / (f.name if path.is_dir() else "grid.ldif")).symlink_to(f)
    port = free_port()
    (tmp / "bdii.conf").write_text(
        f"BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\nBDII_VAR_DIR=var\n"
        f"BDII_PORT={port}\nBDII_BIND_ADDRESS=127.0.0.1\nBDII_BREATHE_TIME=100000\nBDII_LOG_LEVEL=INFO\n" + extra)
    proc = subprocess.Popen([sys.executable, "-m", "bdii.cli", "serve", "-c", str(tmp / "bdii.conf")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "w"))
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if "cycle 1:" in (tmp / "serve.log").read_text():
            return proc, port, tmp
        time.sleep(0.2)
    raise RuntimeError("server did not finish its first cycle: " + (tmp / "serve.log").read_text()[-2000:])


def encode_search(base: str, flt: str, attrs: list[str], scope: int = 2) -> bytes:
    """The protocolOp of a SearchRequest, encoded once with ldaptor."""
    from ldaptor import ldapfilter
    from ldaptor.protocols import pureldap

    req = pureldap.LDAPSearchRequest(baseObject=base, scope=scope, filter=ldapfilter.parseFilter(flt),
                                     attributes=attrs)
    return req.toWire()


def _frame(buf: bytearray, pos: int) -> int | None:
    """End offset of the BER TLV at `pos`, or None if incomplete."""
    if len(buf) < pos + 2:
        return None
    first = buf[pos + 1]
    if first < 0x80:
        end = pos + 2 + first
    else:
        n = first & 0x7F
        if len(buf) < pos + 2 + n:
            return None
        end = pos + 2 + n + int.from_bytes(buf[pos + 2:pos + 2 + n], "big")
    return end if end <= len(buf) else None


async def _client(port: int, ops: list[bytes], seconds: float, lat: list[float], nbytes: list[int]) -> None:
    from bdii.core.ber import message

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buf = bytearray()
    msgid = 0
    stop = time.perf_counter() + seconds
    rng = random.Random(os.getpid() + id(lat))
    while time.perf_counter() < stop:
        msgid += 1
        t0 = time.perf_counter()
        writer.write(message(msgid, rng.choice(ops)))
        done = False
        total = 0
        while not done:
            data = await reader.read(262144)
            if not data:
                raise RuntimeError("server closed the connection")
            buf += data
            total += len(data)
            pos = 0
            while True:
                end = _frame(buf, pos)
                if end is None:
                    break
                # protocolOp tag follows the message ID: 0x65 = SearchResultDone
                idlen = buf[pos + 3] if buf[pos + 1] < 0x80 else buf[pos + 3 + (buf[pos + 1] & 0x7F)]
                tag_at = pos + 2 + (0 if buf[pos + 1] < 0x80 else buf[pos + 1] & 0x7F) + 2 + idlen
                if buf[tag_at] == 0x65:
                    done = True
                pos = end
            del buf[:pos]
        lat.append(time.perf_counter() - t0)
        nbytes.append(total)
    writer.close()


def _load_proc(port: int, ops: list[bytes], conns: int, seconds: float, q: mp.Queue) -> None:
    lat: list[float] = []
    nbytes: list[int] = []

    async def run() -> None:
        await asyncio.gather(*[_client(port, ops, seconds, lat, nbytes) for _ in range(conns)])

    t0 = time.process_time()
    asyncio.run(run())
    q.put({"lat": lat, "bytes": sum(nbytes), "cpu": time.process_time() - t0})


def in_processes(ctx, target, argsets: list[tuple]) -> tuple[list, float]:  # noqa: ANN001
    """`target(*args, queue)` in one process per args: what each put on the
    queue, and the wall time from the first start to the last result."""
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, q)) for a in argsets]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return results, time.perf_counter() - t0


def run_load(port: int, ops: list[bytes], conns: int, seconds: float) -> dict:
    procs_n = min(conns, max(1, (os.cpu_count() or 2)))
    per = [conns // procs_n + (1 if i < conns % procs_n else 0) for i in range(procs_n)]
    results, wall = in_processes(mp.get_context("spawn"), _load_proc, [(port, ops, n, seconds) for n in per])
    wall -= 0.3  # process start-up, roughly
    lat = sorted(x for r in results for x in r["lat"])
    return {
        "qps": len(lat) / seconds,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan"),
        "MBps": sum(r["bytes"] for r in results) / seconds / 1e6,
        "client_cpu": sum(r["cpu"] for r in results) / max(wall, seconds),
    }


def parameters(path: Path) -> dict[str, list[str]]:
    ces, hosts, sites, ses = [], set(), [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("dn: GlueCEUniqueID="):
                ces.append(line[4:].strip())
            elif line.startswith("GlueSEUniqueID: "):
                ses.append(line.split(": ", 1)[1].strip())
            elif line.startswith("dn: GLUE2DomainID=") and line.count(",") == 2:
                sites.append(line[4:].split(",")[0].split("=", 1)[1])
            elif line.startswith("GLUE2EndpointURL: "):
                m = re.match(r"\w+://([^:/]+)", line.split(": ", 1)[1])
                if m:
                    hosts.add(m.group(1))
    return {"ce": ces, "host": sorted(hosts), "site": sites, "se": ses}


def typical_queries(params: dict[str, list[str]], n: int = 200) -> dict[str, list[bytes]]:
    rng = random.Random(7)
    vos = ["atlas", "cms", "lhcb", "alice", "ops", "dteam", "biomed"]
    return {
        "Q4 GlueSite": [encode_search("o=grid", "(objectClass=GlueSite)", [])],
        "Q6 ginfo FTS": [encode_search("o=glue", "(&(objectClass=GLUE2Endpoint)"
                                       "(GLUE2EndpointInterfaceName=org.glite.FileTransfer))", [])],
        "Q11 VOView/CE": [encode_search(rng.choice(params["ce"]),
                                        f"(&(objectClass=GlueVOView)(|(GlueCEAccessControlBaseRule=VOMS:/{vo}/*)"
                                        f"(GlueCEAccessControlBaseRule=VOMS:/{vo})(GlueCEAccessControlBaseRule=VO:{vo})))", [])
                          for vo in (rng.choice(vos) for _ in range(n))],
        "Q13 gfal2": [encode_search("o=grid", f"(|(GlueSEUniqueID=*{h}*)(&(GlueServiceType=srm*)"
                                    f"(GlueServiceEndpoint=*://{h}*)))",
                                    ["GlueServiceVersion", "GlueServiceEndpoint", "GlueServiceType"])
                      for h in (rng.choice(params["se"]) for _ in range(n))],
        "Q15 FTS3 svc": [encode_search("o=glue", f"(&(objectClass=GLUE2Service)(GLUE2ServiceID=*{h}*))",
                                       ["GLUE2ServiceAdminDomainForeignKey"])
                         for h in (rng.choice(params["host"]) for _ in range(n))],
        "Q19 ARGO domain": [encode_search(f"GLUE2DomainID={s},GLUE2GroupID=grid,o=glue",
                                          f"(&(objectClass=GLUE2Domain)(GLUE2DomainID={s}))", [])
                            for s in (rng.choice(params["site"]) for _ in range(n))],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300, help="sites in the big data set (default 300)")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per load point")
    ap.add_argument("--quick", action="store_true", help="small data set and short runs (smoke test)")
    args = ap.parse_args()
    big_sites = 20 if args.quick else args.sites
    seconds = 1.0 if args.quick else args.seconds
    small, big = dataset(max(2, big_sites // 12)), dataset(big_sites)
    print(f"# machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"# data: {small.name} {count_entries(small)} entries; {big.name} {count_entries(big)} entries, "
          f"{big.stat().st_size / 1e6:.0f} MB")

    print("\n## snapshot build (parse + merge + index), fresh process each")
    for path in (small, big):
        r = bench_build(path)
        print(f"{r['entries']:>8} entries: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(+{r['build_rss_mb']:.0f} MB for the build)")

    print("\n## reactor blocking during a refresh cycle of the big data set (5 ms ticker)")
    r = bench_blocking(big)
    print(f"cycle {r['cycle_s']:.2f} s; longest reactor stall {r['max_gap_ms']:.0f} ms, "
          f"p99 tick gap {r['p99_gap_ms']:.1f} ms over {r['ticks']} ticks")

    print("\n## queries against `bdii serve` (separate process) on the big data set")
    proc, port, tmp = start_server(big)
    try:
        params = parameters(big)
        queries = typical_queries(params)
        print(f"{'query':<18}{'conns':>6}{'q/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'MB/s':>9}{'client CPU':>12}")
        for name, ops in queries.items():
            for conns in (1, 16):
                r = run_load(port, ops, conns, seconds)
                print(f"{name:<18}{conns:>6}{r['qps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
                      f"{r['MBps']:>9.1f}{r['client_cpu']:>11.0%}")
        print("\n## full dumps (all attributes), 1 connection")
        for base in ("o=grid", "o=glue"):
            op = [encode_search(base, "(objectClass=*)", [])]
            for label in ("first (cold encode cache)", "repeat (warm)"):
                r = run_load(port, op, 1, 0.01)
                print(f"{base:<8} {label:<26} {r['p50_ms'] / 1000:.2f} s, {r['MBps'] * 0.01 / (r['p50_ms'] / 1000) :.1f} MB/s")
        rss = int(open(f"/proc/{proc.pid}/status").read().split("VmHWM:")[1].split()[0]) / 1024
        print(f"\nserver peak RSS: {rss:.0f} MB")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
