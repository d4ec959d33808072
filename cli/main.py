"""Entry point of the ``flux`` command.

Subcommands live one per module as ``cli/cmd_<name>.py`` (dashes in the
command name become underscores) and expose a click command named
``command``.  They are imported only when invoked, so ``flux jobs`` does
not pay for ``flux start``'s imports.

Scripts call a few commands in loops, and importing click alone costs
more than such a command should take.  So ``main`` first tries a fast
path, without click, for the plain forms of ``flux kvs get KEY...``,
``flux job eventlog JOBID``, ``flux getattr NAME``, ``flux run
COMMAND...`` and ``flux submit COMMAND...``: same output, same error texts, same exit codes.  Anything else (an option, ``--help``, a
usage error, a job id in a rarer encoding, a terminal to colour for) goes
to the click application, which also handles the errors the fast path
does not reproduce itself; the fast path never falls back after it has
written anything.  ``main`` is also what tests hand to click's
``CliRunner``: it has the click group's ``main()`` signature.

``flux -p CMD`` (``--parent``, repeatable, ``-pp``) runs CMD against the
parent instance, and ``flux -r CMD`` (``--root``) against the root: before
anything else, ``main`` points ``FLUX_URI`` at the ``parent-uri`` of the
instance it names (once per ``-p``; as often as ``instance-level`` says
for ``-r``) and sets ``FLUX_KVS_NAMESPACE`` to its
``parent-kvs-namespace`` (or unsets it), as flux(1) does.  At the root
there is no parent and nothing changes.
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

#: the fast path could not serve this command line: use the click application
FALLBACK = None


# -- fast paths ---------------------------------------------------------------------------


class _Fallback(Exception):
    """Raised before any output when the fast path cannot reproduce what click would do."""


def _die(prog: str, message: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"flux-{prog}: {message}\n")
    sys.stderr.flush()
    return 1


def _die_flux(exc: OSError) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"flux: {exc.strerror or exc}\n")
    sys.stderr.flush()
    return 1


def _handle() -> "object":
    """A connection, or _Fallback: the click path reports connection errors itself."""
    from flux.core.handle import Flux

    try:
        return Flux()
    except OSError:
        raise _Fallback() from None


def _request(text: dict) -> str:
    import flux.jsonc as jsonc

    return jsonc.dumps(text)


def _response(future: "object") -> dict:
    import flux.jsonc as jsonc

    text = future.get_str()  # type: ignore[attr-defined]
    if text is None:
        raise _Fallback()
    return jsonc.loads(text)


def _plain_args(args: list[str], count: int | None = None) -> bool:
    """Only positional arguments (COUNT of them, if given), none looking like an option."""
    if count is not None and len(args) != count:
        return False
    return bool(args) and not any(a.startswith("-") for a in args)


# flux kvs get KEY...: as cmd_kvs.get prints values and failures
_KVS_PLAIN = None


def _kvs_reason(exc: OSError) -> str:
    import errno

    global _KVS_PLAIN
    if _KVS_PLAIN is None:
        _KVS_PLAIN = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EPERM, errno.ENOTSUP,
                      errno.EEXIST, errno.ELOOP, errno.ENOTEMPTY, errno.EFBIG}
    if exc.errno in _KVS_PLAIN:
        return os.strerror(exc.errno)
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


def _fast_kvs_get(keys: list[str]) -> int:
    import binascii

    from kvs.constants import PRIMARY_NAMESPACE

    h = _handle()
    ns = os.environ.get("FLUX_KVS_NAMESPACE") or PRIMARY_NAMESPACE
    # all lookups in flight at once, printed in order as ``flux kvs get`` prints them
    futures = [h.rpc("kvs.lookup", _request({"key": k, "flags": 0, "namespace": ns}))  # type: ignore[attr-defined]
               for k in keys]
    out = sys.stdout.buffer
    for key, future in zip(keys, futures):
        try:
            resp = _response(future)
        except OSError as exc:
            text = _kvs_reason(exc)
            return _die("kvs", text if text.startswith(f"{key}: ") else f"{key}: {text}")
        val = resp.get("val") if isinstance(resp, dict) else None
        if not isinstance(val, dict):
            return _die("kvs", f"{key}: the kvs service sent no value")
        # the messages of flux.kvs.val_data, which the click path prints
        if val.get("type") != "val":
            return _die("kvs", f"expected a val treeobj, got type {val.get('type')!r}")
        try:
            data = binascii.a2b_base64(val["data"], strict_mode=True)
        except (binascii.Error, KeyError, TypeError) as exc:
            return _die("kvs", f"val treeobj has bad data: {exc}")
        out.write(data + b"\n" if data else b"")
        out.flush()
    return 0


# flux getattr NAME: as cmd_getattr prints it
def _fast_getattr(name: str) -> int:
    h = _handle()
    try:
        value = h.attr_get(name)  # type: ignore[attr-defined]
    except (OSError, ValueError, TypeError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _die("getattr", text)
    sys.stdout.write(f"{value}\n")
    sys.stdout.flush()
    return 0


# flux job eventlog JOBID: as job_eventlog.eventlog prints the log (text, raw timestamps)
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _jobid(text: str) -> int:
    """Decimal, 0x hex or F58 job ids (as flux.job.JobID reads them); _Fallback for others."""
    if text and text[0] in "\u0192f" and len(text) > 1:
        value = 0
        for c in text[1:]:
            digit = _B58.find(c)
            if digit < 0:
                raise _Fallback()
            value = value * 58 + digit
    elif text.startswith("0x") and len(text) > 2:
        try:
            value = int(text[2:], 16)
        except ValueError:
            raise _Fallback() from None
        if not text[2:].isascii() or not text[2:].isalnum():
            raise _Fallback()
    elif text.isascii() and text.isdigit():
        value = int(text)
    else:
        raise _Fallback()
    if value >= 1 << 64:
        raise _Fallback()
    return value


def _event_line(entry: object) -> str:
    """One entry as EventLogFormatter's text format with raw timestamps, no colour."""
    import flux.jsonc as jsonc

    if not isinstance(entry, dict):
        raise _Fallback()
    ts = entry.get("timestamp")
    name = entry.get("name")
    context = entry.get("context", {})
    if (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not isinstance(name, str)
            or not isinstance(context, dict)):
        raise _Fallback()
    parts = [f"{ts:11.6f}", name]
    for key, val in context.items():
        parts.append(f"{key}=" + jsonc.dumps(val))
    return " ".join(parts)


