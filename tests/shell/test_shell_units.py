"""The job shell's pure parts: task layout, job info, output batching, input routing,
templates, the plugin stack, exec settings."""
from __future__ import annotations

import base64
import os
import signal

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from flux.job.summary import summarize
from flux.job.taskmap import cores_of_tasks, layout, r_ranks, tasks_per_rank
from jobmgr.exec.config import ExecConfig, job_settings, parse_signal_option, signal_number
from shell.info import job_info
from shell.plugins.input import InputRouter
from shell.plugins.output import OutputBuffer, data_context, parse_size
from shell.plugstack import PlugStack, Plugin, PluginError


def spec(ntasks=1, nodes=None, cores=1, total=None, options=None, command=("hostname",)):
    slot = {"type": "slot", "count": ntasks, "label": "task",
            "with": [{"type": "core", "count": cores}]}
    count = {"per_slot": 1} if total is None else {"total": total}
    if nodes:
        slot["count"] = -(-ntasks // nodes)
        resources = [{"type": "node", "count": nodes, "with": [slot]}]
    else:
        resources = [slot]
    system = {"duration": 0, "cwd": "/tmp", "environment": {"A": "1"}}
    if options:
        system["shell"] = {"options": options}
    return {"version": 1, "resources": resources,
            "tasks": [{"command": list(command), "slot": "task", "count": count}],
            "attributes": {"system": system}}


def R(ranks, cores="0-3", nodelist=None, expiration=0.0):
    return {"version": 1, "execution": {"R_lite": [{"rank": ranks, "children": {"core": cores}}],
                                        "nodelist": nodelist or [],
                                        "starttime": 1.0, "expiration": expiration}}


# -- layout ----------------------------------------------------------------------------

def test_r_ranks_merges_entries_in_rank_order():
    r = {"version": 1, "execution": {"R_lite": [
        {"rank": "2", "children": {"core": "0-1", "gpu": "0"}},
        {"rank": "0-1", "children": {"core": "3"}}]}}
    assert r_ranks(r) == [(0, "3", ""), (1, "3", ""), (2, "0-1", "0")]
    with pytest.raises(ValueError, match="R_lite"):
        r_ranks({"execution": {}})


@pytest.mark.parametrize("js, ncores, expected", [
    (spec(4), [4], [4]),                        # slots fill one rank
    (spec(4), [2, 2], [2, 2]),                  # 2 cores per rank
    (spec(2, cores=2), [2, 2], [1, 1]),         # -c2: one slot per rank
    (spec(3, nodes=2, total=3), [2, 2], [2, 1]),  # -N2 -n3: block
    (spec(4, nodes=2), [8, 8], [2, 2]),         # exclusive nodes: slots from jobspec
    (spec(1, total=5), [4], [5]),               # more tasks than slots
    (spec(2), [8], [2]),                        # R with extra cores: capped
])
def test_tasks_per_rank(js, ncores, expected):
    assert tasks_per_rank(summarize(js), ncores) == expected


def test_per_resource_option():
    js = spec(2)
    assert tasks_per_rank(summarize(js), [3, 5], {"type": "core", "count": 2}) == [6, 10]
    assert tasks_per_rank(summarize(js), [3, 5], {"type": "node", "count": 3}) == [3, 3]
    with pytest.raises(ValueError, match="per-resource"):
        tasks_per_rank(summarize(js), [1], {"type": "socket", "count": 1})


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(1, 16), min_size=1, max_size=6))
def test_total_tasks_are_all_placed(total, ncores):
    js = spec(1, total=total)
    js["resources"][0]["count"] = sum(ncores)
    counts = tasks_per_rank(summarize(js), ncores)
    assert sum(counts) == total
    base = total // sum(ncores)
    # every slot (one core each here) gets base or base + 1 tasks
    assert all(n * base <= c <= n * (base + 1) for n, c in zip(ncores, counts))


