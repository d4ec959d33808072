"""A shell server: job shells of one user on one broker rank, many in one process.

Why a server and not a process per job (specs/shell.md): a job's shell is
Python, and a process per job costs a fork, a copy of every page it
touches, a broker connection and a teardown, about 12 ms of CPU and 5 MB
of memory per job here; a server pays those once.  Jobs stay apart inside
it: each has its own ``Shell`` (plugins, tasks, pipes, PMI); an error in
one job's shell or plugin fails that job only.  The server runs as the
jobs' user; the broker's exec module starts one for the instance owner,
and (running as root) asks it to fork one for each other user, which
takes that user's identity before it runs anything; and it asks it to
fork more of a user's servers when that user's are all busy (a pool,
jobmgr/exec/launcher.py).

Started as ``python -m shell.server FD URI [UID GID]``; FD is a stream
socket to exec's launcher (jobmgr/exec/launcher.py), each message a
4-byte big-endian length and a JSON object:

- launcher -> server: ``start {key, args}`` (args: ``jobid``, ``f58``, ``jobspec``,
  ``R``, ``rank``, ``shell_rank``, ``uri``, ``namespace``, ``tmpdir``,
  ``output_limit``, ``instance_level``, ``initrc``, ``input``, ``barrier``),
  ``signal {key, signum}``, ``input {key}`` (follow the job's input log),
  ``barrier {key, seq, data | errno, text}`` (the answer to the shell's
  barrier ``seq``), ``fork {uid, gid}`` (owner server
  only: a server for another user, or another for the owner when its jobs
  need more than one core, whose socket comes back with
  ``forked {uid, pid}`` as an SCM_RIGHTS fd), ``shutdown {grace}``;
- server -> launcher: ``ready {pid}``, ``started {key, pid}``, ``exit
  {key, status, output?}`` (a wait status: the shell's exit code << 8;
  ``output``: the job's last output entries, base64, for exec to add to
  its output log), ``error
  {key, errno, text}``, ``forked``, ``barrier {key, seq, name, data}``
  (a shell of a job started with ``args.barrier = "launcher"``, i.e. on
  rank 0, enters a barrier here instead of ``job-exec.barrier``; ``seq``
  0: no answer wanted, the job's only shell does not wait for it).

Nothing outlives it: it gets SIGTERM if its parent dies, ends every job
on SIGTERM, on EOF from the launcher, or when its broker connection is
lost, and it is the child subreaper of all its tasks.
"""
from __future__ import annotations

import base64
import errno
import os
import pwd
import signal
import socket
import struct
import sys
import time
from typing import Any

import orjson

import shell.plugins  # noqa: F401  (loaded once, for every job)
from flux.constants import FLUX_POLLIN
from flux.core.handle import Flux
from shell.host import Host
from shell.info import job_info
from shell.procs import PR_SET_PDEATHSIG, prctl
from shell.shell import Shell

__all__ = ["ServerHost", "main", "HDR"]

HDR = struct.Struct(">I")
#: the server a forked child replaced: kept referenced so none of its objects is finalized
#: (a socket object's finalizer would close an fd number the child reuses)
_PARENT: list[Any] = []


def _preload() -> None:
    """Use once what jobs use lazily, so a job (or a forked guest server) imports nothing."""
    import glob  # noqa: F401
    import runpy  # noqa: F401
    import tempfile  # noqa: F401

    import shell.initrc  # noqa: F401
    import shell.pmi  # noqa: F401
    import shell.pmi.server  # noqa: F401
    import shell.template  # noqa: F401
    from flux.job.JobID import JobID
    from shell.plugins import BUILTINS

    for name in BUILTINS:
        __import__(f"shell.plugins.{name}")
    jobid = JobID(1)
    for encoding in ("f58", "hex", "dothex", "kvs", "words", "emoji", "f58plain"):
        try:
            jobid.encode(encoding)
        except (ValueError, TypeError):
            pass


