"""flux.resource as user scripts call it, without an instance (python-api.md: flux.resource).

ResourceSet construction errors and keep_scheduling, copy_constraint (RFC 31) and its
errors, properties, add, copy_ranks, host_ranks; SchedResourceList and ResourceStatus
built from service responses.  The instance side is in
tests/integration/test_integration_api_resource.py."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource import DrainInfo, ResourceSet, ResourceStatus, SchedResourceList

# flux-core's t0022-resource-set.py fixture: 4 ranks fluke[0-3], 4 cores and a gpu each
R_INPUT = """{"version": 1, "execution": {"R_lite": [{"rank": "0-3",
  "children": {"core": "0-3", "gpu": "0"}}], "starttime": 0, "expiration": 0,
  "nodelist": ["fluke[0-3]"]}}"""


def props_set() -> ResourceSet:
    rset = ResourceSet(R_INPUT)
    rset.set_property("xx", "0-1")
    rset.set_property("zz", "2-3")
    rset.set_property("aa", "1")
    return rset


# -- construction -------------------------------------------------------------------------

def test_constructor_accepts_text_dict_and_none():
    assert str(ResourceSet(R_INPUT)) == "rank[0-3]/core[0-3],gpu0"
    assert ResourceSet(json.loads(R_INPUT)).ncores == 16
    empty = ResourceSet()
    assert (str(empty), empty.nnodes, empty.ncores, empty.ngpus) == ("", 0, 0, 0)


def test_dict_without_version_is_a_key_error():
    with pytest.raises(KeyError):
        ResourceSet({})
    with pytest.raises(KeyError):
        ResourceSet({"execution": {"R_lite": []}})


def test_bad_json_is_a_json_decode_error():
    with pytest.raises(json.JSONDecodeError, match="R: invalid JSON"):
        ResourceSet("{")
    with pytest.raises(ValueError):       # Flux: ResourceSet("") is a ValueError
        ResourceSet("")


@pytest.mark.parametrize("arg", [(1, 2), 5, 1.5, [R_INPUT]])
def test_other_types_are_a_type_error(arg):
    with pytest.raises(TypeError, match="ResourceSet cannot be instantiated from"):
        ResourceSet(arg)


@pytest.mark.parametrize("arg", [{"version": 199}, json.dumps({"version": 199}),
                                 {"version": 2, "execution": {}}])
def test_other_versions_are_a_value_error(arg):
    with pytest.raises(ValueError, match="R version (199|2) not supported"):
        ResourceSet(arg)


SCHED_R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}]},
           "scheduling": {"graph": {"nodes": [1, 2]}, "writer": "fluxion"}}


def test_scheduling_is_dropped_by_default():
    rset = ResourceSet(SCHED_R)
    assert rset.impl.scheduling is None
    assert "scheduling" not in json.loads(rset.encode())
    assert rset.dumps() == "rank0/core0"


def test_keep_scheduling_keeps_it_in_impl_and_encode():
    rset = ResourceSet(SCHED_R, keep_scheduling=True)
    assert rset.impl.scheduling == SCHED_R["scheduling"]
    assert json.loads(rset.encode())["scheduling"] == SCHED_R["scheduling"]
    assert json.loads(ResourceSet(json.dumps(SCHED_R), keep_scheduling=True).encode())[
        "scheduling"] == SCHED_R["scheduling"]
    rset.impl.scheduling = {"writer": "me"}
    assert json.loads(rset.encode())["scheduling"] == {"writer": "me"}
    # set operations build new sets: no scheduling there
    assert ResourceSet(rset | ResourceSet()).impl.scheduling is None


def test_impl_is_flux_resource_set_implementation_interface():
    rset = ResourceSet(R_INPUT)
    impl = rset.impl
    assert impl.version == 1
    assert (impl.dumps(), impl.encode()) == (rset.dumps(), rset.encode())
    assert impl.ranks() == IDset("0-3") and impl.nnodes() == 4 and impl.count("gpu") == 4
    assert str(impl.nodelist()) == "fluke[0-3]"
    other = ResourceSet(R_INPUT).remove_ranks("0-1").impl
    assert impl.diff(other).dumps() == "rank[0-1]/core[0-3],gpu0"
    assert ResourceSet(impl.intersect(other)).dumps() == "rank[2-3]/core[0-3],gpu0"


# -- properties -----------------------------------------------------------------------------

def test_properties_attribute_is_a_comma_separated_string():
    rset = ResourceSet(R_INPUT)
    assert rset.properties == ""
    rset.set_property("foo", "0-1")
    rset.set_property("bar", "2-3")
    assert isinstance(rset.properties, str)
    assert sorted(rset.properties.split(",")) == ["bar", "foo"]


def test_get_properties_is_rfc20_json_text():
    rset = props_set()
    text = rset.get_properties()
    assert isinstance(text, str)
    assert json.loads(text) == {"xx": "0-1", "zz": "2-3", "aa": "1"}
    assert ResourceSet(R_INPUT).get_properties() == "{}"


def test_set_property_errors():
    rset = ResourceSet(R_INPUT)
    for args in (("x^y",), ("yy", "0-6"), ("yy", "foo")):
        with pytest.raises(ValueError):
            rset.set_property(*args)
    rset.set_property("all")
    assert rset.copy_constraint({"properties": ["all"]}).dumps() == rset.dumps()


# -- copy_constraint ----------------------------------------------------------------------

@pytest.mark.parametrize("constraint,expected", [
    ({"properties": ["foo"]}, ""),                       # an unknown property: nothing
    ({"properties": ["xx"]}, "rank[0-1]/core[0-3],gpu0"),
    ({"properties": ["zz"]}, "rank[2-3]/core[0-3],gpu0"),
    ({"properties": ["aa"]}, "rank1/core[0-3],gpu0"),
    ({"not": [{"properties": ["aa", "xx"]}]}, "rank[0,2-3]/core[0-3],gpu0"),
    ({"properties": ["^aa", "^xx"]}, "rank[2-3]/core[0-3],gpu0"),
    ({"properties": ["^zz"]}, "rank[0-1]/core[0-3],gpu0"),
    ({"properties": ["fluke2"]}, "rank2/core[0-3],gpu0"),   # a hostname matches too
    ({"properties": []}, "rank[0-3]/core[0-3],gpu0"),
    ({}, "rank[0-3]/core[0-3],gpu0"),
    ({"hostlist": ["fluke[1,3]"]}, "rank[1,3]/core[0-3],gpu0"),
    ({"hostlist": ["fluke[5-9]"]}, ""),
    ({"ranks": ["0,2", "3"]}, "rank[0,2-3]/core[0-3],gpu0"),
    ({"and": [{"properties": ["xx"]}, {"ranks": ["1-3"]}]}, "rank1/core[0-3],gpu0"),
    ({"and": []}, "rank[0-3]/core[0-3],gpu0"),
    ({"or": [{"properties": ["aa"]}, {"hostlist": ["fluke3"]}]}, "rank[1,3]/core[0-3],gpu0"),
    ({"or": []}, "rank[0-3]/core[0-3],gpu0"),
    ({"not": [{"or": [{"properties": ["zz"]}, {"properties": ["aa"]}]}]},
     "rank0/core[0-3],gpu0"),
    ({"properties": ["xx"], "ranks": ["1-3"]}, "rank1/core[0-3],gpu0"),   # keys are and-ed
])
def test_copy_constraint_operators(constraint, expected):
    rset = props_set()
    result = rset.copy_constraint(constraint)
    assert isinstance(result, ResourceSet)
    assert result.dumps() == expected
    assert rset.copy_constraint(json.dumps(constraint)).dumps() == expected   # JSON text too


def test_copy_constraint_keeps_hosts_and_properties_of_the_matching_ranks():
    result = props_set().copy_constraint({"properties": ["xx"]})
    assert str(result.nodelist) == "fluke[0-1]"
    assert json.loads(result.get_properties()) == {"xx": "0-1", "aa": "1"}
    assert props_set().copy_constraint({"properties": ["xx"]}).copy_constraint(
        {"properties": ["aa"]}).dumps() == "rank1/core[0-3],gpu0"


@pytest.mark.parametrize("constraint,text", [
    ({"foo": []}, "unknown constraint operator: foo"),
    ({"properties": [42]}, "non-string property specified"),
    ({"properties": ["foo", "bar&"]}, 'invalid character \'&\' in property "bar&"'),
    ({"properties": "foo"}, "properties value must be an array"),
    ({"and": "foo"}, "and operator value must be an array"),
    ({"or": {"properties": []}}, "or operator value must be an array"),
    ({"not": "x"}, "not operator value must be an array"),
    ({"not": []}, "not operator requires at least one constraint"),
    ({"hostlist": "fluke0"}, "hostlist operator value must be an array"),
    ({"ranks": 3}, "ranks operator value must be an array"),
    ({"hostlist": ["foo0-10]"]}, "invalid hostlist 'foo0-10]' in [\"foo0-10]\"]"),
    ({"ranks": ["1-x"]}, "invalid idset '1-x' in [\"1-x\"]"),
    ({"and": [{"properties": [1]}]}, "non-string property specified"),
    ({"or": [[]]}, "constraint must be JSON object"),
    ([], "constraint must be JSON object"),
    ("[1]", "constraint must be JSON object"),
    ("{", "constraint is not valid JSON"),
])
def test_copy_constraint_errors(constraint, text):
    with pytest.raises(ValueError) as info:
        props_set().copy_constraint(constraint)
    assert str(info.value).startswith("copy_constraint: ")
    assert text in str(info.value)


def test_copy_constraint_result_has_no_state():
    rset = props_set()
    rset.state = "up"
    assert rset.copy_constraint({"properties": ["xx"]}).state is None


# -- add, copy_ranks, host_ranks -------------------------------------------------------------

def test_add_is_idempotent_where_append_is_not():
    rset = ResourceSet(R_INPUT)
    extra = ResourceSet().add_rank(4, "fluke4", cores="0-3", gpus="0")
    assert rset.add(extra) is rset
    assert str(rset) == "rank[0-4]/core[0-3],gpu0"
    rset.add(ResourceSet().add_rank(4, "fluke4", cores="0-3", gpus="0"))
    assert str(rset) == "rank[0-4]/core[0-3],gpu0"
    assert str(rset.nodelist) == "fluke[0-4]"
    with pytest.raises(ValueError):
        ResourceSet(R_INPUT).append(ResourceSet(R_INPUT))


def test_add_brings_properties_and_several_sets():
    rset = ResourceSet().add_rank(0, "n0", cores="0-1")
    one = ResourceSet().add_rank(0, "n0", cores="1-3").set_property("big")
    two = ResourceSet(R_INPUT).copy_ranks("2")
    rset.add(one, two.encode())
    assert rset.dumps() == "rank0/core[0-3] rank2/core[0-3],gpu0"
    assert rset.properties == "big"
    with pytest.raises(ValueError, match="hostname 'other' conflicts"):
        rset.add(ResourceSet().add_rank(0, "other"))


def test_copy_ranks_and_copy_keep_state():
    rset = ResourceSet(R_INPUT)
    rset.state = "up"
    for copy in (rset.copy_ranks("0"), rset.copy_ranks(IDset("1-2")), rset.copy(),
                 rset.union(ResourceSet()), rset - rset.copy_ranks("0")):
        assert copy.state == "up"
    assert str(rset.copy_ranks("1-2")) == "rank[1-2]/core[0-3],gpu0"


def test_host_ranks_returns_a_list_in_host_order():
    rset = ResourceSet(R_INPUT)
    assert rset.host_ranks("fluke0") == [0]
    assert rset.host_ranks("fluke[0,3]") == [0, 3]
    assert rset.host_ranks("fluke[3,0]") == [3, 0]
    assert rset.host_ranks(Hostlist("fluke[0-2]")) == [0, 1, 2]
    assert rset.host_ranks("fluke[0-2,7]", ignore_nomatch=True) == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="fluke7"):
        rset.host_ranks("fluke7")
    r2 = ResourceSet(R_INPUT.replace('"0-3"', '"10-13"').replace("fluke[0-3]", "fluke[10-13]"))
    assert r2.host_ranks("fluke[10,13]") == [10, 13]
    with pytest.raises(FileNotFoundError):
        r2.host_ranks("fluke[0-3,10-12]")


# -- SchedResourceList ----------------------------------------------------------------------

def sched_response() -> dict:
    all_ = props_set()
    return {"all": all_.encode(), "down": all_.copy_ranks("3").to_dict(),
            "allocated": ResourceSet().add_rank(0, "fluke0", cores="0-1").to_dict()}


def test_sched_resource_list_sets_and_states():
    rl = SchedResourceList(sched_response())
    assert rl.all.dumps() == "rank[0-3]/core[0-3],gpu0"
    assert rl.down.dumps() == "rank3/core[0-3],gpu0"
    assert rl.allocated.dumps() == "rank0/core[0-1]"
    assert rl.up.dumps() == "rank[0-2]/core[0-3],gpu0"
    assert rl.free.dumps() == "rank0/core[2-3],gpu0 rank[1-2]/core[0-3],gpu0"
    for state in ("all", "down", "allocated", "up", "free"):
        assert rl[state].state == state
        assert rl[state] is getattr(rl, state)
    assert rl.free.ncores == 10 and rl.up.ngpus == 3
    with pytest.raises(AttributeError, match="Invalid SchedResourceList attr bogus"):
        rl["bogus"]


def test_sched_resource_list_missing_sets_are_empty():
    rl = SchedResourceList({"all": props_set().encode()})
    assert (rl.down.nnodes, rl.allocated.nnodes, rl.free.nnodes) == (0, 0, 4)


@pytest.mark.parametrize("include", ["0-1", IDset("0-1"), "fluke[0-1]", Hostlist("fluke[0-1]"),
                                     "fluke[0-1,9]"])
def test_sched_resource_list_filter(include):
    rl = SchedResourceList(sched_response())
    rl.filter(include)
    assert rl.all.dumps() == "rank[0-1]/core[0-3],gpu0"
    assert rl.down.dumps() == ""
    assert rl.free.dumps() == "rank0/core[2-3],gpu0 rank1/core[0-3],gpu0"
    assert rl.all.state == "all" and rl.free.state == "free"


def test_sched_resource_list_copy_constraint():
    rl = SchedResourceList(sched_response())
    zz = rl.copy_constraint({"properties": ["zz"]})
    assert isinstance(zz, SchedResourceList)
    assert (zz.all.dumps(), zz.down.dumps(), zz.up.dumps()) == (
        "rank[2-3]/core[0-3],gpu0", "rank3/core[0-3],gpu0", "rank2/core[0-3],gpu0")
    assert zz.down.state == "down"
    assert rl.all.nnodes == 4          # the original is unchanged
    with pytest.raises(ValueError, match="copy_constraint: unknown constraint operator"):
        rl.copy_constraint({"nope": []})


# -- ResourceStatus -------------------------------------------------------------------------

def status_response() -> dict:
    R = ResourceSet().add_rank(0, "n0").add_rank(1, "n1").add_rank(2, "n2").add_rank(3, "n3") \
        .add_rank(4, "n4").add_rank(5, "n5")
    return {"R": R.to_dict(), "all": "0-5", "online": "0-4", "offline": "5", "exclude": "0",
            "torpid": "4", "drain": {"1-2": {"timestamp": 100.5, "reason": "bad"},
                                     "5": {"timestamp": 200.0, "reason": ""}}}


def test_resource_status_idsets():
    rs = ResourceStatus(status_response(), IDset("2-3"))
    assert isinstance(rs.all, IDset)
    assert {s: str(rs[s]) for s in ("all", "avail", "online", "offline", "exclude", "torpid",
                                    "housekeeping", "allocated", "drained", "draining")} == {
        "all": "0-5", "avail": "3", "online": "0-4", "offline": "5", "exclude": "0",
        "torpid": "4", "housekeeping": "", "allocated": "2-3", "drained": "1,5",
        "draining": "2"}
    assert str(rs.nodelist) == "n[0-5]"
    assert rs.get_idset("exclude", "torpid", "drained") == IDset("0-1,4-5")
    assert rs.get_idset() == IDset()


def test_resource_status_drain_info():
    rs = ResourceStatus(status_response())
    assert sorted(rs.drain_info, key=lambda d: d.timestamp) == [
        DrainInfo(IDset("1-2"), 100.5, "bad"), DrainInfo(IDset("5"), 200.0, "")]
    info = rs.get_drain_info(2)
    assert (info.ranks, info.timestamp, info.reason) == (IDset("1-2"), 100.5, "bad")
    assert rs.get_drain_info(3) is None
    with pytest.raises(ValueError, match="invalid rank 9"):
        rs.get_drain_info(9)


@pytest.mark.parametrize("include", ["1-3", IDset("1-3"), "n[1-3]", Hostlist("n[1-3,7]")])
def test_resource_status_filter(include):
    rs = ResourceStatus(status_response(), IDset("2-3"))
    rs.filter(include)
    assert (str(rs.all), str(rs.drained), str(rs.draining), str(rs.avail), str(rs.exclude)) == \
        ("1-3", "1", "2", "3", "")
    assert [d.ranks for d in rs.drain_info] == [IDset("1-2")]


def test_resource_status_housekeeping_and_empty():
    rs = ResourceStatus(status_response(), None, IDset("3"))
    assert str(rs.housekeeping) == "3" and str(rs.avail) == ""
    empty = ResourceStatus()
    assert (len(empty.all), empty.drain_info, str(empty.nodelist)) == (0, [], "")


def test_lazy_names_and_module_paths():
    import flux.resource.list
    import flux.resource.status

    assert flux.resource.resource_list is flux.resource.list.resource_list
    assert flux.resource.resource_status is flux.resource.status.resource_status
    assert flux.resource.ResourceJournalConsumer.topic == "resource.journal"
    assert set(flux.resource.__all__) <= set(dir(flux.resource))
    with pytest.raises(AttributeError):
        flux.resource.nope  # noqa: B018


# -- properties of the set operations -------------------------------------------------------

RANKS = st.integers(min_value=0, max_value=7)
NODE = st.tuples(st.sets(st.integers(0, 3), min_size=1), st.sets(st.sampled_from("abc")))
SETS = st.dictionaries(RANKS, NODE, max_size=8)


def build(model: dict) -> ResourceSet:
    rset = ResourceSet()
    for rank, (cores, _props) in sorted(model.items()):
        rset.add_rank(rank, f"h{rank}", cores=IDset(cores))
    for name in "abc":
        ranks = [r for r, (_c, props) in model.items() if name in props]
        if ranks:
            rset.set_property(name, IDset(ranks))
    return rset


PROPS = st.lists(st.sampled_from(["a", "b", "c", "^a", "^b", "d", "^d"]), max_size=3)
LEAF = st.one_of(
    st.builds(lambda p: {"properties": p}, PROPS),
    st.builds(lambda r: {"ranks": [IDset(r).encode()]}, st.sets(RANKS)),
    st.builds(lambda r: {"hostlist": [",".join(f"h{i}" for i in sorted(r))]} if r else
              {"hostlist": []}, st.sets(RANKS)),
)
CONSTRAINT = st.recursive(LEAF, lambda inner: st.one_of(
    st.builds(lambda xs: {"and": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda xs: {"or": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda xs: {"not": xs}, st.lists(inner, min_size=1, max_size=3))), max_leaves=6)


def model_match(c: dict, rank: int, props: set) -> bool:
    (op, values), = c.items()
    if op == "properties":
        return all((p[1:] not in props) if p.startswith("^") else (p in props or p == f"h{rank}")
                   for p in values)
    if op == "ranks":
        return any(rank in IDset(v) for v in values)
    if op == "hostlist":
        return any(f"h{rank}" in Hostlist(v) for v in values)
    results = [model_match(x, rank, props) for x in values]
    if op == "and":
        return all(results)
    if op == "or":
        return any(results) or not results
    return not all(results)


@given(SETS, CONSTRAINT)
def test_copy_constraint_keeps_exactly_the_matching_ranks(model, constraint):
    rset = build(model)
    result = rset.copy_constraint(constraint)
    want = sorted(r for r, (_c, props) in model.items() if model_match(constraint, r, props))
    assert list(result.ranks) == want
    assert result == rset.copy_ranks(IDset(want))


@given(SETS, SETS)
def test_add_is_union_in_place_and_idempotent(a, b):
    # one host name per rank on both sides, so the union is always defined
    x, y = build(a), build(b)
    expected = x.union(y)
    x.add(y)
    assert x == expected
    x.add(y)
    assert x == expected


@given(SETS, st.sets(RANKS))
def test_copy_ranks_keeps_state_and_is_intersection_by_rank(model, ranks):
    rset = build(model)
    rset.state = "free"
    copy = rset.copy_ranks(IDset(ranks))
    assert copy.state == "free"
    assert set(copy.ranks) == set(model) & ranks
    assert copy.host_ranks(Hostlist([f"h{r}" for r in sorted(set(model) & ranks)])) == \
        sorted(set(model) & ranks)