def test_layout_and_job_info():
    js = spec(4, options={"cpu-affinity": "per-task"})
    r = R("3-4", "0-1", ["n[3-4]"])
    assert layout(js, r) == ([3, 4], [2, 2])
    info = job_info(7, js, r, 4)
    assert info.shell_rank == 1 and info.size == 2 and info.ntasks == 4
    me = info.me
    assert (me.broker_rank, me.hostname, me.cores, list(me.task_ranks)) == (4, "n4", "0-1", [2, 3])
    assert info.command == ["hostname"] and info.cwd == "/tmp"
    assert info.environment == {"A": "1"} and info.options == {"cpu-affinity": "per-task"}
    with pytest.raises(ValueError, match="broker rank 9"):
        job_info(7, js, r, 9)


def test_cores_of_tasks():
    assert cores_of_tasks("0-5", 2) == [[0, 1, 2], [3, 4, 5]]
    assert cores_of_tasks("0-4", 2) == [[0, 1, 2], [3, 4]]
    assert cores_of_tasks("0-1", 3) == [[0], [1], [0]]
    assert cores_of_tasks("", 2) == [[], []]


# -- output ------------------------------------------------------------------------------

def test_data_context_encodings():
    assert data_context("stdout", "0", b"hi\n") == {"stream": "stdout", "rank": "0",
                                                   "data": "hi\n"}
    ctx = data_context("stderr", "3", b"\xff\x00", eof=True)
    assert ctx["encoding"] == "base64" and base64.b64decode(ctx["data"]) == b"\xff\x00"
    assert ctx["eof"] is True
    assert data_context("stdout", "1", b"", eof=True) == {"stream": "stdout", "rank": "1",
                                                         "eof": True}


def test_output_buffer_coalesces_and_keeps_lines_whole():
    buf = OutputBuffer()
    buf.add("stdout", 0, b"a\nb")
    buf.add("stdout", 0, b"c\nd")
    buf.add("stderr", 1, b"err\n")
    first = buf.take()
    assert [(e[2]["stream"], e[2].get("data")) for e in first] == [("stdout", "a\nbc\n"),
                                                                   ("stderr", "err\n")]
    # the partial line is held back once, then sent
    assert [e[2]["data"] for e in buf.take()] == ["d"]
    buf.add("stdout", 0, b"x")
    buf.eof("stdout", 0)
    (last,) = buf.take()
    assert last[2] == {"stream": "stdout", "rank": "0", "data": "x", "eof": True}
    assert not buf


def test_output_buffer_unbuffered_and_final():
    buf = OutputBuffer({"stdout": False, "stderr": True})
    buf.add("stdout", 0, b"prompt: ")
    buf.add("stderr", 0, b"partial")
    events = buf.take()
    assert [e[2].get("data") for e in events] == ["prompt: "]
    assert [e[2]["data"] for e in buf.take(final=True)] == ["partial"]


def test_output_limit_truncates_with_one_log_entry():
    buf = OutputBuffer(limit=10)
    buf.add("stdout", 0, b"0123456789ABC\n")
    buf.add("stdout", 0, b"more\n")
    events = buf.take(final=True)
    logs = [e for e in events if e[1] == "log"]
    data = "".join(e[2].get("data", "") for e in events if e[1] == "data")
    assert data == "0123456789" and len(logs) == 1
    assert "limit of 10 bytes" in logs[0][2]["message"] and logs[0][2]["level"] == 4


def test_big_output_is_split_into_bounded_events():
    buf = OutputBuffer()
    buf.add("stdout", 0, b"x" * (3 << 19) + b"\n")
    buf.eof("stdout", 0)
    events = buf.take()
    assert len(events) == 4
    assert all(len(e[2].get("data", "")) <= 1 << 19 for e in events)
    assert [e[2].get("eof") for e in events] == [None, None, None, True]


