#!/usr/bin/env python3
"""Deterministic generator of a realistic top-level BDII data set (LDIF).

The output has the exact DN forms a top-level BDII serves:

* GLUE 1.3 under ``o=grid``: ``X,mds-vo-name=SITE,mds-vo-name=local,o=grid``
* GLUE 2.0 under ``o=glue``:
  ``X,GLUE2GroupID=resource,GLUE2DomainID=SITE,GLUE2GroupID=grid,o=glue``
  (the site's own AdminDomain, Location and Contacts directly under
  ``GLUE2DomainID=SITE,GLUE2GroupID=grid,o=glue``).

Every entry carries the MUST attributes of its object classes (GLUE 1.3
``Glue-*.schema``, ``GLUE20.schema``) with values of the right syntax, so the
whole set loads into OpenLDAP slapd with the standard GLUE schemas.

The mix is modelled on the WLCG/EGI grid: a few large Tier-1-like sites
(many CEs and queues, tape and disk storage with space tokens, FTS), many
Tier-2s and small sites; ~18 VOs; CREAM, ARC and HTCondor CEs; dCache, DPM,
StoRM, EOS and xrootd storage; site BDIIs, a few top BDIIs. Some values need
LDIF base64 (non-ASCII place names in GLUE 2.0, a trailing space, a newline),
a few DNs need RFC 4514 escaping (``\\,`` ``\\+`` in GlueServiceDataKey), and
many lines are longer than 76 columns and get folded.

Command line::

    python bench/gridgen.py --sites 300 [--seed 1] [--out FILE|-]
    python bench/gridgen.py --sites 300 --split DIR     # DIR/top.ldif + DIR/SITE.ldif
    ... [--form site]   # site-BDII DN forms (mds-vo-name=SITE,o=grid / GLUE2DomainID=SITE,o=glue)

API::

    generate_records(sites, seed) -> Iterator[(dn, [(attr, value), ...])]
    to_ldif(records) -> Iterator[str]          # RFC 2849, one string per entry

This module is standalone on purpose (no import from the bdii package).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import sys
import time
from typing import Iterable, Iterator

Record = tuple[str, list[tuple[str, str]]]

__all__ = ["generate_records", "generate_sites", "skeleton_records", "to_ldif",
           "record_to_ldif", "site_names", "VOS", "main"]

# --------------------------------------------------------------------------
# Static vocabulary
# --------------------------------------------------------------------------

LHC_VOS = ["atlas", "cms", "lhcb", "alice"]
OTHER_VOS = ["biomed", "belle", "dune", "lsst", "ilc", "t2k.org", "icecube", "virgo",
             "enmr.eu", "vo.complex-systems.eu", "gridpp", "auger"]
VOS = ["ops", "dteam"] + LHC_VOS + OTHER_VOS          # 18 VOs
VOMS_ROLES = {
    "atlas": ["production", "pilot", "lcgadmin"],
    "cms": ["pilot", "production", "lcgadmin"],
    "lhcb": ["pilot", "lcgadmin"],
    "alice": ["lcgadmin"],
    "ops": ["lcgadmin"],
    "belle": ["production"],
    "dune": ["pilot"],
}
SPACE_TOKENS = {
    "atlas": ["ATLASDATADISK", "ATLASSCRATCHDISK", "ATLASLOCALGROUPDISK", "ATLASHOTDISK",
              "ATLASGROUPDISK", "ATLASMCTAPE", "ATLASDATATAPE", "ATLASPRODDISK"],
    "cms": ["CMS_DEFAULT", "CMS_STAGEOUT", "CMS_USER", "CMS_TAPE", "CMS_UNMERGED"],
    "lhcb": ["LHCb-Disk", "LHCb-Tape", "LHCb_USER", "LHCb-EOS", "LHCb_FAILOVER"],
    "alice": ["ALICEDISK", "ALICETAPE", "ALICE_SE"],
    "belle": ["BELLE_DATA", "BELLE_TMP"],
    "dune": ["DUNE_DISK", "DUNE_TAPE"],
}

# (NGI, country, domain tld, grid, [(city utf-8, city ascii, lat, lon)])
REGIONS = [
    ("NGI_UK", "United Kingdom", "ac.uk", "EGI", [
        ("London", "London", 51.50, -0.12), ("Manchester", "Manchester", 53.47, -2.23),
        ("Glasgow", "Glasgow", 55.87, -4.29), ("Oxford", "Oxford", 51.75, -1.25),
        ("Lancaster", "Lancaster", 54.01, -2.78), ("Didcot", "Didcot", 51.57, -1.31)]),
    ("NGI_DE", "Germany", "de", "EGI", [
        ("Karlsruhe", "Karlsruhe", 49.09, 8.43), ("Göttingen", "Goettingen", 51.54, 9.93),
        ("München", "Muenchen", 48.26, 11.67), ("Hamburg", "Hamburg", 53.57, 9.88),
        ("Aachen", "Aachen", 50.78, 6.05), ("Wuppertal", "Wuppertal", 51.25, 7.15)]),
    ("NGI_FRANCE", "France", "fr", "EGI", [
        ("Villeurbanne", "Villeurbanne", 45.78, 4.87), ("Orsay", "Orsay", 48.70, 2.17),
        ("Clermont-Ferrand", "Clermont-Ferrand", 45.76, 3.11),
        ("Marseille", "Marseille", 43.30, 5.37), ("Grenoble", "Grenoble", 45.19, 5.72),
        ("Annecy-le-Vieux", "Annecy-le-Vieux", 45.92, 6.14)]),
    ("NGI_IT", "Italy", "it", "EGI", [
        ("Bologna", "Bologna", 44.49, 11.34), ("Milano", "Milano", 45.47, 9.19),
        ("Napoli", "Napoli", 40.84, 14.18), ("Roma", "Roma", 41.90, 12.51),
        ("Torino", "Torino", 45.05, 7.68), ("Pisa", "Pisa", 43.72, 10.40),
        ("Bari", "Bari", 41.11, 16.88), ("Frascati", "Frascati", 41.81, 12.68)]),
    ("NGI_IBERGRID", "Spain", "es", "EGI", [
        ("Barcelona", "Barcelona", 41.50, 2.11), ("Madrid", "Madrid", 40.45, -3.73),
        ("València", "Valencia", 39.51, -0.42), ("Santander", "Santander", 43.47, -3.80),
        ("Málaga", "Malaga", 36.72, -4.42)]),
    ("NGI_IBERGRID", "Portugal", "pt", "EGI", [
        ("Lisboa", "Lisboa", 38.74, -9.14), ("Coimbra", "Coimbra", 40.21, -8.41)]),
    ("NGI_CH", "Switzerland", "ch", "EGI", [
        ("Zürich", "Zurich", 47.37, 8.55), ("Genève", "Geneve", 46.23, 6.05),
        ("Bern", "Bern", 46.95, 7.44), ("Lugano", "Lugano", 46.00, 8.95)]),
    ("NGI_PL", "Poland", "pl", "EGI", [
        ("Kraków", "Krakow", 50.06, 19.94), ("Warszawa", "Warszawa", 52.23, 21.01),
        ("Poznań", "Poznan", 52.41, 16.93), ("Łódź", "Lodz", 51.76, 19.46),
        ("Wrocław", "Wroclaw", 51.11, 17.03)]),
    ("NGI_CZ", "Czech Republic", "cz", "EGI", [
        ("Praha", "Praha", 50.12, 14.47), ("Plzeň", "Plzen", 49.74, 13.37),
        ("Brno", "Brno", 49.20, 16.61)]),
    ("NGI_NDGF", "Sweden", "se", "EGI", [
        ("Umeå", "Umea", 63.82, 20.26), ("Linköping", "Linkoping", 58.40, 15.58),
        ("Lund", "Lund", 55.71, 13.19)]),
    ("NGI_NDGF", "Norway", "no", "EGI", [("Oslo", "Oslo", 59.94, 10.72),
                                         ("Bergen", "Bergen", 60.39, 5.32)]),
    ("NGI_NDGF", "Denmark", "dk", "EGI", [("København", "Kobenhavn", 55.70, 12.57)]),
    ("NGI_NL", "Netherlands", "nl", "EGI", [("Amsterdam", "Amsterdam", 52.36, 4.95),
                                            ("Nijmegen", "Nijmegen", 51.82, 5.87)]),
    ("NGI_GRNET", "Greece", "gr", "EGI", [("Αθήνα", "Athens", 37.98, 23.73),
                                          ("Θεσσαλονίκη", "Thessaloniki", 40.63, 22.96)]),
    ("NGI_HU", "Hungary", "hu", "EGI", [("Budapest", "Budapest", 47.49, 19.04),
                                        ("Debrecen", "Debrecen", 47.53, 21.63)]),
    ("NGI_RO", "Romania", "ro", "EGI", [
        ("București", "Bucuresti", 44.43, 26.10), ("Iași", "Iasi", 47.16, 27.59),
        ("Măgurele", "Magurele", 44.35, 26.03)]),
    ("NGI_SK", "Slovakia", "sk", "EGI", [("Bratislava", "Bratislava", 48.15, 17.11),
                                         ("Košice", "Kosice", 48.72, 21.26)]),
    ("Russia", "Russia", "ru", "WLCG", [
        ("Дубна", "Dubna", 56.74, 37.19), ("Москва", "Moscow", 55.70, 37.53),
        ("Протвино", "Protvino", 54.87, 37.22), ("Гатчина", "Gatchina", 59.57, 30.12)]),
    ("ROC_LA", "Brazil", "br", "EGI", [("São Paulo", "Sao Paulo", -23.55, -46.73),
                                       ("Rio de Janeiro", "Rio de Janeiro", -22.95, -43.17)]),
    ("AsiaPacific", "Taiwan", "tw", "EGI", [("Taipei", "Taipei", 25.04, 121.61)]),
    ("AsiaPacific", "Japan", "jp", "EGI", [("Tōkyō", "Tokyo", 35.71, 139.76),
                                           ("Tsukuba", "Tsukuba", 36.15, 140.08)]),
    ("AsiaPacific", "Korea", "kr", "EGI", [("Daejeon", "Daejeon", 36.37, 127.36)]),
    ("AsiaPacific", "China", "cn", "EGI", [("Beijing", "Beijing", 39.91, 116.33)]),
    ("AsiaPacific", "Australia", "au", "EGI", [("Melbourne", "Melbourne", -37.80, 144.96)]),
    ("OSG", "USA", "edu", "OSG", [
        ("Chicago", "Chicago", 41.79, -87.60), ("Madison", "Madison", 43.07, -89.41),
        ("Lincoln", "Lincoln", 40.82, -96.70), ("Batavia", "Batavia", 41.84, -88.26),
        ("Upton", "Upton", 40.87, -72.88), ("Ann Arbor", "Ann Arbor", 42.28, -83.74),
        ("Pasadena", "Pasadena", 34.14, -118.13)]),
    ("NGI_TR", "Turkey", "tr", "EGI", [("Ankara", "Ankara", 39.89, 32.78),
                                       ("İstanbul", "Istanbul", 41.01, 28.98)]),
    ("NGI_IL", "Israel", "il", "EGI", [("Tel Aviv", "Tel Aviv", 32.11, 34.80),
                                       ("Rehovot", "Rehovot", 31.91, 34.81)]),
    ("NGI_SI", "Slovenia", "si", "EGI", [("Ljubljana", "Ljubljana", 46.04, 14.49)]),
    ("NGI_BE", "Belgium", "be", "EGI", [("Bruxelles", "Bruxelles", 50.82, 4.39),
                                        ("Louvain-la-Neuve", "Louvain-la-Neuve", 50.67, 4.61)]),
]
CC = {"United Kingdom": "UKI", "Germany": "DE", "France": "FR", "Italy": "IT", "Spain": "ES",
      "Portugal": "PT", "Switzerland": "CH", "Poland": "PL", "Czech Republic": "CZ",
      "Sweden": "SE", "Norway": "NO", "Denmark": "DK", "Netherlands": "NL", "Greece": "GR",
      "Hungary": "HU", "Romania": "RO", "Slovakia": "SK", "Russia": "RU", "Brazil": "BR",
      "Taiwan": "TW", "Japan": "JP", "Korea": "KR", "China": "CN", "Australia": "AU",
      "USA": "US", "Turkey": "TR", "Israel": "IL", "Slovenia": "SI", "Belgium": "BE"}

CA_DNS = [
    "/DC=ch/DC=cern/CN=CERN Grid Certification Authority",
    "/C=DE/O=GermanGrid/CN=GridKa-CA",
    "/C=IT/O=INFN/CN=INFN Certification Authority",
    "/C=NL/O=GEANT Vereniging/CN=GEANT eScience SSL CA 4",
    "/DC=org/DC=terena/DC=tcs/C=NL/ST=Noord-Holland/O=GEANT Vereniging/CN=GEANT eScience SSL CA 4",
    "/C=UK/O=eScienceCA/OU=Authority/CN=UK e-Science CA 2B",
    "/C=FR/O=MENESR/OU=GRID-FR/CN=AC GRID-FR Services",
    "/DC=org/DC=cilogon/C=US/O=CILogon/CN=CILogon OSG CA 1",
]
LRMS = [("pbs", "torque", "6.1.3"), ("slurm", "slurm", "23.02.7"), ("condor", "condor", "10.9.0"),
        ("lsf", "lsf", "10.1"), ("sge", "sge", "8.1.9")]
QUEUES = ["long", "short", "medium", "grid", "mcore", "prod", "express", "el9", "sl7", "default",
          "gridq", "test", "atlas", "cms", "lhcb", "alice", "himem", "cpu", "batch", "ops"]
CPU_MODELS = [("GenuineIntel", "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 3000),
              ("GenuineIntel", "Intel(R) Xeon(R) CPU E5-2650 v4 @ 2.20GHz", 2200),
              ("AuthenticAMD", "AMD EPYC 7763 64-Core Processor", 2450),
              ("AuthenticAMD", "AMD EPYC 7452 32-Core Processor", 2350),
              ("GenuineIntel", "Intel(R) Xeon(R) Silver 4216 CPU @ 2.10GHz", 2100)]
OSES = [("AlmaLinux", "9.4", "Seafoam Ocelot"), ("CentOS", "7.9.2009", "Core"),
        ("Rocky Linux", "9.3", "Blue Onyx"), ("Scientific Linux", "6.10", "Carbon")]
SYLLABLES = ["ka", "ro", "ne", "ti", "la", "mo", "vi", "sa", "de", "gri", "pho", "nu", "ex",
             "tor", "al", "bre", "cor", "fin", "hal", "ion", "jas", "kel", "lun", "mar", "nor",
             "ost", "per", "qua", "ris", "sel", "tan", "ulm", "ver", "wes", "zen"]
SE_IMPL = {"dCache": ("9.2.18", "/pnfs/{domain}/data"),
           "DPM": ("1.15.2", "/dpm/{domain}/home"),
           "StoRM": ("1.11.22", "/storage"),
           "EOS": ("5.2.21", "/eos/{site}"),
           "xrootd": ("5.6.9", "/xrootd")}


def _escape_rdn(value: str) -> str:
    """RFC 4514 escaping of an attribute value inside a DN."""
    if not value:
        return value
    out = []
    for ch in value:
        if ch in ',+"\\<>;':
            out.append("\\" + ch)
        else:
            out.append(ch)
    if out[0] in ("#", " "):
        out[0] = "\\" + out[0]
    if out[-1] == " ":
        out[-1] = "\\ "
    return "".join(out)


def rdn(attr: str, value: str, parent: str) -> str:
    return f"{attr}={_escape_rdn(value)},{parent}"


# --------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------


def _kinds(n: int) -> list[str]:
    """Site kinds, index order: 't1' (Tier-1-like), 't2' (Tier-2), 'small'."""
    n_t1 = max(1, round(n * 0.04))
    n_t2 = max(1 if n > 1 else 0, round(n * 0.42))
    kinds = ["t1"] * n_t1 + ["t2"] * n_t2
    kinds += ["small"] * (n - len(kinds))
    return kinds[:n]


def _inst_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def _site_identities(n: int, seed: int) -> list[dict]:
    """Names, regions and domains of all sites (cheap, done once per generation)."""
    rng = random.Random(f"gridgen-names:{seed}")
    kinds = _kinds(n)
    used: set[str] = set()
    out = []
    for i, kind in enumerate(kinds):
        region = rng.choice(REGIONS)
        if i % 10 == 1:       # make sure small outputs have non-ASCII place names too
            region = REGIONS[[r[1] for r in REGIONS].index("Switzerland")]
        ngi, country, tld, grid, cities = region
        city = rng.choice(cities) if i % 10 != 1 else cities[0]
        inst = _inst_name(rng)
        cc = CC[country]
        r = rng.random()
        if kind == "t1":
            name = f"{cc}-{inst.upper()}-T1" if r < 0.6 else f"{inst.upper()}-LCG2"
        elif r < 0.30:
            name = f"{cc}-{inst.upper()}-LCG2"
        elif r < 0.55:
            name = f"{cc}-{city[1].upper().replace(' ', '')[:8]}-{inst.upper()}"
        elif r < 0.70 and cc == "UKI":
            name = f"UKI-{rng.choice(['NORTHGRID', 'SOUTHGRID', 'SCOTGRID', 'LT2'])}-{inst.upper()}"
        elif r < 0.80:
            name = f"{inst.upper()}-{cc}"
        elif r < 0.88:
            name = f"{inst}-{rng.choice(['grid', 'hep', 'lcg', 'ce'])}"   # lower-case names exist
        else:
            name = f"{cc}-{inst.upper()}-{rng.choice(['HEP', 'GRID', 'T2', 'T3', 'CLOUD'])}"
        base = name
        k = 2
        while name.lower() in used:
            name = f"{base}-{k}"
            k += 1
        used.add(name.lower())
        dept = rng.choice(["", "", "", "hep.", "grid.", "ph.", "fis."])
        if tld == "ac.uk":
            domain = f"{dept}{inst}.ac.uk"
        elif tld == "edu":
            domain = f"{dept}{inst}.edu"
        else:
            domain = f"{dept}{inst}.{tld}"
        out.append(dict(index=i, kind=kind, name=name, ngi=ngi, country=country, grid=grid,
                        city=city, inst=inst, domain=domain))
    return out


def site_names(sites: int, seed: int = 1) -> list[str]:
    return [s["name"] for s in _site_identities(sites, seed)]


class _Site:
    """Builds the GLUE 1.3 and GLUE 2.0 records of one site."""

    def __init__(self, ident: dict, seed: int):
        self.id = ident
        self.name = ident["name"]
        self.kind = ident["kind"]
        self.domain = ident["domain"]
        self.index = ident["index"]
        self.rng = random.Random(f"gridgen-site:{seed}:{self.index}:{self.name}")
        rng = self.rng
        minute = rng.randrange(60)
        second = rng.randrange(60)
        self.now = f"2026-11-22T10:{minute:02d}:{second:02d}Z"
        self.start = f"2026-11-{rng.randint(1, 21):02d}T{rng.randint(0, 23):02d}:{minute:02d}:00Z"
        self.g1 = f"mds-vo-name={self.name},mds-vo-name=local,o=grid"
        self.g2 = f"GLUE2DomainID={self.name},GLUE2GroupID=grid,o=glue"
        self.res = f"GLUE2GroupID=resource,{self.g2}"
        self.g1recs: list[Record] = []
        self.g2recs: list[Record] = []
        self.special = (self.index % 7 == 1)        # a few sites with odd DNs / values
        self.plain_sa_acbr = rng.random() < 0.35    # older SE publishing plain "<vo>" rules
        self._plan()

    # ---------------------------------------------------------------- plan
    def _plan(self) -> None:
        rng = self.rng
        k = self.kind
        if k == "t1":
            n_lhc = rng.randint(2, 4)
            n_other = rng.randint(8, 12)
            n_ce = rng.randint(4, 7)
            q_range = (4, 6)
            n_se = 2
        elif k == "t2":
            n_lhc = rng.randint(1, 3)
            n_other = rng.randint(4, 10)
            n_ce = rng.randint(2, 4)
            q_range = (3, 6)
            n_se = 1 if rng.random() < 0.6 else 2
        else:
            n_lhc = rng.randint(0, 2)
            n_other = rng.randint(2, 6)
            n_ce = rng.randint(1, 3)
            q_range = (2, 4)
            n_se = 1 if rng.random() < 0.85 else 0
        vos = ["ops", "dteam"] + sorted(rng.sample(LHC_VOS, n_lhc), key=VOS.index)
        vos += sorted(rng.sample(OTHER_VOS, n_other), key=VOS.index)
        self.vos = vos
        nordic = self.id["ngi"] == "NGI_NDGF"
        osg = self.id["grid"] == "OSG"
        self.ces = []
        for c in range(n_ce):
            if nordic:
                flavour = "arc"
            elif osg:
                flavour = "htcondorce"
            else:
                flavour = rng.choices(["cream", "arc", "htcondorce"], [0.45, 0.25, 0.30])[0]
            lrms = ("condor", "condor", "10.9.0") if flavour == "htcondorce" else rng.choice(LRMS)
            prefix = {"cream": "ce", "arc": "arc-ce", "htcondorce": "condor-ce"}[flavour]
            host = f"{prefix}{c + 1:02d}.{self.domain}"
            nq = rng.randint(*q_range)
            queues = []
            for qname in rng.sample(QUEUES, nq):
                others = [v for v in vos if v != "ops"]
                n_qv = max(1, int(len(others) * rng.uniform(0.6, 1.0)))
                qv = ["ops"] + sorted(rng.sample(others, n_qv), key=VOS.index)
                # VO groups (CREAM publishes one VOView / Share per VO and per VOMS FQAN)
                groups = [(vo, vo, f"VO:{vo}") for vo in qv]
                if flavour == "cream":
                    for vo in qv:
                        for role in VOMS_ROLES.get(vo, [])[:rng.randint(0, 2)]:
                            groups.append((f"{vo}_Role_{role}", vo, f"VOMS:/{vo}/Role={role}"))
                queues.append((qname, qv, groups))
            cpu = rng.choice(CPU_MODELS)
            os_ = rng.choice(OSES[:3]) if rng.random() < 0.9 else OSES[3]
            slots = {"t1": rng.randint(4000, 30000), "t2": rng.randint(800, 6000),
                     "small": rng.randint(48, 800)}[k]
            self.ces.append(dict(flavour=flavour, host=host, lrms=lrms, queues=queues, cpu=cpu,
                                 os=os_, slots=slots, n_sub=2 if (k == "t1" and c == 0) else 1))
        self.ses = []
        for s in range(n_se):
            if k == "t1":
                impl = rng.choice(["dCache", "dCache", "EOS", "StoRM"])
            else:
                impl = rng.choices(["dCache", "DPM", "StoRM", "EOS", "xrootd"],
                                   [0.35, 0.3, 0.15, 0.1, 0.1])[0]
            tape = (k == "t1" and s == 1)
            host = f"{'tape' if tape else 'se'}{s + 1:02d}.{self.domain}" if impl != "dCache" \
                else f"{'srm-tape' if tape else 'srm'}{'' if s == 0 else s + 1}.{self.domain}"
            tokens = []
            for vo in vos:
                toks = SPACE_TOKENS.get(vo)
                if toks and k != "small":
                    pool = [t for t in toks if ("TAPE" in t.upper()) == tape] or toks
                    want = {"t1": rng.randint(3, 6), "t2": rng.randint(2, 4)}[k]
                    for t in rng.sample(pool, min(want, len(pool))):
                        tokens.append((vo, t))
                elif not tape:
                    tokens.append((vo, None))
            size = {"t1": rng.randint(5_000_000, 60_000_000), "t2": rng.randint(500_000, 5_000_000),
                    "small": rng.randint(10_000, 400_000)}[k]
            self.ses.append(dict(impl=impl, host=host, tape=tape, tokens=tokens, size=size,
                                 srm=impl in ("dCache", "DPM", "StoRM"),
                                 webdav=impl != "xrootd" and rng.random() < 0.85))
        self.bdii_host = f"site-bdii.{self.domain}"
        self.top_bdii = (self.index % 29 == 0) or (self.index % 53 == 7)
        self.fts = (k == "t1") or (k == "t2" and rng.random() < 0.06)

    # ---------------------------------------------------------------- helpers
    def _g1(self, dn: str, attrs: list[tuple[str, str]]) -> None:
        self.g1recs.append((dn, attrs))

    def _g2(self, dn: str, attrs: list[tuple[str, str]]) -> None:
        self.g2recs.append((dn, attrs))

    def _grids(self) -> list[str]:
        return sorted({self.id["grid"], "WLCG"})

    def _other_info(self) -> list[tuple[str, str]]:
        return [("GLUE2EntityOtherInfo", "InfoProviderName=glite-ce-glue2-provider"),
                ("GLUE2EntityOtherInfo", "InfoProviderVersion=1.2.3"),
                ("GLUE2EntityOtherInfo", f"InfoProviderHost={self.bdii_host}")]

    # ---------------------------------------------------------------- GLUE 1.3
    def build_glue1(self) -> None:
        rng = self.rng
        name, g1, dom = self.name, self.g1, self.domain
        _, city_ascii, lat, lon = self.id["city"]
        self._g1(g1, [("objectClass", "MDS"), ("Mds-Vo-name", name)])
        tier = {"t1": "1", "t2": "2", "small": "3"}[self.kind]
        desc = f"{self.id['grid']} site {name} in {city_ascii}"
        if self.index % 11 == 0:
            desc += " "                         # trailing space -> base64 in LDIF
        site_attrs = [
            ("objectClass", "GlueTop"), ("objectClass", "GlueSite"), ("objectClass", "GlueKey"),
            ("objectClass", "GlueSchemaVersion"),
            ("GlueSiteUniqueID", name), ("GlueSiteName", name), ("GlueSiteDescription", desc),
            ("GlueSiteEmailContact", f"mailto:grid-admin@{dom}"),
            ("GlueSiteUserSupportContact", f"mailto:grid-support@{dom}"),
            ("GlueSiteSysAdminContact", f"mailto:grid-admin@{dom}"),
            ("GlueSiteSecurityContact", f"mailto:security@{dom}"),
            ("GlueSiteLocation", f"{city_ascii}, {self.id['country']}"),
            ("GlueSiteLatitude", f"{lat + rng.uniform(-0.05, 0.05):.4f}"),
            ("GlueSiteLongitude", f"{lon + rng.uniform(-0.05, 0.05):.4f}"),
            ("GlueSiteWeb", f"https://www.{dom}/grid/{name.lower()}/index.html"),
            ("GlueSiteSponsor", "none"),
            *[("GlueSiteOtherInfo", f"GRID={g}") for g in self._grids()],
            ("GlueSiteOtherInfo", f"EGI_NGI={self.id['ngi']}"),
            ("GlueSiteOtherInfo", f"TIER={tier}"),
            ("GlueSiteOtherInfo", f"WLCG_NAME={name}"),
            ("GlueSiteOtherInfo",
             f"WLCG_NAMEICON=https://wlcg-rebus.example.org/icons/{name.lower()}.png"
             f"?institute={self.id['inst']}&country={self.id['country'].replace(' ', '%20')}"),
            ("GlueForeignKey", "GlueSiteUniqueID=" + name),
            ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3"),
        ]
        self._g1(rdn("GlueSiteUniqueID", name, g1), site_attrs)

        se_hosts = [se["host"] for se in self.ses]
        default_se = se_hosts[0] if se_hosts else "none"
        for ce in self.ces:
            self._glue1_cluster(ce)
        for ce in self.ces:
            self._glue1_ces(ce, default_se)
        for se in self.ses:
            self._glue1_se(se)
        for ce in self.ces:
            for qname, *_ in ce["queues"]:
                ceid = self._ceid(ce, qname)
                bg = rdn("GlueCESEBindGroupCEUniqueID", ceid, g1)
                attrs = [("objectClass", "GlueGeneralTop"), ("objectClass", "GlueCESEBindGroup"),
                         ("objectClass", "GlueSchemaVersion"),
                         ("GlueCESEBindGroupCEUniqueID", ceid)]
                attrs += [("GlueCESEBindGroupSEUniqueID", h) for h in se_hosts]
                attrs += [("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
                self._g1(bg, attrs)
                for se in self.ses:
                    self._g1(rdn("GlueCESEBindSEUniqueID", se["host"], bg), [
                        ("objectClass", "GlueGeneralTop"), ("objectClass", "GlueCESEBind"),
                        ("objectClass", "GlueSchemaVersion"),
                        ("GlueCESEBindSEUniqueID", se["host"]),
                        ("GlueCESEBindCEAccesspoint", self._se_path(se)),
                        ("GlueCESEBindCEUniqueID", ceid),
                        ("GlueCESEBindMountInfo", f"{self._se_path(se)} (none)"),
                        ("GlueCESEBindWeight", "0"),
                        ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")])
        self._glue1_services()

    def _ceid(self, ce: dict, queue: str) -> str:
        h = ce["host"]
        if ce["flavour"] == "cream":
            return f"{h}:8443/cream-{ce['lrms'][0]}-{queue}"
        if ce["flavour"] == "arc":
            return f"{h}:2811/nordugrid-{ce['lrms'][1]}-{queue}"
        return f"{h}:9619/htcondorce-condor-{queue}"

    def _se_path(self, se: dict) -> str:
        return SE_IMPL[se["impl"]][1].format(domain=self.domain, site=self.name.lower())

    def _acbr_ce(self, vos: list[str]) -> list[str]:
        rules = []
        for vo in vos:
            rules.append(f"VO:{vo}")
            for role in VOMS_ROLES.get(vo, []):
                rules.append(f"VOMS:/{vo}/Role={role}")
        return rules

    def _glue1_cluster(self, ce: dict) -> None:
        rng = self.rng
        host = ce["host"]
        cl = rdn("GlueClusterUniqueID", host, self.g1)
        attrs = [("objectClass", "GlueClusterTop"), ("objectClass", "GlueCluster"),
                 ("objectClass", "GlueInformationService"), ("objectClass", "GlueKey"),
                 ("objectClass", "GlueSchemaVersion"),
                 ("GlueClusterUniqueID", host), ("GlueClusterName", host),
                 ("GlueClusterService", host),
                 ("GlueForeignKey", f"GlueSiteUniqueID={self.name}")]
        for qname, *_ in ce["queues"]:
            attrs.append(("GlueForeignKey", f"GlueCEUniqueID={self._ceid(ce, qname)}"))
            attrs.append(("GlueClusterService", self._ceid(ce, qname)))
        attrs += [("GlueInformationServiceURL",
                   f"ldap://{host}:2170/mds-vo-name=resource,o=grid"),
                  ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
        self._g1(cl, attrs)
        vendor, model, mhz = ce["cpu"]
        osn, osr, osv = ce["os"]
        for n in range(ce["n_sub"]):
            sid = host if n == 0 else f"{host}-{n}"
            ce.setdefault("subclusters", []).append(sid)
            phys = max(1, ce["slots"] // 64)
            rte = ["GLITE-3_2_0", "R-GMA", "LCG-2", "GLITE-UI", "EMI-3", "UMD-4",
                   "MPI-START", "OPENMPI-4.1.5", "MPICH2", "MULTICORE", "x86_64"]
            for vo in self.vos:
                if vo in ("ops", "dteam"):
                    continue
                for v in range(rng.randint(1, 8 if self.kind != "small" else 3)):
                    rte.append(f"VO-{vo}-{vo.upper().replace('.', '_')}_SW_RELEASE_{v + 1}."
                               f"{rng.randint(0, 20)}.{rng.randint(0, 9)}-x86_64-el9-gcc13-opt")
            sattrs = [("objectClass", "GlueClusterTop"), ("objectClass", "GlueSubCluster"),
                      ("objectClass", "GlueHostApplicationSoftware"),
                      ("objectClass", "GlueHostArchitecture"), ("objectClass", "GlueHostBenchmark"),
                      ("objectClass", "GlueHostMainMemory"),
                      ("objectClass", "GlueHostNetworkAdapter"),
                      ("objectClass", "GlueHostOperatingSystem"),
                      ("objectClass", "GlueHostProcessor"),
                      ("objectClass", "GlueInformationService"), ("objectClass", "GlueKey"),
                      ("objectClass", "GlueSchemaVersion"),
                      ("GlueSubClusterUniqueID", sid), ("GlueSubClusterName", sid),
                      ("GlueSubClusterPhysicalCPUs", str(phys)),
                      ("GlueSubClusterLogicalCPUs", str(ce["slots"])),
                      ("GlueSubClusterTmpDir", "/tmp"), ("GlueSubClusterWNTmpDir", "/scratch")]
            sattrs += [("GlueHostApplicationSoftwareRunTimeEnvironment", t) for t in rte]
            sattrs += [("GlueHostArchitecturePlatformType", "x86_64"),
                       ("GlueHostArchitectureSMPSize", "64"),
                       ("GlueHostBenchmarkSF00", "0"),
                       ("GlueHostBenchmarkSI00", str(rng.randint(2500, 4200))),
                       ("GlueHostMainMemoryRAMSize", str(rng.choice([131072, 262144, 393216]))),
                       ("GlueHostMainMemoryVirtualSize", str(rng.choice([262144, 524288]))),
                       ("GlueHostNetworkAdapterInboundIP", "FALSE"),
                       ("GlueHostNetworkAdapterOutboundIP", "TRUE"),
                       ("GlueHostOperatingSystemName", osn),
                       ("GlueHostOperatingSystemRelease", osr),
                       ("GlueHostOperatingSystemVersion", osv),
                       ("GlueHostProcessorClockSpeed", str(mhz)),
                       ("GlueHostProcessorModel", model), ("GlueHostProcessorVendor", vendor),
                       ("GlueHostProcessorOtherDescription",
                        f"Cores={rng.choice([32, 64, 128])},"
                        f"Benchmark={rng.uniform(10, 25):.2f}-HEP-SPEC06"),
                       ("GlueChunkKey", f"GlueClusterUniqueID={host}"),
                       ("GlueInformationServiceURL",
                        f"ldap://{host}:2170/mds-vo-name=resource,o=grid"),
                       ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
            self._g1(rdn("GlueSubClusterUniqueID", sid, cl), sattrs)

    def _glue1_ces(self, ce: dict, default_se: str) -> None:
        rng = self.rng
        host = ce["host"]
        lrms_jm, lrms_type, lrms_ver = ce["lrms"]
        impl = {"cream": ("CREAM", "1.16.5"), "arc": ("ARC-CE", "6.19.0"),
                "htcondorce": ("HTCondorCE", "23.0.8")}[ce["flavour"]]
        port = {"cream": "8443", "arc": "2811", "htcondorce": "9619"}[ce["flavour"]]
        cream = ce["flavour"] == "cream"
        for qname, qvos, groups in ce["queues"]:
            ceid = self._ceid(ce, qname)
            total = max(1, ce["slots"] // len(ce["queues"]))
            running = rng.randint(0, total)
            waiting = rng.randint(0, total // 2 + 1)
            maxcpu = rng.choice([2880, 4320, 5760, 129600])
            if ce["flavour"] == "cream":
                contact = f"https://{host}:8443/ce-cream/services"
            elif ce["flavour"] == "arc":
                contact = f"gsiftp://{host}:2811/jobs"
            else:
                contact = f"{host}:9619"
            acbr = [g[2] for g in groups] if cream else self._acbr_ce(qvos)
            attrs = [("objectClass", "GlueCETop"), ("objectClass", "GlueCE"),
                     ("objectClass", "GlueCEAccessControlBase"), ("objectClass", "GlueCEInfo"),
                     ("objectClass", "GlueCEPolicy"), ("objectClass", "GlueCEState"),
                     ("objectClass", "GlueInformationService"), ("objectClass", "GlueKey"),
                     ("objectClass", "GlueSchemaVersion"),
                     ("GlueCEUniqueID", ceid), ("GlueCEName", qname),
                     ("GlueCEHostingCluster", host), ("GlueSiteUniqueID", self.name),
                     ("GlueCEImplementationName", impl[0]),
                     ("GlueCEImplementationVersion", impl[1]),
                     ("GlueCECapability", "CPUScalingReferenceSI00=2500"),
                     ("GlueCECapability", f"Share={self.vos[-1]}:10"),
                     ("GlueCEInfoTotalCPUs", str(total)),
                     ("GlueCEInfoLRMSType", lrms_type), ("GlueCEInfoLRMSVersion", lrms_ver),
                     ("GlueCEInfoGRAMVersion", "N/A"),
                     ("GlueCEInfoHostName", host), ("GlueCEInfoGatekeeperPort", port),
                     ("GlueCEInfoContactString", contact),
                     ("GlueCEInfoJobManager", lrms_jm),
                     ("GlueCEInfoApplicationDir", "/cvmfs"),
                     ("GlueCEInfoDataDir", "unset"), ("GlueCEInfoDefaultSE", default_se),
                     ("GlueCEStateRunningJobs", str(running)),
                     ("GlueCEStateWaitingJobs", str(waiting)),
                     ("GlueCEStateTotalJobs", str(running + waiting)),
                     ("GlueCEStateStatus", rng.choices(["Production", "Draining", "Closed"],
                                                        [0.92, 0.05, 0.03])[0]),
                     ("GlueCEStateWorstResponseTime", str(rng.randint(0, 2146660842))),
                     ("GlueCEStateEstimatedResponseTime", str(rng.randint(0, 86400))),
                     ("GlueCEStateFreeCPUs", str(total - running)),
                     ("GlueCEStateFreeJobSlots", str(total - running)),
                     ("GlueCEPolicyPriority", "1"),
                     ("GlueCEPolicyMaxRunningJobs", str(total)),
                     ("GlueCEPolicyMaxTotalJobs", str(total * 4)),
                     ("GlueCEPolicyMaxCPUTime", str(maxcpu)),
                     ("GlueCEPolicyMaxWallClockTime", str(maxcpu * 2)),
                     ("GlueCEPolicyMaxObtainableCPUTime", str(maxcpu)),
                     ("GlueCEPolicyMaxObtainableWallClockTime", str(maxcpu * 2)),
                     ("GlueCEPolicyMaxWaitingJobs", "999999999"),
                     ("GlueCEPolicyMaxSlotsPerJob", str(rng.choice([1, 8, 64]))),
                     ("GlueCEPolicyAssignedJobSlots", str(total)),
                     ("GlueCEPolicyPreemption", "0")]
            attrs += [("GlueCEAccessControlBaseRule", r) for r in acbr]
            attrs += [("GlueForeignKey", f"GlueClusterUniqueID={host}"),
                      ("GlueInformationServiceURL",
                       f"ldap://{host}:2170/mds-vo-name=resource,o=grid"),
                      ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
            cedn = rdn("GlueCEUniqueID", ceid, self.g1)
            self._g1(cedn, attrs)
            views = groups if cream else [(vo, vo, None) for vo in qvos]
            for localid, vo, rule in views:
                vr = rng.randint(0, max(1, running // len(views)))
                vw = rng.randint(0, max(1, waiting // len(views)))
                vattrs = [("objectClass", "GlueCETop"), ("objectClass", "GlueVOView"),
                          ("objectClass", "GlueCEInfo"), ("objectClass", "GlueCEState"),
                          ("objectClass", "GlueCEAccessControlBase"),
                          ("objectClass", "GlueCEPolicy"), ("objectClass", "GlueKey"),
                          ("objectClass", "GlueSchemaVersion"),
                          ("GlueVOViewLocalID", localid),
                          ("GlueCEStateRunningJobs", str(vr)),
                          ("GlueCEStateWaitingJobs", str(vw)),
                          ("GlueCEStateTotalJobs", str(vr + vw)),
                          ("GlueCEStateFreeJobSlots", str(max(0, total - running))),
                          ("GlueCEStateEstimatedResponseTime", str(rng.randint(0, 86400))),
                          ("GlueCEInfoDefaultSE", default_se),
                          ("GlueCEInfoApplicationDir", f"/cvmfs/{vo}"),
                          ("GlueCEPolicyMaxCPUTime", str(maxcpu)),
                          ("GlueCEPolicyMaxWallClockTime", str(maxcpu * 2))]
                vattrs += [("GlueCEAccessControlBaseRule", r)
                           for r in ([rule] if rule else self._acbr_ce([vo]))]
                vattrs += [("GlueChunkKey", f"GlueCEUniqueID={ceid}"),
                           ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
                self._g1(rdn("GlueVOViewLocalID", localid, cedn), vattrs)

    def _sa_id(self, se: dict, vo: str, token: str | None) -> str:
        if token is None:
            return vo
        if se["impl"] == "dCache":
            return f"{token}:{'custodial:nearline' if se['tape'] else 'replica:online'}"
        return f"{vo}:{token}"

    def _glue1_se(self, se: dict) -> None:
        rng = self.rng
        host = se["host"]
        version, _ = SE_IMPL[se["impl"]]
        path = self._se_path(se)
        size = se["size"]
        used = int(size * rng.uniform(0.3, 0.9))
        sedn = rdn("GlueSEUniqueID", host, self.g1)
        arch = "tape" if se["tape"] else (
            "multidisk" if se["impl"] in ("dCache", "EOS") else "disk")
        self._g1(sedn, [
            ("objectClass", "GlueSETop"), ("objectClass", "GlueSE"),
            ("objectClass", "GlueInformationService"), ("objectClass", "GlueKey"),
            ("objectClass", "GlueSchemaVersion"),
            ("GlueSEUniqueID", host), ("GlueSEName", f"{self.name}:{se['impl'].lower()}"),
            ("GlueSEArchitecture", arch), ("GlueSEPort", "8446" if se["srm"] else "1094"),
            ("GlueSEImplementationName", se["impl"]),
            ("GlueSEImplementationVersion", version),
            ("GlueSEStatus",
             rng.choices(["Production", "Queuing", "Closed"], [0.95, 0.03, 0.02])[0]),
            ("GlueSESizeTotal", str(size)), ("GlueSESizeFree", str(size - used)),
            ("GlueSETotalOnlineSize", str(0 if se["tape"] else size)),
            ("GlueSEUsedOnlineSize", str(0 if se["tape"] else used)),
            ("GlueSETotalNearlineSize", str(size if se["tape"] else 0)),
            ("GlueSEUsedNearlineSize", str(used if se["tape"] else 0)),
            ("GlueForeignKey", f"GlueSiteUniqueID={self.name}"),
            ("GlueInformationServiceURL",
             f"ldap://{self.bdii_host}:2170/mds-vo-name={self.name},o=grid"),
            ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")])
        ntok = max(1, len(se["tokens"]))
        for vo, token in se["tokens"]:
            said = self._sa_id(se, vo, token)
            total = size // ntok
            free = int(total * rng.uniform(0.05, 0.7))
            rules = [f"VO:{vo}"]
            if self.plain_sa_acbr:
                rules = [vo] if rng.random() < 0.5 else [vo, f"VO:{vo}"]
            sapath = f"{path}/{vo}" + (f"/{token.lower()}" if token else "")
            sadn = rdn("GlueSALocalID", said, sedn)
            attrs = [("objectClass", "GlueSATop"), ("objectClass", "GlueSA"),
                     ("objectClass", "GlueSAPolicy"), ("objectClass", "GlueSAState"),
                     ("objectClass", "GlueSAAccessControlBase"), ("objectClass", "GlueKey"),
                     ("objectClass", "GlueSchemaVersion"),
                     ("GlueSALocalID", said), ("GlueSAName", f"{said} at {host}"),
                     ("GlueSAPath", sapath), ("GlueSAType", "permanent"),
                     ("GlueSARetentionPolicy", "custodial" if se["tape"] else "replica"),
                     ("GlueSAAccessLatency", "nearline" if se["tape"] else "online"),
                     ("GlueSAExpirationMode", "neverExpire"),
                     ("GlueSACapability", "InstalledCapacity=" + str(total)),
                     ("GlueSACapability",
                      "InstalledOnlineCapacity=" + str(0 if se["tape"] else total)),
                     ("GlueSATotalOnlineSize", str(0 if se["tape"] else total)),
                     ("GlueSAUsedOnlineSize", str(0 if se["tape"] else total - free)),
                     ("GlueSAFreeOnlineSize", str(0 if se["tape"] else free)),
                     ("GlueSAReservedOnlineSize", "0"),
                     ("GlueSATotalNearlineSize", str(total if se["tape"] else 0)),
                     ("GlueSAUsedNearlineSize", str(total - free if se["tape"] else 0)),
                     ("GlueSAFreeNearlineSize", str(free if se["tape"] else 0)),
                     ("GlueSAReservedNearlineSize", "0"),
                     ("GlueSAStateAvailableSpace", str(free * 1_000_000)),
                     ("GlueSAStateUsedSpace", str((total - free) * 1_000_000)),
                     ("GlueSAPolicyFileLifeTime", "permanent")]
            attrs += [("GlueSAAccessControlBaseRule", r) for r in rules]
            attrs += [("GlueChunkKey", f"GlueSEUniqueID={host}"),
                      ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
            self._g1(sadn, attrs)
            if token is not None or se["impl"] in ("DPM", "StoRM"):
                vid = f"{vo}:{token}" if token else f"{vo}:default"
                iattrs = [("objectClass", "GlueSATop"), ("objectClass", "GlueVOInfo"),
                          ("objectClass", "GlueKey"), ("objectClass", "GlueSchemaVersion"),
                          ("GlueVOInfoLocalID", vid), ("GlueVOInfoName", vid),
                          ("GlueVOInfoPath", sapath)]
                if token:
                    iattrs.append(("GlueVOInfoTag", token))
                iattrs += [("GlueVOInfoAccessControlBaseRule", r) for r in rules]
                if vo in VOMS_ROLES and token:
                    iattrs.append(("GlueVOInfoAccessControlBaseRule",
                                   f"VOMS:/{vo}/Role={VOMS_ROLES[vo][0]}"))
                iattrs += [("GlueChunkKey", f"GlueSALocalID={said}"),
                           ("GlueChunkKey", f"GlueSEUniqueID={host}"),
                           ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
                self._g1(rdn("GlueVOInfoLocalID", vid, sadn), iattrs)
        protos = [("gsiftp", "gsiftp", 2811, "1.0.0")]
        if se["impl"] in ("dCache", "EOS", "xrootd", "DPM"):
            protos.append(("xroot", "xroot", 1094, "5.6"))
        if se["webdav"]:
            protos.append(("https", "https", 443, "1.1"))
            protos.append(("webdav", "webdav", 443, "1.1"))
        if se["impl"] == "dCache":
            protos.append(("dcap", "dcap", 22125, "1.2.42"))
            protos.append(("gsidcap", "gsidcap", 22128, "1.2.42"))
        if se["impl"] == "DPM":
            protos.append(("rfio", "rfio", 5001, "1.0.0"))
        if se["impl"] == "StoRM":
            protos.append(("file", "file", 0, "1.0.0"))
        for lid, ptype, pport, pver in protos:
            self._g1(rdn("GlueSEAccessProtocolLocalID", lid, sedn), [
                ("objectClass", "GlueSETop"), ("objectClass", "GlueSEAccessProtocol"),
                ("objectClass", "GlueKey"), ("objectClass", "GlueSchemaVersion"),
                ("GlueSEAccessProtocolLocalID", lid), ("GlueSEAccessProtocolType", ptype),
                ("GlueSEAccessProtocolEndpoint",
                 f"{ptype}://{host}:{pport}" if pport else "file://"),
                ("GlueSEAccessProtocolPort", str(pport)),
                ("GlueSEAccessProtocolVersion", pver),
                ("GlueSEAccessProtocolCapability", "file transfer"),
                ("GlueSEAccessProtocolMaxStreams", "10"),
                ("GlueSEAccessProtocolSupportedSecurity", "GSI"),
                ("GlueSEAccessProtocolSupportedSecurity", "X509"),
                ("GlueChunkKey", f"GlueSEUniqueID={host}"),
                ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")])
        ctrl = []
        if se["srm"]:
            ctrl.append(("srm_v2", "SRM", "2.2.0", f"httpg://{host}:8446/srm/managerv2"))
        if se["impl"] in ("EOS", "xrootd", "dCache"):
            ctrl.append(("xroot", "xroot", "5.6", f"root://{host}:1094"))
        for lid, ctype, cver, cep in ctrl:
            self._g1(rdn("GlueSEControlProtocolLocalID", lid, sedn), [
                ("objectClass", "GlueSETop"), ("objectClass", "GlueSEControlProtocol"),
                ("objectClass", "GlueKey"), ("objectClass", "GlueSchemaVersion"),
                ("GlueSEControlProtocolLocalID", lid), ("GlueSEControlProtocolType", ctype),
                ("GlueSEControlProtocolVersion", cver),
                ("GlueSEControlProtocolEndpoint", cep),
                ("GlueSEControlProtocolCapability", "control"),
                ("GlueChunkKey", f"GlueSEUniqueID={host}"),
                ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")])

    def _services_list(self) -> list[dict]:
        """Services of the site, shared by the GLUE 1.3 and GLUE 2.0 renderings."""
        svcs = []
        for ce in self.ces:
            h = ce["host"]
            if ce["flavour"] == "cream":
                svcs.append(dict(type="org.glite.ce.CREAM", host=h, version="1.16.5",
                                 endpoint=f"https://{h}:8443/ce-cream/services", ce=ce))
            elif ce["flavour"] == "arc":
                svcs.append(dict(type="ARC-CE", host=h, version="6.19.0",
                                 endpoint=f"gsiftp://{h}:2811/jobs", ce=ce))
            else:
                svcs.append(dict(type="HTCondorCE", host=h, version="23.0.8",
                                 endpoint=f"htcondor://{h}:9619", ce=ce))
        for se in self.ses:
            h = se["host"]
            if se["srm"]:
                svcs.append(dict(type="srm", host=h, version="2.2.0",
                                 endpoint=f"httpg://{h}:8446/srm/managerv2", se=se))
            if se["impl"] in ("EOS", "xrootd", "dCache"):
                svcs.append(dict(type="xroot", host=h, version="5.6.9",
                                 endpoint=f"root://{h}:1094/", se=se))
            if se["webdav"]:
                svcs.append(dict(type="webdav", host=h, version="1.1",
                                 endpoint=f"https://{h}:443{self._se_path(se)}", se=se))
        svcs.append(dict(type="bdii_site", host=self.bdii_host, version="6.0.3",
                         endpoint=f"ldap://{self.bdii_host}:2170/mds-vo-name={self.name},o=grid"))
        if self.top_bdii:
            th = f"top-bdii.{self.domain}"
            svcs.append(dict(type="bdii_top", host=th, version="6.0.3",
                             endpoint=f"ldap://{th}:2170/mds-vo-name=local,o=grid"))
        if self.fts:
            fh = f"fts3.{self.domain}"
            svcs.append(dict(type="org.glite.FileTransfer", host=fh, version="3.12.10",
                             endpoint=f"https://{fh}:8446/services/FileTransfer"))
        return svcs

    def _glue1_services(self) -> None:
        rng = self.rng
        ca = CA_DNS[self.index % len(CA_DNS)]
        for n, s in enumerate(self._services_list()):
            h, stype = s["host"], s["type"]
            if stype == "srm":
                uid = s["endpoint"]
            else:
                uid = f"{h}_{stype}_{1000000000 + (self.index * 7919 + n * 104729) % 999999999}"
            vos = self.vos if stype not in ("bdii_site", "bdii_top") else []
            if "ce" in s:
                vos = sorted({v for _, qv, _ in s["ce"]["queues"] for v in qv}, key=VOS.index)
            maj, mn, patch = (s["version"].split(".") + ["0", "0"])[:3]
            sdn = rdn("GlueServiceUniqueID", uid, self.g1)
            attrs = [("objectClass", "GlueTop"), ("objectClass", "GlueService"),
                     ("objectClass", "GlueKey"), ("objectClass", "GlueSchemaVersion"),
                     ("GlueServiceUniqueID", uid), ("GlueServiceName", f"{self.name}-{stype}"),
                     ("GlueServiceType", stype), ("GlueServiceVersion", s["version"]),
                     ("GlueServiceEndpoint", s["endpoint"]), ("GlueServiceURI", s["endpoint"]),
                     ("GlueServiceAccessPointURL", s["endpoint"]),
                     ("GlueServiceStatus", rng.choices(["OK", "Warning", "Critical", "Unknown"],
                                                       [0.9, 0.04, 0.03, 0.03])[0]),
                     ("GlueServiceStatusInfo", f"{stype} on {h}: service is running"),
                     ("GlueServiceWSDL", "unknown"), ("GlueServiceSemantics", "unknown"),
                     ("GlueServiceStartTime", self.start),
                     ("GlueServiceOwner", vos[0] if vos else "ops"),
                     ("GlueServiceMajorVersion", maj), ("GlueServiceMinorVersion", mn),
                     ("GlueServicePatchVersion", patch)]
            attrs += [("GlueServiceAccessControlBaseRule", f"VO:{v}") for v in vos]
            attrs += [("GlueServiceAccessControlRule", v) for v in vos]
            attrs += [("GlueForeignKey", f"GlueSiteUniqueID={self.name}"),
                      ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")]
            self._g1(sdn, attrs)
            data = [("glite-info-service_version", "1.0"),
                    ("glite-info-service_hostname", h),
                    ("HostDN", f"/DC=org/DC=terena/DC=tcs/C={CC[self.id['country']][:2]}"
                               f"/L={self.id['city'][1]}/O={self.id['inst'].title()} Institute"
                               f"/CN={h}"),
                    ("IssuerCA", ca)]
            if stype in ("srm", "webdav", "xroot"):
                data.append(("SupportedProtocols", "gsiftp xroot https"))
            if self.special and n < 3:
                data.append(("contact, backup", f"mailto:backup-admin@{self.domain}"))
                data.append(("gsiftp+xroot", "enabled"))
                data.append(("Service Owner", f"{self.name} operations team"))
                data.append(("weight;priority", "10;1"))
            if self.index % 13 == 1 and n == 0:
                data.append(("StatusText", "first line\nsecond line"))  # newline -> base64
            for key, val in data:
                self._g1(rdn("GlueServiceDataKey", key, sdn), [
                    ("objectClass", "GlueTop"), ("objectClass", "GlueServiceData"),
                    ("objectClass", "GlueKey"), ("objectClass", "GlueSchemaVersion"),
                    ("GlueServiceDataKey", key), ("GlueServiceDataValue", val),
                    ("GlueChunkKey", f"GlueServiceUniqueID={uid}"),
                    ("GlueSchemaVersionMajor", "1"), ("GlueSchemaVersionMinor", "3")])

    # ---------------------------------------------------------------- GLUE 2.0
    def build_glue2(self) -> None:
        rng = self.rng
        name, g2, now = self.name, self.g2, self.now
        city_utf8, _, lat, lon = self.id["city"]
        tier = {"t1": "1", "t2": "2", "small": "3"}[self.kind]
        self._g2(g2, [
            ("objectClass", "GLUE2Domain"), ("objectClass", "GLUE2AdminDomain"),
            ("GLUE2DomainID", name), ("GLUE2EntityName", name),
            ("GLUE2EntityCreationTime", now), ("GLUE2EntityValidity", "3600"),
            ("GLUE2DomainDescription",
             f"{self.id['inst'].title()} grid site in {city_utf8}, {self.id['country']}"),
            ("GLUE2DomainWWW", f"https://www.{self.domain}/grid/"),
            ("GLUE2AdminDomainDistributed", "FALSE"),
            ("GLUE2AdminDomainOwner", self.id["ngi"]),
            ("GLUE2EntityOtherInfo", f"EGI_NGI={self.id['ngi']}"),
            *[("GLUE2EntityOtherInfo", f"GRID={g}") for g in self._grids()],
            ("GLUE2EntityOtherInfo", f"WLCG_TIER={tier}"),
            ("GLUE2EntityOtherInfo", f"WLCG_NAME={name}"),
            ("GLUE2EntityOtherInfo", f"BLOG=https://blog.{self.domain}/grid-operations/"
                                     f"status-and-downtimes/{name.lower()}/rss.xml")])
        self._g2(rdn("GLUE2LocationID", name, g2), [
            ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Location"),
            ("GLUE2LocationID", name), ("GLUE2EntityName", f"{name} location"),
            ("GLUE2EntityCreationTime", now),
            ("GLUE2LocationAddress", f"{self.id['inst'].title()} Physics Department, {city_utf8}"),
            ("GLUE2LocationPlace", city_utf8), ("GLUE2LocationCountry", self.id["country"]),
            ("GLUE2LocationPostCode", str(rng.randint(10000, 99999))),
            ("GLUE2LocationLatitude", f"{lat:.4f}"), ("GLUE2LocationLongitude", f"{lon:.4f}"),
            ("GLUE2LocationDomainForeignKey", name)])
        for ctype, who in [("sysadmin", "grid-admin"), ("security", "security"),
                           ("usersupport", "grid-support")]:
            cid = f"{name}_{ctype}"
            self._g2(rdn("GLUE2ContactID", cid, g2), [
                ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Contact"),
                ("GLUE2ContactID", cid), ("GLUE2EntityCreationTime", now),
                ("GLUE2EntityName", f"{ctype} contact of {name}"),
                ("GLUE2ContactDetail", f"mailto:{who}@{self.domain}"),
                ("GLUE2ContactType", ctype), ("GLUE2ContactDomainForeignKey", name)])
        self._g2(self.res, [("objectClass", "GLUE2Group"), ("GLUE2GroupID", "resource")])
        for ce in self.ces:
            self._glue2_compute(ce)
        for se in self.ses:
            self._glue2_storage(se)
        self._glue2_simple_services()

    def _endpoint(self, svc_id: str, svc_dn: str, ep_id: str, url: str, iface: str,
                  iface_ver: str, impl: str, impl_ver: str, caps: list[str], oc: str,
                  policy_rules: list[str] | None, extra: list[tuple[str, str]] = (),
                  scheme: str = "org.glite.standard") -> None:
        rng = self.rng
        health = rng.choices(["ok", "warning", "critical", "unknown"], [0.9, 0.04, 0.03, 0.03])[0]
        ca = CA_DNS[(self.index + len(ep_id)) % len(CA_DNS)]
        attrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Endpoint")]
        if oc:
            attrs.append(("objectClass", oc))
        attrs += [("GLUE2EndpointID", ep_id), ("GLUE2EntityName", ep_id),
                  ("GLUE2EntityCreationTime", self.now), ("GLUE2EntityValidity", "3600"),
                  ("GLUE2EndpointURL", url)]
        attrs += [("GLUE2EndpointCapability", c) for c in caps]
        attrs += [("GLUE2EndpointTechnology", "webservice"),
                  ("GLUE2EndpointInterfaceName", iface),
                  ("GLUE2EndpointInterfaceVersion", iface_ver),
                  ("GLUE2EndpointImplementor", impl.split()[0]),
                  ("GLUE2EndpointImplementationName", impl),
                  ("GLUE2EndpointImplementationVersion", impl_ver),
                  ("GLUE2EndpointQualityLevel", "production"),
                  ("GLUE2EndpointHealthState", health),
                  ("GLUE2EndpointHealthStateInfo",
                   f"{iface} endpoint {url} checked by the information provider: {health}"),
                  ("GLUE2EndpointServingState", "production" if health != "critical" else "closed"),
                  ("GLUE2EndpointStartTime", self.start),
                  ("GLUE2EndpointIssuerCA", ca),
                  ("GLUE2EndpointTrustedCA", "IGTF"),
                  ("GLUE2EndpointDowntimeInfo",
                   "See the GOC DB for downtimes: "
                   "https://goc.egi.eu/portal/index.php?Page_Type=Downtimes"),
                  ("GLUE2EndpointServiceForeignKey", svc_id)]
        attrs += list(extra)
        attrs += self._other_info()
        ep_dn = rdn("GLUE2EndpointID", ep_id, svc_dn)
        self._g2(ep_dn, attrs)
        if policy_rules:
            pid = f"{ep_id}_Policy"
            pattrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Policy"),
                      ("objectClass", "GLUE2AccessPolicy"),
                      ("GLUE2PolicyID", pid), ("GLUE2EntityCreationTime", self.now),
                      ("GLUE2EntityName", f"Access control rules for Endpoint {ep_id}"),
                      ("GLUE2PolicyScheme", scheme)]
            pattrs += [("GLUE2PolicyRule", r) for r in policy_rules]
            pattrs += [("GLUE2PolicyUserDomainForeignKey", r.split(":", 1)[-1])
                       for r in policy_rules if r.lower().startswith("vo:")]
            pattrs.append(("GLUE2AccessPolicyEndpointForeignKey", ep_id))
            self._g2(rdn("GLUE2PolicyID", pid, ep_dn), pattrs)

    def _glue2_service(self, svc_id: str, stype: str, oc: str | None, caps: list[str],
                       extra: list[tuple[str, str]] = ()) -> str:
        attrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Service")]
        if oc:
            attrs.append(("objectClass", oc))
        attrs += [("GLUE2ServiceID", svc_id), ("GLUE2EntityName", svc_id),
                  ("GLUE2EntityCreationTime", self.now), ("GLUE2EntityValidity", "3600"),
                  ("GLUE2ServiceType", stype), ("GLUE2ServiceQualityLevel", "production"),
                  ("GLUE2ServiceComplexity", "endpointType=1, share=1, resource=1")]
        attrs += [("GLUE2ServiceCapability", c) for c in caps]
        attrs += [("GLUE2ServiceAdminDomainForeignKey", self.name)]
        attrs += list(extra)
        attrs += self._other_info()
        dn = rdn("GLUE2ServiceID", svc_id, self.res)
        self._g2(dn, attrs)
        return dn

    def _glue2_compute(self, ce: dict) -> None:
        rng = self.rng
        h, fl = ce["host"], ce["flavour"]
        _, lrms_type, lrms_ver = ce["lrms"]
        all_vos = sorted({v for _, qv, _ in ce["queues"] for v in qv}, key=VOS.index)
        if fl == "cream":
            sid = f"{h}_ComputingElement"
            stype = "org.glite.ce.CREAM"
            mid = f"{sid}_Manager"
        elif fl == "arc":
            sid = f"urn:ogf:ComputingService:{h}:arex"
            stype = "org.nordugrid.arex"
            mid = f"urn:ogf:ComputingManager:{h}:{lrms_type}"
        else:
            sid = f"{h}_HTCondorCE"
            stype = "org.opensciencegrid.htcondorce"
            mid = f"{sid}_Manager"
        total_jobs = sum(rng.randint(0, 500) for _ in ce["queues"])
        running_jobs, waiting_jobs = total_jobs // 2, total_jobs - total_jobs // 2
        sdn = self._glue2_service(sid, stype, "GLUE2ComputingService",
                                  ["executionmanagement.jobexecution"],
                                  [("GLUE2ComputingServiceTotalJobs", str(total_jobs)),
                                   ("GLUE2ComputingServiceRunningJobs", str(running_jobs)),
                                   ("GLUE2ComputingServiceWaitingJobs", str(waiting_jobs))])
        rules = [f"VO:{v}" for v in all_vos]
        eps = []
        if fl == "cream":
            eps.append((f"{h}_org.glite.ce.CREAM", f"https://{h}:8443/ce-cream/services",
                        "org.glite.ce.CREAM", "2.0", "CREAM", "1.16.5", rules,
                        "org.glite.standard"))
        elif fl == "arc":
            arules = [f"vo:{v}" for v in all_vos]
            eps.append((f"urn:ogf:ComputingEndpoint:{h}:emies:https://{h}:443/arex",
                        f"https://{h}:443/arex", "org.nordugrid.arex", "1.0", "nordugrid-arc",
                        "6.19.0", arules, "basic"))
            eps.append((f"urn:ogf:ComputingEndpoint:{h}:gridftpjob:gsiftp://{h}:2811/jobs",
                        f"gsiftp://{h}:2811/jobs", "org.nordugrid.gridftpjob", "1.0",
                        "nordugrid-arc", "6.19.0", arules, "basic"))
            eps.append((f"urn:ogf:ComputingEndpoint:{h}:ldapglue2:ldap://{h}:2135/o=glue",
                        f"ldap://{h}:2135/o=glue", "org.nordugrid.ldapglue2", "1.0",
                        "nordugrid-arc", "6.19.0", None, "basic"))
        else:
            eps.append((f"{h}_HTCondorCE", f"condor://{h}:9619", "org.opensciencegrid.htcondorce",
                        "23.0", "HTCondorCE", "23.0.8", rules, "org.glite.standard"))
        ep_ids = []
        for ep_id, url, iface, iv, impl, impv, prules, scheme in eps:
            ep_ids.append(ep_id)
            self._endpoint(sid, sdn, ep_id, url, iface, iv, impl, impv,
                           ["executionmanagement.jobexecution", "executionmanagement.jobmanager"],
                           "GLUE2ComputingEndpoint", prules,
                           [("GLUE2ComputingEndpointStaging",
                             "staginginout" if fl == "arc" else "none"),
                            ("GLUE2ComputingEndpointJobDescription",
                             "nordugrid:xrsl" if fl == "arc" else "glite:jdl"),
                            ("GLUE2ComputingEndpointRunningJobs", str(running_jobs)),
                            ("GLUE2ComputingEndpointWaitingJobs", str(waiting_jobs)),
                            ("GLUE2ComputingEndpointTotalJobs", str(total_jobs)),
                            ("GLUE2ComputingEndpointComputingServiceForeignKey", sid)],
                           scheme)
        # manager
        mdn = rdn("GLUE2ManagerID", mid, sdn)
        self._g2(mdn, [
            ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Manager"),
            ("objectClass", "GLUE2ComputingManager"),
            ("GLUE2ManagerID", mid), ("GLUE2EntityName", f"{lrms_type} manager of {h}"),
            ("GLUE2EntityCreationTime", self.now),
            ("GLUE2ManagerProductName", lrms_type), ("GLUE2ManagerProductVersion", lrms_ver),
            ("GLUE2ComputingManagerReservation", "FALSE"),
            ("GLUE2ComputingManagerBulkSubmission", "FALSE"),
            ("GLUE2ComputingManagerTotalPhysicalCPUs", str(max(1, ce["slots"] // 64))),
            ("GLUE2ComputingManagerTotalLogicalCPUs", str(ce["slots"])),
            ("GLUE2ComputingManagerTotalSlots", str(ce["slots"])),
            ("GLUE2ComputingManagerSlotsUsedByGridJobs", str(rng.randint(0, ce["slots"]))),
            ("GLUE2ComputingManagerSlotsUsedByLocalJobs", "0"),
            ("GLUE2ComputingManagerHomogeneous", "TRUE"),
            ("GLUE2ComputingManagerWorkingAreaShared", "FALSE"),
            ("GLUE2ComputingManagerWorkingAreaTotal", str(rng.randint(1000, 100000))),
            ("GLUE2ComputingManagerWorkingAreaFree", str(rng.randint(100, 1000))),
            ("GLUE2ComputingManagerTmpDir", "/tmp"),
            ("GLUE2ComputingManagerScratchDir", "/scratch"),
            ("GLUE2ComputingManagerApplicationDir", "/cvmfs"),
            ("GLUE2ManagerServiceForeignKey", sid),
            ("GLUE2ComputingManagerComputingServiceForeignKey", sid)] + self._other_info())
        # execution environments (CREAM/HTCondor: under the service; ARC: same)
        vendor, model, mhz = ce["cpu"]
        osn, osr, _ = ce["os"]
        res_ids = []
        for n, sub in enumerate(ce.get("subclusters", [h])):
            rid = f"urn:ogf:ExecutionEnvironment:{h}:execenv{n}" if fl == "arc" else sub
            res_ids.append(rid)
            rdn_ = rdn("GLUE2ResourceID", rid, sdn)
            self._g2(rdn_, [
                ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Resource"),
                ("objectClass", "GLUE2ExecutionEnvironment"),
                ("GLUE2ResourceID", rid), ("GLUE2EntityName", rid),
                ("GLUE2EntityCreationTime", self.now), ("GLUE2EntityValidity", "3600"),
                ("GLUE2ResourceManagerForeignKey", mid),
                ("GLUE2ExecutionEnvironmentPlatform", "x86_64"),
                ("GLUE2ExecutionEnvironmentTotalInstances", str(max(1, ce["slots"] // 64))),
                ("GLUE2ExecutionEnvironmentPhysicalCPUs", str(max(1, ce["slots"] // 64))),
                ("GLUE2ExecutionEnvironmentLogicalCPUs", str(ce["slots"])),
                ("GLUE2ExecutionEnvironmentCPUMultiplicity", "multicpu-multicore"),
                ("GLUE2ExecutionEnvironmentCPUVendor", vendor),
                ("GLUE2ExecutionEnvironmentCPUModel", model),
                ("GLUE2ExecutionEnvironmentCPUClockSpeed", str(mhz)),
                ("GLUE2ExecutionEnvironmentMainMemorySize", str(rng.choice([131072, 262144]))),
                ("GLUE2ExecutionEnvironmentVirtualMemorySize", str(rng.choice([262144, 524288]))),
                ("GLUE2ExecutionEnvironmentOSFamily", "linux"),
                ("GLUE2ExecutionEnvironmentOSName", osn),
                ("GLUE2ExecutionEnvironmentOSVersion", osr),
                ("GLUE2ExecutionEnvironmentConnectivityIn", "FALSE"),
                ("GLUE2ExecutionEnvironmentConnectivityOut", "TRUE"),
                ("GLUE2ExecutionEnvironmentCPUTimeScalingFactor", f"{rng.uniform(0.8, 1.4):.2f}"),
                ("GLUE2ExecutionEnvironmentWallTimeScalingFactor", "1"),
                ("GLUE2ExecutionEnvironmentComputingManagerForeignKey", mid),
                ("GLUE2EntityOtherInfo", "SmpSize=64"),
                ("GLUE2EntityOtherInfo", f"Cores={rng.choice([32, 64, 128])}")]
                + self._other_info())
            # a few application environments (ARC runtime environments, CREAM tags)
            n_app = {"t1": 4, "t2": 2, "small": 1}[self.kind] if (fl == "arc" or n == 0) else 0
            for a in range(n_app):
                app = rng.choice(["ENV/PROXY", "ENV/GLITE", "APPS/HEP/ATLAS-SITE",
                                  "ENV/SINGULARITY", "APPS/HEP/CMS-CVMFS", "ENV/RTE-MULTICORE",
                                  "VO-biomed-GATE"])
                aid = f"urn:ogf:ApplicationEnvironment:{h}:rte{n}{a}" if fl == "arc" \
                    else f"{app.replace('/', '-')}_{a}_{rid}"
                self._g2(rdn("GLUE2ApplicationEnvironmentID", aid, rdn_), [
                    ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2ApplicationEnvironment"),
                    ("GLUE2ApplicationEnvironmentID", aid), ("GLUE2EntityCreationTime", self.now),
                    ("GLUE2EntityValidity", "3600"),
                    ("GLUE2ApplicationEnvironmentAppName", app),
                    ("GLUE2ApplicationEnvironmentAppVersion",
                     f"{rng.randint(1, 5)}.{rng.randint(0, 9)}"),
                    ("GLUE2ApplicationEnvironmentState", "installednotverified"),
                    ("GLUE2ApplicationEnvironmentComputingManagerForeignKey", mid),
                    ("GLUE2ApplicationEnvironmentExecutionEnvironmentForeignKey", rid)])
        # shares + mapping policies, per queue and VO
        for qname, qvos, groups in ce["queues"]:
            if fl == "cream":     # one share per VO group (VO or VOMS FQAN), as CREAM does
                shares = [(f"{qname}_{norm}_{sid}", norm, vo, [rule]) for norm, vo, rule in groups]
            elif fl == "arc":     # one share per queue, one policy listing the VOs
                shares = [(f"urn:ogf:ComputingShare:{h}:{qname}", qname, None,
                           [f"vo:{v}" for v in qvos])]
            else:
                shares = [(f"{h}_{qname}_{vo}", vo, vo, [f"VO:{vo}"]) for vo in qvos]
            for shid, norm, vo, prules in shares:
                running = rng.randint(0, 400)
                waiting = rng.randint(0, 200)
                maxwall = rng.choice([172800, 259200, 345600])
                shdn = rdn("GLUE2ShareID", shid, sdn)
                attrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Share"),
                         ("objectClass", "GLUE2ComputingShare"),
                         ("GLUE2ShareID", shid), ("GLUE2EntityName", f"{qname}_{norm}"),
                         ("GLUE2EntityCreationTime", self.now), ("GLUE2EntityValidity", "3600"),
                         ("GLUE2ShareDescription", f"Share of {qname} for {vo or ', '.join(qvos)}"),
                         ("GLUE2ComputingShareMappingQueue", qname),
                         ("GLUE2ComputingShareServingState",
                          rng.choices(["production", "draining", "closed"], [0.93, 0.04, 0.03])[0]),
                         ("GLUE2ComputingShareMaxCPUTime", str(maxwall)),
                         ("GLUE2ComputingShareMaxWallTime", str(maxwall)),
                         ("GLUE2ComputingShareMaxRunningJobs", "999999999"),
                         ("GLUE2ComputingShareMaxWaitingJobs", "999999999"),
                         ("GLUE2ComputingShareMaxSlotsPerJob", str(rng.choice([1, 8, 64]))),
                         ("GLUE2ComputingShareMaxMainMemory", str(rng.choice([2000, 4000, 16000]))),
                         ("GLUE2ComputingShareRunningJobs", str(running)),
                         ("GLUE2ComputingShareWaitingJobs", str(waiting)),
                         ("GLUE2ComputingShareTotalJobs", str(running + waiting)),
                         ("GLUE2ComputingShareFreeSlots", str(rng.randint(0, 100))),
                         ("GLUE2ComputingShareEstimatedAverageWaitingTime",
                          str(rng.randint(0, 86400))),
                         ]
                attrs += [("GLUE2ShareResourceForeignKey", r) for r in res_ids]
                attrs += [("GLUE2ComputingShareExecutionEnvironmentForeignKey", r) for r in res_ids]
                attrs += [("GLUE2ShareEndpointForeignKey", e) for e in ep_ids[:2]]
                attrs += [("GLUE2ComputingShareComputingEndpointForeignKey", e) for e in ep_ids[:2]]
                attrs += [("GLUE2ShareServiceForeignKey", sid),
                          ("GLUE2ComputingShareComputingServiceForeignKey", sid)]
                if fl == "cream":
                    attrs += [("GLUE2EntityOtherInfo", f"CREAMCEId={self._ceid(ce, qname)}"),
                              ("GLUE2EntityOtherInfo", f"ServiceType={stype}")]
                self._g2(shdn, attrs)
                pid = f"{shid}_policy"
                scheme = "basic" if fl == "arc" else "org.glite.standard"
                pattrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Policy"),
                          ("objectClass", "GLUE2MappingPolicy"),
                          ("GLUE2PolicyID", pid), ("GLUE2EntityCreationTime", self.now),
                          ("GLUE2PolicyScheme", scheme)]
                pattrs += [("GLUE2PolicyRule", r) for r in prules]
                pattrs += [("GLUE2PolicyUserDomainForeignKey", v) for v in ([vo] if vo else qvos)]
                pattrs += [("GLUE2MappingPolicyShareForeignKey", shid)]
                self._g2(rdn("GLUE2PolicyID", pid, shdn), pattrs)

    def _glue2_storage(self, se: dict) -> None:
        rng = self.rng
        h = se["host"]
        version, _ = SE_IMPL[se["impl"]]
        path = self._se_path(se)
        sid = f"{h}/storage"
        sdn = self._glue2_service(sid, "org.dcache.storage" if se["impl"] == "dCache"
                                  else f"{se['impl'].lower()}.storage", "GLUE2StorageService",
                                  ["data.management.storage", "data.access.flatfiles",
                                   "data.transfer", "security.authentication"])
        size = se["size"]
        used = int(size * rng.uniform(0.3, 0.9))
        for ctype in (["nearline"] if se["tape"] else ["online"]):
            cid = f"{sid}/capacity/{ctype}"
            self._g2(rdn("GLUE2StorageServiceCapacityID", cid, sdn), [
                ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2StorageServiceCapacity"),
                ("GLUE2StorageServiceCapacityID", cid), ("GLUE2EntityCreationTime", self.now),
                ("GLUE2StorageServiceCapacityType", ctype),
                ("GLUE2StorageServiceCapacityTotalSize", str(size)),
                ("GLUE2StorageServiceCapacityFreeSize", str(size - used)),
                ("GLUE2StorageServiceCapacityUsedSize", str(used)),
                ("GLUE2StorageServiceCapacityReservedSize", "0"),
                ("GLUE2StorageServiceCapacityStorageServiceForeignKey", sid)])
        rules = [f"VO:{v}" for v in sorted({v for v, _ in se["tokens"]}, key=VOS.index)]
        eps = []
        if se["srm"]:
            eps.append(("SRM", f"httpg://{h}:8446/srm/managerv2", "2.2.0"))
        if se["impl"] in ("dCache", "EOS", "xrootd", "DPM"):
            eps.append(("xroot", f"root://{h}:1094/", "5.6"))
        if se["webdav"]:
            eps.append(("webdav" if se["impl"] in ("dCache", "StoRM") else "https",
                        f"https://{h}:443{path}/", "1.1"))
        eps.append(("gsiftp", f"gsiftp://{h}:2811/", "1.0.0"))
        ep_ids = []
        for iface, url, iv in eps:
            ep_id = f"{sid}/endpoint/{iface}"
            ep_ids.append(ep_id)
            self._endpoint(sid, sdn, ep_id, url, iface, iv, se["impl"], version,
                           ["data.management.transfer", "data.management.storage"],
                           "GLUE2StorageEndpoint", rules,
                           [("GLUE2StorageEndpointStorageServiceForeignKey", sid)])
        ntok = max(1, len(se["tokens"]))
        for vo, token in se["tokens"]:
            shid = f"{sid}/share/{vo}" + (f"/{token}" if token else "")
            total = size // ntok
            free = int(total * rng.uniform(0.05, 0.7))
            shdn = rdn("GLUE2ShareID", shid, sdn)
            sh_path = f"{path}/{vo}" + (f"/{token.lower()}" if token else "")
            attrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Share"),
                     ("objectClass", "GLUE2StorageShare"),
                     ("GLUE2ShareID", shid), ("GLUE2EntityName", token or vo),
                     ("GLUE2EntityCreationTime", self.now), ("GLUE2EntityValidity", "3600"),
                     ("GLUE2ShareDescription",
                      f"{token or 'default'} space for {vo} at {self.name}"),
                     ("GLUE2StorageShareServingState", "production"),
                     ("GLUE2StorageSharePath", sh_path),
                     ("GLUE2StorageShareAccessMode", "read"),
                     ("GLUE2StorageShareAccessMode", "write"),
                     ("GLUE2StorageShareSharingID", "dedicated"),
                     ("GLUE2StorageShareAccessLatency", "nearline" if se["tape"] else "online"),
                     ("GLUE2StorageShareRetentionPolicy", "custodial" if se["tape"] else "replica"),
                     ("GLUE2StorageShareExpirationMode", "neverexpire"),
                     ("GLUE2StorageShareDefaultLifeTime", "0"),
                     ("GLUE2StorageShareMaximumLifeTime", "0")]
            if token:
                attrs.append(("GLUE2StorageShareTag", token))
            attrs += [("GLUE2ShareEndpointForeignKey", e) for e in ep_ids]
            attrs += [("GLUE2StorageShareStorageEndpointForeignKey", e) for e in ep_ids]
            attrs += [("GLUE2ShareServiceForeignKey", sid),
                      ("GLUE2StorageShareStorageServiceForeignKey", sid)]
            self._g2(shdn, attrs)
            ctype = "nearline" if se["tape"] else "online"
            capid = f"{shid}/capacity/{ctype}"
            self._g2(rdn("GLUE2StorageShareCapacityID", capid, shdn), [
                ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2StorageShareCapacity"),
                ("GLUE2StorageShareCapacityID", capid), ("GLUE2EntityCreationTime", self.now),
                ("GLUE2StorageShareCapacityType", ctype),
                ("GLUE2StorageShareCapacityTotalSize", str(total)),
                ("GLUE2StorageShareCapacityFreeSize", str(free)),
                ("GLUE2StorageShareCapacityUsedSize", str(total - free)),
                ("GLUE2StorageShareCapacityReservedSize", "0"),
                ("GLUE2StorageShareCapacityStorageShareForeignKey", shid)])
            pid = f"{shid}/policy"
            prules = [f"VO:{vo}"]
            if token and vo in VOMS_ROLES:
                prules.append(f"VOMS:/{vo}/Role={VOMS_ROLES[vo][0]}")
            pattrs = [("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Policy"),
                      ("objectClass", "GLUE2MappingPolicy"),
                      ("GLUE2PolicyID", pid), ("GLUE2EntityCreationTime", self.now),
                      ("GLUE2PolicyScheme", "org.glite.standard")]
            pattrs += [("GLUE2PolicyRule", r) for r in prules]
            pattrs += [("GLUE2PolicyUserDomainForeignKey", vo),
                       ("GLUE2MappingPolicyShareForeignKey", shid)]
            self._g2(rdn("GLUE2PolicyID", pid, shdn), pattrs)
        mid = f"{sid}/manager"
        mdn = rdn("GLUE2ManagerID", mid, sdn)
        self._g2(mdn, [
            ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Manager"),
            ("objectClass", "GLUE2StorageManager"),
            ("GLUE2ManagerID", mid), ("GLUE2EntityCreationTime", self.now),
            ("GLUE2ManagerProductName", se["impl"]), ("GLUE2ManagerProductVersion", version),
            ("GLUE2ManagerServiceForeignKey", sid),
            ("GLUE2StorageManagerStorageServiceForeignKey", sid)])
        dsid = f"{sid}/datastore/{'tape' if se['tape'] else 'disk'}"
        self._g2(rdn("GLUE2ResourceID", dsid, mdn), [
            ("objectClass", "GLUE2Entity"), ("objectClass", "GLUE2Resource"),
            ("objectClass", "GLUE2DataStore"),
            ("GLUE2ResourceID", dsid), ("GLUE2EntityCreationTime", self.now),
            ("GLUE2ResourceManagerForeignKey", mid),
            ("GLUE2DataStoreType", "tape" if se["tape"] else "disk"),
            ("GLUE2DataStoreLatency", "nearline" if se["tape"] else "online"),
            ("GLUE2DataStoreTotalSize", str(size)), ("GLUE2DataStoreUsedSize", str(used)),
            ("GLUE2DataStoreFreeSize", str(size - used)),
            ("GLUE2DataStoreStorageManagerForeignKey", mid)])

    def _glue2_simple_services(self) -> None:
        for s in self._services_list():
            stype, h = s["type"], s["host"]
            if stype in ("bdii_site", "bdii_top"):
                sid = f"{h}_{stype}"
                base = f"GLUE2DomainID={self.name},o=glue" if stype == "bdii_site" \
                    else "GLUE2GroupID=grid,o=glue"
                sdn = self._glue2_service(sid, stype, None,
                                          ["information.model", "information.discovery"])
                self._endpoint(sid, sdn, f"{sid}_endpoint", f"ldap://{h}:2170/{base}", stype,
                               "1.0", "bdii", s["version"], ["information.discovery.resource"],
                               "", ["VO:*"] if stype == "bdii_top" else None)
            elif stype == "org.glite.FileTransfer":
                sid = f"{h}_org.glite.FileTransfer"
                sdn = self._glue2_service(sid, stype, None, ["data.transfer"])
                self._endpoint(sid, sdn, f"{sid}_endpoint", s["endpoint"], stype, "3.0",
                               "FTS", s["version"], ["data.transfer"], "",
                               [f"VO:{v}" for v in self.vos])
                self._endpoint(sid, sdn, f"{sid}_rest", f"https://{h}:8446/", "fts3-rest",
                               "3.0", "FTS", s["version"], ["data.transfer"], "", None)

    def records(self) -> list[Record]:
        self.build_glue1()
        self.build_glue2()
        return self.g1recs + self.g2recs


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def skeleton_records(form: str = "top") -> list[Record]:
    """The entries above the sites: o=grid, mds-vo-name=local,o=grid, o=glue, GLUE2GroupID=grid."""
    if form == "site":
        return [("o=grid", [("objectClass", "organization"), ("o", "grid")]),
                ("o=glue", [("objectClass", "organization"), ("o", "glue")])]
    return [
        ("o=grid", [("objectClass", "organization"), ("o", "grid")]),
        ("mds-vo-name=local,o=grid", [("objectClass", "MDS"), ("Mds-Vo-name", "local")]),
        ("o=glue", [("objectClass", "organization"), ("o", "glue")]),
        ("GLUE2GroupID=grid,o=glue", [("objectClass", "GLUE2Group"), ("GLUE2GroupID", "grid")]),
    ]


_TOP1 = ",mds-vo-name=local,o=grid"
_TOP2 = ",GLUE2GroupID=grid,o=glue"


def _to_site_form(records: list[Record]) -> list[Record]:
    out = []
    for dn, attrs in records:
        if dn.endswith(_TOP1):
            dn = dn[: -len(_TOP1)] + ",o=grid"
        elif dn.endswith(_TOP2):
            dn = dn[: -len(_TOP2)] + ",o=glue"
        out.append((dn, attrs))
    return out


def generate_sites(sites: int, seed: int = 1,
                   form: str = "top") -> Iterator[tuple[str, list[Record]]]:
    """Yield (site name, records of that site), parents before children."""
    if form not in ("top", "site"):
        raise ValueError("form must be 'top' or 'site'")
    for ident in _site_identities(sites, seed):
        recs = _Site(ident, seed).records()
        if form == "site":
            recs = _to_site_form(recs)
        yield ident["name"], recs


def generate_records(sites: int, seed: int = 1, form: str = "top") -> Iterator[Record]:
    """Yield (dn, [(attr, value), ...]) for the whole grid, parents before children."""
    yield from skeleton_records(form)
    for _, recs in generate_sites(sites, seed, form):
        yield from recs


# --------------------------------------------------------------------------
# RFC 2849 writer
# --------------------------------------------------------------------------

# SAFE-STRING: no NUL/LF/CR, ASCII only, must not start with SPACE ':' '<';
# a trailing space is base64-encoded too (it would be lost by many readers).
_UNSAFE = re.compile(r"^[ :<]|[\x00\n\r\x80-\U0010ffff]| $")
_WIDTH = 76


def _fold(line: str) -> str:
    if len(line) <= _WIDTH:
        return line + "\n"
    parts = [line[:_WIDTH]]
    for i in range(_WIDTH, len(line), _WIDTH - 1):
        parts.append(" " + line[i:i + _WIDTH - 1])
    return "\n".join(parts) + "\n"


def _line(attr: str, value: str) -> str:
    if value and _UNSAFE.search(value):
        return _fold(f"{attr}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}")
    return _fold(f"{attr}: {value}")


def record_to_ldif(record: Record) -> str:
    dn, attrs = record
    parts = [_line("dn", dn)]
    for a, v in attrs:
        parts.append(_line(a, v))
    parts.append("\n")
    return "".join(parts)


def to_ldif(records: Iterable[Record]) -> Iterator[str]:
    """RFC 2849 text, one string per record (each ends with a blank line)."""
    for rec in records:
        yield record_to_ldif(rec)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _write(path_or_dash: str, chunks: Iterable[str]) -> int:
    n = 0
    if path_or_dash == "-":
        out = sys.stdout
        for c in chunks:
            out.write(c)
            n += len(c)
        out.flush()
        return n
    with open(path_or_dash, "w", encoding="ascii", newline="\n") as f:
        buf: list[str] = []
        size = 0
        for c in chunks:
            buf.append(c)
            size += len(c)
            if size > 1 << 20:
                f.write("".join(buf))
                n += size
                buf, size = [], 0
        f.write("".join(buf))
        n += size
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate a realistic top-level BDII LDIF data set.")
    p.add_argument("--sites", type=int, required=True, help="number of sites")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", default="-", help="output file, '-' for stdout (default)")
    p.add_argument("--split", metavar="DIR",
                   help="write DIR/top.ldif (skeleton) and one DIR/SITE.ldif per site instead")
    p.add_argument("--form", choices=["top", "site"], default="top",
                   help="DN forms: 'top' (default, as a top-level BDII serves them) or 'site' "
                        "(as each site BDII serves them: mds-vo-name=SITE,o=grid, "
                        "GLUE2DomainID=SITE,o=glue)")
    a = p.parse_args(argv)
    if a.sites < 1:
        p.error("--sites must be >= 1")
    t0 = time.perf_counter()
    counter = {"entries": 0, "grid": 0}

    def counted(recs: Iterable[Record]) -> Iterator[Record]:
        for r in recs:
            counter["entries"] += 1
            if r[0].endswith("o=grid"):
                counter["grid"] += 1
            yield r

    if a.split:
        os.makedirs(a.split, exist_ok=True)
        nbytes = _write(os.path.join(a.split, "top.ldif"),
                        to_ldif(counted(skeleton_records(a.form))))
        for name, recs in generate_sites(a.sites, a.seed, a.form):
            fname = re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".ldif"
            nbytes += _write(os.path.join(a.split, fname), to_ldif(counted(recs)))
    else:
        nbytes = _write(a.out, to_ldif(counted(generate_records(a.sites, a.seed, a.form))))
    dt = time.perf_counter() - t0
    e, g = counter["entries"], counter["grid"]
    print(f"gridgen: {a.sites} sites, {e} entries (o=grid {g}, o=glue {e - g}), "
          f"{nbytes} bytes ({nbytes / 1e6:.1f} MB), seed {a.seed}, {dt:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
