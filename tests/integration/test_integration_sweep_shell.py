"""The job shell and job I/O as a user meets them, on a real size-2 instance:
shell options (pty, rlimit, ...), ``flux run`` I/O options, ``flux job attach``."""
from __future__ import annotations

import glob
import os
import subprocess
import time

import pytest

from broker.testing import TestInstance, flux_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def run(inst, *args, input=None, timeout=60):
    return inst.flux("run", *args, input=input, timeout=timeout)


def run_bytes(inst, *args, input=b"", timeout=60):
    """``flux run ARGS`` with its output as bytes (text mode would turn CR LF into LF)."""
    return subprocess.run(flux_command() + ["run", *args], env=inst.env, input=input,
                          capture_output=True, timeout=timeout)


# -- pty ---------------------------------------------------------------------------------

def test_pty_output_comes_out_line_by_line(inst):
    # flux-shell-options(7) pty: the pty's output is captured "to the same location
    # as stdout"; a captured line ends in LF as the task wrote it, not the CR LF the
    # terminal would show (it used to come out as "a\r\nb\r\n")
    r = run_bytes(inst, "-o", "pty", "sh", "-c", "echo a; echo b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a\nb\n"
    r = run_bytes(inst, "-n2", "-N2", "-l", "-o", "pty.ranks=all", "tty")
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines(keepends=True))
    assert len(lines) == 2
    assert all(line.startswith(b"%d: /dev/pts/" % i) and line.endswith(b"\n")
               and b"\r" not in line for i, line in enumerate(lines))


def test_pty_with_an_unknown_key_fails_the_job(inst):
    # flux-core's shell: "invalid shell pty option" (its test: -o pty.<opt> fails)
    r = run(inst, "-o", "pty.foo", "true")
    assert r.returncode == 1
    assert "invalid shell pty option" in r.stderr and "foo" in r.stderr


def test_pty_interactive_forces_a_pty_on_rank_0(inst):
    # flux-shell-options(7) pty.interactive: "a pty on rank 0 ... for interactive
    # attach"; with pty.ranks=1 rank 0 had none (flux-core adds it, and says so)
    r = run_bytes(inst, "-n2", "-N2", "-l", "-o", "pty.interactive", "-o", "pty.ranks=1",
                  "tty", timeout=20)
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert lines[0].startswith(b"0: /dev/pts/") and lines[1].startswith(b"1: /dev/pts/")
    assert r.stderr.count(b"adding pty to rank 0 for interactive support") == 1


def test_pty_task_sees_the_end_of_its_input(inst):
    # stdin for a task on a terminal ends as on a terminal (its EOF character):
    # closing the shell's end of the terminal is no EOF, and `cat` waited forever
    r = run_bytes(inst, "-o", "pty", "cat", input=b"hello\n", timeout=20)
    assert r.returncode == 0, r.stderr
    assert b"hello" in r.stdout
    # a partial last line is handed on, then the end
    r = run_bytes(inst, "-o", "pty", "sh", "-c", "cat; echo END", input=b"abc", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"abcEND\n")
    r = run_bytes(inst, "-o", "pty", "cat", timeout=20)        # no input at all
    assert r.returncode == 0, r.stderr


