"""Instances started one after the other on one statedir, for restart tests."""
from __future__ import annotations

import os
from typing import Any, Callable

from broker.testing import TestInstance

#: four cores on one node, two queues, batch the default
CONFIG = """
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node0"
cores = "0-3"
[queues.batch]
[queues.debug]
[policy.jobspec.defaults.system]
queue = "batch"
"""


class Cluster:
    """Instances started one after the other on one statedir (CONFIG plus EXTRA)."""

    def __init__(self, tmp_path: Any, extra: str = "") -> None:
        self.statedir = str(tmp_path / "state")
        os.makedirs(self.statedir)
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "jobs.toml").write_text(CONFIG + extra)
        self.conf = str(conf)
        self.inst: TestInstance | None = None
        self.h: Any = None

    def start(self) -> Any:
        self.inst = TestInstance(setattrs=[f"statedir={self.statedir}"],
                                 config_path=self.conf).start()
        self.h = self.inst.handle()
        return self.h

    def stop(self) -> None:
        self.h.close()
        assert self.inst is not None and self.inst.stop() == 0

    def crash(self) -> None:
        self.h.close()
        assert self.inst is not None
        self.inst.kill()

    def kill_if_running(self) -> None:
        """Teardown: a test that failed may leave its instance up."""
        if self.inst is not None and self.inst.proc is not None and self.inst.proc.poll() is None:
            self.inst.kill()

    def restart_stats(self) -> dict[str, Any]:
        return self.h.rpc("job-manager.stats", {}).get()["restart"]

    def dmesg(self) -> str:
        assert self.inst is not None
        return self.inst.flux("dmesg").stdout

    def write_offline(self, build: Callable[[Any], Any]) -> None:
        """Commit to the stopped instance's store: BUILD(TxnBuilder) adds the ops."""
        from kvs.engine import KVS
        from kvs.offline import open_store, store_path
        from kvs.txn import TxnBuilder

        store = open_store(store_path(self.statedir), write=True)
        try:
            KVS(store).commit_one(build(TxnBuilder()).build())
        finally:
            store.close()
