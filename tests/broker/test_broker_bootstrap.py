"""[bootstrap]/[tbon] parsing (broker/bootstrap.py), the Tree shape, CURVE certificates
(broker/cert.py) and resolving a broker's place from a config dir (broker/boot_config.py)."""
from __future__ import annotations

import os

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from broker import topology
from broker.boot_config import has_bootstrap, resolve
from broker.bootstrap import parse_bootstrap, parse_tbon, parse_topo, substitute
from broker.cert import format_cert, load_cert, parse_zpl, write_cert
from broker.config import load_dir
from flux.errors import FluxError


def hosts(*entries, **top):
    return {"curve_cert": "/c", "hosts": list(entries), **top}


# -- [bootstrap] ---------------------------------------------------------------------------

def test_hostlist_expansion_ranks_in_order_and_defaults_substituted():
    b = parse_bootstrap(hosts({"host": "mgmt", "bind": "tcp://en4:9001",
                               "connect": "tcp://test-mgmt:9001"},
                              {"host": "test[1-3,7]"},
                              default_port=8050, default_bind="tcp://en0:%p",
                              default_connect="tcp://e%h:%p"))
    assert b.hostnames() == ["mgmt", "test1", "test2", "test3", "test7"]
    assert b.size == 5
    assert b.rank_of("test3") == 3
    assert b.hosts[0].bind == "tcp://en4:9001" and b.hosts[0].connect == "tcp://test-mgmt:9001"
    assert b.hosts[1].bind == "tcp://en0:8050" and b.hosts[1].connect == "tcp://etest1:8050"
    assert b.hosts[4].connect == "tcp://etest7:8050" and b.hosts[4].entry == 1


def test_per_host_bind_and_connect_use_h_and_p():
    b = parse_bootstrap(hosts({"host": "n[0-1]", "bind": "tcp://%h-ib:%p",
                               "connect": "tcp://%h:%p"}, default_port=1234))
    assert [h.bind for h in b.hosts] == ["tcp://n0-ib:1234", "tcp://n1-ib:1234"]
    assert [h.connect for h in b.hosts] == ["tcp://n0:1234", "tcp://n1:1234"]


def test_empty_or_missing_hosts_is_standalone():
    assert parse_bootstrap(None).size == 0
    assert parse_bootstrap({}).size == 0
    assert parse_bootstrap({"hosts": [{"host": "solo"}]}).size == 1   # no cert needed


@pytest.mark.parametrize("table, message", [
    (hosts({"host": "a"}, {"host": "b"}, {"host": "a"}),
     "bootstrap.hosts[2]: host a is listed twice (also in bootstrap.hosts[0])"),
    (hosts({"host": "n[1-3]"}, {"host": "n2"}),
     "bootstrap.hosts[1]: host n2 is listed twice (also in bootstrap.hosts[0])"),
    (hosts({"bind": "tcp://x:1"}), "bootstrap.hosts[0]: has no host key"),
    (hosts({"host": "a", "port": 1}), "bootstrap.hosts[0].port: unknown key"),
    (hosts("a"), "bootstrap.hosts[0]: expected a table"),
    (hosts({"host": "n[1-"}), "bootstrap.hosts[0].host: invalid hostlist"),
    (hosts({"host": 7}), "bootstrap.hosts[0].host: expected a non-empty string"),
    ({"hosts": [{"host": "a"}, {"host": "b"}]}, "bootstrap.curve_cert: required"),
    (hosts({"host": "a"}, default_port="8050"), "bootstrap.default_port: expected a port"),
    (hosts({"host": "a"}, default_port=70000), "bootstrap.default_port: expected a port"),
    (hosts({"host": "a"}, default_bind="tcp://x:%p"),
     "bootstrap.default_bind: uses %p but bootstrap.default_port is not set"),
    (hosts({"host": "a", "connect": "tcp://%x"}), "bootstrap.hosts[0].connect: unknown token %x"),
    (hosts({"host": "a"}, hosts_file="x"), "bootstrap.hosts_file: unknown key"),
    ({"hosts": {"host": "a"}}, "bootstrap.hosts: expected an array"),
])
def test_bad_bootstrap_names_the_entry(table, message):
    with pytest.raises(ValueError) as info:
        parse_bootstrap(table)
    assert message in str(info.value)


def test_host_not_listed_is_named():
    b = parse_bootstrap(hosts({"host": "a"}, {"host": "b"}))
    with pytest.raises(ValueError, match=r"this host \(zz\) is not listed"):
        b.rank_of("zz")


