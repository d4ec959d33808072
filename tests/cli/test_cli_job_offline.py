"""flux job pieces that need no instance: `flux job id`, argument parsers, exit codes, progress."""
from __future__ import annotations

import io
import signal

import pytest
from click.testing import CliRunner

from cli.job_attach import decode_output, exit_code_of, label_lines
from cli.job_common import (
    FLUX_USERID_UNKNOWN,
    parse_signal,
    parse_states,
    parse_userid,
    split_ids_and_note,
)
from cli.job_progress import ProgressBar, render_submit
from cli.job_watch import eventlog_path, parse_eventlog_text
from cli.main import main


def run(*args, input=None, env=None):
    result = CliRunner().invoke(main, list(args), input=input, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# -- flux job id ---------------------------------------------------------------------

VECTORS = {  # formats.md, RFC 19
    6787342413402046: {"f58": "ƒuzzybunny", "hex": "0x181d0d4d850fbe",
                       "dothex": "0018.1d0d.4d85.0fbe", "kvs": "job.0018.1d0d.4d85.0fbe",
                       "words": "cake-plume-nepal--neuron-pencil-academy"},
    0: {"f58": "ƒ1", "words": "academy-academy-academy--academy-academy-academy",
        "emoji": "😃", "dothex": "0000.0000.0000.0000"},
    65535: {"f58": "ƒLUv", "emoji": "💁📚"},
}


@pytest.mark.parametrize("value", sorted(VECTORS))
def test_job_id_converts_every_encoding_both_ways(value):
    env = {"LC_ALL": "C.UTF-8"}
    for encoding, text in VECTORS[value].items():
        r = run("job", "id", f"--to={encoding}", str(value), env=env)
        assert (r.exit_code, r.stdout) == (0, text + "\n"), r.output
        r = run("job", "id", text, env=env)
        assert (r.exit_code, r.stdout) == (0, f"{value}\n")


def test_job_id_reads_stdin_and_defaults_to_dec():
    r = run("job", "id", "--to=hex", input="1\n\n  ƒ2  \n0x10\n")
    assert (r.exit_code, r.stdout) == (0, "0x1\n0x1\n0x10\n")


def test_job_id_f58_ascii_prefix():
    r = run("job", "id", "--to=f58", "1", env={"FLUX_F58_FORCE_ASCII": "1"})
    assert r.stdout == "f2\n"
    assert run("job", "id", "--to=f58plain", "57").stdout == "fz\n"


@pytest.mark.parametrize("bad", ["0.0.0", "f0", "fI", "xyz", "1.2.3.4.5", "0x", "18446744073709551616",
                                 "academy-nope-academy--academy-academy-academy"])
def test_job_id_malformed_exits_1(bad):
    r = run("job", "id", "1", bad)
    assert r.exit_code == 1
    assert r.stdout == "1\n"
    assert r.stderr == f"flux-job: {bad}: malformed input\n"


def test_job_id_needs_input():
    r = run("job", "id", input="")
    assert r.exit_code == 1 and "no job id given" in r.stderr
    assert run("job", "id", "--to=octal", "1").exit_code == 2


# -- parsers ---------------------------------------------------------------------------

def test_parse_userid():
    assert parse_userid("all") == FLUX_USERID_UNKNOWN
    assert parse_userid("root") == 0
    assert parse_userid("1234") == 1234
    with pytest.raises(ValueError, match="unknown user nosuchuser"):
        parse_userid("nosuchuser")


def test_parse_states():
    assert parse_states(("run,CLEANUP",)) == 48
    assert parse_states(("pending", "inactive")) == 2 | 4 | 8 | 64
    assert parse_states("active") == 63
    with pytest.raises(ValueError, match="error parsing --states: bogus is unknown"):
        parse_states(("run,bogus",))
    with pytest.raises(ValueError, match="no states specified"):
        parse_states((",",))


def test_parse_signal():
    assert parse_signal("SIGKILL") == 9
    assert parse_signal("term") == 15
    assert parse_signal("10") == 10
    for bad in ("SIGNOPE", "0", "999", ""):
        with pytest.raises(ValueError, match="Invalid signal"):
            parse_signal(bad)


def test_split_ids_and_note():
    ids, note = split_ids_and_note(("ƒ2", "3", "out", "of", "time"))
    assert [int(i) for i in ids] == [1, 3] and note == "out of time"
    ids, note = split_ids_and_note(("ƒ2", "--", "7", "days"))
    assert [int(i) for i in ids] == [1] and note == "7 days"
    assert split_ids_and_note(("ƒ2",))[1] is None
    assert split_ids_and_note(("hello", "ƒ2"))[0] == []


def test_eventlog_paths_and_text():
    assert eventlog_path("exec") == "guest.exec.eventlog"
    assert eventlog_path("output") == "guest.output"
    assert eventlog_path("input") == "guest.input"
    assert eventlog_path("guest.exec.eventlog") == "guest.exec.eventlog"
    text = ('{"timestamp":1.5,"name":"submit","context":{"urgency":16}}\n'
            '{"timestamp":2.5,"name":"clean"}\n{"timestamp":3')
    entries = parse_eventlog_text(text)
    assert [(e.name, e.timestamp) for e in entries] == [("submit", 1.5), ("clean", 2.5)]
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_eventlog_text("{oops\n")


# -- exit codes and progress -------------------------------------------------------------

def test_exit_code_of_wait_status():
    assert exit_code_of(0) == (0, "")
    assert exit_code_of(3 << 8) == (3, "task(s) exited with exit code 3")
    assert exit_code_of(signal.SIGKILL) == (137, "task(s) Killed")
    assert exit_code_of((128 + 15) << 8) == (143, "task(s) Terminated")
    assert exit_code_of(255 << 8)[0] == 255


def test_render_progress_lines():
    assert render_submit(5, 10, 1.0) == \
        "Submitting 5/10 |###############               |  50.0% 0:00:01"
    assert render_submit(10, 10, 3725.0, jps=True).endswith("100.0% 1:02:05      0.0 job/s")


def test_progress_bar_not_a_tty_prints_only_the_final_line():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.update("first")
    bar.clear()
    bar.update("second")
    bar.finish("done")
    assert stream.getvalue() == "done\n"


def test_progress_bar_tty_redraws_in_place():
    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    stream = Tty()
    bar = ProgressBar(stream, interval=0.0)
    assert bar.fill == "\u2588"
    bar.update("one")
    bar.clear()
    bar.finish("two")
    assert stream.getvalue() == "\rone\033[K\r\033[K\rtwo\033[K\n"


def test_output_events_decode():
    header = {"stdout": "UTF-8", "stderr": "base64"}
    assert decode_output({"stream": "stdout", "rank": "0", "data": "hi\n"}, header) == \
        ("stdout", b"hi\n")
    assert decode_output({"stream": "stderr", "rank": "0", "data": "AAEC"}, header) == \
        ("stderr", b"\x00\x01\x02")
    assert decode_output({"stream": "stdout", "data": "eA==", "encoding": "base64",
                          "repeat": 3}, header) == ("stdout", b"xxx")
    assert decode_output({"stream": "stdout", "rank": "0", "eof": True}, header) == \
        ("stdout", b"")
    assert label_lines(b"a\nb\nc", "3") == b"3: a\n3: b\n3: c"
