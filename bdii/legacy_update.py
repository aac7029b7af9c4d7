"""`bdii-update`: the legacy daemon's command line, for init scripts and ARC.

The legacy `/usr/sbin/bdii-update` takes `-c FILE` (required) and `-d`:
without `-d` it runs one cycle, prints the merged LDIF and exits (`bdii
update`); with `-d` it runs the service (`bdii serve`). Unlike the legacy
program, `-d` does not fork into the background: it runs in the
foreground, as systemd's `Type=simple` expects.

Exit statuses follow the legacy program: 2 for an invalid option, 1 for a
missing or bad configuration; otherwise those of `bdii update` / `bdii serve`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bdii.core.errors import ConfigError

EXIT_CONFIG = 1  # the legacy bdii-update's status for configuration problems


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bdii-update",
        description="Legacy-compatible entry point: one cycle printed as LDIF, or with -d the BDII service.")
    p.add_argument("-c", "--config", metavar="FILE", help="BDII configuration file (bdii.conf), required")
    p.add_argument("-d", "--daemon", action="store_true",
                   help="run the BDII service (refresh loop + LDAP server), in the foreground")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # an invalid option exits 2, as the legacy getopt error did
    if args.config is None:
        print("bdii-update: Error: Configuration file not specified.", file=sys.stderr)
        parser.print_usage(sys.stderr)
        return EXIT_CONFIG
    if not Path(args.config).exists():
        print(f"bdii-update: Error: Configuration file {args.config} does not exist.", file=sys.stderr)
        return EXIT_CONFIG
    from bdii.cli import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"bdii-update: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if args.daemon:
        from bdii.service.main import serve

        return serve(config)
    from bdii.service.main import update

    return update(config)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
