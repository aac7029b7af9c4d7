#!/usr/bin/env python3
"""Whole refresh cycles of the daemon, ours and the legacy bdii-update, on the same data.

    python bench/cycles.py [--sites 300] [--refreshes 5] [--changed 0.1] [--conf KEY=VALUE ...] [--no-legacy]

Ours: `bdii serve` (serving processes as configured: one per CPU by
default) on one LDIF file of `bench/gridgen.py` data. After the first load,
`--refreshes` cycles on the same bytes, then `--refreshes` cycles where
about `--changed` of the records change (dynamic values bumped, as
`bench/refresh.py` does; each cycle changes them against the last). Each
cycle is started with SIGHUP and timed from the daemon's log: the whole
cycle (read the file, build, encode for the serving processes, fork them,
retire the old ones) and the build alone. Also the main process's minor
page faults per cycle (pages it copies because serving processes share them).

Legacy: /usr/sbin/bdii-update (daemon mode, 1 s between cycles) into an
empty slapd of tests/slapd_harness.py: the first load, then the same bytes,
then the changed ones in the same sequence, timed from its log ("Starting
Update" to "Sleeping for"). Needs Debian's `bdii` and `slapd` packages.

Prints medians and the ratio legacy / ours; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from compare import start_legacy, status_kb
from refresh import mutate

import bench

CYCLE = re.compile(r"cycle (\d+): .* in ([\d.]+)s \(build ([\d.]+)s\)")


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a reader sees the old or the new bytes."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def plan(data: bytes, refreshes: int, share: float) -> list[tuple[str, bytes]]:
    """The inputs after the first load: the same bytes, then changed ones."""
    steps = [("same", data)] * refreshes
    current = data
    for n in range(refreshes):
        current = mutate(current, share, seed=100 + n)[0]
        steps.append(("changed", current))
    return steps


def faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def ours(data: bytes, steps: list[tuple[str, bytes]], conf: str) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="bdii-cycles-"))
    path = work / "grid.ldif"
    path.write_bytes(data)
    proc, _port, tmp = bench.start_server(path, conf)
    log = tmp / "serve.log"
    out = []
    try:
        out.append({"kind": "first", **_cycle(log, 1)})
        for n, (kind, blob) in enumerate(steps, start=2):
            replace_file(path, blob)
            time.sleep(1.0)  # let the last cycle's old snapshot be released
            before = faults(proc.pid)
            os.kill(proc.pid, signal.SIGHUP)
            deadline = time.time() + 300
            while time.time() < deadline and f"cycle {n}:" not in log.read_text():
                time.sleep(0.05)
            out.append({"kind": kind, **_cycle(log, n), "faults": faults(proc.pid) - before})
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _cycle(log: Path, n: int) -> dict:
    for m in CYCLE.finditer(log.read_text()):
        if int(m.group(1)) == n:
            return {"secs": float(m.group(2)), "build": float(m.group(3))}
    raise RuntimeError(f"no cycle {n} in the log: " + log.read_text()[-1500:])


def legacy(data: bytes, steps: list[tuple[str, bytes]], timeout: float = 3600) -> list[dict] | str:
    """The same sequence through /usr/sbin/bdii-update; a string says why not."""
    if not os.path.exists("/usr/sbin/bdii-update"):
        return "/usr/sbin/bdii-update not installed (apt-get install bdii)"
    import slapd_harness

    tmp = Path(tempfile.mkdtemp(prefix="bdii-legacy-"))
    slapd = slapd_harness.Slapd(None).start()
    pid = None
    try:
        start_legacy(tmp, slapd, lambda at: at.write_bytes(data))
        path = tmp / "ldif" / "grid.ldif"
        log = tmp / "bdii-update.log"
        deadline = time.time() + timeout
        done = 0  # cycles finished, as seen by "Sleeping for"
        while done <= len(steps):
            if time.time() > deadline:
                return f"bdii-update did not finish {len(steps) + 1} cycles in {timeout:.0f}s"
            if pid is None and (tmp / "run/bdii-update.pid").exists():
                txt = (tmp / "run/bdii-update.pid").read_text().strip()
                pid = int(txt) if txt else None
            if pid is not None and not os.path.exists(f"/proc/{pid}"):
                return "bdii-update died: " + log.read_text(errors="replace")[-1500:]
            text = log.read_text(errors="replace") if log.exists() else ""
            seen = text.count("Sleeping for")
            if seen > done:
                done = seen
                if done <= len(steps):
                    replace_file(path, steps[done - 1][1])  # read when its next cycle starts, 1 s later
            time.sleep(0.05)

        def ts(line: str) -> float:
            t = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
            return time.mktime(t) + int(line[20:23]) / 1000

        lines = log.read_text(errors="replace").splitlines()
        starts = [ts(ln) for ln in lines if "Starting Update" in ln and "Process" not in ln]
        ends = [ts(ln) for ln in lines if "Sleeping for" in ln]
        kinds = ["first"] + [k for k, _ in steps]
        hwm = status_kb(pid, "VmHWM") / 1024 if pid else 0.0
        return [{"kind": k, "secs": e - s, "hwm_mb": hwm} for k, s, e in zip(kinds, starts, ends)]
    finally:
        if pid is not None and os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        slapd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def median(rows: list[dict], kind: str, key: str) -> float:
    vals = [r[key] for r in rows if r["kind"] == kind]
    return statistics.median(vals) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--refreshes", type=int, default=5, help="cycles of each kind after the first load")
    ap.add_argument("--changed", type=float, default=0.1, help="share of the records changed per cycle")
    ap.add_argument("--conf", action="append", default=[], help="bdii.conf line for our server, e.g. BDII_WORKERS=0")
    ap.add_argument("--no-legacy", action="store_true")
    args = ap.parse_args()
    data = bench.dataset(args.sites).read_bytes()
    steps = plan(data, args.refreshes, args.changed)
    print(f"# {args.sites} sites, {len(data) / 1e6:.0f} MB LDIF; {args.refreshes} refreshes on the same bytes, "
          f"then {args.refreshes} with ~{args.changed:.0%} of the records changed each; {os.cpu_count()} CPUs",
          flush=True)
    rows = ours(data, steps, "".join(c + "\n" for c in args.conf))
    for r in rows:
        extra = f", {r['faults']} page faults" if "faults" in r else ""
        print(f"  ours  {r['kind']:8s} {r['secs']:6.2f} s (build {r['build']:.2f} s{extra})", flush=True)
    old: list[dict] | str | None = None
    if not args.no_legacy:
        print("# legacy bdii-update, the same sequence ...", flush=True)
        old = legacy(data, steps)
        if isinstance(old, str):
            print(f"  legacy NOT measured: {old}")
        else:
            for r in old:
                print(f"  legacy {r['kind']:8s} {r['secs']:6.2f} s", flush=True)
    print("\n| cycle | ours: whole (build) | legacy | legacy / ours |\n|---|---|---|---|")
    for kind in ("first", "same", "changed"):
        o, b = median(rows, kind, "secs"), median(rows, kind, "build")
        lg = median(old, kind, "secs") if isinstance(old, list) else float("nan")
        print(f"| {kind} | {o:.2f} s ({b:.2f} s) | {lg:.1f} s | {lg / o:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
