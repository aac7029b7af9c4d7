"""Read OpenLDAP ``.schema`` files: RFC 4512 §4.1 descriptions in slapd.conf syntax.

The GLUE schemas are published only as OpenLDAP schema files, so this is the
one place that understands that format; everything else reads the JSON that
`render_json` makes from it (see ``glue/render.py``). Text in, plain dicts
out, `SchemaSyntaxError` on anything else: no files, no logging.

Line handling follows slapd's config reader (``fp_getline``): a line that
starts with whitespace continues the previous one (its first character
becomes a space), a line starting with ``#`` is a comment (with any
continuation lines under it), an empty line ends a definition. Inside a
definition keywords may come in any order and be in any case, and OIDs may
be quoted, as slapd (``LDAP_SCHEMA_ALLOW_ALL``) accepts; lists need ``$``
separators as RFC 4512 §4.1 requires.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any

from .errors import BdiiError

__all__ = ["SchemaSyntaxError", "parse_schema_text", "render_json"]

# RFC 4512 §1.4: descr = keystring; numericoid = number 1*( DOT number ).
_DESCR = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")
_NUMERICOID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+\Z")
_NOIDLEN = re.compile(r"(?P<oid>[^{}]+)(\{[0-9]+\})?\Z")  # RFC 4512 §4.1.2 noidlen
_BLANK_END = re.compile(r"\s*\Z")
_TOKEN = re.compile(r"\s*(?:(?P<punct>[()$])|'(?P<quoted>[^']*)'|(?P<bare>[^\s()$']+))")
_USAGES = {u.lower(): u for u in
           ("userApplications", "directoryOperation", "distributedOperation", "dSAOperation")}
_DIRECTIVES = {"objectclass": "objectclass", "objectidentifier": "macro"}


class SchemaSyntaxError(BdiiError, ValueError):
    """Schema text that slapd would refuse; names the source and 1-based line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


