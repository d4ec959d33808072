"""Jobtap plugins (jobtap-plugins(7), flux-jobtap(1)) in real instances: Python plugins
loaded at run time and from ``[job-manager] plugins``, each callback topic they use,
the builtins, and plugins that fail without harming the instance."""
from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from broker.testing import TestInstance, flux_command
from flux.job import JobID
from helpers.live import start_with_config

pytestmark = pytest.mark.slow

PRIO = """
def prio(p, topic, args):
    args.out["priority"] = p.conf.get("base", 1000) + args.urgency

def flux_plugin_init(p):
    p.add_handler("job.state.priority", prio)
    p.add_handler("job.priority.get", prio)
"""

REJECT = """
def validate(p, topic, args):
    name = args.jobspec.get("attributes", {}).get("system", {}).get("job", {}).get("name")
    if name == "bad":
        return p.reject_job(args, "jobs named bad are not allowed")
    if name == "boom":
        raise RuntimeError("validator bug")

def flux_plugin_init(p):
    p.add_handler("job.validate", validate)
"""

# a dependency scheme of its own: token:X waits until a job named release-X is submitted;
# and every job is subscribed to, to log an event when it starts
TOKEN = """
waiting = {}

def dep(p, topic, args):
    value = args.dependency["value"]
    if value == "bad":
        return p.reject_job(args, "token: bad token")
    p.dependency_add(args.id, "token=" + value)
    waiting.setdefault(value, []).append(args.id)

def new(p, topic, args):
    name = args.jobspec.get("attributes", {}).get("system", {}).get("job", {}).get("name", "")
    if name.startswith("release-"):
        for jobid in waiting.pop(name[8:], []):
            p.dependency_remove(jobid, "token=" + name[8:])
    p.job_subscribe(args.id)

def started(p, topic, args):
    p.post_event(args.id, "hello", {"from": p.name, "state": args.state})

def flux_plugin_init(p):
    p.add_handler("job.dependency.token", dep)
    p.add_handler("job.new", new)
    p.add_handler("job.event.start", started)
"""

# no priority until a job named "go" comes; then every waiting job gets 4242
GATE = """
waiting = []

def prio(p, topic, args):
    waiting.append(args.id)
    return p.priority_unavail(args)

def validate(p, topic, args):
    name = args.jobspec.get("attributes", {}).get("system", {}).get("job", {}).get("name")
    if name == "go":
        p.remove_handlers = True

def new(p, topic, args):
    if getattr(p, "remove_handlers", False):
        p.remove_handlers = False
        for jobid in waiting:
            p.reprioritize_job(jobid, 4242)
        waiting.clear()

def flux_plugin_init(p):
    p.add_handler("job.state.priority", prio)
    p.add_handler("job.validate", validate)
    p.add_handler("job.new", new)
"""

# records the states each job goes through, and raises in job.state.run
STATES = """
import json

def state(p, topic, args):
    with open(p.conf["log"], "a") as fh:
        fh.write(json.dumps([args.id, topic, args.prev_state, args.state]) + "\\n")
    if topic == "job.state.run" and p.conf.get("raise"):
        raise ValueError("bug in job.state.run")

def new(p, topic, args):
    with open(p.conf["log"], "a") as fh:
        fh.write(json.dumps([args.id, topic, None, args.state]) + "\\n")

def flux_plugin_init(p):
    p.add_handler("job.state.*", state)
    p.add_handler("job.new", new)
"""


