#!/usr/bin/env python3
"""Memory of `bdii serve` at top-level size: PSS of all its processes, idle and after dumps.

    python bench/memory.py [--sites 300] [--conf "BDII_WORKERS=0"] [--load SECONDS]

Starts the server on the generated data set (bench/gridgen.py) with the
given bdii.conf lines (';'-separated), then prints, for every process, RSS,
PSS and private/shared dirty pages from /proc/PID/smaps_rollup: idle after
the first cycle, after four full dumps of o=grid and after four of o=glue.
PSS counts pages shared between the main process and its workers once, as
copy-on-write keeps them; RSS would count them once per process.

With --load, then the peak PSS (sampled every 0.5 s) under the cold
query mix of bench/compare.py (every query's parameters drawn afresh, 16
connections) for SECONDS, across a refresh (SIGHUP) under the same load
(the situation where compare.py reports its peak), and for SECONDS more
on the new snapshot, to show what the new generation of workers keeps.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare

import bench


def show(tag: str, pid: int) -> None:
    pids = compare.tree(pid)
    parts = []
    for p in pids:
        d = {}
        with open(f"/proc/{p}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Private_Dirty", "Shared_Dirty"):
                    d[k] = int(v.split()[0]) // 1024
        parts.append(f"{p}: {d}")
    print(f"{tag}: PSS of all {len(pids)} processes {compare.pss_kb(pids) // 1024} MB | " + " ".join(parts), flush=True)


def load(pid: int, port: int, data: Path, seconds: float, log: Path) -> None:
    P = compare.extract_parameters(data)
    names = []
    for q in compare.QUERIES:
        try:
            compare.make_query(q, P, random.Random(0))
            names.append(q)
        except IndexError:
            pass
    reqs = compare.request_sets(P, names, 300, 50)
    ops = [op for q in names for op in reqs[q]["cold"]]
    random.Random(1).shuffle(ops)
    peak = compare.PeakPss(pid)
    r = bench.run_load(port, compare.Rotating(ops), 16, seconds)
    print(f"cold mix, 16 conns, {seconds:.0f} s: {r['qps']:.0f} q/s; peak PSS {peak.peak // 1024} MB", flush=True)
    cycles = log.read_text(errors="replace").count("cycle ")
    os.kill(pid, signal.SIGHUP)
    done = qps = 0.0
    deadline = time.time() + 600
    while time.time() < deadline and log.read_text(errors="replace").count("cycle ") == cycles:
        r = bench.run_load(port, compare.Rotating(ops), 16, 2.0)  # until the new snapshot serves
        done += 2.0
        qps += r["qps"] * 2.0
    found = re.findall(r"cycle \d+: .*", log.read_text(errors="replace"))
    print(f"the same during a refresh: {qps / max(done, 1):.0f} q/s; {found[-1] if found else 'no cycle line'}",
          flush=True)
    r = bench.run_load(port, compare.Rotating(ops), 16, seconds)
    print(f"the same on the new snapshot, {seconds:.0f} s: {r['qps']:.0f} q/s", flush=True)
    print(f"peak PSS of all processes through the load and the refresh: {peak.stop():.0f} MB", flush=True)
    show("after the load", pid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--conf", default="", help="bdii.conf lines, ';'-separated (e.g. BDII_WORKERS=0)")
    ap.add_argument("--load", type=float, default=0.0, help="seconds of cold mix before and during a refresh")
    args = ap.parse_args()
    data = bench.dataset(args.sites)
    proc, port, _tmp = bench.start_server(data, "".join(x.strip() + "\n" for x in args.conf.split(";") if x.strip()))
    try:
        time.sleep(2)  # the new generation of workers settles
        show("idle", proc.pid)
        for base in ("o=grid", "o=glue"):
            op = bench.encode_search(base, "(objectClass=*)", [])
            for _ in range(4):
                compare.dump_once(port, op)
            show(f"after 4 {base} dumps", proc.pid)
        if args.load:
            load(proc.pid, port, data, args.load, _tmp / "serve.log")
    finally:
        proc.terminate()
        proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
