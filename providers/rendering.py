"""The jinja2 environment shared by the information providers.

Templates live in ``templates/`` (package data of ``bdii.providers``) and
never write LDIF syntax by hand for values: they go through helpers that
always produce valid RFC 2849 and RFC 4514 text.

``attr(name, value)``
    One ``name: value`` line per value (``value`` may be a list or tuple),
    base64-encoded (``name:: ...``) when RFC 2849 requires it and folded at
    76 columns, by :func:`bdii.core.ldif.format_line`. ``None`` or an empty
    string is an error, not an empty attribute.
``dn(rdn, ..., suffix)``
    A ``dn:`` line from ``(attribute, value)`` pairs, leaf first, each value
    escaped for the DN, followed by a DN suffix written as it is::

        {{ dn(("GlueSEUniqueID", se.host), "mds-vo-name=resource,o=grid") }}
``x|dnv``
    A value escaped for use inside a DN (``a,b`` -> ``a\\,b``).
``x|ia5``
    An ASCII transliteration (``Zürich`` -> ``Zurich``) for GLUE 1.3
    attributes, whose IA5String syntax refuses anything else.

:func:`render` renders a template with ``StrictUndefined``, so a missing
context value is an error rather than an empty attribute.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import jinja2

from bdii.core.dn import escape_value
from bdii.core.ldif import format_line

__all__ = ["ENV", "attr", "dn", "dnv", "ia5", "join_records", "render"]


def _text(name: str, value: Any) -> str:
    if value is None:
        raise ValueError(f"attribute {name}: no value")
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"  # LDAP Boolean syntax
    else:
        text = str(value)  # an undefined template variable raises here
    if text == "":
        raise ValueError(f"attribute {name}: empty value")
    return text


def attr(name: str, value: Any) -> str:
    """LDIF line(s) for one attribute; a list or tuple gives one line per value."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"attribute {name}: no value")
        return "\n".join(format_line(name, _text(name, v)) for v in value)
    return format_line(name, _text(name, value))


def dnv(value: Any) -> str:
    """A value escaped for a DN string (RFC 4514)."""
    return escape_value(_text("DN value", value))


def dn(*parts: Any) -> str:
    """A ``dn:`` line: ``(attribute, value)`` RDN pairs, leaf first, then an
    optional already-escaped suffix string."""
    rdns = []
    for part in parts:
        if isinstance(part, (list, tuple)):
            name, value = part
            rdns.append(f"{name}={dnv(value)}")
        else:
            rdns.append(_text("DN suffix", part))
    return format_line("dn", ",".join(rdns))


def ia5(value: Any) -> str:
    """An ASCII rendering of a text for IA5String attributes (GLUE 1.3)."""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.encode("ascii", "replace").decode("ascii")


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bdii.providers", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(attr=attr, dn=dn)
ENV.filters.update(dnv=dnv, ia5=ia5)


def render(template_name: str, **context: Any) -> str:
    """Render one template of ``templates/`` with the given context."""
    return ENV.get_template(template_name).render(**context)


def join_records(texts: Iterable[str]) -> str:
    """Concatenate rendered LDIF texts, one blank line between records."""
    out = []
    for text in texts:
        text = text.strip("\n")
        if text:
            out.append(text + "\n")
    return "\n".join(out)
