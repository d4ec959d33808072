"""flux resource, flux queue and the resource service used as flux-resource(1),
flux-queue(1) and flux-config-resource(5) describe them, on real instances."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from broker.testing import TestInstance, stray_brokers

#: two configured nodes; both count as online though the instance has one broker
NODES = """[resource]
noverify = true
monitor-force-up = true
{extra}
[[resource.config]]
hosts = "fake[0-1]"
cores = "0-1"
[[resource.config]]
hosts = "fake1"
gpus = "0"
properties = ["gpu"]
[queues.any]
[queues.gpu]
requires = ["gpu"]
"""


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    path = tmp_path_factory.mktemp("conf")
    os.chmod(path, 0o755)
    (path / "resource.toml").write_text(NODES.format(extra=""))
    return path


@pytest.fixture(scope="module")
def inst(conf):
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture
def reload_with(inst, conf):
    """Reload with EXTRA added to [resource]; the original config comes back after."""
    def reload(extra):
        (conf / "resource.toml").write_text(NODES.format(extra=extra))
        return inst.flux("config", "reload")

    yield reload
    (conf / "resource.toml").write_text(NODES.format(extra=""))
    assert inst.flux("config", "reload").returncode == 0


def events(inst):
    r = inst.flux("kvs", "eventlog", "get", "resource.eventlog")
    return [line.split()[1:] for line in r.stdout.splitlines()]


# -- [resource] exclude on reload (flux-config-resource(5)) -----------------------------

def test_exclude_changed_by_a_reload_applies_at_once(inst, reload_with):
    """'This value may be changed on a live system by reloading the configuration
    ... A newly excluded node will appear as "down" to the scheduler'."""
    r = reload_with('exclude = "fake1"')
    assert r.returncode == 0, r.stderr
    r = inst.flux("resource", "status", "-s", "exclude", "-no", "{nodelist}")
    assert r.stdout == "fake1\n", r.stderr
    assert ["exclude", 'idset="1"'] in events(inst)
    # the scheduler keeps the node in its R but may not use it
    wait_for(lambda: inst.flux("resource", "R", "-s", "down").stdout.count('"fake1"') == 1)
    # an excluded node cannot be drained
    r = inst.flux("resource", "drain", "fake1", "maintenance")
    assert r.returncode == 1
    assert "excluded by configuration" in r.stderr
    r = reload_with("")
    assert r.returncode == 0, r.stderr
    assert ["unexclude", 'idset="1"'] in events(inst)
    wait_for(lambda: inst.flux("resource", "info", "-s", "down").stdout.startswith("0 Nodes"))


@pytest.mark.parametrize("value, text", [
    ('"nosuch"', "resource.exclude: unknown host nosuch"),
    ('"7"', "resource.exclude: rank 7 not in the instance"),
])
def test_exclude_of_unknown_targets_refused_by_reload(inst, reload_with, value, text):
    r = reload_with(f"exclude = {value}")
    assert r.returncode == 1
    assert text in r.stderr
    assert inst.flux("resource", "status", "-s", "exclude", "-no",
                     "{nnodes}").stdout in ("", "0\n")


def test_exclude_unknown_host_stops_a_discovering_start_too(tmp_path):
    """As with a configured R, an exclude naming a host R lacks stops the start
    when R is known then (a single discovering broker)."""
    os.chmod(tmp_path, 0o755)
    (tmp_path / "r.toml").write_text('[resource]\nexclude = "nosuch"\n')
    with pytest.raises(RuntimeError) as exc:
        TestInstance(config_path=str(tmp_path)).start().stop()
    assert "resource.exclude: unknown host nosuch" in str(exc.value)


# -- flux resource info / R / -i / -q / --skip-empty (flux-resource(1)) --------------------

