"""flux.uri: JobURI, FluxURIResolver and its pid/slurm/lsf/jobid plugins (no broker).

The jobid plugin against real instances is in ``test_api_uri_live.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

import flux
import flux.job
from flux.uri import (
    URI,
    FluxURIResolver,
    JobURI,
    URIResolverPlugin,
    URIResolverURI,
    hostname,
    local_socket_path,
)

HOST = hostname()


# -- JobURI --------------------------------------------------------------------


def test_joburi_parts_and_forms() -> None:
    uri = JobURI("local:///tmp/flux-abc/local")
    assert (uri.scheme, uri.netloc, uri.path) == ("local", "", "/tmp/flux-abc/local")
    assert uri.local == "local:///tmp/flux-abc/local"
    assert uri.remote == f"ssh://{HOST}/tmp/flux-abc/local"
    assert str(uri) == "local:///tmp/flux-abc/local"
    ssh = JobURI("ssh://node1/tmp/x/local?opt=1#frag")
    assert (ssh.scheme, ssh.netloc, ssh.path, ssh.query, ssh.fragment) == \
        ("ssh", "node1", "/tmp/x/local", "opt=1", "frag")
    assert ssh.params == ""
    assert ssh.query_dict == {"opt": ["1"]}
    assert ssh.remote == "ssh://node1/tmp/x/local?opt=1#frag"
    assert ssh.local == "local:///tmp/x/local"


def test_joburi_remote_hostname_and_path_cleanup() -> None:
    assert JobURI("local:///a/b", remote_hostname="login1").remote == "ssh://login1/a/b"
    assert JobURI("ssh://n//a///b").local == "local:///a/b"


def test_joburi_errors() -> None:
    with pytest.raises(ValueError, match="does not have a valid scheme"):
        JobURI("")
    with pytest.raises(ValueError, match="does not have a valid scheme"):
        JobURI("/tmp/sock")
    other = JobURI("tcp://host:1234")
    with pytest.raises(ValueError, match="Cannot convert JobURI with scheme tcp to remote"):
        other.remote  # noqa: B018
    with pytest.raises(ValueError, match="Cannot convert JobURI with scheme tcp to local"):
        other.local  # noqa: B018


def test_joburi_force_local(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = JobURI("ssh://n1/tmp/x")
    monkeypatch.setenv("FLUX_URI_RESOLVE_LOCAL", "t")
    assert str(uri) == "local:///tmp/x"
    monkeypatch.delenv("FLUX_URI_RESOLVE_LOCAL")
    assert str(uri) == "ssh://n1/tmp/x"


def test_uri_query_dict_keeps_blank_values() -> None:
    assert URI("ssh://h/p?local").query_dict == {"local": [""]}
    target = URIResolverURI("pid:1234?local&x=2")
    assert (target.scheme, target.path, target.query) == ("pid", "1234", "local&x=2")
    assert target.query_dict == {"local": [""], "x": ["2"]}
    bare = URIResolverURI("ƒAbc/ƒDef")
    assert (bare.scheme, bare.path) == ("", "ƒAbc/ƒDef")
    assert URIResolverURI("slurm:123").path == "123"
    assert URIResolverURI("jobid://a//b").path == "//a//b"


def test_local_socket_path_still_works(tmp_path: Path) -> None:
    assert local_socket_path("local:///run/x/local") == "/run/x/local"
    assert local_socket_path(f"local://{tmp_path}") == f"{tmp_path}/local"


# -- resolver dispatch -----------------------------------------------------------


@pytest.fixture(scope="module")
def resolver() -> FluxURIResolver:
    return FluxURIResolver()


def test_builtin_plugins(resolver: FluxURIResolver) -> None:
    assert set(resolver.plugins()) >= {"jobid", "pid", "slurm", "lsf"}
    assert resolver.plugins()["pid"] == "Get FLUX_URI for a given local PID"
    assert all(isinstance(p, URIResolverPlugin) for p in resolver.resolvers.values())


def test_ssh_and_local_pass_through(resolver: FluxURIResolver) -> None:
    result = resolver.resolve("ssh://node1/tmp/sock")
    assert isinstance(result, JobURI) and str(result) == "ssh://node1/tmp/sock"
    assert str(resolver.resolve("local:///tmp/sock")) == "local:///tmp/sock"
    assert str(resolver.resolve("ssh://node1/tmp/sock?local")) == "local:///tmp/sock"
    assert str(resolver.resolve("local:///tmp/sock?remote")) == f"ssh://{HOST}/tmp/sock"


def test_unknown_scheme(resolver: FluxURIResolver) -> None:
    with pytest.raises(NotImplementedError, match="^No plugin for URI scheme bogus$"):
        resolver.resolve("bogus:123")


def test_local_and_remote_together(resolver: FluxURIResolver) -> None:
    with pytest.raises(ValueError, match="Only one of 'local' or 'remote' is allowed"):
        resolver.resolve("pid:1?local&remote")
    with pytest.raises(ValueError, match="Only one of 'local' or 'remote' is allowed"):
        resolver.resolve("ƒ1234?remote&local")


def test_pluginpath_adds_and_overrides(tmp_path: Path) -> None:
    plugdir = tmp_path / "flux" / "uri" / "resolvers"
    plugdir.mkdir(parents=True)
    (plugdir / "echo.py").write_text(textwrap.dedent("""
        from flux.uri import URIResolverPlugin

        class URIResolver(URIResolverPlugin):
            def describe(self):
                return "echo a path as a local URI"

            def resolve(self, uri):
                return "local://" + uri.path
    """))
    (plugdir / "pid.py").write_text(textwrap.dedent("""
        from flux.uri import URIResolverPlugin

        class URIResolver(URIResolverPlugin):
            def describe(self):
                return "replaced"

            def resolve(self, uri):
                return "ssh://h/replaced"
    """))
    resolver = FluxURIResolver(pluginpath=[str(tmp_path)])
    assert resolver.plugins()["echo"] == "echo a path as a local URI"
    assert str(resolver.resolve("echo:/tmp/s")) == "local:///tmp/s"
    assert str(resolver.resolve("echo:/tmp/s?remote")) == f"ssh://{HOST}/tmp/s"
    assert str(resolver.resolve("pid:1")) == "ssh://h/replaced"
    assert str(resolver.resolve("pid:1?local")) == "local:///replaced"


def test_broken_plugin_is_an_import_error(tmp_path: Path) -> None:
    plugdir = tmp_path / "flux" / "uri" / "resolvers"
    plugdir.mkdir(parents=True)
    (plugdir / "bad.py").write_text("raise RuntimeError('oops')\n")
    with pytest.raises(ImportError, match="bad.py: oops"):
        FluxURIResolver(pluginpath=[str(tmp_path)])
    (plugdir / "bad.py").write_text("x = 1\n")
    with pytest.raises(ImportError, match="'bad' defines no URIResolver"):
        FluxURIResolver(pluginpath=[str(tmp_path)])


# -- pid -------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    env = dict(os.environ, FLUX_URI="local:///tmp/some-instance/local")
    proc = subprocess.Popen(["sleep", "60"], env=env)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


LISTENER = """
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(sys.argv[1], "local"))
s.listen()
print("ready", flush=True)
time.sleep(60)
"""


def start_listener(directory: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(directory)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_pid_of_a_process_with_flux_uri(resolver: FluxURIResolver,
                                        sleeper: subprocess.Popen) -> None:
    result = resolver.resolve(f"pid:{sleeper.pid}")
    assert isinstance(result, JobURI)
    assert str(result) == "local:///tmp/some-instance/local"
    assert str(resolver.resolve(f"pid:{sleeper.pid}?remote")) == \
        f"ssh://{HOST}/tmp/some-instance/local"


def test_pid_of_a_listening_broker(resolver: FluxURIResolver, tmp_path: Path) -> None:
    proc = start_listener(tmp_path, env={"FLUX_URI": "local:///parent/local"})
    try:
        # the socket it serves wins over the FLUX_URI it inherited
        assert str(resolver.resolve(f"pid:{proc.pid}")) == f"local://{tmp_path}/local"
    finally:
        proc.kill()
        proc.wait()


def test_pid_errors(resolver: FluxURIResolver) -> None:
    no_uri = subprocess.Popen(["sleep", "60"],
                              env={k: v for k, v in os.environ.items() if k != "FLUX_URI"})
    try:
        with pytest.raises(ValueError, match=f"PID {no_uri.pid} doesn't seem to have a FLUX_URI"):
            resolver.resolve(f"pid:{no_uri.pid}")
    finally:
        no_uri.kill()
        no_uri.wait()
    with pytest.raises(ValueError, match="invalid PID 'abc'"):
        resolver.resolve("pid:abc")
    with pytest.raises(ValueError, match="invalid PID '0'"):
        resolver.resolve("pid:0")
    with pytest.raises(ValueError, match="PID 99999999 not found"):
        resolver.resolve("pid:99999999")
    with pytest.raises(ValueError, match="no PID"):
        resolver.resolve("pid:")


# -- slurm (fake scontrol / srun) --------------------------------------------------


def fake_command(bindir: Path, name: str, script: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")
    return path


def test_slurm_local_pids(resolver: FluxURIResolver, bindir: Path,
                          sleeper: subprocess.Popen) -> None:
    fake_command(bindir, "scontrol", textwrap.dedent(f"""\
        echo "PID      JOBID    STEPID   LOCALID GLOBALID"
        echo "1        99       batch    5       -"
        echo "{sleeper.pid}    99       0        0       0"
    """))
    result = resolver.resolve("slurm:99")
    assert str(result) == f"ssh://{HOST}/tmp/some-instance/local"
    assert str(resolver.resolve("slurm:99?local")) == "local:///tmp/some-instance/local"


def test_slurm_no_flux_in_job(resolver: FluxURIResolver, bindir: Path) -> None:
    fake_command(bindir, "scontrol", 'echo "PID JOBID STEPID LOCALID GLOBALID"\n')
    with pytest.raises(ValueError, match="Slurm job 7 doesn't seem to have a FLUX_URI"):
        resolver.resolve("slurm:7")


def test_slurm_remote_through_srun(resolver: FluxURIResolver, bindir: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_URI", "local:///mine")
    fake_command(bindir, "scontrol", "exit 1\n")
    fake_command(bindir, "srun", f'echo "$@ FLUX_URI=$FLUX_URI" > {tmp_path}/srun.args\n'
                                 'echo ssh://node7/tmp/f/local\n')
    assert str(resolver.resolve("slurm:42")) == "ssh://node7/tmp/f/local"
    assert (tmp_path / "srun.args").read_text() == \
        "--overlap --jobid=42 -n1 -N1 flux uri slurm:42 FLUX_URI=\n"
    fake_command(bindir, "srun", "exit 1\n")
    with pytest.raises(ValueError, match="Unable to resolve Flux URI for Slurm job 42"):
        resolver.resolve("slurm:42")


def test_slurm_without_slurm(resolver: FluxURIResolver, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match="scontrol failed and srun was not found"):
        resolver.resolve("slurm:42")


# -- lsf (fake CSM query and ssh) --------------------------------------------------


def test_lsf_from_login_node(resolver: FluxURIResolver, bindir: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake_command(bindir, "csmquery", 'echo "compute_nodes: [node3, node1, node2]"\n')
    fake_command(bindir, "fakessh", f'echo "$@" > {tmp_path}/ssh.args\n'
                                    'echo ssh://node1/tmp/lsf/local\n')
    monkeypatch.setenv("CSM_ALLOCATION_QUERY", str(bindir / "csmquery"))
    monkeypatch.setenv("FLUX_SSH", str(bindir / "fakessh"))
    monkeypatch.setenv("FLUX_SSH_RCMD", "/opt/flux/bin/flux")
    assert str(resolver.resolve("lsf:1234")) == "ssh://node1/tmp/lsf/local"
    assert (tmp_path / "ssh.args").read_text() == \
        "node1 /opt/flux/bin/flux uri --remote lsf:1234?is_compute\n"
    fake_command(bindir, "fakessh", "exit 255\n")
    with pytest.raises(ValueError, match="LSF Job 1234 doesn't seem to have a FLUX_URI"):
        resolver.resolve("lsf:1234")
    fake_command(bindir, "csmquery", 'echo "no: nodes"\n')
    with pytest.raises(ValueError, match="Unable to find a compute node attached to job 1234"):
        resolver.resolve("lsf:1234")


def test_lsf_on_compute_node(resolver: FluxURIResolver, tmp_path: Path) -> None:
    proc = start_listener(tmp_path, env={"LSB_JOBID": "4321"})
    try:
        assert str(resolver.resolve("lsf:4321?is_compute")) == f"ssh://{HOST}{tmp_path}/local"
        with pytest.raises(ValueError, match="Unable to find a flux session"):
            resolver.resolve("lsf:999999?is_compute")
    finally:
        proc.kill()
        proc.wait()


# -- jobid with stand-in instances (the live tests cover real ones) -------------------


class FakeHandle:
    """A handle onto one of several fake instances, each a {jobid: (state, uri)} map."""

    instances: dict[str, dict[int, tuple[str, str]]] = {}
    opened: list[str] = []

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or os.environ["FLUX_URI"]
        FakeHandle.opened.append(self.uri)

    def close(self) -> None:
        pass


def fake_job_list_id(handle: FakeHandle, jobid: Any, attrs: Any = ()) -> Any:
    jobs = FakeHandle.instances[handle.uri]
    if int(jobid) not in jobs:
        raise FileNotFoundError(2, "unknown job")
    state, uri = jobs[int(jobid)]
    info = SimpleNamespace(state=state, user=SimpleNamespace(uri=uri))
    return SimpleNamespace(get_jobinfo=lambda: info)


@pytest.fixture
def fake_instances(monkeypatch: pytest.MonkeyPatch) -> type[FakeHandle]:
    monkeypatch.setattr(flux, "Flux", FakeHandle, raising=False)
    monkeypatch.setattr(flux.job, "job_list_id", fake_job_list_id)
    monkeypatch.setenv("FLUX_URI", "local:///top/local")
    FakeHandle.opened = []
    FakeHandle.instances = {
        "local:///top/local": {1000: ("RUN", f"ssh://{HOST}/child/local"),
                               2000: ("RUN", "")},
        "local:///child/local": {3000: ("RUN", "ssh://n5/grandchild/local")},
    }
    return FakeHandle


def test_jobid_resolves_and_descends(resolver: FluxURIResolver,
                                     fake_instances: type[FakeHandle]) -> None:
    from flux.job import JobID

    top, inner = JobID(1000), JobID(3000)
    assert str(resolver.resolve(top.f58)) == f"ssh://{HOST}/child/local"
    assert str(resolver.resolve(f"jobid:{top.f58}?local")) == "local:///child/local"
    assert str(resolver.resolve(f"{top.f58}/{inner.f58}")) == "ssh://n5/grandchild/local"
    # the inner instance is reached through its local socket
    assert fake_instances.opened[-2:] == ["local:///top/local", "local:///child/local"]
    assert str(resolver.resolve(f"//{top}//{inner.dothex}/?local")) == \
        "local:///grandchild/local"


def test_jobid_errors_with_stand_ins(resolver: FluxURIResolver,
                                     fake_instances: type[FakeHandle]) -> None:
    from flux.job import JobID

    with pytest.raises(ValueError, match=f"URI not found for job {JobID(2000).f58}"):
        resolver.resolve(JobID(2000).f58)
    with pytest.raises(ValueError, match="jobid 4000 not found"):
        resolver.resolve("1000/4000")


def test_jobid_invalid(resolver: FluxURIResolver, fake_instances: type[FakeHandle]) -> None:
    with pytest.raises(ValueError, match="^not-a-job! is not a valid jobid$"):
        resolver.resolve("not-a-job!")


def test_uri_module_import_is_light() -> None:
    code = ("import sys, flux.uri; "
            "print(','.join(m for m in ('urllib.parse', 'flux.job', 'pkgutil', 'yaml') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "flux.job" not in proc.stdout and "yaml" not in proc.stdout


def test_uri_import_does_not_pull_typing() -> None:
    # every command imports flux.uri (through the handle): keep it cheap
    code = "import sys, flux.uri; print('typing' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
