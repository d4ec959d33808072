"""RFC 20 resource sets: parse, encode, short form, set operations, config (specs/R.md)."""
from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import flux.resource
from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource import RankInfo, ResourceSet

# RFC 20 data/spec_20/example1.json and example2.json
EXAMPLE1 = {
    "version": 1,
    "execution": {
        "R_lite": [{"rank": "19-22", "children": {"core": "0-47", "gpu": "0-7"}}],
        "nodelist": ["node[186-189]"],
        "nslots": 32,
        "starttime": 1676560542,
        "expiration": 1676562342,
    },
}
EXAMPLE2 = {
    "version": 1,
    "execution": {
        "R_lite": [
            {"rank": "0-1", "children": {"core": "0-7", "gpu": "0"},
             "slots": {"cpu": {"count": 1, "core": "0-3"},
                       "gpu": {"count": 1, "core": "4-7", "gpu": "0"}}},
            {"rank": "2-3", "children": {"core": "0-3"},
             "slots": {"cpu": {"count": 1, "core": "0-3"}}},
        ],
        "nodelist": ["host[0-3]"],
        "nslots": 6,
        "starttime": 1790596800,
        "expiration": 1790598600,
    },
}


def make_r(ranks: str, cores: str | None, gpus: str | None = None,
           hosts: str | None = None) -> ResourceSet:
    """R with one R_lite entry, the way flux-core's librlist tests build it."""
    children: dict[str, str] = {"core": cores or ""}
    if gpus is not None:
        children["gpu"] = gpus
    execution: dict[str, Any] = {"R_lite": [{"rank": ranks, "children": children}]}
    if hosts is not None:
        execution["nodelist"] = [hosts]
    return ResourceSet({"version": 1, "execution": execution})


def test_rfc20_example1() -> None:
    r = ResourceSet(orjson.dumps(EXAMPLE1).decode())
    assert r.nnodes == 4 and r.ncores == 192 and r.ngpus == 32
    assert str(r.ranks) == "19-22"
    assert r.nodelist.expand() == ["node186", "node187", "node188", "node189"]
    assert (r.starttime, r.expiration) == (1676560542.0, 1676562342.0)
    assert r.dumps() == str(r) == r.rlist == "rank[19-22]/core[0-47],gpu[0-7]"
    assert r.hostname(20) == "node187"
    assert orjson.loads(r.encode()) == {
        "version": 1,
        "execution": {
            "R_lite": [{"rank": "19-22", "children": {"core": "0-47", "gpu": "0-7"}}],
            "nodelist": ["node[186-189]"],
            "starttime": 1676560542.0,
            "expiration": 1676562342.0,
        },
    }


def test_rfc20_example2_with_slot_extension() -> None:
    r = ResourceSet(EXAMPLE2)
    assert r.dumps() == "rank[0-1]/core[0-7],gpu0 rank[2-3]/core[0-3]"
    assert (r.nnodes, r.ncores, r.ngpus) == (4, 24, 2)
    assert str(r.nodelist) == "host[0-3]"


def test_encode_is_compact_json_that_decodes_to_an_equal_set() -> None:
    r = ResourceSet(EXAMPLE2)
    text = r.encode()
    assert " " not in text
    assert ResourceSet(text) == r
    assert ResourceSet(text.encode()) == r  # bytes are accepted too


def test_r_lite_groups_identical_ranks_and_compresses_nodelist() -> None:
    r = ResourceSet()
    for rank in range(6):
        r.add_rank(rank, f"n{rank}", cores="0-3" if rank % 2 == 0 else "0-7")
    out = r.to_dict()["execution"]
    assert out["R_lite"] == [
        {"rank": "0,2,4", "children": {"core": "0-3"}},
        {"rank": "1,3,5", "children": {"core": "0-7"}},
    ]
    assert out["nodelist"] == ["n[0-5]"]
    assert r.dumps() == "rank[0,2,4]/core[0-3] rank[1,3,5]/core[0-7]"


