"""flux/resource/topology.py: a host's topology from sysfs, its summary and its XML."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from flux.resource.topology import Topology, info_line, local_topology, summary, to_xml


def _sysfs(root, layout):
    """LAYOUT: cpu -> (package, core); cpus given as None get no topology files."""
    for cpu, where in layout.items():
        d = root / f"cpu{cpu}" / "topology"
        d.mkdir(parents=True)
        if where is not None:
            (d / "physical_package_id").write_text(f"{where[0]}\n")
            (d / "core_id").write_text(f"{where[1]}\n")
    return str(root)


# 2 packages x 2 cores x 2 hardware threads; Linux numbers the sibling threads last
TWO_BY_TWO_BY_TWO = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1),
                     4: (0, 0), 5: (0, 1), 6: (1, 0), 7: (1, 1)}


def test_cores_and_pus_from_sysfs(tmp_path):
    top = local_topology(range(8), "node0", 3, sysfs=_sysfs(tmp_path, TWO_BY_TWO_BY_TWO))
    assert top.packages == {0: {0: [0, 4], 1: [1, 5]}, 1: {0: [2, 6], 1: [3, 7]}}
    assert (top.ncores, top.npus) == (4, 8)
    assert info_line([top]) == "1 Machine, 4 Cores, 8 PUs"
    # restricted to the CPUs the broker may use (its affinity)
    part = local_topology([0, 4, 1], "node0", sysfs=str(tmp_path))
    assert (part.ncores, part.npus) == (2, 3)
    assert info_line([top, part]) == "2 Machines, 6 Cores, 11 PUs"
    assert summary([]) == (0, 0, 0)


def test_a_cpu_without_topology_files_is_a_core_of_its_own(tmp_path):
    top = local_topology([0, 1, 2], "h", sysfs=_sysfs(tmp_path, {0: (0, 0), 1: None, 2: None}))
    assert (top.ncores, top.npus) == (3, 3)


def test_xml_is_an_hwloc2_document_with_every_core_and_pu(tmp_path):
    top = local_topology(range(8), 'a"b<c', 1, sysfs=_sysfs(tmp_path, TWO_BY_TWO_BY_TWO))
    doc = ET.fromstring(to_xml(top).split("\n", 2)[2])       # after the XML declaration
    assert doc.tag == "topology" and doc.get("version") == "2.0"
    machine = doc.find("object")
    assert machine.get("type") == "Machine" and machine.get("cpuset") == "0x000000ff"
    assert machine.find("info").get("value") == 'a"b<c'
    assert [o.get("type") for o in machine.findall("object")] == ["Package", "Package"]
    cores = machine.findall("./object/object")
    assert len(cores) == 4 and cores[0].get("cpuset") == "0x00000011"
    pus = [int(o.get("os_index")) for o in machine.iter("object") if o.get("type") == "PU"]
    assert sorted(pus) == list(range(8))


def test_wide_masks_are_32_bit_words():
    top = Topology("h", {0: {0: [0], 1: [40]}})
    doc = ET.fromstring(to_xml(top).split("\n", 2)[2])
    assert doc.find("object").get("cpuset") == "0x00000100,0x00000001"


def test_dict_round_trip_and_refusal():
    top = Topology("h", {0: {0: [0, 2], 1: [1, 3]}}, rank=2)
    assert Topology.from_dict(top.to_dict()) == top
    for bad in ({}, {"hostname": "h", "packages": [{"id": "x"}]}, None):
        with pytest.raises(ValueError, match="not a topology"):
            Topology.from_dict(bad)
