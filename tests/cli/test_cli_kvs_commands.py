"""flux kvs: every subcommand and option on a real instance (flux-kvs(1))."""
from __future__ import annotations

import base64
import os

import orjson
import pytest

from broker.testing import TestInstance


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    assert inst.stop() == 0


@pytest.fixture
def kvs(inst):
    def run(*args: str, input: str | None = None, env: dict | None = None):
        return inst.flux("kvs", *args, input=input, env=env)
    return run


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fails(proc, code: int = 1) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc.stderr


# -- put / get ------------------------------------------------------------------------


def test_put_get_newline_and_label(kvs):
    ok(kvs("put", "pg.a=hello", "pg.b=2", "pg.empty="))
    assert ok(kvs("get", "pg.a", "pg.b")) == "hello\n2\n"
    assert ok(kvs("get", "-l", "pg.a")) == "pg.a=hello\n"
    assert ok(kvs("get", "pg.empty")) == ""  # no newline for an empty value


def test_put_overwrites(kvs):
    ok(kvs("put", "pg.ow=1"))
    ok(kvs("put", "pg.ow=2"))
    assert ok(kvs("get", "pg.ow")) == "2\n"


def test_get_raw_has_no_newline(kvs):
    ok(kvs("put", "pg.raw=abc"))
    assert ok(kvs("get", "-r", "pg.raw")) == "abc"


def test_put_raw_from_stdin_keeps_nul(inst):
    proc = inst.flux("kvs", "put", "-r", "pg.nul=-", input="a\0b")
    assert proc.returncode == 0, proc.stderr
    import subprocess
    from broker.testing import flux_command
    out = subprocess.run(flux_command() + ["kvs", "get", "-r", "pg.nul"], env=inst.env,
                         capture_output=True)
    assert out.stdout == b"a\0b"


def test_get_treeobj(kvs):
    ok(kvs("put", "pg.t=42"))
    obj = orjson.loads(ok(kvs("get", "-t", "pg.t")))
    assert obj == {"ver": 1, "type": "val", "data": base64.b64encode(b"42").decode()}


def test_put_treeobj_from_arg_and_stdin(kvs):
    tobj = '{"ver":1,"type":"val","data":"aGk="}'
    ok(kvs("put", "-t", f"pg.tobj={tobj}"))
    assert ok(kvs("get", "pg.tobj")) == "hi\n"
    ok(kvs("put", "-t", "pg.tobj2=-", input='{"ver":1,"type":"dir","data":{}}'))
    assert ok(kvs("ls", "pg.tobj2")) == ""


def test_put_bad_treeobj_json_names_key(kvs):
    err = fails(kvs("put", "-t", "pg.bad={not json"))
    assert err.startswith("flux-kvs: pg.bad: invalid treeobj JSON")
    err = fails(kvs("put", "-t", 'pg.bad={"ver":7,"type":"val","data":""}'))
    assert "pg.bad" in err and "ver" in err


def test_put_without_equals(kvs):
    assert "key=value" in fails(kvs("put", "pg.noeq"))


def test_put_append(kvs):
    ok(kvs("put", "pg.app=a"))
    ok(kvs("put", "-A", "pg.app=b"))
    ok(kvs("put", "-A", "-r", "pg.app=c"))
    assert ok(kvs("get", "pg.app")) == "abc\n"


def test_put_sequence_and_treeobj_root(kvs):
    seq = int(ok(kvs("put", "-s", "pg.seq=1")))
    assert int(ok(kvs("version"))) == seq
    root = orjson.loads(ok(kvs("put", "-O", "pg.seq=2")))
    assert root["type"] == "dirref"
    assert orjson.loads(ok(kvs("getroot"))) == root


def test_put_no_merge(kvs):
    before = int(ok(kvs("version")))
    after = int(ok(kvs("put", "-n", "-s", "pg.nm=1")))
    assert after == before + 1


