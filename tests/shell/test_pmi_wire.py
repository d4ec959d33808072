"""PMI-1 wire codec: decoding, encoding, escapes, stream chunking, malformed input."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shell.pmi.wire import (
    MAX_LINE,
    Message,
    StreamDecoder,
    WireError,
    encode,
    encode_multi,
    escape,
    parse_line,
    unescape,
)

# -- vectors -----------------------------------------------------------------------


def test_init_request_decodes():
    assert parse_line("cmd=init pmi_version=1 pmi_subversion=1") == \
        Message("init", {"pmi_version": "1", "pmi_subversion": "1"})


def test_response_encodes_in_argument_order():
    assert encode("response_to_init", {"pmi_version": 1, "pmi_subversion": 1, "rc": 0}) == \
        b"cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n"
    assert encode("barrier_in") == b"cmd=barrier_in\n"


def test_keys_may_come_out_of_order_with_extra_spaces():
    assert parse_line("  key=k   cmd=get\tkvsname=x  ") == \
        Message("get", {"key": "k", "kvsname": "x"})


def test_value_keeps_equals_signs_and_mpich_key_characters():
    m = parse_line("cmd=put kvsname=k key=-allgather-1-0-seg-1/9 value=a=b==c")
    assert m.args == {"kvsname": "k", "key": "-allgather-1-0-seg-1/9", "value": "a=b==c"}


def test_escaped_space_stays_in_the_value_in_wire_form():
    m = parse_line(r"cmd=put kvsname=k key=a value=hello\ world\\ x=y")
    assert m.args["value"] == r"hello\ world\\"
    assert m.args["x"] == "y"
    assert unescape(m.args["value"]) == "hello world\\"


def test_bare_token_continues_the_previous_value():
    # RFC 13 lets a put value hold spaces; they join the value escaped (wire form)
    value = parse_line("cmd=put kvsname=k key=a value=two  words").args["value"]
    assert value == "two\\ words" and unescape(value) == "two words"


def test_empty_value_is_allowed():
    assert parse_line("cmd=put kvsname=k key=a value=").args["value"] == ""


def test_spawn_multi_line_form():
    data = (b"mcmd=spawn\nnprocs=2\nexecname=/bin/my prog\ntotspawns=1\nspawnssofar=1\n"
            b"argcnt=0\npreput_num=0\ninfo_num=0\nendcmd\n")
    (msg,) = StreamDecoder().feed(data)
    assert msg == Message("spawn", {"nprocs": "2", "execname": "/bin/my prog", "totspawns": "1",
                                    "spawnssofar": "1", "argcnt": "0", "preput_num": "0",
                                    "info_num": "0"}, multi=True)


def test_blank_lines_are_ignored():
    assert StreamDecoder().feed(b"\n\ncmd=finalize\n\n") == [Message("finalize")]


# -- malformed input -----------------------------------------------------------------------

@pytest.mark.parametrize("line,why", [
    ("pmi_version=1", "no cmd="),
    ("hello cmd=init", "expected key=value, got 'hello'"),
    ("cmd=init =1", "has no key"),
    ("cmd=get key=a key=b", "key 'key' given twice"),
    ("cmd=a cmd=b", "cmd given twice"),
    ("cmd= x=1", "empty command name"),
    ("cmd=put more", "command name cannot hold a space"),
])
def test_malformed_lines_say_what_is_wrong(line, why):
    with pytest.raises(WireError, match=why):
        parse_line(line)


def test_decoder_stops_at_the_first_bad_line():
    dec = StreamDecoder()
    out = dec.feed(b"cmd=init pmi_version=1 pmi_subversion=1\nbogus\ncmd=finalize\n")
    assert out[0] == Message("init", {"pmi_version": "1", "pmi_subversion": "1"})
    assert isinstance(out[1], WireError) and len(out) == 2
    assert dec.failed is out[1]
    assert dec.feed(b"cmd=finalize\n") == []


def test_non_utf8_line_is_refused():
    (err,) = StreamDecoder().feed(b"cmd=get key=\xff\xfe\n")
    assert isinstance(err, WireError) and "not UTF-8" in str(err)


def test_overlong_line_is_refused_before_its_newline():
    dec = StreamDecoder(max_line=64)
    assert dec.feed(b"cmd=put value=" + b"x" * 40) == []
    (err,) = dec.feed(b"x" * 40)
    assert isinstance(err, WireError) and "longer than 64 bytes" in str(err)


def test_overlong_multi_line_request_is_refused():
    dec = StreamDecoder(max_line=64)
    out = dec.feed(b"mcmd=spawn\n" + b"arg1=" + b"y" * 30 + b"\n" + b"arg2=" + b"y" * 30 + b"\n")
    assert len(out) == 1 and isinstance(out[0], WireError)


def test_multi_line_request_needs_key_value_lines():
    (err,) = StreamDecoder().feed(b"mcmd=spawn\nnprocs\nendcmd\n")
    assert isinstance(err, WireError) and "expected key=value in mcmd spawn" in str(err)


def test_default_line_limit():
    assert MAX_LINE == 65536


@pytest.mark.parametrize("cmd,args,why", [
    ("get", {"value": "a b"}, "not in wire form"),
    ("get", {"value": "a\nb"}, "not in wire form"),
    ("get", {"value": "trailing\\"}, "not in wire form"),
    ("get", {"k=y": "1"}, "holds '='"),
    ("get", {"": "1"}, "empty key"),
    ("two words", {}, "holds ' '"),
    ("get", {"cmd": "x"}, "'cmd' cannot be an argument"),
])
def test_encode_refuses_what_cannot_be_read_back(cmd, args, why):
    with pytest.raises(ValueError, match=why):
        encode(cmd, args)


def test_escape_refuses_newlines():
    with pytest.raises(ValueError, match="newline"):
        escape("a\nb")


# -- properties -----------------------------------------------------------------------

names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs"),
                              blacklist_characters="=\\"), min_size=1, max_size=12)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                max_size=40)
wire_values = texts.map(escape)
messages = st.builds(Message, names, st.dictionaries(names.filter(lambda k: k != "cmd"),
                                                     wire_values, max_size=5))


@given(texts)
def test_escape_round_trip(text):
    assert unescape(escape(text)) == text


@given(messages)
def test_encode_then_decode_is_identity(msg):
    assert StreamDecoder().feed(encode(msg.cmd, msg.args)) == [msg]


multi_messages = st.builds(
    lambda cmd, args: Message(cmd, args, multi=True), names,
    st.dictionaries(names.filter(lambda k: k != "endcmd"),
                    texts.filter(lambda t: t.strip() != "endcmd"), max_size=5))


@given(st.lists(st.one_of(messages, multi_messages), min_size=1, max_size=6), st.data())
def test_any_chunking_of_the_stream_decodes_the_same(msgs, data):
    stream = b"".join(encode_multi(m.cmd, m.args) if m.multi else encode(m.cmd, m.args)
                      for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    dec = StreamDecoder()
    out = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out.extend(dec.feed(stream[prev:cut]))
        prev = cut
    assert out == msgs
    assert dec.idle
