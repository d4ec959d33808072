"""Real MPI (MPICH via mpi4py) started by our PMI-1 server, on one or two simulated shells."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from helpers.pmi_launcher import launch

# import without MPI_Init, in a child so the test process loads no MPI library
_CHECK = "import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI"
_probe = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True)
if _probe.returncode != 0:
    pytest.skip("mpi4py cannot import (pip install -e '.[test]' brings mpich and mpi4py): "
                + (_probe.stderr.strip().splitlines() or ["?"])[-1], allow_module_level=True)

PROGRAM = """
import json
from mpi4py import MPI
world = MPI.COMM_WORLD
node = world.Split_type(MPI.COMM_TYPE_SHARED)
total = world.allreduce(world.Get_rank() + 1, op=MPI.SUM)
peers = world.allgather(world.Get_rank())
print(json.dumps({"rank": world.Get_rank(), "size": world.Get_size(), "sum": total,
                  "node_size": node.Get_size(), "peers": peers}))
"""


def run(shells: int):
    result = launch([sys.executable, "-c", PROGRAM], size=4, shells=shells, timeout=90,
                    trace=True)
    assert result.codes == [0, 0, 0, 0], result.describe()
    return result, [json.loads(result.stdout(r)) for r in range(4)]


def test_four_ranks_on_one_shell():
    _result, out = run(shells=1)
    for rank, info in enumerate(out):
        assert info == {"rank": rank, "size": 4, "sum": 10, "node_size": 4,
                        "peers": [0, 1, 2, 3]}


def test_two_plus_two_ranks_on_two_shells_exchange_across_shells():
    result, out = run(shells=2)
    for rank, info in enumerate(out):
        # the process mapping (vector,(0,2,2)) puts ranks 0-1 and 2-3 on two nodes
        assert info == {"rank": rank, "size": 4, "sum": 10, "node_size": 2,
                        "peers": [0, 1, 2, 3]}
    # MPICH published its addresses with puts and read the other node's after a barrier
    assert any(" > cmd=put " in line for line in result.trace)
    assert any(line.startswith("0 > cmd=get") and "-allgather-" in line
               for line in result.trace)


def _mapped_files() -> set[str]:
    out: set[str] = set()
    for maps in glob.glob("/proc/[0-9]*/maps"):
        try:
            with open(maps, encoding="utf-8", errors="replace") as fh:
                out.update(line.split(None, 5)[-1].strip() for line in fh if "/dev/shm/" in line)
        except OSError:
            continue
    return out


@pytest.fixture
def no_leftover_segments():
    """MPICH unlinks its /dev/shm segment at MPI_Finalize: a killed job leaves it behind."""
    before = set(glob.glob("/dev/shm/mpich_shm_*"))
    yield
    in_use = _mapped_files()
    for path in set(glob.glob("/dev/shm/mpich_shm_*")) - before - in_use:
        try:
            os.unlink(path)
        except OSError:
            pass


def test_mpi_abort_reaches_the_abort_callback(no_leftover_segments):
    prog = ("import time\nfrom mpi4py import MPI\n"
            "MPI.COMM_WORLD.Get_rank() == 1 and MPI.COMM_WORLD.Abort(7)\ntime.sleep(60)\n")
    result = launch([sys.executable, "-c", prog], size=3, shells=1, timeout=60)
    assert [(rank, code) for rank, code, _msg in result.aborts] == [(1, 7)]
    assert not result.timed_out
