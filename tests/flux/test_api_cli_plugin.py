"""flux.cli.plugin and flux.cli.argparse, and CLI plugins in our flux submit/run.

Plugins are real files in a temporary plugin directory, found through
FLUX_CLI_PLUGINPATH (or FLUX_CLI_PLUGINPATH_OVERRIDE), as a site installs
them.  The commands run in-process (click's runner) with ``--dry-run``;
tests/integration/test_integration_api_jobspec.py submits for real.
"""
from __future__ import annotations

import argparse
import json
import textwrap
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli.main import main
from flux.cli.argparse import FluxArgumentParser
from flux.cli.plugin import CLIPlugin, CLIPluginRegistry, PluginArgsProxy
from flux.job.Jobspec import JobspecV1

SITE = """
    from flux.cli.plugin import CLIPlugin

    class SitePlugin(CLIPlugin):
        '''Site options.

        --site-gpumode sets the GPU mode of every node.
        '''

        def __init__(self, prog, prefix="site"):
            super().__init__(prog, prefix=prefix)
            self.add_option("--gpumode", metavar="MODE", choices=["CPX", "SPX"],
                            help="Set the GPU mode")
            self.add_option("--fast", action="store_true", help="Go fast")
            self.add_option("--tag", action="append", help="Add a tag")
            self.add_option("--level", type=int, default=3, help="A level")
            if self.prog == "submit":
                self.add_option("--submit-only", action="store_true", help="Only on submit")

        def preinit(self, args):
            args.fast_seen = bool(args.fast)

        def modify_jobspec(self, args, jobspec):
            if args.gpumode:
                jobspec.setattr_shell_option("gpumode", args.gpumode)
            jobspec.setattr("user.site", {"fast": args.fast_seen, "tags": args.tag,
                                          "level": args.level, "prog": self.prog,
                                          "ntasks": args.ntasks})

        def validate(self, jobspec):
            if jobspec.jobspec["attributes"]["system"].get("shell", {}).get(
                    "options", {}).get("gpumode") == "SPX" \\
                    and jobspec.resource_counts()["slot"] > 1:
                raise ValueError("SPX mode allows one task")
"""


