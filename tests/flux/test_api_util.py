"""flux.util as user scripts call it: every name python-api.md lists.

Broker-free items here; ``check_future_error`` and ``interruptible`` are
also tried on a real instance in ``test_api_util_live.py``.
"""
from __future__ import annotations

import argparse
import base64
import errno
import io
import json
import logging
import math
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flux.util
from flux.util import (
    CLIMain,
    ColorAction,
    DisplayValue,
    FilterAction,
    FilterActionSetUpdate,
    FilterActionUser,
    FilterTrueAction,
    Fileref,
    OutputFormat,
    Tree,
    TreedictAction,
    UtilConfig,
    UtilDatetime,
    YesNoAction,
    check_future_error,
    del_treedict,
    encode_payload,
    encode_topic,
    get_treedict,
    help_formatter,
    interruptible,
    parse_datetime,
    parse_fsd,
    set_treedict,
    xdg_searchpath,
)

# -- __all__ and star import ---------------------------------------------------


def test_all_is_flux_list_and_star_import_works() -> None:
    assert flux.util.__all__ == ["check_future_error", "encode_payload", "encode_topic",
                                 "CLIMain", "parse_fsd"]
    namespace: dict[str, object] = {}
    exec("from flux.util import *", namespace)  # noqa: S102
    assert set(flux.util.__all__) <= set(namespace)


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        flux.util.nope  # noqa: B018


