"""Names and behaviours of Flux's Python bindings found missing or wrong by a second
sweep of the API (python-api.md), checked without an instance."""
from __future__ import annotations

import pytest

from flux.idset import IDset
from flux.taskmap import TaskMap


def test_taskmap_decodes_every_form_to_the_same_map():
    block = TaskMap.decode('{"version":1,"map":[[0,2,2,1]]}')
    assert block == TaskMap.decode("[[0,2,2,1]]") == TaskMap.decode("(vector,(0,2,2))")
    assert block == TaskMap.decode("0-1;2-3") == TaskMap("[[0,1,2,1],[1,1,2,1]]")
    assert block == TaskMap([[0, 2, 2, 1]]) == TaskMap({"version": 1, "map": [[0, 2, 2, 1]]})
    assert block == "[[0,2,2,1]]" and block != TaskMap("[[0,2,1,2]]")


def test_taskmap_queries():
    cyclic = TaskMap.decode("[[0,2,1,2]]")
    assert cyclic.entries == [[0, 2, 1, 2]]
    assert (cyclic.nnodes, cyclic.total_nnodes, cyclic.total_ntasks) == (2, 2, 4)
    assert [cyclic.nodeid(t) for t in range(4)] == [0, 1, 0, 1]
    assert cyclic.tasks(1) == [1, 3] and cyclic.ntasks(0) == 2
    assert cyclic.taskids(0) == IDset("0,2") and cyclic.nodeids() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="invalid taskid 4"):
        cyclic.nodeid(4)
    with pytest.raises(ValueError, match="invalid nodeid 2"):
        cyclic.tasks(2)


def test_taskmap_encodings():
    cyclic = TaskMap("[[0,2,1,2]]")
    assert str(cyclic) == cyclic.encode() == "[[0,2,1,2]]"
    assert repr(cyclic) == "TaskMap('[[0,2,1,2]]')"
    assert cyclic.encode("wrapped") == '{"version":1,"map":[[0,2,1,2]]}'
    assert cyclic.encode("raw") == "0,2;1,3"
    assert cyclic.encode("pmi") == "(vector,(0,2,1),(0,2,1))"
    assert cyclic.encode("multiline") == "0\n1\n0\n1"
    assert cyclic.encode("hosts", hosts=["a", "b"]) == "a: 0,2\nb: 1,3"
    with pytest.raises(ValueError, match="unknown taskmap format 'yaml'"):
        cyclic.encode("yaml")


def test_taskmap_unknown_and_append():
    unknown = TaskMap.decode("[]")
    assert unknown.unknown and TaskMap().unknown and TaskMap.decode("").unknown
    assert str(unknown) == "[]" and unknown.encode("pmi") == ""
    with pytest.raises(ValueError, match="unknown"):
        unknown.nnodes
    built = TaskMap().append(0, 2, 1).append(0, 2, 1)
    assert built == TaskMap("[[0,2,1,2]]") and not built.unknown
    with pytest.raises(ValueError, match="invalid block"):
        built.append(0, 0, 1)


@pytest.mark.parametrize("text, message", [
    ("[[0,0,1,1]]", r"invalid entry \[0,0,1,1\]"),
    ('{"version":2,"map":[]}', "expected version=1, got 2"),
    ("[[0,1,1]]", "error in taskmap entry"),
    ("[1]", "entry 0 in taskmap is not an array"),
    ("[1", "invalid taskmap"),
    ("(vector,(0,a,1))", "unable to parse PMI_process_mapping"),
    ("0-1;1-2", "invalid raw task map"),
])
def test_taskmap_decode_errors(text, message):
    with pytest.raises(ValueError, match=message):
        TaskMap.decode(text)


def test_taskmap_check():
    TaskMap("[[0,2,2,1]]").check(TaskMap("[[0,2,1,2]]"))
    with pytest.raises(ValueError, match="got 1 nodes, expected 2"):
        TaskMap("[[0,2,2,1]]").check(TaskMap("[[0,1,4,1]]"))
    with pytest.raises(ValueError, match="got 6 total tasks, expected 4"):
        TaskMap("[[0,2,2,1]]").check(TaskMap("[[0,2,3,1]]"))
    with pytest.raises(ValueError, match="node 0 has 3 tasks, expected 2"):
        TaskMap("[[0,2,2,1]]").check(TaskMap("[[0,1,3,1],[1,1,1,1]]"))