class _Logical:
    """One logical line: text joined from continuation lines, mapped back to line numbers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.offsets: list[int] = []
        self.lines: list[int] = []
        self.size = 0

    def add(self, lineno: int, text: str) -> None:
        self.offsets.append(self.size)
        self.lines.append(lineno)
        self.parts.append(text)
        self.size += len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def error(self, offset: int, message: str) -> SchemaSyntaxError:
        i = max(bisect.bisect_right(self.offsets, offset) - 1, 0)
        return SchemaSyntaxError(self.source, self.lines[i], message)


def _logical_lines(text: str, source: str) -> Iterator[_Logical]:
    current: _Logical | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw[:1].isspace():
            if current is not None:
                current.add(lineno, " " + raw[1:])
            elif raw.strip():
                raise SchemaSyntaxError(source, lineno, "continuation line with nothing before it")
            continue
        if current is not None:
            yield current
            current = None
        if raw:
            current = _Logical(source)
            current.add(lineno, raw)
    if current is not None:
        yield current


class _Tokens:
    """RFC 4512 §4.1 tokens of one definition, with error positions."""

    def __init__(self, logical: _Logical, start: int) -> None:
        self.logical = logical
        self.items: list[tuple[str, str, int]] = []  # (kind, value, offset)
        text = logical.text
        pos = start
        while not _BLANK_END.match(text, pos):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise logical.error(text.index("'", pos), "unterminated quoted string")
            kind = m.lastgroup or "bare"
            self.items.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def error(self, message: str, back: int = 0) -> SchemaSyntaxError:
        i = min(max(self.i - back, 0), len(self.items) - 1)
        offset = self.items[i][2] if self.items else 0
        return self.logical.error(offset, message)

    def peek(self) -> tuple[str, str] | None:
        if self.i >= len(self.items):
            return None
        kind, value, _ = self.items[self.i]
        return kind, value

    def next(self, what: str) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise self.error(f"definition ends where {what} was expected", back=1)
        self.i += 1
        return item

    def punct(self, char: str) -> None:
        kind, value = self.next(f"'{char}'")
        if (kind, value) != ("punct", char):
            raise self.error(f"expected '{char}', found {value!r}", back=1)

    def qdstring(self, what: str) -> str:
        kind, value = self.next(what)
        if kind != "quoted":
            raise self.error(f"expected a quoted {what}, found {value!r}", back=1)
        # RFC 4512 §4.1: QQ = "\27" stands for a quote, QS = "\5C" for a backslash.
        return re.sub(r"\\(27|5[Cc])", lambda m: "'" if m.group(1) == "27" else "\\", value)

    def oid(self, what: str) -> str:
        """An oid (descr or numericoid); slapd also accepts it quoted."""
        kind, value = self.next(what)
        if kind == "punct" or not (_DESCR.match(value) or _NUMERICOID.match(value)):
            raise self.error(f"expected {what}, found {value!r}", back=1)
        return value

    def oids(self, what: str) -> list[str]:
        """RFC 4512 §4.1: oids = oid / ( LPAREN WSP oidlist WSP RPAREN ), oidlist uses '$'."""
        if self.peek() != ("punct", "("):
            return [self.oid(what)]
        self.punct("(")
        result = [self.oid(what)]
        while self.peek() == ("punct", "$"):
            self.i += 1
            result.append(self.oid(what))
        self.punct(")")
        return result

    def qdescrs(self) -> list[str]:
        """RFC 4512 §4.1: qdescrs = qdescr / ( LPAREN WSP qdescrlist WSP RPAREN )."""
        if self.peek() != ("punct", "("):
            return [self._qdescr()]
        self.punct("(")
        names = []
        while self.peek() != ("punct", ")"):
            names.append(self._qdescr())
        self.punct(")")
        if not names:
            raise self.error("empty NAME list", back=1)
        return names

    def _qdescr(self) -> str:
        kind, value = self.next("a quoted name")
        if kind != "quoted" or not _DESCR.match(value):
            raise self.error(f"expected a quoted name, found {value!r}", back=1)
        return value

    def extension(self) -> None:
        """RFC 4512 §4.2 extensions (X-ORIGIN 'x' ...): accepted and dropped."""
        if self.peek() == ("punct", "("):
            self.punct("(")
            while self.peek() != ("punct", ")"):
                self.qdstring("extension value")
            self.punct(")")
        else:
            self.qdstring("extension value")


def _expand(value: str, macros: dict[str, str]) -> str:
    """Expand an ``objectidentifier`` macro (``name`` or ``name:1.2``), as slapd does."""
    name, colon, suffix = value.partition(":")
    if name.lower() not in macros:
        return value
    base = macros[name.lower()]
    return f"{base}.{suffix}" if colon and suffix else base


def _numericoid(tokens: _Tokens, macros: dict[str, str], what: str) -> str:
    kind, value = tokens.next(what)
    oid = _expand(value, macros) if kind != "punct" else value
    if kind == "punct" or not _NUMERICOID.match(oid):
        raise tokens.error(f"expected a numeric OID for {what}, found {value!r}", back=1)
    return oid


def _definition(tokens: _Tokens, kind: str, macros: dict[str, str]) -> dict[str, Any]:
    tokens.punct("(")
    oid = _numericoid(tokens, macros, f"the {kind}")
    template, fields = _ATTRIBUTE if kind == "attribute" else _OBJECTCLASS
    d: dict[str, Any] = {"oid": oid, **{k: list(v) if isinstance(v, list) else v
                                        for k, v in template.items()}}
    seen: set[str] = set()
    while True:
        token_kind, value = tokens.next("')'")
        if (token_kind, value) == ("punct", ")"):
            break
        keyword = value.upper()
        if token_kind == "bare" and keyword.startswith("X-"):
            tokens.extension()
            continue
        if token_kind != "bare" or keyword not in fields:
            raise tokens.error(f"unexpected {value!r} in {kind} definition", back=1)
        key, read = fields[keyword]
        if (key or keyword) in seen:
            raise tokens.error(f"{keyword} repeats a field already given", back=1)
        seen.add(key or keyword)
        result = read(tokens, macros)
        if key is not None:
            d[key] = result
    if tokens.peek() is not None:
        raise tokens.error(f"text after the end of the {kind} definition")
    return d


def _syntax(tokens: _Tokens, macros: dict[str, str]) -> str:
    kind, value = tokens.next("a SYNTAX")
    m = _NOIDLEN.match(value) if kind != "punct" else None
    oid = _expand(m.group("oid"), macros) if m else ""
    if not _NUMERICOID.match(oid):
        raise tokens.error(f"expected a syntax OID, found {value!r}", back=1)
    return oid  # the {len} bound is advisory (RFC 4512 §4.1.2); servers need not enforce it


def _usage(tokens: _Tokens) -> str:
    _, value = tokens.next("a USAGE")
    if value.lower() not in _USAGES:
        raise tokens.error(f"unknown USAGE {value!r}", back=1)
    return _USAGES[value.lower()]


_Reader = Callable[[_Tokens, dict[str, str]], Any]
_Fields = dict[str, tuple[str | None, _Reader]]  # keyword -> (dict key or None to drop, reader)

_COMMON: _Fields = {
    "NAME": ("names", lambda t, m: t.qdescrs()),
    "DESC": ("desc", lambda t, m: t.qdstring("DESC")),
    "OBSOLETE": (None, lambda t, m: True),
}
# RFC 4512 §4.1.2 AttributeTypeDescription; COLLECTIVE and NO-USER-MODIFICATION are
# accepted but not kept (a read-only server never lets clients modify anything).
_ATTRIBUTE: tuple[dict[str, Any], _Fields] = (
    {"names": [], "desc": None, "sup": None, "equality": None, "ordering": None,
     "substr": None, "syntax": None, "single_value": False, "usage": "userApplications"},
    _COMMON | {
        "SUP": ("sup", lambda t, m: t.oid("a SUP attribute type")),
        "EQUALITY": ("equality", lambda t, m: t.oid("an EQUALITY rule")),
        "ORDERING": ("ordering", lambda t, m: t.oid("an ORDERING rule")),
        "SUBSTR": ("substr", lambda t, m: t.oid("a SUBSTR rule")),
        "SYNTAX": ("syntax", _syntax),
        "SINGLE-VALUE": ("single_value", lambda t, m: True),
        "COLLECTIVE": (None, lambda t, m: True),
        "NO-USER-MODIFICATION": (None, lambda t, m: True),
        "USAGE": ("usage", lambda t, m: _usage(t)),
    },
)
# RFC 4512 §4.1.1 ObjectClassDescription; a class is STRUCTURAL unless it says otherwise.
_OBJECTCLASS: tuple[dict[str, Any], _Fields] = (
    {"names": [], "desc": None, "sup": [], "kind": "STRUCTURAL", "must": [], "may": []},
    _COMMON | {
        "SUP": ("sup", lambda t, m: t.oids("a SUP object class")),
        "MUST": ("must", lambda t, m: t.oids("a MUST attribute type")),
        "MAY": ("may", lambda t, m: t.oids("a MAY attribute type")),
        "ABSTRACT": ("kind", lambda t, m: "ABSTRACT"),
        "STRUCTURAL": ("kind", lambda t, m: "STRUCTURAL"),
        "AUXILIARY": ("kind", lambda t, m: "AUXILIARY"),
    },
)


def parse_schema_text(text: str, source: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse one schema file's text into (attribute types, object classes), in file order.

    `source` only names the text in errors. ``objectidentifier`` macros apply
    to the rest of this text (slapd shares them across files; no GLUE file uses them).
    """
    attributes: list[dict[str, Any]] = []
    objectclasses: list[dict[str, Any]] = []
    macros: dict[str, str] = {}
    for logical in _logical_lines(text, source):
        line = logical.text
        if line.startswith("#") or not line.strip():
            continue
        word = line.split(None, 1)[0]
        directive = _DIRECTIVES.get(word.lower())
        if word.lower().startswith("attribute") and word.lower() != "attributeoptions":
            directive = "attribute"  # slapd's config table matches the 9-letter prefix only
        if directive is None:
            raise logical.error(0, f"unknown schema directive {word!r}")
        tokens = _Tokens(logical, len(word))
        if directive == "macro":
            words = [value for _, value, _ in tokens.items]
            if len(words) != 2 or not _DESCR.match(words[0]):
                raise logical.error(0, "objectidentifier needs a name and an OID")
            oid = _expand(words[1], macros)
            if not _NUMERICOID.match(oid):
                raise logical.error(0, f"objectidentifier {words[0]!r}: bad OID {words[1]!r}")
            macros[words[0].lower()] = oid
        elif directive == "attribute":
            attributes.append(_definition(tokens, "attribute", macros))
        else:
            objectclasses.append(_definition(tokens, "objectclass", macros))
    return attributes, objectclasses