def test_import_flux_util_stays_light() -> None:
    code = ("import sys, flux.util; "
            "print(','.join(m for m in ('argparse', 'yaml', 'parsedatetime', 'logging', "
            "'shutil', 'typing') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# -- treedict ------------------------------------------------------------------


def test_get_treedict() -> None:
    d = {"a": {"b": {"c": 42}}, "x": 1}
    assert get_treedict(d, "a.b.c") == 42
    assert get_treedict(d, "a.b") == {"c": 42}
    assert get_treedict(d, "x") == 1
    assert get_treedict(d, "a.z.c") is None
    assert get_treedict(d, "a.z.c", default=7) == 7
    assert get_treedict(d, "nope", "dflt") == "dflt"
    # a leaf in the middle of the path is "missing", not an AttributeError
    assert get_treedict(d, "x.y", default=3) == 3


def test_set_treedict_creates_levels() -> None:
    d: dict = {}
    set_treedict(d, "a.b.c", 42)
    set_treedict(d, "a.b.d", "x")
    set_treedict(d, "top", 1)
    assert d == {"a": {"b": {"c": 42, "d": "x"}}, "top": 1}
    set_treedict(d, "a.b", 5)
    assert d["a"] == {"b": 5}


def test_set_treedict_through_a_leaf_is_a_clear_error() -> None:
    d = {"a": 1}
    with pytest.raises(TypeError, match="set_treedict: 'a' is not a dict"):
        set_treedict(d, "a.b", 2)


def test_del_treedict() -> None:
    d = {"a": {"b": {"c": 1}, "k": 2}}
    del_treedict(d, "a.b.c")
    assert d == {"a": {"b": {}, "k": 2}}
    d = {"a": {"b": {"c": 1}, "k": 2}}
    del_treedict(d, "a.b.c", remove_empty=True)
    assert d == {"a": {"k": 2}}
    d = {"a": {"b": {"c": 1}}}
    del_treedict(d, "a.b.c", remove_empty=True)
    assert d == {}
    with pytest.raises(KeyError):
        del_treedict({"a": {}}, "a.b.c")
    with pytest.raises(KeyError):
        del_treedict({"a": {}}, "a.b")


@given(st.lists(st.tuples(st.lists(st.sampled_from("abc"), min_size=1, max_size=4),
                          st.integers()), max_size=10))
def test_treedict_set_then_get(entries: list[tuple[list[str], int]]) -> None:
    d: dict = {}
    model: dict[str, int] = {}
    for path, value in entries:
        key = ".".join(path)
        # setting a key replaces anything below it and any leaf above it
        try:
            set_treedict(d, key, value)
        except TypeError:
            continue
        model = {k: v for k, v in model.items()
                 if not (k.startswith(key + ".") or key.startswith(k + "."))}
        model[key] = value
    for key, value in model.items():
        assert get_treedict(d, key) == value


# -- parse_fsd, parse_datetime, UtilDatetime ----------------------------------


@pytest.mark.parametrize("text,secs", [("2ms", 0.002), ("30", 30.0), ("1.5h", 5400.0),
                                       ("5m", 300.0), ("1d", 86400.0), ("inf", math.inf)])
def test_parse_fsd(text: str, secs: float) -> None:
    assert parse_fsd(text) == secs


@pytest.mark.parametrize("text", ["-1", "1x", "", "nan", "-5m"])
def test_parse_fsd_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid Flux standard duration"):
        parse_fsd(text)


NOW = datetime(2024, 3, 15, 13, 30, 15).astimezone()


def test_parse_datetime_now_and_offsets() -> None:
    assert parse_datetime("now", now=NOW) == NOW
    assert parse_datetime("+1h", now=NOW) == NOW + timedelta(hours=1)
    assert parse_datetime("-90s", now=NOW) == NOW - timedelta(seconds=90)
    assert parse_datetime("+0", now=NOW) == NOW
    result = parse_datetime("+1m")
    assert result.tzinfo is not None
    assert abs((result - datetime.now().astimezone()).total_seconds() - 60) < 5


def test_parse_datetime_absolute_and_natural() -> None:
    assert parse_datetime("2024-01-02 03:04:05", now=NOW) == \
        datetime(2024, 1, 2, 3, 4, 5).astimezone()
    # days start at hour 0 (not parsedatetime's default of 9am)
    assert parse_datetime("tomorrow", now=NOW) == datetime(2024, 3, 16, 0, 0, 0).astimezone()
    noon = parse_datetime("noon", now=NOW)
    assert (noon.hour, noon.minute) == (12, 0)
    assert parse_datetime("in 2 hours", now=NOW).replace(microsecond=0) == \
        (NOW + timedelta(hours=2)).replace(microsecond=0)
    assert parse_datetime("tomorrow", now=NOW).tzinfo is not None


def test_parse_datetime_keeps_now_timezone_for_offsets() -> None:
    utc_now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert parse_datetime("+1d", now=utc_now) == utc_now + timedelta(days=1)


@pytest.mark.parametrize("junk", ["junk", "+junk", "-1x", "", "blah blah"])
def test_parse_datetime_rejects_junk(junk: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(junk, now=NOW)


def test_parse_datetime_junk_names_the_input() -> None:
    with pytest.raises(ValueError, match='Invalid datetime: "junk"'):
        parse_datetime("junk", now=NOW)


def test_util_datetime_format() -> None:
    t = UtilDatetime(2021, 9, 21, 18, 36)
    assert f"{t:%b%d %R::>16}" == "     Sep21 18:36"
    assert format(t, "") == "2021-09-21T18:36:00"
    assert format(t, "%H:%M") == "18:36"
    epoch = UtilDatetime.fromtimestamp(0.0)
    assert format(epoch, "%H:%M") == ""
    assert format(epoch, "%H:%M::>5") == "     "
    assert format(epoch, "%H:%M::>5h") == "    -"
    assert format(t, "%H:%M::<7h") == "18:36  "
    assert "{0:%Y::^8}".format(t) == "  2021  "


# -- ColorAction ---------------------------------------------------------------


def color_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--color", action=ColorAction)
    return parser


def test_color_action_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    p = color_parser()
    assert p.parse_args([]).color == "auto"
    assert p.parse_args(["--color"]).color == "always"
    assert p.parse_args(["--color=never"]).color == "never"
    assert p.parse_args(["--color", "auto"]).color == "auto"
    assert p.parse_args(["--color=always"]).color.enabled is True
    assert p.parse_args(["--color=never"]).color.enabled is False
    assert isinstance(p.parse_args([]).color, str)


def test_color_auto_follows_stdout_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    value = color_parser().parse_args([]).color
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(isatty=lambda: True))
    assert value.enabled is True
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(isatty=lambda: False))
    assert value.enabled is False


