#!/usr/bin/env python3
"""Connections kept open across hand-overs: does every request get its whole answer?

    python bench/handover.py [SITES] [SECONDS]

Starts `bdii serve` (default workers) on the generated data of SITES sites
(default 20: a refresh takes well under a second), keeps 16 connections
busy with searches of all sizes for SECONDS (default 40) and sends SIGHUP
every 1.5 s, so that every connection is handed from one generation of
workers to the next many times. A request without its complete answer
after 5 s counts as hung. Prints requests answered, hung, closed by the
server, and refresh cycles.
"""

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench
from bdii.core.ber import message


def _done(buf: bytearray) -> tuple[bool, int]:
    """Whether the complete messages in `buf` include a SearchResultDone; bytes used."""
    pos, done = 0, False
    while (end := bench._frame(buf, pos)) is not None:
        long = buf[pos + 1] & 0x7F if buf[pos + 1] >= 0x80 else 0
        idlen = buf[pos + 3 + long]
        done = done or buf[pos + 4 + long + idlen] == 0x65
        pos = end
    return done, pos


async def client(port: int, ops: list[bytes], stop: float, stats: dict[str, int]) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    buf = bytearray()
    msgid = 0
    while time.time() < stop:
        msgid += 1
        op = random.choice(ops)
        w.write(message(msgid, op))
        done = False
        while not done:
            try:
                data = await asyncio.wait_for(r.read(262144), 5)
            except asyncio.TimeoutError:
                stats["hung"] += 1
                print(f"hung: request {msgid} on {w.get_extra_info('sockname')}, {op[:40]!r}...", flush=True)
                w.close()
                return
            if not data:
                stats["closed"] += 1
                return
            buf += data
            done, used = _done(buf)
            del buf[:used]
        stats["n"] += 1
    w.close()


async def main() -> None:
    sites = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 40
    data = bench.dataset(sites)
    proc, port, tmp = bench.start_server(data, "")
    await asyncio.sleep(2)  # the first generation of workers starts
    ops = [bench.encode_search("o=grid", "(objectClass=GlueSite)", ["GlueSiteName"]),
           bench.encode_search("o=glue", "(objectClass=GLUE2Service)", []),
           bench.encode_search("o=grid", "(GlueSiteName=*)", []),
           bench.encode_search("o=glue", "(objectClass=*)", ["GLUE2EntityName"])]
    stats = {"n": 0, "hung": 0, "closed": 0}
    stop = time.time() + secs
    tasks = [asyncio.create_task(client(port, ops, stop, stats)) for _ in range(16)]
    hups = 0
    while time.time() < stop:
        await asyncio.sleep(1.5)
        os.kill(proc.pid, signal.SIGHUP)
        hups += 1
    await asyncio.gather(*tasks)
    log = (tmp / "serve.log").read_text()
    print(f"answered {stats['n']}, hung {stats['hung']}, closed by the server {stats['closed']}; "
          f"{hups} SIGHUPs, {log.count('] cycle ')} cycles", flush=True)
    proc.terminate()
    proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