def _closure(attributes: list[dict[str, Any]], objectclasses: list[dict[str, Any]],
             roots: Collection[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keep the named definitions plus everything they refer to (SUP, MUST, MAY)."""
    def key(d: dict[str, Any]) -> list[str]:
        return [d["oid"], *(n.lower() for n in d["names"])]

    at_by = {k: d for d in attributes for k in key(d)}
    oc_by = {k: d for d in objectclasses for k in key(d)}
    missing = sorted(r for r in roots if r.lower() not in at_by and r.lower() not in oc_by)
    if missing:
        raise ValueError(f"not defined in these files: {', '.join(missing)}")
    keep: set[int] = set()
    todo = [r.lower() for r in roots]
    while todo:
        name = todo.pop()
        for d in (at_by.get(name), oc_by.get(name)):
            if d is None or id(d) in keep:
                continue
            keep.add(id(d))
            if "must" in d:
                todo += [n.lower() for n in (*d["sup"], *d["must"], *d["may"])]
            elif d["sup"]:
                todo.append(d["sup"].lower())
    return ([d for d in attributes if id(d) in keep], [d for d in objectclasses if id(d) in keep])


def render_json(files: list[tuple[str, str]], *, note: str = "",
                only: Collection[str] | None = None) -> str:
    """The project's JSON rendering of schema files given as (name, text) pairs.

    Definitions keep file order so that a re-render diffs cleanly. With
    `only`, keep just those names and what they depend on.
    """
    attributes: list[dict[str, Any]] = []
    objectclasses: list[dict[str, Any]] = []
    for name, text in files:
        ats, ocs = parse_schema_text(text, name)
        attributes += ats
        objectclasses += ocs
    if only is not None:
        attributes, objectclasses = _closure(attributes, objectclasses, only)
    doc = {"source": [name for name, _ in files], "note": note,
           "attributes": attributes, "objectclasses": objectclasses}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