def test_color_no_color_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert color_parser().parse_args([]).color == "never"
    assert color_parser().parse_args(["--color"]).color == "always"
    monkeypatch.setenv("NO_COLOR", "")
    assert color_parser().parse_args([]).color == "auto"


def test_color_bad_value_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        color_parser().parse_args(["--color=blue"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--color" in err and "blue" in err


# -- DisplayValue, OutputFormat sorting ---------------------------------------


def test_display_value_order() -> None:
    values = ["b", 3, None, "-", 1.5, "", "10", True, "a", "2.5", False, "-1"]
    ordered = sorted(values, key=DisplayValue)
    # empties first (stable), numbers by value, then strings
    assert ordered[:3] == [None, "-", ""]
    assert ordered[3:10] == ["-1", False, True, 1.5, "2.5", 3, "10"]
    assert ordered[10:] == ["a", "b"]


def test_display_value_compare_and_hash() -> None:
    assert DisplayValue("1") == DisplayValue(1.0)
    assert DisplayValue(None) == DisplayValue("")
    assert DisplayValue(2) < DisplayValue("x")
    assert not DisplayValue("x") < DisplayValue(2)
    assert hash(DisplayValue("1")) == hash(DisplayValue(1))
    assert DisplayValue("abc").value == "abc"
    assert "nan" in [v for v in sorted(["nan", 1], key=DisplayValue)]


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                          st.text(max_size=5), st.sampled_from(["", "-", "1", "2.5", "x"]))))
def test_display_value_sorts_anything_consistently(values: list) -> None:
    once = sorted(values, key=DisplayValue)
    for a, b in zip(once, once[1:]):
        assert not DisplayValue(b) < DisplayValue(a)


HEADINGS = {"s": "S", "i": "I", "name": "NAME"}


def test_set_sort_keys_skips_empty_keys() -> None:
    f = OutputFormat("{s} {i}", headings=HEADINGS)
    f.set_sort_keys("s,")
    assert f.sort_keys == [("s", False)]
    f.set_sort_keys(",-s")
    assert f.sort_keys == [("s", True)]
    f.set_sort_keys("s, ,i")
    assert f.sort_keys == [("s", False), ("i", False)]
    f.set_sort_keys("")
    assert f.sort_keys == []
    with pytest.raises(ValueError, match="^Invalid sort key: bogus$"):
        f.set_sort_keys("s,bogus")


def test_sort_items_mixed_types() -> None:
    items = [SimpleNamespace(s=v) for v in ("", 3, True, "b", None, 1.5, "-", "a", "2")]
    f = OutputFormat("{s}", headings=HEADINGS)
    f.set_sort_keys("s")
    out = f.sort_items(items)
    assert out is items
    assert [x.s for x in items] == ["", None, "-", True, 1.5, "2", 3, "a", "b"]
    f.set_sort_keys("-s")
    assert [x.s for x in f.sort_items(items)][:2] == ["b", "a"]


def test_sort_items_several_keys() -> None:
    items = [SimpleNamespace(s=s, i=i) for s, i in (("a", 2), ("b", 1), ("a", 1), ("", 5))]
    f = OutputFormat("{s} {i}", headings=HEADINGS)
    f.set_sort_keys("s,-i")
    assert [(x.s, x.i) for x in f.sort_items(items)] == [("", 5), ("a", 2), ("a", 1), ("b", 1)]


# -- Tree ----------------------------------------------------------------------