def test_custom_topology_parents_default_to_rank_0():
    b = parse_bootstrap(hosts({"host": "t0"}, {"host": "t[1-2]"},
                              {"host": "t[3-5]", "parent": "t1"}, {"host": "t[6-7]",
                                                                   "parent": "t2"}))
    parents = b.parents("custom")
    assert parents == [None, 0, 0, 1, 1, 1, 2, 2]
    tree = topology.Tree(parents)
    assert tree.children(1) == [3, 4, 5] and tree.subtree(2) == [2, 6, 7]
    assert tree.level(7) == 2 and tree.maxlevel() == 2 and tree.child_toward(0, 5) == 1


def test_kary_topology_and_parent_keys_conflict():
    b = parse_bootstrap(hosts({"host": "t[0-6]"}))
    assert b.parents("kary:2") == [None, 0, 0, 1, 1, 2, 2]
    assert b.parents("kary:0") == [None] + [0] * 6       # flat
    c = parse_bootstrap(hosts({"host": "t0"}, {"host": "t1", "parent": "t0"}))
    with pytest.raises(ValueError, match=r"bootstrap.hosts\[1\]: parent is set .* tbon.topo is"):
        c.parents("kary:2")


@pytest.mark.parametrize("entries, message", [
    ([{"host": "a"}, {"host": "b", "parent": "c"}, {"host": "c", "parent": "b"}],
     "parents make a cycle: b -> c -> b"),
    ([{"host": "a"}, {"host": "b", "parent": "b"}], "bootstrap.hosts[1]: b is its own parent"),
    ([{"host": "a"}, {"host": "b", "parent": "nowhere"}],
     "bootstrap.hosts[1]: parent 'nowhere' of b is not a listed host"),
    ([{"host": "a", "parent": "b"}, {"host": "b"}], "a is rank 0, the root"),
])
def test_bad_parents_are_refused(entries, message):
    with pytest.raises(ValueError) as info:
        parse_bootstrap(hosts(*entries)).parents("custom")
    assert message in str(info.value)


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=30))
def test_tree_from_any_parent_choice_is_consistent(picks):
    # rank r picks a parent among ranks < r: always a tree
    parents = [None] + [picks[r - 1] % r for r in range(1, len(picks) + 1)]
    tree = topology.Tree(parents)
    size = len(parents)
    assert sorted(tree.subtree(0)) == list(range(size))
    for r in range(1, size):
        assert r in tree.children(parents[r])
        assert tree.level(r) == tree.level(parents[r]) + 1
        # routing from the root finds the child whose subtree holds r
        child = tree.child_toward(0, r)
        assert child is not None and r in tree.subtree(child)


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=9))
def test_kary_tree_matches_the_kary_functions(size, k):
    tree = topology.Tree.kary(size, k)
    for r in range(size):
        assert tree.parent(r) == topology.parent(r, k)
        assert tree.children(r) == topology.children(r, k, size)
        assert tree.level(r) == topology.level(r, k)
        for t in range(size):
            assert tree.child_toward(r, t) == topology.child_toward(r, t, k)


@given(st.text(alphabet="ab%hp:/", max_size=20), st.text(alphabet="xyz", min_size=1,
                                                       max_size=5))
def test_substitute_never_leaves_h_or_p_tokens(template, host):
    try:
        out = substitute(template, host, 99, "k")
    except ValueError as exc:
        assert "k:" in str(exc)
        return
    assert out.replace(host, "").count("%h") == 0 or "%%h" in template


# -- [tbon] --------------------------------------------------------------------------------

def test_tbon_values_and_attr_override():
    tb = parse_tbon({"topo": "kary:4", "tcp_user_timeout": "2m", "torpid_min": "10s",
                     "torpid_max": "1m", "keepalive_count": 3, "child_rcvhwm": 2},
                    {"tbon.torpid_min": "0.5s", "unrelated": "x"})
    assert tb["topo"] == "kary:4" and tb["tcp_user_timeout"] == 120.0
    assert tb["torpid_min"] == 0.5 and tb["torpid_max"] == 60.0 and tb["keepalive_count"] == 3
    assert parse_tbon(None)["topo"] == "custom"
    assert parse_topo("kary:0") == ("kary", 0)


@pytest.mark.parametrize("table, message", [
    ({"topo": "binary"}, "tbon.topo: unknown topology 'binary'"),
    ({"topo": "kary:x"}, "tbon.topo: bad fanout in 'kary:x'"),
    ({"tcp_user_timeout": "soon"}, "tbon.tcp_user_timeout:"),
    ({"torpid_max": True}, "tbon.torpid_max: expected a duration"),
    ({"keepalive_idle": "x"}, "tbon.keepalive_idle: expected an integer"),
    ({"keepalive_interval": -5}, "tbon.keepalive_interval: must be -1"),
    ({"child_rcvhwm": 1}, "tbon.child_rcvhwm: must be 0 (unlimited) or >= 2"),
    ({"tcp-user-timeout": "1s"}, "tbon.tcp-user-timeout: unknown key"),
])
def test_bad_tbon_names_the_key(table, message):
    with pytest.raises(ValueError) as info:
        parse_tbon(table)
    assert message in str(info.value)


