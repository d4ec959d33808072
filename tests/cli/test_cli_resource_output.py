"""flux resource list/status/drain output, from canned RPC payloads (no instance)."""
from __future__ import annotations

import errno
from datetime import datetime

import pytest
from click.testing import CliRunner

import cli.cmd_resource as cmd
from flux.errors import FluxError
from flux.resource import ResourceSet


class FakeFuture:
    def __init__(self, value):
        self.value = value

    def get(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class FakeHandle:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def rpc(self, topic, payload=None, nodeid=None):
        self.calls.append((topic, payload, nodeid))
        return FakeFuture(self.answers.get(topic, FluxError(errno.ENOSYS, f"no {topic}")))


def invoke(monkeypatch, answers, *args):
    handle = FakeHandle(answers)
    monkeypatch.setattr(cmd, "_flux", lambda: handle)
    result = CliRunner().invoke(cmd.command, list(args))
    return result, handle


def rset(nodes):
    """nodes: [(rank, host, cores, gpus, [props])]"""
    r = ResourceSet()
    for rank, host, cores, gpus, props in nodes:
        r.add_rank(rank, host, cores=cores, gpus=gpus)
    for rank, _host, _c, _g, props in nodes:
        for p in props:
            r.set_property(p, str(rank))
    return r.to_dict()


FREE = [(3, "fluke6", "0-3", None, ["batch"]), (4, "fluke7", "0-3", None, ["batch"]),
        (5, "fluke8", "0-3", None, ["batch"]), (6, "fluke9", "0-3", None, ["batch"]),
        (93, "fluke96", "0-3", None, ["debug"]), (94, "fluke97", "0-3", None, ["debug"]),
        (100, "fluke103", "0-3", None, ["debug", "testprop"])]
DOWN = [(14, "fluke17", "0-3", None, ["batch"]), (15, "fluke18", "0-3", None, ["batch"]),
        (99, "fluke102", "0-3", None, ["debug", "testprop"])]
SCHED_STATUS = {"all": rset(FREE + DOWN), "free": rset(FREE), "allocated": rset([]),
                "down": rset(DOWN),
                "queues": {"batch": ["batch"], "debug": ["debug"]}}


def test_list_default_format_matches_the_admin_guide(monkeypatch):
    result, handle = invoke(monkeypatch, {"sched.resource-status": SCHED_STATUS}, "list")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "     STATE QUEUE      PROPERTIES NNODES   NCORES NODELIST\n"
        "      free batch                      4       16 fluke[6-9]\n"
        "      free debug                      2        8 fluke[96-97]\n"
        "      free debug      testprop        1        4 fluke103\n"
        " allocated                            0        0\n"
        "      down batch                      2        8 fluke[17-18]\n"
        "      down debug      testprop        1        4 fluke102\n")
    assert handle.calls == [("sched.resource-status", {}, 0)]


def test_list_rlist_format(monkeypatch):
    result, _ = invoke(monkeypatch, {"sched.resource-status": SCHED_STATUS}, "list",
                       "-o", "rlist")
    assert result.output.splitlines()[:2] == [
        "     STATE QUEUE    PROPERTIES NNODES   NCORES    NGPUS LIST",
        "      free batch                    4       16        0 rank[3-6]/core[0-3]"]
    allocated = " allocated" + " " * 26 + "0        0        0"
    assert result.output.splitlines()[4] == allocated


def test_list_without_queues_or_properties_drops_those_columns(monkeypatch):
    nodes = [(0, "quartz4", "0-35", None, []), (1, "quartz5", "0-35", None, [])]
    status = {"all": rset(nodes), "free": rset(nodes), "allocated": rset([]),
              "down": rset([]), "queues": {}}
    result, _ = invoke(monkeypatch, {"sched.resource-status": status}, "list")
    assert result.output == (
        "     STATE NNODES   NCORES NODELIST\n"
        "      free      2       72 quartz[4-5]\n"
        " allocated      0        0\n"
        "      down      0        0\n")
    # gpus anywhere bring the NGPUS column back
    gpu_nodes = [(0, "g0", "0-3", "0-1", [])]
    status = {"all": rset(gpu_nodes), "free": rset(gpu_nodes), "allocated": rset([]),
              "down": rset([]), "queues": {}}
    result, _ = invoke(monkeypatch, {"sched.resource-status": status}, "list", "-n",
                       "-s", "free")
    assert result.output == "      free      1        4        2 g0\n"


def test_list_options_and_errors(monkeypatch):
    answers = {"sched.resource-status": SCHED_STATUS}
    result, _ = invoke(monkeypatch, answers, "list", "-q", "debug", "-s", "free", "-n",
                       "-o", "{queue} {nnodes} {properties} {ranks}")
    assert result.output == "debug 2 debug 93-94\ndebug 1 debug,testprop 100\n"
    result, _ = invoke(monkeypatch, answers, "list", "-s", "bogus")
    assert result.exit_code == 1
    assert result.output.endswith("flux-resource: invalid resource state 'bogus' (valid: "
                                  "up, down, allocated, free, all)\n")
    result, _ = invoke(monkeypatch, answers, "list", "-q", "nosuch")
    assert result.exit_code == 1 and "unknown queue 'nosuch' (queues: batch, debug)" in \
        result.output
    result, _ = invoke(monkeypatch, answers, "list", "-o", "{nope}")
    assert result.exit_code == 2 and "Unknown format field: nope" in result.output
    result, _ = invoke(monkeypatch, {}, "list")
    assert result.exit_code == 1 and "flux-resource: no sched.resource-status" in result.output