def test_info_is_a_one_line_summary_of_the_states(inst):
    r = inst.flux("resource", "info")
    assert (r.returncode, r.stdout) == (0, "2 Nodes, 4 Cores, 1 GPUs\n"), r.stderr
    assert inst.flux("resource", "info", "-s", "free").stdout == "2 Nodes, 4 Cores, 1 GPUs\n"
    assert inst.flux("resource", "info", "-s", "allocated").stdout == "0 Nodes, 0 Cores, 0 GPUs\n"
    assert inst.flux("resource", "info", "-q", "gpu").stdout == "1 Nodes, 2 Cores, 1 GPUs\n"
    assert inst.flux("resource", "info", "-i", "fake0").stdout == "1 Nodes, 2 Cores, 0 GPUs\n"
    r = inst.flux("resource", "info", "-s", "bogus")
    assert r.returncode != 0 and "bogus" in r.stderr


def test_R_emits_the_scheduler_view_as_R(inst):
    r = inst.flux("resource", "R", "-i", "1")
    assert r.returncode == 0, r.stderr
    R = json.loads(r.stdout)
    assert R["version"] == 1 and R["execution"]["nodelist"] == ["fake1"]
    assert R["execution"]["R_lite"] == [{"rank": "1", "children": {"core": "0-1", "gpu": "0"}}]
    R = json.loads(inst.flux("resource", "R").stdout)
    assert R["execution"]["nodelist"] == ["fake[0-1]"]
    assert R["execution"]["properties"] == {"gpu": "1"}


def test_list_up_state_include_and_skip_empty(inst):
    r = inst.flux("resource", "list", "-s", "up", "-no", "{nodelist}")
    assert (r.returncode, r.stdout) == (0, "fake[0-1]\n"), r.stderr
    # with -i empty lines are skipped (and unknown hosts are not an error)
    r = inst.flux("resource", "list", "-i", "fake1", "-no", "{state} {nodelist}")
    assert r.stdout == "free fake1\n", r.stderr
    r = inst.flux("resource", "list", "-i", "fake1,nosuch", "--no-skip-empty", "-no",
                  "{state} {nnodes}")
    assert r.stdout.split("\n")[:3] == ["free 1", "allocated 0", "down 0"]
    r = inst.flux("resource", "list", "--skip-empty", "-no", "{state}")
    assert r.stdout == "free\n"


def test_status_include_queue_and_empty_lines_with_states(inst):
    r = inst.flux("resource", "status", "-i", "1", "-no", "{state} {nodelist}")
    assert (r.returncode, r.stdout) == (0, "avail fake1\n"), r.stderr
    r = inst.flux("resource", "status", "-q", "gpu", "-no", "{state} {nodelist}")
    assert r.stdout == "avail fake1\n", r.stderr
    r = inst.flux("resource", "status", "-q", "nosuch")
    assert r.returncode == 1 and "unknown queue 'nosuch'" in r.stderr
    # "empty lines are skipped unless the -s, --states option is used"
    r = inst.flux("resource", "status", "-s", "drain", "-no", "{state} {nnodes}")
    assert r.stdout == "draining 0\ndrained 0\n", r.stderr
    r = inst.flux("resource", "status", "-s", "drain", "--skip-empty", "-no", "{state}")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_drain_listing_include_and_queue(inst):
    assert inst.flux("resource", "drain", "0", "broken fan").returncode == 0
    try:
        r = inst.flux("resource", "drain", "-no", "{ranks} {reason}")
        assert r.stdout == "0 broken fan\n", r.stderr
        assert inst.flux("resource", "drain", "-i", "fake1", "-no", "{ranks}").stdout == ""
        assert inst.flux("resource", "drain", "-q", "gpu", "-no", "{ranks}").stdout == ""
        assert inst.flux("resource", "drain", "-q", "any", "-no", "{ranks}").stdout == "0\n"
    finally:
        assert inst.flux("resource", "undrain", "0").returncode == 0