def render(tree: Tree, **kwargs: object) -> str:
    out = io.StringIO()
    old, sys.stdout = sys.stdout, out
    try:
        tree.render(**kwargs)  # type: ignore[arg-type]
    finally:
        sys.stdout = old
    return out.getvalue()


def sample_tree() -> Tree:
    root = Tree("root")
    a = root.append("a")
    a.append("a1")
    a.append("a2")
    b = root.append("b")
    b.append("b1").append("b1x")
    return root


def test_tree_box_style() -> None:
    assert render(sample_tree(), truncate=False) == (
        "root\n"
        "├── a\n"
        "│   ├── a1\n"
        "│   └── a2\n"
        "└── b\n"
        "    └── b1\n"
        "        └── b1x\n")


def test_tree_ascii_and_compact_styles() -> None:
    assert render(sample_tree(), style="ascii", truncate=False) == (
        "root\n"
        "|-- a\n"
        "|   |-- a1\n"
        "|   `-- a2\n"
        "`-- b\n"
        "    `-- b1\n"
        "        `-- b1x\n")
    assert render(sample_tree(), style="compact", truncate=False) == (
        "root\n"
        "├─a\n"
        "│ ├─a1\n"
        "│ └─a2\n"
        "└─b\n"
        "  └─b1\n"
        "    └─b1x\n")


def test_tree_level_and_skip_root() -> None:
    assert render(sample_tree(), level=1, truncate=False) == "root\n├── a\n└── b\n"
    assert render(sample_tree(), level=0, truncate=False) == "root\n"
    assert render(sample_tree(), skip_root=True, truncate=False) == (
        "a\n├── a1\n└── a2\nb\n└── b1\n    └── b1x\n")


def test_tree_prefix() -> None:
    root = Tree("top", prefix="PFX")
    root.append("kid", prefix="KPX")
    assert render(root, truncate=False) == "PFX top\nKPX └── kid\n"


def test_tree_combine_children() -> None:
    root = Tree("r", combine_children=True)
    first = root.append("x")
    assert root.append("x") is first
    root.append("x")
    root.append("y")
    assert render(root, truncate=False) == "r\n├── 3*[x]\n└── y\n"
    other = Tree("r")
    other.append("x")
    other.append("x")
    assert render(other, truncate=False) == "r\n├── x\n└── x\n"


def test_tree_append_tree() -> None:
    root = Tree("r", combine_children=True)
    leaf = Tree("leaf")
    assert root.append_tree(leaf) is leaf
    assert root.append_tree(Tree("leaf")) is leaf
    sub = Tree("sub")
    sub.append("s1")
    root.append_tree(sub)
    root.append_tree(sub)  # a tree with children is never combined
    assert render(root, truncate=False) == (
        "r\n├── 2*[leaf]\n├── sub\n│   └── s1\n└── sub\n    └── s1\n")


def test_tree_truncates_at_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "12")
    root = Tree("root")
    root.append("a-very-long-label-here")
    root.append("short")
    assert render(root) == "root\n├── a-very-+\n└── short\n"
    assert render(root, truncate=False).splitlines()[1] == "├── a-very-long-label-here"


# -- Fileref -------------------------------------------------------------------


def test_fileref_dict_data() -> None:
    ref = Fileref({"a": 1})
    assert isinstance(ref, dict)
    assert ref == {"mode": 0o600 | stat.S_IFREG, "data": {"a": 1}}
    assert json.loads(json.dumps(ref))["data"] == {"a": 1}
    assert Fileref({"a": 1}, perms=0o644)["mode"] == 0o644 | stat.S_IFREG


def test_fileref_explicit_encoding() -> None:
    assert Fileref("hello", encoding="utf-8") == {
        "mode": 0o600 | stat.S_IFREG, "data": "hello", "encoding": "utf-8"}
    assert Fileref("aGk=", perms=0o700, encoding="base64") == {
        "mode": 0o700 | stat.S_IFREG, "data": "aGk=", "encoding": "base64"}
    with pytest.raises(ValueError, match="invalid encoding: gzip"):
        Fileref("x", encoding="gzip")


