"""A full disk: the commit fails with ENOSPC, the store stays consistent.

The writer runs in a subprocess whose file size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored) makes LMDB's writes fail as on a full disk.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from eventstore.store import Store
from kvs.engine import KVS
from kvs.txn import TxnBuilder
from kvs.walk import verify_tree

WRITER = textwrap.dedent(
    """
    import errno, os, resource, signal, sys
    from eventstore.store import Store
    from kvs.engine import KVS
    from kvs.txn import TxnBuilder
    from flux.errors import FluxError

    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = Store(path)
    kvs = KVS(store)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    i = 0
    while True:
        txn = TxnBuilder().put(f"data.k{i % 300}", os.urandom(3000).hex()).append("log", b"event %d\\n" % i)
        try:
            res = kvs.commit_one(txn.build())
        except FluxError as e:
            print(f"ERROR {e.errno} {e}", flush=True)
            # reads still work after the failed commit
            assert kvs.get("log").count(b"\\n") == i
            break
        print(f"ACK {i} {res.sequence}", flush=True)
        i += 1
    """
)


def test_full_disk_gives_enospc_and_keeps_acknowledged_commits(tmp_path: Path) -> None:
    path = tmp_path / "store"
    Store(path).close()
    size = (path / "data.mdb").stat().st_size
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(size + (3 << 20))],
        capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    acks = [line.split() for line in lines if line.startswith("ACK")]
    assert acks, proc.stdout
    err = [line for line in lines if line.startswith("ERROR")]
    assert err and err[0].split()[1] == "28", proc.stdout  # ENOSPC
    assert "disk full" in err[0]
    last_seq = int(acks[-1][2])
    with Store(path) as store:
        kvs = KVS(store)
        root = kvs.getroot()
        assert root.sequence == last_seq
        assert kvs.get("log").count(b"\n") == len(acks)
        with store.reader() as rd:
            verify_tree(rd.load, root.rootref)
        # and the store takes new commits once there is room again
        kvs.commit_one(TxnBuilder().append("log", b"after\n").build())
