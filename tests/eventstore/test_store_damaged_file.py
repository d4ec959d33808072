"""A damaged store file is refused with what is wrong, not a SIGBUS or a silent new
store (eventstore/store.py check_data_file)."""
from __future__ import annotations

import os
import pytest

from eventstore.store import Store, check_data_file
from flux.errors import FluxError


def make_store(path) -> str:
    store = Store(str(path))
    store.close()
    return os.path.join(str(path), "data.mdb")


def test_a_healthy_store_passes(tmp_path):
    check_data_file(make_store(tmp_path / "s"))
    check_data_file(str(tmp_path / "nothing" / "data.mdb"))    # none yet: a new store


@pytest.mark.parametrize("damage, text", [
    (lambda p: os.truncate(p, 8192), "truncated"),
    (lambda p: os.truncate(p, 0), "empty"),
    (lambda p: open(p, "wb").write(b"garbage" * 1000), "not an LMDB store"),
])
def test_damage_is_named_before_lmdb_maps_the_file(tmp_path, damage, text):
    data = make_store(tmp_path / "s")
    assert os.path.getsize(data) > 8192      # a truncation to 8192 cuts used pages
    damage(data)
    with pytest.raises(FluxError, match=text):
        check_data_file(data)
    with pytest.raises(FluxError, match=text):
        Store(str(tmp_path / "s"))