def _fast_job_eventlog(text: str) -> int:
    import errno

    import flux.jsonc as jsonc

    if sys.stdout.isatty():
        raise _Fallback()  # colour: the formatter's job
    jobid = _jobid(text)
    h = _handle()
    future = h.rpc("job-info.lookup",  # type: ignore[attr-defined]
                   _request({"id": jobid, "keys": ["eventlog"], "flags": 0}))
    try:
        resp = _response(future)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return _die("job", f"job {text} not found")
        detail = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
        if exc.errno == errno.EPERM:
            return _die("job", f"job {text}: {detail}")
        return _die("job", detail)
    log = resp.get("eventlog") if isinstance(resp, dict) else None
    if not isinstance(log, str):
        raise _Fallback()
    try:
        lines = [_event_line(jsonc.loads(line)) for line in log.split("\n")[:-1] if line]
    except (ValueError, TypeError):
        raise _Fallback() from None
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return 0


# flux run COMMAND... / flux submit COMMAND...: as cmd_run / cmd_submit do when no
# option is given
def plain_jobspec(prog: str, command: list[str]) -> tuple["object", dict]:
    """The SubmitArgs and jobspec of ``flux PROG COMMAND`` (run or submit) without options.

    _Fallback if a CLI plugin adds options (their defaults are click's to
    give) or cannot be loaded (click's path reports that).
    """
    from cli.submitargs import SubmitArgs, build_jobspec
    from flux.cli.plugin import CLIPluginRegistry

    try:
        registry = CLIPluginRegistry(prog)
    except (ValueError, TypeError, OSError):
        raise _Fallback() from None
    if registry.options:
        raise _Fallback()
    args = SubmitArgs(command=list(command), prog=prog)
    return args, build_jobspec(args, registry).jobspec


def _fast_run(command: list[str]) -> int:
    try:
        args, jobspec = plain_jobspec("run", command)
    except (ValueError, TypeError, OSError) as exc:
        return _die("run", str(exc))
    from cli.run_job import submit_and_follow

    submit_and_follow(args, jobspec)  # type: ignore[arg-type]


def _fast_submit(command: list[str]) -> int:
    try:
        args, jobspec = plain_jobspec("submit", command)
    except (ValueError, TypeError, OSError) as exc:
        return _die("submit", str(exc))
    from cli.job_common import open_handle
    from cli.job_submit import Submitter

    h = open_handle("submit")
    try:
        jobid = Submitter(h, args.urgency, args.flags).submit(jobspec).get_id()  # type: ignore[attr-defined]
    except OSError as exc:
        return _die("submit", exc.strerror or str(exc))
    sys.stdout.write(jobid.f58 + "\n")
    sys.stdout.flush()
    return 0