def test_pty_task_reads_its_input_file(inst, tmp_path):
    # --input=FILE with -o pty: the terminal was the task's stdin, and nothing is
    # ever typed at it (the file was unused, `cat` waited forever); now the task
    # reads the file, its output still on the terminal, as `CMD <FILE` would
    data = tmp_path / "in.txt"
    data.write_text("l1\nl2\n")
    r = run_bytes(inst, "-o", "pty", f"--input={data}", "sh", "-c",
                  "cat; test -t 1 && echo out-is-a-tty", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"l1\nl2\nout-is-a-tty\n"


# -- output files -------------------------------------------------------------------------

def test_output_file_is_truncated_unless_output_mode_append(inst, tmp_path):
    # flux-shell-options(7) output.mode: "The default is to truncate"; a second
    # `flux run --output=FILE` used to add to what the first left there
    out = tmp_path / "job.out"
    out.write_text("stale content from before\n")
    r = run(inst, f"--output={out}", "echo", "new")
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "new\n"
    r = run(inst, f"--output={out}", "-o", "output.mode=append", "echo", "more")
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "new\nmore\n"
    # two nodes writing one file: each shell empties it before any task starts
    r = run(inst, f"--output={out}", "-N2", "-n4", "-l", "sh", "-c", "echo $FLUX_TASK_RANK")
    assert r.returncode == 0, r.stderr
    assert sorted(out.read_text().splitlines()) == ["0: 0", "1: 1", "2: 2", "3: 3"]
    r = run(inst, f"--output={out}", "-o", "output.mode=bad", "true")
    assert r.returncode == 1 and "output.mode" in r.stderr


def test_stderr_to_stdouts_file_is_said_for_both_streams(inst, tmp_path):
    # flux-core t2606: with --output only, guest.output has a redirect event for
    # stderr too, and attach says "0: stderr redirected to FILE"
    out = tmp_path / "both.out"
    r = run(inst, "-n2", f"--output={out}", "sh", "-c", "echo o; echo e >&2")
    assert r.returncode == 0, r.stderr
    assert f"0-1: stdout redirected to {out}" in r.stderr
    assert f"0-1: stderr redirected to {out}" in r.stderr
    assert sorted(out.read_text().splitlines()) == ["e", "e", "o", "o"]


def test_shell_errors_go_to_the_stderr_file(inst, tmp_path):
    # flux-core t2606 "shell errors are captured in output file": with stderr in a
    # file the shell's messages go there (flux-core's output/log.c), not to the log
    out = tmp_path / "test.out"
    r = run(inst, f"--output={out}", "nosuchcommand")
    assert r.returncode == 127
    assert "flux-shell[0]: ERROR: " in out.read_text()
    assert "nosuchcommand: " in out.read_text()
    assert "flux-shell[0]: ERROR" not in r.stderr
    err = tmp_path / "test.err"
    r = run(inst, f"--error={err}", "-o", "verbose", "echo", "hi")
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    assert "flux-shell[0]: DEBUG: task 0: started pid" in err.read_text()


# -- a shell that fails to start -------------------------------------------------------------

def _servers(inst):
    """The pids of the instance's shell servers."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().decode(errors="replace")
        except OSError:
            continue
        if "shell.server" in cmd and inst.rundir in cmd:
            pids.append(int(pid))
    return pids


def _fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_failed_shell_init_leaves_no_tmpdir_or_open_files(inst, tmp_path):
    # a plugin after tmpdir, output and input fails shell.init (an unknown pmi): the
    # job's FLUX_JOB_TMPDIR and the files its shell opened were kept by the shell
    # server, which outlives the job, one set per failed job
    (tmp_path / "in.txt").write_text("in\n")
    args = ["-N2", "-n2", f"--input={tmp_path / 'in.txt'}", f"--output={tmp_path / 'o.txt'}",
            "-o", "pmi=bogus", "true"]
    r = run(inst, *args)             # the servers exist (and have loaded all) from here
    assert r.returncode == 1 and "pmi" in r.stderr
    servers = _servers(inst)
    assert servers
    before = {pid: _fds(pid) for pid in servers}
    for _ in range(3):
        r = run(inst, *args)
        assert r.returncode == 1
    after = {pid: _fds(pid) for pid in servers if os.path.exists(f"/proc/{pid}")}
    assert all(after[pid] <= before[pid] for pid in after), (before, after)
    deadline = time.monotonic() + 5
    while glob.glob(os.path.join(inst.rundir, "*", "jobtmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert glob.glob(os.path.join(inst.rundir, "*", "jobtmp-*")) == []


# -- rlimit ------------------------------------------------------------------------------

def test_rlimit_above_the_hard_limit_warns_once_named(inst):
    # the log line names the plugin once: "WARN: rlimit: nofile: ..."
    r = run(inst, "--rlimit=nofile=unlimited", "true")
    assert r.returncode == 0, r.stderr
    assert "WARN: rlimit: nofile:" in r.stderr
    assert "rlimit: rlimit:" not in r.stderr


# -- flux job attach -----------------------------------------------------------------------

def submit(inst, *args):
    r = inst.flux("submit", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_attach_stdin_ranks_closes_the_other_tasks_stdin(inst):
    # flux-job(1) -i: "The standard input for tasks not in RANKS will be closed";
    # rank 0's cat waited for input that never came
    jobid = submit(inst, "-n2", "-o", "exit-timeout=none", "cat")
    r = inst.flux("job", "attach", "-l", "-i", "1", jobid, input="hello\n", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1: hello\n"
    # ranks the job does not have are dropped, with flux-core's warning
    jobid = submit(inst, "-n2", "-N2", "-o", "exit-timeout=none", "cat")
    r = inst.flux("job", "attach", "-l", "-i", "1-5", jobid, input="x\n", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1: x\n"
    assert "flux-job: warning: adjusting --stdin-ranks from 1-5 to 1" in r.stderr
    # read-only sends no stdin at all: flux-core refuses the pair
    r = inst.flux("job", "attach", "--read-only", "-i", "0", jobid, timeout=20)
    assert r.returncode == 1
    assert "flux-job: Do not use --stdin-ranks with --read-only" in r.stderr


def test_attach_accepts_unbuffered_and_verbose(inst):
    # flux-job(1) documents -u, --unbuffered and -v, --verbose for attach
    jobid = submit(inst, "cat")
    r = inst.flux("job", "attach", "-u", jobid, input="abc", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "abc"
    r = inst.flux("job", "attach", "--unbuffered", "-v", jobid, timeout=20)
    assert r.returncode == 0 and r.stdout == "abc", r.stderr


def test_run_input_ranks_sends_stdin_to_those_tasks_only(inst, tmp_path):
    # flux-run(1) --input=FILENAME|RANKS: "the argument may specify an idset of task
    # ranks in to which to direct standard input"; the other tasks see EOF
    r = run(inst, "-n2", "-l", "--input=1", "cat", input="hi\n", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1: hi\n"
    # a file is still a file
    path = tmp_path / "in"
    path.write_text("x\n")
    r = run(inst, "-n2", "-l", f"--input={path}", "cat", timeout=30)
    assert sorted(r.stdout.splitlines()) == ["0: x", "1: x"]