@pytest.mark.parametrize("build,short", [
    # flux-core librlist test_dumps and issue 2202 vectors
    ([], ""),
    ([(0, "0-3")], "rank0/core[0-3]"),
    ([(0, "0-3"), (1, "0-7")], "rank0/core[0-3] rank1/core[0-7]"),
    ([(0, "0-3"), (1, "0-7"), (1234567, "0-12345"), (1234568, "0-12346")],
     "rank0/core[0-3] rank1/core[0-7] rank1234567/core[0-12345] rank1234568/core[0-12346]"),
    ([(0, "0"), (1, "1"), (2, "2"), (3, "3")], "rank0/core0 rank1/core1 rank2/core2 rank3/core3"),
    ([(0, "0-1"), (1, "0,2"), (2, "0,3"), (3, "3-4")],
     "rank0/core[0-1] rank1/core[0,2] rank2/core[0,3] rank3/core[3-4]"),
    ([(0, "0-3"), (1, "0-1"), (2, "0-1")], "rank0/core[0-3] rank[1-2]/core[0-1]"),
])
def test_dumps_vectors(build: list[tuple[int, str]], short: str) -> None:
    r = ResourceSet()
    for rank, cores in build:
        r.add_rank(rank, "host", cores)
    assert r.dumps() == short


def test_short_form_from_config_matches_admin_guide() -> None:
    r = ResourceSet.from_config([{"hosts": "test[0-7]", "cores": "0-3"}])
    assert r.dumps() == "rank[0-7]/core[0-3]"
    assert str(r.nodelist) == "test[0-7]"


@pytest.mark.parametrize("a,b,result", [
    (("0", "0-3", None, "foo15"), ("0", "0-3", None, "foo15"), ""),
    (("0", "0-3", "0-1", "foo15"), ("0", "0-3", "0-1", "foo15"), ""),
    (("0", "0-3", None, "foo15"), ("0", "0-1", None, "foo15"), "rank0/core[2-3]"),
    (("0", "0-3", "0", "foo15"), ("0", "0-3", None, "foo15"), "rank0/gpu0"),
])
def test_diff_vectors(a: tuple, b: tuple, result: str) -> None:
    assert make_r(*a).diff(make_r(*b)).dumps() == result
    assert (make_r(*a) - make_r(*b)).dumps() == result


@pytest.mark.parametrize("a,b,result", [
    (("0", "0-3", None, "foo15"), ("0", "0-3", None, "foo15"), "rank0/core[0-3]"),
    (("0", "0-3", "0-1", "foo15"), ("1", "0-3", "0-1", "foo16"), "rank[0-1]/core[0-3],gpu[0-1]"),
    (("0", "0-3", None, "foo15"), ("0", None, "0", "foo15"), "rank0/core[0-3],gpu0"),
])
def test_union_vectors(a: tuple, b: tuple, result: str) -> None:
    assert make_r(*a).union(make_r(*b)).dumps() == result
    assert (make_r(*a) | make_r(*b)).dumps() == result


@pytest.mark.parametrize("a,b,result", [
    (("0-10", "0-3", None, "foo[0-10]"), ("9-15", "1", None, "foo[9-15]"), "rank[9-10]/core1"),
    (("0", "0-3", "0-1", "foo15"), ("1", "0-3", "0-1", "foo16"), ""),
])
def test_intersect_vectors(a: tuple, b: tuple, result: str) -> None:
    assert make_r(*a).intersect(make_r(*b)).dumps() == result
    assert (make_r(*a) & make_r(*b)).dumps() == result


def test_operations_take_several_arguments_and_strings() -> None:
    base = make_r("0-3", "0-3")
    other = make_r("1", "0-3").encode()
    assert base.diff(other, make_r("2", "0").to_dict()).dumps() == \
        "rank[0,3]/core[0-3] rank2/core[1-3]"
    assert base.union().dumps() == base.dumps()
    assert base.intersect(make_r("0-1", "1"), make_r("1-2", "1-2")).dumps() == "rank1/core1"


def test_union_with_conflicting_hostnames_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 0: hostname 'b' conflicts with 'a'"):
        make_r("0", "0", hosts="a").union(make_r("0", "1", hosts="b"))


def test_copy_ranks_vectors() -> None:
    r = make_r("0-5", "0-3", "0", "foo[0-5]")
    three = r.copy_ranks(IDset("1,3,5"))
    assert three.dumps() == "rank[1,3,5]/core[0-3],gpu0" and three.ncores == 12
    assert str(three.nodelist) == "foo[1,3,5]"
    assert r.copy_ranks("5-9").dumps() == "rank5/core[0-3],gpu0"
    assert r.copy_ranks("9,20").dumps() == "" and r.copy_ranks("9,20").nnodes == 0
    assert r.nnodes == 6


