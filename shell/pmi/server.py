"""The PMI-1 server of one job shell: a state machine with no I/O.

One ``PmiServer`` per shell serves the job's tasks that this shell runs
(their global ranks are given); one ``PmiConnection`` per local task.
The shell owns the sockets and the event loop::

    server = PmiServer(size=4, ranks=[2, 3], kvsname="f3Ab9",
                       exchange=exchange, abort=on_abort,
                       keys={"PMI_process_mapping": process_mapping([2, 2])})
    conn = server.connect(rank, send=write_to_task, close=close_task_fd)
    ...on readable: conn.feed(os.read(fd, 4096))   (b"" or error: conn.hangup())

``feed`` decodes every complete request and answers it through ``send``
(synchronously, from inside ``feed``), except ``barrier_in``, whose
``barrier_out`` is sent later, when the barrier completes.  ``send`` must
queue the bytes without blocking.  On a malformed or out-of-protocol
request the server calls ``close(reason)`` once and ignores that
connection from then on; it never raises into the caller.

Barrier: when every local task has sent ``barrier_in``, the server calls
``exchange(puts, done)`` with a dict of the puts made by local tasks since
the previous barrier.  The shell gathers the puts of all shells of the
job and calls ``done(merged)`` with their union (a dict, any time later,
even from inside ``exchange``), or ``done(error)`` with an Exception;
every local task then gets ``barrier_out`` (``rc=-1`` on error).

``get`` answers from the keys given at creation, the merged puts of past
barriers and this shell's own puts; a missing key answers ``rc=-1``.
``abort`` from a task calls ``abort(rank, exitcode, message)`` and sends
nothing back (the client exits).  ``spawn``, ``publish_name``,
``unpublish_name`` and ``lookup_name`` answer ``rc=-1``: dynamic process
management is not offered.  Values are kept in wire form (see wire.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from shell.pmi.wire import (
    Message,
    StreamDecoder,
    WireError,
    encode,
    escape,
    is_wire_value,
    unescape,
)

#: longest kvsname, key and value (with the C NUL) a client may use
KVSNAME_MAX = 256
KEYLEN_MAX = 256
VALLEN_MAX = 1024

ExchangeDone = Callable[[dict[str, str] | Exception], None]
ExchangeFn = Callable[[dict[str, str], ExchangeDone], None]
AbortFn = Callable[[int, int, str], None]
SendFn = Callable[[bytes], None]
CloseFn = Callable[[str], None]
TraceFn = Callable[[int, str, bytes], None]


def _msg(text: str) -> str:
    return escape(text.replace("\n", " "))


@dataclass(slots=True)
class PmiConnection:
    """The PMI conversation with one local task (created by ``PmiServer.connect``)."""

    server: "PmiServer"
    rank: int
    send: SendFn
    close: CloseFn
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    initialized: bool = False
    in_barrier: bool = False
    finalized: bool = False
    closed: bool = False
    error: str | None = None

    def feed(self, data: bytes) -> None:
        """Handle DATA read from the task's PMI socket (any piece of the stream)."""
        if self.closed:
            return
        for item in self.decoder.feed(data):
            if self.closed:
                return
            if isinstance(item, WireError):
                self.fail(f"protocol error: {item}")
                return
            self.server._handle(self, item)

    def hangup(self) -> None:
        """The task closed its end (EOF or read error): forget it quietly."""
        if not self.closed:
            self.closed = True
            self.server._gone(self)

    def fail(self, reason: str) -> None:
        """Close this connection for REASON (told to the shell through ``close``)."""
        if self.closed:
            return
        self.closed = True
        self.error = reason
        self.server._gone(self)
        self.close(f"PMI rank {self.rank}: {reason}")

    def reply(self, cmd: str, **args: object) -> None:
        data = encode(cmd, args)
        tracer = self.server.trace
        if tracer is not None:
            tracer(self.rank, "<", data)
        self.send(data)