def test_get_at_snapshot(kvs):
    ok(kvs("put", "pg.snap=old"))
    root = ok(kvs("getroot")).strip()
    ok(kvs("put", "pg.snap=new"))
    assert ok(kvs("get", "-a", root, "pg.snap")) == "old\n"
    err = fails(kvs("get", "-a", "{bad", "pg.snap"))
    assert "--at" in err and "invalid treeobj JSON" in err


def test_get_missing_key(kvs):
    assert fails(kvs("get", "pg.missing")) == \
        "flux-kvs: pg.missing: No such file or directory\n"


def test_get_directory_is_eisdir(kvs):
    ok(kvs("put", "pg.dir.x=1"))
    assert fails(kvs("get", "pg.dir")) == "flux-kvs: pg.dir: Is a directory\n"


def test_get_bad_key_names_problem(kvs):
    err = fails(kvs("get", "pg.\x01bad"))
    assert err.startswith("flux-kvs: pg.\x01bad: ") and "control character" in err


def test_get_unknown_namespace(kvs):
    assert fails(kvs("get", "-N", "nosuchns", "k")) == \
        "flux-kvs: k: Operation not supported\n"


def test_get_usage_errors_exit_2(kvs):
    fails(kvs("get"), 2)
    fails(kvs("get", "-r", "-t", "x"), 2)
    fails(kvs("get", "-u", "x"), 2)
    fails(kvs("get", "-c", "-1", "x"), 2)
    fails(kvs("frobnicate"), 2)


def test_get_waitcreate_existing_key_returns_at_once(kvs):
    ok(kvs("put", "pg.wc=here"))
    assert ok(kvs("get", "-W", "pg.wc")) == "here\n"


# -- namespaces -------------------------------------------------------------------------


def test_namespace_create_list_remove(kvs):
    ok(kvs("namespace", "create", "cns1", "cns2"))
    ok(kvs("namespace", "create", "-o", "4242", "cns3"))
    out = ok(kvs("namespace", "list")).splitlines()
    assert out[0] == "NAMESPACE                                 OWNER      FLAGS"
    rows = {line.split()[0]: line for line in out[1:]}
    assert rows["cns3"] == f"{'cns3':<36} {4242:>10} 0x00000000"
    assert rows["cns1"].split()[1] == str(os.getuid())
    assert fails(kvs("namespace", "create", "cns1")) == "flux-kvs: cns1: File exists\n"
    ok(kvs("put", "-N", "cns1", "k=v"))
    assert ok(kvs("get", "-N", "cns1", "k")) == "v\n"
    assert fails(kvs("get", "k")).endswith("No such file or directory\n")
    ok(kvs("namespace", "remove", "cns1", "cns2", "cns3"))
    assert "cns1" not in ok(kvs("namespace", "list"))
    assert "cns1" in fails(kvs("namespace", "remove", "cns1"))


def test_namespace_from_environment(kvs, inst):
    ok(kvs("namespace", "create", "envns"))
    ok(kvs("put", "ek=1", env={"FLUX_KVS_NAMESPACE": "envns"}))
    assert ok(kvs("get", "-N", "envns", "ek")) == "1\n"
    fails(kvs("get", "ek"))


def test_namespace_bad_name_and_usage(kvs):
    assert "invalid namespace name" in fails(kvs("namespace", "create", "bad/name"))
    fails(kvs("namespace", "create"), 2)
    fails(kvs("namespace", "create", "-o", "notanint", "x"), 2)


# -- ls / dir ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(inst):
    out = inst.flux("kvs", "put", "ls.a=1", "ls.bb=22", "ls.sub.x=hello", "ls.sub.deep.y=2",
                    "ls.long=" + "v" * 200, "ls.multi=line1\nline2")
    assert out.returncode == 0, out.stderr
    assert inst.flux("kvs", "link", "ls.a", "ls.lnk").returncode == 0
    assert inst.flux("kvs", "link", "ls.sub", "ls.dirlnk").returncode == 0
    assert inst.flux("kvs", "mkdir", "ls.empty").returncode == 0