def test_remove_ranks_vectors() -> None:
    r = make_r("0-5", "0-3", "0", "foo[0-5]")
    assert r.remove_ranks(IDset("1,3,5")) is r
    assert r.dumps() == "rank[0,2,4]/core[0-3],gpu0"
    assert str(r.nodelist) == "foo[0,2,4]"
    assert make_r("0-5", "0-3", "0", "foo[0-5]").remove_ranks("5-9").dumps() == \
        "rank[0-4]/core[0-3],gpu0"
    assert make_r("0-5", "0-3", "0", "foo[0-5]").remove_ranks("9,20").dumps() == \
        "rank[0-5]/core[0-3],gpu0"
    assert make_r("0-5", "0-3").remove_ranks(2).dumps() == "rank[0-1,3-5]/core[0-3]"
    with pytest.raises(ValueError, match="remove_ranks: invalid idset 'x'"):
        r.remove_ranks("x")


@pytest.mark.parametrize("a,b,cores,nodes,nodelist", [
    (("1", "0-3", "foo15"), ("0", "0-3", "foo16"), 8, 2, "foo[16,15]"),
    (("0,2-3", "0-3", "foo[0,2-3]"), ("1", "0-3", "foo1"), 16, 4, "foo[0-3]"),
    (("0", "0-3", "foo0"), ("0", "4-7", "foo0"), 8, 1, "foo0"),
    (("[0-1023]", "0-3", "foo[0-1023]"), ("[1000-1024]", "4-7", "foo[1000-1024]"),
     4196, 1025, "foo[0-1024]"),
])
def test_append_vectors(a: tuple, b: tuple, cores: int, nodes: int, nodelist: str) -> None:
    r = make_r(a[0], a[1], hosts=a[2])
    assert r.append(make_r(b[0], b[1], hosts=b[2])) is r
    assert (r.ncores, r.nnodes, str(r.nodelist)) == (cores, nodes, nodelist)


def test_append_of_resources_already_present_is_refused() -> None:
    r = make_r("0", "0-3")
    with pytest.raises(ValueError, match=re.escape("rank 0: core 2-3 already present")):
        r.append(make_r("0", "2-5"))


def test_add_rank_and_add_child_build_r_for_discovery() -> None:
    r = ResourceSet()
    r.add_rank(0, "node0", cores="0-3", gpus="0-1").add_rank(1, "node1", cores=IDset("0-3"))
    r.add_child(1, "gpu", "0")
    assert r.dumps() == "rank0/core[0-3],gpu[0-1] rank1/core[0-3],gpu0"
    assert str(r.nodelist) == "node[0-1]"
    assert r.children(0) == {"core": IDset("0-3"), "gpu": IDset("0-1")}
    assert list(r.nodes()) == [
        RankInfo(0, "node0", IDset("0-3"), IDset("0-1")),
        RankInfo(1, "node1", IDset("0-3"), IDset("0")),
    ]
    with pytest.raises(ValueError, match="rank 0: hostname 'other' conflicts with 'node0'"):
        r.add_rank(0, "other", cores="7")
    with pytest.raises(ValueError, match=re.escape("rank 1: gpu 0 already present")):
        r.add_child(1, "gpu", "0")
    with pytest.raises(ValueError, match="non-negative integer"):
        r.add_rank(-1)
    with pytest.raises(ValueError, match="rank 2 core: invalid idset"):
        r.add_rank(2, cores="0-")


def test_other_child_types_are_kept_and_counted() -> None:
    r = ResourceSet({"version": 1, "execution": {"R_lite": [
        {"rank": "0", "children": {"core": "0-1", "fpga": "0-2"}}]}})
    assert r.count("fpga") == 3 and r.count("core") == 2 and r.count("memory") == 0
    assert r.count("node") == 1
    assert r.dumps() == "rank0/core[0-1],fpga[0-2]"
    assert orjson.loads(r.encode())["execution"]["R_lite"][0]["children"] == \
        {"core": "0-1", "fpga": "0-2"}


def test_r_without_nodelist_has_no_hostnames() -> None:
    r = make_r("0-3", "0-1")
    assert "nodelist" not in r.to_dict()["execution"]
    assert len(r.nodelist) == 0 and r.hostname(2) is None
    with pytest.raises(KeyError, match="rank 9 is not in this resource set"):
        r.hostname(9)


