"""FluxError: a Flux errno and text, and the OSError subclass Python gives that errno."""
from __future__ import annotations

import errno
import pickle

import pytest

from broker.config import ConfigError
from flux.errors import FluxError


@pytest.mark.parametrize("num, base", [
    (errno.ENOENT, FileNotFoundError), (errno.EEXIST, FileExistsError),
    (errno.EPERM, PermissionError), (errno.ETIMEDOUT, TimeoutError),
    (errno.ECONNRESET, ConnectionResetError), (errno.EAGAIN, BlockingIOError),
])
def test_an_errno_gives_its_builtin_subclass(num, base):
    exc = FluxError(num, "why")
    assert isinstance(exc, base) and isinstance(exc, FluxError)
    assert (exc.errno, exc.strerror, str(exc), exc.args) == (num, "why", "why", (num, "why"))
    with pytest.raises(base):
        raise exc


def test_other_errnos_and_default_text():
    exc = FluxError(errno.EPROTO)
    assert type(exc) is FluxError and exc.strerror == "Protocol error"
    assert not isinstance(FluxError(errno.EINVAL, "x"), FileNotFoundError)


def test_subclasses_keep_their_own_constructor():
    exc = ConfigError("/etc/x.toml", 3, "a.b", "not a table")
    assert type(exc) is ConfigError and exc.errno == errno.EINVAL
    assert str(exc) == "/etc/x.toml:3: a.b: not a table" and exc.line == 3


def test_pickles_to_the_same_kind():
    again = pickle.loads(pickle.dumps(FluxError(errno.ENOENT, "gone")))
    assert isinstance(again, FileNotFoundError) and again.strerror == "gone"
