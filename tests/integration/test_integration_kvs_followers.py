"""``content``, ``kvs`` and ``kvs-watch`` on ranks > 0 (kvs/follower.py).

flux-ping(1): ``flux ping 4!kvs`` pings the kvs service on rank 4.  The
data stay on rank 0; a follower answers ``ping`` and sends every other
request on with the sender's route and credentials.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from broker.testing import TestInstance
from tests.helpers.live import _GUEST, _PRELOAD


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)  # readable by a guest's commands
    (conf / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    i = TestInstance(size=3, config_path=str(conf)).start()
    yield i
    i.stop()


def _on_rank(inst: TestInstance, rank: int) -> dict[str, str]:
    return {"FLUX_URI": "local://" + os.path.join(inst.rundir, str(rank), "local")}


def test_flux_ping_reaches_the_kvs_services_of_a_follower(inst):
    for target, rank in (("1!kvs", 1), ("2!kvs-watch", 2), ("2!content", 2)):
        r = inst.flux("ping", "-c", "1", target)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"{target}.ping pad=0 seq=0")
        assert f"!{rank}!" in r.stdout            # answered on that rank, not rank 0
    listed = inst.flux("module", "list", "-r", "1").stdout.split()
    assert {"content", "kvs", "kvs-watch"} <= set(listed)
    assert "content" not in inst.flux("module", "list", "-r", "0").stdout.split("\n")[0]


def test_kvs_requests_on_a_follower_are_served_by_rank_0(inst):
    r1, r2 = _on_rank(inst, 1), _on_rank(inst, 2)
    assert inst.flux("kvs", "put", "follow.a=1", env=r1).returncode == 0
    assert inst.flux("kvs", "get", "follow.a", env=r2).stdout == "1\n"
    assert inst.flux("kvs", "get", "follow.a").stdout == "1\n"
    # a watch from rank 2 sees a change made on rank 0
    watch = subprocess.Popen(["flux", "kvs", "get", "-w", "-c", "2", "follow.a"],
                             env={**inst.env, **r2}, stdout=subprocess.PIPE, text=True)
    try:
        assert watch.stdout is not None and watch.stdout.readline() == "1\n"
        assert inst.flux("kvs", "put", "follow.a=2").returncode == 0
        out, _err = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert out == "2\n" and watch.returncode == 0
    # an error comes back from rank 0 as it is
    r = inst.flux("kvs", "get", "follow.nope", env=r1)
    assert r.returncode == 1 and "No such file or directory" in r.stderr


def test_a_guest_on_a_follower_keeps_its_own_credentials(inst):
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    env = {**inst.env, **_on_rank(inst, 1)}
    r = subprocess.run([sys.executable, "-c", _GUEST, _PRELOAD, "kvs", "put", "guest.x=1"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "guest.x: Operation not permitted" in r.stderr
    assert inst.flux("kvs", "get", "guest.x").returncode == 1
