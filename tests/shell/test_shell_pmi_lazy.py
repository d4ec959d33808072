"""The shell's PMI server is made when a task first speaks PMI, not for every job."""
from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

from shell.plugins import pmi


class _Reactor:
    def __init__(self) -> None:
        self.fds: dict[int, Any] = {}

    def add_fd(self, fd: int, _events: int, fn: Any) -> None:
        self.fds[fd] = fn

    def remove_fd(self, fd: int, _fn: Any) -> None:
        self.fds.pop(fd, None)


def _shell() -> Any:
    me = SimpleNamespace(task_ranks=range(0, 2))
    info = SimpleNamespace(ntasks=2, me=me, tasks_per_shell=[2], nodeids=None)
    return SimpleNamespace(aux={}, args={"kvsname": "f1-t"}, jobid=1, info=info,
                           reactor=_Reactor(), getopt=lambda _n, d=None: d,
                           log=lambda *a: None, raise_exception=lambda note: None)


def _task(rank: int) -> Any:
    return SimpleNamespace(rank=rank, pass_fds=[], env={}, aux={})


def test_the_pmi_server_is_made_by_the_first_pmi_request_only() -> None:
    p = pmi.plugin()
    handlers = {topic: fn for topic, fn in p.handlers}
    sh = _shell()
    handlers["shell.init"]("shell.init", sh, None)
    tasks = [_task(0), _task(1)]
    for task in tasks:
        handlers["task.init"]("task.init", sh, task)
        handlers["task.fork"]("task.fork", sh, task)
    assert "server" not in sh.aux["pmi"]
    assert [t.env["PMI_RANK"] for t in tasks] == ["0", "1"]
    ends = [socket.socket(fileno=t.pass_fds[0]) for t in tasks]
    try:
        # task 1 exits without a word: still no server
        ends[1].close()
        sh.reactor.fds[tasks[1].aux["pmi"].fd](0)
        assert "server" not in sh.aux["pmi"]
        # task 0 speaks PMI: the server is made and answers
        ends[0].sendall(b"cmd=init pmi_version=1 pmi_subversion=1\n")
        sh.reactor.fds[tasks[0].aux["pmi"].fd](0)
        assert "server" in sh.aux["pmi"]
        ends[0].settimeout(5)
        assert ends[0].recv(4096).startswith(b"cmd=response_to_init")
        ends[0].sendall(b"cmd=get_my_kvsname\n")
        sh.reactor.fds[tasks[0].aux["pmi"].fd](0)
        assert b"kvsname=f1-t" in ends[0].recv(4096)
    finally:
        ends[0].close()
        handlers["shell.exit"]("shell.exit", sh, None)
