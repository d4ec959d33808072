"""flux dump / flux restore / flux fsck and content.dump / content.restore on real instances."""
from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from broker.testing import TestInstance, flux_command

CONFIG = """
[exec]
test = true
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node0"
cores = "0-3"
"""


def conf_dir(tmp_path: Path) -> str:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "test.toml").write_text(CONFIG)
    return str(conf)


def start(tmp_path: Path, statedir: Path, *setattrs: str) -> TestInstance:
    return TestInstance(setattrs=[f"statedir={statedir}", *setattrs],
                        config_path=conf_dir(tmp_path)).start()


def ok(inst: TestInstance, *args: str) -> str:
    proc = inst.flux(*args)
    assert proc.returncode == 0, (args, proc.stderr)
    return proc.stdout


def offline(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`flux ARGS` with no instance to talk to."""
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    return subprocess.run(flux_command() + list(args), env=env, capture_output=True, text=True,
                          timeout=60, cwd=cwd, check=False)


def run_jobs(inst: TestInstance, n: int) -> list[str]:
    ids = ok(inst, "submit", f"--cc=1-{n}", "true").split()
    for jobid in ids:
        ok(inst, "job", "wait-event", jobid, "clean")
    return ids


def populate(inst: TestInstance) -> list[str]:
    ok(inst, "kvs", "put", "demo.a=1", "demo.b=hello world")
    ok(inst, "kvs", "link", "demo.a", "demo.link")
    big = inst.flux("kvs", "put", "--raw", "demo.big=-", input="x" * 3_000_000)
    assert big.returncode == 0, big.stderr
    return run_jobs(inst, 3)


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_dump_live_then_restore_into_a_new_instance(tmp_path: Path) -> None:
    a = start(tmp_path, tmp_path / "a")
    try:
        ids = populate(a)
        jobs = ok(a, "jobs", "-a", "-n", "-o", "{id} {state} {result}")
        logs = {j: ok(a, "job", "eventlog", j) for j in ids}
        dump = tmp_path / "live.tgz"
        ok(a, "dump", str(dump))
        proc = a.flux("dump", "-")  # stdout: plain ustar
        assert proc.returncode == 0
        ok(a, "dump", "--no-cache", str(tmp_path / "nocache.tar"))
    finally:
        assert a.stop() == 0
    names = members(dump)
    assert names["demo/b"].mode == 0o644 and names["demo/link"].issym()
    assert names["demo/link"].linkname == "demo.a"
    # the job manager may checkpoint between the two dumps
    assert {n for n in members(tmp_path / "nocache.tar") if not n.startswith("checkpoint/")} \
        == {n for n in names if not n.startswith("checkpoint/")}
    for j in ids:
        hexid = ok_id(j)
        assert f"job/{hexid}/eventlog" in names

    restore = offline("restore", "--checkpoint", f"--statedir={tmp_path / 'b'}", str(dump))
    assert restore.returncode == 0, restore.stderr
    assert f"restored {len(names)} keys" in restore.stderr
    b = start(tmp_path, tmp_path / "b")
    try:
        assert ok(b, "jobs", "-a", "-n", "-o", "{id} {state} {result}") == jobs
        for j in ids:
            assert ok(b, "job", "eventlog", j) == logs[j]
        assert ok(b, "kvs", "get", "demo.b", "demo.link") == "hello world\n1\n"
        assert len(ok(b, "kvs", "get", "--raw", "demo.big")) == 3_000_000
        assert ok(b, "kvs", "readlink", "demo.link") == "demo.a\n"
        fsck = b.flux("fsck")
        assert fsck.returncode == 0 and "0 errors" in fsck.stderr
        # new ids keep increasing past the restored ones
        new = run_jobs(b, 1)[0]
        assert int(ok(b, "job", "id", "--to=dec", new)) > max(
            int(ok(b, "job", "id", "--to=dec", j)) for j in ids)
    finally:
        assert b.stop() == 0


def ok_id(jobid: str) -> str:
    from flux.job.JobID import JobID

    return JobID(jobid).dothex.replace(".", "/")


def test_checkpoint_dump_offline_and_in_instance(tmp_path: Path) -> None:
    state = tmp_path / "s"
    inst = start(tmp_path, state)
    try:
        populate(inst)
        ok(inst, "dump", "--checkpoint", str(tmp_path / "inside.tar"))
        # the store cannot be rewritten under a running broker
        busy = offline("restore", "--checkpoint", f"--statedir={state}",
                       str(tmp_path / "inside.tar"))
        assert busy.returncode == 1 and "in use by a running broker" in busy.stderr
        inside = inst.flux("restore", "--checkpoint", str(tmp_path / "inside.tar"))
        assert inside.returncode == 1 and "restore --checkpoint needs it shut down" \
            in inside.stderr
    finally:
        assert inst.stop() == 0
    out = tmp_path / "off.tar.xz"
    proc = offline("dump", "--checkpoint", f"--statedir={state}", str(out))
    assert proc.returncode == 0, proc.stderr
    got = members(out)
    assert "demo/b" in got and any(n.endswith("/eventlog") for n in got)
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    ckpt = subprocess.run(flux_command() + ["dump", "-v", f"--statedir={state}", "-"], env=env,
                          capture_output=True, timeout=60, check=False)
    assert b"demo.b" in ckpt.stderr.splitlines()
    with tarfile.open(fileobj=io.BytesIO(ckpt.stdout), mode="r:") as tar:
        assert set(tar.getnames()) == set(got)
    # the checkpoint's timestamp is every member's mtime
    assert len({m.mtime for m in got.values()}) == 1
    # no instance and no --statedir: a clear error
    none = offline("dump", "--checkpoint", str(tmp_path / "x.tar"))
    assert none.returncode == 1 and "--statedir" in none.stderr
    assert not (tmp_path / "x.tar").exists()


def test_restore_to_a_key_of_a_running_instance(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a/b", b"one"), ("a/c/d", b"\x00\xff binary"), ("e", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("l")
        link.type, link.linkname = tarfile.SYMTYPE, "ns1::x.y"
        tar.addfile(link)
    (tmp_path / "in.tar").write_bytes(buf.getvalue())
    inst = TestInstance().start()
    try:
        ok(inst, "kvs", "put", "restored.old=gone")
        proc = inst.flux("restore", "-v", "--key=restored", str(tmp_path / "in.tar"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines()[:4] == ["a.b", "a.c.d", "e", "l"]
        assert ok(inst, "kvs", "get", "restored.a.b") == "one\n"
        assert ok(inst, "kvs", "ls", "-1", "restored") == "a\ne\nl\n"
        assert ok(inst, "kvs", "readlink", "restored.l") == "ns1::x.y\n"
        # from standard input, and the scratch namespaces are gone
        proc = subprocess.run(flux_command() + ["restore", "-q", "--key=again", "-"],
                              input=buf.getvalue(), env=inst.env, capture_output=True,
                              check=False)
        assert proc.returncode == 0 and proc.stderr == b""
        assert ok(inst, "kvs", "get", "again.a.b") == "one\n"
        assert "restore-" not in ok(inst, "kvs", "namespace", "list")
    finally:
        assert inst.stop() == 0


def test_content_dump_and_restore_auto_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    inst = start(tmp_path, state, "content.dump=auto", "content.restore=auto")
    try:
        ids = populate(inst)
        ok(inst, "kvs", "put", "before=1")
    finally:
        assert inst.stop() == 0
    dumps = sorted(p.name for p in (state / "dump").iterdir())
    assert len(dumps) == 2 and dumps[1] == "RESTORE" and dumps[0].endswith(".tgz")
    assert os.readlink(state / "dump" / "RESTORE") == dumps[0]

    again = start(tmp_path, state, "content.dump=auto", "content.restore=auto")
    try:
        assert not (state / "dump" / "RESTORE").exists()  # consumed
        assert ok(again, "kvs", "get", "before") == "1\n"
        assert sorted(ok(again, "jobs", "-a", "-n", "-o", "{id}").split()) == sorted(ids)
        assert ok(again, "job", "eventlog", ids[0]).count("\n") >= 5
        dmesg = ok(again, "dmesg")
        assert "restoring content from" in dmesg and "restored" in dmesg
        ok(again, "kvs", "put", "after=2")
    finally:
        assert again.stop() == 0
    third = start(tmp_path, state, "content.restore=auto")
    try:
        assert ok(third, "kvs", "get", "before", "after") == "1\n2\n"
    finally:
        assert third.stop() == 0
    # an explicit path in content.dump
    inst = start(tmp_path, state, f"content.dump={tmp_path / 'attr.tar'}")
    try:
        ok(inst, "kvs", "put", "third=3")
    finally:
        assert inst.stop() == 0
    assert {"before", "after", "third"} <= set(members(tmp_path / "attr.tar"))


def test_shutdown_dump_path(tmp_path: Path) -> None:
    inst = start(tmp_path, tmp_path / "s")
    try:
        ok(inst, "kvs", "put", "k=v")
        proc = subprocess.run(flux_command() + ["shutdown", "--dump=out.tgz"], env=inst.env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        assert "dumped" in proc.stderr
        assert inst.wait() == 0
    finally:
        inst.stop()
    assert "k" in members(tmp_path / "out.tgz")


def test_restore_failure_at_start_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.tar").write_text("not a tar\n" * 100)
    inst = TestInstance(setattrs=[f"statedir={tmp_path / 's'}",
                                  f"content.restore={tmp_path / 'bad.tar'}"])
    with pytest.raises(RuntimeError, match="content.restore: .*bad.tar: not a tar archive"):
        inst.start()


def damage_store(statedir: Path, key: str, how: str) -> str:
    """Delete or corrupt a blob of KEY in a stopped instance's store (Store API only)."""
    from eventstore import blobref
    from eventstore.store import Store
    from kvs.engine import KVS
    from kvs.walk import reachable

    with Store(statedir / "content.lmdb") as store:
        kvs = KVS(store)
        obj = kvs.get_treeobj(key)
        assert obj["type"] in ("valref", "dirref"), obj
        victim = obj["data"][0]
        pins = store.pins().values()
        with store.reader() as rd:
            live = reachable(rd.load, [r.rootref for r in store.roots().values()]
                             + [p.ref for p in pins if p.kind == "tree"])
        live.update(p.ref for p in pins)
        store.gc(live - {victim})
        if how == "corrupt":
            store.commit([(victim, b"garbage" * 10)], verify=False)
        assert blobref.is_blobref(victim)
        return victim


@pytest.mark.parametrize("how", ["delete", "corrupt"])
def test_fsck_finds_damage(tmp_path: Path, how: str) -> None:
    state = tmp_path / "s"
    inst = start(tmp_path, state)
    try:
        ids = populate(inst)
        evkey = "job." + ok_id(ids[0]).replace("/", ".") + ".eventlog"
        proc = inst.flux("kvs", "put", "--raw", "victim=-", input="v" * 5000)
        assert proc.returncode == 0
    finally:
        assert inst.stop() == 0
    clean = offline("fsck", f"--statedir={state}")
    assert clean.returncode == 0, clean.stderr
    victim = damage_store(state, "victim", how)
    what = "missing blob" if how == "delete" else "corrupt blob"
    bad = offline("fsck", f"--statedir={state}")
    assert bad.returncode == 1
    assert f"flux-fsck: victim: {what}" in bad.stderr and victim in bad.stderr
    assert "1 error" in bad.stderr, bad.stderr
    quiet = offline("fsck", "-q", f"--statedir={state}")
    assert quiet.returncode == 1 and quiet.stderr.count("\n") == 1
    # a dump stops at the damage, naming the key, unless told to skip it
    dump = offline("dump", f"--statedir={state}", str(tmp_path / "d.tar"))
    assert dump.returncode == 1 and "victim:" in dump.stderr
    assert not (tmp_path / "d.tar").exists()
    skip = offline("dump", "--ignore-failed-read", f"--statedir={state}",
                   str(tmp_path / "d.tar"))
    assert skip.returncode == 0 and "victim:" in skip.stderr and "skipped" in skip.stderr
    got = members(tmp_path / "d.tar")
    assert "victim" not in got and evkey.replace(".", "/") in got
    # the instance still starts and serves the rest; --repair needs it stopped
    again = start(tmp_path, state)
    try:
        assert again.flux("fsck").returncode == 1
        assert ok(again, "kvs", "get", "demo.b") == "hello world\n"
        busy = again.flux("fsck", "--repair")
        assert busy.returncode == 1 and "needs the KVS unloaded" in busy.stderr
        busy = offline("fsck", "--repair", f"--statedir={state}")
        assert busy.returncode == 1 and "in use by a running broker" in busy.stderr
    finally:
        assert again.stop() == 0
    fixed = offline("fsck", "--repair", f"--statedir={state}")
    assert fixed.returncode == 1  # errors were discovered (and repaired)
    assert "flux-fsck: repaired victim: " in fixed.stderr
    after = offline("fsck", f"--statedir={state}")
    assert after.returncode == 0, after.stderr
    third = start(tmp_path, state)
    try:
        assert third.flux("kvs", "get", "victim").returncode == 1
        assert ok(third, "kvs", "get", "demo.b") == "hello world\n"
        assert len(ok(third, "jobs", "-a", "-n", "-o", "{id}").split()) == len(ids)
    finally:
        assert third.stop() == 0


def test_bad_input(tmp_path: Path) -> None:
    notar = tmp_path / "notar.tar"
    notar.write_text("hello\n" * 200)
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w") as tar:
        info = tarfile.TarInfo("k")
        info.size = 3000
        tar.addfile(info, io.BytesIO(b"x" * 3000))
    trunc = tmp_path / "trunc.tar"
    trunc.write_bytes(good.getvalue()[:2000])
    dotdot = tmp_path / "dotdot.tar"
    with tarfile.open(dotdot, "w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    state = tmp_path / "s"
    inst = start(tmp_path, state)
    try:
        ok(inst, "kvs", "put", "keep=1")
        for path, why in ((notar, "not a tar archive"), (trunc, "truncated archive"),
                          (dotdot, "path contains '..'"),
                          (tmp_path / "missing.tar", "No such file or directory")):
            proc = inst.flux("restore", "--key=x", str(path))
            assert proc.returncode == 1, (path, proc.stderr)
            assert proc.stderr.startswith(f"flux-restore: {path}") and why in proc.stderr
            assert "Traceback" not in proc.stderr
        assert inst.flux("kvs", "get", "x").returncode == 1  # nothing restored
        assert "restore-" not in ok(inst, "kvs", "namespace", "list")
        for args in (["restore", str(notar)],
                     ["restore", "--key=a", "--checkpoint", str(notar)],
                     ["restore", "--key=a", "--size-limit=lots", str(notar)],
                     ["dump"], ["restore"], ["fsck", "-r", "nonsense"],
                     ["fsck", "--bogus"]):
            proc = inst.flux(*args)
            assert proc.returncode == 2, (args, proc.stderr)
        proc = inst.flux("dump", str(tmp_path / "x.zip"))
        assert proc.returncode == 1 and "unknown archive extension" in proc.stderr
        proc = inst.flux("dump", str(tmp_path / "nodir" / "x.tar"))
        assert proc.returncode == 1 and "No such file or directory" in proc.stderr
    finally:
        assert inst.stop() == 0
    # offline: a bad archive into a stopped store leaves it as it was
    proc = offline("restore", "--checkpoint", f"--statedir={state}", str(trunc))
    assert proc.returncode == 1 and "truncated archive" in proc.stderr
    proc = offline("fsck", f"--statedir={tmp_path / 'nowhere'}")
    assert proc.returncode == 1 and "no such directory" in proc.stderr
    again = start(tmp_path, state)
    try:
        assert ok(again, "kvs", "get", "keep") == "1\n"
    finally:
        assert again.stop() == 0


def test_live_dump_is_one_point_in_time_under_commits_and_online_gc(tmp_path: Path) -> None:
    from kvs import treeobj as _t

    inst = start(tmp_path, tmp_path / "s")
    h = inst.handle()
    try:
        def put_all(tag: bytes) -> None:
            ops = [{"key": f"d.k{i}", "flags": 0, "dirent": _t.val(tag * 2000 + b"%d" % i)}
                   for i in range(3000)]
            h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": ops}).get()

        put_all(b"a")
        proc = subprocess.Popen(flux_command() + ["dump", "--maxreqs=1", str(tmp_path / "d.tar")],
                                env=inst.env, stderr=subprocess.PIPE, text=True)
        rounds = 0
        while proc.poll() is None:
            put_all(b"bc"[rounds % 2:rounds % 2 + 1])  # every value replaced, then collected
            h.rpc("content.gc", {"grace": 0}).get()
            rounds += 1
        assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
        assert rounds >= 1
        with tarfile.open(tmp_path / "d.tar") as tar:
            values = {m.name: tar.extractfile(m).read() for m in tar.getmembers()
                      if m.name.startswith("d/")}
        assert len(values) == 3000
        # one version of every value: the root the dump started from, whichever it was
        tag = values["d/k0"][:1]
        assert all(v == tag * 2000 + k[3:].encode() for k, v in values.items())
        assert h.rpc("content.pins", {}).get()["pins"].keys() <= {"job-manager", "job-list"}
    finally:
        h.close()
        assert inst.stop() == 0