def test_ls_columns_and_one_column(kvs, tree):
    out = ok(kvs("ls", "-w", "80", "ls"))
    names = ["a", "bb", "dirlnk", "empty", "lnk", "long", "multi", "sub"]
    colw = max(map(len, names)) + 4
    expect = "".join(n.ljust(colw) for n in names[:-1]) + names[-1] + "\n"
    assert out == expect
    assert ok(kvs("ls", "-1", "ls")) == "\n".join(names) + "\n"
    narrow = ok(kvs("ls", "-w", "25", "ls")).splitlines()
    assert narrow[0] == "a".ljust(colw) + "bb"
    assert len(narrow) == 4


def test_ls_classify(kvs, tree):
    out = ok(kvs("ls", "-1", "-F", "ls")).split()
    assert "sub." in out and "empty." in out and "lnk@" in out and "a" in out


def test_ls_recursive_labels(kvs, tree):
    out = ok(kvs("ls", "-R", "-1", "ls.sub"))
    assert out == "ls.sub:\ndeep\nx\n\nls.sub.deep:\ny\n"


def test_ls_directory_and_values(kvs, tree):
    assert ok(kvs("ls", "-d", "ls.sub")) == "ls.sub\n"
    assert ok(kvs("ls", "-d", "-F", "ls.sub")) == "ls.sub.\n"
    assert ok(kvs("ls", "ls.a")) == "ls.a\n"
    out = ok(kvs("ls", "-1", "ls.a", "ls.sub"))
    assert out == "ls.a\n\nls.sub:\ndeep\nx\n"


def test_ls_symlink_to_dir_lists_contents(kvs, tree):
    assert ok(kvs("ls", "-1", "ls.dirlnk")) == "deep\nx\n"
    assert ok(kvs("ls", "-F", "ls.dirlnk")) == "ls.dirlnk@\n"


def test_ls_errors(kvs, tree):
    proc = kvs("ls", "ls.nope", "ls.a")
    assert proc.returncode == 1
    assert proc.stderr == "ls.nope: No such file or directory\n"
    assert proc.stdout == "ls.a\n"
    assert fails(kvs("ls", "ls.a.")) == "ls.a: Not a directory\n"


def test_ls_root_default(kvs, tree):
    assert "ls" in ok(kvs("ls", "-1")).split()


def test_dir_values_and_width(kvs, tree):
    out = ok(kvs("dir", "-w", "0", "ls")).splitlines()
    assert "ls.a = 1" in out and "ls.bb = 22" in out
    assert "ls.sub." in out and "ls.empty." in out
    assert "ls.lnk -> ls.a" in out
    assert f"ls.long = {'v' * 200}" in out
    cut = ok(kvs("dir", "-w", "30", "ls")).splitlines()
    longline = [line for line in cut if line.startswith("ls.long")][0]
    assert longline == ("ls.long = " + "v" * 200)[:27] + "..."
    multi = [line for line in cut if line.startswith("ls.multi")][0]
    assert multi == "ls.multi = line1..."


def test_dir_recursive_and_keys_only(kvs, tree):
    out = ok(kvs("dir", "-R", "-w", "0", "ls.sub")).splitlines()
    assert out == ["ls.sub.deep.y = 2", "ls.sub.x = hello"]
    assert ok(kvs("dir", "-R", "-d", "ls.sub")).splitlines() == ["ls.sub.deep.y", "ls.sub.x"]
    assert ok(kvs("dir", "-R", "ls.empty")) == ""


def test_dir_at_snapshot(kvs, tree):
    root = ok(kvs("getroot")).strip()
    ok(kvs("put", "ls.sub.x=changed"))
    assert "ls.sub.x = hello" in ok(kvs("dir", "-a", root, "ls.sub"))
    ok(kvs("put", "ls.sub.x=hello"))


def test_dir_errors(kvs, tree):
    assert fails(kvs("dir", "ls.a")) == "flux-kvs: ls.a: Not a directory\n"
    assert fails(kvs("dir", "ls.nope")) == "flux-kvs: ls.nope: No such file or directory\n"
    fails(kvs("dir", "a", "b"), 2)