# -- certificates --------------------------------------------------------------------------

def test_keygen_cert_round_trip_and_mode(tmp_path):
    path = str(tmp_path / "curve.cert")
    public, secret = write_cert(path, "test0")
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = open(path).read()
    sections = parse_zpl(text)
    assert sections["metadata"]["name"] == "test0"
    assert sections["curve"] == {"public-key": public, "secret-key": secret}
    assert load_cert(path) == (public.encode(), secret.encode())
    assert zmq.curve_public(secret.encode()) == public.encode()
    with pytest.raises(FluxError, match="file exists"):
        write_cert(path)


def test_cert_readable_by_others_is_refused(tmp_path):
    path = str(tmp_path / "c")
    write_cert(path)
    os.chmod(path, 0o644)
    with pytest.raises(FluxError, match=r"accessible to group or others \(mode 0644\).*chmod 600"):
        load_cert(path)
    os.chmod(path, 0o640)
    with pytest.raises(FluxError, match="accessible to group or others"):
        load_cert(path)


def test_cert_missing_other_owner_or_bad_keys_refused(tmp_path):
    with pytest.raises(FluxError, match="cannot read .*/nope"):
        load_cert(str(tmp_path / "nope"))
    with pytest.raises(FluxError, match="not a regular file"):
        load_cert(str(tmp_path))
    path = str(tmp_path / "c")
    write_cert(path)
    with pytest.raises(FluxError, match="owned by uid .* not by the instance owner"):
        load_cert(path, owner=os.getuid() + 1)
    public, secret = (k.decode() for k in zmq.curve_keypair())
    other, _ = (k.decode() for k in zmq.curve_keypair())
    for text, message in ((format_cert(other, secret), "does not match"),
                          (format_cert(public, secret).replace("secret-key", "x"),
                           "no secret-key"),
                          (format_cert(public[:-1], secret), "public-key is not a 40"),
                          ("metadata\n    a = \"b\"\n", "no curve section")):
        bad = str(tmp_path / "bad")
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, text.encode())
        os.close(fd)
        with pytest.raises(FluxError, match=message):
            load_cert(bad)


# -- resolve: a config dir and this host -----------------------------------------------------

def write_conf(tmp_path, text, cert=True):
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    certpath = tmp_path / "curve.cert"
    if cert and not certpath.exists():
        write_cert(str(certpath))
    (conf / "system.toml").write_text(text.replace("CERT", str(certpath)))
    return load_dir(str(conf))


def test_resolve_finds_rank_tree_and_keys(tmp_path):
    config = write_conf(tmp_path, """
[bootstrap]
curve_cert = "CERT"
default_port = 8050
default_bind = "tcp://127.0.0.1:%p"
default_connect = "tcp://127.0.0.1:%p"
hosts = [ { host = "h[0-4]" } ]
[tbon]
topo = "kary:2"
""")
    assert has_bootstrap(config)
    where = resolve(config, [], hostname="h3")
    assert (where.rank, where.size) == (3, 5)
    assert where.parents == [None, 0, 0, 1, 1] and where.hosts[4] == "h4"
    assert where.boot is not None and where.boot.bind_uri == "tcp://127.0.0.1:8050"
    assert where.boot.child_key_ok(zmq.utils.z85.decode(where.boot.public))
    assert not where.boot.child_key_ok(zmq.utils.z85.decode(zmq.curve_keypair()[0]))


def test_resolve_errors_name_file_and_entry(tmp_path):
    config = write_conf(tmp_path, """
[bootstrap]
curve_cert = "CERT"
hosts = [ { host = "a", bind = "tcp://127.0.0.1:1", connect = "tcp://127.0.0.1:1" },
          { host = "b" } ]
""")
    with pytest.raises(FluxError) as info:
        resolve(config, [], hostname="c")
    assert "system.toml" in str(info.value) and "this host (c) is not listed" in str(info.value)
    config = write_conf(tmp_path, """
[bootstrap]
curve_cert = "CERT"
hosts = [ { host = "a" }, { host = "b" } ]
""")
    with pytest.raises(FluxError, match=r"bootstrap.hosts\[0\]: a has children in the tree but "
                                        r"no bind address"):
        resolve(config, [], hostname="a")
    with pytest.raises(FluxError, match=r"a has children in the tree but no connect"):
        resolve(config, [], hostname="b")
