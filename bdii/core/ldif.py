"""LDIF reading and writing (RFC 2849), as pure functions on bytes and text.

`parse_ldif(data, source)` never raises for bad records: a record that
cannot be read (no `dn:`, a bad line, a `:<` URL value, undecodable
base64) is skipped and reported as a `Problem` naming the source and line,
and every other record of the file is kept. Only input that is not LDIF at
all (binary data) is refused as a whole.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import Problem

# RFC 2849 SAFE-STRING: no NUL, LF, CR; does not start with space, ':' or '<'.
_SAFE = re.compile(r"[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*\Z")
_ATTR = re.compile(r"[A-Za-z0-9][A-Za-z0-9.;-]*\Z")
MODIFY_OPS = ("add", "delete", "replace")
_GOOD_NAMES: set[str] = set()  # attribute names already checked (a cache)


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """A content record: a DN and its attribute values, in file order."""

    dn: str
    attrs: tuple[tuple[str, str], ...]
    line: int


@dataclass(frozen=True, slots=True)
class Modification:
    op: str  # "add" | "delete" | "replace"
    attr: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A change record (`changetype: add|delete|modify`)."""

    dn: str
    changetype: str
    line: int
    mods: tuple[Modification, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()  # for changetype: add


Record = EntryRecord | ChangeRecord


@dataclass(frozen=True, slots=True)
class ParseResult:
    records: tuple[Record, ...]
    problems: tuple[Problem, ...] = field(default=())


class _Skip(Exception):
    """The current record is junk; carries the reason and its line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _logical_lines(lines: list[str], start: int, end: int, offset: int = 0) -> list[tuple[int, str]]:
    """Unfold continuation lines (RFC 2849 note 2) and drop comments."""
    out: list[tuple[int, str]] = []
    in_comment = False
    for i in range(start, end):
        line = lines[i]
        if line[:1] == " ":
            if in_comment:
                continue
            if not out:
                raise _Skip("continuation line with nothing to continue", i + 1 + offset)
            n, prev = out[-1]
            out[-1] = (n, prev + line[1:])
            continue
        if line[:1] == "#":
            in_comment = True
            continue
        in_comment = False
        out.append((i + 1 + offset, line))
    return out


def _split_line(lineno: int, line: str) -> tuple[str, str]:
    """One `attr: value`, `attr:: base64` line; `attr:< url` is refused."""
    colon = line.find(":")
    if colon <= 0:
        raise _Skip(f"not an 'attribute: value' line: {line[:60]!r}", lineno)
    attr = line[:colon]
    if attr not in _GOOD_NAMES:
        attr = attr.strip()
        if not _ATTR.match(attr):
            raise _Skip(f"invalid attribute name {attr[:60]!r}", lineno)
        if len(_GOOD_NAMES) < 100_000:
            _GOOD_NAMES.add(attr)
    rest = line[colon + 1 :]
    if rest[:1] == ":":
        raw = rest[1:].strip()
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Skip(f"invalid base64 value of {attr}", lineno) from exc
        try:
            return attr, decoded.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Skip(f"base64 value of {attr} is not UTF-8 text", lineno) from exc
    if rest[:1] == "<":
        raise _Skip(
            f"URL values (':<') are not supported: {attr} must be given inline", lineno
        )
    return attr, rest[1:] if rest[:1] == " " and rest[1:2] != " " else rest.lstrip(" ")


_SEP = "-"  # the line that ends one modification of a modify record


def _record(lines: list[tuple[int, str]]) -> Record:
    first_no, first = lines[0]
    attr, dn = _split_line(first_no, first)
    if attr.lower() != "dn":
        raise _Skip(f"record does not start with 'dn:' (found {attr!r})", first_no)
    body: list[tuple[int, str, str]] = []
    for n, ln in lines[1:]:
        if ln.rstrip() == _SEP:
            body.append((n, _SEP, ""))
        else:
            body.append((n, *_split_line(n, ln)))
    if body and body[0][1].lower() == "changetype":
        return _change(dn, first_no, body[0][2].strip().lower(), body[1:])
    for n, a, _v in body:
        if a == _SEP:
            raise _Skip("'-' separator outside a modify record", n)
    return EntryRecord(dn, tuple((a, v) for _, a, v in body), first_no)


def _change(dn: str, line: int, kind: str, body: list[tuple[int, str, str]]) -> ChangeRecord:
    if kind == "add":
        return ChangeRecord(dn, "add", line, attrs=tuple((a, v) for _, a, v in body))
    if kind == "delete":
        if body:
            raise _Skip("changetype: delete takes no attributes", body[0][0])
        return ChangeRecord(dn, "delete", line)
    if kind != "modify":
        raise _Skip(f"changetype {kind!r} is not supported (add, delete, modify)", line)
    mods: list[Modification] = []
    i = 0
    while i < len(body):
        n, op, attr = body[i]
        i += 1
        if op == _SEP:  # a stray separator
            continue
        op = op.lower()
        if op not in MODIFY_OPS:
            raise _Skip(f"expected add:, delete: or replace: in modify, found {op!r}", n)
        attr = attr.strip()
        values: list[str] = []
        while i < len(body):
            m, a, v = body[i]
            i += 1
            if a == _SEP:
                break
            if a.lower() != attr.lower():
                raise _Skip(f"value of {a} inside the {op}: {attr} modification", m)
            values.append(v)
        if op == "add" and not values:
            raise _Skip(f"add: {attr} without values", n)
        mods.append(Modification(op, attr, tuple(values)))
    return ChangeRecord(dn, "modify", line, mods=tuple(mods))


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:65536]


def parse_ldif(data: bytes | str, source: str) -> ParseResult:
    """Parse a whole LDIF stream; junk records are reported, not fatal."""
    problems: list[Problem] = []
    records = tuple(iter_ldif(data, source, problems))
    return ParseResult(records, tuple(problems))


def iter_ldif(data: bytes | str, source: str, problems: list[Problem]) -> Iterator[Record]:
    """Records one at a time (problems appended to `problems`).

    Records are cut at empty lines without splitting the whole text into
    lines; the common record (plain `attr: value` lines, folded or not) is
    read by a fast path, anything unusual by the careful line parser, which
    names the exact line of a problem. Yielding record by record lets a
    caller turn each into an entry and drop it, instead of holding two
    copies of a 100 MB tree at once.
    """
    first = True
    for raw, line in iter_blocks(data, source, problems):
        records, _plain = block_records(raw, line, source, problems, first)
        if records:
            first = False
            yield from records


# About this much text is cut into records by one C call (see `Blocks`).
WINDOW = 1 << 20


class Blocks:
    """An LDIF text cut into records at empty lines.

    `windows()` gives the raw records (bytes) a window of about a megabyte
    at a time, each window cut by one `bytes.split`: no Python step per
    record to find it, and no 100 MB call holding the GIL. A record's first
    line is counted only when asked (`line`), in order: a refresh that finds
    a record among the last cycle's needs no line number for it.

    Decoding waits for the record too: decoding 100 MB at once is one long
    C call that holds the GIL (a 0.5 s reactor stall, measured), and one
    non-Latin-1 character would make the whole text 2-4 bytes a character.
    """

    __slots__ = ("_counted", "_line", "data")

    def __init__(self, data: bytes | str, source: str, problems: list[Problem]) -> None:
        if isinstance(data, str):
            try:
                data = data.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # lone surrogates: their records are skipped later
                data = data.encode("utf-8", "surrogatepass")
        elif _looks_binary(data):
            problems.append(Problem(source, "binary data, not LDIF: file ignored", 1))
            data = b""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        self.data = data
        self._counted = 0
        self._line = 1

    def windows(self) -> Iterator[tuple[int, list[bytes]]]:
        """(offset of the first record, records) per window. Records are
        what cutting the whole text at each `\n\n`, left to right, gives
        (empty ones and leading newlines included): a window ends where a
        run of newlines starts, which is always such a cut."""
        data = self.data
        n = len(data)
        pos = 0
        while pos < n:
            cut = data.find(b"\n\n", pos + WINDOW) if pos + WINDOW < n else -1
            if cut < 0:
                yield pos, data[pos:].split(b"\n\n")
                return
            while cut > pos and data[cut - 1] == 10:
                cut -= 1
            yield pos, data[pos:cut].split(b"\n\n")
            pos = cut + 2

    def line(self, offset: int) -> int:
        """The line number at `offset` (offsets asked in increasing order)."""
        self._line += self.data.count(b"\n", self._counted, offset)
        self._counted = offset
        return self._line


def strip_block(raw: bytes, offset: int) -> tuple[bytes, int]:
    """A raw record without the empty lines before it, and its new offset."""
    if raw[:1] != b"\n":
        return raw, offset
    body = raw.lstrip(b"\n")
    return body, offset + len(raw) - len(body)


def iter_blocks(data: bytes | str, source: str, problems: list[Problem]) -> Iterator[tuple[bytes, int]]:
    """The raw bytes of each record (cut at empty lines) and its first line."""
    blocks = Blocks(data, source, problems)
    for off, raws in blocks.windows():
        for raw in raws:
            start = off
            off += len(raw) + 2
            raw, start = strip_block(raw, start)
            if raw:
                yield raw, blocks.line(start)


def block_records(raw: bytes, line: int, source: str, problems: list[Problem],
                  first: bool = True) -> tuple[list[Record], bool]:
    """The records of one block from `iter_blocks`, and whether it was
    plain: one entry record, starting with its `dn:` line, read without a
    problem, so that the same bytes always give the same record wherever
    they stand in a file (a `version:` line, for one, depends on `first`)."""
    try:
        block = raw.decode("utf-8")
        check = False
    except UnicodeDecodeError:
        block = raw.decode("utf-8", errors="surrogateescape")
        check = True  # find the records with bad bytes and skip only those
    rec = None if check else _fast_record(block, line)
    if rec is not None:
        return [rec], True
    out: list[Record] = []
    known = len(problems)
    _parse_lines(block.split("\n"), line, source, out, problems, check, first)
    plain = (len(out) == 1 and isinstance(out[0], EntryRecord) and len(problems) == known
             and block[:3].lower() == "dn:")
    return out, plain


# A plain `name: value` line: a valid attribute name (as `_ATTR`), one space,
# a value that does not start with another space. All lines of a record
# are matched by one C call; any other line sends the record to the loop.
_PLAIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.;-]*): (?! )(.*)$", re.MULTILINE)


def _fast_record(block: str, lineno: int) -> EntryRecord | None:
    """The common case in one pass; None means "let the careful parser decide"."""
    if block[0] == "#" or "\n#" in block or "\n-" in block:
        return None
    if "\n " in block:
        block = block.replace("\n ", "")  # unfold (RFC 2849 note 2)
    nl = block.find("\n")
    first = block if nl < 0 else block[:nl]
    if first[:3].lower() != "dn:" or first[3:4] == "<":
        return None
    if first[3:4] == ":":
        try:
            dn = base64.b64decode(first[4:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    else:
        dn = first[3:].lstrip(" ")
    if nl < 0:
        pairs: list[tuple[str, str]] | None = []
    else:
        body = block[nl + 1:]
        pairs = _PLAIN_LINE.findall(body)
        if len(pairs) != body.count("\n") + 1:
            pairs = _fast_lines(body.split("\n"))
            if pairs is None:
                return None
    if pairs and pairs[0][0].lower() == "changetype":
        return None
    return EntryRecord(dn, tuple(pairs), lineno)


def _fast_lines(lines: list[str]) -> list[tuple[str, str]] | None:
    """Lines with base64 values or odd spacing; None: let the careful parser decide."""
    pairs = []
    good = _GOOD_NAMES
    for ln in lines:
        attr, sep, value = ln.partition(":")
        if not sep or attr not in good:
            return None
        if value[:1] == " ":
            value = value[1:] if value[1:2] != " " else value.lstrip(" ")
        elif value[:1] == ":":
            try:
                value = base64.b64decode(value[1:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return None
        elif value[:1] == "<":
            return None
        pairs.append((attr, value))
    return pairs


def _parse_lines(lines: list[str], first_line: int, source: str, records: list[Record],
                 problems: list[Problem], check: bool, first: bool = True) -> None:
    """The careful parser: one or more records in `lines`, problems by line."""
    start = 0
    n = len(lines)
    offset = first_line - 1
    while start < n:
        while start < n and lines[start].strip() == "":
            start += 1
        if start >= n:
            break
        end = start
        # RFC 2849: only an empty line ends a record; a line of spaces is a
        # continuation (a folded run of spaces), not a separator.
        while end < n and (lines[end][:1] == " " or lines[end].strip() != ""):
            end += 1
        try:
            logical = _logical_lines(lines, start, end, offset)
            if logical and logical[0][1].lower().startswith("version:") and first and not records:
                # RFC 2849: an optional "version: 1" precedes the first record.
                logical = logical[1:]
            if logical:
                if check:
                    _check_text(logical)
                records.append(_record(logical))
        except _Skip as skip:
            problems.append(Problem(source, f"record skipped: {skip}", skip.line))
        start = end


def _check_text(logical: list[tuple[int, str]]) -> None:
    for n, line in logical:
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Skip("line is not valid UTF-8", n) from exc


# --- writing ---------------------------------------------------------------


def needs_base64(value: str) -> bool:
    """RFC 2849: values that are not SAFE-STRINGs (or end in space) go base64."""
    if not value:
        return False
    return _SAFE.match(value) is None or value[-1] == " "


def _fold(line: str, width: int) -> str:
    if width <= 0 or len(line) <= width:
        return line
    parts = [line[:width]]
    for i in range(width, len(line), width - 1):
        parts.append(" " + line[i : i + width - 1])
    return "\n".join(parts)


def format_line(attr: str, value: str, width: int = 76) -> str:
    """One `attr: value` line, base64-encoded and folded when RFC 2849 says so."""
    if needs_base64(value):
        enc = base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
        return _fold(f"{attr}:: {enc}", width)
    return _fold(f"{attr}: {value}", width)


def format_record(dn: str, attrs: Iterable[tuple[str, Iterable[str]]], width: int = 76) -> str:
    """An entry as LDIF text, ending with a blank line."""
    out = [format_line("dn", dn, width)]
    for attr, values in attrs:
        for v in values:
            out.append(format_line(attr, v, width))
    out.append("")
    return "\n".join(out) + "\n"


def iter_records(data: bytes | str, source: str) -> Iterator[Record]:
    """Convenience for tests and tools: the records only."""
    yield from parse_ldif(data, source).records
