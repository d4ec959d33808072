"""The broker's rexec service (RFC 42): protocol, process hygiene, the in-process API."""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers.procs import alive
from helpers.wait import wait_until

from broker.broker import Broker, BrokerOptions
from broker.module import Module
from broker.svc_rexec import (
    FLAG_STDERR,
    FLAG_STDOUT,
    FLAG_WAITABLE,
    FLAG_WRITE_CREDIT,
    STDIN_BUFSIZE,
    Command,
    decode_io,
    encode_io,
    exit_code,
    parse_exec,
    run_command,
    wait_status,
)
from broker.testing import TestInstance, flux_command, stray_brokers
from flux.constants import FLUX_NODEID_ANY, FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING

FLUX = " ".join(flux_command())


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance(size=2).start()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


@pytest.fixture
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


# -- helpers ------------------------------------------------------------------------------



def proc_table():
    """{pid: (ppid, pgid)} of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid):
    """Living descendants of PID."""
    table = proc_table()
    out, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _pgid) in table.items():
            if ppid == parent and child not in out:
                out.add(child)
                todo.append(child)
    return out


def group(pgid):
    return {pid for pid, (_ppid, g) in proc_table().items() if g == pgid}


def cmd(cmdline, cwd="/tmp", **extra):
    return {"cmdline": list(cmdline), "cwd": cwd, "env": dict(os.environ), **extra}


def exec_rpc(h, cmdline, nodeid=FLUX_NODEID_ANY, flags=FLAG_STDOUT | FLAG_STDERR, **kw):
    return h.rpc("rexec.exec", {"cmd": cmd(cmdline, **kw), "flags": flags}, nodeid=nodeid,
                 flags=FLUX_RPC_STREAMING)


def collect(rpc):
    """Every response payload of an exec stream, and the final error (ENODATA on success)."""
    out = []
    while True:
        try:
            out.append(rpc.get())
        except OSError as exc:
            return out, exc
        rpc.reset()


def output_of(responses, stream="stdout"):
    data = b""
    for r in responses:
        if r["type"] == "output" and r["io"]["stream"] == stream:
            data += decode_io(r["io"])[1]
    return data


def first(rpc):
    resp = rpc.get()
    rpc.reset()
    return resp


# -- the protocol, pure ---------------------------------------------------------------------


@pytest.mark.parametrize("body,message", [
    ("x", "payload must be a JSON object"),
    ({}, "'cmd' is required"),
    ({"cmd": []}, "'cmd' must be a JSON object"),
    ({"cmd": {"cwd": "/"}}, "cmd.cmdline must be a non-empty list of strings"),
    ({"cmd": {"cmdline": "true", "cwd": "/"}}, "cmd.cmdline must be a non-empty list"),
    ({"cmd": {"cmdline": [], "cwd": "/"}}, "cmd.cmdline must be a non-empty list"),
    ({"cmd": {"cmdline": ["echo", 1], "cwd": "/"}}, "must be a list of strings, found 1"),
    ({"cmd": {"cmdline": [""], "cwd": "/"}}, "cmd.cmdline[0] (the command) must not be empty"),
    ({"cmd": {"cmdline": ["true"]}}, "cmd.cwd is required"),
    ({"cmd": {"cmdline": ["true"], "cwd": "tmp"}}, "cmd.cwd must be an absolute path"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/", "env": {"A": 1}}}, "cmd.env must be an object"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/", "opts": []}}, "cmd.opts must be an object"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/", "channels": ["X"]}}, "channels are not supported"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/", "label": ""}}, "cmd.label must be a non-empty"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/"}, "flags": "3"}, "'flags' must be an integer"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/"}, "flags": 64}, "'flags' must be an integer"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/"}, "flags": 4}, "extra I/O channels"),
])
def test_parse_exec_names_what_is_wrong(body, message):
    with pytest.raises(ValueError) as exc:
        parse_exec(body)
    assert message in str(exc.value)


def test_parse_exec_defaults_and_round_trip():
    c, flags = parse_exec({"cmd": {"cmdline": ["ls", "-l"], "cwd": "/tmp", "label": "x"}})
    assert flags == FLAG_STDOUT | FLAG_STDERR
    assert (c.cmdline, c.cwd, c.env, c.label) == (["ls", "-l"], "/tmp", None, "x")
    assert Command.from_json(c.to_json()) == c


def test_io_encoding_is_text_or_base64():
    assert encode_io("stdout", 3, b"hi\n") == {"stream": "stdout", "rank": "3", "data": "hi\n"}
    raw = bytes(range(256))
    io = encode_io("stderr", 0, raw, eof=True)
    assert io["encoding"] == "base64" and io["eof"] is True
    assert decode_io(io) == ("stderr", raw, True)
    assert encode_io("stdout", 0, b"", eof=True) == {"stream": "stdout", "rank": "0", "eof": True}
    with pytest.raises(ValueError, match="not valid base64"):
        decode_io({"stream": "stdin", "data": "@@", "encoding": "base64"})
    with pytest.raises(ValueError, match="io.encoding 'rot13'"):
        decode_io({"stream": "stdin", "data": "x", "encoding": "rot13"})


def test_wait_status_and_exit_code():
    assert wait_status(os.CLD_EXITED, 3) == 3 << 8
    assert wait_status(os.CLD_KILLED, 9) == 9
    assert wait_status(os.CLD_DUMPED, 11) == 11 | 0x80
    assert [exit_code(s) for s in (0, 3 << 8, 9, 11 | 0x80)] == [0, 3, 137, 139]


# -- a live instance ---------------------------------------------------------------------


def test_exec_streams_started_output_finished_then_enodata(h):
    responses, end = collect(exec_rpc(h, ["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert end.errno == errno.ENODATA
    kinds = [r["type"] for r in responses]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    pid = responses[0]["pid"]
    assert all(r["pid"] == pid for r in responses)
    assert responses[-1]["status"] == 3 << 8
    assert output_of(responses) == b"out\n" and output_of(responses, "stderr") == b"err\n"
    # every output stream ends with exactly one eof, before finished
    eofs = [r["io"]["stream"] for r in responses if r["type"] == "output" and r["io"].get("eof")]
    assert sorted(eofs) == ["stderr", "stdout"]


def test_exec_on_another_rank_talks_to_that_broker(inst, h):
    uri1 = h.rpc("attr.get", {"name": "local-uri"}, nodeid=1).get()["value"]
    responses, end = collect(exec_rpc(h, ["sh", "-c", f'echo "$FLUX_URI"; {FLUX} getattr rank'],
                                      nodeid=1))
    assert end.errno == errno.ENODATA
    assert output_of(responses).decode().split() == [uri1, "1"]
    for r in responses:
        if r["type"] == "output":
            assert r["io"]["rank"] == "1"


def test_unforwarded_streams_are_discarded(h):
    responses, _end = collect(exec_rpc(h, ["sh", "-c", "echo out; echo err >&2"],
                                       flags=FLAG_STDERR))
    assert output_of(responses) == b"" and output_of(responses, "stderr") == b"err\n"
    assert not [r for r in responses if r["type"] == "output" and r["io"]["stream"] == "stdout"]


def test_output_is_batched_not_a_response_per_write(h):
    # 300 lines, one write each, 1 ms apart: sent as they come, that is ~300 responses
    script = "import sys, time\nfor i in range(300):\n    sys.stdout.write(f'{i}\\n'); " \
             "sys.stdout.flush(); time.sleep(0.001)\n"
    responses, _end = collect(exec_rpc(h, [sys.executable, "-c", script]))
    assert output_of(responses) == "".join(f"{i}\n" for i in range(300)).encode()
    chunks = [r for r in responses if r["type"] == "output"]
    assert len(chunks) < 100


def test_binary_output_is_intact(h, tmp_path):
    data = os.urandom(200_000) + b"\xff\xfe tail"
    path = tmp_path / "blob"
    path.write_bytes(data)
    responses, end = collect(exec_rpc(h, ["cat", str(path)], nodeid=1))
    assert end.errno == errno.ENODATA
    assert output_of(responses) == data
    assert any(r["io"].get("encoding") == "base64" for r in responses if r["type"] == "output")


def test_stdin_is_fed_by_write_and_closed_by_eof(h):
    rpc = exec_rpc(h, ["cat"], nodeid=1)
    assert first(rpc)["type"] == "started"
    for piece in (b"hello ", b"\xff\x00binary", b" world\n"):
        h.rpc("rexec.write", {"matchtag": rpc.matchtag, "io": encode_io("stdin", 1, piece)},
              nodeid=1, flags=FLUX_RPC_NORESPONSE)
    h.rpc("rexec.write", {"matchtag": rpc.matchtag, "io": encode_io("stdin", 1, b"", True)},
          nodeid=1, flags=FLUX_RPC_NORESPONSE)
    responses, end = collect(rpc)
    assert end.errno == errno.ENODATA
    assert output_of(responses) == b"hello \xff\x00binary world\n"
    assert responses[-1] == {"type": "finished", "pid": responses[-1]["pid"], "status": 0}


def test_write_credits_pace_stdin(h):
    rpc = exec_rpc(h, ["wc", "-c"], flags=FLAG_STDOUT | FLAG_STDERR | FLAG_WRITE_CREDIT)
    assert first(rpc)["type"] == "started"
    assert first(rpc) == {"type": "add-credit", "channels": {"stdin": STDIN_BUFSIZE}}
    total = 3 * STDIN_BUFSIZE
    credit, sent = STDIN_BUFSIZE, 0
    while sent < total:
        while credit == 0:
            resp = first(rpc)
            assert resp["type"] == "add-credit"
            credit += resp["channels"]["stdin"]
        n = min(credit, total - sent)
        h.rpc("rexec.write", {"matchtag": rpc.matchtag, "io": encode_io("stdin", 0, b"x" * n)},
              flags=FLUX_RPC_NORESPONSE)
        credit -= n
        sent += n
    h.rpc("rexec.write", {"matchtag": rpc.matchtag, "io": encode_io("stdin", 0, b"", True)},
          flags=FLUX_RPC_NORESPONSE)
    responses, _end = collect(rpc)
    assert output_of(responses).strip() == str(total).encode()
    credited = sum(r["channels"]["stdin"] for r in responses if r["type"] == "add-credit")
    assert credit + credited == STDIN_BUFSIZE  # every byte written was credited back


@pytest.mark.parametrize("body,errnum,message", [
    ({"cmd": {"cmdline": "true", "cwd": "/"}}, errno.EPROTO, "cmd.cmdline must be a non-empty"),
    ({"cmd": {"cmdline": ["true"]}}, errno.EPROTO, "cmd.cwd is required"),
    ({"flags": 3}, errno.EPROTO, "'cmd' is required"),
    ({"cmd": {"cmdline": ["no-such-command-x"], "cwd": "/"}}, errno.ENOENT,
     "no-such-command-x: No such file or directory"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/no/such/dir"}}, errno.ENOENT,
     "cannot change directory to /no/such/dir: No such file or directory"),
    ({"cmd": {"cmdline": ["echo", "a\0b"], "cwd": "/"}}, errno.EPROTO, "embedded null byte"),
    ({"cmd": {"cmdline": ["true"], "cwd": "/"}, "flags": 3 | FLAG_WAITABLE}, errno.EPROTO,
     "for background"),
])
def test_bad_requests_get_errors_naming_the_problem(h, body, errnum, message):
    with pytest.raises(OSError) as exc:
        h.rpc("rexec.exec", body, nodeid=1, flags=FLUX_RPC_STREAMING).get()
    assert exc.value.errno == errnum
    assert message in exc.value.strerror
    assert h.rpc("broker.ping", nodeid=1).get()  # the broker is fine


def test_a_file_that_is_not_executable_is_eacces(h, tmp_path):
    path = tmp_path / "script"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)
    with pytest.raises(OSError) as exc:
        exec_rpc(h, [str(path)]).get()
    assert exc.value.errno == errno.EACCES
    assert exc.value.strerror == f"{path}: Permission denied"


def test_kill_signals_the_process_group(h):
    rpc = exec_rpc(h, ["sh", "-c", "sleep 300 & echo $!; wait"])
    pid = first(rpc)["pid"]
    child = int(first(rpc)["io"]["data"])
    assert group(pid) == {pid, child}
    assert h.rpc("rexec.list").get()["procs"] == [
        {"pid": pid, "label": None, "cmdline": ["sh", "-c", "sleep 300 & echo $!; wait"],
         "state": "running", "bg": False, "waitable": False}]
    assert h.rpc("rexec.kill", {"pid": pid, "signum": signal.SIGUSR1}).get() == {}
    responses, _end = collect(rpc)
    assert responses[-1]["status"] == signal.SIGUSR1
    wait_until(lambda: not alive(child), what="grandchild killed")
    with pytest.raises(OSError) as exc:
        h.rpc("rexec.kill", {"pid": pid, "signum": 9}).get()
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(OSError) as exc:
        h.rpc("rexec.kill", {"pid": os.getpid(), "signum": 0}).get()
    assert exc.value.errno == errno.EINVAL and "'signum' must be" in exc.value.strerror


def test_background_exec_wait_and_labels(h):
    resp = h.rpc("rexec.exec", {"cmd": cmd(["sh", "-c", "sleep 0.2; exit 5"], label="bg1"),
                                "flags": FLAG_WAITABLE}).get()
    assert resp["type"] == "started"
    with pytest.raises(OSError) as exc:  # labels are unique among live processes
        h.rpc("rexec.exec", {"cmd": cmd(["true"], label="bg1"), "flags": 0}).get()
    assert exc.value.errno == errno.EEXIST and "in use by pid" in exc.value.strerror
    (listed,) = [p for p in h.rpc("rexec.list").get()["procs"] if p["pid"] == resp["pid"]]
    assert (listed["label"], listed["bg"], listed["waitable"]) == ("bg1", True, True)
    assert h.rpc("rexec.wait", {"label": "bg1"}).get() == {"status": 5 << 8}
    with pytest.raises(OSError) as exc:  # reaped once
        h.rpc("rexec.wait", {"pid": resp["pid"]}).get()
    assert exc.value.errno == errno.ENOENT
    other = h.rpc("rexec.exec", {"cmd": cmd(["sleep", "300"], label="bg2"), "flags": 0}).get()
    with pytest.raises(OSError) as exc:
        h.rpc("rexec.wait", {"pid": other["pid"]}).get()
    assert exc.value.errno == errno.EINVAL
    h.rpc("rexec.kill", {"label": "bg2", "signum": 9}).get()
    wait_until(lambda: not alive(other["pid"]), what="background process killed")


def test_cancel_kills_the_process_and_its_children(h):
    rpc = exec_rpc(h, ["sh", "-c", "sleep 300 & echo $!; wait"])
    pid = first(rpc)["pid"]
    child = int(first(rpc)["io"]["data"])
    h.rpc("rexec.cancel", {"matchtag": rpc.matchtag}, flags=FLUX_RPC_NORESPONSE)
    _responses, end = collect(rpc)
    assert end.errno == errno.ENODATA
    wait_until(lambda: not alive(pid) and not alive(child), what="cancelled group killed")


def test_disconnect_kills_after_sigterm_grace(inst):
    h = inst.handle()
    # the whole group ignores SIGTERM: only the SIGKILL after the grace period ends it
    rpc = exec_rpc(h, ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"], nodeid=1)
    pid = first(rpc)["pid"]
    child = int(first(rpc)["io"]["data"])
    t0 = time.monotonic()
    h.close()
    time.sleep(0.5)
    assert alive(pid) and alive(child)  # SIGTERM came and was ignored
    wait_until(lambda: not alive(pid) and not alive(child), what="group SIGKILLed")
    assert time.monotonic() - t0 >= 1.5


def test_guest_is_refused(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    guest_inst = TestInstance(config_path=str(tmp_path)).start()
    script = textwrap.dedent("""
        import os, sys
        import flux, flux.core.handle, flux.rpc
        from flux.constants import FLUX_RPC_STREAMING
        os.setgid(65534); os.setuid(65534)
        h = flux.Flux(sys.argv[1])
        for topic, flags in (("rexec.exec", FLUX_RPC_STREAMING), ("rexec.list", 0)):
            try:
                h.rpc(topic, {"cmd": {"cmdline": ["id"], "cwd": "/"}}, flags=flags).get()
            except OSError as e:
                print(topic, e.errno, e.strerror)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script, guest_inst.uri], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            f"rexec.exec {errno.EPERM} Request requires owner credentials",
            f"rexec.list {errno.EPERM} Request requires owner credentials"]
    finally:
        assert guest_inst.stop() == 0


