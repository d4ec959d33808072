"""Fixtures shared by the integration tests."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker.testing import SystemInstance


@pytest.fixture
def systems() -> Iterator[Callable[..., SystemInstance]]:
    """Make SystemInstances (brokers started from a bootstrap config); at the end every
    one is killed, and none of their brokers may be left running."""
    made: list[SystemInstance] = []

    def make(*args: Any, **kwargs: Any) -> SystemInstance:
        s = SystemInstance(*args, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()
        assert not s.live_pids()
