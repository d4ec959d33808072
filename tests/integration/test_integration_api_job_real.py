"""flux.job with real jobs (real processes): the seed Python guide's scripts run unchanged,
FluxExecutor as a concurrent.futures Executor, JobWatcher (``flux submit --watch``),
timeleft from inside a job, and flux.subprocess over the broker's rexec service."""
from __future__ import annotations

import concurrent.futures
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import flux
import flux.job
import flux.subprocess
from flux.job import FluxExecutor, JobException, JobID, JobspecV1
from flux.job.watcher import JobWatcher, watch_jobs
from helpers.jobs import start_configured

pytestmark = pytest.mark.slow

CONFIG = f"""
[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "{socket.gethostname()}"
cores = "0-3"
"""
T = 60.0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_configured(tmp_path_factory, CONFIG)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


def spec(*command: str, ntasks: int = 1) -> JobspecV1:
    js = JobspecV1.from_command(list(command), num_tasks=ntasks)
    js.cwd = os.getcwd()
    js.environment = dict(os.environ)
    return js


def run_script(inst, text: str, tmp_path) -> subprocess.CompletedProcess[str]:
    """Run a user's script as its own process against INST (FLUX_URI), from TMP_PATH."""
    env = dict(os.environ, FLUX_URI=inst.uri, PYTHONPATH=REPO)
    env.pop("FLUX_JOB_ID", None)
    path = tmp_path / "script.py"
    path.write_text(text)
    return subprocess.run([sys.executable, str(path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=T)


# -- seed 001, the Python guide: its scripts, unchanged ------------------------------------

SEED_GET_JOB = """\
import flux
import flux.job

# It's encouraged to create a handle to use across commands
handle = flux.Flux()

jobspec = flux.job.JobspecV1.from_command(["sleep", "60"])
jobid = flux.job.submit(handle, jobspec)
job_meta = flux.job.get_job(handle, jobid)
"""

SEED_EXECUTOR = """\
import concurrent.futures
import flux.job

jobspec = flux.job.JobspecV1.from_command(["/bin/true"])
with flux.job.FluxExecutor() as executor:
\tfuts = [executor.submit(jobspec) for _ in range(5)]
\tfor f in concurrent.futures.as_completed(futs):
\t\tprint(f.result())
"""

SEED_ASYNC = """\
import flux
import flux.job

def submit_cb(fut, flux_handle):
\t# when this callback fires, the jobid will be ready
\tjobid = fut.get_id()
\t# Create a future representing the result of the job
\tresult_fut = flux.job.result_async(flux_handle, jobid)
\t# attach a callback to fire when the job finishes
\tresult_fut.then(result_cb)

def result_cb(fut):
\tjob = fut.get_info()
\tresult = job.result.lower()
\tprint(f"{job.id}: {result} with returncode {job.returncode}")

flux_handle = flux.Flux()
jobspec = flux.job.JobspecV1.from_command(["/bin/true"])
for _ in range(5):
\t# submit 5 futures and attach callbacks to each one
\tsubmit_future = flux.job.submit_async(flux_handle, jobspec)
\tsubmit_future.then(submit_cb, flux_handle)
# enter the flux event loop (the 'reactor') to trigger the callbacks
# once the futures complete
flux_handle.reactor_run()
"""


def test_seed_get_job_script(inst, h, tmp_path):
    r = run_script(inst, SEED_GET_JOB + "print(job_meta['id'], job_meta['state'], "
                                        "job_meta['name'], job_meta['ntasks'])\n", tmp_path)
    assert r.returncode == 0, r.stderr
    jobid, state, name, ntasks = r.stdout.split()
    assert state in ("DEPEND", "PRIORITY", "SCHED", "RUN") and (name, ntasks) == ("sleep", "1")
    flux.job.cancel(h, int(jobid))
    assert flux.job.result(h, int(jobid)).result == "CANCELED"


def test_seed_executor_script(inst, tmp_path):
    r = run_script(inst, SEED_EXECUTOR, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "0\n" * 5


def test_seed_event_loop_script(inst, tmp_path):
    r = run_script(inst, SEED_ASYNC, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5
    for line in lines:
        jobid, rest = line.split(": ", 1)
        assert JobID(jobid) > 0 and rest == "completed with returncode 0"


# -- FluxExecutor with real jobs ------------------------------------------------------------

def test_executor_results_and_exceptions(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        assert isinstance(ex, concurrent.futures.Executor)
        ok = ex.submit(spec("true"))
        bad = ex.submit(spec("sh", "-c", "exit 3"))
        invalid = ex.submit('{"version": 1}')
        assert ok.result(timeout=T) == 0 and bad.result(timeout=T) == 3
        exc = invalid.exception(timeout=T)
        assert isinstance(exc, OSError) and exc.errno
        with pytest.raises(RuntimeError, match="could not be submitted"):
            invalid.jobid(timeout=T)


def test_executor_event_callbacks_cancel_and_job_exception(inst, h):
    started = threading.Event()
    events: list[str] = []
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        fut = ex.submit(spec("sleep", "60"))
        for name in ("submit", "alloc", "start", "finish", "exception", "clean"):
            fut.add_event_callback(name, lambda f, e: events.append(e.name))
        fut.add_event_callback("start", lambda f, e: started.set())
        assert started.wait(T)
        assert not fut.cancel()               # running: concurrent.futures says too late
        flux.job.cancel(h, fut.jobid(timeout=T), "enough")
        with pytest.raises(JobException) as info:
            fut.result(timeout=T)
        assert info.value.type == "cancel" and info.value.note == "enough"
    # events go on after the result; the executor shuts down once the log ends
    assert events[:3] == ["submit", "alloc", "start"] and events[-1] == "clean"
    assert "exception" in events and "finish" in events


def test_executor_attach_to_a_real_job(inst, h):
    jobid = flux.job.submit(h, spec("sh", "-c", "sleep 0.3; exit 4"))
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        fut = ex.attach(jobid)
        assert fut.jobid() == jobid
        assert fut.result(timeout=T) == 4
        unknown = ex.attach(JobID("ƒ1111111"))
        assert isinstance(unknown.exception(timeout=T), ValueError)


def test_executor_shutdown_cancel_futures_with_real_jobs(inst):
    ex = FluxExecutor(handle_args=(inst.uri,))
    gate = threading.Event()
    entered = threading.Event()

    def hold(fut):
        entered.set()
        gate.wait(T)

    first = ex.submit(spec("true")).add_jobid_callback(hold)
    assert entered.wait(T)
    queued = [ex.submit(spec("true")) for _ in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(spec("true"))
    gate.set()
    ex.shutdown(wait=True)
    assert first.result(timeout=0) == 0
    done, not_done = concurrent.futures.wait([first, *queued], timeout=T)
    assert not not_done


# -- JobWatcher / flux submit --watch ---------------------------------------------------------

def test_watch_jobs_copies_output_and_returns_the_largest_exit_code(h):
    a = flux.job.submit(h, spec("sh", "-c", "echo hello; echo oops >&2; exit 3"))
    b = flux.job.submit(h, spec("echo", "two"))
    held = flux.job.submit(h, spec("true"), urgency=0)
    flux.job.cancel(h, held)
    out, err = io.StringIO(), io.StringIO()
    assert watch_jobs(h, [a, b, held], stdout=out, stderr=err) == 3
    assert sorted(out.getvalue().splitlines()) == ["hello", "two"]
    lines = err.getvalue().splitlines()
    assert "oops" in lines
    assert "job.exception: type=cancel severity=0" in lines


def test_watch_jobs_wait_only_and_failed_before_start(h):
    held = flux.job.submit(h, spec("true"), urgency=0)
    flux.job.cancel(h, held)
    out, err = io.StringIO(), io.StringIO()
    # --wait: no output copied; a job that never ran is exit code 1
    assert watch_jobs(h, [held], watch=False, stdout=out, stderr=err) == 1
    assert out.getvalue() == ""
    killed = flux.job.submit(h, spec("sh", "-c", "echo x; kill -9 $$"))
    assert watch_jobs(h, [killed], watch=False, stdout=out, stderr=err) == 137


def test_job_watcher_labels_logs_and_progress(h):
    jobid = flux.job.submit(h, spec("sh", "-c", "echo a; echo b", ntasks=2))
    out, err = io.StringIO(), io.StringIO()
    watcher = JobWatcher(h, labelio=True, log_events=True, log_status=True, stdout=out,
                         stderr=err, progress=True).start()
    watcher.progress.stream = err
    watcher.add_jobid(jobid)
    h.reactor_run()
    watcher.stop()
    assert watcher.exitcode == 0
    assert sorted(out.getvalue().splitlines()) == sorted(
        f"{jobid}: {r}: {x}" for r in (0, 1) for x in ("a", "b"))
    text = err.getvalue()
    assert f"{jobid.f58}: " in text and "s: submit " in text and "complete: status=0" in text
    assert "exec.shell.init" in text
    assert text.rstrip("\n").endswith("0:00:00") or "100.0%" in text.splitlines()[-1]
    assert "PD:0 R:0 CD:1 F:0 |" in text.splitlines()[-1]
    status = watcher.jobs[jobid]
    assert status.status == "complete" and status.has_event("clean") and not status.active


def test_job_watcher_wait_for_an_exec_event(h):
    jobid = flux.job.submit(h, spec("sleep", "60"))
    watcher = JobWatcher(h, watch=False, stdout=io.StringIO(), stderr=io.StringIO())
    watcher.add_jobid(jobid, wait="exec.shell.start")
    t0 = time.monotonic()
    h.reactor_run()
    assert time.monotonic() - t0 < 30
    assert watcher.jobs[jobid].has_event("start")
    flux.job.cancel(h, jobid)


# -- timeleft from inside a job --------------------------------------------------------------

def test_timeleft_inside_a_real_job(h):
    code = ("import flux.job; t = flux.job.timeleft(); "
            "print('inf' if t == float('inf') else int(t))")
    limited = spec(sys.executable, "-c", code)
    limited.environment["PYTHONPATH"] = REPO
    limited.duration = 300
    unlimited = spec(sys.executable, "-c", code)
    unlimited.environment["PYTHONPATH"] = REPO
    outs = []
    for js in (limited, unlimited):
        jobid = flux.job.submit(h, js)
        out = flux.job.output.job_output(h, jobid)
        assert flux.job.result(h, jobid).returncode == 0, out.stderr
        outs.append(out.stdout.strip())
    assert 250 < int(outs[0]) <= 300 and outs[1] == "inf"


# -- flux.subprocess over rexec ------------------------------------------------------------

@pytest.fixture(scope="module")
def inst2(tmp_path_factory):
    from broker.testing import TestInstance

    instance = TestInstance(size=2).start()
    yield instance
    instance.stop()


def test_subprocess_rexec_bg_wait_kill_list(inst2, tmp_path):
    h2 = flux.Flux(inst2.uri)
    marker = tmp_path / "ran"
    bg = flux.subprocess.rexec_bg(h2, ["sh", "-c", f"pwd > {marker}; exit 7"], waitable=True,
                                  nodeid=1, cwd=str(tmp_path), env={"PATH": os.environ["PATH"]})
    pid = bg.get_pid()
    assert pid > 0 and bg.get_rank() == 1
    status = flux.subprocess.wait(h2, pid=pid, nodeid=1).get_status()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
    assert marker.read_text() == f"{tmp_path}\n"
    sleeper = flux.subprocess.rexec_bg(h2, ["sleep", "60"], label="sleeper")
    assert sleeper.get_rank() == h2.get_rank() == 0
    procs = flux.subprocess.list(h2).get_processes()
    mine = [p for p in procs if p.label == "sleeper"]
    assert len(mine) == 1 and mine[0].pid == sleeper.get_pid() and mine[0].rank == 0
    assert mine[0].cmd == "sleep 60" and mine[0].state == "running"
    waiter = flux.subprocess.rexec_bg(h2, ["sleep", "60"], label="w", waitable=True)
    flux.subprocess.kill(h2, signum=signal.SIGKILL, pid=waiter.get_pid()).get()
    status = flux.subprocess.wait(h2, label="w").get_status()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert flux.subprocess.kill(h2, label="sleeper").get() == {}
    deadline = time.monotonic() + T
    while any(p.label == "sleeper" for p in flux.subprocess.list(h2).get_processes()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    h2.close()


def test_subprocess_errors(inst2):
    h2 = flux.Flux(inst2.uri)
    with pytest.raises(FileNotFoundError) as info:
        flux.subprocess.rexec_bg(h2, ["nosuchcmd"]).get_pid()
    assert info.value.strerror == "nosuchcmd: No such file or directory"
    with pytest.raises(FileNotFoundError):
        flux.subprocess.kill(h2, pid=1).get()
    with pytest.raises(FileNotFoundError):
        flux.subprocess.wait(h2, label="nobody").get()
    running = flux.subprocess.rexec_bg(h2, ["sleep", "60"], label="notwaitable")
    with pytest.raises(OSError) as einval:
        flux.subprocess.wait(h2, pid=running.get_pid()).get()
    assert einval.value.errno == 22
    with pytest.raises(FileExistsError):
        flux.subprocess.rexec_bg(h2, ["true"], label="notwaitable").get_pid()
    flux.subprocess.kill(h2, label="notwaitable").get()
    with pytest.raises(OSError, match="flux-security is not available"):
        flux.subprocess.list(h2, sign=True)
    h2.close()


def test_subprocess_from_a_script_as_flux_users_write_it(inst2, tmp_path):
    script = textwrap.dedent("""\
        import os
        import flux
        from flux import subprocess as fs

        h = flux.Flux()
        rpc = fs.rexec_bg(h, ["sh", "-c", "exit 5"], waitable=True, nodeid=1)
        print(rpc.get_rank(), os.WEXITSTATUS(fs.wait(h, pid=rpc.get_pid(), nodeid=1).get_status()))
        """)
    r = run_script(inst2, script, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1 5\n"
