"""flux.resource.Rlist and the ResourceSetImplementation interface."""
from __future__ import annotations

import json

import pytest

from flux.idset import IDset
from flux.resource import ResourceSet
from flux.resource.ResourceSetImplementation import ResourceSetImplementation
from flux.resource.Rlist import Rlist


def nodes(ranks, host="node", cores="0-3"):
    rl = Rlist()
    for r in ranks:
        rl.add_rank(r, f"{host}{r}", cores)
    return rl


def test_building_and_looking():
    rl = nodes([0, 1, 2]).add_child(1, "gpu", "0-1")
    assert rl.version == 1
    assert rl.nnodes() == 3 and rl.count("core") == 12 and rl.count("gpu") == 2
    assert str(rl.ranks()) == "0-2" and str(rl.nodelist()) == "node[0-2]"
    assert rl.ranks("node[1-2]") == IDset("1-2")
    assert rl.dumps() == "rank[0,2]/core[0-3] rank1/core[0-3],gpu[0-1]"
    again = Rlist(rl.encode())
    assert again.dumps() == rl.dumps()
    assert json.loads(rl.encode())["version"] == 1
    assert isinstance(rl, ResourceSetImplementation)
    assert isinstance(ResourceSet().impl, ResourceSetImplementation)


def test_set_operations_return_new_rlists():
    a, b = nodes([0, 1]), nodes([1, 2])
    assert str(a.union(b).ranks()) == "0-2"
    assert str(a.diff(b).ranks()) == "0"
    assert str(a.intersect(b).ranks()) == "1"
    assert str(a.ranks()) == "0-1"                 # unchanged
    c = a.copy().append(nodes([5]))
    assert str(c.ranks()) == "0-1,5" and str(a.ranks()) == "0-1"
    with pytest.raises(ValueError):
        a.copy().append(nodes([1]))                # already there
    assert str(a.union(b.encode()).ranks()) == "0-2"   # an R string works too
    with pytest.raises(TypeError):
        a.union(42)


def test_remove_and_remap():
    rl = nodes([0, 3, 7]).add_child(7, "gpu", "0")
    rl.rset.set_property("fat", "7")
    rl.remove_ranks(IDset("0"))
    assert str(rl.ranks()) == "3,7"
    rl.remap()
    assert str(rl.ranks()) == "0-1"
    assert str(rl.nodelist()) == "node[3,7]"       # hosts keep their order
    assert rl.rset.children(1) == {"core": IDset("0-3"), "gpu": IDset("0")}
    assert rl.rset.property_ranks() == {"fat": IDset("1")}


def test_a_resourceset_from_an_rlist():
    rl = nodes([0, 1])
    rs = ResourceSet(rl)
    assert rs.dumps() == rl.dumps() and rs.nnodes == 2
    rs.remove_ranks(0)
    assert rl.nnodes() == 2                          # a copy


def test_the_package_exports_the_class_as_flux_core_does():
    import flux.resource

    # not the submodule of the same name: the class, however it is imported
    from flux.resource import Rlist as FromPackage

    assert FromPackage is Rlist and flux.resource.Rlist is Rlist
    assert isinstance(flux.resource.Rlist(), Rlist)
