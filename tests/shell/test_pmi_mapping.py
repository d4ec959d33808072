"""PMI_process_mapping and RFC 34 task maps: test vectors and round trips."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shell.pmi.mapping import (
    block_nodeids,
    blocks,
    decode_process_mapping,
    decode_raw_taskmap,
    decode_taskmap,
    encode_process_mapping,
    encode_raw_taskmap,
    encode_taskmap,
    map_tasks,
    process_mapping,
    taskmap_of_counts,
)


def raw_taskmap(text: str) -> list[int]:
    """RFC 34's 'raw task map' (node-ordered idsets, ';'-separated) as node ids by rank."""
    owner: dict[int, int] = {}
    for node, idset in enumerate(text.split(";")):
        for part in idset.split(","):
            lo, _, hi = part.partition("-")
            for r in range(int(lo), int(hi or lo) + 1):
                owner[r] = node
    return [owner[r] for r in range(len(owner))]


# RFC 13's table: nnodes*ppn, block and cyclic forms
@pytest.mark.parametrize("nodeids,text", [
    ([0, 0, 1, 1], "(vector,(0,2,2))"),
    ([0, 1, 0, 1], "(vector,(0,2,1),(0,2,1))"),
    ([0] * 4 + [1] * 4, "(vector,(0,2,4))"),
    ([0, 1] * 4, "(vector,(0,2,1),(0,2,1),(0,2,1),(0,2,1))"),
    ([0, 0, 1, 1] + [2] * 4 + [3] * 4, "(vector,(0,2,2),(2,2,4))"),
    ([0, 1, 2, 3, 0, 1, 2, 3, 2, 3, 2, 3], "(vector,(0,4,1),(0,4,1),(2,2,1),(2,2,1))"),
])
def test_rfc13_vectors(nodeids, text):
    assert encode_process_mapping(nodeids) == text
    assert decode_process_mapping(text) == nodeids


def test_block_distribution_from_task_counts():
    assert process_mapping([4]) == "(vector,(0,1,4))"
    assert process_mapping([2, 2]) == "(vector,(0,2,2))"
    assert process_mapping([3, 1, 1]) == "(vector,(0,1,3),(1,2,1))"
    assert process_mapping([256] * 4096) == "(vector,(0,4096,256))"
    assert block_nodeids([1, 0, 2]) == [0, 2, 2]


def test_too_long_mapping_is_unknown():
    assert process_mapping([1, 2] * 100, limit=1023) == ""
    assert process_mapping([2, 2], limit=16) == "(vector,(0,2,2))"


@pytest.mark.parametrize("bad", ["", "(vector)", "vector,(0,1,1)", "(vector,(0,1))",
                                 "(vector,(0,1,-1))", "(vector,(a,1,1))", "(vector,(0,1,1)"])
def test_bad_mapping_is_refused(bad):
    with pytest.raises(ValueError, match="not a PMI_process_mapping vector"):
        decode_process_mapping(bad)


def test_decoder_ignores_white_space():
    assert decode_process_mapping(" (vector, (0,2,1),\t(0,2,1)) ") == [0, 1, 0, 1]


def test_refuses_empty_and_negative_input():
    with pytest.raises(ValueError):
        encode_process_mapping([])
    with pytest.raises(ValueError, match="negative node id"):
        blocks([0, -1])
    with pytest.raises(ValueError, match="negative task count"):
        block_nodeids([1, -1])


# RFC 34's test vectors: raw task map -> Flux task map
@pytest.mark.parametrize("raw,flux", [
    ("0", [[0, 1, 1, 1]]),
    ("0;1", [[0, 2, 1, 1]]),
    ("0-1", [[0, 1, 2, 1]]),
    ("0-1;2-3", [[0, 2, 2, 1]]),
    ("0,2;1,3", [[0, 2, 1, 2]]),
    ("1;0", [[1, 1, 1, 1], [0, 1, 1, 1]]),
    ("0-3;4-7;8-11;12-15", [[0, 4, 4, 1]]),
    ("0,4,8,12;1,5,9,13;2,6,10,14;3,7,11,15", [[0, 4, 1, 4]]),
    ("0-1,8-9;2-3,10-11;4-5,12-13;6-7,14-15", [[0, 4, 2, 2]]),
    ("0-1;2-3;4-5;6-7;8-11;12-15", [[0, 4, 2, 1], [4, 2, 4, 1]]),
    ("0,6;1,7;2,8;3,9;4,10,12,14;5,11,13,15", [[0, 6, 1, 2], [4, 2, 1, 2]]),
    ("14-15;12-13;10-11;8-9;4-7;0-3",
     [[5, 1, 4, 1], [4, 1, 4, 1], [3, 1, 2, 1], [2, 1, 2, 1], [1, 1, 2, 1], [0, 1, 2, 1]]),
    ("0-1;2-3;4-5;6-7;8-9;12-13;10-11;14-15",
     [[0, 5, 2, 1], [6, 1, 2, 1], [5, 1, 2, 1], [7, 1, 2, 1]]),
    ("12-15;8-11;4-7;0-3", [[3, 1, 4, 1], [2, 1, 4, 1], [1, 1, 4, 1], [0, 1, 4, 1]]),
])
def test_rfc34_vectors(raw, flux):
    nodeids = raw_taskmap(raw)
    text = encode_taskmap(nodeids)
    assert orjson.loads(text) == {"version": 1, "map": flux}
    assert decode_taskmap(text) == nodeids
    assert decode_taskmap(orjson.dumps(flux).decode()) == nodeids


