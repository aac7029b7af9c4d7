"""The example configuration files in etc/ are valid as shipped."""

from __future__ import annotations

import pytest

from bdii.core.config import Config
from bdii.core.gocdb import parse_site_list
from bdii.core.urls import parse_urls
from support import ROOT

ETC = ROOT / "etc"


@pytest.mark.parametrize("name", ["bdii.conf", "bdii-site.conf", "bdii-top.conf"])
def test_example_configuration_parses(name: str) -> None:
    """Each example bdii.conf reads without errors or unknown keys."""
    cfg = Config.from_legacy_text((ETC / name).read_text(), name)
    assert not [n for n in cfg.notices if "unknown key" in n]


@pytest.mark.parametrize("name", ["site-urls.conf", "top-urls.conf"])
def test_example_urls_files_parse(name: str) -> None:
    """The example source lists have no bad lines."""
    sources, problems = parse_urls((ETC / name).read_text(), name)
    assert sources and not problems


def test_example_gocdb_answer_gives_the_certified_production_sites() -> None:
    """The GOCDB sample yields its certified production sites with a GIIS URL, nothing else."""
    sites, problems = parse_site_list((ETC / "gocdb-sites.xml").read_bytes(), "gocdb-sites.xml")
    assert [s.name for s in sites] == ["SITE-A", "SITE-B"] and not problems
