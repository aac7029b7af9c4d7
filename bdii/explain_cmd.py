"""`bdii explain -c FILE VO ID`: why does VO x (not) see resource y?

Runs one refresh cycle exactly as `bdii update` does (sources, plugins,
the FCR blacklists of `BDII_FCR_FILE` / `BDII_FCR_URL`), touching no state
on disk, then names, for every resource `ID` matches (a CE, SE or service
ID, a host name, a glob, or a DN), the blacklist rule that hides it from
the VO, or says that it is not blacklisted and whether it publishes an
access rule for the VO at all. The reasoning is `bdii.core.policy.explain`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_arguments(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "explain", help="why does a VO not see a resource (FCR blacklists, access rules)",
        description="Run one refresh cycle and explain, for each resource ID matches, which FCR blacklist "
                    "rule hides it from VO, or why else the VO does not see it.")
    p.add_argument("-c", "--config", help="bdii.conf (default: the embedded demo configuration)")
    p.add_argument("vo", metavar="VO", help="the VO, e.g. atlas")
    p.add_argument("ident", metavar="ID", help="a CE/SE/service/share/endpoint ID, a host name, a glob or a DN")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twisted.internet import defer, task

    from bdii.cli import load_config
    from bdii.core.errors import ConfigError
    from bdii.core.policy import explain
    from bdii.service.ldapserver import SnapshotHolder
    from bdii.service.logs import start_logging
    from bdii.service.updater import Updater

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"bdii: {line}", file=sys.stderr)
        return EXIT_USAGE
    start_logging("ERROR")
    out: dict[str, Any] = {}

    @defer.inlineCallbacks
    def cycle(reactor: Any):  # type: ignore[no-untyped-def]
        # No StateStore: like `bdii update`, a dry run leaves the daemon's state alone.
        out["result"] = yield Updater(config, reactor, SnapshotHolder()).cycle()

    try:
        task.react(cycle, [])
    except SystemExit as exc:
        if exc.code not in (0, None):
            print("bdii: the refresh cycle failed", file=sys.stderr)
            return EXIT_FAILURE
    result = out.get("result")
    if result is None:
        return EXIT_FAILURE
    if not result.fcr:
        print("no FCR blacklist is configured (BDII_FCR_FILE / BDII_FCR_URL)")
    for line in explain(result.state.entries, result.fcr, args.vo, args.ident):
        print(line)
    return EXIT_OK