def status_payload():
    R = rset([(0, "fluke1", "0-3", None, []), (1, "fluke3", "0-3", None, []),
              (2, "fluke6", "0-3", None, []), (3, "fluke7", "0-3", None, []),
              (4, "fluke8", "0-3", None, []), (5, "fluke17", "0-3", None, []),
              (6, "fluke18", "0-3", None, []), (7, "fluke66", "0-3", None, [])])
    return {"R": R, "all": "0-7", "online": "0-4,6", "offline": "5,7", "exclude": "0-1",
            "torpid": "", "drain": {"6-7": {"timestamp": 1608109225.0, "reason": "bad"}},
            "method": "config", "expiration": 0.0}


def test_status_hides_empty_states_and_marks_down_nodes(monkeypatch):
    answers = {"resource.status": status_payload(),
               "sched.resource-status": {"allocated": rset([])}}
    result, handle = invoke(monkeypatch, answers, "status")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "     STATE UP NNODES NODELIST\n"
        "     avail  \u2714      3 fluke[6-8]\n"
        "    avail*  \u2717      1 fluke17\n"
        "   exclude  \u2714      2 fluke[1,3]\n"
        "   drained  \u2714      1 fluke18\n"
        "  drained*  \u2717      1 fluke66\n")
    assert [c[0] for c in handle.calls] == ["resource.status", "sched.resource-status"]


def test_status_states_option(monkeypatch):
    answers = {"resource.status": status_payload(),
               "sched.resource-status": {"allocated": rset([])}}
    result, _ = invoke(monkeypatch, answers, "status", "--states=drained,exclude")
    assert result.output.splitlines()[1:] == [
        "   exclude  \u2714      2 fluke[1,3]",
        "   drained  \u2714      1 fluke18",
        "  drained*  \u2717      1 fluke66"]
    result, _ = invoke(monkeypatch, answers, "status", "-s", "all", "-no", "{nodelist}")
    assert result.output == "fluke[1,3,6-8,17-18,66]\n"
    result, _ = invoke(monkeypatch, answers, "status", "-s", "offline", "-no",
                       "{state} {ranks}")
    assert result.output == "offline 5,7\n"
    result, _ = invoke(monkeypatch, answers, "status", "-s", "help")
    assert result.exit_code == 0 and "avail, exclude, draining, drained" in result.output
    result, _ = invoke(monkeypatch, answers, "status", "-s", "up")
    assert result.exit_code == 1 and "invalid resource state 'up'" in result.output


def test_draining_while_busy_then_drained(monkeypatch):
    busy = rset([(6, "fluke18", "0", None, [])])
    answers = {"resource.status": status_payload(), "sched.resource-status":
               {"allocated": busy}}
    result, _ = invoke(monkeypatch, answers, "status", "-s", "draining,drained")
    assert result.output.splitlines()[1:] == ["  draining  \u2714      1 fluke18",
                                              "  drained*  \u2717      1 fluke66"]
    stamp = datetime.fromtimestamp(1608109225.0).strftime("%Y-%m-%dT%H:%M:%S")
    result, _ = invoke(monkeypatch, answers, "drain")
    assert result.output == (
        "TIMESTAMP            STATE    RANK     REASON                         NODELIST\n"
        f"{stamp}  drained  7        bad                            fluke66\n"
        f"{stamp}  draining 6        bad                            fluke18\n")
    # no scheduler loaded: nothing counts as busy
    answers = {"resource.status": status_payload()}
    result, _ = invoke(monkeypatch, answers, "drain", "-n", "-o", "{state} {ranks}")
    assert result.output == "drained 6-7\n"


def test_drain_and_undrain_requests(monkeypatch):
    result, handle = invoke(monkeypatch, {"resource.drain": {}}, "drain", "fluke7", "node",
                            "is", "fubar")
    assert result.exit_code == 0
    assert handle.calls == [("resource.drain", {"targets": "fluke7",
                                                "reason": "node is fubar"}, 0)]
    _, handle = invoke(monkeypatch, {"resource.drain": {}}, "drain", "-f", "1")
    assert handle.calls[0][1] == {"targets": "1", "reason": "", "mode": "overwrite"}
    _, handle = invoke(monkeypatch, {"resource.drain": {}}, "drain", "--update", "1")
    assert handle.calls[0][1]["mode"] == "update"
    result, _ = invoke(monkeypatch, {}, "drain", "-f", "-u", "1")
    assert result.exit_code == 2 and "mutually exclusive" in result.output
    _, handle = invoke(monkeypatch, {"resource.undrain": {}}, "undrain", "-f", "1-2", "ok")
    assert handle.calls == [("resource.undrain", {"targets": "1-2", "reason": "ok",
                                                  "force": True}, 0)]
    result, _ = invoke(monkeypatch, {}, "undrain")
    assert result.exit_code == 2


@pytest.mark.parametrize("errnum,text", [
    (errno.EPERM, "Request requires owner credentials"),
    (errno.EEXIST, "drain: rank 1 already drained"),
])
def test_refused_drain_exits_1_with_the_message(monkeypatch, errnum, text):
    result, _ = invoke(monkeypatch, {"resource.drain": FluxError(errnum, text)}, "drain", "1")
    assert result.exit_code == 1 and result.output == f"flux-resource: {text}\n"
