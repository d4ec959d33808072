"""Every CLI test module must leave no broker behind."""
from __future__ import annotations

import pytest

from broker.testing import stray_brokers


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    yield
    assert stray_brokers() == []