# jobtap-plugins(7) details: a glob dependency handler, job.state.priority once per
# entry, a service of the plugin's own (set_name), an out-of-range priority, and a
# jobspec without its environment
EXTRAS = """
import json
waiting = []

def log(p, *what):
    with open(p.conf["log"], "a") as fh:
        fh.write(json.dumps(what) + "\\n")

def name_of(args):
    return args.jobspec.get("attributes", {}).get("system", {}).get("job", {}).get("name")

def any_dep(p, topic, args):
    log(p, "dep", topic, args.dependency["scheme"])

def validate(p, topic, args):
    log(p, "env", "environment" in args.jobspec["attributes"]["system"])

def prio(p, topic, args):
    log(p, "prio", args.id, topic)
    if name_of(args) == "wait":
        waiting.append(args.id)
        return p.priority_unavail(args)
    if name_of(args) == "huge":
        args.out["priority"] = 2 ** 40

def release(p, msg):
    for jobid in waiting:
        p.reprioritize_job(jobid, 100)
    done = list(waiting)
    waiting.clear()
    return {"released": done}

def flux_plugin_init(p):
    p.set_name("extras")
    p.add_handler("job.dependency.*", any_dep)
    p.add_handler("job.validate", validate)
    p.add_handler("job.state.priority", prio)
    p.service_register("release", release)
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def jobid(inst: TestInstance, *args: str) -> str:
    return ok(inst.flux("submit", *args)).strip()


def wait_clean(inst: TestInstance, job: str) -> None:
    ok(inst.flux("job", "wait-event", "-t", "20", job, "clean"))


def field(inst: TestInstance, job: str, fmt: str) -> str:
    return ok(inst.flux("jobs", "-a", "-n", "-o", fmt, job)).strip()


@pytest.fixture(scope="module")
def inst():
    i = TestInstance().start()
    yield i
    i.stop()


@pytest.fixture(autouse=True)
def no_plugins_left(inst):
    yield
    inst.flux("jobtap", "remove", "all")
    for name in (".priority-default", ".dependency-after", ".begin-time"):
        inst.flux("jobtap", "load", name)


def test_list_shows_builtins_only_with_all(inst):
    assert ok(inst.flux("jobtap", "list")) == ""
    assert ok(inst.flux("jobtap", "list", "-a")).split() == [
        ".priority-default", ".dependency-after", ".begin-time"]


def test_a_priority_plugin_with_keyval_config_sets_priority(inst, tmp_path):
    ok(inst.flux("jobtap", "load", write(tmp_path, "prio.py", PRIO), "base=5000"))
    assert ok(inst.flux("jobtap", "list")).split() == ["prio.py"]
    job = jobid(inst, "--urgency=10", "true")
    wait_clean(inst, job)
    assert field(inst, job, "{priority} {result}") == "5010 COMPLETED"
    # hold and expedite keep their fixed priorities
    held = jobid(inst, "--urgency=hold", "true")
    assert ok(inst.flux("job", "eventlog", held)).count("priority=0") == 1
    ok(inst.flux("cancel", held))
    # a relative path is taken from the command's directory
    ok(inst.flux("jobtap", "remove", "prio"))
    r = subprocess.run(flux_command() + ["jobtap", "load", "prio.py", "base=7"], cwd=tmp_path,
                       env=inst.env, capture_output=True, text=True, timeout=30)
    ok(r)
    job = jobid(inst, "--urgency=3", "true")
    wait_clean(inst, job)
    assert field(inst, job, "{priority}") == "10"


def test_a_validate_plugin_refuses_jobs_with_its_reason(inst, tmp_path):
    ok(inst.flux("jobtap", "load", write(tmp_path, "reject.py", REJECT)))
    r = inst.flux("submit", "--job-name=bad", "true")
    assert r.returncode == 1
    assert "jobs named bad are not allowed" in r.stderr
    # a callback that raises refuses the job, naming the plugin and the error
    r = inst.flux("submit", "--job-name=boom", "true")
    assert r.returncode == 1
    assert "reject.py: job.validate: RuntimeError: validator bug" in r.stderr
    assert ok(inst.flux("run", "--job-name=fine", "echo", "ran")).strip() == "ran"


def test_a_dependency_scheme_and_job_events_from_a_plugin(inst, tmp_path):
    r = inst.flux("submit", "--dependency=token:abc", "true")
    assert r.returncode == 1 and "dependency scheme 'token' is not supported" in r.stderr
    ok(inst.flux("jobtap", "load", write(tmp_path, "token.py", TOKEN)))
    r = inst.flux("submit", "--dependency=token:bad", "true")
    assert r.returncode == 1 and "token: bad token" in r.stderr
    job = jobid(inst, "--dependency=token:abc", "true")
    time.sleep(0.3)
    assert field(inst, job, "{state} {dependencies}") == "DEPEND token=abc"
    ok(inst.flux("run", "--job-name=release-abc", "true"))
    wait_clean(inst, job)
    names = [line.split()[1] for line in ok(inst.flux("job", "eventlog", job)).splitlines()]
    assert names[:6] == ["submit", "validate", "dependency-add", "dependency-remove", "depend",
                         "priority"]
    assert names.index("start") < names.index("hello") < names.index("finish")
    assert field(inst, job, "{result}") == "COMPLETED"


def test_removing_the_default_priority_plugin_holds_jobs_in_priority(inst):
    ok(inst.flux("jobtap", "remove", ".priority-default"))
    assert ".priority-default" not in ok(inst.flux("jobtap", "list", "-a")).split()
    job = jobid(inst, "true")
    time.sleep(0.5)
    assert field(inst, job, "{state}") == "PRIORITY"
    ok(inst.flux("jobtap", "load", ".priority-default"))
    wait_clean(inst, job)
    assert field(inst, job, "{result}") == "COMPLETED"


def test_removing_a_builtin_dependency_scheme(inst):
    ok(inst.flux("jobtap", "remove", ".*"))
    assert ok(inst.flux("jobtap", "list", "-a")) == ""
    r = inst.flux("submit", "--dependency=afterok:1", "true")
    assert r.returncode == 1 and "its builtin jobtap plugin is removed" in r.stderr
    r = inst.flux("submit", "--begin-time=+1h", "true")
    assert r.returncode == 1 and "'begin-time' is not supported" in r.stderr


ANNOTATE = """
def prio(p, topic, args):
    args.out["annotations"] = {"plugin": {"why": f"urgency {args.urgency}"}}
    args.out["priority"] = 0 if args.urgency == 5 else args.urgency

