"""The ``resource`` module: the instance's resources, their state, RFC 28 acquire.

Loaded on every rank.  Each rank serves ``resource.monitor``: a stream whose
first response is the rank's discovered resources and which stays open
while the rank's module is loaded.  Rank 0 keeps one such stream open to
every other rank, so it learns at once when a rank comes up (first
response) or goes away (the stream fails: EHOSTUNREACH when the overlay
loses the rank, ENOSYS when its module unloads).

Rank 0 owns the instance R (from ``[[resource.config]]``, ``[resource]
path``, the parent instance's R of the job this instance is (see
jobmgr/resource/parent.py), or joined from every rank's report) and
``resource.eventlog``.  R's ``execution.expiration`` is the instance's;
as a job of another instance rank 0 follows the job's eventlog there and
moves it with each ``resource-update``.
Every change (restart, resource-define, online/offline, exclude, drain,
undrain) is appended to the log first and folded into the
``ResourceState`` projection only once the append is durable; requests
are answered after that.  The scheduler holds a ``resource.acquire``
stream: R without excluded ranks and the ranks up for scheduling (online,
not drained), then ``up``/``down`` changes.  At unload rank 0 writes
``checkpoint.resource`` (the state and the log size it reflects) so the
next start replays only the log's tail.  ``resource.sched-status`` gives
the scheduler's view (R without excluded ranks, the unavailable ranks,
the scheduler's allocations) for ``flux.resource.resource_list``, and
``resource.journal`` streams the log, history first (journal.py).  See
specs/resource-service.md.
"""
from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from broker.module import Module, Stream, request_handler
from flux.core.aio import AsyncFlux
from flux.errors import FluxError
from flux.message import Message
from jobmgr.kvs_batch import KvsBatch, encode_value, kvs_get
from jobmgr.resource.journal import ResourceJournal
from jobmgr.resource.config import (
    LocalResources,
    ResourceConfig,
    configured_R,
    discover_local,
    discovered_R,
    is_idset_text,
    parse_config,
    resolve_targets,
    restart_needed,
)
from jobmgr.resource.parent import METHOD as PARENT_METHOD
from jobmgr.resource.parent import (
    ParentJob,
    R_from_lookup,
    parent_job,
    renumber_R,
    update_expiration,
)
from jobmgr.resource.state import ResourceEventError, ResourceState

__all__ = ["Resource", "EVENTLOG_KEY", "R_KEY", "CHECKPOINT_KEY"]

EVENTLOG_KEY = "resource.eventlog"
R_KEY = "resource.R"
CHECKPOINT_KEY = "checkpoint.resource"
#: drain modes and their ``overwrite`` (flux-core's): 1 replaces the reason of a drained
#: rank (drain -f), 2 its time too (-ff); update drains what is not drained yet
_DRAIN_MODES = {None: 0, "update": 0, "overwrite": 1, "force-overwrite": 2}
#: how long rank 0 waits for the parent instance before discovering resources
PARENT_TIMEOUT = 10.0
#: how long resource.sched-status waits for R to be known before EAGAIN
SCHED_STATUS_TIMEOUT = 10.0


def _idset(ranks: Iterable[int]) -> str:
    from flux.idset import IDset

    return IDset(sorted(ranks)).encode()


def _body(msg: Message) -> dict[str, Any]:
    body = msg.payload
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be a JSON object")
    return body


