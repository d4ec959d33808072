"""Broker configuration loading: merge, errors naming file/line/key, [access] checks."""
from __future__ import annotations

import errno

import pytest

from broker.config import ConfigError, load_dir


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def test_merge_of_files_in_name_order(tmp_path):
    write(tmp_path, "a.toml", "[access]\nallow-guest-user = true\n[kvs]\ncheckpoint-period = '30m'\n")
    write(tmp_path, "b.toml", "[access]\nallow-root-owner = false\n[queues.debug]\n")
    write(tmp_path, "ignored.txt", "not toml at all = = =")
    config = load_dir(str(tmp_path))
    assert config.get("access") == {"allow-guest-user": True, "allow-root-owner": False}
    assert config.get("kvs.checkpoint-period") == "30m"
    assert config.get("queues.debug") == {}
    assert config.get("no.such.key", "dflt") == "dflt"
    assert config.get() == config.table


def test_empty_directory_is_empty_config(tmp_path):
    assert load_dir(str(tmp_path)).table == {}


def test_syntax_error_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "bad.toml", "[access]\nallow-guest-user = yes\n")
    with pytest.raises(ConfigError) as exc:
        load_dir(str(tmp_path))
    err = exc.value
    assert err.errno == errno.EINVAL
    assert (err.path, err.line, err.key) == (path, 2, "allow-guest-user")
    assert str(err).startswith(f"{path}:2: allow-guest-user: ")


def test_duplicate_key_across_files(tmp_path):
    write(tmp_path, "a.toml", "[kvs]\nx = 1\n")
    b = write(tmp_path, "b.toml", "\n[kvs]\nx = 2\n")
    with pytest.raises(ConfigError) as exc:
        load_dir(str(tmp_path))
    assert str(exc.value) == f"{b}:3: kvs.x: already set in {tmp_path / 'a.toml'}"


def test_access_type_checked(tmp_path):
    path = write(tmp_path, "access.toml", "[access]\n\nallow-guest-user = 'yes'\n")
    with pytest.raises(ConfigError) as exc:
        load_dir(str(tmp_path))
    assert str(exc.value) == \
        f"{path}:3: access.allow-guest-user: expected a boolean, got string"


def test_access_unknown_key(tmp_path):
    path = write(tmp_path, "access.toml", "[access]\nallow-everyone = true\n")
    with pytest.raises(ConfigError, match=f"{path}:2: access.allow-everyone: unknown key"):
        load_dir(str(tmp_path))


def test_missing_directory(tmp_path):
    with pytest.raises(OSError) as exc:
        load_dir(str(tmp_path / "nope"))
    assert exc.value.errno == errno.ENOENT and "no such directory" in str(exc.value)


def test_not_utf8(tmp_path):
    (tmp_path / "x.toml").write_bytes(b"\xff\xfe = 1")
    with pytest.raises(ConfigError, match="x.toml: not UTF-8 text"):
        load_dir(str(tmp_path))


def test_the_config_examples_of_the_flux_docs_parse(tmp_path):
    """flux-config-bootstrap(5) and jobtap-plugins(7) write inline tables over several
    lines (TOML 1.1); a TOML 1.0 parser refused both."""
    (tmp_path / "bootstrap.toml").write_text(
        '[bootstrap]\ndefault_port = 8050\nhosts = [\n    {\n        host="fluke0",\n'
        '        bind="tcp://en4:9001",\n        connect="tcp://fluke-mgmt:9001"\n    },\n'
        '    { host = "fluke[1-1023]" },\n]\n')
    (tmp_path / "jobtap.toml").write_text(
        '[job-manager]\nplugins = [\n  { remove = ".priority-default",\n'
        '    load = "complex-priority.so"\n  },\n]\n')
    conf = load_dir(str(tmp_path))
    assert conf.get("bootstrap.hosts")[0] == {"host": "fluke0", "bind": "tcp://en4:9001",
                                             "connect": "tcp://fluke-mgmt:9001"}
    assert conf.get("job-manager.plugins") == [{"remove": ".priority-default",
                                               "load": "complex-priority.so"}]
