"""flux.job.output without an instance: RFC 24 decoding, task filters, and the watchers.

The watchers run against a stand-in handle that records requests and
lets a test hand each eventlog watch its responses, so the state machine
(main log, start, output log, finish, end) is tested response by response.
Reading real instances is in tests/integration/test_integration_job_output.py.
"""
from __future__ import annotations

import base64
import errno
import os
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.constants import FLUX_MSGTYPE_RESPONSE, FLUX_REACTOR_NOWAIT
from flux.core.reactor import Reactor
from flux.eventlog import EventLogEvent
from flux.idset import IDset
from flux.job.output import (
    LOG_DEBUG,
    LOG_ERROR,
    LOG_FATAL,
    LOG_NOTICE,
    LOG_QUIET,
    LOG_TRACE,
    LOG_WARN,
    JobExceptionEvent,
    JobOutput,
    LogEvent,
    OutputEvent,
    OutputHeaderEvent,
    RedirectEvent,
    Taskset,
    _parse_output_log,
    output_event_watch,
    output_event_watch_async,
    output_watch,
    output_watch_async,
    output_watch_lines,
    output_watch_lines_async,
    parse_output_event,
)
from flux.message import Message

HEADER = {"version": 1, "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
          "count": {"stdout": 2, "stderr": 2}, "options": {}}


def entry(name: str, ts: float = 1.0, **context: Any) -> dict[str, Any]:
    return {"timestamp": ts, "name": name, "context": context}


def data(stream: str = "stdout", rank: Any = "0", text: str | None = None, **extra: Any
         ) -> dict[str, Any]:
    ctx: dict[str, Any] = {"stream": stream, "rank": rank, **extra}
    if text is not None:
        ctx["data"] = text
    return entry("data", **ctx)


# -- constants and types --------------------------------------------------------------------------

def test_log_levels_are_the_shell_levels() -> None:
    assert (LOG_QUIET, LOG_FATAL, LOG_ERROR, LOG_WARN, LOG_NOTICE, LOG_DEBUG, LOG_TRACE) \
        == (-1, 0, 3, 4, 5, 6, 7)


def test_job_output_is_a_named_tuple() -> None:
    out = JobOutput("o", "e", "l")
    assert (out.stdout, out.stderr, out.log) == ("o", "e", "l") and tuple(out) == ("o", "e", "l")


# -- Taskset ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["all", "*", " all "])
def test_taskset_all(spec: str) -> None:
    ts = Taskset(spec)
    assert ts.all and bool(ts) and str(ts) == "all"
    assert str(ts.intersect("2-3")) == "2-3"
    assert Taskset("1").intersect(ts) == Taskset("1")


def test_taskset_ids() -> None:
    assert str(Taskset("0-3").intersect("2,7")) == "2"
    assert not Taskset("0-1").intersect(Taskset("5"))
    assert str(Taskset(4)) == "4" and str(Taskset(IDset("1-2"))) == "1-2"
    assert not Taskset("")
    assert Taskset("[1-2]") == Taskset("1,2") and hash(Taskset("1-2")) == hash(Taskset("1,2"))
    for bad in ("x", "1-", 1.5):
        with pytest.raises(ValueError):
            Taskset(bad)                                  # type: ignore[arg-type]


@given(st.sets(st.integers(0, 40)), st.sets(st.integers(0, 40)))
def test_taskset_intersect_is_set_intersection(a: set[int], b: set[int]) -> None:
    got = Taskset(IDset(sorted(a))).intersect(Taskset(IDset(sorted(b))))
    assert got.ids is not None and set(got.ids.expand()) == a & b
    assert bool(got) == bool(a & b)


# -- data events -------------------------------------------------------------------------------------

def test_utf8_data_event() -> None:
    ev = parse_output_event(data(text="hi\n", rank="0-1"))
    assert isinstance(ev, OutputEvent)
    assert (ev.stream, str(ev.rank), ev.data, ev.eof, ev.render()) == \
        ("stdout", "0-1", "hi\n", False, "hi\n")


def test_data_event_as_json_line_and_all_ranks() -> None:
    line = orjson.dumps(data("stderr", "all", "x", eof=True))
    ev = parse_output_event(line)
    assert isinstance(ev, OutputEvent) and ev.rank.all and ev.eof and ev.data == "x"