class Resource(Module):
    name = "resource"

    def __init__(self, ctx: Any, args: list[str]) -> None:
        super().__init__(ctx, args)
        self.cfg = ResourceConfig()
        self.local: LocalResources | None = None
        self.state = ResourceState()
        self.rset: Any = None                  # full instance ResourceSet
        self.R: dict[str, Any] | None = None   # its R (with excluded ranks)
        self.sched_R: dict[str, Any] | None = None
        self._sched_ranks: set[int] = set()
        self._exclude: set[int] = set()
        self._exclude_hosts: str | None = None
        self._define_posted = False                # resource-define is on its way
        self._pending_rset: Any = None             # the R it defines
        self._exclude_posted: "asyncio.Future[Any] | None" = None   # by a config reload
        self._reports: dict[int, LocalResources] = {}
        self._intent_online: set[int] = set()   # as posted, ahead of the applied state
        self._intent_torpid: set[int] = set()
        self._acquirers: list[Stream] = []
        self._last_up: set[int] | None = None
        self._last_expiration = 0.0
        self._batch = KvsBatch(ctx)
        self._log_bytes = 0
        self._watchers: list[asyncio.Task[Any]] = []
        self._wake: dict[int, asyncio.Event] = {}
        self._defined = asyncio.Event()
        self._method = "dynamic-discovery"
        self._parent: AsyncFlux | None = None     # the parent instance, as its job
        self._parent_seen = 0                      # job eventlog entries already in R
        self._expiration_intent = 0.0              # as posted, ahead of the applied state
        self._sched_rset: Any = None               # the scheduler's R (no excluded ranks)
        self._last_ts = 0.0                        # timestamp of the last event posted
        self.journal = ResourceJournal(ctx, EVENTLOG_KEY, lambda: self.R)

    # -- start and stop --------------------------------------------------------

    async def start(self) -> None:
        self.cfg = parse_config(self.ctx.conf_get("resource"))
        self.local = discover_local(self.ctx.rank, self.cfg.norestrict)
        if self.ctx.rank != 0:
            self.ctx.send_request("resource.hello", {"rank": self.ctx.rank}, nodeid=0)
            return
        rset = configured_R(self.cfg)
        self._method = self.cfg.method
        subscribe = getattr(self.ctx, "event_subscribe", None)   # (unit tests' fake contexts)
        if subscribe is not None:
            subscribe("overlay.torpid", self._torpid_event)
        await self._replay()
        job = None
        if rset is None:
            job = self._parent_job()
            rset = await self._parent_R(job) if job is not None else None
            if rset is not None:
                self._method = PARENT_METHOD
        if rset is not None:
            ranks = list(rset.ranks)
            self._exclude = self._resolve_exclude(rset)
        else:
            ranks = list(range(self.ctx.size))
            self._reports[0] = self.local
            self._exclude = self._resolve_exclude(None)
        events: list[tuple[str, dict[str, Any]]] = [
            ("restart", {"ranks": _idset(ranks), "online": ""})]
        attr = getattr(self.ctx, "attr_get_default", None)   # (unit tests' fake contexts)
        recovery = attr is not None and attr("broker.recovery-mode") in ("1", "true")
        online = set() if recovery else \
            set(ranks) if self.cfg.monitor_force_up else {0} & set(ranks)
        if rset is None and self.ctx.size == 1:
            rset = discovered_R(self._reports)
        if rset is not None:
            # R is known now: an exclude naming an unknown host stops the start, as
            # with a configured R
            events += self._define_events(rset, strict=True)
        if online:
            events.append(("online", {"idset": _idset(online)}))
            self._intent_online |= online
        await self._post(events, (lambda: self._define(rset)) if rset is not None else None)
        if self._parent is not None and job is not None:
            self._watchers.append(self.ctx.create_task(self._follow_parent(self._parent, job),
                                                       name="resource-parent-watch"))
        if not self.cfg.monitor_force_up and not recovery:
            for rank in range(1, self.ctx.size):
                if rset is None or rank in rset.ranks:
                    self._watchers.append(self.ctx.create_task(self._watch(rank),
                                                               name=f"resource-watch-{rank}"))

    async def stop(self) -> None:
        self.journal.close()
        for task in self._watchers:
            task.cancel()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)
        if self._parent is not None:
            self._parent.close()
            self._parent = None
        if self.ctx.rank != 0:
            return
        await self._batch.flush()
        checkpoint = {"version": 1, "eventlog_bytes": self._log_bytes,
                      "timestamp": time.time(), "state": self.state.truncate_context(),
                      "expiration": self.state.expiration, "method": self.state.method}
        try:
            await self._batch.put(CHECKPOINT_KEY, encode_value(checkpoint))
        except OSError as exc:
            self.ctx.log.error(f"cannot write {CHECKPOINT_KEY}: {exc}")

    def config_check(self, config: Any) -> None:
        """Refuse (FluxError naming the key) a bad ``[resource]`` table, a change
        that only a restart can apply, or an ``exclude`` naming unknown ranks or hosts."""
        new = parse_config(config.get("resource"))
        restart_needed(self.cfg, new)
        self._reload_exclude(new)

    def config_reload(self, config: Any) -> None:
        """Take the new ``[resource]`` table; on rank 0 a changed ``exclude`` is
        applied at once (flux-config-resource(5)): ``exclude``/``unexclude``
        events, and the newly excluded ranks go down for the scheduler (they stay
        in its R, as in flux-core, until the instance restarts)."""
        new = parse_config(config.get("resource"))
        restart_needed(self.cfg, new)
        wanted = self._reload_exclude(new)
        self.cfg = new
        if wanted is None:
            return
        self._exclude_hosts = None
        added, removed = wanted - self._exclude, self._exclude - wanted
        self._exclude = wanted
        if not self._define_posted:
            return           # resource-define will post the exclusion
        events: list[tuple[str, dict[str, Any]]] = []
        if added:
            events.append(("exclude", {"idset": _idset(added)}))
        if removed:
            events.append(("unexclude", {"idset": _idset(removed)}))
        rset = self.rset if self.rset is not None else self._pending_rset
        events += self._undrain_excluded(rset)
        if events:
            self._exclude_posted = self._post(events)

    def _reload_exclude(self, new: ResourceConfig) -> set[int] | None:
        """The ranks NEW's ``exclude`` names, when it differs from the one in effect on
        rank 0 (None: nothing to do); FluxError(EINVAL) for unknown ranks or hosts."""
        if self.ctx.rank != 0 or new.exclude == self.cfg.exclude:
            return None
        text = new.exclude
        if not text:
            return set()
        if self.rset is None and not self._define_posted:
            if not is_idset_text(text.strip()):
                raise FluxError(errno.EINVAL, "resource.exclude: R is not known yet "
                                              "(hosts cannot be mapped to ranks)")
            return set(resolve_targets(text, {}, range(self.ctx.size), "resource.exclude"))
        rset = self.rset if self.rset is not None else self._pending_rset
        hosts = {r: h for r in rset.ranks if (h := rset.hostname(r))}
        return set(resolve_targets(text, hosts, rset.ranks, "resource.exclude"))

    def _resolve_exclude(self, rset: Any) -> set[int]:
        """The configured exclude set (hostlists wait for R when discovering)."""
        text = self.cfg.exclude
        if not text:
            return set()
        if rset is None:
            ranks = range(self.ctx.size)
            if not is_idset_text(text.strip()):
                self._exclude_hosts = text   # needs hostnames: resolved at define time
                return set()
            return set(resolve_targets(text, {}, ranks, "resource.exclude"))
        hosts = {r: rset.hostname(r) for r in rset.ranks if rset.hostname(r)}
        return set(resolve_targets(text, hosts, rset.ranks, "resource.exclude"))

    # -- replay ------------------------------------------------------------------

    async def _replay(self) -> None:
        """Rebuild the state from checkpoint.resource and resource.eventlog."""
        data = await kvs_get(self.ctx, EVENTLOG_KEY) or b""
        self._log_bytes = len(data)
        self.journal.start_bytes = len(data)
        start = 0
        raw = await kvs_get(self.ctx, CHECKPOINT_KEY)
        if raw is not None:
            start = self._load_checkpoint(raw, data)
        lineno = data.count(b"\n", 0, start)
        for line in data[start:].split(b"\n"):
            lineno += 1
            if not line:
                continue
            try:
                self.state.apply(orjson.loads(line))
            except (orjson.JSONDecodeError, ResourceEventError, TypeError, AttributeError) as exc:
                self.ctx.log.error(f"{EVENTLOG_KEY} line {lineno}: skipped: {exc}")

    def _load_checkpoint(self, raw: bytes, data: bytes) -> int:
        """Apply a checkpoint; the log offset to replay from (0 if it is unusable)."""
        try:
            cp = orjson.loads(raw)
            size = cp["eventlog_bytes"]
            if cp.get("version") != 1 or not isinstance(size, int) or size < 0:
                raise ValueError("unknown version or bad eventlog_bytes")
            if size > len(data) or (size and data[size - 1:size] != b"\n"):
                raise ValueError(f"it covers {size} bytes of a {len(data)} byte log")
            self.state.apply({"name": "truncate", "timestamp": float(cp["timestamp"]),
                              "context": cp["state"]})
            if cp.get("expiration"):
                self.state.expiration = float(cp["expiration"])
            self.state.method = cp.get("method")
            return size
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.ctx.log.warning(f"{CHECKPOINT_KEY} ignored ({exc}): replaying the whole log")
            self.state = ResourceState()
            return 0

    # -- posting events (the write path) -----------------------------------------

    def _post(self, events: list[tuple[str, dict[str, Any]]],
              then: Callable[[], None] | None = None) -> "asyncio.Future[Any]":
        """Append EVENTS to resource.eventlog in one op; fold them in once durable.

        Each event gets its own timestamp, later than the one before, so a
        journal consumer can resume after any event (``since``).
        """
        entries = []
        for name, ctx in events:
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            entries.append({"timestamp": self._last_ts, "name": name, "context": ctx})
        data = b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in entries)
        fut = self._batch.append(EVENTLOG_KEY, data)

        def applied(f: "asyncio.Future[Any]") -> None:
            if f.cancelled() or f.exception() is not None:
                err = "cancelled" if f.cancelled() else f.exception()
                self.ctx.log.error(f"{EVENTLOG_KEY}: append of "
                                   f"{', '.join(n for n, _ in events)} failed: {err}")
                return
            self._log_bytes += len(data)
            for entry in entries:
                self.state.apply(entry)
            if then is not None:
                then()
            self._update_acquirers()
            self.journal.committed(entries)

        fut.add_done_callback(applied)
        return fut

    def _reply_when_done(self, msg: Message, fut: "asyncio.Future[Any]") -> None:
        def done(f: "asyncio.Future[Any]") -> None:
            exc = None if f.cancelled() else f.exception()
            if f.cancelled():
                self.ctx.respond_error(msg, errno.ECANCELED, f"{msg.topic}: cancelled")
            elif exc is not None:
                errnum = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
                self.ctx.respond_error(msg, errnum, f"{msg.topic}: {exc}")
            else:
                self.ctx.respond(msg, {})

        fut.add_done_callback(done)

    # -- R ------------------------------------------------------------------------

    def _define_events(self, rset: Any, strict: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """resource-define, and exclude/unexclude where the config changed.

        A host of ``exclude`` that R lacks is an error (STRICT: at start) or,
        when R is discovered after the start, logged, and nothing is excluded.
        """
        if self._exclude_hosts:
            hosts = {r: rset.hostname(r) for r in rset.ranks if rset.hostname(r)}
            try:
                self._exclude = set(resolve_targets(self._exclude_hosts, hosts, rset.ranks,
                                                    "resource.exclude"))
            except FluxError as exc:
                if strict:
                    raise
                self.ctx.log.error(f"{exc}: nothing excluded")
            self._exclude_hosts = None
        self._define_posted = True
        self._pending_rset = rset
        events: list[tuple[str, dict[str, Any]]] = [
            ("resource-define", {"method": self._method})]
        # the instance's expiration is R's (0: none); a replayed one is replaced
        self._expiration_intent = rset.expiration
        if rset.expiration != self.state.expiration:
            events.append(("resource-update", {"expiration": rset.expiration}))
        added = self._exclude - self.state.excluded
        removed = self.state.excluded - self._exclude
        if added:
            events.append(("exclude", {"idset": _idset(added)}))
        if removed:
            events.append(("unexclude", {"idset": _idset(removed)}))
        events += self._undrain_excluded(rset)
        self._batch.put(R_KEY, encode_value(rset.to_dict())).add_done_callback(self._log_failure)
        return events

    def _undrain_excluded(self, rset: Any) -> list[tuple[str, dict[str, Any]]]:
        """An ``undrain`` of the drained ranks that are excluded (flux-core: "Excluded
        targets may not be drained"), so a node excluded, then brought back, is not
        drained by a forgotten reason."""
        ranks = sorted(set(self.state.drained) & self._exclude)
        if not ranks:
            return []
        from flux.hostlist import Hostlist

        hosts = [h for r in ranks if (h := rset.hostname(r))]
        return [("undrain", {"idset": _idset(ranks), "nodelist": Hostlist(hosts).encode()})]

    def _log_failure(self, fut: "asyncio.Future[Any]") -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.ctx.log.error(f"cannot write {R_KEY}: {fut.exception()}")

    def _define(self, rset: Any) -> None:
        """R is known and its resource-define is durable: tell the scheduler."""
        from flux.resource import ResourceSet

        self.rset = rset
        self.R = rset.to_dict()
        self.state.define(self.R)
        sched = rset.copy()
        if self._exclude:
            sched.remove_ranks(_idset(self._exclude))
        self.sched_R = sched.to_dict()
        self._sched_ranks = set(sched.ranks)
        self._sched_rset = ResourceSet(self.sched_R)     # without R's scheduling key
        self._defined.set()
        for stream in list(self._acquirers):
            self._acquire_first(stream)

    def _hostnames(self) -> dict[int, str]:
        if self.rset is None:
            return {}
        return {r: h for r in self.rset.ranks if (h := self.rset.hostname(r))}

    # -- R and expiration from the parent instance ----------------------------------

    def _parent_job(self) -> ParentJob | None:
        """This instance's job in its parent, from the broker attributes (None: not a job)."""
        attr = getattr(self.ctx, "attr_get_default", None)
        if attr is None:   # a context without attributes (in-process tests): no parent
            return None
        try:
            return parent_job(attr)
        except ValueError as exc:
            self.ctx.log.error(f"{exc}: discovering resources instead")
            return None

    async def _parent_R(self, job: ParentJob) -> Any:
        """The job's R from the parent, ranks renumbered; None (logged) if unusable.

        On success the connection to the parent stays open in ``self._parent``
        for the expiration watch.
        """
        from flux.resource import ResourceSet

        h: AsyncFlux | None = None
        try:
            h = await asyncio.wait_for(AsyncFlux.connect(job.uri), PARENT_TIMEOUT)
            resp = await asyncio.wait_for(h.rpc("job-info.lookup", job.lookup_request()),
                                          PARENT_TIMEOUT)
            R, seen = R_from_lookup(resp)
            rset = ResourceSet(renumber_R(R))
        except (TimeoutError, OSError, ValueError) as exc:
            why = str(exc) or type(exc).__name__
            self.ctx.log.warning(f"cannot get the R of job {job.f58} from the parent "
                                 f"instance ({why}): discovering resources instead")
            if h is not None:
                h.close()
            return None
        if len(rset.ranks) != self.ctx.size:
            self.ctx.log.warning(f"the R of job {job.f58} in the parent instance has "
                                 f"{len(rset.ranks)} ranks but this instance has "
                                 f"{self.ctx.size} brokers: discovering resources instead")
            h.close()
            return None
        self._parent = h
        self._parent_seen = seen
        return rset

    async def _follow_parent(self, h: AsyncFlux, job: ParentJob) -> None:
        """Move the instance's expiration with the job's ``resource-update`` events.

        Ends quietly when the job's eventlog ends or the parent goes away;
        cancelled at unload.
        """
        skip = self._parent_seen     # the watch starts with the entries R came from
        try:
            async for resp in h.rpc_stream("job-info.eventlog-watch", job.watch_request()):
                if skip:
                    skip -= 1
                    continue
                expiration = update_expiration(resp)
                if expiration is not None and expiration != self._expiration_intent:
                    self._set_expiration(expiration)
        except FluxError as exc:
            self.ctx.log.info(f"parent job eventlog: {exc}: no more expiration updates")

    def _set_expiration(self, expiration: float) -> None:
        """Post resource-update; once durable, rewrite resource.R and tell the scheduler."""
        self._expiration_intent = expiration
        self.ctx.log.info(f"expiration moved to {expiration:.3f} by the parent instance")
        self._post([("resource-update", {"expiration": expiration})],
                   lambda: self._expiration_applied(expiration))

    def _expiration_applied(self, expiration: float) -> None:
        """The resource-update is durable: R (and the scheduler's R) get the new expiration.

        ``_post`` then sends the change down the acquire streams.
        """
        if self.rset is None or self.sched_R is None:
            return
        self.rset.expiration = expiration
        self.R = self.rset.to_dict()
        self.sched_R = {**self.sched_R,
                        "execution": {**self.sched_R["execution"], "expiration": expiration}}
        if self._sched_rset is not None:
            self._sched_rset.expiration = expiration
        self._batch.put(R_KEY, encode_value(self.R)).add_done_callback(self._log_failure)

    # -- ranks coming and going ---------------------------------------------------

    async def _watch(self, rank: int) -> None:
        delay = 0.02
        wake = self._wake.setdefault(rank, asyncio.Event())
        while True:
            up = False
            wake.clear()
            try:
                async for body in self.ctx.rpc_stream("resource.monitor", {}, nodeid=rank):
                    up = True
                    delay = 0.02
                    self._rank_up(rank, body)
            except FluxError:
                pass
            if up:
                self._rank_down(rank)
            # retry with backoff, or at once when the rank says hello
            try:
                await asyncio.wait_for(wake.wait(), delay)
                delay = 0.02
            except asyncio.TimeoutError:
                delay = min(delay * 2, 1.0)

    @request_handler("resource.hello")
    def hello(self, msg: Message) -> None:
        """A rank's module has started: look at it now rather than at the next retry."""
        body = msg.payload if isinstance(msg.payload, dict) else {}
        rank = body.get("rank")
        # a notice (no response): anything but a rank of ours is ignored
        wake = self._wake.get(rank) if type(rank) is int else None
        if wake is not None:
            wake.set()
        return None

    def _rank_up(self, rank: int, body: Any) -> None:
        try:
            report = LocalResources.from_dict(body)
        except ValueError as exc:
            self.ctx.log.error(f"rank {rank}: {exc}")
            return
        events: list[tuple[str, dict[str, Any]]] = []
        then = None
        if self.rset is None and self._method == "dynamic-discovery" \
                and rank not in self._reports:
            self._reports[rank] = report
            if len(self._reports) == self.ctx.size:
                try:
                    rset = discovered_R(self._reports)
                except ValueError as exc:
                    self.ctx.log.error(f"cannot build R from the ranks' reports: {exc}")
                else:
                    events += self._define_events(rset)
                    then = (lambda: self._define(rset))
        if rank not in self._intent_online:
            self._intent_online.add(rank)
            events.append(("online", {"idset": str(rank)}))
        if events:
            self._post(events, then)

    def _rank_down(self, rank: int) -> None:
        self._intent_torpid.discard(rank)
        if rank in self._intent_online:
            self._intent_online.discard(rank)
            self._post([("offline", {"idset": str(rank)})])

    def _torpid_event(self, msg: Message) -> None:
        """``overlay.torpid`` {ranks, torpid} from rank 0's broker: a rank connected but
        silent for tbon.torpid_max gets no new work (``torpid``) until it speaks
        again (``lively``); jobs already there keep running."""
        body = msg.payload if isinstance(msg.payload, dict) else {}
        ranks = body.get("ranks")
        torpid = bool(body.get("torpid"))
        if not isinstance(ranks, list):
            return
        changed = []
        for rank in ranks:
            if not isinstance(rank, int) or rank not in self._intent_online:
                continue
            if torpid and rank not in self._intent_torpid:
                self._intent_torpid.add(rank)
                changed.append(rank)
            elif not torpid and rank in self._intent_torpid:
                self._intent_torpid.discard(rank)
                changed.append(rank)
        if changed:
            self._post([("torpid" if torpid else "lively", {"idset": _idset(changed)})])

    # -- acquire (RFC 28) -----------------------------------------------------------

    def _up(self) -> set[int]:
        st = self.state
        return (self._sched_ranks & st.online) - set(st.drained) - st.torpid - st.excluded

    def _acquire_first(self, stream: Stream) -> None:
        up = self._up()
        if self._last_up is None:
            self._last_up = up
            self._last_expiration = self.state.expiration
        resources = self.sched_R
        if self.state.expiration and resources is not None:
            resources = {**resources, "execution": {**resources["execution"],
                                                    "expiration": self.state.expiration}}
        stream.send({"resources": resources, "up": _idset(self._last_up)})

    def _update_acquirers(self) -> None:
        if self.sched_R is None or self._last_up is None:
            return
        up = self._up()
        change: dict[str, Any] = {}
        if up - self._last_up:
            change["up"] = _idset(up - self._last_up)
        if self._last_up - up:
            change["down"] = _idset(self._last_up - up)
        if self.state.expiration != self._last_expiration:
            change["expiration"] = self.state.expiration
            self._last_expiration = self.state.expiration
        self._last_up = up
        if change:
            for stream in list(self._acquirers):
                stream.send(change)

    @request_handler("resource.acquire", streaming=True)
    def acquire(self, msg: Message) -> None:
        if self.ctx.rank != 0:
            raise FluxError(errno.EINVAL, "resource.acquire is served on rank 0 only")
        stream = self.ctx.stream(msg)
        self._acquirers.append(stream)

        def gone() -> None:
            if stream in self._acquirers:
                self._acquirers.remove(stream)

        stream.on_cancel = gone
        if self.sched_R is not None:
            self._acquire_first(stream)
        return None

    # -- the monitor stream (every rank) -----------------------------------------------

    @request_handler("resource.monitor", streaming=True)
    def monitor(self, msg: Message) -> None:
        assert self.local is not None
        self.ctx.stream(msg).send(self.local.to_dict())
        return None

    # -- drain / undrain / status --------------------------------------------------------

    def _forward(self, msg: Message) -> Any:
        return self.ctx.rpc(msg.topic, msg.payload, nodeid=0)

    @request_handler("resource.drain")
    def drain(self, msg: Message) -> Any:
        if self.ctx.rank != 0:
            return self._forward(msg)
        body = _body(msg)
        reason = body.get("reason", "")
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise FluxError(errno.EINVAL, "drain: reason must be a string")
        mode = body.get("mode")
        if mode not in _DRAIN_MODES:
            raise FluxError(errno.EINVAL, "drain: mode must be 'update' or 'overwrite' (or "
                                          f"'force-overwrite'), got {mode!r}")
        ranks = resolve_targets(body.get("targets"), self._hostnames(), self.state.ranks)
        # flux-resource(1): "Resources cannot be both excluded and drained"
        excluded = [r for r in ranks if r in self.state.excluded]
        if excluded:
            raise FluxError(errno.EINVAL, f"drain: rank{'s' if len(excluded) > 1 else ''} "
                                          f"{_idset(excluded)} excluded by configuration")
        # a rank drained with no reason may be given one (as in flux-core)
        drained = self.state.drained
        already = [r for r in ranks if r in drained and drained[r].reason]
        if already and mode is None:
            raise FluxError(errno.EEXIST, f"drain: rank{'s' if len(already) > 1 else ''} "
                                          f"{_idset(already)} already drained (use force to "
                                          "replace the reason, update to leave it)")
        if mode == "update":
            ranks = [r for r in ranks if r not in already]
            if not ranks:
                return {}
        fut = self._post([("drain", {"idset": _idset(ranks), "nodelist": self._nodelist(ranks),
                                     "reason": reason, "overwrite": _DRAIN_MODES[mode]})])
        self._reply_when_done(msg, fut)
        return None

    @request_handler("resource.undrain")
    def undrain(self, msg: Message) -> Any:
        if self.ctx.rank != 0:
            return self._forward(msg)
        body = _body(msg)
        ranks = resolve_targets(body.get("targets"), self._hostnames(), self.state.ranks)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise FluxError(errno.EINVAL, "undrain: reason must be a string")
        idle = [r for r in ranks if r not in self.state.drained]
        # flux-core's flux resource undrain -f sends mode "force"
        if idle and not body.get("force") and body.get("mode") != "force":
            raise FluxError(errno.EINVAL, f"undrain: rank{'s' if len(idle) > 1 else ''} "
                                          f"{_idset(idle)} not drained")
        ranks = [r for r in ranks if r in self.state.drained]
        if not ranks:
            return {}
        context: dict[str, Any] = {"idset": _idset(ranks), "nodelist": self._nodelist(ranks)}
        if reason:
            context["reason"] = reason
        self._reply_when_done(msg, self._post([("undrain", context)]))
        return None

    def _nodelist(self, ranks: Iterable[int]) -> str:
        from flux.hostlist import Hostlist

        hosts = self._hostnames()
        return Hostlist([hosts[r] for r in sorted(ranks) if r in hosts]).encode()

    @request_handler("resource.topology", allow_guest=True)
    def topology(self, msg: Message) -> Any:
        """This rank's hardware topology over the cores it found (flux hwloc)."""
        from flux.idset import IDset
        from flux.resource.topology import local_topology

        cores = self.local.cores
        return local_topology(IDset(cores) if cores else [], self.local.hostname,
                              self.ctx.rank).to_dict()

    @request_handler("resource.status", allow_guest=True)
    def status(self, msg: Message) -> Any:
        if self.ctx.rank != 0:
            return self._forward(msg)
        pending = self._exclude_posted
        if pending is not None and not pending.done():
            # `flux config reload` answers before its exclude events are durable;
            # a status asked after it shows them
            return self._status_after(pending)
        return self._status()

    async def _status_after(self, pending: "asyncio.Future[Any]") -> Any:
        await asyncio.wait([pending])
        return self._status()

    def _status(self) -> dict[str, Any]:
        st = self.state
        drain: dict[str, dict[str, Any]] = {}
        by_info: dict[Any, list[int]] = {}
        for rank, info in st.drained.items():
            by_info.setdefault(info, []).append(rank)
        for info, ranks in by_info.items():
            drain[_idset(ranks)] = {"timestamp": info.timestamp, "reason": info.reason}
        return {
            "R": self.R,
            "all": _idset(st.ranks),
            "online": _idset(st.online & st.ranks),
            "offline": _idset(st.ranks - st.online),
            "exclude": _idset(st.excluded & st.ranks),
            "torpid": _idset(st.torpid & st.ranks),
            "drain": drain,
            "method": st.method,
            "expiration": st.expiration,
        }

    # -- the scheduler's view: resource.sched-status --------------------------------------

    @request_handler("resource.sched-status", allow_guest=True)
    async def sched_status(self, msg: Message) -> Any:
        """R (without excluded ranks) as ``all``, its unavailable ranks as ``down``, and
        what the scheduler has ``allocated``: what ``flux resource list`` shows.

        ``down`` is every rank the scheduler may not use (offline, drained
        or torpid), as the acquire stream tells it.  ``allocated`` comes
        from ``sched.resource-status`` (empty if no scheduler is loaded).
        """
        if self.ctx.rank != 0:
            return await self.ctx.rpc(msg.topic, msg.payload, nodeid=0)
        if self._sched_rset is None:
            try:
                await asyncio.wait_for(self._defined.wait(), SCHED_STATUS_TIMEOUT)
            except asyncio.TimeoutError:
                raise FluxError(errno.EAGAIN, "resources are not known yet (waiting for "
                                              "every rank to report)") from None
        from flux.resource import ResourceSet

        try:
            sched = await self.ctx.rpc("sched.resource-status", {})
        except FluxError as exc:
            if exc.errno != errno.ENOSYS:
                raise FluxError(exc.errno or errno.EIO, "sched.resource-status request failed: "
                                f"{exc.strerror or exc}") from None
            sched = None
        view = self._sched_rset
        view.expiration = self.state.expiration
        down = view.copy_ranks(_idset(self._sched_ranks - self._up()))
        allocated = sched.get("allocated") if isinstance(sched, dict) else None
        try:
            alloc = ResourceSet(allocated)
        except (ValueError, TypeError, KeyError) as exc:
            raise FluxError(errno.EPROTO, "sched.resource-status: invalid allocated R: "
                                          f"{exc}") from None
        have = alloc.property_ranks()
        for name, ranks in view.property_ranks().items():
            mine = ranks.intersect(alloc.ranks).difference(have.get(name, ()))
            if len(mine):
                alloc.set_property(name, mine)
        return {"all": view.to_dict(), "down": down.to_dict(), "allocated": alloc.to_dict()}

    # -- the resource journal ---------------------------------------------------------------

    @request_handler("resource.journal", streaming=True)
    async def journal_request(self, msg: Message) -> None:
        await self.journal.request(msg)
        return None

    @request_handler("resource.journal-cancel")
    def journal_cancel(self, msg: Message) -> None:
        self.journal.cancel(msg)
        return None