# -- flux.resource.ResourceCount (flux-core t/python/t0041-resource-count.py) -----------

def test_resource_count_valid_counts_and_scaled():
    from flux.resource.ResourceCount import ResourceCount

    assert list(ResourceCount(2, 8).valid_counts(5)) == [5, 4, 3, 2]
    assert list(ResourceCount(4, 8).valid_counts(3)) == []
    assert list(ResourceCount(2, None).valid_counts(4)) == [4, 3, 2]
    stepped = ResourceCount(2, 8, IDset("2,4,8"))
    assert list(stepped.valid_counts(5)) == [4, 2] and list(stepped.valid_counts(1)) == []
    assert list(ResourceCount(3, 3).valid_counts(10)) == [3]
    count = ResourceCount(2, 8)
    assert count.scaled(1) is count
    assert (count.scaled(4).min, count.scaled(4).max, count.scaled(4)._values) == (8, 32, None)
    assert ResourceCount(2, None).scaled(3).max is None
    assert list(stepped.scaled(2).valid_counts(16)) == [16, 8, 4]
    assert repr(stepped) == "ResourceCount(2, 8, values=IDset('2,4,8'))"


@pytest.mark.parametrize("spec, low, high, values", [
    (2, 2, 2, None), ("13", 13, 13, None), ("[2]", 2, 2, None), ("7-9", 7, 9, None),
    ("[7-9]", 7, 9, None), ("3-3", 3, 3, None), ("2+", 2, None, None), ("[2+]", 2, None, None),
    ("2+:1:+", 2, None, None), ("2-5:1:+", 2, 5, None), ("2-5:3", 2, 5, [2, 5]),
    ("2-8:2:*", 2, 8, [2, 4, 8]), ("2-16:2:^", 2, 16, [2, 4, 16]),
    ("25-133:17:+", 25, 133, [25, 42, 59, 76, 93, 110, 127]),
    ("1,7-9", 1, 9, [1, 7, 8, 9]), ("[2,3,4,5]", 2, 5, None), ("5,7,13", 5, 13, [5, 7, 13]),
    ({"min": 2, "max": 8}, 2, 8, None), ({"min": 2}, 2, None, None),
    ({"min": 1, "max": 3, "operand": 2}, 1, 3, [1, 3]),
    ({"min": 2, "max": 16, "operand": 2, "operator": "*"}, 2, 16, [2, 4, 8, 16]),
    ({"min": 2, "max": 16, "operand": 2, "operator": "^"}, 2, 16, [2, 4, 16]),
])
def test_resource_count_from_count_spec(spec, low, high, values):
    from flux.resource.ResourceCount import ResourceCount

    count = ResourceCount.from_count_spec(spec)
    assert (count.min, count.max) == (low, high)
    top = high if high is not None else low + 3
    if values is None:
        assert list(count.valid_counts(top)) == list(range(top, low - 1, -1))
    else:
        assert sorted(count.valid_counts(top)) == values


@pytest.mark.parametrize("spec", [
    "", "[]", "0", "0-8", "[0]", "-5", "[-5]", "3-0", "[3-0]", "3-2:1:+", "0-", "13-",
    "2-8:1:*", "2-8:1:^", "2-8:1:/", "2+:2:*", "2+:2:^", "1-16:2:^", "4.2", "x", "1-2x",
    "[0", "0]", -1, 0, True,
    {"min": 0, "max": 8}, {"min": -2, "max": 6, "operand": 1, "operator": "+"},
    {"min": 3, "max": 1}, {"min": 4, "max": 6, "operand": 0, "operator": "+"},
    {"min": 2, "max": 16, "operand": 1, "operator": "*"},
    {"min": 1, "max": 16, "operand": 2, "operator": "^"},
    {"min": 2, "max": 16, "operand": 1, "operator": "/"},
    {"min": 2, "operator": "*", "operand": 2},
])
def test_resource_count_rejects_malformed_specs(spec):
    from flux.resource.ResourceCount import ResourceCount

    with pytest.raises(ValueError):
        ResourceCount.from_count_spec(spec)