# -- unlink, link, readlink, mkdir ----------------------------------------------------


def test_unlink_value_and_force(kvs):
    ok(kvs("put", "ul.a=1", "ul.b=2"))
    ok(kvs("unlink", "ul.a"))
    fails(kvs("get", "ul.a"))
    assert fails(kvs("unlink", "ul.a")) == \
        "flux-kvs: cannot unlink 'ul.a': No such file or directory\n"
    ok(kvs("unlink", "-f", "ul.a", "ul.b"))
    fails(kvs("get", "ul.b"))


def test_unlink_directory_needs_recursive(kvs):
    ok(kvs("put", "ul.d.x=1"))
    assert fails(kvs("unlink", "ul.d")) == \
        "flux-kvs: cannot unlink 'ul.d': Directory not empty\n"
    ok(kvs("unlink", "-R", "ul.d"))
    fails(kvs("get", "ul.d.x"))
    ok(kvs("mkdir", "ul.e"))
    ok(kvs("unlink", "ul.e"))  # an empty directory goes without -R


def test_unlink_sequence_output(kvs):
    ok(kvs("put", "ul.s=1"))
    seq = int(ok(kvs("unlink", "-s", "ul.s")))
    assert seq == int(ok(kvs("version")))
    ok(kvs("put", "ul.o=1"))
    assert orjson.loads(ok(kvs("unlink", "-O", "ul.o")))["type"] == "dirref"
    fails(kvs("unlink", "-O", "-s", "ul.o"), 2)


def test_link_readlink(kvs):
    ok(kvs("put", "lk.target=T"))
    ok(kvs("link", "lk.target", "lk.l1"))
    assert ok(kvs("get", "lk.l1")) == "T\n"
    assert ok(kvs("readlink", "lk.l1")) == "lk.target\n"
    ok(kvs("link", "lk.nowhere", "lk.l1"))  # target need not exist; overwrites
    assert ok(kvs("readlink", "lk.l1")) == "lk.nowhere\n"
    assert fails(kvs("readlink", "lk.target")) == "flux-kvs: lk.target: not a symlink\n"


def test_link_across_namespaces(kvs):
    ok(kvs("namespace", "create", "lkns"))
    ok(kvs("put", "-N", "lkns", "there=X"))
    seq = ok(kvs("link", "-s", "-T", "lkns", "there", "lk.cross"))
    assert int(seq) == int(ok(kvs("version")))
    assert ok(kvs("readlink", "lk.cross")) == "lkns::there\n"
    assert ok(kvs("readlink", "-o", "lk.cross")) == "lkns\n"
    assert ok(kvs("readlink", "-k", "lk.cross")) == "there\n"
    assert ok(kvs("get", "lk.cross")) == "X\n"
    fails(kvs("readlink", "-o", "-k", "lk.cross"), 2)
    fails(kvs("link", "only-one"), 2)


def test_readlink_at_snapshot(kvs):
    ok(kvs("link", "lk.first", "lk.snap"))
    root = ok(kvs("getroot")).strip()
    ok(kvs("link", "lk.second", "lk.snap"))
    assert ok(kvs("readlink", "-a", root, "lk.snap")) == "lk.first\n"


def test_mkdir_overwrites_and_outputs(kvs):
    ok(kvs("put", "mk.a=1"))
    seq = int(ok(kvs("mkdir", "-s", "mk.a", "mk.b")))
    assert ok(kvs("ls", "mk.a")) == "" and seq == int(ok(kvs("version")))
    assert orjson.loads(ok(kvs("mkdir", "-O", "mk.c")))["type"] == "dirref"


# -- copy, move ---------------------------------------------------------------------------