def test_starttime_and_expiration() -> None:
    r = make_r("0", "0")
    assert (r.starttime, r.expiration) == (0.0, 0.0)
    r.starttime = 1234
    r.expiration = 2345.5
    decoded = ResourceSet(r.encode())
    assert (decoded.starttime, decoded.expiration) == (1234.0, 2345.5)
    assert decoded.diff(make_r("0", "1")).expiration == 2345.5  # results keep the window
    for bad, match in ((-1, "starttime: -1.0 is not a time"), ("5", "expected a number"),
                       (True, "expected a number"), (float("inf"), "is not a time")):
        with pytest.raises(ValueError, match=match):
            r.starttime = bad  # type: ignore[assignment]


def test_properties() -> None:
    r = ResourceSet({"version": 1, "execution": {
        "R_lite": [{"rank": "0-3", "children": {"core": "0-1"}}],
        "properties": {"ssd": "0-1", "gpu@amd": "3"}}})
    assert r.property_ranks() == {"ssd": IDset("0-1"), "gpu@amd": IDset("3")}
    r.remove_ranks("1,3")
    assert orjson.loads(r.encode())["execution"]["properties"] == {"ssd": "0"}
    r.set_property("big")
    r.set_property("ssd", "2")
    assert r.property_ranks() == {"ssd": IDset("0,2"), "big": IDset("0,2")}
    assert r.copy_ranks("2").property_ranks() == {"ssd": IDset("2"), "big": IDset("2")}
    assert make_r("0-1", "0").union(r).property_ranks()["ssd"] == IDset("0,2")
    with pytest.raises(ValueError, match=re.escape("property 'a|b' contains illegal character '|'")):
        r.set_property("a|b")
    with pytest.raises(ValueError, match="property x: ranks 7 are not in this resource set"):
        r.set_property("x", "7")


def test_state_and_scheduling_ride_along() -> None:
    r = ResourceSet({"version": 1, "execution": {"R_lite": []}, "scheduling": {"writer": "x"}},
                    keep_scheduling=True)
    assert r.state is None
    r.state = "up"
    copy = r.copy()
    assert copy.state == "up"
    assert orjson.loads(copy.encode())["scheduling"] == {"writer": "x"}
    assert ResourceSet({"version": 1, "scheduling": {"graph": None}}).nnodes == 0


def test_scheduling_is_dropped_by_set_operations() -> None:
    r = ResourceSet({"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {
        "core": "0"}}]}, "scheduling": {"writer": "x"}}, keep_scheduling=True)
    assert r.remove_ranks(1).to_dict()["scheduling"] == {"writer": "x"}
    assert "scheduling" not in r.union(ResourceSet()).to_dict()


def test_rank_without_children() -> None:
    r = ResourceSet().add_rank(5, "n5", cores=None)
    assert r.dumps() == "rank5" and r.ncores == 0 and r.nnodes == 1
    assert r.to_dict()["execution"]["R_lite"] == [{"rank": "5", "children": {"core": ""}}]
    assert ResourceSet(r.encode()) == r


def test_empty_set() -> None:
    r = ResourceSet()
    assert (r.nnodes, r.ncores, r.ngpus, r.dumps(), str(r.ranks)) == (0, 0, 0, "", "")
    assert orjson.loads(r.encode()) == {"version": 1, "execution": {
        "R_lite": [], "nodelist": [], "starttime": 0.0, "expiration": 0.0}}
    assert ResourceSet(r.encode()) == r


def test_host_ranks() -> None:
    r = make_r("0-3", "0", hosts="n[10-13]")
    assert r.host_ranks("n[13,11]") == [3, 1]
    assert r.host_ranks(["n10", "zz"], ignore_nomatch=True) == [0]


def test_module_paths_match_flux() -> None:
    from flux.resource.ResourceSet import ResourceSet as direct

    assert direct is ResourceSet is flux.resource.ResourceSet


def test_from_config_admin_guide_example() -> None:
    r = ResourceSet.from_config([
        {"hosts": "test[1-15]", "cores": "0-7", "gpus": "0"},
        {"hosts": "test16", "cores": "0-63", "gpus": "0-1", "properties": ["fatnode"]},
    ])
    assert r.dumps() == "rank[0-14]/core[0-7],gpu0 rank15/core[0-63],gpu[0-1]"
    assert str(r.nodelist) == "test[1-16]"
    assert r.property_ranks() == {"fatnode": IDset("15")}
    assert (r.nnodes, r.ncores, r.ngpus) == (16, 184, 17)