def flux_plugin_init(p):
    p.add_handler("job.state.priority", prio)
"""


def test_a_plugin_annotates_pending_jobs(inst, tmp_path):
    ok(inst.flux("jobtap", "load", write(tmp_path, "annotate.py", ANNOTATE)))
    job = jobid(inst, "--urgency=5", "true")          # priority 0: it stays pending
    time.sleep(0.3)
    assert field(inst, job, "{state} {annotations.plugin.why}") == "SCHED urgency 5"
    ok(inst.flux("cancel", job))


def test_an_unavailable_priority_waits_for_reprioritize(inst, tmp_path):
    ok(inst.flux("jobtap", "load", write(tmp_path, "gate.py", GATE)))
    job = jobid(inst, "true")
    time.sleep(0.3)
    assert field(inst, job, "{state}") == "PRIORITY"
    # even with the default plugin loaded: the gate's answer comes last and wins
    assert ".priority-default" in ok(inst.flux("jobtap", "list", "-a")).split()
    ok(inst.flux("submit", "--job-name=go", "--urgency=hold", "true"))
    wait_clean(inst, job)
    assert field(inst, job, "{priority} {result}") == "4242 COMPLETED"
    ok(inst.flux("cancel", "--all"))


def test_state_callbacks_in_order_and_a_raising_callback_is_harmless(inst, tmp_path):
    log = tmp_path / "states.log"
    ok(inst.flux("jobtap", "load", write(tmp_path, "states.py", STATES), f"log={log}",
                 "raise=true"))
    job = jobid(inst, "true")
    wait_clean(inst, job)
    import json

    from flux.job import JobID
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [(topic, prev, state) for jid, topic, prev, state in rows if jid == JobID(job)]
    assert [t for t, _p, _s in mine] == ["job.new", "job.state.depend", "job.state.priority",
                                        "job.state.sched", "job.state.run",
                                        "job.state.cleanup", "job.state.inactive"]
    assert [(p, s) for _t, p, s in mine[3:]] == [(4, 8), (8, 16), (16, 32), (32, 64)]
    assert field(inst, job, "{result}") == "COMPLETED"
    assert "bug in job.state.run" in inst.stderr_text()


def test_bad_plugins_are_refused_with_a_reason(inst, tmp_path):
    cases = [
        (["/nonexistent/p.py"], "/nonexistent/p.py: No such file or directory"),
        ([write(tmp_path, "syntax.py", "def (:\n")], "syntax.py: SyntaxError"),
        ([write(tmp_path, "noinit.py", "x = 1\n")], "noinit.py: flux_plugin_init not found"),
        ([write(tmp_path, "initfail.py", "def flux_plugin_init(p):\n    raise OSError('no')\n")],
         "initfail.py: flux_plugin_init failed: OSError: no"),
        ([write(tmp_path, "initneg.py", "def flux_plugin_init(p):\n    return -1\n")],
         "initneg.py: flux_plugin_init failed"),
        ([write(tmp_path, "exits.py", "raise SystemExit(3)\n")], "exits.py: SystemExit: 3"),
        (["no_such_module_xyz"], "no_such_module_xyz: No such file or directory"),
        (["complex-priority.so"], "complex-priority.so: C plugins (.so) cannot be loaded"),
        ([".priority-default"], ".priority-default: plugin already loaded"),
    ]
    for args, text in cases:
        r = inst.flux("jobtap", "load", *args)
        assert r.returncode == 1, args
        assert text in r.stderr, (args, r.stderr)
    assert ok(inst.flux("jobtap", "list")) == ""
    prio = write(tmp_path, "prio.py", PRIO)
    ok(inst.flux("jobtap", "load", prio))
    r = inst.flux("jobtap", "load", prio)
    assert r.returncode == 1 and "prio.py: plugin already loaded" in r.stderr
    # -r removes first: a reload
    ok(inst.flux("jobtap", "load", "-r", "prio", prio, "base=1"))
    r = inst.flux("jobtap", "remove", "nope*")
    assert r.returncode == 1 and "nope*: no such plugin found" in r.stderr
    r = inst.flux("jobtap", "load", prio, "novalue")
    assert r.returncode == 2 and "KEY=VAL" in r.stderr
    r = inst.flux("jobtap", "frob")
    assert r.returncode == 2
    # the instance still runs jobs
    assert ok(inst.flux("run", "echo", "alive")).strip() == "alive"


def test_config_plugins_load_at_start_and_see_jobs_again_after_restart(tmp_path):
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    write(plugdir, "states.py", STATES)
    log = tmp_path / "states.log"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "jm.toml").write_text(textwrap.dedent(f"""
        [job-manager]
        pluginpath = "{plugdir}"
        plugins = [
          {{ load = "states.py", conf = {{ log = "{log}" }} }},
        ]
    """))
    state = tmp_path / "state"
    inst = TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()
    try:
        assert ok(inst.flux("jobtap", "list")).split() == ["states.py"]
        held = jobid(inst, "--urgency=hold", "true")
    finally:
        assert inst.stop() == 0
    before = log.read_text().count("job.new")
    inst = TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()
    try:
        # job.new again for the job still pending, as flux-core does on restart
        assert log.read_text().count("job.new") == before + 1
        ok(inst.flux("cancel", held))
    finally:
        assert inst.stop() == 0


@pytest.mark.parametrize("toml, text", [
    ('plugins = [{ lode = "x.py" }]', "plugins[0]: unknown key 'lode'"),
    ('plugins = [{ conf = { a = 1 } }]', "plugins[0]: needs load or remove"),
    ('plugins = [{ load = "/nonexistent/x.py" }]',
     "plugins[0]: /nonexistent/x.py: No such file or directory"),
    ('plugins = [{ remove = "nothing" }]', "plugins[0]: nothing: no such plugin found"),
])
def test_a_bad_plugins_config_fails_the_start_naming_the_entry(tmp_path, toml, text):
    r = start_with_config(tmp_path, "[job-manager]\n" + toml + "\n")
    assert r.returncode != 0
    assert text in r.stderr


def test_plugin_api_details_of_jobtap_plugins_7(inst, tmp_path):
    import json

    log = tmp_path / "extras.log"
    ok(inst.flux("jobtap", "load", write(tmp_path, "extras.py", EXTRAS), f"log={log}"))
    assert ok(inst.flux("jobtap", "list")).split() == ["extras.py"]

    def entries(kind):
        return [e[1:] for e in map(json.loads, log.read_text().splitlines()) if e[0] == kind]

    # a job.dependency.* handler takes on a scheme no builtin judges
    job = jobid(inst, "--dependency=anything:1", "true")
    wait_clean(inst, job)
    assert ["job.dependency.anything", "anything"] in entries("dep")
    r = inst.flux("submit", "--dependency=afterok:12345", "true")   # builtins still judge theirs
    assert r.returncode == 1 and "afterok: job 12345 not found" in r.stderr
    # the plugins' jobspec has no environment
    assert entries("env") and not any(e[0] for e in entries("env"))
    # job.state.priority once for a job left waiting, however often the job manager
    # looks at it again (other jobs coming and going)
    held = jobid(inst, "--job-name=wait", "true")
    for _ in range(3):
        wait_clean(inst, jobid(inst, "true"))
    assert field(inst, held, "{state}") == "PRIORITY"
    assert [e for e in entries("prio") if e[0] == int(JobID(held))] == \
        [[int(JobID(held)), "job.state.priority"]]
    # the plugin's own service, named after flux_plugin_set_name's name
    released = inst.handle().rpc("job-manager.extras.release", {}).get()
    assert released == {"released": [int(JobID(held))]}
    wait_clean(inst, held)
    assert field(inst, held, "{priority}") == "100"
    # a priority out of range is ignored: the job gets its urgency's, not stuck
    huge = jobid(inst, "--job-name=huge", "--urgency=9", "true")
    wait_clean(inst, huge)
    assert field(inst, huge, "{priority}") == "9"
    # removed by the name without .py too; its service goes with it
    ok(inst.flux("jobtap", "remove", "extras"))
    with pytest.raises(OSError):
        inst.handle().rpc("job-manager.extras.release", {}).get()


QUERY = """
def flux_plugin_init(p):
    def query(p, topic, args):
        args.out["loaded-with"] = p.conf.get("tag")
    p.add_handler("plugin.query", query)
"""


def test_query_prints_name_path_and_the_plugins_own_data(inst, tmp_path):
    """flux-jobtap(1) query: at least the name and path ("builtin"), plus what the
    plugin's plugin.query callback adds; an unknown name is an error."""
    path = write(tmp_path, "q.py", QUERY)
    ok(inst.flux("jobtap", "load", path, "tag=abc"))
    assert json.loads(ok(inst.flux("jobtap", "query", "q.py"))) == {
        "name": "q.py", "path": path, "loaded-with": "abc"}
    assert json.loads(ok(inst.flux("jobtap", "query", ".begin-time"))) == {
        "name": ".begin-time", "path": "builtin"}
    r = inst.flux("jobtap", "query", "nosuch.py")
    assert r.returncode == 1
    assert "nosuch.py: plugin not found" in r.stderr
