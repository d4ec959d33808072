"""PMI from the job shell: a real MPI (MPICH via mpi4py) and nested instances, on one
and two broker ranks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from broker.testing import TestInstance
from helpers.standalone import run_standalone

pytestmark = pytest.mark.slow

_probe = subprocess.run([sys.executable, "-c", "import mpi4py; mpi4py.rc.initialize = False; "
                         "from mpi4py import MPI"], capture_output=True, text=True)
if _probe.returncode != 0:
    pytest.skip("mpi4py cannot import (pip install -e '.[test]' brings mpich and mpi4py): "
                + (_probe.stderr.strip().splitlines() or ["?"])[-1], allow_module_level=True)

PROGRAM = ("import json\n"
           "from mpi4py import MPI\n"
           "w = MPI.COMM_WORLD\n"
           "total = w.allreduce(w.Get_rank() + 1, op=MPI.SUM)\n"
           "node = w.Split_type(MPI.COMM_TYPE_SHARED).Get_size()\n"
           "print(json.dumps({'rank': w.Get_rank(), 'size': w.Get_size(), 'sum': total, "
           "'node': node}), flush=True)\n")

# four cores on the one node, so -n4 fits whatever this machine has
FOUR_CORES = f"""
[[resource.config]]
hosts = "{socket.gethostname()}"
cores = "0-3"
"""


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "r.toml").write_text(FOUR_CORES)
    inst = TestInstance(config_path=str(conf)).start()
    yield inst
    inst.stop()


@pytest.fixture(scope="module")
def two():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def mpi(inst, *args):
    r = inst.flux("run", *args, "-o", "cpu-affinity=off", sys.executable, "-c", PROGRAM,
                  timeout=120)
    assert r.returncode == 0, r.stderr
    return sorted((json.loads(line) for line in r.stdout.splitlines()), key=lambda d: d["rank"])


def test_mpi_on_a_size_1_instance(one):
    out = mpi(one, "-n4")
    assert [d["rank"] for d in out] == [0, 1, 2, 3]
    assert all(d["size"] == 4 and d["sum"] == 10 and d["node"] == 4 for d in out)


def test_mpi_across_two_ranks(two):
    out = mpi(two, "-N2", "-n4")
    assert [d["rank"] for d in out] == [0, 1, 2, 3]
    # the process mapping tells MPI there are two nodes of two
    assert all(d["size"] == 4 and d["sum"] == 10 and d["node"] == 2 for d in out)


def test_mpi_abort_fails_the_job(one):
    r = one.flux("run", "-n2", "-o", "cpu-affinity=off", sys.executable, "-c",
                 "from mpi4py import MPI\n"
                 "import time\n"
                 "if MPI.COMM_WORLD.Get_rank() == 1: MPI.COMM_WORLD.Abort(3)\n"
                 "time.sleep(60)\n", timeout=120)
    assert r.returncode != 0 and "type=exec" in r.stderr and "PMI abort" in r.stderr


def test_flux_start_in_a_job_bootstraps_a_nested_instance(two):
    r = two.flux("run", "-N2", "flux", "start", "flux", "getattr", "size", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2\n"
    r = two.flux("run", "-N2", "flux", "start", "flux", "getattr", "instance-level", timeout=120)
    assert r.stdout == "1\n"


def test_gpu_affinity(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.toml").write_text(FOUR_CORES.replace('cores = "0-3"', 'cores = "0-3"\ngpus = "0-1"'))
    inst = TestInstance(config_path=str(conf)).start()
    try:
        r = inst.flux("run", "-n2", "-g1", "-l", "-o", "cpu-affinity=off", "sh", "-c",
                      "echo ${CUDA_VISIBLE_DEVICES:-none}")
        assert sorted(r.stdout.splitlines()) == ["0: 0,1", "1: 0,1"], r.stderr
        r = inst.flux("run", "-n2", "-g1", "-l", "-o", "gpu-affinity=per-task", "sh", "-c",
                      "echo $CUDA_VISIBLE_DEVICES")
        assert sorted(r.stdout.splitlines()) == ["0: 0", "1: 1"]
        r = inst.flux("run", "-n1", "-o", "gpu-affinity=off", "sh", "-c",
                      "echo ${CUDA_VISIBLE_DEVICES:-none}")
        assert r.stdout == "none\n"
    finally:
        inst.stop()


def test_mpi_with_a_cyclic_taskmap_and_flux_shells_pmi_tuning_options(two):
    # flux-shell(1): pmi.kvs=native and pmi.exchange.k=N are accepted; ranks dealt cyclic
    out = mpi(two, "-N2", "-n4", "--taskmap=cyclic", "-o", "pmi.kvs=native",
              "-o", "pmi.exchange.k=4")
    assert [d["rank"] for d in out] == [0, 1, 2, 3]
    assert all(d["size"] == 4 and d["sum"] == 10 and d["node"] == 2 for d in out)


@pytest.mark.parametrize("opt,why", [
    ("pmi.kvs=bogus", "pmi.kvs: invalid value 'bogus' (native or exchange)"),
    ("pmi.exchange.k=0", "pmi.exchange: invalid value {'k': 0} (k=N, N >= 1)"),
    ("pmi.bogus=1", "pmi: unknown option 'pmi.bogus' (kvs, exchange.k)"),
])
def test_bad_pmi_tuning_options_fail_the_job_by_name(one, opt, why):
    r = one.flux("run", "-o", opt, "true", timeout=60)
    assert r.returncode == 1
    assert why in r.stderr


def test_pmi_off(one):
    r = one.flux("run", "-o", "pmi=off", "sh", "-c", "echo ${PMI_FD:-none}")
    assert r.stdout == "none\n"


KVSNAME = ("import sys\n"
           f"sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))!r})\n"
           "from broker.pmi_client import PmiClient\n"
           "c = PmiClient.from_environ()\n"
           "c.init()\n"
           "print(c.get_kvsname(), flush=True)\n")


def test_the_kvsname_is_the_job_id_and_a_token_the_same_on_every_rank(two):
    r = two.flux("run", "-N2", "-n2", sys.executable, "-c", KVSNAME, timeout=120)
    assert r.returncode == 0, r.stderr
    names = r.stdout.split()
    assert len(names) == 2 and names[0] == names[1]
    job, _sep, token = names[0].partition("-")
    assert job.isdigit() and len(token) == 8 and all(c in "0123456789abcdef" for c in token)


def test_two_jobs_of_the_same_id_run_mpi_at_once(tmp_path):
    # what two instances' jobs of equal ids did: MPICH's shared memory is named after
    # the kvsname, and both failed in MPI_Init when it was the bare job id
    from flux.job import JobspecV1

    spec = JobspecV1.from_command([sys.executable, "-c", PROGRAM], num_tasks=2)
    spec.cwd = str(tmp_path)
    spec.environment = dict(os.environ)
    spec.setattr_shell_option("cpu-affinity", "off")
    # every one job ƒ2: the same id, as two instances' jobs can have
    procs = [run_standalone(tmp_path, spec, "ƒ2", wait=False) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        # (standalone, the tasks' output is passed through as it comes, not by line)
        assert out.count('"size": 2, "sum": 3') == 2, out
