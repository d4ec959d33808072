"""Bad input gets a clear error and exit code, never a traceback (issue 11)."""
from __future__ import annotations

import errno
import json
import re
import subprocess
import time

import pytest

from helpers.live import JOBS_CONF, start_instance


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    instance.stop()


def test_commands_reading_a_damaged_eventlog_fail_cleanly(inst):
    jobid = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
    key = inst.flux("job", "id", "--to=kvs", jobid).stdout.strip()
    r = inst.flux("kvs", "put", "--append", f"{key}.eventlog=not json\n")
    assert r.returncode == 0, r.stderr
    for args in (("job", "eventlog", jobid), ("job", "wait-event", "-t", "5", jobid, "clean"),
                 ("job", "attach", jobid)):
        r = inst.flux(*args, timeout=30)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "eventlog entry is not valid JSON" in r.stderr, (args, r.stderr)
    inst.flux("cancel", jobid)


def test_a_nan_count_is_named_as_such(inst):
    h = inst.handle()
    spec = {"version": 1, "resources": [{"type": "slot", "count": float("nan"), "label": "task",
                                         "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": {"duration": 0}}}
    with pytest.raises(OSError) as exc:
        h.rpc("job-ingest.submit", {"jobspec": json.dumps(spec), "urgency": 16,
                                    "flags": 0}).get()
    assert exc.value.strerror == ("invalid jobspec: resources[0].count: nan is not a number "
                                  "JSON allows")
    h.close()


def _put(key: str, data: str = "eA==") -> dict:
    return {"namespace": "primary", "flags": 0,
            "ops": [{"key": key, "flags": 0, "dirent": {"ver": 1, "type": "val", "data": data}}]}


def test_refused_commits_leave_nothing_behind(inst):
    h = inst.handle()
    bad = [h.rpc("kvs.commit", _put(".")) for _ in range(10000)]
    for f in bad:
        with pytest.raises(OSError):
            f.get()
    h.rpc("kvs.commit", _put("after.refused")).get()
    assert h.rpc("kvs.lookup", {"key": "after.refused", "flags": 0}).get()["val"]["data"] == "eA=="
    h.close()


def test_a_bad_transaction_fails_alone_in_its_group_commit(inst):
    h = inst.handle()
    deep = ".".join(["d"] * 65)
    nested: dict = {"ver": 1, "type": "val", "data": "eA=="}
    for _ in range(100):
        nested = {"ver": 1, "type": "dir", "data": {"n": nested}}
    bad_dirent = {"namespace": "primary", "flags": 0,
                  "ops": [{"key": "nested", "flags": 0, "dirent": nested}]}
    # sent back to back: they go into the same group commits
    futures = []
    for i in range(50):
        futures.append(("good", h.rpc("kvs.commit", _put(f"mix.k{i}"))))
        futures.append(("deep", h.rpc("kvs.commit", _put(deep))))
        futures.append(("nested", h.rpc("kvs.commit", bad_dirent)))
    for kind, f in futures:
        if kind == "good":
            f.get()
            continue
        with pytest.raises(OSError) as exc:
            f.get()
        assert exc.value.errno == errno.EINVAL
        if kind == "deep":
            assert "more than 64 path components (65)" in exc.value.strerror
        else:
            assert "directories nested more than 64 deep" in exc.value.strerror
    assert h.rpc("kvs.lookup", {"key": "mix.k49", "flags": 0}).get()["val"]["data"] == "eA=="
    assert h.rpc("kvs.stats", {}).get()["max_batch"] > 1
    # the deepest key allowed works end to end
    ok = ".".join(["d"] * 64)
    h.rpc("kvs.commit", _put(ok)).get()
    assert h.rpc("kvs.lookup", {"key": ok, "flags": 0}).get()["val"]["data"] == "eA=="
    h.close()


def test_jobs_complete_while_a_client_commits_garbage(inst):
    import threading

    stop = threading.Event()

    def garbage() -> None:
        g = inst.handle()
        deep = ".".join(["x"] * 200)
        while not stop.is_set():
            for f in [g.rpc("kvs.commit", _put(deep)) for _ in range(20)]:
                try:
                    f.get()
                except OSError:
                    pass
        g.close()

    t = threading.Thread(target=garbage)
    t.start()
    try:
        r = inst.flux("submit", "--cc=1-100", "--wait", "--quiet", "true", timeout=120)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    states = inst.flux("jobs", "-a", "-n", "-o", "{status_abbrev}").stdout.split()
    assert states.count("CD") >= 100 and "R" not in states and "S" not in states


# -- the local socket -------------------------------------------------------------------------


def _raw_client(inst):
    """A connected, accepted socket to the broker, speaking no protocol yet."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(inst.socket_path)
    assert sock.recv(1) == b"\0"
    return sock


def _closed_by_broker(sock) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_malformed_frames_and_huge_lengths_drop_only_that_client(inst):
    import struct

    from flux.message import HEADER, MAGIC, MAX_MESSAGE_SIZE, VERSION

    h = inst.handle()
    h.rpc("kvs.commit", _put("frames.before")).get()

    def header(length: int, magic: int = MAGIC, tlen: int = 0, plen: int = 0) -> bytes:
        return HEADER.pack(length, magic, VERSION, 1, 0, 0, 0, 0, 0, tlen, 0, plen)

    # garbage, a bad magic byte, a length past the limit: dropped at once
    for data in (b"\xff" * 64, header(64, magic=0x00),
                 header(MAX_MESSAGE_SIZE + 1), struct.pack("!I", 0xFFFFFFFF) + b"\0" * 28):
        sock = _raw_client(inst)
        sock.sendall(data)
        assert _closed_by_broker(sock), data[:8]
        sock.close()
    # a frame whose topic is not UTF-8, or whose sizes do not add up
    for topic, length in ((b"kvs.\xff\xfe", 28 + 6), (b"kvs.lookup", 28 + 3)):
        sock = _raw_client(inst)
        sock.sendall(header(length, tlen=len(topic)) + topic)
        assert _closed_by_broker(sock)
        sock.close()
    # 1 GiB announced, a little sent, then the client goes: nothing is held for it
    sock = _raw_client(inst)
    sock.sendall(header(MAX_MESSAGE_SIZE) + b"x" * 65536)
    sock.close()
    # the instance is fine for everyone else, including the handle opened before
    h.rpc("kvs.commit", _put("frames.after")).get()
    assert h.rpc("kvs.lookup", {"key": "frames.after", "flags": 0}).get()["val"]["data"] == "eA=="
    assert inst.flux("kvs", "get", "frames.before").returncode == 0
    assert inst.flux("submit", "--wait", "true").returncode == 0
    h.close()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_client_that_never_reads_is_dropped_not_buffered_without_end():
    import base64
    import os

    import flux
    from broker.testing import TestInstance

    inst = TestInstance(setattrs=["broker.client-outbuf-limit=20M"]).start()
    try:
        h = flux.Flux(inst.uri)
        value = base64.b64encode(os.urandom(1 << 20)).decode()
        h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [
            {"key": "big", "flags": 0, "dirent": {"ver": 1, "type": "val", "data": value}}]}).get()
        broker = inst.broker_pids[0]
        before = _rss_mb(broker)
        # 300 answers of 1.4 MB each that the client never reads: 420 MB without the limit
        greedy = flux.Flux(inst.uri)
        futures = [greedy.rpc("kvs.lookup", {"key": "big", "flags": 0}) for _ in range(300)]
        deadline = time.monotonic() + 30
        while "dropping client" not in (log := inst.flux("dmesg").stdout):
            assert time.monotonic() < deadline, "the greedy client was never dropped"
            time.sleep(0.2)
        assert re.search(r"bytes sent to it are unread \(broker.client-outbuf-limit 20971520\)",
                         log)
        assert _rss_mb(broker) - before < 150
        with pytest.raises(OSError):
            for fut in futures:
                fut.get()
        # everyone else is served as before
        assert h.rpc("kvs.lookup", {"key": "big", "flags": 0}).get()["val"]["data"] == value
        assert inst.flux("submit", "--wait", "true").returncode == 0
    finally:
        inst.stop()


def test_a_bad_client_outbuf_limit_stops_the_broker_with_its_name(tmp_path):
    from broker.testing import flux_command

    r = subprocess.run(flux_command() + ["start", "-S", "broker.client-outbuf-limit=lots",
                                         "true"], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, check=False)
    assert r.returncode == 1
    assert "broker.client-outbuf-limit: invalid size 'lots'" in r.stderr


def test_arguments_that_are_not_utf8_are_named_not_a_traceback(inst):
    # the shell hands these over as bytes; Flux sends keys, commands and notes as UTF-8
    for args, shown, prog in ((("kvs", "get", "a\udcffb"), "a\\xffb", "flux-kvs"),
                              (("submit", "\udcfe"), "\\xfe", "flux-submit"),
                              (("run", "echo", "\udcff"), "\\xff", "flux-run"),
                              (("job", "raiseall", "-f", "x\udcff"), "x\\xff", "flux-job")):
        r = inst.flux(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr == (f"{prog}: argument '{shown}' is not valid UTF-8 "
                            "(Flux sends text as UTF-8)\n"), args
    assert inst.flux("submit", "--wait", "true").returncode == 0


def test_a_rank_past_32_bits_is_a_usage_error(inst):
    r = inst.flux("ping", "99999999999999")
    assert r.returncode == 2
    assert "'99999999999999' is not a rank, any or upstream" in r.stderr
    assert "Traceback" not in r.stderr


# -- jobspecs ---------------------------------------------------------------------------------


def _jobspec(**system) -> dict:
    return {"version": 1,
            "resources": [{"type": "slot", "count": 1, "label": "task",
                           "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": {"duration": 0, **system}}}


def test_nested_non_utf8_and_huge_jobspecs(inst, tmp_path):
    base = json.dumps(_jobspec())
    deep = base[:-3] + ', "deep": ' + '{"n":' * 5000 + "1" + "}" * 5000 + "}}}"
    deeplist = base[:-3] + ', "deep": ' + "[" * 200000 + "]" * 200000 + "}}}"
    for text in (deep, deeplist):
        (tmp_path / "spec.json").write_text(text)
        r = inst.flux("job", "submit", str(tmp_path / "spec.json"))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "invalid jobspec: nested more than 1024 levels deep" in r.stderr, r.stderr
    # the same through the API, several at once with a good one in the same batch:
    # only the bad ones fail
    h = inst.handle()
    futs = [h.rpc("job-ingest.submit", {"jobspec": text, "urgency": 16, "flags": 0})
            for text in (deep, base, deeplist)]
    with pytest.raises(OSError):
        futs[0].get()
    assert futs[1].get()["id"] > 0
    with pytest.raises(OSError):
        futs[2].get()
    # bytes that are not UTF-8
    (tmp_path / "bin.json").write_bytes(base.encode().replace(b'"true"', b'"tr\xffue"'))
    r = inst.flux("job", "submit", str(tmp_path / "bin.json"))
    assert r.returncode == 1 and "jobspec is not UTF-8 text (byte 0xff at offset" in r.stderr
    r = inst.flux("job", "submit", input="{\n")
    assert r.returncode == 1 and "jobspec is not valid JSON" in r.stderr
    assert inst.flux("job", "submit", "-f", "bogus", str(tmp_path / "bin.json")).returncode == 2
    # 10 MB: accepted, stored and listed; it runs like any job and nothing slows down
    (tmp_path / "big.json").write_text(json.dumps(_jobspec(note="y" * 10_000_000)))
    r = inst.flux("job", "submit", "--flags=waitable", str(tmp_path / "big.json"), timeout=60)
    assert r.returncode == 0, r.stderr
    jobid = r.stdout.strip()
    assert inst.flux("job", "wait", jobid, timeout=60).returncode == 0
    r = inst.flux("job", "info", jobid, "jobspec", timeout=60)
    assert len(r.stdout) > 10_000_000
    assert inst.flux("jobs", "-no", "{result}", jobid).stdout.strip() == "COMPLETED"
    h.close()


# -- KVS values, links, eventlogs -------------------------------------------------------------


def test_deeply_nested_values_symlink_loops_and_odd_event_names(inst):
    nested = "[" * 100000 + "]" * 100000
    assert inst.flux("kvs", "put", "-r", "nested=-", input=nested).returncode == 0
    r = inst.flux("kvs", "get", "nested")
    assert r.returncode == 0 and r.stdout.strip() == nested
    assert inst.flux("kvs", "link", "loop", "loop").returncode == 0
    for args in (("kvs", "get", "loop"), ("kvs", "ls", "loop")):
        r = inst.flux(*args)
        assert r.returncode == 1 and "Too many levels of symbolic links" in r.stderr
    assert inst.flux("kvs", "link", "ping", "pong").returncode == 0
    assert inst.flux("kvs", "link", "pong", "ping").returncode == 0
    r = inst.flux("kvs", "get", "ping")
    assert r.returncode == 1 and "Too many levels of symbolic links" in r.stderr
    # any string is an event name (RFC 18); the log stays one event per line
    for name in ("with space", "with\nnewline", "ünï"):
        assert inst.flux("kvs", "eventlog", "append", "odd", name, '{"k":1}').returncode == 0
    raw = inst.flux("kvs", "get", "-r", "odd").stdout
    lines = raw.split("\n")
    assert len(lines) == 4 and lines[-1] == ""
    assert [json.loads(line)["name"] for line in lines[:-1]] == ["with space", "with\nnewline",
                                                                "ünï"]
    r = inst.flux("kvs", "eventlog", "wait-event", "-t", "5", "odd", "with space")
    assert r.returncode == 0, r.stderr


def test_a_torn_last_eventlog_line(inst):
    jobid = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
    key = inst.flux("job", "id", "--to=kvs", jobid).stdout.strip()
    r = inst.flux("kvs", "put", "--append", f'{key}.eventlog={{"timestamp":1.0,"name":"ur')
    assert r.returncode == 0
    # as in Flux, the incomplete last line is not an event: the others read as before
    r = inst.flux("job", "eventlog", jobid)
    assert r.returncode == 0 and r.stdout.split("\n")[0].split()[1] == "submit"
    assert "ur" not in r.stdout.split()
    r = inst.flux("job", "wait-event", "-t", "0.5", jobid, "clean")
    assert r.returncode == 1 and "wait-event timeout" in r.stderr
    # the job can still be canceled and the instance goes on
    assert inst.flux("cancel", jobid).returncode == 0
    r = inst.flux("job", "wait-event", "-t", "10", jobid, "clean")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    assert inst.flux("jobs", "-no", "{state}", jobid).stdout.strip() == "INACTIVE"
    assert inst.flux("submit", "--wait", "true").returncode == 0
