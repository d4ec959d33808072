"""The launcher's side of the shell server socket reads framed messages however the
bytes are split across reads (many at once, or one cut anywhere)."""
from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from typing import Any

import orjson

from jobmgr.exec.launcher import Launcher, ShellHandle, _Server

_HDR = struct.Struct(">I")


def test_messages_cut_at_random_places_all_arrive_in_order() -> None:
    async def main() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        server = _Server(Launcher(None), os.geteuid(), ours, None)
        seen: list[Any] = []
        server.shells["7"] = ShellHandle("7", "7", lambda _p: None, lambda _s, _o: None,
                                         lambda _e, _t: None,
                                         on_barrier=lambda name, data, reply: seen.append(data))
        stream = b"".join(
            _HDR.pack(len(body)) + body
            for body in (orjson.dumps({"op": "barrier", "key": "7", "seq": 0,
                                       "name": "init", "data": {"i": i, "pad": "x" * (i % 50)}})
                         for i in range(500)))
        rng = random.Random(5)
        pos = 0
        while pos < len(stream):
            n = rng.choice([1, 3, 4, 5, 17, 100, 4096, 20000])
            theirs.sendall(stream[pos:pos + n])
            pos += n
            if rng.random() < 0.3:
                await asyncio.sleep(0)        # sometimes let it read part of the stream
        for _ in range(200):
            if len(seen) == 500:
                break
            await asyncio.sleep(0.01)
        assert [d["i"] for d in seen] == list(range(500))
        assert server.inbuf == b""
        server.closed = True
        asyncio.get_running_loop().remove_reader(ours.fileno())
        ours.close()
        theirs.close()

    asyncio.run(main())
