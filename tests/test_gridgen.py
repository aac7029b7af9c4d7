"""bench/gridgen.py: the synthetic top-level BDII data set is well formed.

Checked against the real schema files (Debian glue-schema, OpenLDAP core):
every parent DN exists, every object class has its MUST attributes, every
attribute is allowed by the entry's classes, single-valued attributes have one
value, no value is repeated, INTEGER / Boolean / IA5 values have the right
syntax, the RDN value is in the entry; the LDIF text parses back to the same
records; the output is a function of the seed. slapadd, when installed, loads
the LDIF with zero rejected entries.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMA_FILES = ["core.schema", "cosine.schema", "Glue-CORE.schema", "Glue-MDS.schema",
                "Glue-CE.schema", "Glue-CESEBind.schema", "Glue-SE.schema", "GLUE20.schema"]
SITES = 2


def _load_gridgen():
    spec = importlib.util.spec_from_file_location("gridgen", ROOT / "bench" / "gridgen.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gridgen", mod)
    spec.loader.exec_module(mod)
    return mod


gridgen = _load_gridgen()


# ---------------------------------------------------------------- tiny schema reader

_DEF = re.compile(r"(?is)\b(objectclass|attributetype)\s*\((.*?)\)\s*"
                  r"(?=\n\s*(?:objectclass|attributetype|objectidentifier)\b|\Z)")


def _names(body: str) -> list[str]:
    m = re.search(r"NAME\s+(?:'([^']+)'|\(([^)]*)\))", body)
    return [m.group(1)] if m.group(1) else re.findall(r"'([^']+)'", m.group(2))


def _list(body: str, key: str) -> list[str]:
    m = re.search(rf"\b{key}\s+(?:\(([^)]*)\)|(\S+))", body)
    if not m:
        return []
    text = m.group(1) if m.group(1) is not None else m.group(2)
    return [x.strip().strip("'").lower() for x in text.split("$") if x.strip()]


def _schema():
    classes: dict[str, dict] = {}
    attrs: dict[str, dict] = {}
    for name in SCHEMA_FILES:
        text = (SCHEMA_DIR / name).read_text(encoding="latin-1")
        text = re.sub(r"(?m)^#.*$", "", text)
        for kind, body in _DEF.findall(text):
            names = [n.lower() for n in _names(body)]
            if kind.lower() == "objectclass":
                d = dict(must=_list(body, "MUST"), may=_list(body, "MAY"), sup=_list(body, "SUP"),
                         structural=not re.search(r"\b(AUXILIARY|ABSTRACT)\b", body))
                for n in names:
                    classes[n] = d
            else:
                syn = re.search(r"SYNTAX\s+([\d.]+)", body)
                d = dict(names=names, sup=_list(body, "SUP"), syntax=syn.group(1) if syn else None,
                         single=bool(re.search(r"\bSINGLE-VALUE\b", body)))
                for n in names:
                    attrs[n] = d
    # built into slapd, not in any schema file
    attrs["objectclass"] = dict(names=["objectclass"], sup=[], single=False,
                                syntax="1.3.6.1.4.1.1466.115.121.1.38")
    return classes, attrs


def _closure(classes: dict, name: str, key: str) -> set[str]:
    c = classes[name]
    out = set(c[key])
    for s in c["sup"]:
        if s != "top":
            out |= _closure(classes, s, key)
    return out


def _syntax(attrs: dict, name: str) -> str | None:
    a = attrs[name]
    while a["syntax"] is None and a["sup"] and a["sup"][0] in attrs:
        a = attrs[a["sup"][0]]
    return a["syntax"]


INTEGER, BOOLEAN, IA5 = ("1.3.6.1.4.1.1466.115.121.1.27", "1.3.6.1.4.1.1466.115.121.1.7",
                         "1.3.6.1.4.1.1466.115.121.1.26")


@pytest.fixture(scope="module")
def schema():
    assert all((SCHEMA_DIR / f).exists() for f in SCHEMA_FILES), \
        "GLUE / OpenLDAP schema files not installed: apt-get install glue-schema slapd"
    return _schema()


@pytest.fixture(scope="module")
def records():
    return list(gridgen.generate_records(SITES, seed=7))


# ---------------------------------------------------------------- tests


def _parent(dn: str) -> str | None:
    m = re.match(r"(?:[^,\\]|\\.)*,(.*)$", dn)
    return m.group(1) if m else None


def _rdn(dn: str) -> tuple[str, str]:
    m = re.match(r"((?:[^,\\]|\\.)*)", dn)
    attr, _, value = m.group(1).partition("=")
    return attr, re.sub(r"\\(.)", r"\1", value)


def test_tree_is_complete_and_shaped_like_a_top_bdii(records):
    dns = [dn.lower() for dn, _ in records]
    assert len(dns) == len(set(dns)), "duplicate DNs"
    seen: set[str] = set()
    for dn, _ in records:
        parent = _parent(dn)
        if parent is not None:
            assert parent.lower() in seen, f"parent of {dn} missing or after it"
        seen.add(dn.lower())
    names = gridgen.site_names(SITES, seed=7)
    for site in names:
        g1 = f"mds-vo-name={site},mds-vo-name=local,o=grid"
        g2 = f"GLUE2DomainID={site},GLUE2GroupID=grid,o=glue"
        for dn in (g1, f"GlueSiteUniqueID={site},{g1}", g2, f"GLUE2GroupID=resource,{g2}"):
            assert dn.lower() in seen, dn
    roots = {dn.split(",")[-1] for dn in dns}
    assert roots == {"o=grid", "o=glue"}
    # real production nesting of a mapping policy
    assert any(re.match(r"glue2policyid=[^,]+,glue2shareid=[^,]+,glue2serviceid=[^,]+,"
                        r"glue2groupid=resource,glue2domainid=[^,]+,glue2groupid=grid,o=glue$", d)
               for d in dns)
    grid = sum(1 for d in dns if d.endswith("o=grid"))
    assert 0.35 < grid / len(dns) < 0.65


def test_entries_obey_the_glue_schemas(schema, records):
    classes, attrs = schema
    problems: list[str] = []
    used: set[str] = set()
    for dn, avs in records:
        values: dict[str, list[str]] = {}
        for a, v in avs:
            a = a.lower()
            assert a in attrs, f"{dn}: unknown attribute {a}"
            values.setdefault(attrs[a]["names"][0], []).append(v)
        ocs = [v.lower() for v in values.get("objectclass", [])]
        assert ocs, f"{dn}: no objectClass"
        must: set[str] = set()
        allowed: set[str] = {"objectclass"}
        structural = 0
        for oc in ocs:
            assert oc in classes, f"{dn}: unknown object class {oc}"
            used.add(oc)
            must |= _closure(classes, oc, "must")
            allowed |= _closure(classes, oc, "must") | _closure(classes, oc, "may")
            structural += classes[oc]["structural"]
        assert structural >= 1, f"{dn}: no structural object class"
        canon = {attrs[a]["names"][0] if a in attrs else a for a in must}
        missing = canon - set(values)
        if missing:
            problems.append(f"{dn}: missing MUST {sorted(missing)}")
        # (attributes of slapd's built-in system schema are not in the files: skipped)
        allowed_canon = {attrs[a]["names"][0] for a in allowed if a in attrs}
        extra = set(values) - allowed_canon
        if extra:
            problems.append(f"{dn}: attributes not allowed by its classes {sorted(extra)}")
        for a, vs in values.items():
            if attrs[a]["single"] and len(vs) > 1:
                problems.append(f"{dn}: single-valued {a} has {len(vs)} values")
            if len({v.lower() for v in vs}) != len(vs):
                problems.append(f"{dn}: repeated value in {a}")
            syn = _syntax(attrs, a)
            for v in vs:
                if v == "":
                    problems.append(f"{dn}: empty {a}")
                elif syn == INTEGER and not re.fullmatch(r"-?(0|[1-9][0-9]*)", v):
                    problems.append(f"{dn}: {a}={v!r} is not an INTEGER")
                elif syn == BOOLEAN and v not in ("TRUE", "FALSE"):
                    problems.append(f"{dn}: {a}={v!r} is not a Boolean")
                elif syn == IA5 and not v.isascii():
                    problems.append(f"{dn}: {a}={v!r} is not IA5")
        rattr, rvalue = _rdn(dn)
        rattr = attrs[rattr.lower()]["names"][0]
        if rvalue.lower() not in {v.lower() for v in values.get(rattr, [])}:
            problems.append(f"{dn}: RDN value not among the {rattr} values")
    assert not problems, "\n".join(problems[:20])
    for oc in ("gluece", "gluevoview", "gluesa", "gluevoinfo", "gluecesebind", "glueservicedata",
               "glue2computingshare", "glue2mappingpolicy", "glue2accesspolicy",
               "glue2storageshare", "glue2storagesharecapacity", "glue2executionenvironment",
               "glue2applicationenvironment", "glue2location", "glue2contact", "mds"):
        assert oc in used, oc


def _parse_ldif(text: str):
    """Minimal RFC 2849 reader (content records only), for the round trip."""
    assert "\r" not in text
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines: list[str] = []
        for line in block.split("\n"):
            assert len(line) <= 76, f"line longer than 76 columns: {line!r}"
            if line.startswith(" "):
                lines[-1] += line[1:]
            else:
                lines.append(line)
        avs = []
        for line in lines:
            attr, sep, rest = line.partition(":")
            assert sep, line
            if rest.startswith(":"):
                value = base64.b64decode(rest[1:].strip(), validate=True).decode("utf-8")
            else:
                assert not rest or rest.startswith(" ")
                value = rest[1:]
                assert value == "" or not re.search(r"^[ :<]|[^\x01-\x7f]| $", value)
            avs.append((attr, value))
        assert avs[0][0] == "dn"
        out.append((avs[0][1], avs[1:]))
    return out


def test_ldif_round_trip_and_special_values(records):
    text = "".join(gridgen.to_ldif(records))
    assert text.isascii()
    assert _parse_ldif(text) == [(dn, list(avs)) for dn, avs in records]
    assert any(line.startswith(" ") for line in text.split("\n")), "no folded line"
    # non-ASCII values (base64), escaped DNs, a newline and a trailing space
    flat = [(a, v) for _, avs in records for a, v in avs]
    assert any(not v.isascii() for _, v in flat)
    assert any("\\," in dn for dn, _ in records) and any("\\+" in dn for dn, _ in records)
    specials = list(gridgen.to_ldif([("o=grid", [("description", " leading"), ("x", "trail "),
                                                 ("y", ":colon"), ("z", "<lt"), ("w", "a\nb"),
                                                 ("v", "Zürich"), ("u", "plain: ok")])]))[0]
    assert specials.splitlines()[1:8] == [
        "description:: IGxlYWRpbmc=", "x:: dHJhaWwg", "y:: OmNvbG9u", "z:: PGx0",
        "w:: YQpi", "v:: WsO8cmljaA==", "u: plain: ok"]
    long = list(gridgen.to_ldif([("o=grid", [("d", "x" * 200)])]))[0].splitlines()
    assert [len(x) for x in long[1:]] == [76, 76, 53, 0]   # "d: " + 200 chars, then blank line


def test_deterministic_for_a_seed(records):
    again = list(gridgen.generate_records(SITES, seed=7))
    assert again == records
    other = list(gridgen.generate_records(SITES, seed=8))
    assert other != records
    # the split per site has the same records as the whole
    split = [r for _, recs in gridgen.generate_sites(SITES, seed=7) for r in recs]
    assert gridgen.skeleton_records() + split == records


def test_cli_split_and_summary(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gridgen.py"), "--sites", "2",
                          "--seed", "7", "--split", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert re.match(r"gridgen: 2 sites, \d+ entries .*bytes", out.stderr)
    files = sorted(os.listdir(tmp_path))
    assert "top.ldif" in files and len(files) == 3
    whole = subprocess.run([sys.executable, str(ROOT / "bench" / "gridgen.py"), "--sites", "2",
                            "--seed", "7"], capture_output=True, text=True, check=True).stdout
    names = gridgen.site_names(2, seed=7)
    joined = (tmp_path / "top.ldif").read_text() + "".join(
        (tmp_path / f"{n}.ldif").read_text() for n in names)
    assert joined == whole


def test_slapadd_accepts_everything(schema, records, tmp_path):
    """slapadd with the standard GLUE schemas loads every generated entry."""
    slapadd = shutil.which("slapadd") or "/usr/sbin/slapadd"
    assert os.path.exists(slapadd), "slapadd not installed: apt-get install slapd"
    includes = [str(SCHEMA_DIR / f) for f in ("core.schema", "cosine.schema")]
    if os.path.exists("/etc/bdii/BDII.schema"):
        includes.append("/etc/bdii/BDII.schema")
    includes += [str(SCHEMA_DIR / f) for f in SCHEMA_FILES[2:]]
    conf = [f"include {f}" for f in includes]
    conf += ["modulepath /usr/lib/ldap", "moduleload back_mdb"]
    for suffix in ("o=grid", "o=glue"):
        d = tmp_path / suffix[2:]
        d.mkdir()
        conf += ["database mdb", f'suffix "{suffix}"', f'rootdn "{suffix}"', f"directory {d}",
                 "maxsize 268435456"]
    (tmp_path / "slapd.conf").write_text("\n".join(conf) + "\n")
    for suffix in ("o=grid", "o=glue"):
        ldif = tmp_path / f"{suffix[2:]}.ldif"
        ldif.write_text("".join(gridgen.to_ldif(r for r in records if r[0].endswith(suffix))))
        res = subprocess.run([slapadd, "-f", str(tmp_path / "slapd.conf"), "-b", suffix,
                              "-l", str(ldif)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
