"""One refresh cycle as a pure function: `build(results, previous, config, now)` with integer time."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bdii.core.config import Config
from bdii.core.delay import PendingDeletes
from bdii.core.dn import DN
from bdii.core.pipeline import BuildResult, SourceResult, State, build
from bdii.core.snapshot import Snapshot, gtime

CONFIG = dataclasses.replace(Config(), hostname="bdii.example.org")
T0 = 1_000_000

SITE = "mds-vo-name=resource,o=grid"
CE1 = f"GlueCEUniqueID=ce1.example.org:8443/cream-pbs-atlas,{SITE}"
CE2 = f"GlueCEUniqueID=ce2.example.org:8443/cream-pbs-cms,{SITE}"
GROUP = "GLUE2GroupID=resource,o=glue"
SVC = f"GLUE2ServiceID=svc1,{GROUP}"

BASE_LDIF = f"""\
dn: {SITE}
objectClass: MDS
mds-vo-name: resource

dn: {GROUP}
objectClass: GLUE2Group
GLUE2GroupID: resource

"""


def ce(dn: str, status: str = "Production", extra: str = "") -> str:
    return (f"dn: {dn}\nobjectClass: GlueCETop\nobjectClass: GlueCE\n"
            f"GlueCEUniqueID: {DN.parse(dn).rdns[0][0][1]}\nGlueCEStateStatus: {status}\n{extra}\n")


def source(name: str, text: str | None, kind: str = "provider", now: int = T0,
           error: str | None = None) -> SourceResult:
    data = None if text is None else text.encode("utf-8")
    return SourceResult(name, kind, data, now, 0.5, error)


def run(results: list[SourceResult], now: int = T0, previous: State | None = None,
        config: Config = CONFIG) -> BuildResult:
    return build(results, previous or State(), config, now)


def entry(snap: Snapshot, dn: str):
    i = snap.find(DN.parse(dn))
    return None if i is None else snap.entries[i]


def dump(snap: Snapshot) -> list[tuple]:
    """Everything a client can see: DN text, attributes in order, timestamps."""
    return [(str(e.dn), list(e.items()), snap.created(i), snap.modified(i))
            for i, e in enumerate(snap.entries)]


# --- suffixes and merging ---------------------------------------------------------------

def test_entries_outside_the_served_suffixes_are_dropped_with_a_problem() -> None:
    """An entry outside o=grid and o=glue is not served; the problem names the source and entry."""
    outside = "dn: o=elsewhere\nobjectClass: organization\no: elsewhere\n"
    result = run([source("site.ldif", BASE_LDIF + outside, kind="ldif")])
    assert entry(result.snapshot, "o=elsewhere") is None
    [problem] = [p for p in result.problems if p.dn == "o=elsewhere"]
    assert problem.where == "site.ldif"
    assert "outside" in problem.message
    assert entry(result.snapshot, SITE) is not None


def test_infosys_entries_from_a_source_are_dropped() -> None:
    """A source cannot publish under o=infosys: that tree is the BDII's own status."""
    fake = "dn: Hostname=bdii.example.org,o=infosys\nobjectClass: UpdateStats\nTotalEntries: 999999\n"
    result = run([source("evil", BASE_LDIF + fake)])
    assert any(p.where == "evil" and "o=infosys" in p.message for p in result.problems)
    stats = entry(result.snapshot, "Hostname=bdii.example.org,o=infosys")
    assert stats.get("TotalEntries") != ("999999",)


def test_duplicate_dns_merge_first_source_wins_per_attribute() -> None:
    """For a duplicate DN, static LDIF beats providers, then names sort; later sources only add attributes."""
    results = [
        source("b-provider", BASE_LDIF + ce(CE1, "Closed", "GlueCEInfoTotalCPUs: 8\n")),
        source("zz.ldif", ce(CE1.replace("ce1", "CE1"), "Draining"), kind="ldif"),
        source("a-provider", ce(CE1, "Production", "GlueCEInfoLRMSType: pbs\n")),
    ]
    e = entry(run(results).snapshot, CE1)
    assert e.get("GlueCEStateStatus") == ("Draining",)
    assert e.get("GlueCEInfoLRMSType") == ("pbs",)
    assert e.get("GlueCEInfoTotalCPUs") == ("8",)
    assert str(e.dn).startswith("GlueCEUniqueID=CE1")  # the DN as the winning source wrote it