class PmiServer:
    """PMI-1 for the local tasks of one shell; see the module docstring."""

    def __init__(self, size: int, ranks: Sequence[int], kvsname: str, *,
                 exchange: ExchangeFn, abort: AbortFn, appnum: int = 0,
                 universe_size: int | None = None, keys: Mapping[str, str] | None = None,
                 trace: TraceFn | None = None) -> None:
        if size < 1:
            raise ValueError(f"job size must be >= 1, got {size}")
        local = list(ranks)
        if not local:
            raise ValueError("a PMI server needs at least one local task")
        if len(set(local)) != len(local):
            raise ValueError(f"local ranks repeat: {local}")
        for r in local:
            if not 0 <= r < size:
                raise ValueError(f"rank {r} is out of range for job size {size}")
        if not kvsname or len(kvsname) >= KVSNAME_MAX or escape(kvsname) != kvsname:
            raise ValueError(f"bad kvsname {kvsname!r}")
        self.size = size
        self.ranks = local
        self.kvsname = kvsname
        self.appnum = appnum
        self.universe_size = universe_size if universe_size is not None else size
        self.exchange = exchange
        self.abort = abort
        self.trace = trace
        self.kvs: dict[str, str] = {}
        for key, value in (keys or {}).items():
            self._check_preset(key, value)
            if value:  # an empty value means "unknown" (RFC 13): leave the key out
                self.kvs[key] = value
        self.pending: dict[str, str] = {}
        self.conns: dict[int, PmiConnection] = {}
        self.entered: set[int] = set()
        self.exchanging = False
        self.barriers = 0  # completed barriers, for tests and logs

    @staticmethod
    def _check_preset(key: str, value: str) -> None:
        if not key or len(key) >= KEYLEN_MAX or escape(key) != key or "=" in key:
            raise ValueError(f"bad PMI key {key!r}")
        if len(value) >= VALLEN_MAX or escape(value) != value:
            raise ValueError(f"bad value for PMI key {key!r}: {value!r}")

    # -- connections ---------------------------------------------------------
    def connect(self, rank: int, send: SendFn, close: CloseFn) -> PmiConnection:
        """The connection of local task RANK; SEND queues bytes to it, CLOSE drops it."""
        if rank not in self.ranks:
            raise ValueError(f"rank {rank} is not a local task of this shell")
        old = self.conns.get(rank)
        if old is not None and not old.closed:
            raise ValueError(f"rank {rank} is already connected")
        conn = PmiConnection(self, rank, send, close)
        self.conns[rank] = conn
        return conn

    def _gone(self, conn: PmiConnection) -> None:
        # a task that left stays counted in a barrier it entered: the job is
        # failing anyway, and the shell decides what to do with its exit
        conn.in_barrier = False

    # -- requests ------------------------------------------------------------
    def _handle(self, conn: PmiConnection, msg: Message) -> None:
        if self.trace is not None:
            self.trace(conn.rank, ">", (("mcmd=" if msg.multi else "cmd=") + msg.cmd).encode()
                       + b"".join(f" {k}={v}".encode() for k, v in msg.args.items()) + b"\n")
        if conn.in_barrier:
            conn.fail(f"{msg.cmd} request while in a barrier (one request at a time)")
            return
        handler = _HANDLERS.get(msg.cmd)
        if handler is None:
            conn.fail(f"unknown command {msg.cmd!r}")
            return
        try:
            handler(self, conn, msg.args)
        except ValueError as exc:  # a bad reply value: our bug, not the task's
            conn.fail(f"cannot answer {msg.cmd}: {exc}")

    def _init(self, conn: PmiConnection, args: dict[str, str]) -> None:
        version = args.get("pmi_version")
        if version != "1":
            why = ("missing pmi_version" if version is None
                   else f"pmi_version {version} is not supported (only 1)")
            conn.reply("response_to_init", rc=-1, pmi_version=1, pmi_subversion=1, msg=_msg(why))
            return
        conn.initialized = True
        conn.reply("response_to_init", pmi_version=1, pmi_subversion=1, rc=0)

    def _maxes(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.reply("maxes", rc=0, kvsname_max=KVSNAME_MAX, keylen_max=KEYLEN_MAX,
                   vallen_max=VALLEN_MAX)

    def _appnum(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.reply("appnum", rc=0, appnum=self.appnum)

    def _universe(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.reply("universe_size", rc=0, size=self.universe_size)

    def _kvsname(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.reply("my_kvsname", rc=0, kvsname=self.kvsname)

    def _check_kvs(self, args: dict[str, str]) -> str | None:
        """Why the kvsname/key of a put or get is refused, or None."""
        name = args.get("kvsname")
        if name is None:
            return "missing kvsname"
        if name != self.kvsname:
            return f"unknown kvsname {name}"
        key = args.get("key")
        if not key:
            return "missing key"
        if len(key) >= KEYLEN_MAX:
            return f"key longer than {KEYLEN_MAX - 1} characters"
        return None

    def _put(self, conn: PmiConnection, args: dict[str, str]) -> None:
        why = self._check_kvs(args)
        value = args.get("value")
        if why is None and value is None:
            why = "missing value"
        if why is None and value is not None and len(value) >= VALLEN_MAX:
            why = f"value longer than {VALLEN_MAX - 1} characters"
        if why is None and value is not None and not is_wire_value(value):
            why = "value ends in a lone backslash"
        if why is None and args["key"].startswith("PMI_"):
            why = f"key {args['key']} is in the reserved PMI_ namespace"
        if why is not None:
            conn.reply("put_result", rc=-1, msg=_msg(why))
            return
        assert value is not None
        self.kvs[args["key"]] = value
        self.pending[args["key"]] = value
        conn.reply("put_result", rc=0)

    def _get(self, conn: PmiConnection, args: dict[str, str]) -> None:
        why = self._check_kvs(args)
        if why is None:
            value = self.kvs.get(args["key"])
            if value is not None:
                conn.reply("get_result", rc=0, value=value)
                return
            why = f"key {args['key']} not found"
        conn.reply("get_result", rc=-1, msg=_msg(why))

    def _barrier(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.in_barrier = True
        self.entered.add(conn.rank)
        if len(self.entered) == len(self.ranks) and not self.exchanging:
            self._start_exchange()

    def _start_exchange(self) -> None:
        puts, self.pending = self.pending, {}
        self.exchanging = True
        epoch = self.barriers
        answered = False

        def done(result: dict[str, str] | Exception) -> None:
            nonlocal answered
            if answered or epoch != self.barriers:
                return  # a second answer for the same barrier is ignored
            answered = True
            self._finish_barrier(result)

        try:
            self.exchange(puts, done)
        except Exception as exc:  # noqa: BLE001 - the tasks must hear about it
            done(exc)

    def _finish_barrier(self, result: dict[str, str] | Exception) -> None:
        self.exchanging = False
        self.barriers += 1
        waiting = [self.conns[r] for r in sorted(self.entered) if r in self.conns]
        self.entered.clear()
        if isinstance(result, Exception):
            why = _msg(f"exchange failed: {result}")
            for conn in waiting:
                if conn.in_barrier:
                    conn.in_barrier = False
                    conn.reply("barrier_out", rc=-1, msg=why)
            return
        for key, value in result.items():
            self.kvs[key] = value
        for conn in waiting:
            if conn.in_barrier and not conn.closed:
                conn.in_barrier = False
                conn.reply("barrier_out", rc=0)

    def _finalize(self, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.finalized = True
        conn.reply("finalize_ack", rc=0)

    def _abort(self, conn: PmiConnection, args: dict[str, str]) -> None:
        text = args.get("exitcode", "1")
        try:
            code = int(text)
        except ValueError:
            code = 1
        # MPICH sends message=; older clients error_msg= or msg=
        raw = args.get("message") or args.get("error_msg") or args.get("msg") or ""
        message = unescape(raw)
        self.abort(conn.rank, code, message)

    # -- introspection ---------------------------------------------------------
    def get(self, key: str) -> str | None:
        """The value a task's get of KEY would answer (None if it would fail)."""
        return self.kvs.get(key)


def _refuser(result: str, what: str) -> Callable[[PmiServer, PmiConnection, dict[str, str]],
                                                 None]:
    def handler(server: PmiServer, conn: PmiConnection, args: dict[str, str]) -> None:
        conn.reply(result, rc=-1, msg=_msg(f"{what} is not supported"))
    return handler


_HANDLERS: dict[str, Callable[[PmiServer, PmiConnection, dict[str, str]], None]] = {
    "init": PmiServer._init,
    "get_maxes": PmiServer._maxes,
    "get_appnum": PmiServer._appnum,
    "get_universe_size": PmiServer._universe,
    "get_my_kvsname": PmiServer._kvsname,
    "put": PmiServer._put,
    "get": PmiServer._get,
    "barrier_in": PmiServer._barrier,
    "finalize": PmiServer._finalize,
    "abort": PmiServer._abort,
    "spawn": _refuser("spawn_result", "spawn"),
    "publish_name": _refuser("publish_result", "publish_name"),
    "unpublish_name": _refuser("unpublish_result", "unpublish_name"),
    "lookup_name": _refuser("lookup_result", "lookup_name"),
}


__all__ = ["PmiServer", "PmiConnection", "ExchangeFn", "ExchangeDone", "AbortFn",
           "KVSNAME_MAX", "KEYLEN_MAX", "VALLEN_MAX"]
