"""`bdii validate`: GLUE 1.3 / GLUE 2.0 validation of LDIF from a file, stdin,
a running LDAP server or a provider's output.

Only reading is done here (files, a subprocess, ldap3); the rules are in
`bdii.core.validation`. One tab-separated line per problem (severity, DN,
attribute, rule, reason), then a summary line; `--json` prints one JSON
document instead. Exit status: 0 no errors, 1 errors, 2 input unreadable.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from bdii.core.validation import (
    ERROR,
    PROFILES,
    Finding,
    LdifInput,
    entries_from_ldif,
    entries_from_pairs,
    validate_entries,
)

EXIT_OK, EXIT_ERRORS, EXIT_UNREADABLE = 0, 1, 2


class InputError(Exception):
    """The input cannot be read at all (exit status 2)."""


def add_arguments(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "validate", help="check GLUE 1.3 / 2.0 LDIF from a file, stdin, an LDAP server or a provider",
        description="Validate GLUE 1.3 and GLUE 2.0 data. Prints one line per problem "
                    "(severity, DN, attribute, rule, reason; tab-separated) and a summary. "
                    "Exit status: 0 no errors, 1 errors, 2 input unreadable.")
    p.add_argument("input", nargs="?", metavar="PATH | - | ldap://host:port/base",
                   help="an LDIF file, - for stdin, or an LDAP URL (the subtree under base)")
    p.add_argument("--provider", metavar="CMD", help="run CMD (a provider) and validate what it prints")
    p.add_argument("--profile", choices=sorted(PROFILES), default="glue",
                   help="glue: schema + GLUE 2.0 model + GLUE 1.3 rules (default); "
                        "egi: glue plus EGI's production rules")
    p.add_argument("--json", action="store_true", help="print the report as one JSON document")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds a provider or LDAP server may take (default 300)")
    p.add_argument("--now", help="validate as of this UTC time (YYYY-MM-DDThh:mm:ssZ; default: now)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        now = _now(args.now)
        if (args.input is None) == (args.provider is None):
            raise InputError("give exactly one input: PATH, -, an ldap:// URL or --provider CMD")
        # A 100k-entry tree is a million small immutable objects and no cycles:
        # the cyclic collector only costs time here (measured: a third of the run).
        gc.disable()
        data = _read(args)
    except InputError as e:
        print(f"bdii validate: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    if not data.readable:
        for f in data.findings:
            print(f"bdii validate: {f.message}", file=sys.stderr)
        return EXIT_UNREADABLE
    report = validate_entries(data.entries, now, args.profile, findings=data.findings)
    try:
        if args.json:
            json.dump(report.to_json(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            sys.stdout.writelines(f.to_line() + "\n" for f in report.findings)
            print(report.summary_line())
        sys.stdout.flush()
    except BrokenPipeError:  # `bdii validate ... | head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the exit flush does not fail again
    return EXIT_OK if report.ok else EXIT_ERRORS


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise InputError(f"--now {text!r}: not YYYY-MM-DDThh:mm:ssZ") from None


def _read(args: argparse.Namespace) -> LdifInput:
    if args.provider is not None:
        return entries_from_ldif(_run_provider(args.provider, args.timeout), f"provider {args.provider}")
    source: str = args.input
    if source == "-":
        return entries_from_ldif(sys.stdin.buffer.read(), "<stdin>")
    if source.lower().startswith(("ldap://", "ldaps://")):
        return _read_ldap(source, args.timeout)
    try:
        with open(source, "rb") as fh:
            return entries_from_ldif(fh.read(), source)
    except OSError as e:
        raise InputError(f"{source}: cannot read: {e.strerror}") from None


def _run_provider(command: str, timeout: float) -> bytes:
    argv = shlex.split(command)
    if not argv:
        raise InputError("--provider: empty command")
    try:
        # Its own process group, so that a timeout kills its children too,
        # as the BDII does with providers.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        raise InputError(f"provider {command!r}: cannot run: {e.strerror}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise InputError(f"provider {command!r}: no result after {timeout:g} s (killed)") from None
    if proc.returncode != 0:
        reason = err.decode("utf-8", "replace").strip().splitlines()
        detail = f": {reason[-1]}" if reason else ""
        if not out.strip():
            raise InputError(f"provider {command!r} failed with status {proc.returncode}{detail}")
        print(f"bdii validate: provider {command!r} exited with status {proc.returncode}{detail}; "
              "validating its output anyway", file=sys.stderr)
    return out


def _read_ldap(url: str, timeout: float) -> LdifInput:
    import ldap3  # only this input needs it
    from ldap3.core.exceptions import LDAPException

    parts = urlsplit(url)
    base = unquote(parts.path.lstrip("/"))
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InputError(f"{url}: bad port") from None
    if not host:
        raise InputError(f"{url}: no host")
    use_ssl = parts.scheme.lower() == "ldaps"
    try:
        server = ldap3.Server(host, port=port or (636 if use_ssl else 389), use_ssl=use_ssl,
                              get_info=ldap3.DSA if not base else ldap3.NONE, connect_timeout=timeout)
        conn = ldap3.Connection(server, auto_bind=True, receive_timeout=max(1, math.ceil(timeout)),
                                read_only=True)
        bases = [base] if base else [str(c) for c in (server.info.naming_contexts or [])]
        records: list[tuple[str, list[tuple[str, str]]]] = []
        bad: list[tuple[str, str]] = []
        for b in bases:
            conn.search(b, "(objectClass=*)", ldap3.SUBTREE, attributes=["*"])
            if conn.result["result"] not in (0, 4):  # success, sizeLimitExceeded (partial)
                raise InputError(f"{url}: search under {b!r} failed: "
                                 f"{conn.result['description']} {conn.result.get('message') or ''}".strip())
            records += _records(conn.response or (), bad)
        conn.unbind()
    except (LDAPException, OSError) as e:
        raise InputError(f"{url}: {e}") from None
    result = entries_from_pairs(records, url)
    utf8 = tuple(Finding(ERROR, dn, attr, "schema.syntax", "value is not UTF-8 (RFC 4517 3.3.6)")
                 for dn, attr in bad)
    return LdifInput(result.entries, result.findings + utf8, True)


def _records(response: Iterable[dict], bad: list[tuple[str, str]]) -> Iterable[tuple[str, list[tuple[str, str]]]]:
    for item in response:
        if item.get("type") != "searchResEntry":
            continue
        pairs = []
        for attr, values in item["raw_attributes"].items():
            for raw in values:
                try:
                    pairs.append((attr, raw.decode("utf-8")))
                except UnicodeDecodeError:
                    pairs.append((attr, raw.decode("utf-8", "replace")))
                    bad.append((item["dn"], attr))
        yield item["dn"], pairs
