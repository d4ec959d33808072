"""flux top on real instances, driven through a real pseudo-terminal.

``flux top`` runs under pexpect; what it writes goes through pyte (a VT
terminal emulator), so a test reads the screen as a person would: text,
colour, bold, reverse video.  The emulator answers the cursor position
reports the terminal library asks for, as a terminal does.

The parent is a real two-broker instance.  In it run a plain ``sleep``
job and a child instance (``flux start`` as a job, 1 core, 10 minutes)
that runs a grandchild instance of its own, so ``Enter`` and ``q`` have
two levels to go down and up.
"""
from __future__ import annotations

import os
import pwd
import time

import pexpect
import pyte
import pytest

from broker.testing import TestInstance, flux_command
from flux.job import JobID

pytestmark = pytest.mark.slow

ROWS, COLS = 24, 80
DOWN, UP = "\x1b[B", "\x1b[A"
#: pyte's name for SGR 33 (yellow)
YELLOW = "brown"
#: how long a key may take to show on the screen (seconds; generous for a loaded machine)
KEY_WAIT = 10.0
#: a frame is one write; this long without output means it has all arrived (seconds)
QUIET = 0.05


class _Screen(pyte.Screen):
    """A screen that answers the program's queries (cursor position reports)."""

    child: pexpect.spawn | None = None

    def write_process_input(self, data: str) -> None:
        if self.child is not None and self.child.isalive():
            self.child.send(data)


