"""The ``[kvs]`` table (kvs.config): what is accepted, what is refused and how."""
from __future__ import annotations

import pytest

from kvs.config import KvsConfig, parse_kvs_config


def test_missing_table_is_all_defaults():
    assert parse_kvs_config(None) == KvsConfig()
    assert parse_kvs_config({}) == KvsConfig()


def test_admin_guide_example_is_accepted():
    cfg = parse_kvs_config({"checkpoint-period": "30m", "gc-threshold": 100000})
    assert cfg == KvsConfig(gc_threshold=100000, checkpoint_period=1800.0)


def test_gc_threshold_zero_is_accepted():
    assert parse_kvs_config({"gc-threshold": 0}).gc_threshold == 0


@pytest.mark.parametrize("table, text", [
    ({"bogus": 1}, "kvs.bogus: unknown key (known: checkpoint-period, gc-threshold)"),
    ({"gc-threshold": "abc"}, "kvs.gc-threshold: must be an integer >= 0, got 'abc'"),
    ({"gc-threshold": -1}, "kvs.gc-threshold: must be an integer >= 0, got -1"),
    ({"gc-threshold": True}, "kvs.gc-threshold: must be an integer >= 0, got True"),
    ({"gc-threshold": 1.5}, "kvs.gc-threshold: must be an integer >= 0, got 1.5"),
    ({"checkpoint-period": "x"}, "kvs.checkpoint-period: invalid duration 'x'"),
    ({"checkpoint-period": True}, "kvs.checkpoint-period: invalid duration True"),
    ("text", "kvs: must be a table, got str"),
])
def test_bad_kvs_table_names_the_key(table, text):
    with pytest.raises(ValueError) as exc:
        parse_kvs_config(table)
    assert str(exc.value).startswith(text)
