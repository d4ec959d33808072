"""flux kvs as flux-kvs(1) documents it: the root key, namespaces from a root,
commit outputs, eventlog color, append watches of rewritten values, and guests
kept to their own namespaces (flux-core's lookup checks where a symlink leads)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson
import pytest

from broker.testing import TestInstance, flux_command
from helpers.live import _PRELOAD, start_instance

GUEST_CONF = "[access]\nallow-guest-user = true\n"


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    inst = start_instance(tmp_path_factory, GUEST_CONF)
    yield inst
    assert inst.stop() == 0


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc.stdout


def fails(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc.stderr


# Python lives under /root, which user nobody cannot read: import what the
# commands need while still root, then drop to nobody (as helpers.live does)
_GUEST = """
import importlib, os, sys
for name in sys.argv[1].split():
    importlib.import_module(name)
os.setgid(65534); os.setuid(65534)
sys.argv = ["flux"] + sys.argv[2:]
from cli.main import main
main()
"""
_KVS_PRELOAD = _PRELOAD + " cli.cmd_kvs kvs.keys kvs.constants eventstore.eventlog binascii"


def guest(inst: TestInstance, *args: str) -> subprocess.CompletedProcess[str]:
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    return subprocess.run([sys.executable, "-c", _GUEST, _KVS_PRELOAD, *args], env=inst.env,
                          capture_output=True, text=True, timeout=60)


# -- the root directory is not a key to write ----------------------------------------


@pytest.mark.parametrize("args", [
    ("put", ".=1"),
    ("put", "..=1"),
    ("put", "-A", "...=x"),
    ("mkdir", "."),
    ("unlink", "-R", "."),
    ("link", "a", "."),
    ("eventlog", "append", ".", "ev"),
])
def test_writing_the_root_says_why(inst, args):
    err = fails(inst.flux("kvs", *args))
    key = next(a for a in args[1:] if a.startswith(".")).partition("=")[0]
    assert err == (f"flux-kvs: {key}: invalid key '{key}': the root directory cannot be "
                   "replaced or removed\n")


# -- namespace create --rootref ---------------------------------------------------


def test_namespace_create_from_a_root(inst):
    ok(inst.flux("kvs", "put", "nsr.a=1", "nsr.b.c=2"))
    blobref = ok(inst.flux("kvs", "getroot", "-b")).strip()
    dirref = ok(inst.flux("kvs", "getroot")).strip()
    ok(inst.flux("kvs", "namespace", "create", "-r", blobref, "nsr1"))
    ok(inst.flux("kvs", "namespace", "create", f"--rootref={dirref}", "nsr2"))
    assert ok(inst.flux("kvs", "get", "-N", "nsr1", "nsr.a")) == "1\n"
    assert ok(inst.flux("kvs", "get", "-N", "nsr2", "nsr.b.c")) == "2\n"
    # a namespace of its own: writes there leave the primary namespace alone
    ok(inst.flux("kvs", "put", "-N", "nsr1", "nsr.a=changed"))
    assert ok(inst.flux("kvs", "get", "nsr.a")) == "1\n"
    assert ok(inst.flux("kvs", "getroot", "-N", "nsr1", "-s")) == "1\n"


def test_namespace_create_refuses_a_bad_root(inst):
    assert "not a blobref" in fails(inst.flux("kvs", "namespace", "create", "-r", "junk", "b1"))
    missing = "blake3-" + "0" * 64
    assert fails(inst.flux("kvs", "namespace", "create", "-r", missing, "b2")) == \
        "flux-kvs: b2: No such file or directory\n"
    blob = ok(inst.flux("content", "store", input="not a directory")).strip()
    assert "not a tree object" in fails(inst.flux("kvs", "namespace", "create", "-r", blob, "b3"))
    names = ok(inst.flux("kvs", "namespace", "list"))
    assert not any(n in names for n in ("b1", "b2", "b3"))


# -- commit output and options of the current man page ------------------------------------


@pytest.mark.parametrize("args", [
    ("put", "-b", "cb.a=1"),
    ("mkdir", "-b", "cb.d"),
    ("link", "-b", "cb.a", "cb.l"),
    ("unlink", "-b", "cb.l"),
])
def test_commit_prints_root_blobref(inst, args):
    out = ok(inst.flux("kvs", *args)).strip()
    assert out.startswith("blake3-")
    # the root the commit made (the instance may have committed again since)
    at = json.dumps({"ver": 1, "type": "dirref", "data": [out]})
    listing = ok(inst.flux("kvs", "dir", "-a", at, "cb"))
    assert ("cb.l" in listing) == (args[0] == "link")


def test_commit_output_options_exclusive(inst):
    assert "--sequence and --blobref" in fails(inst.flux("kvs", "put", "-s", "-b", "cx=1"), 2)


def test_sync_flag_only_in_the_primary_namespace(inst):
    # as flux-core: a sync (checkpointing) commit elsewhere is EINVAL
    ok(inst.flux("kvs", "namespace", "create", "syncns"))
    r = inst.flux("kvs", "put", "-S", "-N", "syncns", "a=1")
    assert r.returncode == 1
    assert "the sync flag is only valid in the primary namespace" in r.stderr
    ok(inst.flux("kvs", "put", "-N", "syncns", "a=1"))


def test_put_sync_and_stream_lookups(inst):
    ok(inst.flux("kvs", "put", "-S", "sy.a=1"))
    assert ok(inst.flux("kvs", "get", "-S", "sy.a")) == "1\n"
    ok(inst.flux("kvs", "eventlog", "append", "sy.log", "ev"))
    assert ok(inst.flux("kvs", "eventlog", "get", "-S", "-u", "sy.log")).count("\n") == 1
    # flux-kvs(1): --stream "will not work in combination with --watch"
    fails(inst.flux("kvs", "get", "-S", "-w", "sy.a"), 2)
    fails(inst.flux("kvs", "eventlog", "get", "-S", "-w", "sy.log"), 2)


# -- eventlogs -----------------------------------------------------------------------------


def test_eventlog_color_value_is_optional(inst):
    ok(inst.flux("kvs", "eventlog", "append", "col.log", "first", '{"a":1}'))
    ok(inst.flux("kvs", "eventlog", "append", "col.log", "second event"))
    # -L without WHEN is "always", and KEY after it stays the key
    out = ok(inst.flux("kvs", "eventlog", "get", "-L", "col.log"))
    assert "\x1b[" in out and "second event" in out
    out = ok(inst.flux("kvs", "eventlog", "get", "-HL", "col.log"))
    assert "\x1b[" in out
    out = ok(inst.flux("kvs", "eventlog", "get", "--color", "col.log"))
    assert "\x1b[" in out
    for never in ("-Lnever", "--color=never"):
        assert "\x1b[" not in ok(inst.flux("kvs", "eventlog", "get", never, "col.log"))
    out = ok(inst.flux("kvs", "eventlog", "wait-event", "-L", "col.log", "second event"))
    assert "\x1b[" in out and out.count("\n") == 1
    fails(inst.flux("kvs", "eventlog", "get", "-Lbogus", "col.log"), 2)


def test_eventlog_append_timestamp_zero_is_now(inst):
    ok(inst.flux("kvs", "eventlog", "append", "-t", "0", "ts.log", "ev"))
    ev = orjson.loads(ok(inst.flux("kvs", "eventlog", "get", "-u", "ts.log")))
    assert ev["timestamp"] > 1e9
    assert "positive" in fails(inst.flux("kvs", "eventlog", "append", "-t", "-1", "ts.log", "ev"))


# -- guests ------------------------------------------------------------------------------


def test_guest_symlink_cannot_read_other_namespaces(inst):
    ok(inst.flux("kvs", "namespace", "create", "-o", "65534", "gsym"))
    ok(inst.flux("kvs", "put", "gsecret.val=1", "gsecret.dir.x=2"))
    ok(guest(inst, "kvs", "link", "-N", "gsym", "-T", "primary", "gsecret.val", "lnk"))
    ok(guest(inst, "kvs", "link", "-N", "gsym", "-T", "primary", "gsecret.dir", "ldir"))
    for args in (("get", "lnk"), ("get", "-W", "lnk"), ("get", "-w", "-c", "1", "lnk"),
                 ("dir", "ldir"), ("get", "ldir.x"), ("eventlog", "get", "lnk")):
        err = fails(guest(inst, "kvs", *args[:-1], "-N", "gsym", args[-1]))
        assert "Operation not permitted" in err, args
    # the link itself is the guest's own
    assert ok(guest(inst, "kvs", "readlink", "-N", "gsym", "lnk")) == "primary::gsecret.val\n"
    # links within the guest's namespace, and the owner's lookups, still work
    ok(guest(inst, "kvs", "put", "-N", "gsym", "mine=5"))
    ok(guest(inst, "kvs", "link", "-N", "gsym", "mine", "own"))
    assert ok(guest(inst, "kvs", "get", "-N", "gsym", "own")) == "5\n"
    assert ok(inst.flux("kvs", "get", "-N", "gsym", "lnk")) == "1\n"


def test_ls_one_column_long_option(inst):
    ok(inst.flux("kvs", "put", "one.alpha=1", "one.beta=2"))
    assert ok(inst.flux("kvs", "ls", "--1", "one")) == "alpha\nbeta\n"
    assert ok(inst.flux("kvs", "ls", "-1", "one")) == "alpha\nbeta\n"


def test_guest_append_watch_stops_at_a_link_into_another_namespace(inst):
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    ok(inst.flux("kvs", "namespace", "create", "-o", "65534", "gapp"))
    ok(inst.flux("kvs", "put", "gappsecret=TOPSECRET"))
    ok(guest(inst, "kvs", "put", "-N", "gapp", "own=X"))
    ok(guest(inst, "kvs", "link", "-N", "gapp", "own", "lnk"))
    watch = subprocess.Popen([sys.executable, "-c", _GUEST, _KVS_PRELOAD, "kvs", "get", "-N",
                              "gapp", "-w", "-A", "lnk"], env=inst.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watch.stdout.readline() == "X\n"
        # relinked into the primary namespace: appends must not be read from there
        ok(guest(inst, "kvs", "link", "-N", "gapp", "-T", "primary", "gappsecret", "lnk"))
        try:
            out, err = watch.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # still watching: whatever it printed is the bug
            watch.kill()
            out, err = watch.communicate()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert "SECRET" not in out
    assert watch.returncode == 1
    assert "Operation not permitted" in err


@pytest.mark.parametrize("rewrite", ["xyzdefg", "vwxyz"])
def test_append_watch_ends_when_a_value_is_rewritten(inst, rewrite):
    key = f"rwa.{rewrite}"
    ok(inst.flux("kvs", "put", f"{key}=abc"))
    cmd = flux_command() + ["kvs", "get", "-w", "-A", key]
    watch = subprocess.Popen(cmd, env=inst.env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        assert watch.stdout.readline() == "abc\n"
        ok(inst.flux("kvs", "put", "-A", f"{key}=+1"))
        assert watch.stdout.readline() == "+1\n"
        # a put that grows (or keeps the size of) the value is no append of it
        ok(inst.flux("kvs", "put", f"{key}={rewrite}"))
        try:
            out, err = watch.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # still watching: what it printed is the bug
            watch.kill()
            out, err = watch.communicate()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert out == ""
    assert watch.returncode == 1
    assert err == f"flux-kvs: {key}: value was rewritten, not appended to\n"


def test_append_watch_ends_when_a_large_value_is_rewritten(inst):
    ok(inst.flux("kvs", "put", "-r", "rwbig=-", input="a" * 200_000))
    cmd = flux_command() + ["kvs", "get", "-w", "-A", "rwbig"]
    watch = subprocess.Popen(cmd, env=inst.env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        assert watch.stdout.readline() == "a" * 200_000 + "\n"
        ok(inst.flux("kvs", "put", "-r", "-A", "rwbig=-", input="+more"))
        assert watch.stdout.readline() == "+more\n"
        ok(inst.flux("kvs", "put", "-r", "rwbig=-", input="b" * 300_000))
        try:
            out, err = watch.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # still watching: what it printed is the bug
            watch.kill()
            out, err = watch.communicate()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert out == ""
    assert watch.returncode == 1
    assert err == "flux-kvs: rwbig: value was rewritten, not appended to\n"
