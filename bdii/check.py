"""`bdii check`: a Nagios/ARGO probe, a drop-in for `check_bdii_entries`.

The probe of the `nagios-plugins-bdii` package (EGI-Federation/nagios-plugins-bdii,
`src/check_bdii_entries.c`, release 1.0.14) binds anonymously, runs one
subtree search asking only for `modifyTimestamp`, and reports either

- *entries mode* (any filter but the stats one): WARNING/CRITICAL when the
  whole exchange (connect + bind + search) took more than T seconds or
  fewer than N entries came back --
  `OK: time=0.12s, entries=42 |time=0.12s;entries=42`;
- *freshness mode* (the filter is exactly the `stats` one): the age in
  seconds of the first entry's `modifyTimestamp` against T (N is not used)
  -- `OK: freshness=123s, entries=1 |freshness=123s;entries=1`. Without
  such an entry the legacy probe prints `freshness=-1s` and, -1 being
  below any threshold, OK; `--strict-freshness` makes that CRITICAL.

A failed bind or search is `CRITICAL: ldap_simple_bind_s: <libldap text>`
or `CRITICAL: ldap_search_ext_s: <libldap text>`, as libldap's
`ldap_err2string` spells the code. Where the legacy probe had no answer we
chose, and the README says so: `-t` (ignored by the legacy probe, which
waits for ever) gives `CRITICAL: <call>: Timed out`, CRITICAL being what
Nagios itself reports for a check it had to kill; usage errors are
UNKNOWN (the legacy probe exited 1 for an unknown option).

Only the CLI layer turns results into exit statuses; the evaluation is a
pure function of the observation, tested without a network.
"""

from __future__ import annotations

import argparse
import calendar
import math
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

STATS_FILTER = "(|(objectClass=UpdateStats)(objectClass=InfoSystemStats))"
# Exact, case-sensitive names, as the legacy probe compared them with strcmp.
SHORTCUTS = {
    "site": "(objectClass=GlueSite)",
    "service": "(objectClass=GlueService)",
    "stats": STATS_FILTER,
}
DEFAULT_PORT = 2170
DEFAULT_BASE = "o=grid"
DEFAULT_FILTER = SHORTCUTS["service"]
STATS_BASE = "o=infosys"
# Nagios' default service_check_timeout, and ARGO's configured timeout for
# org.bdii.Entries: without -t we answer at the point Nagios would give up.
DEFAULT_TIMEOUT = 60.0

BIND, SEARCH = "ldap_simple_bind_s", "ldap_search_ext_s"

# libldap's ldap_err2string() texts (OpenLDAP 2.5), which the legacy probe
# printed after the failing call's name. Negative codes are client-side.
LDAP_ERRORS = {
    1: "Operations error", 2: "Protocol error", 3: "Time limit exceeded", 4: "Size limit exceeded",
    7: "Authentication method not supported", 8: "Strong(er) authentication required",
    10: "Referral", 11: "Administrative limit exceeded", 12: "Critical extension is unavailable",
    13: "Confidentiality required", 16: "No such attribute", 17: "Undefined attribute type",
    18: "Inappropriate matching", 21: "Invalid syntax", 32: "No such object", 34: "Invalid DN syntax",
    48: "Inappropriate authentication", 49: "Invalid credentials", 50: "Insufficient access",
    51: "Server is busy", 52: "Server is unavailable", 53: "Server is unwilling to perform",
    54: "Loop detected", 80: "Other (e.g., implementation specific) error",
    -1: "Can't contact LDAP server", -2: "Local error", -3: "Encoding error", -4: "Decoding error",
    -5: "Timed out", -7: "Bad search filter",
}
SERVER_DOWN, LOCAL_ERROR, TIMED_OUT, FILTER_ERROR = -1, -2, -5, -7


def err2string(code: int) -> str:
    return LDAP_ERRORS.get(code, "Unknown error")


