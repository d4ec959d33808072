"""flux exec (flux-exec(1)) against real multi-rank instances."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.procs import alive
from helpers.wait import wait_until

from broker.testing import TestInstance, flux_command, stray_brokers
from cli.cmd_exec import LineLabeler, failure_code, target_ranks
from flux.util.waitstatus import exit_code as status_code

FLUX = flux_command()
SH_FLUX = " ".join(FLUX)


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance(size=3).start()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


def fexec(inst, *args, input=b"", cwd=None, env=None, timeout=60):
    """Run ``flux exec ARGS`` as a real process; bytes in, bytes out."""
    full_env = inst.env
    full_env.update(env or {})
    return subprocess.run(FLUX + ["exec", *args], env=full_env, input=input, cwd=cwd,
                          capture_output=True, timeout=timeout)


def lines(data):
    return sorted(data.decode().splitlines())



def parent_of(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return int(fh.read().rsplit(") ", 1)[1].split()[1])


# -- pure parts ----------------------------------------------------------------------------


def test_target_ranks():
    assert target_ranks("all", 3) == ([0, 1, 2], [])
    assert target_ranks("0,2", 3) == ([0, 2], [])
    assert target_ranks("1-4", 3) == ([1, 2], [3, 4])
    with pytest.raises(ValueError):
        target_ranks("x", 3)


def test_exit_codes_of_statuses_and_failures():
    assert [status_code(s) for s in (0, 3 << 8, signal.SIGKILL)] == [0, 3, 137]
    assert [failure_code(e) for e in (2, 13, 113, 5)] == [127, 126, 68, 1]


def test_line_labeler_holds_partial_lines():
    lab = LineLabeler("2")
    assert lab.feed(b"a\nb") == b"2: a\n"
    assert lab.feed(b"c\n\nd") == b"2: bc\n2: \n"
    assert lab.feed(b"", eof=True) == b"2: d"


# -- a live instance ---------------------------------------------------------------------


def test_output_and_largest_exit_code_from_all_ranks(inst):
    r = fexec(inst, "sh", "-c", f"echo out $({SH_FLUX} getattr rank); echo err >&2; "
                                f"exit $({SH_FLUX} getattr rank)")
    assert r.returncode == 2, r.stderr
    assert lines(r.stdout) == ["out 0", "out 1", "out 2"]
    # then each non-zero exit, by the ranks that had it (flux-exec(1); -q: not)
    assert lines(r.stderr) == ["1: Exit 1", "2: Exit 2", "err", "err", "err"]
    r = fexec(inst, "-q", "sh", "-c", f"echo err >&2; exit $({SH_FLUX} getattr rank)")
    assert r.returncode == 2 and lines(r.stderr) == ["err", "err", "err"]
    r = fexec(inst, "sh", "-c", "exit 3")
    assert lines(r.stderr) == ["[0-2]: Exit 3"]


def test_label_io_prefixes_every_line_with_its_rank(inst):
    r = fexec(inst, "-l", "sh", "-c", "printf 'a'; sleep 0.05; printf 'b\\nc\\n'; echo e >&2")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["0: ab", "0: c", "1: ab", "1: c", "2: ab", "2: c"]
    assert lines(r.stderr) == ["0: e", "1: e", "2: e"]


def test_rank_subsets(inst):
    r = fexec(inst, "-r", "1-2", "-l", *FLUX, "getattr", "rank")
    assert (r.returncode, lines(r.stdout)) == (0, ["1: 1", "2: 2"])
    r = fexec(inst, "--rank=0,2", "-l", "true")
    assert r.returncode == 0 and r.stdout == b""
    r = fexec(inst, "-r", "1", "sh", "-c", "exit 7")
    assert r.returncode == 7
    r = fexec(inst, "-x", "1", "-l", *FLUX, "getattr", "rank")
    assert (r.returncode, lines(r.stdout)) == (0, ["0: 0", "2: 2"])
    r = fexec(inst, "-r", "0-1", "--exclude=0", "-l", *FLUX, "getattr", "rank")
    assert (r.returncode, lines(r.stdout)) == (0, ["1: 1"])
    r = fexec(inst, "-r", "1", "-x", "0-2", "true")
    assert r.returncode == 1 and b"every rank is excluded" in r.stderr
    r = fexec(inst, "-x", "nope", "true")
    assert r.returncode == 2 and b"--exclude" in r.stderr


def test_stdin_goes_to_every_rank(inst):
    r = fexec(inst, "-l", "cat", input=b"hello\n")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["0: hello", "1: hello", "2: hello"]


def test_large_binary_stdin_is_paced_and_intact(inst):
    data = os.urandom(300_000)
    r = fexec(inst, "-r", "0-1", "-l", "sh", "-c", "wc -c", input=data)
    assert lines(r.stdout) == ["0: 300000", "1: 300000"]
    r = fexec(inst, "-r", "2", "cat", input=data)
    assert r.returncode == 0 and r.stdout == data


def test_noinput_sends_eof_at_once(inst):
    r = fexec(inst, "-n", "-l", "sh", "-c", "cat; echo done", input=b"not forwarded\n")
    assert r.returncode == 0
    assert lines(r.stdout) == ["0: done", "1: done", "2: done"]


def test_stdin_from_dev_null_and_regular_files(inst, tmp_path):
    path = tmp_path / "in"
    path.write_bytes(b"from a file\n")
    with open(path, "rb") as fh:
        r = subprocess.run(FLUX + ["exec", "-r", "1", "cat"], env=inst.env, stdin=fh,
                           capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, b"from a file\n")
    r = subprocess.run(FLUX + ["exec", "-r", "1", "cat"], env=inst.env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, b"")


def test_dir_and_default_cwd_and_environment(inst, tmp_path):
    r = fexec(inst, "-r", "1", "-d", "/usr", "pwd")
    assert r.stdout == b"/usr\n"
    r = fexec(inst, "-r", "2", "pwd", cwd=str(tmp_path))
    assert r.stdout.decode() == f"{tmp_path}\n"
    r = fexec(inst, "-r", "0-1", "sh", "-c", "echo $MYVAR", env={"MYVAR": "from-caller"})
    assert lines(r.stdout) == ["from-caller", "from-caller"]
    r = fexec(inst, "-r", "0", "-d", "/no/such/dir", "true")
    assert r.returncode == 127
    assert b"rank 0: cannot change directory to /no/such/dir" in r.stderr


def test_a_rank_not_in_the_instance_is_ex_nohost(inst):
    r = fexec(inst, "-r", "5", "true")
    assert r.returncode == 68
    assert r.stderr == b"flux-exec: rank 5 is not in this instance (ranks 0-2)\n"
    # nothing runs when any target is missing
    r = fexec(inst, "-r", "1-4", "echo", "ran")
    assert (r.returncode, r.stdout) == (68, b"")
    assert b"rank 3-4 is not in this instance" in r.stderr


def test_a_command_that_cannot_run(inst, tmp_path):
    r = fexec(inst, "-r", "0-1", "no-such-command-x")
    assert r.returncode == 127
    assert lines(r.stderr) == [
        "flux-exec: Error: rank 0: no-such-command-x: No such file or directory",
        "flux-exec: Error: rank 1: no-such-command-x: No such file or directory"]
    script = tmp_path / "noexec"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    r = fexec(inst, "-r", "2", str(script))
    assert r.returncode == 126 and b"Permission denied" in r.stderr


def test_a_signaled_command_is_128_plus_signal(inst):
    r = fexec(inst, "-r", "1", "sh", "-c", "kill -USR1 $$")
    assert r.returncode == 128 + signal.SIGUSR1
    r = fexec(inst, "-r", "0-2", "sh", "-c", f"[ $({SH_FLUX} getattr rank) = 2 ] && kill -9 $$; "
                                             "exit 3")
    assert r.returncode == 137


def test_binary_output_is_intact(inst, tmp_path):
    data = os.urandom(150_000) + b"\x00\xff"
    (tmp_path / "blob").write_bytes(data)
    os.chmod(tmp_path, 0o755)
    r = fexec(inst, "-r", "2", "cat", str(tmp_path / "blob"))
    assert r.returncode == 0 and r.stdout == data


def test_verbose_reports_progress_and_failures(inst):
    r = fexec(inst, "-v", "-r", "0-2", "sh", "-c", f"exit $({SH_FLUX} getattr rank)")
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "Starting sh on [0-2]" in err and "3 tasks complete with code 2" in err
    assert "\n1: Exit 1\n" in err and "\n2: Exit 2\n" in err


def test_usage_errors_exit_2(inst):
    r = fexec(inst)
    assert r.returncode == 2 and b"command to run is missing" in r.stderr
    r = fexec(inst, "-r", "x", "true")
    assert r.returncode == 2 and b"invalid idset 'x'" in r.stderr
    r = fexec(inst, "--bogus", "true")
    assert r.returncode == 2


def test_options_after_the_command_belong_to_it(inst):
    r = fexec(inst, "-r", "0", "echo", "-l", "-n", "x")
    assert r.stdout == b"-l -n x\n"


def test_ctrl_c_is_forwarded(inst):
    proc = subprocess.Popen(FLUX + ["exec", "-r", "0-1", "sh", "-c", "echo ready; sleep 300"],
                            env=inst.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 128 + signal.SIGINT
    finally:
        if proc.poll() is None:
            proc.kill()


def test_two_quick_ctrl_c_force_exit_and_kill_the_rest(inst):
    proc = subprocess.Popen(FLUX + ["exec", "-r", "1", "sh", "-c",
                                    "trap '' INT; sleep 300 & echo $!; wait"],
                            env=inst.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        child = int(proc.stdout.readline())
        shell = parent_of(child)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # ignored remotely: still running
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 1
        assert b"1: command still running at exit" in proc.stderr.read()
        wait_until(lambda: not alive(child) and not alive(shell), what="remote processes killed")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_killed_client_leaves_nothing_running(inst):
    proc = subprocess.Popen(FLUX + ["exec", "-r", "2", "sh", "-c", "sleep 300 & echo $!; wait"],
                            env=inst.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        child = int(proc.stdout.readline())
        shell = parent_of(child)
        assert alive(child) and alive(shell)
        proc.kill()
        proc.wait()
        wait_until(lambda: not alive(child) and not alive(shell), what="remote processes killed")
    finally:
        if proc.poll() is None:
            proc.kill()


# Python lives where user nobody cannot read it: import first, then drop privileges.
_GUEST = """
import os, sys
import cli.main, cli.cmd_exec, cli.common, flux, flux.core.handle, flux.rpc, flux.idset
import flux.constants, base64, select, stat, click, locale
os.setgid(65534); os.setuid(65534)
sys.argv = ["flux", "exec", "true"]
cli.main.main()
"""


def test_a_guest_is_refused(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    guest_inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        r = subprocess.run([sys.executable, "-c", _GUEST], env=guest_inst.env, cwd="/",
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert r.stderr == "flux-exec: Error: rank 0: Request requires owner credentials\n"
    finally:
        assert guest_inst.stop() == 0
