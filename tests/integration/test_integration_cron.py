"""flux cron (flux-cron(1)) on real instances: each kind of entry runs its command
through rexec, output and failures reach flux dmesg, and entries stop, start,
repeat, time out and are deleted as the man page says."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from broker.testing import TestInstance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    i = TestInstance(size=2).start()
    yield i
    i.stop()


def ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def dump(inst, entry_id: int, key: str) -> str:
    return ok(inst.flux("cron", "dump", f"--key={key}", str(entry_id))).strip()


def entry_ids(inst) -> list[int]:
    return [int(line.split()[0]) for line in ok(inst.flux("cron", "list")).splitlines()[1:]]


def wait_for(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def clean(inst):
    yield
    for entry_id in entry_ids(inst):
        inst.flux("cron", "delete", "--kill", str(entry_id))


def newest(inst) -> int:
    return max(entry_ids(inst))


def test_an_interval_entry_runs_its_command_repeatedly_with_its_output_logged(inst, tmp_path):
    out = tmp_path / "ticks"
    ok(inst.flux("cron", "interval", "-n", "ticker", "0.3s", f"echo tick >> {out}; echo said"))
    e = newest(inst)
    wait_for(lambda: out.exists() and out.read_text().count("tick") >= 3)
    assert int(dump(inst, e, "stats.count")) >= 3
    assert dump(inst, e, "name") == "ticker"
    assert f"cron-{e}[ticker]: said" in ok(inst.flux("dmesg"))
    ok(inst.flux("cron", "stop", str(e)))
    n = out.read_text().count("tick")
    time.sleep(0.8)
    assert out.read_text().count("tick") == n
    line = [ln for ln in ok(inst.flux("cron", "list")).splitlines() if ln.split()[0] == str(e)]
    assert line[0].split()[3] == "S"
    ok(inst.flux("cron", "start", str(e)))
    wait_for(lambda: out.read_text().count("tick") > n)


def test_count_after_and_failures(inst, tmp_path):
    out = tmp_path / "runs"
    ok(inst.flux("cron", "interval", "-c", "2", "-a", "0.1", "0.2", f"echo x >> {out}"))
    e = newest(inst)
    wait_for(lambda: dump(inst, e, "stopped") == "true")
    assert out.read_text().count("x") == 2
    # a failing command is counted, logged, and stop-on-failure=1 stops it after 2
    ok(inst.flux("cron", "interval", "-o", "stop-on-failure=1", "0.2", "exit 3"))
    f = newest(inst)
    wait_for(lambda: dump(inst, f, "stopped") == "true")
    assert dump(inst, f, "stats.failure") == "2"
    assert dump(inst, f, "tasks.0.code") == "3"
    assert f"cron-{f}[interval]: exit 3" in ok(inst.flux("dmesg"))


def test_event_entries_count_events(inst, tmp_path):
    out = tmp_path / "events"
    ok(inst.flux("cron", "event", "--nth=2", "test.cron", f"echo ev >> {out}"))
    e = newest(inst)
    for _ in range(5):
        ok(inst.flux("event", "pub", "test.cron"))
    wait_for(lambda: out.exists() and out.read_text().count("ev") == 2)
    time.sleep(0.3)
    assert out.read_text().count("ev") == 2
    assert dump(inst, e, "typedata.topic") == "test.cron"


def test_at_and_tab_entries(inst, tmp_path):
    out = tmp_path / "at"
    ok(inst.flux("cron", "at", "in 1 second", f"echo once >> {out}"))
    e = newest(inst)
    wait_for(lambda: out.exists())
    time.sleep(0.5)
    assert out.read_text() == "once\n"
    assert dump(inst, e, "stopped") == "true"
    tab = tmp_path / "crontab"
    tab.write_text("# a comment\n\n*/5 * * * * echo five\n0 3 * * 0-6 echo three\n")
    ok(inst.flux("cron", "tab", str(tab)))
    ids = entry_ids(inst)[-2:]
    assert [dump(inst, i, "typedata.crontab") for i in ids] == ["*/5 * * * *", "0 3 * * 0-6"]
    nxt = float(dump(inst, ids[0], "next"))
    assert time.localtime(nxt).tm_min % 5 == 0 and nxt - time.time() <= 300
    r = inst.flux("cron", "tab", input="* * * 12 * echo bad month\n")
    assert r.returncode == 1 and "<stdin>:1: month: '12' is outside 0-11" in r.stderr


def test_rank_timeout_environment_and_directory(inst, tmp_path):
    out = tmp_path / "where"
    ok(inst.flux("cron", "interval", "-c", "1", "-o", "rank=1", "-d", str(tmp_path), "0.1",
                 f"flux getattr rank > {out}; pwd >> {out}; echo $CRONTEST >> {out}"))
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 3)
    assert out.read_text().splitlines()[:2] == ["1", str(tmp_path)]
    assert out.read_text().splitlines()[2] == ""       # the broker's environment
    env_out = tmp_path / "env"
    ok(inst.flux("cron", "interval", "-c", "1", "-E", "0.1", f"echo $CRONTEST > {env_out}",
                 env={"CRONTEST": "mine"}))
    wait_for(lambda: env_out.exists() and env_out.read_text())
    assert env_out.read_text() == "mine\n"
    ok(inst.flux("cron", "interval", "-c", "1", "-o", "timeout=0.3", "0.1", "sleep 30"))
    e = newest(inst)
    wait_for(lambda: dump(inst, e, "tasks.0.state") == "Timeout")
    assert dump(inst, e, "tasks.0.timedout") == "true"


def test_delete_kill_ends_a_running_command(inst, tmp_path):
    ok(inst.flux("cron", "interval", "0.1", f"echo $$ > {tmp_path}/pid; exec sleep 60"))
    e = newest(inst)
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text())
    pid = int((tmp_path / "pid").read_text())
    ok(inst.flux("cron", "delete", "--kill", str(e)))
    wait_for(lambda: not Path(f"/proc/{pid}").exists())
    assert e not in entry_ids(inst)


def test_sync_defers_runs_until_the_event(inst, tmp_path):
    out = tmp_path / "synced"
    assert ok(inst.flux("cron", "sync", "test.sync")).strip() == \
        "cron: sync to test.sync, epsilon=0s"
    try:
        ok(inst.flux("cron", "interval", "-c", "1", "0.1", f"echo run >> {out}"))
        e = newest(inst)
        time.sleep(0.6)
        assert not out.exists()
        assert dump(inst, e, "stats.deferred") == "1"
        ok(inst.flux("event", "pub", "test.sync"))
        wait_for(lambda: out.exists())
    finally:
        assert ok(inst.flux("cron", "sync", "--disable")).strip() == "cron: sync disabled"


def test_errors_and_usage(inst):
    for args, code, text in [
        (["stop", "99"], 1, "cron-99: no such entry"),
        (["delete", "99"], 1, "cron-99: no such entry"),
        (["dump", "99"], 1, "cron-99: no such entry"),
        (["stop", "x"], 2, "invalid cron entry id 'x'"),
        (["interval", "0", "true"], 2, "interval must be greater than 0"),
        (["interval", "1q", "true"], 2, "invalid interval '1q'"),
        (["interval", "1s"], 2, "Missing argument"),
        (["interval", "-o", "rank=5", "1s", "true"], 1, "rank 5 is not in this instance"),
        (["interval", "-o", "bogus=1", "1s", "true"], 2, "unknown option 'bogus'"),
        (["at", "not a time at all", "true"], 2, "not a time at all"),
        (["help", "nope"], 2, "unknown command 'nope'"),
    ]:
        r = inst.flux("cron", *args)
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
    ok(inst.flux("cron", "interval", "1h", "true"))
    e = newest(inst)
    ok(inst.flux("cron", "stop", str(e)))
    r = inst.flux("cron", "stop", str(e))
    assert r.returncode == 1 and "already stopped" in r.stderr
    r = inst.flux("cron", "dump", "--key=nope", str(e))
    assert r.returncode == 1 and "no key 'nope'" in r.stderr
    assert "Usage: flux cron interval" in ok(inst.flux("cron", "help", "interval"))


def test_cron_directory_is_loaded_at_start(tmp_path):
    # the system unit's -Scron.directory: every file there is a crontab; a bad line
    # is logged and the rest still load
    crond = tmp_path / "cron.d"
    crond.mkdir()
    (crond / "a.cron").write_text("# comment\n*/5 * * * * echo five\n0 3 * * * echo three\n")
    (crond / "b.cron").write_text("not a crontab line\n15 * * * * echo quarter\n")
    i = TestInstance(setattrs=[f"cron.directory={crond}"]).start()
    try:
        listing = ok(i.flux("cron", "list"))
        commands = sorted(line.split("echo", 1)[1].strip() for line in listing.splitlines()[1:])
        assert commands == ["five", "quarter", "three"], listing
        assert "b.cron:1" in ok(i.flux("dmesg"))
    finally:
        i.stop()
