"""flux hwloc info / topology (flux-hwloc(1)) on a real instance of 2 brokers."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from broker.testing import TestInstance
from flux.resource.topology import info_line, local_topology

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def test_info_sums_every_broker_or_the_ranks_named(inst):
    here = local_topology(sorted(os.sched_getaffinity(0)))
    one = info_line([here])
    # both brokers run on this host, with its CPUs
    r = inst.flux("hwloc", "info")
    assert r.returncode == 0, r.stderr
    assert r.stdout == info_line([here, here]) + "\n"
    assert r.stdout.startswith("2 Machines, ")
    assert inst.flux("hwloc", "info", "-r", "1").stdout == one + "\n"
    assert inst.flux("hwloc", "info", "--rank=all").stdout == r.stdout
    assert inst.flux("hwloc", "info", "-l").stdout == one + "\n"


def test_topology_is_one_xml_document_per_rank(inst):
    r = inst.flux("hwloc", "topology")
    assert r.returncode == 0, r.stderr
    docs = [d for d in r.stdout.split('<?xml version="1.0" encoding="UTF-8"?>\n') if d]
    assert len(docs) == 2
    ranks = []
    for doc in docs:
        root = ET.fromstring(doc.split("\n", 1)[1])           # after the DOCTYPE
        infos = {i.get("name"): i.get("value") for i in root.find("object").findall("info")}
        ranks.append(infos["FluxRank"])
    assert ranks == ["0", "1"]


def test_bad_ranks_and_options(inst):
    r = inst.flux("hwloc", "info", "-r", "7")
    assert r.returncode == 1 and "rank 7 is not in this instance (size 2)" in r.stderr
    r = inst.flux("hwloc", "info", "-r", "x")
    assert r.returncode == 2 and "invalid NODESET" in r.stderr
    r = inst.flux("hwloc", "topology", "-l", "-r", "0")
    assert r.returncode == 2 and "--local and --rank" in r.stderr
