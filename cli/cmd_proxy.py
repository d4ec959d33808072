"""flux proxy: reach an instance through a local socket and run a command there (flux-proxy(1)).

TARGET is a URI (``local://``, ``ssh://`` of this host) or anything
``flux uri`` resolves: a job id or job id path of the enclosing instance
(``ƒA``, ``ƒA/ƒB``), ``jobid:``, ``pid:``, ...  The proxy listens on ``local://<tmpdir>/local``, runs COMMAND (default: a
shell) with FLUX_URI pointing there, and relays each client's byte stream
to the instance at URI.  Only the proxy's own user may connect.  The
broker version must match the commands' unless ``--force``.

The proxy holds a connection of its own to the instance: when that is
lost (the instance shut down, its job was canceled), it says so, stops
relaying, sends SIGHUP and SIGCONT to COMMAND (not with ``--nohup``),
waits for it, puts the terminal back as it found it and exits with
COMMAND's exit code (flux-proxy(1)).  ctrl-C is left to COMMAND (the
terminal sends it there too): the proxy waits for COMMAND and exits with
its code (130 when SIGINT ended it).
"""
from __future__ import annotations

from typing import Any

import click

from cli.common import die, handle_errors


async def _splice(reader, writer) -> None:  # type: ignore[no-untyped-def]
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def _watch(upstream: str) -> None:
    """Return when the instance at UPSTREAM closes the proxy's own connection to it."""
    import asyncio

    try:
        reader, writer = await asyncio.open_unix_connection(upstream)
    except OSError:
        return
    try:
        # the broker's one-byte greeting, then nothing (nothing is asked here) but the end
        while await reader.read(1 << 16):
            pass
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _save_terminal() -> list[Any] | None:
    import sys
    import termios

    try:
        return termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (termios.error, ValueError, OSError):
        return None


def _restore_terminal(mode: list[Any] | None) -> None:
    """Put back the terminal modes COMMAND may have left changed (a full-screen
    program killed by the hangup), and the cursor it may have hidden."""
    import sys
    import termios

    if mode is None:
        return
    try:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSAFLUSH, mode)
    except (termios.error, ValueError, OSError):
        pass
    if sys.stdout.isatty():
        sys.stdout.write("\033[?25h")
        sys.stdout.flush()


async def _serve(upstream: str, argv: list[str], nohup: bool = False) -> int:
    import asyncio
    import errno
    import os
    import shutil
    import signal
    import socket
    import struct
    import sys
    import tempfile

    from broker.initprog import spawn, wait_process

    links: set[asyncio.StreamWriter] = set()

    async def client(reader, writer) -> None:  # type: ignore[no-untyped-def]
        sock = writer.get_extra_info("socket")
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET,
                                                              socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            writer.write(bytes((errno.EPERM,)))
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(upstream)
        except OSError as exc:
            writer.write(bytes((exc.errno or errno.ECONNREFUSED,)))
            writer.close()
            return
        links.update((writer, up_writer))
        try:
            await asyncio.gather(_splice(reader, up_writer), _splice(up_reader, writer))
        finally:
            links.difference_update((writer, up_writer))

    tmpdir = tempfile.mkdtemp(prefix="flux-proxy-")
    path = os.path.join(tmpdir, "local")
    terminal = _save_terminal()
    server = await asyncio.start_unix_server(client, path=path)
    watch = asyncio.ensure_future(_watch(upstream))
    try:
        env = dict(os.environ)
        env["FLUX_URI"] = "local://" + path
        try:
            proc = spawn(argv, env)
        except OSError as exc:
            die("proxy", f"{argv[0]}: {exc.strerror}", 127)
        # ctrl-C is COMMAND's to act on (the terminal sends it to COMMAND too): we
        # wait for COMMAND and exit with its code (130 if SIGINT ended it), as a
        # shell does, rather than die leaving it behind
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, lambda: None)
        child = asyncio.ensure_future(wait_process(proc))
        await asyncio.wait((child, watch), return_when=asyncio.FIRST_COMPLETED)
        if child.done():
            return child.result()
        sys.stderr.write("flux-proxy: Lost connection to Flux\n")
        server.close()
        for writer in list(links):
            writer.close()
        if not nohup:
            sys.stderr.write("flux-proxy: Sending SIGHUP to child processes\n")
            for signum in (signal.SIGHUP, signal.SIGCONT):
                try:
                    proc.send_signal(signum)
                except OSError:
                    pass
        sys.stderr.flush()
        # wait for COMMAND all the same: it must not lose its terminal to our exit
        code = await child
        _restore_terminal(terminal)
        return code
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
        watch.cancel()
        server.close()
        shutil.rmtree(tmpdir, ignore_errors=True)


@click.command("proxy", context_settings={"allow_interspersed_args": False,
                                          "help_option_names": ["-h", "--help"]})
@click.option("-f", "--force", is_flag=True, help="Only warn if the broker version differs")
@click.option("-n", "--nohup", is_flag=True,
              help="Do not send SIGHUP and SIGCONT to the command if the connection is lost")
@click.argument("target", metavar="URI|JOBID")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
@handle_errors("proxy")
def command(force: bool, nohup: bool, target: str, cmd: tuple[str, ...]) -> None:
    """Connect to the instance at URI (or job JOBID, or job id path JOBID/JOBID...)
    and run CMD (default: a shell) against it."""
    import asyncio
    import os
    import sys

    import flux
    from flux import __version__
    from flux.uri import local_socket_path, native_uri

    try:
        uri = native_uri(target)
    except OSError as exc:
        if "://" in target:
            raise
        die("proxy", f"Unable to resolve {target} to a URI: {exc.strerror or exc}")
    upstream = local_socket_path(uri)
    h = flux.Flux(uri)
    version = h.attr_get("version")
    h.close()
    if version != __version__:
        message = f"broker version {version} does not match the commands' {__version__}"
        if not force:
            die("proxy", message + " (use --force to connect anyway)")
        click.echo(f"flux-proxy: warning: {message}", err=True)
    argv = list(cmd) or [os.environ.get("SHELL") or "/bin/sh"]
    sys.exit(asyncio.run(_serve(upstream, argv, nohup)))
