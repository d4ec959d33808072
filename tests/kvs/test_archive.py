"""KVS trees to and from tar archives (kvs/archive.py, specs/dump-restore.md)."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.store import Store
from flux.errors import FluxError
from kvs import archive
from kvs.archive import ArchiveWriter, Entry, key_of_member, parse_size, read_archive
from kvs.engine import KVS
from kvs.txn import TxnBuilder

# -- helpers -------------------------------------------------------------------------------


def entries_of(store: Store, rootref: str | None = None) -> list[Entry]:
    ref = rootref or store.root("primary").rootref
    with store.reader() as rd:
        return list(archive.walk(archive.store_loader(rd), ref))


def dump(store: Store, path: str, mtime: float = 1_700_000_000.0) -> int:
    out = ArchiveWriter(path, mtime=mtime)
    n = archive.dump_store(store, out, store.root("primary").rootref)
    out.close()
    return n


def put_tree(kvs: KVS, tree: dict) -> None:
    b = TxnBuilder()

    def add(prefix: str, node: dict) -> None:
        for name, v in node.items():
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(v, dict):
                if v:
                    add(key, v)
                else:
                    b.mkdir(key)
            elif isinstance(v, tuple):
                b.symlink(key, v[0], v[1])
            else:
                b.put_raw(key, v)

    add("", tree)
    if b.ops:
        kvs.commit_one(b.build())


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for name, v in tree.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(v, dict):
            out.update(leaves(v, key))
        else:
            out[key] = v
    return out


def as_dict(entries: list[Entry]) -> dict[str, object]:
    return {e.key: (e.target, e.namespace) if e.is_symlink else e.data for e in entries}


# -- the property: dump then restore gives the same keys and values ---------------------------

_names = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="./"),
                 min_size=1, max_size=12)
_values = st.one_of(st.binary(max_size=64), st.binary(min_size=900, max_size=5000))
_links = st.tuples(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                           max_size=20),
                   st.one_of(st.none(), st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                                              blacklist_characters="/:"),
                                                min_size=1, max_size=8)))
_trees = st.recursive(st.dictionaries(_names, st.one_of(_values, _links), max_size=4),
                      lambda sub: st.dictionaries(_names, st.one_of(_values, _links, sub),
                                                  max_size=6),
                      max_leaves=40)


@settings(max_examples=60)
@given(tree=_trees, gz=st.booleans())
def test_dump_restore_round_trip(tree: dict, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # a small blob limit: values span several blobs, so valrefs are split and joined
        src = Store(os.path.join(tmp, "src"), durability="none", blob_size_limit=2048)
        put_tree(KVS(src), tree)
        path = os.path.join(tmp, "dump.tgz" if gz else "dump.tar")
        want = leaves(tree)
        assert dump(src, path) == len(want)
        dst = Store(os.path.join(tmp, "dst"), durability="none")
        _ref, count = archive.restore_checkpoint(dst, read_archive(path))
        assert count == len(want)
        got = as_dict(entries_of(dst))
        assert got == want  # empty directories are not kept (flux-dump(1))
        assert as_dict(entries_of(src)) == want
        src.close()
        dst.close()


# -- the archive format -----------------------------------------------------------------------------


def test_members_are_flux_shaped(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as s:
        kvs = KVS(s)
        kvs.commit_one(TxnBuilder().put_raw("job.0000.0004.b200.0000.eventlog", b"ev\n")
                       .symlink("lnk", "a.b").symlink("other", "x.y", "ns1")
                       .mkdir("empty").put_raw("z", b"").build())
        path = str(tmp_path / "d.tar")
        dump(s, path, mtime=1_600_000_000.5)
    with tarfile.open(path) as tar:
        assert tar.format == tarfile.USTAR_FORMAT or tar.pax_headers == {}
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["job/0000/0004/b200/0000/eventlog", "lnk", "other", "z"]
        ev = members["job/0000/0004/b200/0000/eventlog"]
        assert ev.isreg() and ev.mode == 0o644 and ev.mtime == 1_600_000_000
        assert ev.uid == os.getuid() and ev.gid == os.getgid()
        assert tar.extractfile(ev).read() == b"ev\n"
        assert members["lnk"].issym() and members["lnk"].linkname == "a.b"
        assert members["other"].linkname == "ns1::x.y"
        assert members["z"].size == 0
    raw = Path(path).read_bytes()
    assert raw[257:263] == b"ustar\x00"  # plain ustar headers


@pytest.mark.parametrize("ext,magic", [(".tgz", b"\x1f\x8b"), (".tar.gz", b"\x1f\x8b"),
                                       (".tar.bz2", b"BZh"), (".tar.xz", b"\xfd7zXZ")])
def test_compression_by_extension(tmp_path: Path, ext: str, magic: bytes) -> None:
    with Store(tmp_path / "s", durability="none") as s:
        KVS(s).commit_one(TxnBuilder().put_raw("a.b", b"x" * 5000).build())
        path = str(tmp_path / ("d" + ext))
        assert dump(s, path) == 1
    assert Path(path).read_bytes()[:len(magic)] == magic
    assert [(e.key, e.data) for e in read_archive(path)] == [("a.b", b"x" * 5000)]


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FluxError, match="unknown archive extension"):
        ArchiveWriter(str(tmp_path / "d.zip"), mtime=0)


def test_long_and_non_ascii_names_round_trip(tmp_path: Path) -> None:
    key = ".".join(["d" * 90] * 5) + ".é✓"
    with Store(tmp_path / "s", durability="none") as s:
        KVS(s).commit_one(TxnBuilder().put_raw(key, b"v").symlink("l", "t" * 300).build())
        dump(s, str(tmp_path / "d.tar"))
    assert as_dict(list(read_archive(str(tmp_path / "d.tar")))) == {key: b"v", "l": ("t" * 300, None)}


def test_ustar_prefix_split_names(tmp_path: Path) -> None:
    keys = ["p" * 60 + "." + "q" * 60 + "." + "r" * 99,   # prefix + name
            "s" * 150 + "." + "t" * 101,                  # no cut fits: pax
            "u" * 100]
    with Store(tmp_path / "s", durability="none") as s:
        b = TxnBuilder()
        for i, k in enumerate(keys):
            b.put_raw(k, b"%d" % i)
        KVS(s).commit_one(b.build())
        dump(s, str(tmp_path / "d.tar"))
    with tarfile.open(tmp_path / "d.tar") as tar:
        assert sorted(tar.getnames()) == sorted(k.replace(".", "/") for k in keys)
    assert as_dict(list(read_archive(str(tmp_path / "d.tar")))) == \
        {k: b"%d" % i for i, k in enumerate(keys)}
    if shutil.which("tar"):
        listing = subprocess.run(["tar", "tf", str(tmp_path / "d.tar")], capture_output=True,
                                 text=True, check=True).stdout.split()
        assert sorted(listing) == sorted(k.replace(".", "/") for k in keys)


def test_system_tar_reads_and_writes_the_format(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("no tar(1)")
    with Store(tmp_path / "s", durability="none") as s:
        KVS(s).commit_one(TxnBuilder().put_raw("a.b", b"one").put_raw("a.c.d", b"two")
                          .symlink("a.l", "a.b").build())
        dump(s, str(tmp_path / "d.tgz"))
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run([tar, "xzf", str(tmp_path / "d.tgz"), "-C", str(out)], check=True)
    assert (out / "a" / "c" / "d").read_bytes() == b"two"
    assert os.readlink(out / "a" / "l") == "a.b"
    # an archive made from the unpacked files (with directory members) restores
    subprocess.run([tar, "cf", str(tmp_path / "re.tar"), "-C", str(out), "."], check=True)
    got = as_dict(list(read_archive(str(tmp_path / "re.tar"))))
    assert got == {"a.b": b"one", "a.c.d": b"two", "a.l": ("a.b", None)}


def test_large_values_and_big_directories(tmp_path: Path) -> None:
    big = os.urandom(3 << 20) + b"end"
    with Store(tmp_path / "s", durability="none") as s:
        b = TxnBuilder().put_raw("big", big)
        for i in range(400):  # past maxdirent: an hdir
            b.put_raw(f"dir.k{i:03}", b"%d" % i)
        KVS(s).commit_one(b.build())
        dump(s, str(tmp_path / "d.tar"))
    with Store(tmp_path / "t", durability="none") as t:
        archive.restore_checkpoint(t, read_archive(str(tmp_path / "d.tar")))
        kvs = KVS(t)
        assert kvs.get("big") == big
        assert len(kvs.listdir("dir")) == 400 and kvs.get("dir.k399") == b"399"


def test_stdin_and_stdout_streams(tmp_path: Path) -> None:
    buf = io.BytesIO()
    out = ArchiveWriter("-", mtime=0, fileobj=buf)
    out.add(Entry("a.b", b"1"))
    out.add(Entry("c", target="a.b"))
    out.close()
    got = list(read_archive("-", fileobj=io.BytesIO(buf.getvalue())))
    assert as_dict(got) == {"a.b": b"1", "c": ("a.b", None)}


# -- bad archives ------------------------------------------------------------------------------


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_gnu_and_pax_archives(tmp_path: Path, fmt: int) -> None:
    long = "/".join(["x" * 80] * 4) + "/é"
    p = tmp_path / "f.tar"
    with tarfile.open(p, "w", format=fmt) as tar:
        info = tarfile.TarInfo(long)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("l")
        link.type, link.linkname = tarfile.SYMTYPE, "ns::" + "t" * 200
        tar.addfile(link)
        d = tarfile.TarInfo("somedir")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
    assert as_dict(list(read_archive(str(p)))) == {long.replace("/", "."): b"abc",
                                                   "l": ("t" * 200, "ns")}


def test_bad_checksum_is_named(tmp_path: Path) -> None:
    p = tmp_path / "c.tar"
    make_tar(p, [(tarfile.TarInfo("a"), b"1"), (tarfile.TarInfo("b"), b"2")])
    raw = bytearray(p.read_bytes())
    raw[1024 + 10] ^= 1  # a bit of b's name
    p.write_bytes(bytes(raw))
    with pytest.raises(FluxError, match="invalid tar header at offset 1024"):
        list(read_archive(str(p)))
    raw[0] ^= 1
    p.write_bytes(bytes(raw))
    with pytest.raises(FluxError, match="not a tar archive"):
        list(read_archive(str(p)))


def test_member_names() -> None:
    assert key_of_member("job/0000/eventlog") == "job.0000.eventlog"
    assert key_of_member("./a//b/./c/") == "a.b.c"
    for bad, why in (("../a", "'..'"), ("a/../../etc/passwd", "'..'"), ("/etc/passwd", "absolute"),
                     ("./", "names no key"), ("a/\x01", "control character")):
        with pytest.raises(FluxError, match=why):
            key_of_member(bad)


@pytest.mark.parametrize("content,why", [
    (b"this is not a tar archive\n" * 40, "not a tar archive"),
    (b"", "empty file, not a tar archive"),
])
def test_not_a_tar(tmp_path: Path, content: bytes, why: str) -> None:
    p = tmp_path / "bad.tar"
    p.write_bytes(content)
    with pytest.raises(FluxError, match=f"{p}: {why}"):
        list(read_archive(str(p)))


def test_truncated_archives(tmp_path: Path) -> None:
    good = tmp_path / "good.tar"
    make_tar(good, [(tarfile.TarInfo("a"), b"x" * 3000), (tarfile.TarInfo("b"), b"y" * 10)])
    raw = good.read_bytes()
    cut = tmp_path / "cut.tar"
    for size, why in ((2000, "truncated archive"),       # inside a's data
                      (512 + 3072, "truncated archive"),  # at a member boundary: no end marker
                      (512 + 3072 + 100, "truncated archive")):  # inside b's header
        cut.write_bytes(raw[:size])
        with pytest.raises(FluxError, match=why):
            list(read_archive(str(cut)))
    gz = tmp_path / "cut.tgz"
    import gzip

    gz.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(FluxError, match="truncated archive|damaged archive"):
        list(read_archive(str(gz)))


def test_garbage_after_a_member(tmp_path: Path) -> None:
    p = tmp_path / "g.tar"
    make_tar(p, [(tarfile.TarInfo("a"), b"x")])
    raw = p.read_bytes()
    p.write_bytes(raw[:1024] + b"\xff" * 512 + raw[1024:])
    with pytest.raises(FluxError, match="invalid tar header at offset 1024"):
        list(read_archive(str(p)))


def test_bad_members(tmp_path: Path) -> None:
    p = tmp_path / "m.tar"
    make_tar(p, [(tarfile.TarInfo("ok"), b"1"), (tarfile.TarInfo("../escape"), b"2")])
    with pytest.raises(FluxError, match=r"archive member '\.\./escape': path contains '\.\.'"):
        list(read_archive(str(p)))
    hard = tarfile.TarInfo("h")
    hard.type, hard.linkname = tarfile.LNKTYPE, "ok"
    make_tar(p, [(tarfile.TarInfo("ok"), b"1"), (hard, None)])
    with pytest.raises(FluxError, match="'h' is a hard link"):
        list(read_archive(str(p)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.tar"):
        list(read_archive(str(tmp_path / "nope.tar")))


def test_size_limit_skips(tmp_path: Path) -> None:
    p = tmp_path / "s.tar"
    make_tar(p, [(tarfile.TarInfo("small"), b"1"), (tarfile.TarInfo("big"), b"2" * 2000)])
    skipped: list[str] = []
    got = list(read_archive(str(p), size_limit=1024, on_skip=lambda k, why: skipped.append(k)))
    assert [e.key for e in got] == ["small"] and skipped == ["big"]


def test_parse_size() -> None:
    assert parse_size("100M") == 100 << 20
    assert parse_size("1.5k") == 1536
    assert parse_size("10") == 10 and parse_size("10b") == 10 and parse_size("1G") == 1 << 30
    for bad in ("x", "-1", "1T", "", "nan", "3G"):
        with pytest.raises(ValueError):
            parse_size(bad)


# -- reading a damaged tree --------------------------------------------------------------------


def damage(store: Store, ref: str) -> None:
    """Delete blob REF from STORE (a GC that keeps everything else)."""
    from eventstore import blobref

    with store._env.begin() as txn:
        keys = [blobref.from_digest(bytes(k)) for k, _ in txn.cursor(db=store._blobs)]
    store.gc([k for k in keys if k != ref])


def test_walk_reports_damage_by_key(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as s:
        kvs = KVS(s)
        kvs.commit_one(TxnBuilder().put_raw("a.big", b"x" * 5000).put_raw("b", b"ok").build())
        victim = kvs.get_treeobj("a.big")["data"][0]
        damage(s, victim)
        with pytest.raises(FluxError, match=f"a.big: {victim}: no such blob"):
            entries_of(s)
        errors: list[str] = []
        with s.reader() as rd:
            got = list(archive.walk(archive.store_loader(rd), s.root("primary").rootref,
                                    lambda key, exc: errors.append(key)))
        assert [e.key for e in got] == ["b"] and errors == ["a.big"]


# -- checkpoints and the content.dump / content.restore hooks ---------------------------------------


def test_restore_checkpoint_keeps_other_namespaces_unless_rebuilding(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as s:
        kvs = KVS(s)
        kvs.commit_one(TxnBuilder().put_raw("old", b"1").build())
        kvs.namespace_create("ns2")
        s.pin("snap", kvs.getroot().rootref, "tree")
        dump(s, str(tmp_path / "d.tar"))
        kvs.commit_one(TxnBuilder().put_raw("later", b"2").build())
        seq = s.root("primary").sequence
        archive.restore_checkpoint(s, read_archive(str(tmp_path / "d.tar")))
        assert s.root("primary").sequence == seq + 1
        assert set(s.roots()) >= {"primary", "ns2"} and "snap" in s.pins()
        assert as_dict(entries_of(s)) == {"old": b"1"}
        archive.restore_checkpoint(s, read_archive(str(tmp_path / "d.tar")), only_primary=True)
        assert set(s.roots()) == {"primary"} and not s.pins()
        assert as_dict(entries_of(s)) == {"old": b"1"}


def test_content_dump_and_restore_auto(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    logs: list[str] = []
    with Store(state / "content.lmdb", durability="none") as s:
        assert archive.content_restore(s, "auto", str(state)) is None  # no link: nothing
        KVS(s).commit_one(TxnBuilder().put_raw("k", b"v").build())
        res = archive.content_dump(s, "auto", str(state), logs.append)
        assert res is not None and res.keys == 1
        link = state / "dump" / "RESTORE"
        assert os.readlink(link) == os.path.basename(res.path)
        assert res.path.startswith(str(state / "dump" / time.strftime("%Y%m%d_")))
        assert res.path.endswith(".tgz") and logs == [f"dumping content to {res.path}"]
        KVS(s).commit_one(TxnBuilder().put_raw("k", b"changed").put_raw("x", b"1").build())
        back = archive.content_restore(s, "auto", str(state))
        assert back is not None and back.keys == 1
        assert not os.path.lexists(link) and os.path.exists(res.path)
        assert as_dict(entries_of(s)) == {"k": b"v"}


def test_content_restore_failure_changes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    make_tar(bad, [(tarfile.TarInfo("a"), b"1"), (tarfile.TarInfo("../b"), b"2")])
    with Store(tmp_path / "s", durability="none") as s:
        KVS(s).commit_one(TxnBuilder().put_raw("keep", b"me").build())
        before = s.roots()
        with pytest.raises(FluxError, match="'..'"):
            archive.content_restore(s, str(bad), None)
        assert s.roots() == before


def test_hooks_log_and_never_fail_a_shutdown(tmp_path: Path) -> None:
    class Log:
        def __init__(self) -> None:
            self.lines: list[tuple[str, str]] = []

        def __getattr__(self, level: str):
            return lambda text, **kw: self.lines.append((level, text))

    log = Log()
    with Store(tmp_path / "s", durability="none") as s:
        KVS(s).commit_one(TxnBuilder().put_raw("k", b"v").build())
        archive.content_dump_hook(s, str(tmp_path / "nodir" / "x.tar"), None, log)
        assert log.lines[-1][0] == "error" and "dump failed" in log.lines[-1][1]
        archive.content_dump_hook(s, str(tmp_path / "ok.tar"), None, log)
        assert log.lines[-1] == ("info", f"dumped 1 key to {tmp_path / 'ok.tar'} in "
                                         + log.lines[-1][1].rsplit(" in ", 1)[1])
        with pytest.raises(FluxError, match="content.restore: .*nope.tar"):
            archive.content_restore_hook(s, str(tmp_path / "nope.tar"), None, log)


def test_walk_loads_each_blob_once_in_few_batches(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shared = b"s" * 3000  # the same blob under every job, as equal jobspecs are
    with Store(tmp_path / "s", durability="none") as s:
        b = TxnBuilder()
        for i in range(600):
            b.put_raw(f"job.{i // 50:04}.{i % 50:04}.spec", shared)
            b.put_raw(f"job.{i // 50:04}.{i % 50:04}.log", b"%d" % i * 700)
        KVS(s).commit_one(b.build())
        root = s.root("primary").rootref
        for budget in (archive._AHEAD_BYTES, 1):
            monkeypatch.setattr(archive, "_AHEAD_BYTES", budget)
            batches: list[list[str]] = []
            with s.reader() as rd:
                base = archive.store_loader(rd)

                def counting(refs, base=base, batches=batches):
                    batches.append(list(refs))
                    return base(refs)

                got = list(archive.walk(counting, root))
            assert len(got) == 1200 and got[1].data == shared
            assert all(e.data == (shared if e.key.endswith("spec") else
                                  b"%d" % (int(e.key.split(".")[1]) * 50
                                           + int(e.key.split(".")[2])) * 700) for e in got)
            loads = [r for batch in batches for r in batch]
            if budget > 1:
                assert len(loads) == len(set(loads))  # each blob once
                assert len(batches) < 40
