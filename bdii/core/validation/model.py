"""The GLUE facts validation needs beyond the LDAP schema, as read-only tables.

Enumerations, datetime and URL attributes come from ``glue/glue20-enums.json``
(package data of bdii.glue, readable and reviewable on its own). Foreign keys
and IDs are the associations of GFD.147 sections 5-7 as the LDAP rendering
(GLUE20.schema) names them; they are structure, not data, so they live here.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass

from ..schema import SchemaError

__all__ = [
    "DOMAIN",
    "GLUE2_FOREIGN_KEYS",
    "GLUE2_IDS",
    "GLUE13_IDS",
    "LOCAL",
    "Enumeration",
    "Glue20Facts",
    "glue20_facts",
]

ENUMS_FILE = "glue20-enums.json"


@dataclass(frozen=True, slots=True)
class Enumeration:
    """One GFD.147 Appendix B type: its values, and whether others are allowed."""

    name: str
    closed: bool
    values: frozenset[str]
    case_insensitive: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        return (value.lower() if self.case_insensitive else value) in self.values

    def describe(self) -> str:
        return ", ".join(sorted(self.values))


@dataclass(frozen=True, slots=True)
class Glue20Facts:
    """Per lower-cased attribute name: its enumeration; and the attributes of each GFD.147 value type."""

    enums: dict[str, Enumeration]
    datetime: frozenset[str]
    url: frozenset[str]
    uri: frozenset[str]
    unsigned: frozenset[str] = frozenset()
    real: frozenset[str] = frozenset()

    @classmethod
    def from_json_text(cls, text: str) -> Glue20Facts:
        try:
            doc = json.loads(text)
            types = {name: Enumeration(name, bool(t["closed"]),
                                       frozenset(v.lower() if t.get("case_insensitive") else v
                                                 for v in t["values"]),
                                       bool(t.get("case_insensitive")))
                     for name, t in doc["types"].items()}
            enums = {attr.lower(): types[type_name] for attr, type_name in doc["attributes"].items()}
            return cls(enums, frozenset(a.lower() for a in doc["datetime"]),
                       frozenset(a.lower() for a in doc["url"]), frozenset(a.lower() for a in doc["uri"]),
                       frozenset(a.lower() for a in doc["unsigned"]), frozenset(a.lower() for a in doc["real"]))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SchemaError([f"{ENUMS_FILE}: not a GLUE 2.0 enumeration file ({e!r})"]) from e


@functools.cache
def glue20_facts() -> Glue20Facts:
    """The packaged tables, read once."""
    text = importlib.resources.files("bdii.glue").joinpath(ENUMS_FILE).read_text(encoding="utf-8")
    return Glue20Facts.from_json_text(text)


# Where a foreign key must find its target. LOCAL: the provider that publishes
# the source publishes the target too (same service), so it must be in the
# same input. DOMAIN: the AdminDomain comes from the site level; a resource
# BDII's output has none, so these are checked only when the input holds at
# least one GLUE2Domain. Keys to other services or user domains (ToStorageService
# -> StorageService, ServiceServiceForeignKey, activities) may point to another
# site and are not checked.
LOCAL, DOMAIN = "local", "domain"

_SERVICE, _ENDPOINT, _SHARE = "GLUE2ServiceID", "GLUE2EndpointID", "GLUE2ShareID"
_MANAGER, _RESOURCE, _DOMAIN = "GLUE2ManagerID", "GLUE2ResourceID", "GLUE2DomainID"

GLUE2_FOREIGN_KEYS: dict[str, tuple[str, str]] = {
    "GLUE2EndpointServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ShareServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ShareEndpointForeignKey": (_ENDPOINT, LOCAL),
    "GLUE2ShareResourceForeignKey": (_RESOURCE, LOCAL),
    "GLUE2ManagerServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ResourceManagerForeignKey": (_MANAGER, LOCAL),
    "GLUE2AccessPolicyEndpointForeignKey": (_ENDPOINT, LOCAL),
    "GLUE2MappingPolicyShareForeignKey": (_SHARE, LOCAL),
    "GLUE2ComputingEndpointComputingServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ComputingShareComputingServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ComputingShareComputingEndpointForeignKey": (_ENDPOINT, LOCAL),
    "GLUE2ComputingShareExecutionEnvironmentForeignKey": (_RESOURCE, LOCAL),
    "GLUE2ComputingManagerComputingServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2BenchmarkExecutionEnvironmentForeignKey": (_RESOURCE, LOCAL),
    "GLUE2BenchmarkComputingManagerForeignKey": (_MANAGER, LOCAL),
    "GLUE2ExecutionEnvironmentComputingManagerForeignKey": (_MANAGER, LOCAL),
    "GLUE2ApplicationEnvironmentComputingManagerForeignKey": (_MANAGER, LOCAL),
    "GLUE2ApplicationEnvironmentExecutionEnvironmentForeignKey": (_RESOURCE, LOCAL),
    "GLUE2ApplicationHandleApplicationEnvironmentForeignKey": ("GLUE2ApplicationEnvironmentID", LOCAL),
    "GLUE2ToStorageServiceComputingServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ToComputingServiceStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2ToComputingServiceStorageAccessProtocolForeignKey": ("GLUE2StorageAccessProtocolID", LOCAL),
    "GLUE2StorageServiceCapacityStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2StorageAccessProtocolStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2StorageEndpointStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2StorageShareStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2StorageShareStorageEndpointForeignKey": (_ENDPOINT, LOCAL),
    "GLUE2StorageShareDataStoreForeignKey": (_RESOURCE, LOCAL),
    "GLUE2StorageShareCapacityStorageShareForeignKey": (_SHARE, LOCAL),
    "GLUE2StorageManagerStorageServiceForeignKey": (_SERVICE, LOCAL),
    "GLUE2DataStoreStorageManagerForeignKey": (_MANAGER, LOCAL),
    "GLUE2ServiceAdminDomainForeignKey": (_DOMAIN, DOMAIN),
    "GLUE2LocationDomainForeignKey": (_DOMAIN, DOMAIN),
    "GLUE2ContactDomainForeignKey": (_DOMAIN, DOMAIN),
}

# The identifiers of GLUE 2.0 entities: globally unique (GFD.147 section 5.1,
# "ID: a global unique ID"). Group IDs ("resource", "grid") repeat by design.
GLUE2_IDS: frozenset[str] = frozenset({
    "GLUE2LocationID", "GLUE2ContactID", "GLUE2DomainID", _SERVICE, _ENDPOINT, _SHARE, _MANAGER,
    _RESOURCE, "GLUE2ActivityID", "GLUE2PolicyID", "GLUE2BenchmarkID", "GLUE2ApplicationEnvironmentID",
    "GLUE2ApplicationHandleID", "GLUE2ToStorageServiceID", "GLUE2StorageServiceCapacityID",
    "GLUE2StorageAccessProtocolID", "GLUE2StorageShareCapacityID", "GLUE2ToComputingServiceID",
})

# GLUE 1.3 "UniqueID"s, unique in the whole grid (GLUE 1.3 spec, section 3);
# "LocalID"s are unique only below their parent, which the DN already enforces.
GLUE13_IDS: frozenset[str] = frozenset({
    "GlueSiteUniqueID", "GlueServiceUniqueID", "GlueClusterUniqueID", "GlueSubClusterUniqueID",
    "GlueCEUniqueID", "GlueSEUniqueID", "GlueSLUniqueID",
})
