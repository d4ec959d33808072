"""The shell's ``files`` plugin (RFC 37 archives written to the job's tmpdir) and the
input router's ``resize`` events (window size of a task's terminal)."""
from __future__ import annotations

import base64
import os
import stat

import orjson
import pytest

from shell.plugins.files import entry_content, extract
from shell.plugins.input import InputRouter


def test_extract_writes_files_with_their_modes(tmp_path):
    files = {
        "script": {"mode": 0o700, "data": "#!/bin/sh\necho hi\n", "encoding": "utf-8"},
        "conf.json": {"mode": 0o600, "data": {"exec": {"kill-timeout": 1}}},
        "bin/blob": {"mode": 0o644, "data": base64.b64encode(b"\x00\xff").decode(),
                     "encoding": "base64", "size": 2},
        "d": {"mode": stat.S_IFDIR | 0o755},
        "link": {"mode": stat.S_IFLNK | 0o777, "data": "script"},
    }
    written = extract(files, str(tmp_path))
    assert len(written) == 5
    script = tmp_path / "script"
    assert script.read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert orjson.loads((tmp_path / "conf.json").read_bytes()) == {"exec": {"kill-timeout": 1}}
    assert (tmp_path / "bin" / "blob").read_bytes() == b"\x00\xff"
    assert (tmp_path / "d").is_dir()
    assert os.readlink(tmp_path / "link") == "script"


@pytest.mark.parametrize("files, text", [
    ({"/etc/x": {"data": "x"}}, "absolute paths are not allowed"),
    ({"../x": {"data": "x"}}, "must stay inside"),
    ({"a/../../x": {"data": "x"}}, "must stay inside"),
    ({"x": {"data": "abc", "size": 4}}, "size 4 does not match"),
    ({"x": {"data": "%%%", "encoding": "base64"}}, "not valid base64"),
    ({"x": {"data": "x", "encoding": "rot13"}}, "unknown encoding"),
    ({"x": {"blobref": "blake3-00"}}, "not supported"),
    ({"x": {"data": "x", "mode": -1}}, "non-negative integer"),
    ({"x": "text"}, "entry must be an object"),
    (["x"], "must be an object"),
])
def test_bad_archives_are_refused_naming_the_problem(tmp_path, files, text):
    with pytest.raises(ValueError, match=text):
        extract(files, str(tmp_path))
    assert not (tmp_path.parent / "x").exists()


def test_entry_content_decodes():
    assert entry_content("a", {"data": "héllo", "encoding": "utf-8"}) == "héllo".encode()
    assert entry_content("a", {"data": [1, 2]}) == b"[1, 2]"


def _resize_line(rank, rows, cols):
    return orjson.dumps({"timestamp": 1.0, "name": "resize",
                         "context": {"rank": rank, "rows": rows, "cols": cols}}) + b"\n"


def test_resize_events_set_the_window_size_of_a_tasks_terminal():
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    try:
        router = InputRouter(reactor=None)
        router.terminals[0] = os.dup(master)

        def size():
            return struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))[:2]

        router.feed_log(_resize_line("0", 40, 100))
        assert size() == (40, 100)
        router.feed_log(_resize_line("all", 30, 77))
        assert size() == (30, 77)
        # other ranks, bad sizes and a torn line are no-ops until the line completes
        router.feed_log(_resize_line("1", 10, 10))
        router.feed_log(_resize_line("0", -1, 10) + _resize_line("0", "x", 10))
        assert size() == (30, 77)
        line = _resize_line("0", 12, 34)
        router.feed_log(line[:10])
        assert size() == (30, 77)
        router.feed_log(line[10:])
        assert size() == (12, 34)
        router.close_all()
        assert router.terminals == {}
    finally:
        os.close(master)
        os.close(slave)