@pytest.mark.parametrize("bad,why", [
    ("nope", "not JSON"),
    ('{"version":2,"map":[[0,1,1,1]]}', "version must be 1"),
    ("[]", "non-empty array"),
    ("[[0,1,1]]", "4 non-negative integers"),
    ("[[0,1,-1,1]]", "4 non-negative integers"),
    ('[[0,1,"1",1]]', "4 non-negative integers"),
])
def test_bad_taskmap_is_refused(bad, why):
    with pytest.raises(ValueError, match=why):
        decode_taskmap(bad)


nodeid_lists = st.lists(st.integers(0, 12), min_size=1, max_size=200)


@given(nodeid_lists)
def test_process_mapping_round_trip(nodeids):
    assert decode_process_mapping(encode_process_mapping(nodeids)) == nodeids


@given(nodeid_lists)
def test_taskmap_round_trip(nodeids):
    assert decode_taskmap(encode_taskmap(nodeids)) == nodeids


@given(st.integers(1, 64), st.integers(1, 64))
def test_even_block_distribution_is_one_block(nnodes, ppn):
    assert process_mapping([ppn] * nnodes) == f"(vector,(0,{nnodes},{ppn}))"


@given(st.integers(2, 16), st.integers(1, 16))
def test_cyclic_distribution_is_one_block_per_round(nnodes, rounds):
    nodeids = list(range(nnodes)) * rounds
    assert blocks(nodeids) == [(0, nnodes, 1)] * rounds
    assert orjson.loads(encode_taskmap(nodeids))["map"] == [[0, nnodes, 1, rounds]]


@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=12)
       .filter(lambda counts: sum(counts) > 0))
def test_taskmap_of_counts_is_the_block_layouts_map(counts):
    got = taskmap_of_counts(counts)
    assert got == orjson.loads(encode_taskmap(block_nodeids(counts)))
    assert decode_taskmap(orjson.dumps(got).decode()) == block_nodeids(counts)
    got["map"].append([9, 9, 9, 9])            # a new dict each call: the cache is safe
    assert taskmap_of_counts(counts) != got


def test_taskmap_of_counts_vectors():
    assert taskmap_of_counts([4]) == {"version": 1, "map": [[0, 1, 4, 1]]}
    assert taskmap_of_counts([2, 2]) == {"version": 1, "map": [[0, 2, 2, 1]]}
    assert taskmap_of_counts([2, 2, 1]) == {"version": 1, "map": [[0, 2, 2, 1], [2, 1, 1, 1]]}


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30)
       .map(lambda ids: [sorted(set(ids)).index(i) for i in ids]))
def test_raw_taskmap_round_trip(nodeids):
    text = encode_raw_taskmap(nodeids)
    assert raw_taskmap(text) == nodeids          # the RFC's reading of it
    assert decode_raw_taskmap(text) == nodeids


# -- the taskmap shell option (--taskmap=SCHEME[:VALUE]) ----------------------------------------

def test_block_is_the_default_and_needs_no_list():
    assert map_tasks([2, 2]) is None
    assert map_tasks([2, 2], {"scheme": "block", "value": ""}) is None


@pytest.mark.parametrize("counts,value,nodeids", [
    ([2, 2], "", [0, 1, 0, 1]),
    ([3, 1], "", [0, 1, 0, 0]),                     # a node that is full is skipped
    ([4, 4], "2", [0, 0, 1, 1, 0, 0, 1, 1]),
    ([3, 3, 0, 1], 2, [0, 0, 1, 1, 3, 0, 1]),
])
def test_cyclic(counts, value, nodeids):
    assert map_tasks(counts, {"scheme": "cyclic", "value": value}) == nodeids


@given(st.lists(st.integers(0, 5), min_size=1, max_size=6).filter(sum), st.integers(1, 4))
def test_cyclic_keeps_each_nodes_count(counts, step):
    nodeids = map_tasks(counts, {"scheme": "cyclic", "value": str(step)})
    assert [nodeids.count(n) for n in range(len(counts))] == counts
    assert decode_taskmap(encode_taskmap(nodeids)) == nodeids


def test_manual_takes_an_rfc34_map_with_the_jobs_counts():
    assert map_tasks([2, 2], {"scheme": "manual", "value": "[[0,2,1,2]]"}) == [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"places \[3, 1\] task\(s\) per node, the job runs "
                                         r"\[2, 2\]"):
        map_tasks([2, 2], {"scheme": "manual", "value": "[[0,1,3,1],[1,1,1,1]]"})
    with pytest.raises(ValueError, match="taskmap: manual: "):
        map_tasks([2, 2], {"scheme": "manual", "value": "{"})


def test_hostfile_places_task_i_on_line_is_host(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("b\na\nb\na\n")
    assert map_tasks([2, 2], {"scheme": "hostfile", "value": str(hosts)},
                     ["a", "b"]) == [1, 0, 1, 0]
    # nodes sharing a name (several brokers on one host) fill in order
    assert map_tasks([1, 1, 2], {"scheme": "hostfile", "value": str(hosts)},
                     ["b", "b", "a"]) == [0, 2, 1, 2]
    hosts.write_text("a\n")
    with pytest.raises(ValueError, match="names 1 host"):
        map_tasks([2, 2], {"scheme": "hostfile", "value": str(hosts)}, ["a", "b"])
    with pytest.raises(ValueError, match="No such file"):
        map_tasks([1], {"scheme": "hostfile", "value": str(tmp_path / "none")}, ["a"])


@pytest.mark.parametrize("option,why", [
    ({"scheme": "bogus", "value": ""}, "unknown scheme 'bogus'"),
    ({"scheme": "cyclic", "value": "x"}, "cyclic: invalid value 'x'"),
    ({"scheme": "cyclic", "value": 0}, "cyclic: invalid value '0'"),
    ("cyclic", "must be an object"),
])
def test_bad_taskmap_options_are_named(option, why):
    with pytest.raises(ValueError, match=why):
        map_tasks([2, 2], option)
