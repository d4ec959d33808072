"""Rank 0's shells enter their barriers through the shell server's socket (launcher.py)."""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from typing import Any

import orjson

from jobmgr.exec.bulkexec import BulkJob, LauncherWaiter
from jobmgr.exec.launcher import Launcher, ShellHandle, _Server

_HDR = struct.Struct(">I")


def _send(sock: socket.socket, msg: dict[str, Any]) -> None:
    data = orjson.dumps(msg)
    sock.sendall(_HDR.pack(len(data)) + data)


def _recv(sock: socket.socket) -> dict[str, Any]:
    (n,) = _HDR.unpack(sock.recv(4))
    return orjson.loads(sock.recv(n))


def _handle(key: str, on_barrier: Any) -> ShellHandle:
    return ShellHandle(key, key, lambda _pid: None, lambda _s, _o: None,
                       lambda _e, _t: None, on_barrier=on_barrier)


def test_a_barrier_from_the_server_reaches_exec_and_the_reply_carries_its_seq() -> None:
    async def main() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        server = _Server(Launcher(None), os.geteuid(), ours, None)
        entered: list[tuple[Any, Any, Any]] = []
        server.shells["7"] = _handle("7", lambda name, data, reply:
                                     entered.append((name, data, reply)))
        server.shells["8"] = _handle("8", None)          # launched by job-exec.launch
        _send(theirs, {"op": "barrier", "key": "7", "seq": 3, "name": "init", "data": {"a": 1}})
        _send(theirs, {"op": "barrier", "key": "8", "seq": 4, "name": "init", "data": None})
        for _ in range(100):
            if entered:
                break
            await asyncio.sleep(0.01)
        ((name, data, reply),) = entered
        assert (name, data) == ("init", {"a": 1})
        theirs.settimeout(5)
        await asyncio.sleep(0)        # messages go out at the end of the loop turn
        # a shell whose barriers belong to job-exec.barrier is refused
        assert _recv(theirs) == {"op": "barrier", "key": "8", "seq": 4, "errno": errno.EPROTO,
                                 "text": "barriers of this shell go to job-exec"}
        reply({"data": {"merged": True}})
        await asyncio.sleep(0)
        assert _recv(theirs) == {"op": "barrier", "key": "7", "seq": 3,
                                 "data": {"merged": True}}
        server.closed = True
        asyncio.get_running_loop().remove_reader(ours.fileno())
        ours.close()
        theirs.close()

    asyncio.run(main())


def test_barrier_replies_reach_requests_and_socket_waiters_alike() -> None:
    replies: list[tuple[str, Any]] = []

    class Ctx:
        def respond(self, msg: Any, payload: Any) -> None:
            replies.append(("respond", msg, payload))

        def respond_error(self, msg: Any, errnum: int, text: str) -> None:
            replies.append(("error", msg, errnum, text))

    from jobmgr.exec.job import Action

    bulk = BulkJob.__new__(BulkJob)
    bulk.ctx = Ctx()
    got: list[dict[str, Any]] = []
    waiter = LauncherWaiter(got.append)
    bulk._barrier_reply(Action("barrier", {"name": "pmi.1", "waiters": ["req", waiter],
                                           "data": {"k": "v"}}))
    assert replies == [("respond", "req", {"data": {"k": "v"}})]
    assert got == [{"data": {"k": "v"}}]
    bulk._barrier_reply(Action("barrier", {"name": "pmi.2", "waiters": [waiter, "req"],
                                           "errnum": errno.ECONNRESET, "text": "gone"}))
    assert got[-1] == {"errno": errno.ECONNRESET, "text": "gone"}
    assert replies[-1] == ("error", "req", errno.ECONNRESET, "gone")


def test_messages_of_one_loop_turn_reach_the_server_in_one_write() -> None:
    """Jobs started together wake their shell server once: what the launcher sends in a
    loop turn is written at its end, in order."""
    async def main() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        server = _Server(Launcher(None), os.geteuid(), ours, None)
        theirs.setblocking(False)
        for key in ("1", "2", "3"):
            server.send({"op": "start", "key": key, "args": {}})
        try:
            early = theirs.recv(1 << 16)
        except BlockingIOError:
            early = b""
        assert early == b""                       # nothing written before the turn ends
        await asyncio.sleep(0)
        theirs.settimeout(5)
        assert [_recv(theirs)["key"] for _ in range(3)] == ["1", "2", "3"]
        server.closed = True
        asyncio.get_running_loop().remove_reader(ours.fileno())
        ours.close()
        theirs.close()

    asyncio.run(main())