def fast_path(args: list[str]) -> int | None:
    """Run ARGS without click if a fast path serves them: the exit code, else FALLBACK."""
    try:
        if len(args) >= 3 and args[0] == "kvs" and args[1] == "get" and _plain_args(args[2:]):
            return _fast_kvs_get(args[2:])
        if len(args) == 2 and args[0] == "getattr" and _plain_args(args[1:], 1):
            return _fast_getattr(args[1])
        if len(args) == 3 and args[0] == "job" and args[1] == "eventlog" \
                and _plain_args(args[2:], 1):
            return _fast_job_eventlog(args[2])
        if len(args) >= 2 and args[0] == "run" and not args[1].startswith("-"):
            return _fast_run(args[1:])
        if len(args) >= 2 and args[0] == "submit" and not args[1].startswith("-"):
            return _fast_submit(args[1:])
    except (_Fallback, ImportError):
        # (ImportError: a process that dropped privileges may not read every module;
        # the click path uses only what such a process imported beforehand)
        return FALLBACK
    except BrokenPipeError:
        # the reader went away (flux kvs get k | head): quiet, like SIGPIPE
        sys.stderr.close()
        return 141
    return FALLBACK


# -- flux -p / --parent, -r / --root ------------------------------------------------------------


def _leading_options(args: list[str]) -> tuple[int, bool, list[str]]:
    """Count the leading ``-p``/``--parent`` (``-pp`` is two) and ``-r``/``--root``
    options (``-v``/``--verbose`` may be among them); returns (parents, root, the rest
    of ARGS)."""
    parents, root, _verbose, rest = _front_options(args)
    return parents, root, rest


def _front_options(args: list[str]) -> tuple[int, bool, bool, list[str]]:
    """The leading ``-p``/``--parent``, ``-r``/``--root`` and ``-v``/``--verbose``
    options: (parents, root, verbose, the rest of ARGS)."""
    parents = 0
    root = verbose = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--parent", "--root", "--verbose"):
            parents += arg == "--parent"
            root = root or arg == "--root"
            verbose = verbose or arg == "--verbose"
        elif len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= {"p", "r", "v"}:
            parents += arg.count("p")
            root = root or "r" in arg
            verbose = verbose or "v" in arg
        else:
            break
        i += 1
    return parents, root, verbose, args[i:]


def _attr_or_none(h: "object", name: str) -> str | None:
    try:
        return h.attr_get(name)  # type: ignore[attr-defined]
    except OSError:
        return None


def push_parents(parents: int, root: bool = False) -> None:
    """Point ``FLUX_URI`` (and ``FLUX_KVS_NAMESPACE``) PARENTS levels up, or to the root.

    FluxError if an instance on the way cannot be reached.
    """
    from flux.core.handle import Flux

    while root or parents > 0:
        h = Flux()
        try:
            if root:
                level = _attr_or_none(h, "instance-level")
                if not level or level == "0":
                    return
            uri = _attr_or_none(h, "parent-uri")
            if not uri:
                return  # the root instance: nothing above it
            namespace = _attr_or_none(h, "parent-kvs-namespace")
        finally:
            h.close()  # type: ignore[attr-defined]
        os.environ["FLUX_URI"] = uri
        if namespace:
            os.environ["FLUX_KVS_NAMESPACE"] = namespace
        else:
            os.environ.pop("FLUX_KVS_NAMESPACE", None)
        parents -= 1


# -- the sub-command environment and external commands ---------------------------------------


def _frontend(argv: list[str], verbose: bool, apply_env: bool = True) -> int | None:
    """Set up the sub-command environment; run ARGV[0] if it is an external command
    (its exit code if it could not be run); None to go on with our own commands."""
    from cli import frontend

    env = frontend.subcommand_environment(os.environ, frontend.install_exec_dir())
    if apply_env:
        os.environ.update(env)
    if verbose:
        for name in sorted(env):
            sys.stderr.write(f"{name}={env[name]}\n")
    if not argv or argv[0].startswith("-"):
        return None
    name = argv[0]
    if "/" in name:
        return frontend.run_external([name, *argv[1:]], env)
    if os.path.exists(os.path.join(_HERE, "cmd_" + name.replace("-", "_") + ".py")):
        return None
    trace: list[str] = []
    found = frontend.find_subcommand(name, frontend.search_path(env["FLUX_EXEC_PATH"]), trace)
    if verbose:
        for candidate in trace:
            sys.stderr.write(f"flux: trying {candidate}\n")
    if found is None:
        return None  # click says there is no such command
    return frontend.run_external([*found, *argv[1:]], env)


# -- the click application ------------------------------------------------------------------


def _command_names() -> list[str]:
    names = []
    for fn in os.listdir(_HERE):
        if fn.startswith("cmd_") and fn.endswith(".py"):
            names.append(fn[4:-3].replace("_", "-"))
    return sorted(names)


_GROUP = None


