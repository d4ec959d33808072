"""[resource] configuration, R from config / file / discovery, drain targets."""
from __future__ import annotations

import errno
import json
import os
import socket

import pytest

from flux.errors import FluxError
from jobmgr.resource.config import (
    LocalResources,
    ResourceConfig,
    configured_R,
    discover_local,
    discovered_R,
    parse_config,
    resolve_targets,
)


def test_no_table_means_discovery():
    cfg = parse_config(None)
    assert cfg == ResourceConfig() and cfg.method == "dynamic-discovery"
    assert configured_R(cfg) is None


@pytest.mark.parametrize("table,message", [
    ({"bogus": 1}, "resource.bogus: unknown key"),
    ({"path": 3}, "resource.path: expected a file name"),
    ({"config": {}}, "resource.config: expected a non-empty array of tables"),
    ({"config": []}, "resource.config: expected a non-empty array of tables"),
    ({"config": [1]}, r"resource.config\[0\]: expected a table"),
    ({"path": "/x", "config": [{"hosts": "a"}]}, "resource: path and config are mutually"),
    ({"exclude": 1}, "resource.exclude: expected an idset or hostlist string"),
    ({"norestrict": "yes"}, "resource.norestrict: expected a boolean, got str"),
    ({"monitor-force-up": 1}, "resource.monitor-force-up: expected a boolean"),
    ([], "resource: expected a table"),
])
def test_bad_config_names_the_key(table, message):
    with pytest.raises(FluxError, match=message) as info:
        parse_config(table)
    assert info.value.errno == errno.EINVAL


def test_config_entries_build_R_with_properties():
    cfg = parse_config({"config": [
        {"hosts": "test[1-15]", "cores": "0-7", "gpus": "0"},
        {"hosts": "test16", "cores": "0-63", "gpus": "0-1", "properties": ["fatnode"]}],
        "exclude": "test[1-2]", "norestrict": True})
    assert cfg.method == "config" and cfg.exclude == "test[1-2]" and cfg.norestrict
    rset = configured_R(cfg)
    assert rset.nnodes == 16 and rset.ncores == 15 * 8 + 64 and rset.ngpus == 17
    assert rset.nodelist.encode() == "test[1-16]"
    assert rset.property_ranks()["fatnode"].encode() == "15"
    assert rset.dumps() == "rank[0-14]/core[0-7],gpu0 rank15/core[0-63],gpu[0-1]"


@pytest.mark.parametrize("entries,message", [
    ([{"hosts": "a", "cores": "x"}], r"resource.config\[0\].cores"),
    ([{"cores": "0"}], r"resource.config\[0\].hosts: required hostlist string"),
    ([{"hosts": "a", "corez": "0"}], r"resource.config\[0\]: unknown key 'corez'"),
    ([{"hosts": "a[1-", "cores": "0"}], r"resource.config\[0\].hosts"),
    ([{"hosts": "a", "properties": ["bad|name"]}], r"resource.config\[0\].properties"),
])
def test_bad_config_entries(entries, message):
    with pytest.raises(FluxError, match=message):
        configured_R(parse_config({"config": entries}))


def test_R_file(tmp_path):
    R = {"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {"core": "0-3"}}],
                                     "nodelist": ["node[0-1]"], "starttime": 0,
                                     "expiration": 0}}
    path = tmp_path / "R.json"
    path.write_text(json.dumps(R))
    rset = configured_R(parse_config({"path": str(path)}))
    assert rset.dumps() == "rank[0-1]/core[0-3]" and rset.nodelist.encode() == "node[0-1]"


def test_bad_R_file(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(FluxError, match=f"resource.path: {missing}: No such file"):
        configured_R(parse_config({"path": missing}))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FluxError, match=f"resource.path: {bad}: invalid R: R: invalid JSON"):
        configured_R(parse_config({"path": str(bad)}))
    bad.write_text(json.dumps({"version": 2}))
    with pytest.raises(FluxError, match="invalid R: R version 2 not supported"):
        configured_R(parse_config({"path": str(bad)}))
    bad.write_text(json.dumps({"version": 1, "execution": {"R_lite": [{"rank": "x"}]}}))
    with pytest.raises(FluxError, match=r"invalid R: R.execution.R_lite\[0\]"):
        configured_R(parse_config({"path": str(bad)}))
    bad.write_text(json.dumps({"version": 1, "execution": {"R_lite": []}}))
    with pytest.raises(FluxError, match="resource.path: R holds no resources"):
        configured_R(parse_config({"path": str(bad)}))


def test_discover_local_uses_the_affinity_mask():
    from flux.idset import IDset

    rep = discover_local(2)
    assert rep.rank == 2 and rep.hostname == socket.gethostname() and rep.gpus == ""
    assert set(IDset(rep.cores).expand()) == os.sched_getaffinity(0)
    assert IDset(discover_local(0, norestrict=True).cores).count() == os.cpu_count()


def test_discovered_R_joins_reports_and_keeps_duplicate_hosts():
    reports = {r: LocalResources(r, "host", "0-1") for r in range(3)}
    reports[1] = LocalResources(1, "host", "0-1", "0")
    rset = discovered_R(reports)
    assert rset.dumps() == "rank[0,2]/core[0-1] rank1/core[0-1],gpu0"
    assert list(rset.nodelist) == ["host", "host", "host"]


def test_local_report_round_trip_and_errors():
    rep = LocalResources(1, "h", "0-3")
    assert LocalResources.from_dict(rep.to_dict()) == rep
    with pytest.raises(ValueError, match="rank must be an integer >= 0"):
        LocalResources.from_dict({"rank": -1, "hostname": "h"})
    with pytest.raises(ValueError, match="hostname must be a string"):
        LocalResources.from_dict({"rank": 1})
    with pytest.raises(ValueError, match="cores must be an idset"):
        LocalResources.from_dict({"rank": 1, "hostname": "h", "cores": 3})
    with pytest.raises(ValueError):
        LocalResources.from_dict({"rank": 1, "hostname": "h", "cores": "0-"})


HOSTS = {0: "fluke6", 1: "fluke7", 2: "fluke8", 3: "fluke8"}


@pytest.mark.parametrize("text,ranks", [
    ("1", [1]), ("0-2", [0, 1, 2]), ("[1,3]", [1, 3]), ("fluke7", [1]),
    ("fluke[6-7]", [0, 1]), ("fluke8", [2, 3]), (" 2 ", [2]),
])
def test_targets_are_ranks_or_hosts(text, ranks):
    assert resolve_targets(text, HOSTS, range(4)) == ranks


@pytest.mark.parametrize("text,message", [
    ("7", "targets: rank 7 not in the instance \\(ranks 0-3\\)"),
    ("3-9", "targets: ranks 4-9 not in the instance"),
    ("nosuch", "targets: unknown host nosuch"),
    ("fluke[9-10]", r"targets: unknown hosts fluke\[9-10\]"),
    ("fluke[", "targets: 'fluke\\[' is neither an idset nor a hostlist"),
    ("1-", "targets: invalid idset '1-'"),
    ("", "targets: expected an idset of ranks or a hostlist"),
    (None, "targets: expected an idset of ranks or a hostlist"),
])
def test_bad_targets(text, message):
    with pytest.raises(FluxError, match=message) as info:
        resolve_targets(text, HOSTS, range(4))
    assert info.value.errno == errno.EINVAL
