"""The per-shell PMI-1 server as a state machine: requests in, bytes out, no I/O."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shell.pmi.server import KEYLEN_MAX, VALLEN_MAX, PmiServer
from shell.pmi.wire import Message, StreamDecoder, unescape


class Task:
    """One simulated local task: what the server sent it, and why it was closed."""

    def __init__(self, server: PmiServer, rank: int) -> None:
        self.out = b""
        self.closed: list[str] = []
        self.conn = server.connect(rank, self._send, self.closed.append)

    def _send(self, data: bytes) -> None:
        self.out += data

    def req(self, line: str) -> list[Message]:
        """Send LINE; return the replies it produced right away."""
        self.out = b""
        self.conn.feed(line.encode() + b"\n")
        return self.replies()

    def replies(self) -> list[Message]:
        out, self.out = self.out, b""
        return [m for m in StreamDecoder().feed(out) if isinstance(m, Message)]


class Hub:
    """In-process exchange between shells; done() when all have called in (or by hand)."""

    def __init__(self, shells: int = 1, auto: bool = True) -> None:
        self.shells = shells
        self.auto = auto
        self.calls: list[tuple[dict[str, str], object]] = []

    def exchange(self, puts, done):
        self.calls.append((dict(puts), done))
        if self.auto and len(self.calls) % self.shells == 0:
            self.complete()

    def complete(self, result=None):
        batch = self.calls[-self.shells:]
        merged: dict[str, str] = {}
        for puts, _d in batch:
            merged.update(puts)
        for _p, done in batch:
            done(merged if result is None else result)


def make(size=2, ranks=(0, 1), hub=None, aborts=None, **kw):
    hub = hub or Hub()
    aborts = aborts if aborts is not None else []
    server = PmiServer(size, list(ranks), "kvs0", exchange=hub.exchange,
                       abort=lambda *a: aborts.append(a), **kw)
    return server, [Task(server, r) for r in ranks]


def ok(msgs, cmd, **args):
    assert len(msgs) == 1, msgs
    assert msgs[0].cmd == cmd
    assert msgs[0].args.get("rc") == "0", msgs[0]
    for k, v in args.items():
        assert msgs[0].args[k] == v
    return msgs[0]


def refused(msgs, cmd, why):
    assert len(msgs) == 1 and msgs[0].cmd == cmd and msgs[0].args["rc"] == "-1", msgs
    assert why in unescape(msgs[0].args["msg"])


# -- simple requests ----------------------------------------------------------------

def test_init_answers_version_1_1():
    _s, (t, _u) = make()
    t.conn.feed(b"cmd=init pmi_version=1 pmi_subversion=1\n")
    assert t.out == b"cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n"
    assert t.conn.initialized


def test_init_refuses_other_versions():
    _s, (t, _u) = make()
    refused(t.req("cmd=init pmi_version=2 pmi_subversion=0"), "response_to_init",
            "pmi_version 2 is not supported")
    refused(t.req("cmd=init"), "response_to_init", "missing pmi_version")


def test_job_information():
    _s, (t, _u) = make(size=3, ranks=(1, 2), appnum=4, universe_size=9)
    ok(t.req("cmd=get_maxes"), "maxes", kvsname_max="256", keylen_max=str(KEYLEN_MAX),
       vallen_max=str(VALLEN_MAX))
    ok(t.req("cmd=get_appnum"), "appnum", appnum="4")
    ok(t.req("cmd=get_universe_size"), "universe_size", size="9")
    ok(t.req("cmd=get_my_kvsname"), "my_kvsname", kvsname="kvs0")


def test_universe_size_defaults_to_job_size():
    _s, (t,) = make(size=5, ranks=(3,))
    ok(t.req("cmd=get_universe_size"), "universe_size", size="5")


def test_preset_keys_are_served_and_empty_ones_left_out():
    _s, (t, _u) = make(keys={"PMI_process_mapping": "(vector,(0,1,2))",
                             "flux.instance-level": "0", "flux.empty": ""})
    ok(t.req("cmd=get kvsname=kvs0 key=PMI_process_mapping"), "get_result",
       value="(vector,(0,1,2))")
    ok(t.req("cmd=get kvsname=kvs0 key=flux.instance-level"), "get_result", value="0")
    refused(t.req("cmd=get kvsname=kvs0 key=flux.empty"), "get_result", "not found")


def test_finalize():
    _s, (t, _u) = make()
    ok(t.req("cmd=finalize"), "finalize_ack")
    assert t.conn.finalized


@pytest.mark.parametrize("line,cmd", [
    ("mcmd=spawn\nnprocs=1\nexecname=x\nendcmd", "spawn_result"),
    ("cmd=publish_name service=s port=p", "publish_result"),
    ("cmd=unpublish_name service=s", "unpublish_result"),
    ("cmd=lookup_name service=s", "lookup_result"),
])
def test_dynamic_process_management_is_refused(line, cmd):
    _s, (t, _u) = make()
    refused(t.req(line), cmd, "is not supported")
    assert not t.closed


# -- put and get --------------------------------------------------------------------------

def test_local_put_is_visible_before_the_barrier():
    _s, (t, u) = make()
    ok(t.req("cmd=put kvsname=kvs0 key=a value=1"), "put_result")
    ok(t.req("cmd=get kvsname=kvs0 key=a"), "get_result", value="1")
    ok(u.req("cmd=get kvsname=kvs0 key=a"), "get_result", value="1")


def test_values_come_back_byte_for_byte():
    _s, (t, _u) = make()
    ok(t.req(r"cmd=put kvsname=kvs0 key=a value=x\ y\\z=w"), "put_result")
    assert t.req("cmd=get kvsname=kvs0 key=a")[0].args["value"] == r"x\ y\\z=w"


def test_value_with_bare_spaces_comes_back_escaped():
    _s, (t, _u) = make()
    ok(t.req("cmd=put kvsname=kvs0 key=a value=two words"), "put_result")
    got = t.req("cmd=get kvsname=kvs0 key=a")[0].args["value"]
    assert unescape(got) == "two words" and not t.closed


def test_missing_key_answers_rc_minus_one_with_a_message():
    _s, (t, _u) = make()
    refused(t.req("cmd=get kvsname=kvs0 key=nope"), "get_result", "key nope not found")


@pytest.mark.parametrize("line,why", [
    ("cmd=put key=a value=1", "missing kvsname"),
    ("cmd=put kvsname=other key=a value=1", "unknown kvsname other"),
    ("cmd=put kvsname=kvs0 value=1", "missing key"),
    ("cmd=put kvsname=kvs0 key=a", "missing value"),
    ("cmd=put kvsname=kvs0 key=PMI_process_mapping value=1", "reserved PMI_ namespace"),
    (f"cmd=put kvsname=kvs0 key={'k' * KEYLEN_MAX} value=1", "key longer than"),
    (f"cmd=put kvsname=kvs0 key=a value={'v' * VALLEN_MAX}", "value longer than"),
    ("cmd=put kvsname=kvs0 key=a value=x\\", "lone backslash"),
])
def test_bad_put_is_refused(line, why):
    _s, (t, _u) = make()
    refused(t.req(line), "put_result", why)
    assert not t.closed


def test_get_with_wrong_kvsname_is_refused():
    _s, (t, _u) = make()
    refused(t.req("cmd=get kvsname=x key=a"), "get_result", "unknown kvsname x")


# -- barrier and exchange ------------------------------------------------------------------

def test_barrier_waits_for_every_local_task_then_exchanges_once():
    hub = Hub()
    _s, tasks = make(size=3, ranks=(0, 1, 2), hub=hub)
    for i, t in enumerate(tasks):
        ok(t.req(f"cmd=put kvsname=kvs0 key=k{i} value=v{i}"), "put_result")
    assert tasks[0].req("cmd=barrier_in") == []
    assert tasks[2].req("cmd=barrier_in") == []
    assert hub.calls == []
    tasks[1].conn.feed(b"cmd=barrier_in\n")
    assert [puts for puts, _d in hub.calls] == [{"k0": "v0", "k1": "v1", "k2": "v2"}]
    for t in tasks:
        ok(t.replies(), "barrier_out")


def test_barrier_out_waits_for_a_late_exchange():
    hub = Hub(auto=False)
    server, (t, u) = make(hub=hub)
    t.req("cmd=barrier_in")
    u.req("cmd=barrier_in")
    assert len(hub.calls) == 1 and t.replies() == [] and u.replies() == []
    hub.complete({"remote": "r"})
    ok(t.replies(), "barrier_out")
    ok(u.replies(), "barrier_out")
    ok(t.req("cmd=get kvsname=kvs0 key=remote"), "get_result", value="r")
    assert server.barriers == 1


def test_each_exchange_carries_only_puts_since_the_last_barrier():
    hub = Hub()
    _s, (t,) = make(size=1, ranks=(0,), hub=hub)
    t.req("cmd=put kvsname=kvs0 key=a value=1")
    t.req("cmd=barrier_in")
    t.req("cmd=put kvsname=kvs0 key=b value=2")
    t.req("cmd=barrier_in")
    t.req("cmd=barrier_in")
    assert [p for p, _d in hub.calls] == [{"a": "1"}, {"b": "2"}, {}]


def test_exchange_across_two_shells():
    hub = Hub(shells=2)
    _s0, (a, b) = make(size=4, ranks=(0, 1), hub=hub)
    _s1, (c, d) = make(size=4, ranks=(2, 3), hub=hub)
    for t, r in zip((a, b, c, d), range(4)):
        ok(t.req(f"cmd=put kvsname=kvs0 key=card{r} value=addr{r}"), "put_result")
    # before the barrier, another shell's keys are not there
    refused(a.req("cmd=get kvsname=kvs0 key=card3"), "get_result", "not found")
    for t in (a, b, c):
        assert t.req("cmd=barrier_in") == []
    assert len(hub.calls) == 1  # shell 0 is waiting on shell 1
    d.conn.feed(b"cmd=barrier_in\n")
    for t in (a, b, c, d):
        ok(t.replies(), "barrier_out")
        for r in range(4):
            ok(t.req(f"cmd=get kvsname=kvs0 key=card{r}"), "get_result", value=f"addr{r}")


def test_failed_exchange_fails_the_barrier():
    hub = Hub(auto=False)
    _s, (t, u) = make(hub=hub)
    t.req("cmd=barrier_in")
    u.req("cmd=barrier_in")
    hub.calls[0][1](RuntimeError("peer shell lost"))
    refused(t.replies(), "barrier_out", "exchange failed: peer shell lost")
    refused(u.replies(), "barrier_out", "exchange failed")
    # the tasks may carry on with another barrier
    t.req("cmd=barrier_in")
    u.req("cmd=barrier_in")
    assert len(hub.calls) == 2


def test_exchange_that_raises_fails_the_barrier():
    def exchange(puts, done):
        raise OSError("no route")

    server = PmiServer(1, [0], "kvs0", exchange=exchange, abort=lambda *a: None)
    t = Task(server, 0)
    refused(t.req("cmd=barrier_in"), "barrier_out", "no route")


def test_a_second_answer_to_one_exchange_is_ignored():
    hub = Hub(auto=False)
    _s, (t, u) = make(hub=hub)
    t.req("cmd=barrier_in")
    u.req("cmd=barrier_in")
    done = hub.calls[0][1]
    done({"x": "1"})
    done({"x": "2"})
    ok(t.replies(), "barrier_out")
    assert t.replies() == []
    ok(t.req("cmd=get kvsname=kvs0 key=x"), "get_result", value="1")


@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.data())
def test_any_barrier_order_gives_every_task_every_key(shape, data):
    """Shells of 1-3 tasks, each task puts one key; tasks enter in any order."""
    size = sum(shape)
    hub = Hub(shells=len(shape))
    tasks: list[Task] = []
    start = 0
    for n in shape:
        _s, ts = make(size=size, ranks=range(start, start + n), hub=hub)
        tasks.extend(ts)
        start += n
    for r, t in enumerate(tasks):
        ok(t.req(f"cmd=put kvsname=kvs0 key=k{r} value={r * 7}"), "put_result")
    order = data.draw(st.permutations(range(size)))
    for i, r in enumerate(order):
        tasks[r].conn.feed(b"cmd=barrier_in\n")
        if i < size - 1:
            assert tasks[r].out == b""  # nobody leaves before the last one enters
    for r, t in enumerate(tasks):
        ok(t.replies(), "barrier_out")
        for k in range(size):
            ok(t.req(f"cmd=get kvsname=kvs0 key=k{k}"), "get_result", value=str(k * 7))


# -- protocol errors, abort, connections -----------------------------------------------

def test_malformed_line_closes_that_client_only():
    _s, (t, u) = make()
    t.conn.feed(b"cmd=get_maxes\nthis is not pmi\ncmd=get_appnum\n")
    assert [m.cmd for m in t.replies()] == ["maxes"]  # the line before is answered
    assert len(t.closed) == 1 and "PMI rank 0: protocol error" in t.closed[0]
    assert "expected key=value" in t.closed[0]
    t.conn.feed(b"cmd=get_appnum\n")
    assert t.out == b"" and len(t.closed) == 1
    ok(u.req("cmd=get_appnum"), "appnum")


def test_unknown_command_closes_the_client():
    _s, (t, _u) = make()
    t.conn.feed(b"cmd=frobnicate\n")
    assert t.closed == ["PMI rank 0: unknown command 'frobnicate'"]


def test_request_during_a_barrier_closes_the_client():
    _s, (t, _u) = make(hub=Hub(auto=False))
    t.req("cmd=barrier_in")
    t.conn.feed(b"cmd=get_appnum\n")
    assert t.closed and "get_appnum request while in a barrier" in t.closed[0]


def test_abort_calls_back_and_sends_nothing():
    aborts: list[tuple[int, int, str]] = []
    _s, (_t, u) = make(aborts=aborts)
    assert u.req(r"cmd=abort exitcode=7 message=bad\ input") == []
    assert aborts == [(1, 7, "bad input")]


def test_abort_without_exit_code_uses_1():
    aborts: list[tuple[int, int, str]] = []
    _s, (t, _u) = make(aborts=aborts)
    t.req("cmd=abort")
    t.req("cmd=abort exitcode=x error_msg=why")
    assert aborts == [(0, 1, ""), (0, 1, "why")]


def test_requests_split_across_reads_and_batched_in_one():
    _s, (t, _u) = make()
    for byte in b"cmd=init pmi_version=1 pmi_subversion=1\n":
        t.conn.feed(bytes([byte]))
    ok(t.replies(), "response_to_init")
    t.conn.feed(b"cmd=get_appnum\ncmd=get_my_kvsname\n")
    assert [m.cmd for m in t.replies()] == ["appnum", "my_kvsname"]


def test_hangup_forgets_the_client():
    _s, (t, _u) = make()
    t.conn.hangup()
    t.conn.feed(b"cmd=get_appnum\n")
    assert t.out == b"" and t.closed == []


def test_connect_checks_the_rank():
    server, _tasks = make(size=4, ranks=(1, 2))
    with pytest.raises(ValueError, match="not a local task"):
        server.connect(0, lambda d: None, lambda r: None)
    with pytest.raises(ValueError, match="already connected"):
        server.connect(1, lambda d: None, lambda r: None)


@pytest.mark.parametrize("kw,why", [
    ({"size": 0, "ranks": [0]}, "job size"),
    ({"size": 2, "ranks": []}, "at least one local task"),
    ({"size": 2, "ranks": [0, 0]}, "repeat"),
    ({"size": 2, "ranks": [2]}, "out of range"),
    ({"size": 1, "ranks": [0], "kvsname": "a b"}, "bad kvsname"),
    ({"size": 1, "ranks": [0], "keys": {"k": "two words"}}, "bad value"),
    ({"size": 1, "ranks": [0], "keys": {"k=": "1"}}, "bad PMI key"),
])
def test_server_arguments_are_checked(kw, why):
    args = {"kvsname": "kvs0", **kw}
    with pytest.raises(ValueError, match=why):
        PmiServer(args.pop("size"), args.pop("ranks"), args.pop("kvsname"),
                  exchange=lambda p, d: None, abort=lambda *a: None, **args)


def test_trace_sees_requests_and_replies():
    lines: list[tuple[int, str, bytes]] = []
    _s, (t, _u) = make(trace=lambda *a: lines.append(a))
    t.req("cmd=get_appnum")
    assert lines == [(0, ">", b"cmd=get_appnum\n"), (0, "<", b"cmd=appnum rc=0 appnum=0\n")]
