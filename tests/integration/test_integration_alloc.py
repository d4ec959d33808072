"""flux alloc on real instances: a command in a new instance, and an interactive shell
driven through a real pseudo-terminal (pexpect)."""
from __future__ import annotations

import re
import time

import pexpect
import pytest

from broker.testing import TestInstance, flux_command
from helpers.procs import wait_dead

pytestmark = pytest.mark.slow

PROMPT = r"PROMPT\$ "


@pytest.fixture(scope="module")
def parent():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def spawn(inst, *args, rows=40, cols=100):
    env = {**inst.env, "PS1": "PROMPT$ ", "SHELL": "/bin/sh", "TERM": "dumb"}
    cmd = flux_command()
    child = pexpect.spawn(cmd[0], [*cmd[1:], *args], env=env, encoding="utf-8",
                          timeout=30, dimensions=(rows, cols))
    return child


def finish(child):
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    return child.exitstatus


def test_a_command_runs_in_a_new_instance_and_gives_its_exit_code(parent):
    r = parent.flux("alloc", "-N1", "-v", "sh", "-c",
                    "flux getattr instance-level; flux getattr size; exit 4", input="",
                    timeout=90)
    assert r.returncode == 4, r.stderr
    assert r.stdout.splitlines() == ["1", "1"]
    assert re.match(r"jobid: ƒ\w+\n", r.stderr), r.stderr
    # stdin goes to the command; -N2 is an instance of two brokers
    r = parent.flux("alloc", "-n1", "cat", input="hello\n", timeout=90)
    assert r.returncode == 0 and r.stdout == "hello\n", r.stderr
    r = parent.flux("alloc", "-N2", "flux", "getattr", "size", input="", timeout=90)
    assert r.returncode == 0 and r.stdout == "2\n", r.stderr


def test_usage_errors(parent):
    r = parent.flux("alloc", "true")
    assert r.returncode == 2 and "Number of slots" in r.stderr
    r = parent.flux("alloc", "-n1", "--output=x", "true")
    assert r.returncode == 2


def test_an_interactive_shell_on_a_terminal(parent):
    child = spawn(parent, "alloc", "-N1", "-v", rows=40, cols=100)
    child.expect(r"jobid: (ƒ\w+)")
    child.expect(PROMPT)
    child.sendline("flux getattr instance-level; tty; stty size; flux getattr broker.pid")
    child.expect(r"\r\n(\d+)\r\n(/dev/pts/\d+)\r\n(\d+) (\d+)\r\n(\d+)\r\n")
    level, _tty, rows, cols, broker = child.match.groups()
    assert (level, rows, cols) == ("1", "40", "100")
    child.expect(PROMPT)
    # the window size follows ours
    child.setwinsize(30, 77)
    child.sendline("sleep 0.5; stty size")
    child.expect("30 77")
    child.expect(PROMPT)
    # ctrl-C interrupts the foreground program, not the shell or the instance
    child.sendline("sleep 100; echo after")
    child.expect("sleep 100")
    time.sleep(1.0)
    child.sendcontrol("c")
    child.expect(PROMPT)
    child.sendline("echo still here")
    child.expect("still here")
    child.expect(PROMPT)
    child.sendline("exit 5")
    assert finish(child) == 5
    assert wait_dead([int(broker)], timeout=10.0)


def test_a_command_on_a_terminal_gets_a_terminal_and_gives_its_exit_code(parent):
    child = spawn(parent, "alloc", "-n1", "sh", "-c", "tty; flux getattr instance-level; exit 7")
    child.expect(r"/dev/pts/\d+\r\n1\r\n")
    assert finish(child) == 7


def test_ctrl_d_ends_the_shell_and_our_terminal_is_restored(parent):
    env = {**parent.env, "PS1": "PROMPT$ ", "SHELL": "/bin/sh", "TERM": "dumb"}
    child = pexpect.spawn("/bin/sh", ["-c", f"{flux_command()[0]} alloc -n1; echo rc=$?; stty -a"],
                          env=env, encoding="utf-8", timeout=30, dimensions=(24, 80))
    child.expect(PROMPT)
    child.sendline("true")
    child.expect(PROMPT)
    child.sendcontrol("d")
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == "0"
    child.expect(pexpect.EOF)
    modes = child.before
    assert re.search(r"(?<!-)icanon", modes) and re.search(r"(?<!-)\becho\b", modes), modes
    child.close()


def test_bg_prints_the_job_id_once_the_instance_is_ready(parent):
    from flux.uri import JobURI

    r = parent.flux("alloc", "--bg", "-n1", timeout=90)
    assert r.returncode == 0, r.stderr
    jobid = r.stdout.strip()
    # ready: it has recorded its URI, and takes jobs at once
    uri = parent.flux("jobs", "-no", "{user.uri}", jobid).stdout.strip()
    assert uri.startswith("ssh://")
    r = parent.flux("run", "flux", "getattr", "instance-level",
                    env={"FLUX_URI": JobURI(uri).local}, timeout=60)
    assert r.returncode == 0 and r.stdout == "1\n", r.stderr
    assert parent.flux("cancel", jobid).returncode == 0
    r = parent.flux("job", "wait-event", "-t", "30s", jobid, "clean", timeout=60)
    assert r.returncode == 0, r.stderr
    assert parent.flux("jobs", "-no", "{result}", jobid).stdout.strip() == "CANCELED"


def test_run_and_attach_with_an_interactive_terminal(parent):
    # flux run -o pty.interactive: our terminal, raw, is the job's, as flux alloc's
    # is (the window size is the job's, ctrl-C reaches its foreground program);
    # flux job attach to such a job does the same
    child = spawn(parent, "run", "-o", "pty.interactive", "sh", "-i", rows=33, cols=91)
    child.expect(PROMPT)
    child.sendline("stty size; echo $FLUX_JOB_ID")
    child.expect(r"33 91\r\n(\S+)\r\n")
    jobid = child.match.group(1)
    child.expect(PROMPT)
    child.sendline("sleep 100; echo after")
    child.expect("sleep 100")
    time.sleep(1.0)
    child.sendcontrol("c")
    child.expect(PROMPT)
    # a second terminal attached to it (the first one goes on too)
    other = spawn(parent, "job", "attach", jobid, rows=20, cols=60)
    time.sleep(1.0)
    other.sendline("stty size")
    other.expect(r"20 60\r\n")
    other.sendline("exit 3")
    assert finish(other) == 3
    assert finish(child) == 3