class UsageError(Exception):
    """A bad command line: reported as UNKNOWN with the usage line."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """`-w`/`-c T:N`: T seconds (response time or freshness), N entries at least."""

    seconds: float
    entries: int

    @classmethod
    def parse(cls, text: str | None, option: str, name: str) -> Thresholds:
        if text is None:
            raise UsageError(f"{name} levels ({option} option) are not set")
        m = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?):([+-]?\d+)\s*", text)
        if m is None:
            raise UsageError(f"invalid format for {name} levels, {text!r} (expected T:N, e.g. 20:1)")
        return cls(float(m.group(1)), int(m.group(2)))


@dataclass(frozen=True, slots=True)
class Probe:
    """What to ask and how to judge it: the parsed command line."""

    host: str
    port: int = DEFAULT_PORT
    base: str = DEFAULT_BASE
    filter: str = DEFAULT_FILTER
    warning: Thresholds = Thresholds(0, 0)
    critical: Thresholds = Thresholds(0, 0)
    timeout: float | None = DEFAULT_TIMEOUT
    strict_freshness: bool = False

    @property
    def freshness_mode(self) -> bool:
        # The legacy probe switched on the final filter text, so spelling the
        # stats filter out in full also selects freshness (without o=infosys).
        return self.filter == STATS_FILTER

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Probe:
        if not args.host:
            raise UsageError("hostname (-H option) not specified")
        port = _number(args.port, "-p", int, DEFAULT_PORT)
        if not 0 < port < 65536:
            raise UsageError(f"-p: port {args.port!r} is not between 1 and 65535")
        base = args.base if args.base is not None else DEFAULT_BASE
        flt = args.filter if args.filter is not None else DEFAULT_FILTER
        flt = SHORTCUTS.get(flt, flt)
        if args.filter == "stats":
            base = STATS_BASE  # forced, even over -b, as the legacy probe did
        warning = Thresholds.parse(args.warning, "-w", "warning")
        critical = Thresholds.parse(args.critical, "-c", "critical")
        timeout = _number(args.timeout, "-t", float, DEFAULT_TIMEOUT)
        if timeout < 0:
            raise UsageError(f"-t: timeout {args.timeout!r} is negative")
        return cls(args.host, port, base, flt, warning, critical, timeout or None, args.strict_freshness)


def _number(text: str | None, option: str, kind: Any, default: Any) -> Any:
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a number") from None


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe run saw: seconds taken, entries, the first entry's
    `modifyTimestamp` (if any) and the wall-clock second the search ended."""

    elapsed: float
    entries: int
    modify_timestamp: str | None
    finished: int


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed LDAP call, named as the legacy probe named it."""

    call: str
    code: int

    def report(self) -> tuple[int, str]:
        return CRITICAL, f"CRITICAL: {self.call}: {err2string(self.code)}"


def freshness(obs: Observation) -> float | None:
    """Seconds between the stats entry's modifyTimestamp and the end of the
    search; None when there is no entry or no parsable timestamp."""
    stamp = obs.modify_timestamp
    if not stamp or not re.match(r"\d{14}", stamp):
        return None
    # The legacy probe read YYYYmmddHHMMSS as UTC and ignored the rest.
    try:
        modified = calendar.timegm(time.strptime(stamp[:14], "%Y%m%d%H%M%S"))
    except ValueError:
        return None
    return float(obs.finished - modified)


def evaluate(probe: Probe, obs: Observation) -> tuple[int, str]:
    """The status and the one output line (with perfdata) for an observation."""
    code = OK
    if probe.freshness_mode:
        seen = freshness(obs)
        age = -1.0 if seen is None else seen  # the legacy probe's value for "none"
        if age > probe.warning.seconds:
            code = WARNING
        if age > probe.critical.seconds:
            code = CRITICAL
        why = ""
        if probe.strict_freshness and seen is None:
            code = CRITICAL
            why = " (no UpdateStats entry with a modifyTimestamp)"
        return code, (f"{STATUS[code]}: freshness={age:.0f}s, entries={obs.entries}{why} "
                      f"|freshness={age:.0f}s;entries={obs.entries}")
    t, n = obs.elapsed, obs.entries
    if t > probe.warning.seconds or n < probe.warning.entries:
        code = WARNING
    if t > probe.critical.seconds or n < probe.critical.entries:
        code = CRITICAL
    return code, f"{STATUS[code]}: time={t:.2f}s, entries={n} |time={t:.2f}s;entries={n}"


def query(probe: Probe, phase: list[str]) -> Observation | Failure:
    """Connect, bind anonymously, search; blocking (ldap3). `phase[0]` names
    the call under way, for the timeout message."""
    import ldap3
    from ldap3.core import exceptions as lx

    # A little over -t, so that the overall deadline in `observe` is what
    # fires; whole seconds, as ldap3 packs the receive timeout as integers.
    net = None if probe.timeout is None else math.ceil(probe.timeout) + 1
    start = time.monotonic()
    try:
        server = ldap3.Server(probe.host, port=probe.port, get_info=ldap3.NONE, connect_timeout=net)
        # check_names=False: send base and attribute names as written, as libldap does.
        conn = ldap3.Connection(server, auto_bind=ldap3.AUTO_BIND_NONE, read_only=True, raise_exceptions=False,
                                receive_timeout=net, check_names=False)
        if not conn.bind():
            return Failure(BIND, int(conn.result.get("result", SERVER_DOWN) if conn.result else SERVER_DOWN))
        phase[0] = SEARCH
        try:
            conn.search(probe.base, probe.filter, search_scope=ldap3.SUBTREE, attributes=["modifyTimestamp"])
        except lx.LDAPInvalidFilterError:
            return Failure(SEARCH, FILTER_ERROR)
        except lx.LDAPInvalidDnError:
            return Failure(SEARCH, 34)
        result = conn.result or {}
        if result.get("result", 0) != 0:
            return Failure(SEARCH, int(result["result"]))
        elapsed = time.monotonic() - start
        finished = int(time.time())
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        stamp = None
        if entries:
            raw = {k.lower(): v for k, v in entries[0].get("raw_attributes", {}).items()}
            values = raw.get("modifytimestamp") or []
            if values:
                v = values[0]
                stamp = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        try:
            conn.unbind()
        except lx.LDAPException:
            pass
        return Observation(elapsed, len(entries), stamp, finished)
    except (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError, lx.LDAPSocketSendError,
            lx.LDAPSessionTerminatedByServerError, lx.LDAPCommunicationError, OSError):
        return Failure(phase[0], SERVER_DOWN)
    except lx.LDAPResponseTimeoutError:
        return Failure(phase[0], TIMED_OUT)
    except lx.LDAPException:
        return Failure(phase[0], LOCAL_ERROR)


def observe(probe: Probe) -> Observation | Failure:
    """`query` with an overall deadline of `probe.timeout` seconds.

    ldap3's socket timeouts bound each wait, not the whole exchange (a
    server can trickle bytes for ever), so the query runs in a daemon
    thread and the deadline is a join: the process exits without it.
    """
    phase = [BIND]
    box: dict[str, Observation | Failure] = {}

    def work() -> None:
        try:
            box["result"] = query(probe, phase)
        except Exception:  # noqa: BLE001 - a probe answers with a status line, never a traceback
            box["result"] = Failure(phase[0], LOCAL_ERROR)

    worker = threading.Thread(target=work, name="bdii-check", daemon=True)
    worker.start()
    worker.join(probe.timeout)
    if "result" not in box:
        return Failure(phase[0], TIMED_OUT)
    return box["result"]


def check(probe: Probe) -> tuple[int, str]:
    result = observe(probe)
    if isinstance(result, Failure):
        return result.report()
    return evaluate(probe, result)


# --- the command line ------------------------------------------------------

class _ProbeParser(argparse.ArgumentParser):
    """Records argument errors instead of exiting with argparse's status 2:
    a monitoring probe answers UNKNOWN (3) with its usage line."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(message)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        namespace = argparse.Namespace() if namespace is None else namespace
        try:
            namespace, extras = super().parse_known_args(args, namespace)
        except UsageError as exc:
            namespace.usage_error = str(exc)
            return namespace, []
        if extras:
            namespace.usage_error = f"unrecognized arguments: {' '.join(extras)}"
        return namespace, []


