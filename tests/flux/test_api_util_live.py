"""flux.util's future decorators on a real instance's futures."""
from __future__ import annotations

import errno
import os
import signal
from typing import Any, Iterator

import pytest

from broker.testing import TestInstance
from flux.util import check_future_error, interruptible


@pytest.fixture(scope="module")
def handle() -> Iterator[Any]:
    inst = TestInstance().start()
    h = inst.handle()
    try:
        yield h
    finally:
        h.close()
        inst.stop()


class AttrLookup:
    """A binding-style wrapper whose get() raises a bare errno, as a C call would."""

    def __init__(self, h: Any, name: str) -> None:
        self.handle = h.rpc("attr.get", {"name": name})

    @check_future_error
    def get(self) -> str:
        try:
            return self.handle.get()["value"]
        except OSError as exc:
            raise OSError(exc.errno, os.strerror(exc.errno)) from None


def test_check_future_error_gives_the_broker_text(handle: Any) -> None:
    assert AttrLookup(handle, "size").get() == "1"
    with pytest.raises(OSError) as info:
        AttrLookup(handle, "no-such-attribute").get()
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == "unknown attribute 'no-such-attribute'"


def test_check_future_error_on_a_future_method(handle: Any) -> None:
    class Future:
        def __init__(self, f: Any) -> None:
            self.f = f

        def error_string(self) -> str | None:
            return self.f.error_string()

        @check_future_error
        def get(self) -> Any:
            self.f.wait_for()
            if self.f.error_string():
                raise OSError(errno.ENOENT, "No such file or directory")
            return self.f.get()

    f = Future(handle.rpc("job-info.lookup", {"id": 12345, "keys": ["jobspec"], "flags": 0}))
    with pytest.raises(OSError, match="unknown job") as info:
        f.get()
    assert info.value.errno == errno.ENOENT


def test_interruptible_on_a_real_future(handle: Any) -> None:
    seen = []

    class Waiting:
        def __init__(self, f: Any) -> None:
            self.f = f

        def get_flux(self) -> Any:
            return self.f.get_flux()

        @interruptible
        def get(self) -> Any:
            seen.append(signal.getsignal(signal.SIGINT))
            return self.f.get()

    before = signal.getsignal(signal.SIGINT)
    assert Waiting(handle.rpc("attr.get", {"name": "size"})).get()["value"] == "1"
    assert seen == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGINT) is before