def test_list_counts_a_node_of_two_queues_once(inst):
    """fake1 is in queues any and gpu: one row, queue 'any,gpu' (not a row per queue)."""
    r = inst.flux("resource", "list", "-no", "{state} {queue} {nnodes} {nodelist}")
    assert r.stdout.splitlines()[:2] == ["free any 1 fake0", "free any,gpu 1 fake1"], r.stderr
    r = inst.flux("resource", "list", "-q", "gpu", "-s", "free", "-no", "{queue} {nodelist}")
    assert r.stdout == "any,gpu fake1\n"
    # "flux resource list -no {nnodes} would simply output a single line containing
    # the total number of nodes"
    assert inst.flux("resource", "list", "-no", "{nnodes}").stdout == "2\n"
    assert inst.flux("resource", "list", "-s", "all", "-no", "{properties}").stdout == "gpu\n"


# -- flux queue list fields and formats (flux-queue(1)) -----------------------------------

def test_queue_list_resource_and_effective_fields(inst):
    r = inst.flux("queue", "list", "-no", "{queue} {resources.all.nnodes} "
                  "{resources.free.ncores} {resources.up.ngpus} {resources.down.nnodes} "
                  "{limits.range.effective.nnodes} {limits.range.effective.ngpus} {parent}")
    assert r.returncode == 0, r.stderr
    assert [line.rstrip() for line in r.stdout.splitlines()] == ["any 2 4 1 0 0-2 0-1",
                                                                  "gpu 1 2 1 0 0-1 0-1"]
    r = inst.flux("queue", "list", "-o", "nodes")
    assert r.stdout.splitlines()[0].split() == ["QUEUE", "EN", "ST", "NODES", "NODES:UP",
                                                "NODES:DOWN", "NODES:ALLOCATED", "NODES:FREE"]
    assert r.stdout.splitlines()[2].split()[3:] == ["1", "1", "0", "0", "1"]


def test_queue_list_named_formats_help_and_default_env(inst):
    r = inst.flux("queue", "list", "-o", "help")
    assert r.returncode == 0 and "nodes" in r.stdout and "default" in r.stdout
    r = inst.flux("queue", "list", env={"FLUX_QUEUE_LIST_FORMAT_DEFAULT": "{queue}"})
    assert r.stdout == "QUEUE\nany\ngpu\n", r.stderr
    r = inst.flux("queue", "list", "-o", "nosuch")
    assert r.returncode == 2 and "No such format nosuch" in r.stderr


def test_resource_named_formats_help_and_default_env(inst):
    """flux-resource(1) OUTPUT FORMAT: -o help, and FLUX_RESOURCE_*_FORMAT_DEFAULT."""
    r = inst.flux("resource", "list", "-o", "help")
    assert r.returncode == 0 and "rlist" in r.stdout, r.stderr
    r = inst.flux("resource", "status", "-n",
                  env={"FLUX_RESOURCE_STATUS_FORMAT_DEFAULT": "{nodelist}"})
    assert r.stdout == "fake[0-1]\n", r.stderr
    r = inst.flux("resource", "list", "-n", "-s", "free",
                  env={"FLUX_RESOURCE_LIST_FORMAT_DEFAULT": "rlist"})
    assert "rank1/core[0-1],gpu0" in r.stdout, r.stderr
    r = inst.flux("resource", "list", "-o", "nosuch")
    assert r.returncode == 2 and "No such format nosuch" in r.stderr


def test_drain_force_keeps_the_time_and_force_twice_replaces_it(inst):
    """flux-resource(1) drain -f: 'Overwrite the original drain reason.  When --force
    is specified twice, the original drain timestamp is also overwritten.'"""
    def drained():
        r = inst.flux("resource", "drain", "-no", "{timestamp} {reason}")
        ts, _, reason = r.stdout.strip().partition(" ")
        return float(ts), reason

    assert inst.flux("resource", "drain", "1").returncode == 0
    try:
        first, reason = drained()
        assert reason == ""
        # a node drained without a reason may be given one, without -f
        r = inst.flux("resource", "drain", "1", "no", "reason", "before")
        assert r.returncode == 0, r.stderr
        assert drained() == (first, "no reason before")
        r = inst.flux("resource", "drain", "1", "again")
        assert r.returncode == 1 and "already drained" in r.stderr
        time.sleep(0.05)
        assert inst.flux("resource", "drain", "-f", "1", "forced").returncode == 0
        assert drained() == (first, "forced")
        assert inst.flux("resource", "drain", "-ff", "1", "forced twice").returncode == 0
        later, reason = drained()
        assert later > first and reason == "forced twice"
    finally:
        assert inst.flux("resource", "undrain", "1").returncode == 0


