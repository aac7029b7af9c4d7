"""Render OpenLDAP ``.schema`` files into the JSON the server loads (maintainers only).

    python -m bdii.glue.render [--note TEXT] [--only NAME,...] OUT.json FILE...
    python -m bdii.glue.render --all [DIR]

FILE is a schema file, or ``@system`` / ``@infosys`` for the definitions kept
here because no installed file has them. ``--all`` rewrites the four
committed renderings (`TARGETS`) into DIR (default: this package's directory)
from the files Debian's ``glue-schema``, ``slapd`` and ``bdii`` packages install.
The server never runs this: it reads the committed JSON (`bdii.core.schema`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from bdii.core.schemafile import SchemaSyntaxError, render_json

# slapd builds these in (servers/slapd/schema_prep.c); core.schema only has them
# commented out as "system schema". Definitions as in the RFCs cited; DESCs as slapd's.
SYSTEM_SCHEMA = """\
# RFC 4512 §3.3, §2.4.1, §4.3: the object class attribute, top, extensibleObject.
attributetype ( 2.5.4.0 NAME 'objectClass'
	DESC 'RFC4512: object classes of the entity'
	EQUALITY objectIdentifierMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
objectclass ( 2.5.6.0 NAME 'top'
	DESC 'top of the superclass chain'
	ABSTRACT MUST objectClass )
objectclass ( 1.3.6.1.4.1.1466.101.120.111 NAME 'extensibleObject'
	DESC 'RFC4512: extensible object'
	SUP top AUXILIARY )

# RFC 4519 §2.18, §2.3, §2.5, §2.7, §2.30, §2.41.
attributetype ( 2.5.4.41 NAME 'name'
	DESC 'RFC4519: common supertype of name attributes'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 2.5.4.3 NAME ( 'cn' 'commonName' )
	DESC 'RFC4519: common name(s) for which the entity is known by'
	SUP name )
attributetype ( 2.5.4.13 NAME 'description'
	DESC 'RFC4519: descriptive information'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 2.5.4.49 NAME 'distinguishedName'
	DESC 'RFC4519: common supertype of DN attributes'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 2.5.4.34 NAME 'seeAlso'
	DESC 'RFC4519: DN of related object'
	SUP distinguishedName )
attributetype ( 2.5.4.35 NAME 'userPassword'
	DESC 'RFC4519/2307: password of user'
	EQUALITY octetStringMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )

# RFC 4512 §3.4 operational attributes; entryDN is RFC 5020, hasSubordinates X.501.
attributetype ( 2.5.18.1 NAME 'createTimestamp'
	DESC 'RFC4512: time which object was created'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributetype ( 2.5.18.2 NAME 'modifyTimestamp'
	DESC 'RFC4512: time which object was last modified'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributetype ( 2.5.21.9 NAME 'structuralObjectClass'
	DESC 'RFC4512: structural object class of entry'
	EQUALITY objectIdentifierMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.38
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributetype ( 2.5.18.10 NAME 'subschemaSubentry'
	DESC 'RFC4512: name of controlling subschema entry'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributetype ( 1.3.6.1.1.20 NAME 'entryDN'
	DESC 'DN of the entry'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributetype ( 2.5.18.9 NAME 'hasSubordinates'
	DESC 'X.501: entry has children'
	EQUALITY booleanMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.7
	SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )

# RFC 4512 §4.2 the subschema subentry (what subschemaSubentry points at).
attributetype ( 2.5.21.1 NAME 'dITStructureRules'
	DESC 'RFC4512: DIT structure rules'
	EQUALITY integerFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.17 USAGE directoryOperation )
attributetype ( 2.5.21.7 NAME 'nameForms'
	DESC 'RFC4512: name forms'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.35 USAGE directoryOperation )
attributetype ( 2.5.21.2 NAME 'dITContentRules'
	DESC 'RFC4512: DIT content rules'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.16 USAGE directoryOperation )
attributetype ( 2.5.21.6 NAME 'objectClasses'
	DESC 'RFC4512: object classes'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.37 USAGE directoryOperation )
attributetype ( 2.5.21.5 NAME 'attributeTypes'
	DESC 'RFC4512: attribute types'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.3 USAGE directoryOperation )
attributetype ( 2.5.21.4 NAME 'matchingRules'
	DESC 'RFC4512: matching rules'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.30 USAGE directoryOperation )
attributetype ( 2.5.21.8 NAME 'matchingRuleUse'
	DESC 'RFC4512: matching rule uses'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.31 USAGE directoryOperation )
attributetype ( 1.3.6.1.4.1.1466.101.120.16 NAME 'ldapSyntaxes'
	DESC 'RFC4512: LDAP syntaxes'
	EQUALITY objectIdentifierFirstComponentMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.54 USAGE directoryOperation )
objectclass ( 2.5.20.1 NAME 'subschema'
	DESC 'RFC4512: controlling subschema (sub)entry'
	AUXILIARY
	MAY ( dITStructureRules $ nameForms $ dITContentRules $
		objectClasses $ attributeTypes $ matchingRules $ matchingRuleUse ) )

# RFC 4512 §5.1 root DSE attributes: the RFC gives them no EQUALITY rule.
attributetype ( 1.3.6.1.4.1.1466.101.120.5 NAME 'namingContexts'
	DESC 'RFC4512: naming contexts'
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 USAGE dSAOperation )
attributetype ( 1.3.6.1.4.1.1466.101.120.13 NAME 'supportedControl'
	DESC 'RFC4512: supported controls'
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )
attributetype ( 1.3.6.1.4.1.1466.101.120.7 NAME 'supportedExtension'
	DESC 'RFC4512: supported extended operations'
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )
attributetype ( 1.3.6.1.4.1.1466.101.120.15 NAME 'supportedLDAPVersion'
	DESC 'RFC4512: supported LDAP versions'
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 USAGE dSAOperation )
"""

# Our own addition: one entry per source (provider, plugin, LDIF file, remote
# URL) under o=infosys, so that clients can see which sources failed and when.
# 1.3.6.1.4.1.99999 is a PLACEHOLDER arc, not an IANA-registered enterprise
# number: replace it (here, then re-render) before publishing these entries.
INFOSYS_SCHEMA = """\
objectidentifier bdiiInfosys 1.3.6.1.4.1.99999.2
objectidentifier bdiiInfosysAT bdiiInfosys:1
objectidentifier bdiiInfosysOC bdiiInfosys:2

attributetype ( bdiiInfosysAT:1 NAME 'bdiiSourceName'
	DESC 'Name of the source: provider, plugin, LDIF file or LDAP URL'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:2 NAME 'bdiiSourceKind'
	DESC 'Kind of source, e.g. ldif, provider, plugin, ldap'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:3 NAME 'bdiiSourceStatus'
	DESC 'Outcome of the last attempt, e.g. ok, failed, stale'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:4 NAME 'bdiiSourceLastError'
	DESC 'One-line description of the last failure'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:5 NAME 'bdiiSourceLastSuccess'
	DESC 'When the source last delivered data'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:6 NAME 'bdiiSourceLastAttempt'
	DESC 'When the source was last run or fetched'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:7 NAME 'bdiiSourceDurationMs'
	DESC 'Duration of the last attempt in milliseconds'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:8 NAME 'bdiiSourceEntries'
	DESC 'Number of entries the source contributed'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:9 NAME 'bdiiSourceURL'
	DESC 'The LDAP URL of a remote source'
	EQUALITY caseExactIA5Match
	SUBSTR caseExactIA5SubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:10 NAME 'bdiiSourceBytes'
	DESC 'Bytes received from a remote source in its last attempt'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:11 NAME 'bdiiSourceRecursiveEntries'
	DESC 'Entries dropped because they were already in this BDII tree'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:12 NAME 'bdiiBlacklistName'
	DESC 'Which FCR blacklist source: file or url'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:13 NAME 'bdiiBlacklistLocation'
	DESC 'Path or URL of an FCR blacklist'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:14 NAME 'bdiiBlacklistStatus'
	DESC 'ok, stale (last good copy), refused or failed'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:15 NAME 'bdiiBlacklistRules'
	DESC 'Number of rules of the blacklist in force'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:16 NAME 'bdiiBlacklistEntriesChanged'
	DESC 'Entries the blacklist in force changed or removed'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:17 NAME 'bdiiBlacklistFetched'
	DESC 'When the blacklist in force was read or fetched'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:18 NAME 'bdiiBlacklistAge'
	DESC 'Age in seconds of the blacklist in force'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:19 NAME 'bdiiBlacklistRule'
	DESC 'One rule of the blacklist in force and the entries it changed'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( bdiiInfosysAT:20 NAME 'bdiiBlacklistLastError'
	DESC 'Why the blacklist source could not be read'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:21 NAME 'bdiiBlacklistRefusal'
	DESC 'Why the new blacklist was refused'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:22 NAME 'bdiiValidationErrors'
	DESC 'Validation errors found at ingest (BDII_VALIDATE) in the last cycle'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:23 NAME 'bdiiValidationWarnings'
	DESC 'Validation warnings found at ingest (BDII_VALIDATE) in the last cycle'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( bdiiInfosysAT:24 NAME 'bdiiValidationDropped'
	DESC 'Entries with validation errors dropped (BDII_VALIDATE=strict) in the last cycle'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )

objectclass ( bdiiInfosysOC:1 NAME 'bdiiSource'
	DESC 'Status of one information source of this BDII'
	SUP top STRUCTURAL
	MUST bdiiSourceName
	MAY ( bdiiSourceKind $ bdiiSourceStatus $ bdiiSourceLastError $
		bdiiSourceLastSuccess $ bdiiSourceLastAttempt $
		bdiiSourceDurationMs $ bdiiSourceEntries $ bdiiSourceURL $
		bdiiSourceBytes $ bdiiSourceRecursiveEntries $
		bdiiValidationErrors $ bdiiValidationWarnings $ bdiiValidationDropped ) )

objectclass ( bdiiInfosysOC:2 NAME 'bdiiBlacklist'
	DESC 'An FCR per-VO blacklist applied by this BDII'
	SUP top STRUCTURAL
	MUST bdiiBlacklistName
	MAY ( bdiiBlacklistLocation $ bdiiBlacklistStatus $ bdiiBlacklistRules $
		bdiiBlacklistEntriesChanged $ bdiiBlacklistFetched $ bdiiBlacklistAge $
		bdiiBlacklistRule $ bdiiBlacklistLastError $ bdiiBlacklistRefusal ) )

objectclass ( bdiiInfosysOC:3 NAME 'bdiiValidationStats'
	DESC 'Validation totals of the last cycle, on the UpdateStats entry'
	SUP top AUXILIARY
	MAY ( bdiiValidationErrors $ bdiiValidationWarnings $ bdiiValidationDropped ) )
"""

BUILTIN = {"@system": SYSTEM_SCHEMA, "@infosys": INFOSYS_SCHEMA}


class Target(NamedTuple):
    files: tuple[str, ...]
    note: str
    only: tuple[str, ...] | None = None


_LDAP = "/etc/ldap/schema/"
_GENERATED = "Generated by `python -m bdii.glue.render --all` (TARGETS in glue/render.py); "
TARGETS = {
    "glue13.json": Target(
        tuple(_LDAP + f"Glue-{n}.schema" for n in ("CORE", "MDS", "CE", "CESEBind", "SE")),
        _GENERATED + "GLUE 1.3 as published in Debian's glue-schema package, unchanged."),
    "glue20.json": Target(
        (_LDAP + "GLUE20.schema",),
        _GENERATED + "GLUE 2.0 as published in Debian's glue-schema package, unchanged."),
    "bdii.json": Target(
        ("/etc/bdii/BDII.schema", "@infosys"),
        _GENERATED + "the legacy BDII's own schema plus our bdiiSource status entries "
        "under o=infosys (@infosys). Their OIDs use 1.3.6.1.4.1.99999.2, a PLACEHOLDER "
        "private arc that is not registered: replace it before publishing."),
    "core.json": Target(
        ("@system", _LDAP + "core.schema"),
        _GENERATED + "the part of the LDAP core schema a BDII serves: slapd's built-in "
        "definitions from RFC 4512/4519/5020 (@system) and OpenLDAP's core.schema, "
        "filtered to the names in TARGETS plus what they refer to.",
        ("objectClass", "top", "extensibleObject", "name", "cn", "description", "o", "ou",
         "dc", "organization", "organizationalUnit", "dcObject", "createTimestamp",
         "modifyTimestamp", "entryDN", "hasSubordinates", "structuralObjectClass",
         "subschemaSubentry", "subschema", "ldapSyntaxes", "namingContexts",
         "supportedLDAPVersion", "supportedControl", "supportedExtension")),
}


def _read(file: str) -> tuple[str, str]:
    if file in BUILTIN:
        return file, BUILTIN[file]
    return Path(file).name, Path(file).read_text(encoding="utf-8")


def render(out: Path, files: tuple[str, ...] | list[str], note: str,
           only: tuple[str, ...] | list[str] | None) -> None:
    """Render `files` into `out`, replacing it only once the whole text is ready."""
    text = render_json([_read(f) for f in files], note=note, only=only)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bdii.glue.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="re-render every TARGET")
    parser.add_argument("--note", default="", help="text for the JSON's note")
    parser.add_argument("--only", help="comma-separated names to keep (plus dependencies)")
    parser.add_argument("args", nargs="*", metavar="OUT.json FILE...")
    opts = parser.parse_args(argv)
    try:
        if opts.all:
            if len(opts.args) > 1:
                parser.error("--all takes at most one directory")
            outdir = Path(opts.args[0]) if opts.args else Path(__file__).parent
            for name, target in TARGETS.items():
                render(outdir / name, target.files, target.note, target.only)
        else:
            if len(opts.args) < 2:
                parser.error("give OUT.json and at least one FILE")
            only = [n for n in opts.only.split(",") if n] if opts.only else None
            render(Path(opts.args[0]), opts.args[1:], opts.note, only)
    except (OSError, SchemaSyntaxError, ValueError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