def test_eof_only_event_has_no_data() -> None:
    ev = parse_output_event(data(eof=True))
    assert isinstance(ev, OutputEvent) and ev.data is None and ev.eof


def test_base64_data_by_event_encoding_and_repeat() -> None:
    b64 = base64.b64encode(b"ab\n").decode()
    ev = parse_output_event(data(text=b64, encoding="base64", repeat=3))
    assert isinstance(ev, OutputEvent) and ev.data == "ab\nab\nab\n"


def test_header_encoding_is_the_default_and_event_encoding_wins() -> None:
    header = {"stdout": "base64", "stderr": "UTF-8"}
    b64 = base64.b64encode(b"bin").decode()
    assert parse_output_event(data(text=b64), encodings=header).data == "bin"       # type: ignore[attr-defined]
    assert parse_output_event(data("stderr", text=b64), encodings=header).data == b64  # type: ignore[attr-defined]
    assert parse_output_event(data(text="plain", encoding="UTF-8"),
                              encodings=header).data == "plain"                      # type: ignore[attr-defined]


def test_binary_data_round_trips_through_surrogateescape() -> None:
    raw = b"\xff\xfeok\n"
    ev = parse_output_event(data(text=base64.b64encode(raw).decode(), encoding="base64"))
    assert isinstance(ev, OutputEvent) and os.fsencode(ev.data) == raw


def test_labelio_labels_each_line_and_keeps_a_partial_line_partial() -> None:
    ev = parse_output_event(data(rank="3", text="a\nb\nc"), labelio=True)
    assert isinstance(ev, OutputEvent)
    assert ev.data == "3: a\n3: b\n3: c" and ev.text == "a\nb\nc"