def test_copy_and_move(kvs):
    ok(kvs("put", "cp.src.x=1", "cp.val=v"))
    ok(kvs("copy", "cp.src", "cp.dst"))
    assert ok(kvs("get", "cp.dst.x")) == "1\n"
    ok(kvs("put", "cp.dst.x=2"))
    assert ok(kvs("get", "cp.src.x")) == "1\n"  # independent copies
    ok(kvs("move", "cp.val", "cp.moved"))
    assert ok(kvs("get", "cp.moved")) == "v\n"
    fails(kvs("get", "cp.val"))
    assert fails(kvs("copy", "cp.none", "cp.x")) == \
        "flux-kvs: cp.none: No such file or directory\n"
    fails(kvs("copy", "cp.src"), 2)


def test_copy_move_across_namespaces(kvs):
    ok(kvs("namespace", "create", "cpns"))
    ok(kvs("put", "cp.cross=c"))
    ok(kvs("copy", "-D", "cpns", "cp.cross", "got"))
    assert ok(kvs("get", "-N", "cpns", "got")) == "c\n"
    ok(kvs("move", "-S", "cpns", "got", "cp.back"))
    assert ok(kvs("get", "cp.back")) == "c\n"
    fails(kvs("get", "-N", "cpns", "got"))


# -- dropcache, version, wait, getroot --------------------------------------------------


def test_dropcache(kvs):
    ok(kvs("dropcache"))
    ok(kvs("dropcache", "--all"))
    ok(kvs("put", "dc=1"))
    assert ok(kvs("get", "dc")) == "1\n"


def test_version_and_wait(kvs, inst):
    v = int(ok(kvs("version")))
    ok(kvs("wait", str(v)))
    import subprocess
    from broker.testing import flux_command
    waiter = subprocess.Popen(flux_command() + ["kvs", "wait", str(v + 1)], env=inst.env)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiter.wait(0.3)
        ok(kvs("put", "wv=1"))
        assert waiter.wait(10) == 0
    finally:
        waiter.kill()
    fails(kvs("wait"), 2)
    fails(kvs("wait", "x"), 2)


def test_version_namespace(kvs):
    ok(kvs("namespace", "create", "verns"))
    assert ok(kvs("version", "-N", "verns")) == "0\n"
    ok(kvs("put", "-N", "verns", "a=1"))
    assert ok(kvs("version", "-N", "verns")) == "1\n"
    fails(kvs("version", "-N", "no-such"))


def test_getroot_options(kvs):
    root = orjson.loads(ok(kvs("getroot")))
    assert root["type"] == "dirref" and root["data"][0].startswith("blake3-")
    assert ok(kvs("getroot", "-b")).strip() == root["data"][0]
    assert int(ok(kvs("getroot", "-s"))) == int(ok(kvs("version")))
    assert int(ok(kvs("getroot", "-o"))) == os.getuid()
    fails(kvs("getroot", "-s", "-o"), 2)
    assert fails(kvs("getroot", "-N", "no-such")) == \
        "flux-kvs: namespace 'no-such' does not exist\n"


# -- eventlogs ------------------------------------------------------------------------------


def test_eventlog_append_get_formats(kvs):
    ok(kvs("eventlog", "append", "-t", "1738774194.078433", "el.log", "submit",
           '{"userid":1001,"urgency":16}'))
    ok(kvs("eventlog", "append", "-t", "1738774195.5", "el.log", "alloc"))
    assert ok(kvs("eventlog", "get", "el.log")) == \
        "1738774194.078433 submit userid=1001 urgency=16\n1738774195.500000 alloc\n"
    raw = ok(kvs("eventlog", "get", "-u", "el.log")).splitlines()
    assert orjson.loads(raw[0]) == {"timestamp": 1738774194.078433, "name": "submit",
                                    "context": {"userid": 1001, "urgency": 16}}
    assert ok(kvs("eventlog", "get", "-c", "1", "el.log")).count("\n") == 1
    js = ok(kvs("eventlog", "get", "-f", "json", "el.log")).splitlines()
    assert orjson.loads(js[1]) == {"timestamp": 1738774195.5, "name": "alloc"}
    human = ok(kvs("eventlog", "get", "-H", "el.log")).splitlines()
    assert human[0].startswith("[") and "submit" in human[0]
    assert human[1].startswith("[  +1.421567]")


