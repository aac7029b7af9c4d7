#!/usr/bin/env python3
"""Memory of `bdii serve` at top-level size: PSS of all its processes, idle and after dumps.

    python bench/memory.py [--sites 300] [--conf "BDII_WORKERS=0"]

Starts the server on the generated data set (bench/gridgen.py) with the
given bdii.conf lines (';'-separated), then prints, for every process, RSS,
PSS and private/shared dirty pages from /proc/PID/smaps_rollup: idle after
the first cycle, after four full dumps of o=grid and after four of o=glue.
PSS counts pages shared between the main process and its workers once, as
copy-on-write keeps them; RSS would count them once per process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402

import bench  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--conf", default="", help="bdii.conf lines, ';'-separated (e.g. BDII_WORKERS=0)")
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
    finally:
        proc.terminate()
        proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
