"""rc1/rc3 module loading and the lifecycle, with a broker run in this process."""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

import broker.modhost as modhost
from broker.broker import Broker, BrokerOptions
from broker.rc import RcModule, known_target

CHECK = """
import sys, flux
h = flux.Flux()
assert h.rpc("testmod.echo", {"x": 1}).get() == {"x": 1}
assert h.rpc("testmod-b.hello").get() == {"from": "testmod-b"}
names = [m["name"] for m in h.rpc("module.list").get()["modules"]]
assert names[-2:] == ["testmod", "testmod-b"], names
sys.exit(7)
"""


def run_broker(tmp_path, prog, monkeypatch, rc1):
    monkeypatch.setattr(modhost, "RC1", rc1)
    log = tmp_path / "broker.log"
    opts = BrokerOptions(setattrs=[("log-filename", str(log)), ("log-stderr-level", "0")],
                         initial_program=prog)
    code = asyncio.run(Broker(opts).run())
    return code, log.read_text().splitlines()


def messages(lines):
    return [line.split("]: ", 1)[1] for line in lines if "]: " in line]


def test_rc1_loads_in_order_rc3_unloads_in_reverse(tmp_path, monkeypatch):
    rc1 = (RcModule("testmod", "broker.modules.testmod:TestModule"),
           RcModule("testmod-b", "broker.modules.testmod:TestModuleB"),
           RcModule("never", "no.such.module:X", "followers"))
    code, lines = run_broker(tmp_path, [sys.executable, "-c", CHECK], monkeypatch, rc1)
    assert code == 7
    msgs = messages(lines)
    order = [m for m in msgs if m.startswith(("testmod started", "testmod-b started",
                                               "testmod stopping", "testmod-b stopping"))]
    assert order == ["testmod started args=none", "testmod-b started", "testmod-b stopping",
                     "testmod stopping shutdown_options={}"]
    assert msgs.index("testmod-b started") < \
        [i for i, m in enumerate(msgs) if m.startswith("rc1-success")][0]
    assert any(m.startswith("rc2-fail: run->cleanup") for m in msgs)


def test_rc1_failure_exits_1_and_skips_run(tmp_path, monkeypatch):
    rc1 = (RcModule("testmod", "broker.modules.testmod:TestModule"),
           RcModule("broken", "no.such.module:X"))
    marker = tmp_path / "ran"
    code, lines = run_broker(tmp_path, ["touch", str(marker)], monkeypatch, rc1)
    assert code == 1 and not marker.exists()
    msgs = messages(lines)
    assert any(m.startswith("rc1 failed: cannot import no.such.module") for m in msgs)
    assert any(m.startswith("rc1-fail: init->shutdown") for m in msgs)
    # what was loaded is unloaded again
    assert "testmod stopping shutdown_options={}" in msgs


def test_rc_entries():
    assert RcModule("a", "x:Y", "leader").loads_on(0)
    assert not RcModule("a", "x:Y", "leader").loads_on(1)
    assert RcModule("a", "x:Y", "followers").loads_on(2)
    assert not RcModule("a", "x:Y", "followers").loads_on(0)
    with pytest.raises(ValueError, match="ranks must be all, leader or followers"):
        RcModule("a", "x:Y", "some").loads_on(0)
    assert known_target("testmod") == "broker.modules.testmod:TestModule"
    assert known_target("nope") is None


def test_rundir_created_by_broker_is_removed(tmp_path, monkeypatch):
    out = tmp_path / "rundir.txt"
    script = f"import flux; open({str(out)!r}, 'w').write(flux.Flux().attr_get('rundir'))"
    code, _lines = run_broker(tmp_path, [sys.executable, "-c", script], monkeypatch, ())
    assert code == 0
    rundir = out.read_text().strip()
    assert rundir and not os.path.exists(rundir)


GC_PROBE = '''
import gc
from broker.module import Module, request_handler


class GcProbe(Module):
    name = "gcprobe"

    async def start(self):
        self.at_start = gc.isenabled()

    @request_handler("gcprobe.state")
    def state(self, msg):
        return {"at_start": self.at_start, "now": gc.isenabled()}
'''

GC_CHECK = """
import sys, flux
state = flux.Flux().rpc("gcprobe.state").get()
sys.exit(0 if state == {"at_start": False, "now": True} else 3)
"""


def test_cyclic_gc_is_off_while_rc1_modules_start(tmp_path, monkeypatch):
    # a restart's modules build their whole state in start(): full collections
    # over it meanwhile were a third of the restart time at 100,000 jobs
    (tmp_path / "gcprobe_mod.py").write_text(GC_PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    rc1 = (RcModule("gcprobe", "gcprobe_mod:GcProbe"),)
    code, _lines = run_broker(tmp_path, [sys.executable, "-c", GC_CHECK], monkeypatch, rc1)
    assert code == 0