def test_status_fields_statex_status_up_ascii_and_reason(inst):
    assert inst.flux("resource", "drain", "0", "bad", "disk").returncode == 0
    try:
        r = inst.flux("resource", "status", "-no",
                      "{state} {statex} {status} {up.ascii} {ranks} {reason}")
        assert r.returncode == 0, r.stderr
        assert [line.rstrip() for line in r.stdout.splitlines()] == [
            "avail avail online y 1", "drained drained online y 0 bad disk"]
    finally:
        assert inst.flux("resource", "undrain", "0").returncode == 0


def test_eventlog_shows_the_journal_and_waits_for_an_event(inst):
    r = inst.flux("resource", "eventlog", "-f", "json")
    assert r.returncode == 0, r.stderr
    names = [json.loads(line)["name"] for line in r.stdout.splitlines()]
    assert names[:2] == ["restart", "resource-define"]
    r = inst.flux("resource", "eventlog", "-H", "-L", "never")
    assert r.returncode == 0 and "resource-define method=\"config\"" in r.stdout
    waiter = subprocess.Popen(["flux", "resource", "eventlog", "-w", "undrain"],
                              env=inst.env, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert inst.flux("resource", "drain", "1", "x").returncode == 0
        assert inst.flux("resource", "undrain", "1").returncode == 0
        out, _ = waiter.communicate(timeout=15)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0
    assert out.splitlines()[-1].split()[1] == "undrain"


def test_excluding_a_drained_node_undrains_it(inst, reload_with):
    """flux-core: "Excluded targets may not be drained" -- brought back later, the
    node is not drained by a forgotten reason."""
    assert inst.flux("resource", "drain", "fake1", "old", "reason").returncode == 0
    r = reload_with('exclude = "fake1"')
    assert r.returncode == 0, r.stderr
    assert inst.flux("resource", "drain", "-no", "{ranks}").stdout == ""
    assert ["undrain", 'idset="1"', 'nodelist="fake1"'] in events(inst)
    assert reload_with("").returncode == 0
    r = inst.flux("resource", "status", "-no", "{state} {nodelist}")
    assert r.stdout == "avail fake[0-1]\n"


def test_restart_with_a_drained_node_excluded_undrains_it(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    os.chmod(tmp_path, 0o755)
    (conf / "r.toml").write_text(NODES.format(extra=""))
    state = tmp_path / "state"
    state.mkdir()
    first = TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()
    try:
        assert first.flux("resource", "drain", "0", "old").returncode == 0
    finally:
        assert first.stop() == 0
    (conf / "r.toml").write_text(NODES.format(extra='exclude = "0"'))
    second = TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()
    try:
        assert second.flux("resource", "drain", "-no", "{ranks}").stdout == ""
        r = second.flux("resource", "status", "-no", "{state} {ranks}")
        assert r.stdout == "avail 1\nexclude 0\n"
    finally:
        assert second.stop() == 0


def test_list_and_info_work_without_a_scheduler(tmp_path):
    """flux-core's flux resource list asks the resource module, which answers with
    no scheduler loaded (nothing allocated)."""
    os.chmod(tmp_path, 0o755)
    (tmp_path / "r.toml").write_text(NODES.format(extra=""))
    inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        assert inst.flux("module", "remove", "sched").returncode == 0
        assert inst.flux("resource", "drain", "0").returncode == 0
        r = inst.flux("resource", "list", "-no", "{state} {nodelist}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["free fake1", "allocated", "down fake0"]
        r = inst.flux("resource", "info", "-q", "gpu")
        assert (r.returncode, r.stdout) == (0, "1 Nodes, 2 Cores, 1 GPUs\n"), r.stderr
    finally:
        assert inst.stop() == 0