def test_from_config_merges_entries_and_follows_a_host_order() -> None:
    r = ResourceSet.from_config(
        [{"hosts": "n[0-3]", "cores": "0-3"},
         {"hosts": "n[2-3]", "gpus": "0", "properties": ["gpu"]}],
        hostlist="n[3,2,1,0]")
    assert r.dumps() == "rank[0-1]/core[0-3],gpu0 rank[2-3]/core[0-3]"
    assert str(r.nodelist) == "n[3,2,1,0]"
    assert r.property_ranks() == {"gpu": IDset("0-1")}


@pytest.mark.parametrize("entries,kwargs,match", [
    ([{"cores": "0"}], {}, r"resource.config\[0\].hosts: required hostlist string"),
    ([{"hosts": "n[1"}], {}, r"resource.config\[0\].hosts: invalid hostlist 'n\[1'"),
    ([{"hosts": "n1", "cores": "1-"}], {}, r"resource.config\[0\].cores: invalid idset '1-'"),
    ([{"hosts": "n1", "gpus": 3}], {}, r"resource.config\[0\].gpus: expected an idset string"),
    ([{"hosts": "n1"}, {"hosts": "n2", "core": "0"}], {}, r"resource.config\[1\]: unknown key 'core'"),
    ([{"hosts": "n1", "properties": "x"}], {}, "expected an array of strings"),
    ([{"hosts": "n1", "properties": ["a(b"]}], {}, "property 'a\\(b' contains illegal"),
    (["n1"], {}, r"resource.config\[0\]: expected a table"),
    ([{"hosts": "n[1-2]"}], {"hostlist": "n1"}, "host 'n2' is not in the hostlist"),
    ([{"hosts": "n1"}], {"hostlist": "n[1,1]"}, "hostlist: host 'n1' appears twice"),
])
def test_from_config_errors_name_the_field(entries: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResourceSet.from_config(entries, **kwargs)


@pytest.mark.parametrize("arg,match", [
    ("{", "R: invalid JSON"),
    ("[1]", "R: expected a JSON object, got list"),
    ({"execution": {}}, "R: missing 'version'"),
    ({"version": 2, "execution": {}}, "R version 2 not supported"),
    ({"version": 1}, "R: needs 'execution' or 'scheduling'"),
    ({"version": 1, "execution": []}, "R.execution: expected an object"),
    ({"version": 1, "execution": {"R_lite": {}}}, "R.execution.R_lite: expected an array"),
    ({"version": 1, "execution": {"R_lite": [5]}}, r"R_lite\[0\]: expected an object"),
    ({"version": 1, "execution": {"R_lite": [{"children": {}}]}}, r"R_lite\[0\]: missing 'rank'"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0-", "children": {}}]}},
     r"R_lite\[0\].rank: invalid idset '0-'"),
    ({"version": 1, "execution": {"R_lite": [{"rank": 0, "children": {}}]}},
     r"R_lite\[0\].rank: expected an idset string, got int"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0"}]}},
     r"R_lite\[0\].children: expected an object"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "x"}}]}},
     r"R_lite\[0\].children.core: invalid idset 'x'"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-1"}},
                                             {"rank": "0", "children": {"core": "1"}}]}},
     "rank 0: core 1 already present"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {}}],
                                  "nodelist": ["a"]}},
     "R.execution.nodelist: 1 hosts for 2 ranks"),
    ({"version": 1, "execution": {"R_lite": [], "nodelist": "a"}},
     "R.execution.nodelist: expected an array"),
    ({"version": 1, "execution": {"R_lite": [], "nodelist": ["a["]}},
     r"R.execution.nodelist: invalid hostlist 'a\['"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {}}],
                                  "properties": {"x": "1"}}},
     "R.execution.properties.x: ranks 1 are not in R_lite"),
    ({"version": 1, "execution": {"R_lite": [], "properties": {"a&b": ""}}},
     "property 'a&b' contains illegal character '&'"),
    ({"version": 1, "execution": {"R_lite": [], "properties": []}},
     "R.execution.properties: expected an object"),
    ({"version": 1, "execution": {"R_lite": [], "starttime": "now"}},
     "R.execution.starttime: expected a number, got str"),
    ({"version": 1, "execution": {"R_lite": [], "expiration": -5}},
     "R.execution.expiration: -5.0 is not a time"),
    ({"version": 1, "execution": {"R_lite": [], "starttime": 10, "expiration": 10}},
     "R.execution.expiration: 10.0 is not after starttime 10.0"),
])
def test_invalid_r_errors_name_the_field(arg: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResourceSet(arg)


def test_wrong_argument_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot be instantiated from int"):
        ResourceSet(5)  # type: ignore[arg-type]


def test_duplicate_ranks_with_disjoint_children_merge() -> None:
    r = ResourceSet({"version": 1, "execution": {"R_lite": [
        {"rank": "0-1", "children": {"core": "0-1"}},
        {"rank": "1", "children": {"core": "2", "gpu": "0"}}]}})
    assert r.dumps() == "rank0/core[0-1] rank1/core[0-2],gpu0"


def test_large_instance_r() -> None:
    text = orjson.dumps({"version": 1, "execution": {
        "R_lite": [{"rank": "0-16383", "children": {"core": "0-47", "gpu": "0-7"}}],
        "nodelist": ["node[0-16383]"]}}).decode()
    r = ResourceSet(text)
    assert (r.nnodes, r.ncores, r.ngpus) == (16384, 16384 * 48, 16384 * 8)
    job = make_r("3", "0-3", hosts="node3")
    free = r.diff(job)
    assert free.dumps() == "rank[0-2,4-16383]/core[0-47],gpu[0-7] rank3/core[4-47],gpu[0-7]"
    assert orjson.loads(free.encode())["execution"]["nodelist"] == ["node[0-16383]"]
    assert r.intersect(job).dumps() == "rank3/core[0-3]"


# --- property tests against a plain model: rank -> set of (type, id) ---------

Model = dict[int, set[tuple[str, int]]]

node_res = st.sets(st.tuples(st.sampled_from(["core", "gpu"]), st.integers(0, 7)),
                   min_size=1, max_size=10)
models = st.dictionaries(st.integers(0, 12), node_res, max_size=8)


def from_model(model: Model, hosts: bool = True) -> ResourceSet:
    r = ResourceSet()
    for rank, res in model.items():
        cores = IDset(i for t, i in res if t == "core")
        gpus = IDset(i for t, i in res if t == "gpu")
        r.add_rank(rank, f"node{rank}" if hosts else None, cores, gpus)
    return r


def to_model(r: ResourceSet) -> Model:
    out: Model = {}
    for info in r.nodes():
        out[info.rank] = {("core", i) for i in info.cores} | {("gpu", i) for i in info.gpus}
    return out


@given(models, st.booleans())
def test_encode_decode_round_trip(model: Model, hosts: bool) -> None:
    r = from_model(model, hosts)
    decoded = ResourceSet(r.encode())
    assert decoded == r
    assert to_model(decoded) == model
    assert decoded.dumps() == r.dumps()
    if hosts:
        assert decoded.nodelist.expand() == [f"node{k}" for k in sorted(model)]
    assert r.ncores == sum(1 for res in model.values() for t, _ in res if t == "core")


@given(models, models)
def test_set_operations_match_the_model(a: Model, b: Model) -> None:
    ra, rb = from_model(a), from_model(b)
    union = {k: a.get(k, set()) | b.get(k, set()) for k in a.keys() | b.keys()}
    diff = {k: v - b.get(k, set()) for k, v in a.items()}
    inter = {k: v & b[k] for k, v in a.items() if k in b}
    assert to_model(ra.union(rb)) == union
    assert to_model(ra.diff(rb)) == {k: v for k, v in diff.items() if v}
    assert to_model(ra.intersect(rb)) == {k: v for k, v in inter.items() if v}
    assert to_model(ra) == a and to_model(rb) == b  # operands are unchanged


@given(models, st.sets(st.integers(0, 14)))
def test_copy_and_remove_ranks_match_the_model(model: Model, ranks: set[int]) -> None:
    r = from_model(model)
    assert to_model(r.copy_ranks(IDset(ranks))) == {k: v for k, v in model.items() if k in ranks}
    r.remove_ranks(IDset(ranks))
    assert to_model(r) == {k: v for k, v in model.items() if k not in ranks}
    assert r.nodelist.expand() == [f"node{k}" for k in sorted(model) if k not in ranks]


def test_nodelist_from_hostlist_type() -> None:
    r = make_r("0-1", "0", hosts="a,b")
    assert isinstance(r.nodelist, Hostlist) and r.nodelist.expand() == ["a", "b"]
