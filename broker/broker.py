"""The broker: one asyncio loop that routes messages between endpoints.

Endpoints are local clients (connector_local), modules (module.py) and
overlay peers (overlay.py); each has a ``uuid`` (a rank number for
overlay peers) and ``deliver(msg)``.  A request's route stack gets the
identity of the endpoint it came from pushed on at each hop; a response
pops the top identity and goes to that endpoint.  Services map a topic's
first word to the endpoint that serves it.

The broker also drives the lifecycle (lifecycle.py) from ``run()``.
"""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from broker import router
from broker.attrs import AttrTable, check_cmdline
from broker.config import Config
from broker.events import EventHub
from broker.lifecycle import State, next_state, transition_line
from broker.logring import LogRing, make_logger, parse_severity
from broker.modhost import ModuleHost
from broker.rundir import remove_stale
from broker import topology
from flux import __version__
from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_OWNER,
)
from flux.errors import FluxError
from flux.message import Message, response_to
from flux.util.fsd import parse_fsd
from flux.util.size import parse_size


#: longest path an AF_UNIX socket address holds (sun_path is 108 bytes with its NUL)
_SUN_PATH_MAX = 107
#: what the initial program does not inherit (flux-broker's runat blocklist)
_RC_ENV_BLOCKLIST = frozenset({
    "FLUX_JOB_ID", "FLUX_ENCLOSING_ID", "FLUX_JOB_SIZE", "FLUX_JOB_NNODES", "FLUX_JOB_TMPDIR",
    "FLUX_TASK_RANK", "FLUX_TASK_LOCAL_ID", "FLUX_URI", "FLUX_KVS_NAMESPACE",
    "FLUX_PROXY_REMOTE", "FLUX_PMI_LIBRARY_PATH", "I_MPI_PMI_LIBRARY", "NOTIFY_SOCKET"})
_RC_ENV_BLOCKED_PREFIXES = ("PMI_", "PMIX_", "SLURM_")
#: longest wait for the running jobs to end at cleanup (exec's own kill timeouts are shorter)
_CLEANUP_TIMEOUT = 60.0


#: characters that make a one-word initial program a shell command line
_SHELL_SYNTAX = frozenset(" \t\n;&|<>()$`\\\"'*?[]#~{}!=")


def initial_argv(words: Sequence[str], shell: str | None) -> list[str]:
    """The initial program's argv: WORDS, the user's shell when there are none, and
    ``sh -c WORD`` for one word that is a command line (``flux start 'a; b'``), as
    flux-broker runs a lone argument through the shell."""
    argv = list(words)
    if not argv:
        return [shell or "/bin/sh"]
    if len(argv) == 1 and any(c in _SHELL_SYNTAX for c in argv[0]):
        return ["/bin/sh", "-c", argv[0]]
    return argv


def _job_tmpdir() -> str | None:
    """The tmpdir of the job this broker runs as (its rundir goes there), if any."""
    path = os.environ.get("FLUX_JOB_TMPDIR")
    if path and "FLUX_JOB_ID" in os.environ and os.path.isdir(path):
        return path
    return None


@dataclass(slots=True)
class BrokerOptions:
    rank: int = 0
    size: int = 1
    setattrs: list[tuple[str, str]] = field(default_factory=list)
    config: Config = field(default_factory=Config)
    initial_program: list[str] = field(default_factory=list)
    boot_dir: str | None = None
    verbose: int = 0
    #: a configured tree (broker/bootstrap.py): each rank's parent; None: k-ary (tbon.fanout)
    parents: list[int | None] | None = None
    #: this broker's hostname (default: the system's, or FLUX_FAKE_HOSTNAME)
    hostname: str | None = None
    #: every rank's hostname, when the configuration names them
    hosts: list[str] | None = None
    #: the overlay's bootstrap (broker.overlay.OverlayBoot); None: --boot-dir files or PMI
    boot: Any = None
    #: set when the rank came from [bootstrap] (a system instance)
    config_boot: bool = False


class ShutdownRequested(Exception):
    """Raised inside a lifecycle wait when a shutdown request arrives."""


def _level_setter(ring: LogRing, what: str) -> Callable[[str], None]:
    """A setter for a log level attribute that updates RING.WHAT."""

    def setter(value: str) -> None:
        level = parse_severity(value)
        setattr(ring, what, level)

    return setter