def click_group() -> "object":
    """The click application (built on first use: importing click is the slow part)."""
    global _GROUP
    if _GROUP is not None:
        return _GROUP
    import importlib
    # click's messages go through gettext, which imports locale on first use:
    # import it with click, so that a process that preloads what main() needs
    # and then drops privileges (commands run as another user) finds it loaded
    import locale  # noqa: F401

    import click

    class LazyGroup(click.Group):
        """A group that imports ``cli.cmd_<name>`` on first use of ``name``."""

        def list_commands(self, ctx: click.Context) -> list[str]:
            return _command_names()

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            modname = "cli.cmd_" + cmd_name.replace("-", "_")
            if not os.path.exists(os.path.join(_HERE, modname[4:] + ".py")):
                return None
            mod = importlib.import_module(modname)
            return mod.command

    def run_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        # flux(1): "-V, --version: Convenience option to run flux-version(1)"
        if not value or ctx.resilient_parsing:
            return
        from cli.cmd_version import command as version

        ctx.invoke(version)
        ctx.exit(0)

    @click.group("flux", cls=LazyGroup,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
                  callback=run_version, help="Run flux version")
    # (main() acts on these before click runs; declared here for --help)
    @click.option("-p", "--parent", count=True,
                  help="Connect to the parent instance instead (repeat to go further up)")
    @click.option("-r", "--root", is_flag=True,
                  help="Connect to the root instance instead")
    @click.option("-v", "--verbose", is_flag=True,
                  help="Show the sub-command environment and the search for COMMAND")
    def group(parent: int, root: bool, verbose: bool) -> None:
        """Flux: an event-sourced resource manager core.

        Run "flux help COMMAND" or "flux COMMAND --help" for help on a command.
        A COMMAND not listed here runs the first flux-COMMAND found in
        FLUX_EXEC_PATH (with FLUX_EXEC_PATH_PREPEND first); a COMMAND with
        a "/" in it runs directly.
        """

    _GROUP = group
    return group


class _Main:
    """``flux``: the fast paths, else the click application.

    Callable as the console-script entry point, and usable as a click
    command by ``CliRunner.invoke`` (``main(args=..., prog_name=...)``).
    Other attributes are the click group's.
    """

    name = "flux"

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self.main(*args, **kwargs)  # type: ignore[arg-type]

    def main(self, args: list[str] | tuple[str, ...] | None = None,
             prog_name: str | None = None, standalone_mode: bool = True,
             **extra: object) -> object:
        try:
            return self._main(args, prog_name, standalone_mode, **extra)
        except (UnicodeEncodeError, TypeError) as exc:
            # an argument the shell passed as bytes that are not UTF-8 reaches a
            # request payload or a KVS key, which Flux sends as UTF-8 text
            argv = sys.argv[1:] if args is None else list(args)
            bad = next((a for a in argv if not _utf8(a)), None)
            if bad is None or not _from_surrogates(exc):
                raise
            shown = bad.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            name = next((a for a in argv if not a.startswith("-")), "")
            sys.stderr.write(f"flux{'-' + name if name and _utf8(name) else ''}: argument "
                             f"'{shown}' is not valid UTF-8 (Flux sends text as UTF-8)\n")
            if standalone_mode:
                sys.exit(1)
            return 1

    def _main(self, args: list[str] | tuple[str, ...] | None, prog_name: str | None,
              standalone_mode: bool, **extra: object) -> object:
        program = args is None  # run as the flux command, not by a test harness
        argv = sys.argv[1:] if program else list(args)  # type: ignore[arg-type]
        verbose = False
        if argv and argv[0].startswith("-") and argv[0][1:2] in ("p", "r", "v", "-"):
            parents, root, verbose, rest = _front_options(argv)
            if len(rest) != len(argv):
                argv = args = rest
            if parents or root:
                try:
                    push_parents(parents, root)
                except OSError as exc:
                    rc = _die_flux(exc)
                    if standalone_mode:
                        sys.exit(rc)
                    return rc
        if program or verbose:
            rc = _frontend(argv, verbose, apply_env=program)
            if rc is not None:
                if standalone_mode:
                    sys.exit(rc)
                return rc
        rc = fast_path(argv)
        if rc is not FALLBACK:
            if standalone_mode:
                sys.exit(rc)
            return rc
        return click_group().main(args=args, prog_name=prog_name,  # type: ignore[attr-defined]
                                  standalone_mode=standalone_mode, **extra)

    def __getattr__(self, name: str) -> object:
        return getattr(click_group(), name)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _from_surrogates(exc: BaseException | None) -> bool:
    """EXC (or what caused it) is a failure to encode an undecodable byte as UTF-8."""
    while exc is not None:
        if isinstance(exc, UnicodeEncodeError) or "surrogates not allowed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


main = _Main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