@pytest.mark.parametrize("bad, match", [
    (entry("data", rank="0", data="x"), "no 'stream'"),
    (entry("data", stream="stdout", data="x"), "no 'rank'"),
    (data(rank="zz", text="x"), "bad rank"),
    (data(text="!!!", encoding="base64"), "bad base64"),
    (data(text="x", repeat=-1), "bad repeat"),
    (data(text="x", repeat="2"), "bad repeat"),
    (entry("data", stream="stdout", rank="0", data=5), "must be a string"),
])
def test_malformed_data_events_name_the_problem(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_output_event(bad)


# -- other events --------------------------------------------------------------------------------------

@pytest.mark.parametrize("level, label", [(0, "FATAL"), (2, "FATAL"), (3, "ERROR"),
                                          (4, " WARN"), (5, ""), (6, "DEBUG"), (7, "TRACE"),
                                          (9, "")])
def test_log_event_levels(level: int, label: str) -> None:
    ev = parse_output_event(entry("log", level=level, message="m", rank=1))
    assert isinstance(ev, LogEvent) and ev.levelstr == label
    assert ev.render() == ("flux-shell[1]: " + (f"{label}: " if label else "") + "m")


def test_log_event_component_file_and_no_rank() -> None:
    ev = parse_output_event(entry("log", level=3, message="bad", component="io",
                                  file="x.c", line=7))
    assert isinstance(ev, LogEvent) and ev.rank is None
    assert ev.render() == "flux-shell: ERROR: io: bad"
    assert ev.render(include_file_and_line=True) == "flux-shell: ERROR: io: x.c:7: bad"


def test_header_redirect_exception_and_unknown_events() -> None:
    header = parse_output_event(entry("header", **HEADER))
    assert isinstance(header, OutputHeaderEvent)
    assert (header.version, header.stdout_count, header.stderr_encoding) == (1, 2, "UTF-8")
    redirect = parse_output_event(entry("redirect", stream="stdout", rank="0-1", path="/o"))
    assert isinstance(redirect, RedirectEvent)
    assert redirect.render() == "0-1: stdout redirected to /o"
    assert parse_output_event(entry("redirect", stream="stderr", rank="0")).render() \
        == "0: stderr redirected"                                       # type: ignore[attr-defined]
    exc = parse_output_event(entry("exception", type="cancel", severity=0, note="bye"))
    assert isinstance(exc, JobExceptionEvent)
    assert exc.render() == "job.exception: type=cancel severity=0 bye"
    assert parse_output_event(entry("exception", type="t", severity=1)).render() \
        == "job.exception: type=t severity=1"                           # type: ignore[attr-defined]
    other = parse_output_event(entry("frobnicate", x=1))
    assert type(other) is EventLogEvent and other.name == "frobnicate"


# -- job_output's collection (the nowait path: a whole log at once) --------------------------------------

def log_text(*entries: dict[str, Any]) -> str:
    return "".join(orjson.dumps(e).decode() + "\n" for e in entries)


LOG = log_text(
    entry("header", **{**HEADER, "encoding": {"stdout": "base64", "stderr": "UTF-8"}}),
    data(rank="0", text=base64.b64encode(b"zero\n").decode()),
    data(rank="1", text=base64.b64encode(b"one\n").decode()),
    data("stderr", "0-1", "both\n"),
    entry("log", level=3, message="an error", rank=0),
    entry("log", level=6, message="a detail", rank=1),
    entry("redirect", stream="stdout", rank="2", path="/tmp/x"),
    data(rank="0-1", eof=True),
    data("stderr", "0-1", eof=True),
)


def test_collect_all_tasks_logs_to_stderr_by_default() -> None:
    out = _parse_output_log(LOG, Taskset("*"), False, LOG_TRACE)
    assert out == JobOutput("zero\none\n",
                            "both\nflux-shell[0]: ERROR: an error\nflux-shell[1]: DEBUG: a detail\n",
                            "")


def test_collect_one_task_with_labels_and_log_level_split() -> None:
    out = _parse_output_log(LOG, Taskset("1"), True, LOG_ERROR)
    assert out == JobOutput("1: one\n", "0-1: both\nflux-shell[0]: ERROR: an error\n",
                            "flux-shell[1]: DEBUG: a detail\n")


def test_collect_names_a_malformed_entry_with_eproto() -> None:
    with pytest.raises(OSError) as exc:
        _parse_output_log(log_text(entry("header", **HEADER), data(text="!", encoding="base64")),
                          Taskset("*"), False, LOG_TRACE)
    assert exc.value.errno == errno.EPROTO and "bad base64" in str(exc.value)


def test_collect_quiet_sends_every_log_message_to_log() -> None:
    out = _parse_output_log(LOG, Taskset("5"), False, LOG_QUIET)
    assert out.stdout == "" and out.stderr == ""
    assert out.log == "flux-shell[0]: ERROR: an error\nflux-shell[1]: DEBUG: a detail\n"


# -- the watchers, response by response ---------------------------------------------------------------

class FakeHandle:
    """Stands in for flux.Flux: records requests; tests deliver the responses."""

    _sock = None          # JobEventWatchFuture.cancel sends nothing without a socket

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.watches: list[Any] = []
        self._reactor = Reactor()
        # path -> responses given as soon as that log is watched (entries, or an errnum)
        self.script = script or {}

    def _send_request(self, rpc: Any, msg: Message, expect_response: bool) -> None:
        self.watches.append(rpc)
        rpc.matchtag = len(self.watches)
        for item in self.script.get(rpc.path, []):
            if isinstance(item, int):
                end(rpc, item)
            else:
                send(rpc, item)

    def get_reactor(self) -> Reactor:
        return self._reactor

    def _wait_until(self, predicate: Any, timeout: float | None) -> bool:
        return predicate()    # never blocks: a test delivers before it reads

    def watch(self, path: str) -> Any:
        found = [w for w in self.watches if w.path == path]
        assert len(found) == 1, [w.path for w in self.watches]
        return found[0]


def send(watch: Any, *entries: dict[str, Any]) -> None:
    for e in entries:
        watch._deliver(Message(FLUX_MSGTYPE_RESPONSE, watch.topic,
                               {"event": orjson.dumps(e).decode() + "\n"}))


def end(watch: Any, errnum: int = errno.ENODATA, text: str | None = None) -> None:
    watch._deliver(Message(FLUX_MSGTYPE_RESPONSE, watch.topic, text, errnum=errnum))


def drain(watcher: Any) -> list[Any]:
    got = []
    while True:
        item = watcher.get_output()
        if item == (None, None):
            return got
        got.append(item)


def test_output_watch_follows_start_then_output_then_finish() -> None:
    h = FakeHandle()
    w = output_watch_async(h, 1234)
    main = h.watch("eventlog")
    send(main, entry("submit"), entry("alloc"))
    assert not w.is_ready() and [x.path for x in h.watches] == ["eventlog"]
    send(main, entry("start"))
    assert not w.is_ready()
    out = h.watch("guest.output")
    send(out, entry("header", **HEADER), data(text="hello\n"),
         entry("log", level=4, message="careful", rank=0),
         entry("redirect", stream="stderr", rank="1", path="/e"))
    assert w.get_output() == ("stdout", "hello\n")
    assert w.get_output() == ("stderr", "flux-shell[0]:  WARN: careful\n")
    assert w.get_output() == ("stderr", "1: stderr redirected to /e\n")
    send(out, data(eof=True))
    end(out)
    # the output ended, but not the job: exceptions before finish are still reported
    assert not w.is_ready()
    send(main, entry("exception", type="test", severity=1, note="hmm"), entry("finish", status=0))
    assert w.get_output() == ("stderr", "job.exception: type=test severity=1 hmm\n")
    assert w.get_output() == (None, None)
    assert w.get_output() == (None, None)      # the end stays


def test_finish_before_output_end_waits_for_the_output() -> None:
    h = FakeHandle()
    w = output_event_watch_async(h, 1)
    send(h.watch("eventlog"), entry("start"), entry("finish", status=0))
    assert not w.is_ready()
    out = h.watch("guest.output")
    send(out, entry("header", **HEADER), data(text="late\n", eof=True))
    names = [w.get_event().name, w.get_event().name]
    assert names == ["header", "data"]
    end(out)
    assert w.get_event() is None


def test_job_that_never_started_reports_its_exception_then_eio() -> None:
    h = FakeHandle()
    w = output_watch_async(h, 1)
    send(h.watch("eventlog"), entry("submit"),
         entry("exception", type="cancel", severity=0, note="bye"), entry("clean"))
    end(h.watch("eventlog"))
    assert w.get_output() == ("stderr", "job.exception: type=cancel severity=0 bye\n")
    with pytest.raises(OSError) as exc:
        w.get_output()
    assert exc.value.errno == errno.EIO and "never started" in str(exc.value)
    assert [x.path for x in h.watches] == ["eventlog"]


def test_unknown_job_is_file_not_found() -> None:
    h = FakeHandle()
    w = output_event_watch_async(h, 1)
    end(h.watch("eventlog"), errno.ENOENT, "unknown job")
    with pytest.raises(FileNotFoundError, match="not found"):
        w.get_event()


def test_nowait_reads_only_the_output_log() -> None:
    h = FakeHandle()
    w = output_watch_async(h, 1, nowait=True)
    out = h.watch("guest.output")
    assert [x.path for x in h.watches] == ["guest.output"]
    send(out, entry("header", **HEADER), data(text="now\n"))
    end(out)
    assert drain(w) == [("stdout", "now\n")]


def test_output_log_errors_and_bad_events_fail_the_watch() -> None:
    h = FakeHandle()
    w = output_event_watch_async(h, 1, nowait=True)
    end(h.watch("guest.output"), errno.EPERM, "not your job")
    with pytest.raises(PermissionError):
        w.get_event()
    h = FakeHandle()
    w = output_event_watch_async(h, 1, nowait=True)
    send(h.watch("guest.output"), entry("data", rank="0", data="no stream"))
    with pytest.raises(OSError) as exc:
        w.get_event()
    assert exc.value.errno == errno.EPROTO and "no 'stream'" in str(exc.value)


def test_event_watch_labels_and_decodes_with_the_header() -> None:
    h = FakeHandle()
    w = output_event_watch_async(h, 1, labelio=True, nowait=True)
    b64 = base64.b64encode(b"x\ny\n").decode()
    send(h.watch("guest.output"),
         entry("header", **{**HEADER, "encoding": {"stdout": "base64"}}), data(rank="2", text=b64))
    assert isinstance(w.get_event(), OutputHeaderEvent)
    ev = w.get_event()
    assert isinstance(ev, OutputEvent) and ev.data == "2: x\n2: y\n"


def test_lines_are_buffered_per_stream_and_rank_and_labelled_whole() -> None:
    h = FakeHandle()
    w = output_watch_lines_async(h, 1, labelio=True, nowait=True)
    out = h.watch("guest.output")
    send(out, entry("header", **HEADER),
         data(rank="0", text="hel"), data(rank="1", text="one\ntw"),
         data(rank="0", text="lo\nwor"), data("stderr", "0", "e1\n"),
         data(rank="1", eof=True),                   # flushes rank 1's "tw"
         data(rank="0", text="ld"))
    end(out)                                          # flushes rank 0's "world"
    got = []
    while (item := w.getline()) != (None, None):
        got.append(item)
    assert got == [("stdout", "1: one"), ("stdout", "0: hello"), ("stderr", "0: e1"),
                   ("stdout", "1: tw"), ("stdout", "0: world")]


def test_lines_keepends() -> None:
    h = FakeHandle()
    w = output_watch_lines_async(h, 1, nowait=True, keepends=True)
    send(h.watch("guest.output"), entry("header", **HEADER), data(text="a\nb"),
         entry("log", level=3, message="m"))
    end(h.watch("guest.output"))
    got = []
    while (item := w.getline()) != (None, None):
        got.append(item)
    assert got == [("stdout", "a\n"), ("stderr", "flux-shell: ERROR: m\n"), ("stdout", "b")]


def test_log_stderr_level_routes_shell_messages() -> None:
    h = FakeHandle()
    w = output_watch_async(h, 1, nowait=True, log_stderr_level=LOG_WARN)
    send(h.watch("guest.output"), entry("header", **HEADER),
         entry("log", level=4, message="warn"), entry("log", level=5, message="note"))
    end(h.watch("guest.output"))
    assert drain(w) == [("stderr", "flux-shell:  WARN: warn\n"), ("log", "flux-shell: note\n")]


def test_then_pumps_from_the_reactor_and_releases_it_at_the_end() -> None:
    h = FakeHandle()
    w = output_watch_async(h, 1)
    got: list[Any] = []

    def cb(f: Any) -> None:
        got.append(f.get_output())

    w.then(cb)
    reactor = h.get_reactor()
    main = h.watch("eventlog")
    send(main, entry("start"))
    reactor.run(FLUX_REACTOR_NOWAIT)
    assert reactor.active > 0        # held by the continuations of the pending watches
    out = h.watch("guest.output")
    send(out, entry("header", **HEADER), data(text="x\n", eof=True))
    end(out)
    send(main, entry("finish", status=0))
    for _ in range(3):
        reactor.run(FLUX_REACTOR_NOWAIT)
    assert got == [("stdout", "x\n"), (None, None)]
    assert reactor.active == 0       # every continuation let go of the reactor


def test_cancel_stops_both_watches(monkeypatch) -> None:
    h = FakeHandle()
    w = output_event_watch_async(h, 1)
    send(h.watch("eventlog"), entry("start"))
    assert not w.is_ready()
    canceled: list[str] = []
    for watch in h.watches:
        monkeypatch.setattr(watch, "cancel", lambda stop=False, p=watch.path: canceled.append(p))
    w.cancel()
    assert sorted(canceled) == ["eventlog", "guest.output"]


SCRIPT = {"guest.output": [entry("header", **HEADER), data(text="a\nb"), data(rank="1", text="c\n"),
                           data(rank="0-1", eof=True), errno.ENODATA]}


def test_generators_yield_until_the_output_ends() -> None:
    assert list(output_watch(FakeHandle(SCRIPT), 1, nowait=True)) == \
        [("stdout", "a\nb"), ("stdout", "c\n")]
    assert list(output_watch_lines(FakeHandle(SCRIPT), 1, nowait=True, labelio=True)) == \
        [("stdout", "0: a"), ("stdout", "1: c"), ("stdout", "0: b")]
    assert [e.name for e in output_event_watch(FakeHandle(SCRIPT), 1, nowait=True)] == \
        ["header", "data", "data", "data"]


@pytest.mark.parametrize("generator", [output_watch, output_watch_lines, output_event_watch])
def test_leaving_a_generator_early_cancels_its_watch(monkeypatch, generator: Any) -> None:
    h = FakeHandle({"guest.output": SCRIPT["guest.output"][:3]})
    gen = generator(h, 1, nowait=True)
    next(gen)
    canceled: list[str] = []
    monkeypatch.setattr(h.watch("guest.output"), "cancel",
                        lambda stop=False: canceled.append("guest.output"))
    gen.close()
    assert canceled == ["guest.output"]