class ServerHost(Host):
    def __init__(self, sock: socket.socket, uri: str) -> None:
        h = Flux(uri)
        super().__init__(h.get_reactor(), h)
        self.uri = uri
        self.sock = sock
        self.sock.setblocking(True)
        self.buf = b""
        self._out = bytearray()        # messages of this reactor turn, sent at its end
        self._out_soon = False
        self.shells: dict[str, Shell] = {}
        self.barriers: dict[int, Any] = {}        # seq -> callback(reply)
        self._seq = 0
        self.stopping = False
        self._stop_timer: Any = None
        h.lost_hooks.append(self._lost)
        self.watch_children()
        self.watch_signal(signal.SIGTERM, lambda _s: self.shutdown(2.0))
        self.watch_signal(signal.SIGINT, lambda _s: None)   # a ctrl-C at flux start's terminal
        self.reactor.add_fd(self.sock.fileno(), FLUX_POLLIN, self._readable)

    # -- the launcher -----------------------------------------------------------------------
    def send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        """Queue MSG for the launcher; the messages of one reactor turn (a job's
        ``started`` and its first barrier, the exits of every task reaped at once)
        go in one write, so the broker is woken once for them."""
        data = orjson.dumps(msg)
        self._out += HDR.pack(len(data)) + data
        if fds:
            self.flush(fds)
        elif not self._out_soon:
            self._out_soon = True
            self.reactor.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self._out_soon = False
        self.flush()

    def flush(self, fds: list[int] | None = None) -> None:
        """Send what is queued now (FDS ride with its last bytes)."""
        out, self._out = bytes(self._out), bytearray()
        if not out:
            return
        try:
            if fds:
                socket.send_fds(self.sock, [out], fds)
            else:
                self.sock.sendall(out)
        except OSError:
            pass  # the launcher is gone: EOF or SIGTERM ends us next

    def _readable(self, _revents: int) -> None:
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.reactor.remove_fd(self.sock.fileno(), self._readable)
            self.shutdown(2.0)
            return
        # parsed by offset, not by cutting the buffer after each message (a copy of the
        # rest of the read per message)
        buf = self.buf + chunk if self.buf else chunk
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = HDR.unpack_from(buf, pos)
            if end - pos - 4 < n:
                break
            msg = orjson.loads(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            self._dispatch(msg)
        self.buf = buf[pos:]

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "start":
            # what the jobs of one read have to say goes in one write at the end of the
            # turn: sending it sooner (every 2 ms was tried) split exec's work into more,
            # smaller KVS commits and cost the broker more than the jobs gained
            self.start_job(str(msg.get("key")), msg.get("args") or {})
        elif op == "signal":
            shell = self.shells.get(str(msg.get("key")))
            if shell is not None:
                shell.killall(int(msg.get("signum", signal.SIGTERM)))
        elif op == "input":
            shell = self.shells.get(str(msg.get("key")))
            if shell is not None:
                shell.input_ready()
        elif op == "barrier":
            callback = self.barriers.pop(msg.get("seq"), None)
            if callback is not None:
                callback(msg)
        elif op == "fork":
            self.fork_server(int(msg["uid"]), msg.get("gid"))
        elif op == "shutdown":
            self.shutdown(float(msg.get("grace", 2.0)))

    # -- jobs -------------------------------------------------------------------------------
    def start_job(self, key: str, args: dict[str, Any]) -> None:
        if self.stopping:
            self.send({"op": "error", "key": key, "errno": errno.ESHUTDOWN,
                       "text": "the shell server is shutting down"})
            return
        jobid = int(args.get("jobid", 0))
        try:
            info = job_info(jobid, args["jobspec"], args["R"], int(args["rank"]))
        except (ValueError, KeyError, TypeError) as exc:
            self.send({"op": "started", "key": key, "pid": os.getpid()})
            note = f"rank {args.get('rank')}: {exc}"
            self.h.rpc("job-exec.exception", {"id": jobid, "rank": args.get("shell_rank", 0),
                                              "severity": 0, "type": "exec", "note": note},
                       nodeid=0).then(lambda _f: self.send({"op": "exit", "key": key,
                                                            "status": 1 << 8}))
            return
        self.send({"op": "started", "key": key, "pid": os.getpid()})
        shell = None
        try:
            shell = Shell(info, self, args)
            shell.key = key
            self.shells[key] = shell
            shell.start(lambda code, tail: self._done(key, code, tail))
        except Exception as exc:  # noqa: BLE001 - one job's failure must not end the others
            sys.stderr.write(f"flux-shell: job {jobid}: {type(exc).__name__}: {exc}\n")
            if shell is not None:
                shell.raise_exception(f"rank {info.me.broker_rank}: shell error: {exc}")
                shell.lost()
            else:
                self._done(key, 1)

    def barrier(self, key: str, name: str, data: Any, callback: Any) -> None:
        """Enter barrier NAME of job KEY through the launcher (exec on this rank, rank 0);
        CALLBACK None: no answer is wanted (seq 0)."""
        seq = 0
        if callback is not None:
            self._seq += 1
            seq = self._seq
            self.barriers[seq] = callback
        self.send({"op": "barrier", "key": key, "seq": seq, "name": name, "data": data})

    def _done(self, key: str, code: int, tail: bytes = b"") -> None:
        self.shells.pop(key, None)
        msg: dict[str, Any] = {"op": "exit", "key": key, "status": (min(code, 255) & 0xFF) << 8}
        if tail:
            msg["output"] = base64.b64encode(tail).decode()
        self.send(msg)
        if self.stopping and not self.shells:
            self._exit()

    # -- ending -----------------------------------------------------------------------------
    def shutdown(self, grace: float) -> None:
        """End every job: SIGTERM to its tasks, SIGKILL after GRACE; then exit."""
        if self.stopping:
            return
        self.stopping = True
        if not self.shells:
            self._exit()
            return
        for sh in list(self.shells.values()):
            sh.killall(signal.SIGTERM)
        self._stop_timer = self.reactor.add_timer(time.monotonic() + grace, self._hard_stop)

    def _hard_stop(self) -> None:
        for sh in list(self.shells.values()):
            sh.lost()
        self._exit()

    def _lost(self, reason: str) -> None:
        """The broker is gone: kill everything and go."""
        if self.shells:
            # with no job to end, a broker going away is no news
            sys.stderr.write(f"flux-shell: {reason}; ending {len(self.shells)} job(s)\n")
        self.stopping = True
        for sh in list(self.shells.values()):
            sh.lost()
        self._exit()

    def _exit(self) -> None:
        for pid in self.spared:
            # the servers we forked end their jobs themselves (SIGTERM: shutdown); they
            # are not swept with SIGKILL, which would leave their tasks running
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        self.sweep(everything=True)
        self.finish_removals()          # no job's tmpdir is left behind
        self.send({"op": "bye"})
        self.flush()
        self.reactor.stop()

    # -- other users ---------------------------------------------------------------------------
    def fork_server(self, uid: int, gid: Any) -> None:
        """Fork a server for UID (another user's: we must be root); its socket goes
        back to the launcher.

        One more of our own outlives us if we crash (its jobs go on; it still ends
        when the broker does, as its socket to the launcher closes then); another
        user's gets SIGTERM when we die.
        """
        # nothing queued may be left for the child to send on a reused descriptor, and
        # no remover thread may be mid-operation on a lock the child would inherit held
        self.flush()
        self.finish_removals()
        try:
            pw = pwd.getpwuid(uid)
            group = pw.pw_gid if gid is None else int(gid)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pid = os.fork()
        except (OSError, KeyError) as exc:
            self.send({"op": "forked", "uid": uid, "errno": getattr(exc, "errno", None)
                       or errno.ENOENT, "text": str(exc)})
            return
        if pid == 0:
            code = 1
            try:
                keep = theirs.fileno()
                _PARENT.append(self)
                signal.set_wakeup_fd(-1)
                os.closerange(3, keep)
                os.closerange(keep + 1, 1 << 16)
                os.setsid()
                if uid != os.geteuid():
                    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
                    os.initgroups(pw.pw_name, group)
                    os.setgid(group)
                    os.setuid(uid)
                os.chdir("/")
                code = serve(socket.socket(fileno=keep), self.uri)
            except BaseException as exc:  # noqa: BLE001 - never return into the parent's loop
                try:
                    sys.stderr.write(f"flux-shell: server for uid {uid}: {exc}\n")
                except Exception:  # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        theirs.close()
        self.spared.add(pid)
        self.send({"op": "forked", "uid": uid, "pid": pid}, [ours.fileno()])
        ours.close()


def serve(sock: socket.socket, uri: str) -> int:
    host = ServerHost(sock, uri)
    host.send({"op": "ready", "pid": os.getpid()})
    host.reactor.incref()
    host.reactor.run()
    host.close_signals()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        return 1
    sock = socket.socket(fileno=int(argv[1]))
    # tasks must not hold the launcher's socket open: its EOF is how we are missed
    os.set_inheritable(sock.fileno(), False)
    os.chdir("/")
    _preload()
    import gc

    gc.collect()
    gc.freeze()      # forked guest servers share these pages
    try:
        return serve(sock, argv[2])
    except OSError:
        # the broker went before we could connect (an instance that ends as it
        # starts): there are no jobs to serve, and the launcher sees our EOF
        return 1


if __name__ == "__main__":
    sys.exit(main())
