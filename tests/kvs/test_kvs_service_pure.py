"""Pure helpers of the kvs service modules (no broker)."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.constants import FLUX_ROLE_LOCAL, FLUX_ROLE_OWNER
from flux.message import Message
from kvs.content_service import in_process
from kvs.service import val_treeobj, written_keys
from kvs.txn import Txn


def test_written_keys_normalizes_and_skips_malformed():
    txns = [Txn([{"key": "a.b", "flags": 0, "dirent": None},
                 {"key": ".c..d.", "flags": 0, "dirent": None}]),
            Txn([{"nokey": 1}, {"key": 5}, {"key": ""}]),
            Txn([{"key": "a.b", "flags": 32, "dirent": None}])]
    assert written_keys(txns) == frozenset({"a.b", "c.d"})


@given(st.lists(st.text(alphabet="ab.", min_size=1, max_size=8), max_size=10))
def test_written_keys_match_normalize(keys):
    from kvs.keys import normalize

    txns = [Txn([{"key": k, "flags": 0, "dirent": None} for k in keys])]
    assert written_keys(txns) == frozenset(normalize(k) for k in keys)


@given(st.binary(max_size=300))
def test_val_treeobj_roundtrip(data):
    obj = val_treeobj(data)
    assert obj["ver"] == 1 and obj["type"] == "val"
    assert base64.b64decode(obj["data"]) == data


@pytest.mark.parametrize("rolemask,route,expect", [
    (FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL, ["mod"], True),
    (FLUX_ROLE_OWNER, ["client"], False),          # a local client
    (FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL, ["mod", "1"], False),  # a module of another rank
])
def test_in_process(rolemask, route, expect):
    msg = Message(topic="content.backing", rolemask=rolemask, route=route)
    assert in_process(msg) is expect
