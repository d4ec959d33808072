"""Crash safety: a writer killed with SIGKILL at random moments loses nothing acknowledged.

Each round starts a writer on the same store; it group-commits batches of
transactions and prints one ACK line per transaction after ``commit``
returns.  The test kills it at a random moment, reopens the store, and
checks every acknowledged transaction, the integrity of every blob
reachable from the root, and that the startlog reports the unclean stop.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from eventstore.store import Store
from kvs.engine import KVS
from kvs.walk import verify_tree

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from eventstore.store import Store
    from kvs.engine import KVS
    from kvs.txn import TxnBuilder

    store = Store(sys.argv[1])
    kvs = KVS(store)
    try:
        n = kvs.get("log").count(b"\\n")
    except OSError:
        n = 0
    print("READY", flush=True)
    while True:
        txns = []
        for i in range(n, n + 5):
            b = TxnBuilder().put(f"k.{i % 97}.v{i}", i).append("log", b"%d\\n" % i)
            b.append(f"logs.l{i % 7}", b"%d " % i)
            txns.append(b.build())
        for i, res in zip(range(n, n + 5), kvs.commit(txns)):
            res.check()
            print(f"ACK {i} {res.sequence}", flush=True)
        n += 5
    """
)


def _round(path: Path, rng: random.Random) -> list[tuple[int, int]]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == b"READY\n", first + proc.stderr.read() if proc.stderr else b""
    time.sleep(rng.uniform(0.0, 0.25))
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    acks = []
    for line in out.split(b"\n")[:-1]:  # a torn last line is not an acknowledgement
        _, i, seq = line.split()
        acks.append((int(i), int(seq)))
    return acks


def test_sigkill_loses_no_acknowledged_commit(tmp_path: Path) -> None:
    path = tmp_path / "store"
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1234")))
    acked: list[tuple[int, int]] = []
    rounds = 25
    for r in range(rounds):
        acked += _round(path, rng)
        with Store(path, readonly=True) as store:
            assert store.unclean, f"round {r}: startlog does not report the unclean stop"
            log = store.startlog()
            assert not log[-1].clean
        with Store(path, durability="none") as store:
            kvs = KVS(store)
            root = kvs.getroot()
            if acked:
                assert root.sequence >= acked[-1][1]
            lines = kvs.get("log").split(b"\n")[:-1] if root.sequence else []
            # whole batches only, in order (a batch committed but killed before its
            # ACKs were printed is there too), and every acknowledged one among them
            assert [int(x) for x in lines] == list(range(len(lines)))
            assert len(lines) % 5 == 0
            assert not acked or acked[-1][0] < len(lines)
            for i, _ in acked[-20:]:
                assert kvs.get_json(f"k.{i % 97}.v{i}") == i
            with store.reader() as rd:
                check = verify_tree(rd.load, root.rootref)
            assert check.dirs >= 1
    assert len(acked) > 0, "the writer never acknowledged a commit"
    with Store(path, readonly=True) as store:
        log = store.startlog()
        assert sum(1 for rec in log if not rec.clean) == rounds