def test_broker_exit_kills_every_process():
    inst = TestInstance(size=2).start()
    h = inst.handle()
    groups = []
    for rank in (0, 1):
        rpc = exec_rpc(h, ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"], nodeid=rank)
        pid = first(rpc)["pid"]
        groups.append((pid, int(first(rpc)["io"]["data"])))
    bg = h.rpc("rexec.exec", {"cmd": cmd(["sleep", "300"]), "flags": 0}, nodeid=1).get()["pid"]
    assert inst.stop() == 0
    leftovers = [p for g in groups for p in g if alive(p)] + ([bg] if alive(bg) else [])
    assert leftovers == []


def test_broker_sigkill_leaves_no_process_behind():
    inst = TestInstance(size=2).start()
    watched = set()
    try:
        h = inst.handle()
        for rank in (0, 1):
            rpc = exec_rpc(h, ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"],
                           nodeid=rank)
            pid = first(rpc)["pid"]
            watched |= {pid, int(first(rpc)["io"]["data"])}
        for pid in inst.broker_pids:
            watched |= descendants(pid)  # the guards too
        assert len(watched) >= 6
        inst.kill()  # SIGKILL, no clean-up by the brokers
        wait_until(lambda: not [p for p in watched if alive(p)], what="nothing left behind")
    finally:
        inst.kill()
        for pid in watched:  # whatever a failure left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


PDEATH = """
import asyncio, os, sys, time
from broker.svc_rexec import Command, ProcessServer

class Log:
    def __getattr__(self, name):
        return lambda *a, **k: None

async def main():
    server = ProcessServer(0, Log(), guard=False)
    proc = server.spawn(Command(["sleep", "300"], cwd="/"), None)
    print(proc.pid, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


def test_children_get_sigkill_when_their_parent_dies():
    """Without the guard, the parent-death signal alone kills a direct child."""
    parent = subprocess.Popen([sys.executable, "-c", PDEATH], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait()
        wait_until(lambda: not alive(child), what="child killed by parent-death signal")
    finally:
        if parent.poll() is None:
            parent.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


# -- the in-process API -------------------------------------------------------------------


class Probe(Module):
    name = "rexec-probe"


def test_run_command_in_process_and_unload_kills():
    async def main():
        broker = Broker(BrokerOptions())
        await broker.start()
        try:
            ctx = (await broker.modules.load(None, cls=Probe)).ctx
            res = await run_command(ctx, Command(["sh", "-c", "cat; echo e >&2; exit 4"],
                                                 cwd="/tmp"), input=b"in\xff")
            assert (res.exit_code, res.status, res.stdout, res.stderr) == \
                (4, 4 << 8, b"in\xff", b"e\n")
            seen = []
            res = await run_command(ctx, Command(["pwd"], cwd="/usr"),
                                    on_output=lambda s, d: seen.append((s, d)))
            assert seen == [("stdout", b"/usr\n")] and res.stdout == b""
            with pytest.raises(OSError) as exc:
                await run_command(ctx, Command(["no-such-command-x"], cwd="/"))
            assert exc.value.errno == errno.ENOENT
            t0 = time.monotonic()
            with pytest.raises(OSError) as exc:
                await run_command(ctx, Command(["sleep", "300"], cwd="/"), timeout=0.3)
            assert exc.value.errno == errno.ETIMEDOUT and time.monotonic() - t0 < 2
            server = broker.modules.get("rexec").module.server
            await asyncio.sleep(0.1)
            assert server.listing() == []  # the timed-out command was killed
            task = asyncio.ensure_future(run_command(
                ctx, Command(["sh", "-c", "sleep 300 & wait"], cwd="/")))
            await asyncio.sleep(0.2)
            (pid,) = [p["pid"] for p in server.listing()]
            members = group(pid)
            assert len(members) == 2
            task.cancel()  # a cancelled caller kills its command
            await asyncio.sleep(0.3)
            assert not [p for p in members if alive(p)]
            # unloading the service kills what is still running
            task = asyncio.ensure_future(run_command(
                ctx, Command(["sh", "-c", "sleep 300 & wait"], cwd="/")))
            await asyncio.sleep(0.2)
            (pid,) = [p["pid"] for p in server.listing()]
            members = group(pid)
            guard = server.guard_pid
            assert guard is not None and alive(guard)
            await broker.modules.unload_builtins()
            res = await task
            assert res.exit_code == 128 + signal.SIGTERM
            assert not [p for p in members | {guard} if alive(p)]
        finally:
            await broker.connector.stop()
            broker._cleanup_rundir()

    asyncio.run(main())


PROBE_MODULE = """
from broker.module import Module, request_handler
from broker.svc_rexec import Command, run_command


class Probe(Module):
    name = "rexec-probe"

    @request_handler("rexec-probe.run")
    async def run(self, msg):
        res = await run_command(self.ctx, Command(msg.payload["cmdline"], cwd="/"),
                                nodeid=msg.payload["rank"], input=b"x")
        return {"code": res.exit_code, "out": res.stdout.decode()}
"""


def test_run_command_on_another_rank(tmp_path):
    (tmp_path / "rexec_probe.py").write_text(PROBE_MODULE)
    os.chmod(tmp_path, 0o755)
    inst = TestInstance(size=2, env={"PYTHONPATH": str(tmp_path)}).start()
    try:
        h = inst.handle()
        h.rpc("module.load", {"name": "rexec_probe:Probe"}).get()
        resp = h.rpc("rexec-probe.run", {"cmdline": ["sh", "-c", f"cat; {FLUX} getattr rank"],
                                         "rank": 1}).get()
        assert resp == {"code": 0, "out": "x1\n"}
        h.close()
    finally:
        assert inst.stop() == 0
