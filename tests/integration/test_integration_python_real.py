"""flux.job.FluxExecutor and flux.job.output with real jobs (processes, real output),
as the seed's Python guide uses them."""
from __future__ import annotations

import concurrent.futures
import os
import socket
import sys
import threading

import pytest

import flux
import flux.job
from flux.job import FluxExecutor, JobException, JobspecV1
from flux.job.output import job_output, output_watch, output_watch_lines
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


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_configured(tmp_path_factory, CONFIG)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


def spec(*command: str, ntasks: int = 1) -> JobspecV1:
    js = JobspecV1.from_command(list(command), num_tasks=ntasks)
    js.cwd = os.getcwd()
    js.environment = dict(os.environ)
    js.setattr_shell_option("cpu-affinity", "off")
    return js


def test_executor_result_is_the_exit_code(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        ok = ex.submit(spec("true"))
        bad = ex.submit(spec("sh", "-c", "exit 3"))
        killed = ex.submit(spec("sh", "-c", "kill -9 $$"))
        assert ok.result(timeout=T) == 0
        assert bad.result(timeout=T) == 3
        # the shell reports a task killed by signal 9 as 128+9, as Flux's does
        assert killed.result(timeout=T) == 137


def test_executor_events_and_a_cancel_give_job_exception(inst):
    started = threading.Event()
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        fut = ex.submit(spec("sleep", "60"))
        fut.add_event_callback("start", lambda f, e: started.set())
        assert started.wait(T)
        flux.job.cancel(flux.Flux(inst.uri), fut.jobid(timeout=T))
        with pytest.raises(JobException) as info:
            fut.result(timeout=T)
        assert info.value.type == "cancel"


def test_executor_many_jobs_at_once(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        futures = [ex.submit(spec("sh", "-c", f"exit {i % 4}")) for i in range(12)]
        done, _ = concurrent.futures.wait(futures, timeout=T)
        assert len(done) == 12
        assert sorted(f.result() for f in futures) == sorted(i % 4 for i in range(12))


def test_job_output_of_a_real_job(h):
    jobid = flux.job.submit(h, spec("sh", "-c", "echo out $FLUX_TASK_RANK; echo err >&2",
                                    ntasks=2))
    out = job_output(h, jobid)
    assert sorted(out.stdout.splitlines()) == ["out 0", "out 1"]
    assert out.stderr == "err\nerr\n"
    one = job_output(h, jobid, tasks="1", labelio=True)
    assert one.stdout == "1: out 1\n"


def test_output_watch_follows_a_running_job(h):
    jobid = flux.job.submit(h, spec("sh", "-c", "for i in 1 2 3; do echo line $i; "
                                                "sleep 0.2; done"))
    lines = [line for stream, line in output_watch_lines(h, jobid) if stream == "stdout"]
    assert lines == ["line 1", "line 2", "line 3"]


def test_binary_output_round_trips(h):
    data = bytes(range(256)) * 4
    jobid = flux.job.submit(h, spec(sys.executable, "-c",
                                    "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4)"))
    # text that is not UTF-8 comes back with surrogate escapes: os.fsencode restores it
    watched = "".join(d for stream, d in output_watch(h, jobid) if stream == "stdout")
    assert os.fsencode(watched) == data
    assert os.fsencode(job_output(h, jobid).stdout) == data
