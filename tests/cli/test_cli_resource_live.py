"""flux resource against a real instance: outputs and exit codes."""
from __future__ import annotations

import re

import pytest
from helpers.live import flux, start_instance

CONFIG = """
[ingest.validator]
plugins = ["jobspec", "feasibility"]
[resource]
monitor-force-up = true
exclude = "0"
[[resource.config]]
hosts = "fluke[6-9]"
cores = "0-3"
properties = ["batch"]
[[resource.config]]
hosts = "fluke[10-11]"
cores = "0-3"
gpus = "0"
properties = ["debug", "testprop"]
[queues.batch]
requires = ["batch"]
[queues.debug]
requires = ["debug"]
[policy.jobspec.defaults.system]
queue = "batch"
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, CONFIG, "resource.toml")
    yield instance
    assert instance.stop() == 0


def test_list_by_queue_and_properties(inst):
    r = flux(inst, "resource", "list")
    assert r.exit_code == 0
    assert r.output.splitlines() == [
        "     STATE QUEUE      PROPERTIES NNODES   NCORES    NGPUS NODELIST",
        "      free batch                      3       12        0 fluke[7-9]",
        "      free debug      testprop        2        8        2 fluke[10-11]",
        " allocated                            0        0        0",
        "      down                            0        0        0"]
    r = flux(inst, "resource", "list", "-o", "rlist", "-s", "free", "-q", "debug", "-n")
    assert r.output == "      free debug    testprop        2        8        2 " \
                       "rank[4-5]/core[0-3],gpu0\n"


def test_status_shows_the_excluded_node(inst):
    r = flux(inst, "resource", "status")
    assert r.output.splitlines() == [
        "     STATE UP NNODES NODELIST",
        "     avail  \u2714      5 fluke[7-11]",
        "   exclude  \u2714      1 fluke6"]


def test_drain_list_undrain_cycle(inst):
    assert flux(inst, "resource", "drain", "fluke7", "node", "is", "fubar").exit_code == 0
    r = flux(inst, "resource", "drain")
    header, row = r.output.splitlines()
    assert header == "TIMESTAMP            STATE    RANK     REASON                         " \
                     "NODELIST"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  drained  1        node is fubar"
                        r" {18}fluke7", row), row
    r = flux(inst, "resource", "drain", "1-2", "again")
    assert r.exit_code == 1
    assert r.output == "flux-resource: drain: rank 1 already drained (use force to replace " \
                       "the reason, update to leave it)\n"
    assert flux(inst, "resource", "drain", "-u", "1-2", "second").exit_code == 0
    r = flux(inst, "resource", "drain", "-no", "{ranks} {reason}")
    assert r.output.splitlines() == ["1 node is fubar", "2 second"]
    assert flux(inst, "resource", "drain", "-f", "1", "replaced").exit_code == 0
    r = flux(inst, "resource", "drain", "-no", "{ranks} {reason}")
    assert sorted(r.output.splitlines()) == ["1 replaced", "2 second"]
    r = flux(inst, "resource", "list", "-s", "down", "-no", "{nnodes} {nodelist}")
    assert r.output == "2 fluke[7-8]\n"
    r = flux(inst, "resource", "undrain", "fluke[7-9]")
    assert r.exit_code == 1 and r.output == "flux-resource: undrain: rank 3 not drained\n"
    assert flux(inst, "resource", "undrain", "-f", "fluke[7-9]").exit_code == 0
    assert flux(inst, "resource", "drain").output.count("\n") == 1


@pytest.mark.parametrize("args,code,message", [
    (("drain", "nosuch"), 1, "flux-resource: targets: unknown host nosuch\n"),
    (("drain", "17"), 1, "flux-resource: targets: rank 17 not in the instance (ranks 0-5)\n"),
    (("drain", "fluke["), 1, "flux-resource: targets: 'fluke[' is neither an idset nor a "
                             "hostlist"),
    (("drain", "-f", "-u", "1"), 2, "--force and --update are mutually exclusive"),
    (("undrain",), 2, "Missing argument 'TARGETS'"),
    (("list", "-s", "busy"), 1, "flux-resource: invalid resource state 'busy'"),
    (("list", "-q", "gpu"), 1, "flux-resource: unknown queue 'gpu' (queues: batch, debug)"),
    (("status", "-o", "{bogus}"), 2, "Unknown format field: bogus"),
    (("bogus",), 2, "No such command 'bogus'"),
])
def test_bad_input(inst, args, code, message):
    r = flux(inst, "resource", *args)
    assert r.exit_code == code
    assert message in r.output


def test_jobs_use_their_queue_nodes(inst):
    # named queues start stopped
    h = inst.handle()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    h.close()
    r = flux(inst, "submit", "--queue=debug", "-n", "8", "--setattr=system.exec.test={}", "true")
    assert r.exit_code == 0, r.output
    jobid = r.stdout.strip()
    r = flux(inst, "job", "wait-event", "-t", "30s", jobid, "clean")
    assert r.exit_code == 0, r.output
    r = flux(inst, "jobs", "-n", "-o", "{sched.resource_summary}", jobid)
    assert r.output.strip() == "rank[4-5]/core[0-3]"
    r = flux(inst, "submit", "--queue=debug", "-n", "9", "true")
    assert r.exit_code == 1
    assert "unsatisfiable request: 9 slot(s) of 1 core(s) requested, the instance has room " \
           "for 8" in r.output
