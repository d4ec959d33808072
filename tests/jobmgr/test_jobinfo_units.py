"""job-info's pure parts: line splitting, when a log ends, current jobspec/R, input checks."""
from __future__ import annotations

import base64
import errno

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobmgr.jobinfo.module import (
    LineSplitter,
    LogEnd,
    check_path,
    current_jobspec,
    current_R,
    log_owner,
    value_text,
)


@given(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=8),
       st.data())
def test_line_splitter_any_cut_gives_the_same_lines(lines: list[bytes], data) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    sp = LineSplitter()
    got: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got.extend(sp.feed(stream[prev:cut]))
        prev = cut
    assert got == lines
    assert sp.offset == len(stream)


def test_line_splitter_keeps_a_partial_line() -> None:
    sp = LineSplitter()
    assert sp.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert sp.feed(b":2}\n") == [b'{"b":2}']
    assert sp.offset == 16


def ev(name: str, **ctx) -> dict:
    return {"timestamp": 1.0, "name": name, "context": ctx}


def test_log_end_main_and_exec_logs() -> None:
    main = LogEnd("eventlog")
    assert not main.feed(ev("submit")) and not main.feed(ev("finish", status=0))
    assert main.feed(ev("clean"))
    exec_log = LogEnd("guest.exec.eventlog")
    assert not exec_log.feed(ev("clean")) and exec_log.feed(ev("done"))
    other = LogEnd("guest.mylog")
    assert not other.feed(ev("clean")) and not other.feed(ev("done"))


def test_log_end_output_needs_eof_on_every_stream_and_rank() -> None:
    out = LogEnd("guest.output")
    # an eof before the header is remembered, but nothing ends without a header
    assert not out.feed(ev("data", stream="stdout", rank="0", eof=True))
    assert not out.feed(ev("header", version=1, count={"stdout": 2, "stderr": 2},
                           encoding={}, options={}))
    assert not out.feed(ev("data", stream="stdout", rank="1", data="x"))
    assert not out.feed(ev("data", stream="stderr", rank="1", eof=True))
    assert not out.feed(ev("data", stream="stderr", rank="1", eof=True))  # counted once
    assert not out.feed(ev("data", stream="stdout", rank="1", eof=True))
    assert out.feed(ev("redirect", stream="stderr", rank="0", path="/x"))
    out2 = LogEnd("guest.output")
    out2.feed(ev("header", version=1, count={"stdout": 3, "stderr": 3}, encoding={}, options={}))
    assert not out2.feed(ev("data", stream="stdout", rank="all", eof=True))
    assert out2.feed(ev("data", stream="stderr", rank="0-2", eof=True))


def test_log_end_output_completes_once_all_ranks_closed() -> None:
    out = LogEnd("guest.output")
    out.feed(ev("header", version=1, count={"stdout": 2}, encoding={}, options={}))
    assert not out.feed(ev("data", stream="stdout", rank="0", eof=True))
    assert out.feed(ev("data", stream="stdout", rank="1", eof=True))


def test_log_end_input() -> None:
    inp = LogEnd("guest.input")
    assert not inp.feed(ev("header", count={"stdin": 1}))
    assert not inp.feed(ev("data", stream="stdin", rank="all", data="eA=="))
    assert inp.feed(ev("data", stream="stdin", rank="all", eof=True))


def test_current_jobspec_applies_updates_in_order_without_touching_the_input() -> None:
    spec = {"attributes": {"system": {"duration": 0, "queue": "a"}}, "version": 1}
    events = [ev("submit"),
              {"timestamp": 2.0, "name": "jobspec-update",
               "context": {"attributes.system.duration": 60, "attributes.system.queue": "b"}},
              {"timestamp": 3.0, "name": "jobspec-update",
               "context": {"attributes.system.duration": 120,
                           "attributes.user.new.key": [1]}}]
    cur = current_jobspec(spec, events)
    assert cur["attributes"]["system"] == {"duration": 120, "queue": "b"}
    assert cur["attributes"]["user"] == {"new": {"key": [1]}}
    assert spec["attributes"]["system"] == {"duration": 0, "queue": "a"}


def test_current_R_applies_resource_update_expiration() -> None:
    R = {"version": 1, "execution": {"R_lite": [], "expiration": 100.0}}
    cur = current_R(R, [ev("alloc"), {"timestamp": 5.0, "name": "resource-update",
                                       "context": {"expiration": 500.0}}])
    assert cur["execution"]["expiration"] == 500.0
    assert R["execution"]["expiration"] == 100.0


def test_log_owner_reads_submit_userid_and_names_problems() -> None:
    log = b'{"timestamp":1,"name":"submit","context":{"userid":42,"urgency":16}}\n'
    assert log_owner(log, "k") == 42
    with pytest.raises(OSError, match="k: cannot read the job owner: first entry is not submit"):
        log_owner(b'{"timestamp":1,"name":"alloc"}\n', "k")
    with pytest.raises(OSError, match="k: cannot read the job owner"):
        log_owner(b"garbage\n", "k")


def test_check_path_and_value_text_errors() -> None:
    assert check_path("guest.exec.eventlog") == "guest.exec.eventlog"
    for bad in ("", "a..b", ".a", "a b", "a/b"):
        with pytest.raises(OSError, match="path"):
            check_path(bad)
    with pytest.raises(OSError) as info:
        check_path(5)
    assert info.value.errno == errno.EPROTO
    assert value_text({"ver": 1, "type": "val", "data": base64.b64encode(b"hi").decode()},
                      "k") == b"hi"
    with pytest.raises(OSError, match="k: is a directory") as info:
        value_text({"ver": 1, "type": "dir", "data": {}}, "k")
    assert info.value.errno == errno.EISDIR
    with pytest.raises(OSError, match="k: bad val object"):
        value_text({"ver": 1, "type": "val", "data": "!!"}, "k")


def test_output_log_end_with_json_lines() -> None:
    out = LogEnd("guest.output")
    lines = [{"timestamp": 1, "name": "header", "context": {"count": {"stdout": 1}}},
             {"timestamp": 2, "name": "data", "context": {"stream": "stdout", "rank": "0",
                                                           "eof": True}}]
    assert [out.feed(orjson.loads(orjson.dumps(e))) for e in lines] == [False, True]


@given(st.binary(max_size=300), st.booleans())
def test_may_end_never_skips_a_line_that_could_end_the_output_log(data, eof):
    end = LogEnd("guest.output")
    ctx = {"stream": "stdout", "rank": "0", "data": data.decode("latin-1")}
    if eof:
        ctx["eof"] = True
    line = orjson.dumps({"timestamp": 1.0, "name": "data", "context": ctx})
    if eof:
        assert end.may_end(line)
    for name in ("header", "redirect"):
        assert end.may_end(orjson.dumps({"timestamp": 1.0, "name": name, "context": {}}))
    # the main log is always parsed
    assert LogEnd("eventlog").may_end(line)


def test_may_end_skips_a_plain_output_chunk():
    line = orjson.dumps({"timestamp": 1.0, "name": "data",
                         "context": {"stream": "stdout", "rank": "0", "data": "x" * 1000}})
    assert LogEnd("guest.output").may_end(line) is False