def _options(p: argparse.ArgumentParser) -> None:
    # Plain strings, checked in Probe.from_args, so that every error is ours.
    p.add_argument("-H", dest="host", metavar="host", help="the BDII's host name (required)")
    p.add_argument("-p", dest="port", metavar="port", help=f"its port (default {DEFAULT_PORT})")
    p.add_argument("-b", dest="base", metavar="base", help=f"search base (default {DEFAULT_BASE})")
    p.add_argument("-f", dest="filter", metavar="filter",
                   help="LDAP filter, or a shortcut: site, service (the default), stats "
                        "(freshness of the o=infosys update statistics; forces -b o=infosys)")
    p.add_argument("-w", dest="warning", metavar="T:N",
                   help="WARNING above T seconds (response time, or freshness with -f stats) "
                        "or below N entries (required)")
    p.add_argument("-c", dest="critical", metavar="T:N", help="CRITICAL thresholds, as -w (required)")
    p.add_argument("-t", dest="timeout", metavar="seconds",
                   help=f"give up after this many seconds: CRITICAL (default {DEFAULT_TIMEOUT:g}; 0: never)")
    p.add_argument("--strict-freshness", action="store_true",
                   help="with -f stats: no update statistics entry is CRITICAL (the legacy probe said OK)")


def add_arguments(subparsers: Any) -> None:
    """Register `bdii check`."""
    saved = subparsers._parser_class  # noqa: SLF001 - argparse has no public hook for this
    subparsers._parser_class = _ProbeParser  # noqa: SLF001
    try:
        p = subparsers.add_parser(
            "check", help="probe a running BDII, Nagios style (drop-in for check_bdii_entries)",
            description="Probe a BDII over LDAP; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    finally:
        subparsers._parser_class = saved  # noqa: SLF001
    _options(p)
    p.set_defaults(run=run, probe_usage=p.format_usage())


def run(args: argparse.Namespace) -> int:
    """Run the probe from parsed arguments; print one status line; return the Nagios status."""
    try:
        error = getattr(args, "usage_error", None)
        if error:
            raise UsageError(error)
        probe = Probe.from_args(args)
    except UsageError as exc:
        print(f"UNKNOWN: {exc}")
        print(getattr(args, "probe_usage", "").rstrip())
        return UNKNOWN
    code, line = check(probe)
    print(line)
    sys.stdout.flush()
    return code


def check_bdii_entries_main(argv: Sequence[str] | None = None) -> int:
    """The `check_bdii_entries` console script: the same options as `bdii check`."""
    p = _ProbeParser(prog="check_bdii_entries",
                     description="Probe a BDII over LDAP; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    _options(p)
    p.set_defaults(probe_usage=p.format_usage())
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(check_bdii_entries_main())
