"""A user's pool of shell servers (jobmgr/exec/launcher.py): where a job goes, and
that a server on its way out after being idle gets no job."""
from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

import orjson

from jobmgr.exec.launcher import Launcher, ShellHandle, _Server

_HDR = struct.Struct(">I")


class _Log:
    def warning(self, *_a: Any, **_k: Any) -> None:
        pass

    error = warning


def _recv(sock: socket.socket) -> dict[str, Any]:
    (n,) = _HDR.unpack(sock.recv(4))
    return orjson.loads(sock.recv(n))


def _server(launcher: Launcher, uid: int) -> tuple[_Server, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = _Server(launcher, uid, ours, None)
    launcher._servers.setdefault(uid, []).append(server)
    theirs.settimeout(5)
    return server, theirs


def _handle(key: str) -> ShellHandle:
    return ShellHandle(key, key, lambda _pid: None, lambda _s, _o: None, lambda _e, _t: None)


def _close(*servers: _Server) -> None:
    for server in servers:
        if not server.closed:
            server.closed = True
            asyncio.get_running_loop().remove_reader(server.sock.fileno())
            server.sock.close()


def test_a_job_goes_to_the_least_busy_server_and_a_full_pool_does_not_grow() -> None:
    async def main() -> None:
        launcher = Launcher(_Log(), max_servers=2)
        uid = 4242                    # not ours: no fork is attempted for a pool at max
        a, _pa = _server(launcher, uid)
        b, _pb = _server(launcher, uid)
        a.shells["1"] = _handle("1")
        assert launcher._pick(uid) is b
        b.shells["2"] = _handle("2")
        b.shells["3"] = _handle("3")
        assert launcher._pick(uid) is a
        assert uid not in launcher._growing        # already at max_servers
        _close(a, b)

    asyncio.run(main())


def test_an_idle_extra_server_leaves_the_pool_before_it_is_told_to_stop() -> None:
    async def main() -> None:
        launcher = Launcher(_Log(), idle_timeout=0.01, max_servers=2)
        uid = 4242
        first, _pf = _server(launcher, uid)
        extra, theirs = _server(launcher, uid)
        first.shells["1"] = _handle("1")            # busy: the idle extra one is the pick
        assert launcher._pick(uid) is extra
        launcher._maybe_idle(extra)
        await asyncio.sleep(0.05)
        assert _recv(theirs) == {"op": "shutdown", "grace": 1.0}
        # still running until it exits, but no job may go to it any more
        assert launcher._servers[uid] == [first]
        assert launcher._pick(uid) is first
        _close(first, extra)

    asyncio.run(main())


def test_a_smaller_pool_after_a_config_reload_does_not_grow() -> None:
    async def main() -> None:
        launcher = Launcher(_Log(), max_servers=4)
        uid = 4242
        a, _pa = _server(launcher, uid)
        a.shells["1"] = _handle("1")
        launcher.set_max_servers(1)           # [exec] shell-servers = 1, reloaded
        assert launcher._pick(uid) is a and uid not in launcher._growing
        launcher.set_max_servers(None)        # the key removed: one per CPU
        assert launcher.max_servers == max(1, min(8, len(os.sched_getaffinity(0))))
        _close(a)

    asyncio.run(main())


def test_a_fork_asked_of_a_server_that_dies_fails_and_the_pool_can_grow_again() -> None:
    async def main() -> None:
        launcher = Launcher(_Log(), max_servers=2)
        uid = os.geteuid()
        owner, theirs = _server(launcher, uid)
        owner.shells["1"] = _handle("1")
        assert launcher._pick(uid) is owner        # busy: a fork is asked of the owner
        assert uid in launcher._growing
        for _ in range(3):
            await asyncio.sleep(0)             # the fork task runs; its message goes out
        assert _recv(theirs)["op"] == "fork"
        theirs.close()                             # the owner dies before answering
        for _ in range(100):
            if uid not in launcher._growing:
                break
            await asyncio.sleep(0.01)
        assert uid not in launcher._growing and not owner.forks

    asyncio.run(main())
