#!/usr/bin/env python3
"""Top-level refresh benchmark (issue 3, item 6): prints figures, asserts nothing.

    python bench/aggregate.py [--sites 300] [--hanging 0.1] [--timeout 30]

Every site is served by a real LDAP server: one `bdii serve` process holding
all site subtrees in site-BDII form (mds-vo-name=SITE,o=grid and
GLUE2DomainID=SITE,o=glue), fetched as separate sources, one per site; a
share of the sources point at a socket that accepts and never answers, so
they run into BDII_SOURCE_TIMEOUT. The top level runs in this process (a
real reactor) and the figures are: time of a whole cycle (fetch to swap)
for the first and a second cycle, the longest reactor stall during the
cycle (5 ms ticker), peak RSS of the aggregator and of the site server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import start_server  # noqa: E402


def site_data(sites: int) -> Path:
    out = HERE / "data" / f"sites-{sites}"
    if not (out / "top.ldif").exists():
        subprocess.run([sys.executable, str(HERE / "gridgen.py"), "--sites", str(sites), "--form", "site",
                        "--split", str(out)], check=True)
    return out


TOP = r"""
import json, sys, time, resource
from dataclasses import replace
from pathlib import Path
from twisted.internet import reactor, task, defer
from bdii.core.config import Config
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.store import StateStore
from bdii.service.updater import Updater
tmp = Path(sys.argv[1]); timeout = float(sys.argv[2])
for d in ('ldif', 'provider', 'plugin', 'var'):
    (tmp / d).mkdir(exist_ok=True)
cfg = replace(Config(), ldif_dir=tmp/'ldif', provider_dir=tmp/'provider', plugin_dir=tmp/'plugin',
              var_dir=tmp/'var', hostname='top.bench', mode='top', urls_file=tmp/'urls',
              source_timeout=timeout, source_max_mb=100)
gaps = []; last = [time.perf_counter()]
def tick():
    now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
task.LoopingCall(tick).start(0.005)
out = {}
@defer.inlineCallbacks
def main():
    up = Updater(cfg, reactor, SnapshotHolder(), StateStore(cfg.var_dir))
    for label in ('first', 'second'):
        gaps.clear(); last[0] = time.perf_counter()
        t0 = time.perf_counter()
        r = yield up.cycle()
        out[label] = {'cycle_s': round(time.perf_counter() - t0, 2), 'entries': r.stats.total,
                      'failed_sources': r.stats.failed_sources,
                      'max_stall_ms': round(max(gaps) * 1000, 1)}
    out['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))
    reactor.stop()
reactor.callWhenRunning(main)
reactor.run()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--hanging", type=float, default=0.1, help="share of sources that never answer")
    ap.add_argument("--timeout", type=float, default=30.0, help="BDII_SOURCE_TIMEOUT")
    args = ap.parse_args()
    data = site_data(args.sites)
    names = sorted(f.stem for f in data.iterdir() if f.name != "top.ldif")
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1024)  # accepts (in the kernel) and never answers
    proc, port, tmp = start_server(data)
    top = Path(tempfile.mkdtemp(prefix="bdii-top-"))
    try:
        n_hang = int(len(names) * args.hanging)
        lines = []
        for i, name in enumerate(names):
            p = sink.getsockname()[1] if i < n_hang else port
            lines.append(f"{name} ldap://127.0.0.1:{p}/mds-vo-name={name},o=grid")
        (top / "urls").write_text("\n".join(lines) + "\n")
        print(f"# {len(names)} site sources ({n_hang} hanging), BDII_SOURCE_TIMEOUT={args.timeout:g}s, "
              f"{os.cpu_count()} CPUs")
        res = subprocess.run([sys.executable, "-c", TOP, str(top), str(args.timeout)],
                             capture_output=True, text=True, check=True)
        figures = json.loads(res.stdout.strip().splitlines()[-1])
        server_rss = int(open(f"/proc/{proc.pid}/status").read().split("VmHWM:")[1].split()[0]) / 1024
        for label in ("first", "second"):
            f = figures[label]
            print(f"{label} cycle: {f['cycle_s']} s for {f['entries']} entries, {f['failed_sources']} sources "
                  f"failed (the hanging ones); longest reactor stall {f['max_stall_ms']} ms")
        print(f"aggregator peak RSS {figures['peak_rss_mb']} MB; site server peak RSS {server_rss:.0f} MB")
    finally:
        proc.terminate()
        proc.wait()
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
