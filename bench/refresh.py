#!/usr/bin/env python3
"""Refresh benchmark: first build, then refreshes on the same and on changed data.

    python bench/refresh.py [--sites 300] [--changed 0.1] [--form ldif|ldap] [--profile FILE]

Runs `build_quietly` (as the daemon's updater does) in this process, carrying
the `State` from one cycle to the next:

1. first build (empty previous state),
2. refresh with the same bytes,
3. refresh with ~`--changed` of the entries changed (dynamic attributes:
   running/waiting jobs, free space... bumped in place),
4. refresh with the original bytes again (those entries change back).

`--form ldif` (default): one static LDIF source, bench/data/grid-N.ldif.
`--form ldap`: the top-level case, one "ldap" source per site (BER search
results as a fetch stores them, made from bench/data/sites-N), mode=top.
Prints seconds (wall and this process's CPU: on a busy machine the CPU
time is the steadier figure) and RSS per step (the peak during the step, and what stays
after it: the state and snapshot kept for the next cycle, plus the input
bytes); asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import random
import re
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bdii.core import ber
from bdii.core.config import Config
from bdii.core.ldif import EntryRecord, iter_records
from bdii.core.pipeline import SourceResult, State
from bdii.service.updater import build_quietly

# Attributes a resource BDII's dynamic providers rewrite every few minutes.
DYNAMIC = re.compile(
    rb"^((?:GlueCEState|GLUE2ComputingShare|GLUE2ComputingService|GLUE2ComputingEndpoint)"
    rb"(?:Running|Waiting|Total|Free\w*)(?:Jobs|CPUs|JobSlots)?|GlueSAState\w+|GlueSEState\w+"
    rb"|GLUE2StorageShareCapacity\w+Size|GLUE2StorageServiceCapacity\w+Size|GlueCEStateEstimatedResponseTime"
    rb"|GlueCEStateWorstResponseTime): (\d+)$",
    re.MULTILINE)


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start a new VmHWM measurement (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def mutate(data: bytes, share: float, seed: int = 7) -> tuple[bytes, int, int]:
    """Bump the dynamic values of about `share` of all records; returns the
    new bytes, the records changed and the records in all."""
    rng = random.Random(seed)
    blocks = data.split(b"\n\n")
    dynamic = [i for i, b in enumerate(blocks) if DYNAMIC.search(b)]
    want = min(len(dynamic), int(len(blocks) * share))
    chosen = set(rng.sample(dynamic, want))
    for i in chosen:
        blocks[i] = DYNAMIC.sub(lambda m: m.group(1) + b": " + str(int(m.group(2)) + 1).encode(), blocks[i])
    return b"\n\n".join(blocks), len(chosen), len(blocks)


def ldap_sources(sites: int) -> list[tuple[str, bytes]]:
    """One BER blob per site, as a top level fetches it (site form DNs)."""
    folder = HERE / "data" / f"sites-{sites}"
    if not folder.exists():
        import aggregate
        aggregate.site_data(sites)
    out = []
    for path in sorted(folder.glob("*.ldif")):
        if path.name == "top.ldif":
            continue
        ops = []
        for rec in iter_records(path.read_bytes(), path.name):
            assert isinstance(rec, EntryRecord)
            grouped: dict[str, list[bytes]] = {}
            for a, v in rec.attrs:
                grouped.setdefault(a, []).append(v.encode())
            ops.append(ber.search_result_entry(rec.dn.encode(), [(a.encode(), vs) for a, vs in grouped.items()]))
        out.append((path.stem, b"".join(ops)))
    return out


def mutate_ber(blob: bytes, share: float, seed: int) -> bytes:
    """Same as `mutate` for BER: values are octet strings, so a bumped number
    must keep its length (9 -> 8 instead of 10): the TLV lengths stay right."""
    rng = random.Random(seed)
    out = bytearray(blob)
    pos, n = 0, len(blob)
    while pos < n:
        _tag, start, end = ber.read_tlv(blob, pos, n)
        if rng.random() < share:
            for m in re.finditer(rb"\x04[\x01-\x7f]((?:GlueCEState|GLUE2ComputingShare)(?:Running|Waiting)Jobs)"
                                 rb"\x31[\x00-\x7f]\x04([\x01-\x7f])", blob[start:end]):
                vstart = start + m.end()
                vlen = m.group(2)[0]
                digits = blob[vstart:vstart + vlen]
                last = digits[-1]
                out[vstart + vlen - 1] = last + 1 if last < ord("9") else last - 1
        pos = end
    return bytes(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--changed", type=float, default=0.1, help="share of entries changed in step 3")
    ap.add_argument("--form", choices=("ldif", "ldap"), default="ldif")
    ap.add_argument("--profile", help="write a cProfile of steps 2 and 3 to FILE.2 and FILE.3")
    args = ap.parse_args()
    cfg = replace(Config(), hostname="bench", delete_delay=0)
    t0 = time.perf_counter()
    if args.form == "ldif":
        import bench
        data = bench.dataset(args.sites).read_bytes()
        changed, n_changed, n_records = mutate(data, args.changed)
        first = [SourceResult("ldif/grid.ldif", "ldif", data, 0.0, 0.0)]
        second = [SourceResult("ldif/grid.ldif", "ldif", changed, 0.0, 0.0)]
        print(f"# {len(data) / 1e6:.0f} MB LDIF, {n_records} records; step 3 changes {n_changed} "
              f"({n_changed / n_records:.1%})")
    else:
        cfg = replace(cfg, mode="top")
        blobs = ldap_sources(args.sites)
        first = [SourceResult(name, "ldap", blob, 0.0, 0.0) for name, blob in blobs]
        second = [SourceResult(name, "ldap", mutate_ber(blob, args.changed, i), 0.0, 0.0)
                  for i, (name, blob) in enumerate(blobs)]
        print(f"# {len(first)} ldap sources, {sum(len(b) for _n, b in blobs) / 1e6:.0f} MB BER")
    gc.collect()
    print(f"# data ready in {time.perf_counter() - t0:.1f}s; RSS {rss_mb('VmRSS'):.0f} MB with the input bytes")
    state = State()
    steps = [("first build", first), ("refresh, same data", first),
             (f"refresh, ~{args.changed:.0%} changed", second), ("refresh, changed back", first)]
    for n, (label, results) in enumerate(steps, start=1):
        prof = cProfile.Profile() if args.profile and n in (1, 2, 3) else None
        reset_peak()
        t, cpu = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        res = build_quietly(results, state, cfg, 1_000_000.0 + 60 * n)
        if prof:
            prof.disable()
            prof.dump_stats(f"{args.profile}.{n}")
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        state = res.state
        s = res.stats
        # As the server holds the snapshot it serves until the next one is
        # swapped in: the next build may start from it (State.snapshot).
        served = res.snapshot  # noqa: F841 - kept alive on purpose
        del res
        print(f"{n}. {label:28s} {secs:6.2f} s (CPU {cpu:5.2f} s)  {s.total} entries ({s.new} new, {s.modified} modified, "
              f"{s.deleted} deleted)  peak RSS {rss_mb():.0f} MB, after {rss_mb('VmRSS'):.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