_DNS = [SITE, CE1, CE1.replace("ce1", "CE1"), CE2, GROUP, SVC, "o=outside",
        f"GlueCEUniqueID=x,o=nowhere,{SITE}"]
_ATTRS = ["GlueCEStateStatus", "GlueCEInfoTotalCPUs", "description"]


@st.composite
def source_sets(draw: st.DrawFn) -> list[SourceResult]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "site.ldif", "d.ldif"]), unique=True, max_size=4))
    out = []
    for name in names:
        text = ""
        for dn in draw(st.lists(st.sampled_from(_DNS), max_size=4)):
            attrs = draw(st.lists(st.sampled_from(_ATTRS), min_size=1, max_size=3))
            text += f"dn: {dn}\nobjectClass: top\n" + "".join(
                f"{a}: {draw(st.sampled_from(['1', '2', 'x']))}\n" for a in attrs) + "\n"
        kind = "ldif" if name.endswith(".ldif") else "provider"
        out.append(source(name, text if draw(st.integers(0, 5)) else None, kind=kind, error="boom"))
    for name in draw(st.lists(st.sampled_from(["p1", "p2"]), unique=True)):
        out.append(source(name, f"dn: {CE1}\nchangetype: modify\nadd: GlueCEStateStatus\n"
                                 f"GlueCEStateStatus: {name}\n", kind="plugin"))
    return out