class Top:
    """``flux top ARGS`` on a pseudo-terminal, its screen readable."""

    def __init__(self, inst: TestInstance, *args: str, env: dict[str, str] | None = None,
                 rows: int = ROWS, cols: int = COLS, shell: bool = False) -> None:
        full = inst.env
        full["TERM"] = "xterm-256color"
        for var in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TERM_PROGRAM"):
            full.pop(var, None)
        full.update(env or {})
        self.screen = _Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        cmd = flux_command() + ["top", *args]
        if shell:
            # under an interactive shell with job control, as a person runs it (a
            # session leader's own ctrl-Z is discarded: its group is orphaned)
            import shlex

            full["PS1"] = "$ "
            self.child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=full,
                                       dimensions=(rows, cols))
            self.child.sendline(" ".join(shlex.quote(a) for a in cmd))
        else:
            self.child = pexpect.spawn(cmd[0], cmd[1:], env=full, dimensions=(rows, cols))
        self.screen.child = self.child
        self.eof = False
        self.raw = b""

    # -- reading --------------------------------------------------------------------------
    def pump(self, timeout: float = 0.1) -> None:
        """Read what ``flux top`` wrote within TIMEOUT, then on until it is quiet
        for QUIET seconds, so a frame is never looked at half drawn."""
        if self.eof:
            time.sleep(timeout)
            return
        while True:
            try:
                data = self.child.read_nonblocking(1 << 16, timeout=timeout)
            except pexpect.TIMEOUT:
                return
            except pexpect.EOF:
                self.eof = True
                return
            self.raw += data
            self.stream.feed(data)
            timeout = QUIET

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait(self, pred, timeout: float = 20.0, what: str = "") -> None:
        """Read until PRED(self) holds; fail with the screen after TIMEOUT."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            if pred(self):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or pred}; screen:\n"
                                     + self.text + f"\nraw tail: {self.raw[-400:]!r}")

    def wait_text(self, text: str, timeout: float = 20.0) -> None:
        self.wait(lambda t: text in t.text, timeout, repr(text))

    def row_of(self, text: str) -> int:
        """The screen row holding TEXT (-1 if none)."""
        for y, line in enumerate(self.lines):
            if text in line:
                return y
        return -1

    def cell(self, y: int, x: int) -> pyte.screens.Char:
        return self.screen.buffer[y][x]

    def reversed_row(self) -> int:
        """The job table row shown in reverse video (the cursor), or -1."""
        for y in range(7, ROWS):
            if self.lines[y].strip() and self.cell(y, 5).reverse:
                return y
        return -1

    @property
    def output(self) -> str:
        """Everything written, as text (an error message is not wrapped here)."""
        return self.raw.decode("utf-8", "replace").replace("\r\n", "\n")

    @property
    def title(self) -> str:
        """The job id path in the summary's first row (empty at a root instance)."""
        return self.lines[0][1:70].strip()

    # -- keys ------------------------------------------------------------------------------
    def press(self, key: str) -> None:
        self.child.send(key)

    def select(self, text: str, key: str = "j") -> int:
        """Press KEY until the row holding TEXT is the selected one; its row."""
        for _ in range(ROWS):
            y = self.reversed_row()
            if y >= 0 and text in self.lines[y]:
                return y
            self.press(key)
            self.wait(lambda t, before=y: t.reversed_row() != before, KEY_WAIT,
                      f"the cursor to move to {text}")
        raise AssertionError(f"no row holding {text}:\n{self.text}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        self.wait(lambda t: t.eof, timeout, "flux top to exit")
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def top_factory():
    started: list[Top] = []

    def start(inst: TestInstance, *args: str, **kw) -> Top:
        top = Top(inst, *args, **kw)
        started.append(top)
        return top

    yield start
    for top in started:
        top.close()


def eventually(fn, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, value
            return value
        time.sleep(0.1)


def submit(inst: TestInstance, *args: str, env: dict[str, str] | None = None) -> JobID:
    r = inst.flux("submit", *args, env=env)
    assert r.returncode == 0, r.stderr
    return JobID(r.stdout.strip())


def job_uri(inst: TestInstance, jobid: JobID, env: dict[str, str] | None = None) -> str:
    """The job's instance URI, once its broker recorded it."""
    def uri():
        r = inst.flux("jobs", "-no", "{user.uri}", str(jobid), env=env)
        return r.stdout.strip() if r.stdout.strip().startswith("ssh://") else None

    return eventually(uri)


def local(uri: str) -> dict[str, str]:
    from flux.uri import JobURI

    return {"FLUX_URI": JobURI(uri).local}


def wait_running(inst: TestInstance, jobid: JobID, env: dict[str, str] | None = None) -> None:
    r = inst.flux("job", "wait-event", "-t", "60s", str(jobid), "start", env=env)
    assert r.returncode == 0, r.stderr


class Tree:
    """The instances of the module: the parent, a sleep job S, a child A with a grandchild B."""

    def __init__(self) -> None:
        self.parent = TestInstance(size=2).start()
        try:
            self.A = submit(self.parent, "-n1", "-t", "10m", "flux", "start", "sh", "-c",
                            "flux submit -n1 flux start sleep 600 && sleep 600")
            self.S = submit(self.parent, "sleep", "600")
            self.A_uri = job_uri(self.parent, self.A)
            self.A_env = local(self.A_uri)
            self.B = JobID(eventually(lambda: self.parent.flux(
                "jobs", "-no", "{id}", env=self.A_env).stdout.strip()))
            self.B_uri = job_uri(self.parent, self.B, env=self.A_env)
            wait_running(self.parent, self.S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.parent.flux("cancel", "--all")
        self.parent.stop()


@pytest.fixture(scope="module")
def tree():
    t = Tree()
    yield t
    t.stop()


def resource_counts(inst: TestInstance, state: str) -> tuple[int, int]:
    r = inst.flux("resource", "list", "-s", state, "-no", "{nnodes} {ncores}")
    assert r.returncode == 0, r.stderr
    nnodes, ncores = r.stdout.split()
    return int(nnodes), int(ncores)


def job_stats(inst: TestInstance) -> dict[str, int]:
    """``flux jobs --stats-only``: ``2 running, 0 completed, 0 failed, 0 pending, ...``."""
    r = inst.flux("jobs", "--stats-only")
    assert r.returncode == 0, r.stderr
    return {part.split(None, 1)[1]: int(part.split()[0])
            for part in r.stdout.strip().split(", ")}


def me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


# -- the view of one instance ------------------------------------------------------------------

def test_the_summary_shows_resources_and_jobs_of_the_instance(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.A.f58)
    top.wait_text(tree.S.f58)
    lines = top.lines
    all_nodes, all_cores = resource_counts(tree.parent, "all")
    used_nodes, used_cores = resource_counts(tree.parent, "allocated")
    free_nodes, free_cores = resource_counts(tree.parent, "free")
    assert (all_nodes, used_cores) == (2, 2)  # two brokers; A and S hold a core each
    assert lines[1].startswith("    nodes [")
    assert lines[1][4:39].endswith(f"{used_nodes}/{all_nodes}]")
    assert lines[2][4:39].endswith(f"{used_cores}/{all_cores}]")
    assert lines[3][4:39].endswith("0/0]")
    assert lines[1][40:50] == f"{free_nodes:>5} free"
    assert lines[2][40:50] == f"{free_cores:>5} free"
    stats = job_stats(tree.parent)
    assert lines[1][60:] == f"{stats['pending']:>5} pending"
    assert lines[2][60:] == f"{stats['running']:>5} running" == "    2 running"
    # the instance owner sees inactive jobs split into complete and failed
    # (column 77 of that row is the heartbeat's heart, lit 0.5 s after each pulse)
    assert lines[3][60:76].rstrip() == f"{stats['completed']:>5} complete"
    assert lines[4][60:] == f"{stats['failed']:>5} failed"
    # a root instance: no title, no depth, no expiration; its size and version
    assert top.title == "" and lines[0].endswith("\u221e")
    assert lines[0][0] == "\u0192" and top.cell(0, 0).fg == YELLOW
    assert lines[5].startswith(" size: 2 ") and "depth" not in lines[5]
    version = tree.parent.flux("getattr", "version").stdout.strip()
    assert "uptime: " in lines[5] and lines[5].endswith(version)
    # the used-cores bar is yellow
    assert top.cell(2, 11).fg == YELLOW


def test_the_table_lists_running_jobs_and_highlights_instances(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.A.f58)
    top.wait_text(tree.S.f58)
    lines = top.lines
    assert lines[6].split() == ["JOBID", "USER", "ST", "NTASKS", "NNODES", "RUNTIME", "NAME"]
    assert top.cell(6, 0).reverse and top.cell(6, 79).reverse
    a, s = top.row_of(tree.A.f58), top.row_of(tree.S.f58)
    assert a > s > 6  # newest first
    fields = lines[a].split()
    assert fields[:5] == [tree.A.f58, me(), "R", "1", "1"] and fields[6] == "flux"
    assert lines[s].split()[:5] == [tree.S.f58, me(), "R", "1", "1"]
    assert lines[s].split()[6] == "sleep"
    assert lines[a].index(tree.A.f58) + len(tree.A.f58) == 12  # JOBID is 12 wide
    # the instance is blue and bold, the plain job is not
    x = lines[a].index(tree.A.f58)
    assert top.cell(a, x).fg == "blue" and top.cell(a, x).bold
    assert top.cell(s, x).fg == "default" and not top.cell(s, x).bold
    # nothing selected yet
    assert top.reversed_row() == -1


def test_j_k_and_the_arrows_move_the_cursor(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.A.f58)
    top.wait_text(tree.S.f58)
    s, a = top.row_of(tree.S.f58), top.row_of(tree.A.f58)
    top.press("j")  # none selected: the first row
    top.wait(lambda t: t.reversed_row() == s, KEY_WAIT, "j to select the first row")
    top.press("j")
    top.wait(lambda t: t.reversed_row() == a, KEY_WAIT, "j to move down")
    x = top.lines[a].index(tree.A.f58)
    assert top.cell(a, x).fg == "blue" and top.cell(a, x).reverse  # still an instance
    top.press("k")
    top.wait(lambda t: t.reversed_row() == s, KEY_WAIT, "k to move up")
    top.press(DOWN)
    top.wait(lambda t: t.reversed_row() == a, KEY_WAIT, "down to move down")
    top.press(UP)
    top.wait(lambda t: t.reversed_row() == s, KEY_WAIT, "up to move up")
    top.press("k")  # up from the first row: the last one
    top.wait(lambda t: t.reversed_row() == a, KEY_WAIT, "k to wrap to the last row")
    top.press("j")  # down from the last row: the first one
    top.wait(lambda t: t.reversed_row() == s, KEY_WAIT, "j to wrap to the first row")
    top.press("q")
    assert top.wait_exit() == 0


def test_enter_descends_into_child_instances_and_q_climbs_back(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.A.f58)
    top.select(tree.A.f58)
    top.press("\r")
    top.wait(lambda t: t.title == tree.A.f58, 20, "the child's view")
    top.wait_text(tree.B.f58)
    lines = top.lines
    # the child: depth 1, one node and the one core of its job, which its own child holds
    assert "depth: 1" in lines[5] and lines[5].startswith(" size: 1 ")
    assert lines[1][4:39].endswith("1/1]") and lines[2][4:39].endswith("1/1]")
    assert lines[2][60:] == "    1 running"
    # its time limit: ten minutes from its start
    from flux.util import parse_fsd

    assert lines[0].endswith("\u231a")
    assert 60 < parse_fsd(lines[0][70:].strip()[:-1]) <= 600
    b = top.row_of(tree.B.f58)
    x = top.lines[b].index(tree.B.f58)
    assert top.cell(b, x).fg == "blue" and top.lines[b].split()[6] == "flux"
    assert top.reversed_row() == -1  # a new level: nothing selected
    # down again, into the grandchild
    top.select(tree.B.f58)
    top.press("\r")
    top.wait(lambda t: t.title == f"{tree.A.f58}/{tree.B.f58}", 20, "the grandchild's view")
    top.wait_text("depth: 2")
    assert top.lines[2][4:39].endswith("0/1]")  # it runs no job
    # q: back to the child, its cursor where it was
    top.press("q")
    top.wait(lambda t: t.title == tree.A.f58, 10, "the child again")
    top.wait_text("depth: 1")
    top.wait(lambda t: t.reversed_row() == t.row_of(tree.B.f58), KEY_WAIT, "the child's cursor")
    # q: back to the parent
    top.press("q")
    top.wait(lambda t: t.title == "" and t.row_of(tree.S.f58) > 0, 10, "the parent again")
    assert "depth" not in top.lines[5]
    assert top.reversed_row() == top.row_of(tree.A.f58)
    # q at the top: flux top exits, the terminal back as it was
    top.press("q")
    assert top.wait_exit() == 0
    assert b"\x1b[?1049l" in top.raw  # left the alternate screen


def test_enter_on_a_job_that_is_not_an_instance_does_nothing(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.S.f58)
    top.select(tree.S.f58)
    top.press("\r")
    # keys are read in order: once d has acted, so has Enter, here at the top
    top.press("d")
    top.wait_text(" inactive", 10)
    assert top.title == "" and top.row_of(tree.A.f58) > 0
    assert top.reversed_row() == top.row_of(tree.S.f58)
    assert "depth" not in top.lines[5]
    top.press("q")  # still the first level: q exits
    assert top.wait_exit() == 0


def test_a_refresh_shows_a_newly_submitted_job(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(tree.S.f58)
    assert top.lines[2][60:] == "    2 running"
    failed = job_stats(tree.parent)["failed"]
    a = top.select(tree.A.f58)
    jobid = submit(tree.parent, "-n1", "sleep", "600")
    try:
        top.wait_text(jobid.f58, timeout=15)
        y = top.row_of(jobid.f58)
        assert y == 7  # the newest on top
        assert top.lines[y].split()[6] == "sleep"
        # the cursor stays on its job, which moved down a row
        assert top.row_of(tree.A.f58) == a + 1 == top.reversed_row()
        top.wait(lambda t: t.lines[2][60:] == "    3 running", 10, "3 running")
        top.wait(lambda t: t.lines[2][4:39].endswith("3/4]"), 10, "3 cores used")
    finally:
        tree.parent.flux("cancel", str(jobid))
        tree.parent.flux("job", "wait-event", "-t", "30s", str(jobid), "clean")
    # gone from the table, counted as failed (canceled)
    top.wait(lambda t: t.row_of(jobid.f58) < 0, 15, "the canceled job to leave the table")
    top.wait(lambda t: t.lines[4][60:] == f"{failed + 1:>5} failed", 10, "one more failed")


def test_d_toggles_complete_and_failed_against_inactive(tree, top_factory):
    top = top_factory(tree.parent)
    top.wait_text(" complete")
    top.press("d")
    top.wait_text(" inactive", KEY_WAIT)
    assert "complete" not in top.text and "failed" not in top.text
    top.press("d")
    top.wait_text(" complete", KEY_WAIT)


def test_color_never_keeps_instances_bold_without_colour(tree, top_factory):
    top = top_factory(tree.parent, "--color=never")
    top.wait_text(tree.A.f58)
    a = top.row_of(tree.A.f58)
    x = top.lines[a].index(tree.A.f58)
    assert top.cell(a, x).bold and top.cell(a, x).fg == "default"
    assert top.cell(0, 0).fg == "default"


def test_no_color_in_the_environment_means_no_colour_but_a_screen(tree, top_factory):
    top = top_factory(tree.parent, env={"NO_COLOR": "1"})
    top.wait_text(tree.A.f58)
    a = top.row_of(tree.A.f58)
    assert top.cell(a, top.lines[a].index(tree.A.f58)).fg == "default"


# -- targets -------------------------------------------------------------------------------------

def test_a_job_id_target_shows_that_instance_and_q_exits(tree, top_factory):
    top = top_factory(tree.parent, str(tree.A))
    top.wait(lambda t: t.title == tree.A.f58, 20, "the child's view")
    top.wait_text("depth: 1")
    top.wait_text(tree.B.f58)
    top.press("q")  # the first level: exit
    assert top.wait_exit() == 0


def test_a_job_id_path_target_reaches_a_grandchild(tree, top_factory):
    top = top_factory(tree.parent, f"{tree.A.f58}/{tree.B.f58}")
    top.wait(lambda t: t.title == f"{tree.A.f58}/{tree.B.f58}", 20, "the grandchild")
    top.wait_text("depth: 2")
    top.press("q")
    assert top.wait_exit() == 0


def test_a_uri_target_takes_its_title_from_the_instances_jobid(tree, top_factory):
    top = top_factory(tree.parent, tree.A_uri)
    top.wait(lambda t: t.title == tree.A.f58, 20, "the child by its URI")
    top.press("q")
    assert top.wait_exit() == 0


def test_a_child_that_ends_while_shown_gives_way_to_its_parent(tree, top_factory, tmp_path):
    done = tmp_path / "done"
    jobid = submit(tree.parent, "-n1", "flux", "start", "sh", "-c",
                   f"while ! test -e {done}; do sleep 0.1; done")
    try:
        job_uri(tree.parent, jobid)
        top = top_factory(tree.parent)
        top.wait_text(jobid.f58)
        top.select(jobid.f58)
        top.press("\r")
        top.wait(lambda t: t.title == jobid.f58, 20, "the child's view")
        done.write_text("x")
        top.wait(lambda t: t.title == "" and t.row_of(tree.A.f58) > 0, 30,
                 "the parent's view")
        assert not top.eof
        top.press("q")
        assert top.wait_exit() == 0
    finally:
        done.write_text("x")
        tree.parent.flux("job", "wait-event", "-t", "30s", str(jobid), "clean")


# -- refusals ------------------------------------------------------------------------------------

def test_an_unknown_job_id_is_refused(tree, top_factory):
    unknown = JobID(int(tree.S) + 12345)
    top = top_factory(tree.parent, unknown.f58)
    assert top.wait_exit() == 1
    assert top.output == (f"flux-top: failed to resolve target {unknown.f58} to a Flux URI: "
                          f"jobid {unknown.f58} not found\n")


def test_a_job_that_is_not_an_instance_is_refused(tree, top_factory):
    top = top_factory(tree.parent, str(tree.S))
    assert top.wait_exit() == 1
    assert top.output == (f"flux-top: failed to resolve target {tree.S} to a Flux URI: "
                          f"URI not found for job {tree.S}\n")


def test_a_job_id_path_with_a_missing_level_is_refused(tree, top_factory):
    missing = JobID(int(tree.B) + 999)
    top = top_factory(tree.parent, f"{tree.A.f58}/{missing.f58}")
    assert top.wait_exit() == 1
    assert top.output.startswith("flux-top: failed to resolve target")
    assert top.output.endswith(f"jobid {missing.f58} not found\n")


def test_flux_top_needs_a_terminal(tree):
    import subprocess

    r = subprocess.run(flux_command() + ["top"], env=tree.parent.env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 1
    assert r.stderr == "flux-top: stdin is not a terminal\n"


def test_ctrl_z_gives_the_terminal_back_and_fg_takes_it_again(tree, top_factory):
    top = top_factory(tree.parent, shell=True)
    top.wait_text(tree.S.f58)
    assert not top.child.getecho()              # cbreak, no echo, while it runs
    top.press("\x1a")                           # ctrl-Z: the shell's prompt comes back
    top.wait(lambda t: "Stopped" in t.output, 15, "the shell to report the stop")
    assert "\x1b[?1049l" in top.output          # the full screen was left
    shown = len(top.raw)
    top.child.sendline("fg")
    top.wait(lambda t: len(t.raw) > shown + 200 and tree.S.f58 in t.text, 15, "a redraw")
    assert not top.child.getecho()              # cbreak again: a key needs no Enter
    top.press("q")
    top.wait(lambda t: t.output.rstrip().endswith("$"), 15, "top to exit to the shell")
    top.child.sendline("exit")
    assert top.wait_exit() == 0