#: what an interactive initial program sees first in recovery mode (flux start -r)
RECOVERY_BANNER = """\
+--------------------------------------------------------------------+
| Flux recovery mode: one broker on the instance's saved state.      |
| No resource is online, so no job runs; the KVS, the job list and   |
| the job and resource logs can be read and repaired (flux kvs,      |
| flux jobs, flux fsck, flux dump).  A module that failed to load    |
| above is missing until what made it fail is fixed.                 |
| Exit this program to shut the instance down.                       |
+--------------------------------------------------------------------+
"""


class Broker:
    """One broker rank."""

    def __init__(self, options: BrokerOptions) -> None:
        self.opts = options
        self.rank = options.rank
        self.size = options.size
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise FluxError(errno.EINVAL, f"bad rank {self.rank} for size {self.size}")
        self.uuid = str(self.rank)
        self.owner = os.getuid()
        self.config = options.config
        self.attrs = AttrTable()
        self.ring = LogRing(1024, self.rank)
        self.log = make_logger(self.ring, "broker")
        self.services: dict[str, Any] = {}
        self.endpoints: dict[str, Any] = {}
        self.events = EventHub()
        self.modules = ModuleHost(self)
        self.connector: Any = None
        self.overlay: Any = None
        self.fanout = 2
        self.tree = topology.Tree.kary(self.size, 2)
        self.state = State.NONE
        self.state_since = time.monotonic()
        self.run_since: float | None = None
        self.exit_code = 0
        self.exit_norestart = 0      # broker.exit-norestart: exit code when told to stay down
        self.leaving_for_restart = False   # lost the parent or disconnected: exit to restart
        self._sd_notify = False             # broker.sd-notify set (and NOTIFY_SOCKET given)
        self.event_seq = 0
        self.shutdown_options: dict[str, Any] = {}
        self.shutdown_reason: str | None = None
        self.online: set[int] = {self.rank}
        self.lost: set[int] = set()
        self.torpid: set[int] = set()
        self.hostname = options.hostname or os.environ.get("FLUX_FAKE_HOSTNAME") \
            or socket.gethostname()
        if options.boot is not None:
            self.overlay_boot = options.boot
        self._dirty: list[Any] = []
        self._flush_posted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown_evt: asyncio.Event | None = None
        self._status_evt: asyncio.Event | None = None
        self._rc2: Any = None
        self._rc2_ran = False
        self._rundir_created = False
        self._sockdir: str | None = None
        self._log_file: Any = None
        self.starttime = time.time()

    # -- logging ---------------------------------------------------------------
    def make_logger(self, component: str) -> Any:
        return make_logger(self.ring, component)

    # -- endpoints and services -----------------------------------------------
    def add_endpoint(self, ep: Any) -> None:
        self.endpoints[ep.uuid] = ep

    def remove_endpoint(self, ep: Any) -> None:
        if self.endpoints.get(ep.uuid) is ep:
            del self.endpoints[ep.uuid]

    def register_service(self, name: str, ep: Any) -> None:
        if not name or "." in name:
            raise FluxError(errno.EINVAL, f"bad service name '{name}'")
        if name in self.services:
            raise FluxError(errno.EEXIST, f"service '{name}' is already registered")
        self.services[name] = ep

    def unregister_service(self, name: str, ep: Any | None = None) -> None:
        current = self.services.get(name)
        if current is None or (ep is not None and current is not ep):
            raise FluxError(errno.ENOENT, f"service '{name}' is not registered"
                            + ("" if ep is None else " by this client"))
        del self.services[name]

    # -- output batching -----------------------------------------------------
    def mark_dirty(self, conn: Any) -> None:
        """CONN has output queued: flush it at the end of this loop turn."""
        self._dirty.append(conn)
        if not self._flush_posted:
            self._flush_posted = True
            assert self._loop is not None
            self._loop.call_soon(self.flush_dirty)

    def flush_dirty(self) -> None:
        self._flush_posted = False
        dirty = self._dirty
        if dirty:
            self._dirty = []
            for conn in dirty:
                conn.flush()

    # -- routing -------------------------------------------------------------
    def route_request(self, msg: Message) -> None:
        """Send request MSG on its way (its source has already pushed its route hop)."""
        nodeid = msg.nodeid
        topic = msg.topic
        dot = topic.find(".")
        ep = self.services.get(topic if dot < 0 else topic[:dot])
        if nodeid == FLUX_NODEID_ANY and not msg.flags & FLUX_MSGFLAG_UPSTREAM:
            # fast path: the common case of a local service
            if ep is not None and ep.uuid != msg.route[-1]:
                ep.deliver(msg)
                return
            if self.rank > 0 and self.overlay is not None:
                self.overlay.send_parent(msg)
                return
            self.respond_error(msg, errno.ENOSYS, f"Service is not available: {topic}")
            return
        sender_is_service = ep is not None and bool(msg.route) and ep.uuid == msg.route[-1]
        action, child = router.route_request(
            self.rank, self.size, self.tree, nodeid, bool(msg.flags & FLUX_MSGFLAG_UPSTREAM),
            ep is not None, sender_is_service)
        if action == router.LOCAL:
            ep.deliver(msg)
        elif action == router.UPSTREAM:
            if self.overlay is None:
                self.respond_error(msg, errno.EHOSTUNREACH, f"No route to host: {topic}")
            else:
                self.overlay.send_parent(msg)
        elif action == router.DOWNSTREAM:
            if self.overlay is None or child is None:
                self.respond_error(msg, errno.EHOSTUNREACH, f"No route to rank {nodeid}")
            else:
                self.overlay.send_child(child, msg)
        elif action == router.ENOSYS:
            self.respond_error(msg, errno.ENOSYS, f"Service is not available: {topic}")
        else:
            self.respond_error(msg, errno.EHOSTUNREACH, f"No route to rank {nodeid}")

    def route_response(self, msg: Message) -> None:
        """Send response MSG to the endpoint named by the top of its route stack."""
        route = msg.route
        if not route:
            return
        ep = self.endpoints.get(route.pop())
        if ep is not None:
            ep.deliver(msg)

    def respond_error(self, req: Message, errnum: int, text: str | None = None) -> None:
        if req.flags & FLUX_MSGFLAG_NORESPONSE:
            return
        self.route_response(response_to(req, text, errnum))

    # -- events --------------------------------------------------------------
    def publish_event(self, topic: str, payload: Any, flags: int, userid: int,
                      rolemask: int) -> int:
        """Rank 0: stamp the next sequence number on an event and send it everywhere."""
        if self.rank != 0:
            raise FluxError(errno.EINVAL, "events are published by rank 0 only")
        self.event_seq += 1
        ev = Message(FLUX_MSGTYPE_EVENT, topic, payload, flags=flags & FLUX_MSGFLAG_PRIVATE,
                     seq=self.event_seq, userid=userid, rolemask=rolemask)
        self.dispatch_event(ev)
        return self.event_seq

    def dispatch_event(self, ev: Message) -> None:
        """Deliver an event locally and pass it down the tree."""
        if self.overlay is not None:
            self.overlay.send_children_event(ev)
        self.events.deliver(ev)

    # -- clients going away ----------------------------------------------------
    def client_gone(self, conn: Any) -> None:
        """Forget CONN and tell every service it used (``<service>.disconnect``)."""
        self.remove_endpoint(conn)
        self.events.drop(conn)
        for name in [n for n, ep in self.services.items() if ep is conn]:
            del self.services[name]
        # requests it was serving will never be answered by it
        for (matchtag, route), (topic, streaming) in list(conn.served.items()):
            req = Message(FLUX_MSGTYPE_REQUEST, topic, flags=streaming, matchtag=matchtag,
                          route=list(route))
            self.respond_error(req, errno.ENOSYS, f"Service is not available: {topic} "
                                                  "(its provider disconnected)")
        conn.served.clear()
        self.send_disconnects(conn.uuid, conn.used, conn.userid, conn.rolemask)
        self.flush_dirty()

    def send_disconnects(self, sender: str, used: Any, userid: int, rolemask: int) -> None:
        """Tell each (service, nodeid) in USED that SENDER is gone (``<service>.disconnect``)."""
        for service, nodeid in used:
            msg = Message(FLUX_MSGTYPE_REQUEST, f"{service}.disconnect",
                          flags=FLUX_MSGFLAG_NORESPONSE, nodeid=nodeid, route=[sender],
                          userid=userid, rolemask=rolemask)
            try:
                self.route_request(msg)
            except Exception:  # noqa: BLE001 - one bad service must not stop the others
                self.log.exception(f"disconnect to {service} failed")

    # -- attributes ------------------------------------------------------------
    def _setup_attrs(self) -> None:
        a = self.attrs
        for name, value in self.opts.setattrs:
            check_cmdline(name)
            a.add(name, value)
        # set by the broker whatever the command line says
        a.add("rank", self.rank, immutable=True)
        a.add("size", self.size, immutable=True)
        a.add("version", __version__, immutable=True)
        a.add("broker.pid", os.getpid(), immutable=True)
        a.add("broker.starttime", f"{self.starttime:.6f}", immutable=True)
        # defaults that a command-line -S value overrides
        imm = {"immutable": True, "replace": False}
        a.add("instance-level", 0, **imm)
        a.add("content.hash", "blake3", **imm)
        if "FLUX_URI" in os.environ:
            # started inside a parent instance (as a job's tasks): where it is,
            # which job this instance is, and that job's guest namespace
            a.add("parent-uri", os.environ["FLUX_URI"], **imm)
            for attr, var in (("jobid", "FLUX_JOB_ID"),
                              ("parent-kvs-namespace", "FLUX_KVS_NAMESPACE")):
                if os.environ.get(var):
                    a.add(attr, os.environ[var], **imm)
        # rundir: created here unless given (and then removed at exit); an instance
        # run as a job keeps it, and so its store, in the job's tmpdir
        rundir = a.get_default("rundir")
        if rundir is None:
            parent = _job_tmpdir()
            if parent is None:
                for path in remove_stale(tempfile.gettempdir()):
                    self.log.info("removed the rundir of a broker that was killed", path=path)
            rundir = tempfile.mkdtemp(prefix=f"flux-{os.getpid()}-", dir=parent)
            self._rundir_created = True
        elif not os.path.isdir(rundir):
            os.makedirs(rundir, exist_ok=True)
            self._rundir_created = True
        os.chmod(rundir, 0o755)
        a.add("rundir", os.path.abspath(rundir), immutable=True)
        statedir = a.get_default("statedir")
        if statedir is not None:
            os.makedirs(statedir, exist_ok=True)
            a.add("statedir", os.path.abspath(statedir), immutable=True)
        if a.get_default("local-uri") is None:
            a.add("local-uri", "local://" + self._socket_path(a.get("rundir")), **imm)
        else:
            a.add("local-uri", a.get("local-uri"), **imm)
        # topology: -Stbon.topo=kary:N (flux-broker-attributes(7)) names the tree as
        # tbon.fanout does (kary:0 is flat: every rank a child of rank 0)
        fanout_text = a.get_default("tbon.fanout", "2")
        topo_text = a.get_default("tbon.topo")
        if topo_text and self.opts.parents is None:
            from broker.bootstrap import parse_topo

            try:
                kind, k = parse_topo(str(topo_text))
            except ValueError as exc:
                raise FluxError(errno.EINVAL, str(exc)) from None
            if kind != "kary":
                raise FluxError(errno.EINVAL, f"tbon.topo: '{topo_text}' needs a configured "
                                              "[bootstrap] hosts tree")
            fanout_text = str(k if k > 0 else max(self.size - 1, 1))
        try:
            self.fanout = int(fanout_text or "2")
            if self.fanout < 1:
                raise ValueError
        except ValueError:
            raise FluxError(errno.EINVAL, f"tbon.fanout: bad value '{fanout_text}' "
                                          "(expected an integer >= 1)") from None
        a.add("tbon.fanout", self.fanout, immutable=True)
        if self.opts.parents is not None:
            if len(self.opts.parents) != self.size:
                raise FluxError(errno.EINVAL, f"tree of {len(self.opts.parents)} ranks for "
                                              f"size {self.size}")
            self.tree = topology.Tree(self.opts.parents)
        else:
            self.tree = topology.Tree.kary(self.size, self.fanout)
        if self.opts.hosts is not None:
            a.add("hostlist", _hostlist(self.opts.hosts), **imm)
            a.add("config.hostlist", _hostlist(self.opts.hosts), **imm)
        else:
            # flux-broker-attributes(7): every broker maps ranks to hosts; a test
            # instance's launcher recorded them in the boot directory
            from broker.overlay import read_hosts

            hosts = read_hosts(self.opts.boot_dir) if self.opts.boot_dir else None
            if hosts is None and self.size == 1:
                hosts = [self.hostname]
            if hosts is not None and len(hosts) == self.size:
                a.add("hostlist", _hostlist(hosts), **imm)
        a.add("tbon.level", self.tree.level(self.rank), **imm)
        a.add("tbon.maxlevel", self.tree.maxlevel(), **imm)
        a.add("tbon.descendants", self.tree.descendants(self.rank), **imm)
        a.add("tbon.prefertcp", 0, **imm)
        a.add("tbon.zmqdebug", 0, **imm)
        quorum = a.get_default("broker.quorum", str(self.size))
        try:
            q = int(quorum or "0")
            if not 0 <= q <= self.size:
                raise ValueError
        except ValueError:
            raise FluxError(errno.EINVAL, f"broker.quorum: bad value '{quorum}' (expected an "
                                          f"integer from 0 to {self.size})") from None
        a.add("broker.quorum", q, immutable=True)
        timeout = a.get_default("broker.quorum-timeout", "1m")
        if timeout != "none":
            try:
                parse_fsd(timeout or "")
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"broker.quorum-timeout: {exc}") from None
        a.add("broker.quorum-timeout", timeout, immutable=True)
        limit = a.get_default("broker.client-outbuf-limit", "1G")
        try:
            self.client_outbuf_limit = parse_size(limit or "")
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"broker.client-outbuf-limit: {exc}") from None
        a.add("broker.client-outbuf-limit", limit, immutable=True)
        sd = a.get_default("broker.sd-notify")
        self._sd_notify = bool(sd) and sd not in ("0", "") and "NOTIFY_SOCKET" in os.environ
        norestart = a.get_default("broker.exit-norestart")
        if norestart is not None:
            try:
                self.exit_norestart = int(norestart)
                if not 0 <= self.exit_norestart <= 255:
                    raise ValueError
            except ValueError:
                raise FluxError(errno.EINVAL, f"broker.exit-norestart: bad value '{norestart}' "
                                              "(expected an exit code, 0-255)") from None
            a.add("broker.exit-norestart", self.exit_norestart, immutable=True)
        # logging
        ring = self.ring
        for name, what, default in (("log-level", "level", "7"),
                                    ("log-stderr-level", "stderr_level", "3"),
                                    ("log-critical-level", "critical_level", "2")):
            value = a.get_default(name, default) or default
            try:
                setattr(ring, what, parse_severity(value))
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"{name}: {exc}") from None
            a.add(name, str(getattr(ring, what)), setter=_level_setter(ring, what))
        forward = a.get_default("log-forward-level", "7") or "7"
        try:
            self._forward_level = parse_severity(forward)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"log-forward-level: {exc}") from None
        a.add("log-forward-level", str(self._forward_level), setter=self._set_forward_level)
        mode = a.get_default("log-stderr-mode", "leader")
        if mode not in ("leader", "local"):
            raise FluxError(errno.EINVAL, f"log-stderr-mode: bad value '{mode}' "
                                          "(expected leader or local)")
        a.add("log-stderr-mode", mode, immutable=True)
        if mode == "leader" and self.rank > 0:
            ring.stderr_level = -1  # rank 0 prints what is forwarded to it
        size_text = a.get_default("log-ring-size", "1024") or "1024"
        try:
            ring.resize(int(size_text))
        except ValueError:
            raise FluxError(errno.EINVAL, f"log-ring-size: bad value '{size_text}'") from None
        a.add("log-ring-size", None, getter=lambda: str(ring.size),
              setter=lambda v: ring.resize(int(v)))
        a.add("log-ring-used", None, getter=lambda: str(ring.used))
        a.add("log-count", None, getter=lambda: str(ring.count))
        logfile = a.get_default("log-filename")
        if logfile and self.rank == 0:
            self._log_file = open(logfile, "a", encoding="utf-8")
            from broker.logring import format_entry

            ring.follow(lambda e: (self._log_file.write(format_entry(e) + "\n"),
                                   self._log_file.flush()))
        a.add("broker.state", None, getter=lambda: str(self.state))
        a.freeze()

    def _socket_path(self, rundir: str) -> str:
        """``<rundir>/local``, unless that is too long for an AF_UNIX address (a
        rundir deep in nested jobs' tmpdirs): then a short private directory of
        the system's holds the socket, and goes at exit with the rundir."""
        path = os.path.join(rundir, "local")
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            return path
        self._sockdir = tempfile.mkdtemp(prefix="flux-")
        os.chmod(self._sockdir, 0o755)
        return os.path.join(self._sockdir, "local")

    def _set_forward_level(self, value: str) -> None:
        self._forward_level = parse_severity(value)

    def _forward_log(self, entry: Any) -> None:
        if self.overlay is None or entry.level > self._forward_level or entry.rank != self.rank:
            return
        msg = Message(FLUX_MSGTYPE_REQUEST, "log.append", entry.to_dict(),
                      flags=FLUX_MSGFLAG_NORESPONSE, nodeid=0, route=[self.uuid + "-log"],
                      userid=self.owner, rolemask=FLUX_ROLE_OWNER)
        self.overlay.send_parent(msg)

    # -- lifecycle -------------------------------------------------------------
    def transition(self, event: str) -> None:
        old = self.state
        new = next_state(old, event)
        now = time.monotonic()
        self.log.info(transition_line(event, old, new, now - self.state_since))
        self.state = new
        self.state_since = now
        if new == State.RUN:
            self.run_since = now
        if self._sd_notify:
            self._notify_state(new)

    def _notify_state(self, state: State) -> None:
        """broker.sd-notify: tell systemd (Type=notify) we are up, then going down."""
        if state == State.RUN:
            if self.rank == 0:
                status = f"Running as leader of {self.size} node Flux instance"
            else:
                status = f"Running as rank {self.rank} of {self.size} node Flux instance"
            sd_notify(f"READY=1\nSTATUS={status}")
        elif state == State.CLEANUP or (state == State.SHUTDOWN and self.run_since is None):
            sd_notify("STOPPING=1")

    def request_shutdown(self, reason: str, options: dict[str, Any] | None = None) -> None:
        """Leave the run state (or abort start-up) and shut the instance down."""
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
            if options:
                self.shutdown_options.update(options)
            self.log.info(f"shutdown requested: {reason}")
        if self._rc2 is not None and self._rc2.poll() is None:
            self._rc2.signal(signal.SIGHUP)
        if self._shutdown_evt is not None:
            self._shutdown_evt.set()

    def rank_status(self, rank: int, status: str) -> None:
        """Overlay news (rank 0): RANK is now online, lost, offline, torpid or lively.

        Torpid/lively changes are published as ``overlay.torpid`` events
        ``{ranks, torpid}`` (the resource module takes torpid ranks out of
        scheduling)."""
        if status in ("torpid", "lively"):
            torpid = status == "torpid"
            if torpid == (rank in self.torpid) or rank not in self.online:
                return
            if torpid:
                self.torpid.add(rank)
            else:
                self.torpid.discard(rank)
            self.publish_event("overlay.torpid", {"ranks": [rank], "torpid": torpid}, 0,
                               self.owner, FLUX_ROLE_OWNER)
            return
        if rank in self.torpid:
            self.torpid.discard(rank)
            self.publish_event("overlay.torpid", {"ranks": [rank], "torpid": False}, 0,
                               self.owner, FLUX_ROLE_OWNER)
        if status == "online":
            self.online.add(rank)
            self.lost.discard(rank)
        else:
            self.online.discard(rank)
            if status == "lost":
                self.lost.add(rank)
            else:
                self.lost.discard(rank)
        if self._status_evt is not None:
            self._status_evt.set()

    async def _until_shutdown(self, aw: Any) -> Any:
        """Await AW; raise ShutdownRequested if a shutdown request comes first."""
        assert self._shutdown_evt is not None
        task = asyncio.ensure_future(aw)
        if self._shutdown_evt.is_set():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ShutdownRequested
        stopper = asyncio.ensure_future(self._shutdown_evt.wait())
        try:
            done, _pending = await asyncio.wait({task, stopper},
                                                return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ShutdownRequested

    async def _wait_quorum(self) -> bool:
        quorum = int(self.attrs.get("broker.quorum"))
        timeout_text = self.attrs.get("broker.quorum-timeout")
        deadline = None if timeout_text == "none" else time.monotonic() + parse_fsd(timeout_text)
        assert self._status_evt is not None
        while len(self.online) < quorum:
            self._status_evt.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                missing = sorted(set(range(self.size)) - self.online)
                self.log.error(f"quorum not reached after {timeout_text}: "
                               f"{len(self.online)} of {quorum} brokers online, "
                               f"waiting for ranks {missing}")
                return False
            try:
                await asyncio.wait_for(self._status_evt.wait(), remaining)
            except asyncio.TimeoutError:
                continue
        return True

    @property
    def recovery(self) -> bool:
        """Recovery mode (``flux start --recovery``, attribute ``broker.recovery-mode``):
        a module that fails to load in rc1 is logged and skipped, no resource is online."""
        return self.attrs.get_default("broker.recovery-mode") in ("1", "true")

    def _rc2_env(self) -> dict[str, str]:
        """The initial program's environment: ours, without what described the job
        this broker may run as (its id, size, tmpdir, task rank, namespace, PMI),
        with FLUX_URI naming this instance and FLUX_ENCLOSING_ID the job it is
        (flux-environment(7), INITIAL PROGRAM ENVIRONMENT)."""
        env = {k: v for k, v in os.environ.items()
               if k not in _RC_ENV_BLOCKLIST and not k.startswith(_RC_ENV_BLOCKED_PREFIXES)}
        env["FLUX_URI"] = self.attrs.get("local-uri")
        jobid = self.attrs.get_default("jobid")
        if jobid:
            env["FLUX_ENCLOSING_ID"] = jobid
        return env

    async def _run_initial_program(self) -> int:
        from broker.initprog import InitialProgram

        argv = initial_argv(self.opts.initial_program, os.environ.get("SHELL"))
        self._rc2_ran = True
        if self.recovery:
            sys.stderr.write(RECOVERY_BANNER)
            sys.stderr.flush()
        try:
            self._rc2 = InitialProgram(argv, self._rc2_env())
        except OSError as exc:
            self.log.error(f"rc2: {argv[0]}: {exc.strerror or exc}")
            return 127 if exc.errno == errno.ENOENT else 126
        if self.shutdown_reason is not None:
            self._rc2.signal(signal.SIGHUP)
        t0 = time.monotonic()
        rc = await self._rc2.wait()
        self._rc2 = None
        self.log.info(f"rc2.0: {' '.join(argv)} Exited (rc={rc}) {time.monotonic() - t0:.1f}s")
        return rc

    def _install_signals(self) -> None:
        assert self._loop is not None
        loop = self._loop

        def on_term(name: str) -> None:
            if self.rank > 0 and self.attrs.get_default("jobid"):
                # an instance run as a job: every broker of it gets the job's signals
                # (cancel: SIGTERM, time limit: SIGALRM); the leader shuts the
                # instance down in order, its children follow
                self.log.info(f"signal {name}: the leader shuts this instance down")
                return
            self.request_shutdown(f"signal {name}")

        def on_int() -> None:
            # Ctrl-C belongs to the (interactive) initial program when there is one.
            if self._rc2 is None:
                self.request_shutdown("signal SIGINT")

        try:
            loop.add_signal_handler(signal.SIGTERM, on_term, "SIGTERM")
            loop.add_signal_handler(signal.SIGALRM, on_term, "SIGALRM")
            loop.add_signal_handler(signal.SIGINT, on_int)
        except (ValueError, RuntimeError):
            pass  # not the main thread (tests running a broker in a thread)

    def _remove_signals(self) -> None:
        assert self._loop is not None
        for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT):
            try:
                self._loop.remove_signal_handler(sig)
            except (ValueError, RuntimeError):
                pass

    async def start(self) -> None:
        """Set up attributes, the local socket and the built-in services."""
        from broker.builtins import BUILTINS
        from broker.connector_local import LocalConnector

        self._loop = asyncio.get_running_loop()
        self._shutdown_evt = asyncio.Event()
        self._status_evt = asyncio.Event()
        self._setup_attrs()
        if self.rank > 0:
            self.ring.follow(self._forward_log)
        for cls in BUILTINS:
            await self.modules.load(cls.name, cls=cls, builtin=True)
        path = self.attrs.get("local-uri")[len("local://"):]
        self.connector = LocalConnector(self, path)
        await self.connector.start()

    async def run(self) -> int:
        """Run the whole lifecycle; returns the exit code."""
        try:
            await self.start()
        except (OSError, ValueError) as exc:
            self.log.error(f"broker start failed: {exc}")
            if self.ring.stderr_level < 3:
                # a follower in leader mode prints nothing itself: say why it stops
                print(f"flux-broker: broker start failed: {exc}", file=sys.stderr)
            await self._close_connector()
            self._cleanup_rundir()
            return 1
        self._install_signals()
        try:
            return await self._lifecycle()
        finally:
            await self._close_connector()
            self._remove_signals()
            if self._log_file is not None:
                self._log_file.close()
            self._cleanup_rundir()

    async def _lifecycle(self) -> int:
        self.transition("start")
        # join
        if self.size > 1:
            from broker.overlay import Overlay

            self.overlay = Overlay(self)
            try:
                await self.overlay.start()
                if self.rank > 0:
                    await self._until_shutdown(self.overlay.join())
                    # what was logged before the parent was reachable
                    for entry in self.ring.entries():
                        self._forward_log(entry)
                    self.transition("parent-ready")
                else:
                    self.transition("parent-none")
            except ShutdownRequested:
                self.transition("shutdown")
            except (OSError, asyncio.TimeoutError) as exc:
                self.log.error(f"join failed: {exc}")
                self.exit_code = 1
                self.transition("parent-fail")
        else:
            self.transition("parent-none")
        # init (rc1)
        if self.state == State.INIT:
            try:
                await self._until_shutdown(self.modules.load_rc1())
                self.transition("rc1-success")
                _tune_gc()
            except ShutdownRequested:
                self.transition("shutdown")
            except Exception as exc:  # noqa: BLE001 - any module failure fails rc1
                self.log.error(f"rc1 failed: {exc}")
                self.exit_code = 1
                self.transition("rc1-fail")
        # quorum
        if self.state == State.QUORUM:
            if self.overlay is not None and self.rank > 0:
                self.overlay.report_online()
                self.transition("quorum-full")
            else:
                try:
                    ok = await self._until_shutdown(self._wait_quorum())
                except ShutdownRequested:
                    self.transition("shutdown")
                else:
                    if ok:
                        self.transition("quorum-full")
                    else:
                        self.exit_code = 1
                        self.transition("quorum-timeout")
        # run
        if self.state == State.RUN:
            assert self._shutdown_evt is not None
            if self.rank == 0:
                from broker.parent_job import record_uri

                await record_uri(self.attrs, self.log)
            if self.rank == 0 and not self.attrs.get_default("broker.rc2_none"):
                self.exit_code = await self._run_initial_program()
                self.transition("rc2-success" if self.exit_code == 0 else "rc2-fail")
            else:
                await self._shutdown_evt.wait()
                self.transition("shutdown")
        if self.state == State.CLEANUP:
            if self.rank == 0 and (self.size > 1 or self._rc2_ran):
                await self._end_jobs()
            self.transition("cleanup-success")
        # shutdown: children first
        if self.overlay is not None and self.overlay.has_children():
            outcome = await self.overlay.shutdown_children()
            self.transition(outcome)
        else:
            self.transition("children-none")
        # finalize (rc3)
        ok = await self.modules.unload_all()
        self.transition("rc3-success" if ok else "rc3-fail")
        if not ok and self.exit_code == 0:
            self.exit_code = 1
        # goodbye
        if self.overlay is not None:
            await self.overlay.goodbye()
        await self._close_clients()
        await self.modules.unload_builtins()
        if self.overlay is not None:
            await self.overlay.stop()
        self.transition("goodbye")
        return self.exit_code

    async def _end_jobs(self) -> None:
        """Cleanup (rank 0): the instance's running jobs end while every broker is
        still here to report its shells' end (job-exec.shutdown); otherwise a job
        spanning ranks that have left would wait out exec's timeouts at rc3.

        Done when the instance has other brokers, or an initial program whose end
        ends the instance (a batch job: its jobs end with it, as Flux cancels
        them at cleanup).  A lone broker without one (a system instance) leaves
        them to rc3, where job-exec's unload ends them after the scheduler has
        gone, so their resources are freed by the restart that follows.
        """
        if "job-exec" not in self.modules:
            return
        ctx = self.modules.get("broker").ctx
        if "job-manager" in self.modules:
            # first: the resources the running jobs free must not go to pending jobs,
            # which stay queued across the shutdown (the Administrator's Guide)
            try:
                await ctx.rpc("job-manager.stop-alloc", {}, nodeid=0, timeout=10.0)
            except FluxError as exc:
                self.log.warning(f"cleanup: allocation not stopped: {exc}")
        try:
            await ctx.rpc("job-exec.shutdown", {}, nodeid=0, timeout=_CLEANUP_TIMEOUT)
        except FluxError as exc:
            self.log.warning(f"cleanup: running jobs not ended: {exc}")

    async def _close_connector(self) -> None:
        """Stop listening; the socket file goes only if it is the one this broker bound
        (never another broker's at the same local-uri)."""
        if self.connector is not None:
            await self.connector.stop()

    async def _close_clients(self) -> None:
        await self._close_connector()
        for ep in list(self.endpoints.values()):
            transport = getattr(ep, "transport", None)
            if transport is not None:
                ep.flush()
                transport.close()
        await asyncio.sleep(0)

    def _cleanup_rundir(self) -> None:
        rundir = self.attrs.get_default("rundir")
        if self._rundir_created and rundir:
            shutil.rmtree(rundir, ignore_errors=True)
            self._rundir_created = False
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None


def sd_notify(text: str) -> bool:
    """Send TEXT to systemd's NOTIFY_SOCKET (sd_notify(3)); False if there is none."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]          # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), path)
    except OSError:
        return False
    return True


def _hostlist(hosts: list[str]) -> str:
    from flux.hostlist import Hostlist

    return Hostlist(hosts).encode()


def _tune_gc() -> None:
    """Keep Python's cyclic collector off the hot path of a long-lived broker.

    The broker allocates many small acyclic objects per message and per
    event; with the default thresholds the collector runs full passes over
    an ever larger heap (job records, cached tree objects), so per-job cost
    grew with the number of jobs.  Objects alive after rc1 (modules, caches,
    replayed state) are frozen out of collection, and young-generation
    passes run ~100x less often.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def run_broker(options: BrokerOptions) -> int:
    """Run one broker to completion in a fresh event loop; returns its exit code."""
    broker = Broker(options)
    return asyncio.run(broker.run())


__all__ = ["Broker", "BrokerOptions", "run_broker", "ShutdownRequested"]