def test_eventlog_append_default_timestamp_and_context_words(kvs):
    import time
    t0 = time.time()
    ok(kvs("eventlog", "append", "el.now", "ev", '{"a":', "1}"))
    ev = orjson.loads(ok(kvs("eventlog", "get", "-u", "el.now")))
    assert ev["context"] == {"a": 1} and t0 - 1 <= ev["timestamp"] <= time.time() + 1


def test_eventlog_append_bad_input(kvs):
    assert "context" in fails(kvs("eventlog", "append", "el.bad", "ev", "[1,2]"))
    assert "JSON" in fails(kvs("eventlog", "append", "el.bad", "ev", "{nope"))
    assert "timestamp" in fails(kvs("eventlog", "append", "-t", "-5", "el.bad", "ev"))
    fails(kvs("eventlog", "append", "el.bad"), 2)
    fails(kvs("eventlog", "append", "-t", "x", "el.bad", "ev"), 2)


def test_eventlog_get_errors(kvs):
    assert fails(kvs("eventlog", "get", "el.none")) == \
        "flux-kvs: el.none: No such file or directory\n"
    ok(kvs("put", "el.notlog=hello"))
    err = fails(kvs("eventlog", "get", "el.notlog"))
    assert err.startswith("flux-kvs: el.notlog: ") and "torn last line" in err
    ok(kvs("put", "el.badline=nope\n"))
    err = fails(kvs("eventlog", "get", "el.badline"))
    assert err.startswith("flux-kvs: el.badline: ") and "line 1" in err
    fails(kvs("eventlog", "get"), 2)
    fails(kvs("eventlog", "get", "-f", "yaml", "el.log"), 2)


def test_eventlog_wait_event_existing(kvs):
    ok(kvs("eventlog", "append", "-t", "10", "el.w", "a"))
    ok(kvs("eventlog", "append", "-t", "11", "el.w", "b"))
    ok(kvs("eventlog", "append", "-t", "12", "el.w", "c"))
    assert ok(kvs("eventlog", "wait-event", "el.w", "b")) == "  11.000000 b\n"
    assert ok(kvs("eventlog", "wait-event", "-q", "el.w", "b")) == ""
    assert ok(kvs("eventlog", "wait-event", "-v", "el.w", "c")) == \
        "  10.000000 a\n  11.000000 b\n  12.000000 c\n"
    assert orjson.loads(ok(kvs("eventlog", "wait-event", "-u", "el.w", "a")))["name"] == "a"


def test_eventlog_wait_event_timeout_and_missing(kvs):
    ok(kvs("eventlog", "append", "el.w2", "a"))
    assert fails(kvs("eventlog", "wait-event", "-t", "0.2", "el.w2", "never")) == \
        "flux-kvs: wait-event timeout on event 'never'\n"
    assert fails(kvs("eventlog", "wait-event", "el.missing", "x")) == \
        "flux-kvs: eventlog path el.missing not found\n"
    fails(kvs("eventlog", "wait-event", "-t", "soon", "el.w2", "a"), 2)
    fails(kvs("eventlog", "wait-event", "el.w2"), 2)


def test_no_instance_is_a_clear_error(inst):
    env = {k: v for k, v in inst.env.items() if k != "FLUX_URI"}
    import subprocess
    from broker.testing import flux_command
    proc = subprocess.run(flux_command() + ["kvs", "get", "a"], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "FLUX_URI" in proc.stderr


@pytest.mark.parametrize("args", [
    ("put", "bad\x01key=1"),
    ("mkdir", "bad\x01key"),
    ("link", "target", "bad\x01key"),
    ("unlink", "bad\x01key"),
    ("readlink", "bad\x01key"),
    ("dir", "bad\x01key"),
    ("eventlog", "append", "bad\x01key", "ev"),
    ("eventlog", "get", "bad\x01key"),
    ("copy", "bad\x01key", "dst"),
])
def test_bad_key_is_refused_naming_it(kvs, args):
    err = fails(kvs(*args))
    assert err.startswith("flux-kvs: ") and "bad\x01key" in err and "control character" in err