def write(directory, name, source):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(source))
    return directory


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A plugin directory on FLUX_CLI_PLUGINPATH; system directories are ignored."""
    monkeypatch.delenv("FLUX_CLI_PLUGINPATH_OVERRIDE", raising=False)
    monkeypatch.setattr("flux.cli.plugin.SYSTEM_PLUGIN_DIRS", ())
    d = write(tmp_path / "plugins", "site.py", SITE)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", str(d))
    return d


def run(*args):
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def dry(*args, cmd="submit"):
    r = run(cmd, "--dry-run", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.splitlines()[0])


# ------------------------------------------------------------------ CLIPlugin

def test_cliplugin_prefixes_options_and_dests():
    p = CLIPlugin("flux submit")
    assert p.prog == "submit" and p.prefix == "ex" and p.version is None
    p.add_option("--my-opt", help="x")
    p.add_option("--other", dest="chosen")
    first, second = p.options
    assert (first.name, first.dest) == ("--ex-my-opt", "ex_my_opt")
    assert (second.name, second.dest) == ("--ex-other", "chosen")
    p = CLIPlugin("run", prefix="site", version="1.0")
    p.add_option("--x")
    assert p.options[0].name == "--site-x" and p.version == "1.0"
    for bad in ("-x", "x", "--"):
        with pytest.raises(ValueError, match="Plugins must register only long options."):
            CLIPlugin("run").add_option(bad)


def test_plugin_args_proxy_maps_unprefixed_names():
    ns = SimpleNamespace(site_mode="a", ntasks=4)
    proxy = PluginArgsProxy(ns, {"mode": "site_mode"})
    assert proxy.mode == "a" and proxy.site_mode == "a" and proxy.ntasks == 4
    proxy.mode = "b"
    proxy.extra = 1
    assert ns.site_mode == "b" and ns.extra == 1
    with pytest.raises(AttributeError):
        proxy.nothing


# ------------------------------------------------------------------ CLIPluginRegistry

def test_registry_loads_plugins_and_runs_callbacks(plugins):
    reg = CLIPluginRegistry("submit")
    assert [type(p).__name__ for p in reg.plugins] == ["SitePlugin"]
    assert reg.plugins[0].path == str(plugins / "site.py")
    assert [o.dest for o in reg.options] == ["site_gpumode", "site_fast", "site_tag",
                                             "site_level", "site_submit_only"]
    assert [o.dest for o in CLIPluginRegistry("run").options][-1] == "site_level"
    args = SimpleNamespace(site_gpumode="CPX", site_fast=True, site_tag=["a"], site_level=5,
                           ntasks=2)
    reg.preinit(args)
    assert args.fast_seen is True
    js = JobspecV1.from_command(["a"], environment={})
    reg.modify_jobspec(args, js)
    assert js.getattr("shell.options.gpumode") == "CPX"
    assert js.attributes["user"]["site"]["prog"] == "submit"
    reg.validate(js)
    js.setattr_shell_option("gpumode", "SPX")
    reg.validate(js)      # one slot: fine
    big = JobspecV1.from_command(["a"], num_tasks=2, environment={})
    big.setattr_shell_option("gpumode", "SPX")
    with pytest.raises(ValueError, match="SPX mode allows one task"):
        reg.validate(big)


def test_registry_search_path_and_override(plugins, tmp_path, monkeypatch):
    other = write(tmp_path / "other", "o.py", """
        from flux.cli.plugin import CLIPlugin
        class Other(CLIPlugin):
            def __init__(self, prog):
                super().__init__(prog, prefix="oth")
                self.add_option("--x")
    """)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", f"{plugins}:{other}")
    assert {type(p).__name__ for p in CLIPluginRegistry("run").plugins} == {"SitePlugin", "Other"}
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", str(other))
    reg = CLIPluginRegistry("run")
    assert [type(p).__name__ for p in reg.plugins] == ["Other"]
    assert reg.plugindirs == [str(other)]
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")
    reg = CLIPluginRegistry("run")
    assert reg.plugins == [] and reg.options == [] and reg.plugindirs == []


def test_a_plugin_whose_dest_is_taken_is_dropped(plugins, tmp_path, monkeypatch):
    later = write(tmp_path / "later", "dup.py", """
        from flux.cli.plugin import CLIPlugin
        class Dup(CLIPlugin):
            def __init__(self, prog):
                super().__init__(prog, prefix="site")
                self.add_option("--gpumode")
                self.add_option("--unique")
    """)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", f"{plugins}:{later}")
    reg = CLIPluginRegistry("submit")
    assert [type(p).__name__ for p in reg.plugins] == ["SitePlugin"]
    assert "site_unique" not in {o.dest for o in reg.options}


def test_print_help_and_print_plugins(plugins, capsys):
    reg = CLIPluginRegistry("submit")
    with pytest.raises(SystemExit) as info:
        reg.print_help("--site-gpumode")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Documentation for plugin providing option `--site-gpumode`" in out
    assert "--site-gpumode sets the GPU mode of every node." in out
    with pytest.raises(SystemExit):
        reg.print_help("site-fast")          # without the dashes
    with pytest.raises(ValueError, match="^--help: no such option --nope$"):
        reg.print_help("--nope")
    capsys.readouterr()
    reg.print_plugins()
    out = capsys.readouterr().out
    assert out.startswith("Options provided by plugins:\n")
    assert f"Search path: {plugins}" in out
    assert f"SitePlugin loaded from {plugins / 'site.py'}" in out
    assert "--site-gpumode" in out and "Set the GPU mode" in out


def test_a_broken_plugin_file_is_reported(tmp_path, monkeypatch):
    d = write(tmp_path / "broken", "bad.py", "def (:\n")
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", str(d))
    with pytest.raises(ValueError, match=r"failed to load CLI plugin .*bad\.py: SyntaxError"):
        CLIPluginRegistry("submit")


# ------------------------------------------------------------------ FluxArgumentParser

def test_flux_argument_parser_refuses_abbreviations():
    p = FluxArgumentParser(prog="t")
    p.add_argument("--ntasks", type=int)
    assert p.parse_args(["--ntasks", "2"]).ntasks == 2
    with pytest.raises(SystemExit):
        p.parse_args(["--ntask", "2"])


def test_flux_argument_parser_posix_mode_stops_at_the_command():
    p = FluxArgumentParser(prog="t", posix=True)
    p.add_argument("-n", "--ntasks", type=int, default=1)
    p.add_argument("-v", action="store_true")
    p.add_argument("--env", action="append")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(["-n", "2", "--env=A", "-v", "app", "-n", "5", "--env", "x"])
    assert args.ntasks == 2 and args.v and args.env == ["A"]
    assert args.command == ["app", "-n", "5", "--env", "x"]
    assert p.parse_args(["-n2", "--", "-v"]).command == ["--", "-v"]   # a user -- is kept
    assert p.parse_args([]).command == []
    with pytest.raises(SystemExit):      # posix mode without a REMAINDER positional
        FluxArgumentParser(prog="t", posix=True).parse_args(["stray"])


def test_hidden_aliases_parse_but_stay_out_of_help(capsys):
    p = FluxArgumentParser(prog="t", argwidth=30)
    p.add_argument("--queues", hidden_aliases=("--queue",), help="Queues to list")
    group = p.add_argument_group("more")
    group.add_argument("--states", hidden_aliases=["--state"], help="States")
    assert p.parse_args(["--queue", "a", "--state", "b"]) == \
        argparse.Namespace(queues="a", states="b")
    help_text = p.format_help()
    assert "--queues" in help_text and "--states" in help_text
    assert "--queue " not in help_text and "--queue," not in help_text
    assert "--state " not in help_text and "--state," not in help_text
    with pytest.raises(TypeError, match="hidden_aliases must be a tuple or list"):
        p.add_argument("--x", hidden_aliases="--y")


def test_raw_description_keeps_line_breaks():
    text = "line one\n  indented two\n"
    assert "line one\n  indented two" in FluxArgumentParser(
        prog="t", description=text, raw_description=True).format_help()
    assert "line one indented two" in FluxArgumentParser(prog="t",
                                                        description=text).format_help()


# ------------------------------------------------------------------ our flux submit / run

@pytest.mark.parametrize("cmd", ["submit", "run"])
def test_plugin_options_appear_in_help(plugins, cmd):
    r = run(cmd, "--help")
    assert r.exit_code == 0
    builtin, _, provided = r.stdout.partition("Options provided by plugins:")
    assert "--ntasks" in builtin and "--site-gpumode" not in builtin
    assert "--site-gpumode MODE" in provided and "Set the GPU mode" in provided
    assert "--site-level INT" in provided
    assert ("--site-submit-only" in provided) == (cmd == "submit")


def test_help_without_plugins_has_no_plugin_section(monkeypatch):
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")
    r = run("submit", "--help")
    assert r.exit_code == 0 and "provided by plugins" not in r.stdout


@pytest.mark.parametrize("cmd", ["submit", "run"])
def test_plugin_options_modify_the_jobspec(plugins, cmd):
    js = dry("-n2", "--site-gpumode=CPX", "--site-fast", "--site-tag=a", "--site-tag", "b",
             "--site-level", "7", "true", cmd=cmd)
    assert js["attributes"]["system"]["shell"]["options"]["gpumode"] == "CPX"
    assert js["attributes"]["user"]["site"] == {"fast": True, "tags": ["a", "b"], "level": 7,
                                                "prog": cmd, "ntasks": 2}
    js = dry("true", cmd=cmd)
    assert js["attributes"]["user"]["site"] == {"fast": False, "tags": None, "level": 3,
                                                "prog": cmd, "ntasks": 1}


def test_plugin_option_errors_are_usage_errors(plugins):
    r = run("submit", "--dry-run", "--site-gpumode=XX", "true")
    assert r.exit_code == 2 and "invalid choice: 'XX'" in r.output
    r = run("submit", "--dry-run", "--site-level=high", "true")
    assert r.exit_code == 2 and "invalid int value: 'high'" in r.output
    r = run("run", "--dry-run", "--site-submit-only", "true")
    assert r.exit_code == 2


@pytest.mark.parametrize("cmd", ["submit", "run"])
def test_plugin_validate_refuses_before_submitting(plugins, cmd):
    r = run(cmd, "--dry-run", "-n2", "--site-gpumode=SPX", "true")
    assert r.exit_code == 1
    assert r.stderr == f"flux-{cmd}: SPX mode allows one task\n"


def test_plugins_apply_to_every_cc_copy(plugins):
    r = run("submit", "--dry-run", "--cc=1-2", "--site-gpumode=CPX", "echo", "{cc}")
    specs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [s["tasks"][0]["command"] for s in specs] == [["echo", "1"], ["echo", "2"]]
    assert all(s["attributes"]["system"]["shell"]["options"]["gpumode"] == "CPX"
               for s in specs)


def test_broken_or_clashing_plugins_exit_1_naming_the_problem(tmp_path, monkeypatch):
    d = write(tmp_path / "broken", "bad.py", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", str(d))
    r = run("submit", "--dry-run", "true")
    assert r.exit_code == 1
    assert r.stderr.startswith("flux-submit: CLI plugins: failed to load CLI plugin ")
    assert "RuntimeError: boom" in r.stderr
    d = write(tmp_path / "clash", "c.py", """
        from flux.cli.plugin import CLIPlugin
        class Clash(CLIPlugin):
            def __init__(self, prog):
                super().__init__(prog)
                self.add_option("--n", dest="ntasks")
    """)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", str(d))
    r = run("run", "--dry-run", "true")
    assert r.exit_code == 1
    assert r.stderr == ("flux-run: CLI plugins: --ex-n (dest ntasks) conflicts with a "
                        "builtin option\n")