@settings(max_examples=40, deadline=None, database=None)
@given(source_sets(), st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_snapshot(results: list[SourceResult], rnd) -> None:
    """Shuffling the source results gives the same snapshot, state and problems."""
    shuffled = list(results)
    rnd.shuffle(shuffled)
    a, b = run(results), run(shuffled)
    assert dump(a.snapshot) == dump(b.snapshot)
    assert a.problems == b.problems
    assert a.stats == b.stats


# --- plugins -------------------------------------------------------------------------

def test_plugins_run_after_providers_in_name_order() -> None:
    """Plugins modify what providers published, the later name last, whatever the result order."""
    results = [
        source("20-close", f"dn: {CE1}\nchangetype: modify\nreplace: GlueCEStateStatus\n"
                           "GlueCEStateStatus: Closed\n-\n", kind="plugin"),
        source("10-drain", f"dn: {CE1}\nchangetype: modify\nreplace: GlueCEStateStatus\n"
                           "GlueCEStateStatus: Draining\n", kind="plugin"),
        source("zz-provider", BASE_LDIF + ce(CE1)),
    ]
    assert entry(run(results).snapshot, CE1).get("GlueCEStateStatus") == ("Closed",)


def test_two_plugins_extending_one_attribute_both_count() -> None:
    """Two plugins each adding a value to the same multi-valued attribute both take effect."""
    results = [source("prov", BASE_LDIF + ce(CE1, extra="GlueCEAccessControlBaseRule: VO:ops\n"))]
    for name, vo in [("fcr-atlas", "atlas"), ("fcr-cms", "cms")]:
        results.append(source(name, f"dn: {CE1}\nchangetype: modify\nadd: GlueCEAccessControlBaseRule\n"
                                    f"GlueCEAccessControlBaseRule: VO:{vo}\n-\n", kind="plugin"))
    rules = entry(run(results).snapshot, CE1).get("GlueCEAccessControlBaseRule")
    assert sorted(rules) == ["VO:atlas", "VO:cms", "VO:ops"]


def test_plain_plugin_form_replaces_attributes() -> None:
    """A plugin record without changetype replaces the attributes it names and keeps the others."""
    results = [source("prov", BASE_LDIF + ce(CE1, extra="GlueCEInfoTotalCPUs: 8\n")),
               source("plain", f"dn: {CE1}\nGlueCEStateStatus: Closed\n", kind="plugin")]
    e = entry(run(results).snapshot, CE1)
    assert e.get("GlueCEStateStatus") == ("Closed",)
    assert e.get("GlueCEInfoTotalCPUs") == ("8",)


def test_plugin_modify_delete_and_empty_replace() -> None:
    """`delete:` removes the values named (schema equality) or the whole attribute; so does empty `replace:`."""
    rules = "".join(f"GlueCEAccessControlBaseRule: VO:{vo}\n" for vo in ("atlas", "cms", "ops"))
    extra = rules + "GlueCEInfoTotalCPUs: 8\nGlueCEInfoLRMSType: pbs\n"
    results = [source("prov", BASE_LDIF + ce(CE1, extra=extra)),
               source("p", f"dn: {CE1}\nchangetype: modify\ndelete: GlueCEAccessControlBaseRule\n"
                           "GlueCEAccessControlBaseRule: vo:ATLAS\n-\ndelete: GlueCEInfoTotalCPUs\n-\n"
                           "replace: GlueCEInfoLRMSType\n-\n", kind="plugin")]
    e = entry(run(results).snapshot, CE1)
    assert e.get("GlueCEAccessControlBaseRule") == ("VO:cms", "VO:ops")
    assert e.get("GlueCEInfoTotalCPUs") == ()
    assert e.get("GlueCEInfoLRMSType") == ()


def test_plugin_delete_and_add_records() -> None:
    """`changetype: delete` removes an entry; `changetype: add` creates one."""
    results = [source("prov", BASE_LDIF + ce(CE1) + ce(CE2)),
               source("p", f"dn: {CE2}\nchangetype: delete\n\n"
                           f"dn: GlueSiteUniqueID=new,{SITE}\nchangetype: add\nobjectClass: GlueSite\n"
                           "GlueSiteUniqueID: new\n", kind="plugin")]
    snap = run(results).snapshot
    assert entry(snap, CE2) is None
    assert entry(snap, f"GlueSiteUniqueID=new,{SITE}").get("GlueSiteUniqueID") == ("new",)


def test_plugin_problem_names_the_plugin() -> None:
    """A plugin modifying an entry that does not exist is reported under the plugin's name."""
    result = run([source("prov", BASE_LDIF),
                  source("ghost", f"dn: {CE1}\nchangetype: modify\nreplace: GlueCEStateStatus\n"
                                  "GlueCEStateStatus: Closed\n", kind="plugin")])
    assert any(p.where == "ghost" and p.line == 1 for p in result.problems)


# --- legacy tree fixes -------------------------------------------------------------------

def test_mds_gluetop_entries_are_reduced() -> None:
    """An `MDS` + `GlueTop` entry named by mds-vo-name keeps only objectClass MDS and its name."""
    text = ("dn: mds-vo-name=resource,o=grid\nobjectClass: MDS\nobjectClass: GlueTop\n"
            "mds-vo-name: resource\nGlueSchemaVersionMajor: 1\n")
    e = entry(run([source("prov", text)]).snapshot, SITE)
    assert list(e.items()) == [("objectClass", ("MDS",)), ("Mds-Vo-name", ("resource",))]


def test_orphans_are_dropped_with_their_subtree() -> None:
    """An entry whose parent does not exist is dropped, and so is everything below it."""
    orphan = f"GlueSubClusterUniqueID=sc,GlueClusterUniqueID=missing,{SITE}"
    below = f"GlueHostApplicationSoftwareRunTimeEnvironment=x,{orphan}"
    text = BASE_LDIF + f"dn: {orphan}\nobjectClass: GlueSubCluster\n\ndn: {below}\nobjectClass: top\n\n"
    result = run([source("prov", text)])
    assert entry(result.snapshot, orphan) is None
    assert entry(result.snapshot, below) is None
    assert {DN.parse(p.dn) for p in result.problems if p.dn} >= {DN.parse(orphan), DN.parse(below)}
    assert result.stats.failed_adds == 2


def test_suffix_entries_always_exist() -> None:
    """o=grid and o=glue are served even when no source publishes them."""
    snap = run([source("prov", BASE_LDIF)]).snapshot
    assert entry(snap, "o=grid").get("o") == ("grid",)
    assert entry(snap, "o=glue").get("objectClass") == ("organization",)


# --- delayed delete ------------------------------------------------------------------------

def cycles(steps: list[tuple[int, bool]], delay: int) -> list[BuildResult]:
    """Run cycles at the given times, CE2 published or not; each hands its state to the next."""
    config = dataclasses.replace(CONFIG, delete_delay=delay)
    state, out = State(), []
    for now, published in steps:
        text = BASE_LDIF + ce(CE1) + (ce(CE2) if published else "")
        result = run([source("prov", text, now=now)], now=now, previous=state, config=config)
        state = result.state
        out.append(result)
    return out


def test_vanished_entry_is_served_for_exactly_the_delay() -> None:
    """An entry first missed at t0 is served until t0+delay inclusive and gone at t0+delay+1."""
    t0, delay = T0 + 600, 300
    runs = cycles([(T0, True), (t0, False), (t0 + delay, False), (t0 + delay + 1, False)], delay)
    assert [entry(r.snapshot, CE2) is not None for r in runs] == [True, True, True, False]
    # Its state is no longer vouched for: published as Unknown while kept.
    assert entry(runs[0].snapshot, CE2).get("GlueCEStateStatus") == ("Production",)
    assert entry(runs[2].snapshot, CE2).get("GlueCEStateStatus") == ("Unknown",)
    assert [r.stats.deleted for r in runs] == [0, 0, 0, 1]
    assert [r.stats.pending_deletes for r in runs] == [0, 1, 1, 0]
    jump = cycles([(T0, True), (t0, False), (t0 + delay + 1, False)], delay)
    assert entry(jump[-1].snapshot, CE2) is None


def test_without_delay_a_vanished_entry_goes_at_once() -> None:
    """With BDII_DELETE_DELAY=0 an entry that vanished is gone in the same cycle."""
    runs = cycles([(T0, True), (T0 + 1, False)], delay=0)
    assert entry(runs[1].snapshot, CE2) is None
    assert runs[1].stats.deleted == 1


def test_entry_that_comes_back_is_forgotten() -> None:
    """An entry that reappears leaves the pending list; missing again starts a new delay."""
    delay = 300
    runs = cycles([(T0, True), (T0 + 100, False), (T0 + 200, True), (T0 + 300, False),
                   (T0 + 100 + delay + 1, False), (T0 + 300 + delay + 1, False)], delay)
    assert runs[2].state.pending.since == {}
    assert runs[3].state.pending.since == {DN.parse(CE2): T0 + 300}
    assert entry(runs[4].snapshot, CE2) is not None  # would be gone had the first miss counted
    assert entry(runs[5].snapshot, CE2) is None


def test_pending_deletes_round_trip_through_readable_json() -> None:
    """The delayed-delete state is versioned JSON text that reads back to the same state."""
    runs = cycles([(T0, True), (T0 + 10, False)], delay=300)
    pending = runs[-1].state.pending
    text = pending.to_json()
    doc = json.loads(text)
    assert doc["version"] == 1
    assert doc["pending"][0]["dn"] == str(DN.parse(CE2))
    assert doc["pending"][0]["since"] == T0 + 10
    assert "GlueCEStateStatus" in doc["pending"][0]["attributes"]
    again = PendingDeletes.from_json(text)
    assert again.since == pending.since
    for dn in pending.since:
        assert str(again.entries[dn].dn) == str(pending.entries[dn].dn)
        assert again.entries[dn].attrs == pending.entries[dn].attrs
    assert json.loads(again.to_json()) == doc


def test_restart_with_the_json_state_keeps_the_deadline() -> None:
    """After a restart that reloads only the pending deletes, a vanished entry keeps its deadline."""
    delay = 300
    runs = cycles([(T0, True), (T0 + 10, False)], delay)
    config = dataclasses.replace(CONFIG, delete_delay=delay)
    restored = State(pending=PendingDeletes.from_json(runs[-1].state.pending.to_json()))
    for now, present in [(T0 + 10 + delay, True), (T0 + 10 + delay + 1, False)]:
        result = run([source("prov", BASE_LDIF + ce(CE1), now=now)], now=now, previous=restored,
                     config=config)
        assert (entry(result.snapshot, CE2) is not None) == present


# --- statistics and timestamps ---------------------------------------------------------------

def test_stats_count_new_modified_and_deleted() -> None:
    """Each cycle counts entries that appeared, changed content and disappeared."""
    state = State()
    counts = []
    for now, text in [(T0, BASE_LDIF + ce(CE1) + ce(CE2)),
                      (T0 + 1, BASE_LDIF + ce(CE1) + ce(CE2)),
                      (T0 + 2, BASE_LDIF + ce(CE1, "Closed")),
                      (T0 + 3, BASE_LDIF + ce(CE1, "Closed") + ce(CE2))]:
        result = run([source("prov", text, now=now)], now=now, previous=state)
        state = result.state
        counts.append((result.stats.total, result.stats.new, result.stats.modified, result.stats.deleted))
    # total counts o=grid, o=glue, the two containers and the CEs
    assert counts == [(6, 6, 0, 0), (6, 0, 0, 0), (5, 0, 1, 1), (6, 1, 0, 0)]


def test_modify_timestamp_changes_only_with_content() -> None:
    """modifyTimestamp moves when an entry's content changes; createTimestamp never does."""
    state = State()
    stamps = []
    for now, status in [(T0, "Production"), (T0 + 120, "Production"), (T0 + 240, "Draining")]:
        result = run([source("prov", BASE_LDIF + ce(CE1, status), now=now)], now=now, previous=state)
        state = result.state
        i = result.snapshot.find(DN.parse(CE1))
        stamps.append((result.snapshot.created(i), result.snapshot.modified(i)))
    assert stamps == [(gtime(T0), gtime(T0)), (gtime(T0), gtime(T0)), (gtime(T0), gtime(T0 + 240))]


def test_failed_source_reuses_last_good_output_within_cache_ttl() -> None:
    """A failing source's last good output is served until cache_ttl has passed, then dropped."""
    config = dataclasses.replace(CONFIG, cache_ttl=600)
    first = run([source("prov", BASE_LDIF + ce(CE1))], config=config)
    failed = run([source("prov", None, now=T0 + 600, error="timed out after 30s")], now=T0 + 600,
                 previous=first.state, config=config)
    assert entry(failed.snapshot, CE1) is not None
    assert any(p.where == "prov" and "timed out" in p.message for p in failed.problems)
    assert failed.stats.failed_sources == 1
    status = entry(failed.snapshot, "bdiiSourceName=prov,Hostname=bdii.example.org,o=infosys")
    assert status.get("bdiiSourceStatus") == ("stale",)
    assert status.get("bdiiSourceLastSuccess") == (gtime(T0),)
    assert status.get("bdiiSourceLastError") == ("timed out after 30s",)
    expired = run([source("prov", None, now=T0 + 601, error="timed out")], now=T0 + 601,
                  previous=failed.state, config=config)
    assert entry(expired.snapshot, CE1) is None


def test_infosys_update_stats_entry_has_the_legacy_attributes() -> None:
    """`Hostname=HOST,o=infosys` is an UpdateStats entry with the attributes check_bdii_entries reads."""
    result = run([source("prov", BASE_LDIF + ce(CE1))], previous=State())
    stats = entry(result.snapshot, "Hostname=bdii.example.org,o=infosys")
    assert stats is not None and stats.has_object_class("UpdateStats")
    names = {name for name, _ in stats.items()}
    assert names >= {"Hostname", "TotalEntries", "UpdateTime", "DBUpdateTime", "NewEntries", "QueryTime",
                     "ProvidersTime", "PluginsTime", "ReadTime", "FailedAdds", "ModifiedEntries",
                     "DeletedEntries", "FailedDeletes", "FailedModifies"}
    assert stats.get("TotalEntries") == ("5",)
    assert stats.get("NewEntries") == ("5",)
    i = result.snapshot.find(stats.dn)
    assert result.snapshot.modified(i) == gtime(T0)
    assert entry(result.snapshot, "o=infosys") is not None


def test_entries_kept_by_delayed_delete_show_unknown_state() -> None:
    """A vanished endpoint is still served during the delay, with its health state set to unknown."""
    skel = ("dn: o=glue\nobjectClass: organization\no: glue\n\n"
            "dn: GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Group\nGLUE2GroupID: resource\n\n")
    ep = ("dn: GLUE2EndpointID=ep,GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Endpoint\n"
          "GLUE2EndpointID: ep\nGLUE2EndpointHealthState: ok\nGLUE2EndpointURL: https://h:443\n\n")
    cfg = dataclasses.replace(Config(), delete_delay=600, hostname="h")
    first = build([SourceResult("ldif/a.ldif", "ldif", (skel + ep).encode(), 0, 0)], State(), cfg, 1000)
    second = build([SourceResult("ldif/a.ldif", "ldif", skel.encode(), 0, 0)], first.state, cfg, 1100)
    snap = second.snapshot
    kept = snap.entries[snap.find(DN.parse("GLUE2EndpointID=ep,GLUE2GroupID=resource,o=glue"))]
    assert kept.get("GLUE2EndpointHealthState") == ("unknown",)
    assert kept.get("GLUE2EndpointHealthStateInfo")[0].startswith("No longer published")
    assert kept.get("GLUE2EndpointURL") == ("https://h:443",)