@pytest.mark.parametrize("text, value", [(1024, 1024), ("10M", 10 << 20), ("1G", 1 << 30),
                                         ("512k", 512 << 10), ("1.5K", 1536)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["-1", "ten", True, -5])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


# -- input ---------------------------------------------------------------------------------

def _input_line(ctx):
    return orjson.dumps({"timestamp": 1.0, "name": "data", "context": ctx}) + b"\n"


class _Reactor:
    def add_fd(self, *a):
        raise AssertionError("no blocking writes expected")

    def remove_fd(self, *a):
        pass


def test_input_router_sends_data_to_the_ranks_named_and_closes_at_eof():
    router = InputRouter(_Reactor())
    pipes = {}
    for rank in (4, 5):
        r, w = os.pipe()
        pipes[rank] = r
        router.add(rank, w)
    log = (_input_line({"stream": "stdin", "rank": "all", "data": "hi\n"})
           + _input_line({"stream": "stdin", "rank": "5", "data": base64.b64encode(b"\xff").decode(),
                          "encoding": "base64"})
           + _input_line({"stream": "stdin", "rank": "all", "eof": True}))
    router.feed_log(log[:7])          # lines may arrive cut anywhere
    router.feed_log(log[7:])
    assert os.read(pipes[4], 100) == b"hi\n"
    assert os.read(pipes[4], 100) == b""        # closed at eof
    assert os.read(pipes[5], 100) == b"hi\n\xff"
    assert os.read(pipes[5], 100) == b""


# -- templates -------------------------------------------------------------------------------

def test_template_expansion():
    from types import SimpleNamespace

    from flux.job.JobID import JobID
    from shell.template import expand

    info = job_info(1234, spec(2), R("0", "0-1", ["h0"]), 0)
    shell = SimpleNamespace(jobid=1234, info=info, size=1, env={"FLUX_JOB_TMPDIR": "/t"})
    out = expand("o-{{id}}-{{id.dec}}-{{ jobid.hex }}-{{name}}-{{tmpdir}}-{{size}}-{{nope}}",
                 shell)
    assert out == f"o-{JobID(1234).f58}-1234-{JobID(1234).hex}-hostname-/t-2-{{{{nope}}}}"


# -- plugin stack ------------------------------------------------------------------------------

def test_plugstack_order_globs_and_last_name_wins(tmp_path):
    calls = []
    stack = PlugStack()
    a = Plugin("a")
    a.add_handler("task.*", lambda t, s, k: calls.append(("a", t)))
    b = Plugin("b")
    b.add_handler("task.init", lambda t, s, k: calls.append(("b", t)))
    stack.add(a)
    stack.add(b)
    assert stack.call("task.init") == 2 and calls == [("a", "task.init"), ("b", "task.init")]
    a2 = Plugin("a")
    stack.add(a2)                         # replaces a, goes last
    assert stack.names() == ["b", "a"]
    boom = Plugin("boom")
    boom.add_handler("shell.init", lambda t, s, k: 1 / 0)
    stack.add(boom)
    with pytest.raises(PluginError, match="plugin boom: shell.init"):
        stack.call("shell.init")
    path = tmp_path / "site.py"
    path.write_text("def flux_plugin_init(p):\n"
                    "    p.name = 'site'\n"
                    "    p.add_handler('shell.exit', lambda t, s, k: s.append(p.conf['x']))\n")
    stack.searchpath = [str(tmp_path)]
    (loaded,) = stack.load("*.py", {"x": 7})
    got = []
    stack.call("shell.exit", got)
    assert got == [7] and loaded.path == str(path)
    with pytest.raises(FileNotFoundError):
        stack.load("missing.py")



def test_plugstack_handler_added_after_load_is_called():
    # routes are cached per topic: a handler a loaded plugin adds later (from
    # another handler, as an initrc may) must still be found
    calls = []
    stack = PlugStack()
    late = Plugin("late")

    def on_init(_t, _s, _k):
        late.add_handler("task.init", lambda t, s, k: calls.append("late"))

    late.add_handler("shell.init", on_init)
    stack.add(late)
    assert stack.call("task.init") == 0         # cached: nothing yet
    stack.call("shell.init")
    assert stack.call("task.init") == 1 and calls == ["late"]
    stack.remove("late")
    late.add_handler("task.init", lambda t, s, k: calls.append("gone"))
    assert stack.call("task.init") == 0 and calls == ["late"]

def test_plugstack_shared_builtins_and_their_routes_stay_per_process():
    # a server's shells share the builtins and one route cache; a shell that loads a
    # plugin of its own gets its own routes and leaves the others' alone
    calls = []
    builtin = Plugin("builtin")
    builtin.add_handler("shell.init", lambda t, s, k: calls.append(("builtin", s)))
    shared, routes = [builtin], {}
    one, two = PlugStack(), PlugStack()
    one.add_shared(shared, routes)
    two.add_shared(shared, routes)
    assert one.call("shell.init", "one") == 1 and two.call("shell.init", "two") == 1
    assert list(routes) == ["shell.init"] and builtin.stacks == []
    site = Plugin("site")
    site.add_handler("shell.init", lambda t, s, k: calls.append(("site", s)))
    two.add(site)
    assert two.call("shell.init", "two") == 2 and one.call("shell.init", "one") == 1
    assert routes["shell.init"] == [("builtin", routes["shell.init"][0][1])]
    # a site plugin of a builtin's name, loaded first, is replaced by the builtin
    three = PlugStack()
    three.add(Plugin("builtin"))
    three.add_shared(shared, routes)
    assert three.names() == ["builtin"] and three.call("shell.init", "three") == 1
    assert calls == [("builtin", "one"), ("builtin", "two"), ("builtin", "two"),
                     ("site", "two"), ("builtin", "one"), ("builtin", "three")]


def test_builtin_plugins_keep_each_jobs_state_apart():
    from shell.plugins import affinity

    class Info:
        def __init__(self, cores, ntasks):
            self.me = type("Me", (), {"cores": cores, "ntasks": ntasks})()

    class Sh:
        def __init__(self, cores, mode):
            self.aux, self.info, self.mode = {}, Info(cores, 2), mode

        def getopt(self, _name, default=None):
            return self.mode

        def log(self, *_a):
            pass

    class Task:
        def __init__(self, local_id):
            self.local_id, self.cpus = local_id, None

    p = affinity.plugin()
    (_, init), (_, task_init) = p.handlers
    cpus = sorted(os.sched_getaffinity(0))
    a, b = Sh(str(cpus[0]), "on"), Sh(str(cpus[-1]), "off")
    init("shell.init", a, None)
    init("shell.init", b, None)         # a second job of the same process, after the first
    ta, tb = Task(0), Task(0)
    task_init("task.init", a, ta)
    task_init("task.init", b, tb)
    assert ta.cpus == [cpus[0]] and tb.cpus is None


# -- exec settings -------------------------------------------------------------------------------

def test_exec_settings_from_config_and_options():
    conf = ExecConfig.from_table({"kill-timeout": "2s", "output-limit": "5M"})
    assert conf.kill_timeout == 2.0 and conf.output_limit == "5M"
    with pytest.raises(ValueError, match="kill-timeout"):
        ExecConfig.from_table({"kill-timeout": "soon"})
    # flux-config-exec(5)'s keys are accepted (the Administrator's Guide sets imp)
    # and their values checked; an unknown key is named
    ExecConfig.from_table({"imp": "/usr/libexec/flux/flux-imp", "term-signal": "SIGINT",
                           "max-kill-count": 3, "barrier-timeout": "30s"})
    for bad, text in (({"imp": 5}, "imp: must be a string"),
                      ({"kill-signal": "SIGNOPE"}, "kill-signal: invalid signal"),
                      ({"max-kill-count": -1}, "max-kill-count: must be an integer"),
                      ({"bogus": 1}, "bogus: unknown key")):
        with pytest.raises(ValueError, match=text):
            ExecConfig.from_table(bad)
    s = job_settings(spec(options={"exit-timeout": "none", "exit-on-error": True,
                                   "signal": "SIGINT@2m"}), conf)
    assert (s.exit_timeout, s.exit_on_error, s.signal_before, s.kill_timeout) == \
        (None, True, (int(signal.SIGINT), 120.0), 2.0)
    assert job_settings(spec(), conf).exit_timeout == 30.0
    with pytest.raises(ValueError, match="exit-timeout"):
        job_settings(spec(options={"exit-timeout": "x"}), conf)


@pytest.mark.parametrize("value, expected", [
    (True, (int(signal.SIGUSR1), 60.0)), ("USR2", (int(signal.SIGUSR2), 60.0)),
    ("@30", (int(signal.SIGUSR1), 30.0)), ({"signum": 15, "timeleft": 5}, (15, 5.0)),
    (None, None)])
def test_signal_option(value, expected):
    assert parse_signal_option(value) == expected


def test_signal_number_rejects_junk():
    assert signal_number("SIGTERM") == signal_number("TERM") == signal_number("15") == 15
    for bad in ("SIGNOPE", 0, 999, "x"):
        with pytest.raises(ValueError):
            signal_number(bad)