def test_fileref_from_path(tmp_path: pytest.TempPathFactory) -> None:
    text = tmp_path / "t.sh"  # type: ignore[operator]
    text.write_text("#!/bin/sh\necho hi\n")
    os.chmod(text, 0o755)
    ref = Fileref(str(text))
    assert ref["encoding"] == "utf-8" and ref["data"] == "#!/bin/sh\necho hi\n"
    assert ref["size"] == len("#!/bin/sh\necho hi\n")
    assert ref["mode"] == os.stat(text).st_mode and stat.S_IMODE(ref["mode"]) == 0o755
    binary = tmp_path / "b.bin"  # type: ignore[operator]
    binary.write_bytes(b"\xff\x00\xfe")
    ref = Fileref(binary)
    assert ref["encoding"] == "base64"
    assert base64.b64decode(ref["data"]) == b"\xff\x00\xfe" and ref["size"] == 3


def test_fileref_missing_path() -> None:
    with pytest.raises(FileNotFoundError) as info:
        Fileref("/no/such/file")
    assert info.value.filename == "/no/such/file"


# -- CLIMain -------------------------------------------------------------------


def run_climain(body: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = ("import logging, sys\nfrom flux.util import CLIMain\n"
            "LOGGER = logging.getLogger('flux-test')\n"
            f"def main():\n{body}\n"
            "CLIMain(LOGGER)(main)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_climain_success_exits_zero() -> None:
    proc = run_climain("    print('ok')")
    assert proc.returncode == 0 and proc.stdout == "ok\n"


def test_climain_oserror_logs_strerror() -> None:
    proc = run_climain("    raise OSError(2, 'No such file or directory')")
    assert proc.returncode == 1
    assert proc.stderr == "flux-test: ERROR: No such file or directory\n"


def test_climain_oserror_with_filename() -> None:
    proc = run_climain("    open('/no/such')")
    assert proc.returncode == 1
    assert proc.stderr == "flux-test: ERROR: No such file or directory: '/no/such'\n"


def test_climain_other_exception_logs_str() -> None:
    proc = run_climain("    raise ValueError('bad thing')")
    assert proc.returncode == 1
    assert proc.stderr == "flux-test: ERROR: bad thing\n"
    assert "Traceback" not in proc.stderr


def test_climain_debug_loglevel_shows_traceback() -> None:
    proc = run_climain("    raise ValueError('bad thing')",
                       env={"FLUX_PYCLI_LOGLEVEL": str(logging.DEBUG)})
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_climain_keeps_sys_exit_code() -> None:
    assert run_climain("    sys.exit(3)").returncode == 3
    assert run_climain("    sys.exit(0)").returncode == 0
    assert run_climain("    sys.exit()").returncode == 0


# -- argparse helpers ----------------------------------------------------------


def test_help_formatter_option_layout() -> None:
    parser = argparse.ArgumentParser(prog="t", formatter_class=help_formatter())
    parser.add_argument("-l", "--long", metavar="N", help="with both")
    parser.add_argument("--only-long", help="long only")
    parser.add_argument("-f", "--flag", action="store_true", help="a flag")
    parser.add_argument("pos", help="positional")
    text = parser.format_help()
    assert "  -l, --long=N" in text
    assert "      --only-long=ONLY_LONG" in text
    assert "  -f, --flag " in text
    assert "\n  pos " in text


def test_help_formatter_width_and_raw_description() -> None:
    desc = "line one\n    indented line"
    parser = argparse.ArgumentParser(prog="t", description=desc,
                                     formatter_class=help_formatter(raw_description=True))
    assert "    indented line" in parser.format_help()
    parser = argparse.ArgumentParser(prog="t", description=desc,
                                     formatter_class=help_formatter())
    assert "line one indented line" in parser.format_help()
    narrow = argparse.ArgumentParser(prog="t", formatter_class=help_formatter(argwidth=10))
    narrow.add_argument("--option", help="HELPTEXT")
    lines = narrow.format_help().splitlines()
    # a long invocation puts the help text on its own line
    i = next(k for k, line in enumerate(lines) if "--option=OPTION" in line)
    assert "HELPTEXT" not in lines[i] and "HELPTEXT" in lines[i + 1]


def test_filter_actions() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", action=FilterActionUser)
    parser.add_argument("--name", action=FilterAction)
    parser.add_argument("-a", action=FilterTrueAction, dest="all")
    parser.add_argument("--states", action=FilterActionSetUpdate, default=set())
    args = parser.parse_args([])
    assert not hasattr(args, "filtered") and args.all is False
    args = parser.parse_args(["--name", "x"])
    assert args.name == "x" and args.filtered is True
    args = parser.parse_args(["-a"])
    assert args.all is True and args.filtered is True
    args = parser.parse_args(["--states=a,b", "--states", "c"])
    assert args.states == {"a", "b", "c"} and args.filtered is True
    args = parser.parse_args(["--user", "bob"])
    assert args.user == "bob" and args.filtered is True and args.filtereduser is True


def test_yes_no_action() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt", action=YesNoAction)
    assert parser.parse_args(["--opt=yes"]).opt is True
    assert parser.parse_args(["--opt", "no"]).opt is False
    assert parser.parse_args([]).opt is None
    with pytest.raises(ValueError, match="^--opt requires either 'yes' or 'no'$"):
        parser.parse_args(["--opt=maybe"])
    assert "[yes|no]" in parser.format_help()


def test_treedict_action() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action=TreedictAction, nargs="+")
    args = parser.parse_args(["--set", "a.b=1", "a.c=x", "d=[1,2]", 'e="q"'])
    assert args.set == {"a": {"b": 1, "c": "x"}, "d": [1, 2], "e": "q"}
    with pytest.raises(ValueError, match="Missing required value for key novalue"):
        parser.parse_args(["--set", "novalue"])


# -- xdg_searchpath, UtilConfig -----------------------------------------------


def test_xdg_searchpath(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/u/cfg")
    monkeypatch.setenv("XDG_CONFIG_DIRS", "/etc/a:/etc/b")
    assert [str(p) for p in xdg_searchpath()] == ["/home/u/cfg/flux", "/etc/a/flux",
                                                  "/etc/b/flux"]
    assert [str(p) for p in xdg_searchpath("jobs")] == ["/home/u/cfg/flux/jobs",
                                                        "/etc/a/flux/jobs", "/etc/b/flux/jobs"]
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_CONFIG_DIRS")
    monkeypatch.setenv("HOME", "/home/v")
    assert [str(p) for p in xdg_searchpath()] == ["/home/v/.config/flux", "/etc/xdg/flux"]


@pytest.fixture
def xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> tuple[object, object]:
    user = tmp_path / "user"  # type: ignore[operator]
    system = tmp_path / "system"  # type: ignore[operator]
    (user / "flux").mkdir(parents=True)
    (system / "flux").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(system))
    return user / "flux", system / "flux"


def test_util_config_precedence(xdg: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    user, system = xdg
    (system / "tool.toml").write_text('a = 1\nb = "sys"\n[formats.x]\nformat = "{id}"\n')
    (user / "tool.json").write_text('{"b": "user", "c": {"d": 2}}')
    (user / "tool.yaml").write_text("e: [1, 2]\n")
    (user / "tool.txt").write_text("ignored")
    (user / "other.toml").write_text("z = 1\n")
    conf = UtilConfig("tool", initial_dict={"a": 0, "init": True})
    assert conf.load() is conf
    assert conf.dict == {"a": 1, "b": "user", "c": {"d": 2}, "e": [1, 2], "init": True,
                         "formats": {"x": {"format": "{id}"}}}
    assert conf.a == 1 and conf.c == {"d": 2}
    with pytest.raises(AttributeError):
        conf.nope  # noqa: B018
    with pytest.raises(KeyError):
        conf.nope  # noqa: B018
    assert not hasattr(conf, "nope")


def test_util_config_initial_dict_is_copied(xdg: tuple) -> None:
    initial = {"a": {"b": 1}}
    user, _ = xdg
    (user / "t.toml").write_text("[a]\nc = 2\n")
    conf = UtilConfig("t", initial_dict=initial).load()
    assert conf.a == {"b": 1, "c": 2} and initial == {"a": {"b": 1}}


def test_util_config_subcommand(xdg: tuple) -> None:
    user, _ = xdg
    (user / "flux-x.toml").write_text('[sub.formats.f]\nformat = "{a}"\ndescription = "d"\n')
    conf = UtilConfig("flux-x", subcommand="sub").load()
    assert conf.formats == {"f": {"format": "{a}", "description": "d"}}
    assert conf.get_format_string("f") == "{a}"
    assert conf.get_format_string("{literal}") == "{literal}"
    with pytest.raises(ValueError, match="^--format: No such format nope$"):
        conf.get_format_string("nope")


def test_util_config_default_format_env(xdg: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    user, _ = xdg
    (user / "my-tool.toml").write_text('[formats.default]\nformat = "{d}"\n'
                                       '[formats.long]\nformat = "{l}"\n')
    conf = UtilConfig("my-tool").load()
    assert conf.get_format_string("default") == "{d}"
    monkeypatch.setenv("MY_TOOL_FORMAT_DEFAULT", "long")
    assert conf.get_format_string("default") == "{l}"
    monkeypatch.setenv("MY_TOOL_FORMAT_DEFAULT", "{custom}")
    assert conf.get_format_string("default") == "{custom}"


def test_util_config_format_help_and_get_config(xdg: tuple,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    user, _ = xdg
    (user / "t.toml").write_text('[formats.f]\nformat = "{a}"\ndescription = "Desc"\n')
    conf = UtilConfig("t").load()
    with pytest.raises(SystemExit) as info:
        conf.get_format_string("help")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Configured t output formats:" in out and "f" in out and "Desc" in out
    with pytest.raises(SystemExit):
        conf.get_format_string("get-config=f")
    out = capsys.readouterr().out
    assert out == '[formats.f]\ndescription = "Desc"\nformat = "{a}"\n'
    with pytest.raises(ValueError, match="No such format zz"):
        conf.get_format_string("get-config=zz")


@pytest.mark.parametrize("name,text", [("bad.toml", "a = [\n"), ("bad.json", "{nope"),
                                       ("bad.yaml", "a: [1, 2\n")])
def test_util_config_bad_file_names_path(xdg: tuple, name: str, text: str) -> None:
    user, _ = xdg
    (user / name).write_text(text)
    with pytest.raises(ValueError, match=str(user / name)):
        UtilConfig("bad").load()


def test_util_config_validate_formats(xdg: tuple) -> None:
    class Conf(UtilConfig):
        builtin_formats = {"default": {"format": "{x}"}}

        def validate(self, path: object, conf: dict) -> None:
            if "formats" in conf:
                self.validate_formats(path, conf["formats"])

    user, _ = xdg
    cases = [
        ("formats = 1\n", "the 'formats' key must be a mapping"),
        ('[formats.default]\nformat = "{y}"\n', "override of builtin format 'default' not"),
        ("[formats]\nf = 1\n", "'formats.f' must be a mapping"),
        ('[formats.f]\ndescription = "x"\n', "formats.f: required key 'format' missing"),
        ("[formats.f]\nformat = 1\n", "formats.f: 'format' key must be a string"),
    ]
    for text, message in cases:
        (user / "v.toml").write_text(text)
        with pytest.raises(ValueError, match=message):
            Conf("v").load()
    (user / "v.toml").write_text('[formats.f]\nformat = "{f}"\n')
    assert Conf("v").load().formats == {"f": {"format": "{f}"}}


# -- encode_payload, encode_topic ---------------------------------------------


def test_encode_payload() -> None:
    assert encode_payload(None) is None
    assert encode_payload("héllo") == "héllo".encode()
    assert encode_payload(b"\x00raw") == b"\x00raw"
    assert json.loads(encode_payload({"a": [1, "é"]})) == {"a": [1, "é"]}
    assert "é".encode() in encode_payload({"a": "é"})  # not \u escaped
    assert encode_payload("\udcff") == b"\xff"  # surrogateescape round trip


def test_encode_topic() -> None:
    assert encode_topic("a.b") == b"a.b"
    assert encode_topic(b"a.b") == b"a.b"
    with pytest.raises(OSError) as info:
        encode_topic(None)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "Topic must not be None/NULL"
    with pytest.raises(TypeError) as tinfo:
        encode_topic(5)
    assert tinfo.value.args == (errno.EINVAL, "Topic must be a string, not <class 'int'>")


# -- check_future_error, interruptible (broker-free parts) --------------------


class FakeFuture:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def error_string(self) -> str | None:
        return self.text

    @check_future_error
    def get(self) -> None:
        raise OSError(errno.ENOENT, "No such file or directory")


def test_check_future_error_uses_future_text() -> None:
    with pytest.raises(OSError) as info:
        FakeFuture("job 42 not found").get()
    assert info.value.errno == errno.ENOENT and info.value.strerror == "job 42 not found"
    with pytest.raises(OSError) as info:
        FakeFuture(None).get()
    assert info.value.strerror == "No such file or directory"


def test_check_future_error_handle_attribute_and_passthrough() -> None:
    class Wrapper:
        handle = FakeFuture("from handle")

        @check_future_error
        def get(self, value: int) -> int:
            if value < 0:
                raise OSError(errno.EINVAL, "Invalid argument")
            return value * 2

    assert Wrapper().get(4) == 8
    with pytest.raises(OSError, match="from handle"):
        Wrapper().get(-1)


def test_interruptible_restores_sigint_handler() -> None:
    import signal

    seen = []

    class F:
        def get_flux(self) -> object:
            return SimpleNamespace(reactor_running=lambda: False)

        @interruptible
        def get(self) -> str:
            seen.append(signal.getsignal(signal.SIGINT))
            return "done"

    before = signal.getsignal(signal.SIGINT)
    assert F().get() == "done"
    assert seen == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGINT) is before


def test_interruptible_inactive_in_reactor_or_without_handle() -> None:
    import signal

    seen = []

    class F:
        def __init__(self, h: object) -> None:
            self.h = h

        def get_flux(self) -> object:
            return self.h

        @interruptible
        def get(self) -> None:
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    F(None).get()
    F(SimpleNamespace(reactor_running=lambda: True)).get()
    assert seen == [before, before]


def test_interruptible_restores_handler_after_exception() -> None:
    import signal

    class F:
        def get_flux(self) -> object:
            return SimpleNamespace(reactor_running=lambda: False)

        @interruptible
        def get(self) -> None:
            raise OSError(errno.EIO, "boom")

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(OSError):
        F().get()
    assert signal.getsignal(signal.SIGINT) is before


def test_climain_default_logger_is_root() -> None:
    assert CLIMain().logger is logging.getLogger()
    mine = logging.getLogger("x")
    assert CLIMain(mine).logger is mine


def test_fsd_names_are_functions_after_submodule_import() -> None:
    import flux.util.fsd  # noqa: F401 - binds the submodule on the package

    from flux.util import fsd as fsd_func
    from flux.util import parse_fsd as parse

    assert callable(fsd_func) and fsd_func(90) == "1.5m" and parse("1m") == 60.0
