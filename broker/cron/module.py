"""The ``cron`` broker module (flux-cron(1)), on rank 0: commands run on a trigger.

Entries live in memory (as in flux-core, they do not survive a restart).
Each run is a command ``sh -c COMMAND`` started through rexec on the
entry's rank (``run_command``); its output goes to the broker log
(``flux dmesg``) as ``cron-ID: line``, a failure is logged and counted,
and ``stop-on-failure=N`` stops the entry past N failures.  A run that is
still going when the trigger comes again is skipped (and logged).  With a
sync event set (``flux cron sync TOPIC``), runs wait for the next such
event, unless one came less than ``epsilon`` seconds ago.

Requests (owner only): ``cron.create``, ``cron.list``, ``cron.stop``,
``cron.start``, ``cron.delete``, ``cron.sync``; specs/cron.md.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from broker.cron.triggers import (
    CronFields,
    EventCounter,
    interval_next,
    next_match,
    parse_crontab_line,
)
from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.message import Message

__all__ = ["Cron", "Entry", "TaskRecord"]

_TYPES = ("interval", "event", "datetime")


@dataclass(slots=True)
class TaskRecord:
    rank: int
    start: float
    state: str = "Running"
    pid: int = 0
    end: float | None = None
    status: int | None = None        # wait status
    code: int | None = None          # exit code, 128+signal
    timedout: bool = False
    error: str | None = None         # why it could not start

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rank": self.rank, "state": self.state, "start": self.start,
                               "pid": self.pid}
        for key in ("end", "status", "code", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.timedout:
            out["timedout"] = True
        return out


@dataclass(slots=True)
class Entry:
    id: int
    name: str
    command: str
    type: str
    typedata: dict[str, Any]
    repeat: int = 0                  # runs before it stops itself (0: no limit)
    rank: int = 0
    timeout: float | None = None
    history: int = 1
    stop_on_failure: int = 0
    cwd: str = "/"
    env: dict[str, str] | None = None
    stopped: bool = False
    ctime: float = field(default_factory=time.time)
    starttime: float = field(default_factory=time.time)
    lastrun: float | None = None
    count: int = 0
    success: int = 0
    failure: int = 0
    deferred: int = 0
    runs: int = 0                    # since the last start (for repeat)
    failures: int = 0                # since the last start (for stop-on-failure)
    next: float | None = None
    fired: float | None = None       # when the trigger last came (runs may be deferred)
    fields: CronFields | None = None
    counter: EventCounter | None = None
    tasks: collections.deque[TaskRecord] = field(default_factory=collections.deque)
    timer: asyncio.TimerHandle | None = None
    running: "asyncio.Task[None] | None" = None
    waiting_sync: bool = False
    on_event: Callable[[Message], None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "command": self.command, "type": self.type,
                "typedata": self.typedata, "stopped": self.stopped, "repeat": self.repeat,
                "rank": self.rank, "timeout": self.timeout, "task-history-count": self.history,
                "stop-on-failure": self.stop_on_failure, "cwd": self.cwd,
                "next": self.next if not self.stopped else None,
                "stats": {"ctime": self.ctime, "starttime": self.starttime,
                          "lastrun": self.lastrun, "count": self.count,
                          "success": self.success, "failure": self.failure,
                          "deferred": self.deferred},
                "tasks": [t.to_json() for t in self.tasks]}


def _int(payload: dict[str, Any], key: str, default: int, low: int = 0) -> int:
    value = payload.get(key, default)
    if type(value) is not int or value < low:
        raise FluxError(errno.EPROTO, f"cron: '{key}' must be an integer >= {low}, "
                                      f"got {value!r}")
    return value


def _number(payload: dict[str, Any], key: str, default: float | None) -> float | None:
    value = payload.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise FluxError(errno.EPROTO, f"cron: '{key}' must be a number >= 0, got {value!r}")
    return float(value)


class Cron(Module):
    name = "cron"

    async def start(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.next_id = 1
        self.sync_topic: str | None = None
        self.sync_epsilon = 0.0
        self.last_sync: float | None = None
        self.cwd = os.getcwd()
        directory = self.ctx.attr_get_default("cron.directory")
        if directory:
            self.load_directory(directory)

    def load_directory(self, directory: str) -> None:
        """Every file of DIRECTORY as a crontab (``-Scron.directory``, as the system
        instance's unit sets it). A bad line is logged and skipped: a broken file
        must not keep the instance from starting."""
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            self.ctx.log.error(f"cron.directory {directory}: {exc.strerror or exc}")
            return
        for fname in names:
            path = os.path.join(directory, fname)
            if fname.startswith(".") or not os.path.isfile(path):
                continue
            try:
                with open(path, encoding="utf-8") as fh:
                    lines = fh.readlines()
            except (OSError, UnicodeDecodeError) as exc:
                self.ctx.log.error(f"cron: {path}: {exc}")
                continue
            for lineno, line in enumerate(lines, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    _fields, command = parse_crontab_line(text)
                    spec = " ".join(text.split(None, 5)[:5])
                    self.create_entry({"type": "datetime", "args": {"crontab": spec},
                                       "command": command})
                except (ValueError, FluxError) as exc:
                    self.ctx.log.error(f"cron: {path}:{lineno}: {exc}")

    async def stop(self) -> None:
        for entry in list(self.entries.values()):
            self._disarm(entry)
            if entry.running is not None:
                entry.running.cancel()

    # -- requests ------------------------------------------------------------------------
    @request_handler("cron.create")
    def create(self, msg: Message) -> dict[str, Any]:
        return self.create_entry(msg.payload if isinstance(msg.payload, dict) else {})

    def create_entry(self, p: dict[str, Any]) -> dict[str, Any]:
        """A new entry from a ``cron.create`` payload P; FluxError if P is bad."""
        kind = p.get("type")
        if kind not in _TYPES:
            raise FluxError(errno.EPROTO, f"cron.create: 'type' must be one of "
                                          f"{', '.join(_TYPES)}, got {kind!r}")
        command = p.get("command")
        if not isinstance(command, str) or not command.strip():
            raise FluxError(errno.EPROTO, "cron.create: 'command' must be a non-empty string")
        args = p.get("args")
        if not isinstance(args, dict):
            raise FluxError(errno.EPROTO, "cron.create: 'args' must be an object")
        cwd = p.get("cwd") or self.cwd
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            raise FluxError(errno.EPROTO, "cron.create: 'cwd' must be an absolute path")
        env = p.get("environ")
        if env is not None and not (isinstance(env, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise FluxError(errno.EPROTO, "cron.create: 'environ' must map names to strings")
        rank = _int(p, "rank", 0)
        if rank >= self.ctx.size:
            raise FluxError(errno.EINVAL, f"cron.create: rank {rank} is not in this instance "
                                          f"(size {self.ctx.size})")
        name = p.get("name") or kind
        if not isinstance(name, str):
            raise FluxError(errno.EPROTO, "cron.create: 'name' must be a string")
        entry = Entry(self.next_id, name, command, kind, self._typedata(kind, args),
                      repeat=_int(p, "repeat", 0), rank=rank,
                      timeout=_number(p, "timeout", None),
                      history=_int(p, "task-history-count", 1, low=1),
                      stop_on_failure=_int(p, "stop-on-failure", 0), cwd=cwd, env=env)
        if kind == "datetime":
            entry.fields = self._fields(entry.typedata)
        self.next_id += 1
        self.entries[entry.id] = entry
        self._arm(entry)
        self.ctx.log.debug(f"cron-{entry.id}: created {kind} entry {name}")
        return entry.to_json()

    @request_handler("cron.list")
    def list_(self, msg: Message) -> dict[str, Any]:
        return {"entries": [e.to_json() for e in self.entries.values()]}

    @request_handler("cron.stop")
    def stop_(self, msg: Message) -> dict[str, Any]:
        entry = self._entry(msg)
        if entry.stopped:
            raise FluxError(errno.EINVAL, f"cron-{entry.id}: entry is already stopped")
        self._stop(entry)
        return entry.to_json()

    @request_handler("cron.start")
    def start_(self, msg: Message) -> dict[str, Any]:
        entry = self._entry(msg)
        if not entry.stopped:
            raise FluxError(errno.EINVAL, f"cron-{entry.id}: entry is not stopped")
        entry.stopped = False
        entry.starttime = time.time()
        entry.fired = None
        entry.runs = entry.failures = 0
        if entry.counter is not None:
            entry.counter.reset()
        self._arm(entry)
        return entry.to_json()

    @request_handler("cron.delete")
    def delete(self, msg: Message) -> dict[str, Any]:
        entry = self._entry(msg)
        self._disarm(entry)
        del self.entries[entry.id]
        p = msg.payload if isinstance(msg.payload, dict) else {}
        if p.get("kill") and entry.running is not None:
            entry.running.cancel()
        return entry.to_json()

    @request_handler("cron.sync")
    def sync(self, msg: Message) -> dict[str, Any]:
        p = msg.payload if isinstance(msg.payload, dict) else {}
        if p.get("disable"):
            self._set_sync(None)
        elif p.get("topic") is not None:
            topic = p["topic"]
            if not isinstance(topic, str) or not topic:
                raise FluxError(errno.EPROTO, "cron.sync: 'topic' must be a non-empty string")
            self._set_sync(topic)
        if p.get("epsilon") is not None:
            self.sync_epsilon = _number(p, "epsilon", 0.0) or 0.0
        return {"sync_event": self.sync_topic, "sync_epsilon": self.sync_epsilon}

    # -- entries -------------------------------------------------------------------------
    def _entry(self, msg: Message) -> Entry:
        p = msg.payload if isinstance(msg.payload, dict) else {}
        entry_id = p.get("id")
        if type(entry_id) is not int:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'id' must be an integer")
        entry = self.entries.get(entry_id)
        if entry is None:
            raise FluxError(errno.ENOENT, f"cron-{entry_id}: no such entry")
        return entry

    @staticmethod
    def _typedata(kind: str, args: dict[str, Any]) -> dict[str, Any]:
        if kind == "interval":
            interval = _number(args, "interval", None)
            if not interval:
                raise FluxError(errno.EINVAL, "cron.create: interval must be greater than 0")
            return {"interval": interval, "after": _number(args, "after", None)}
        if kind == "event":
            topic = args.get("topic")
            if not isinstance(topic, str) or not topic:
                raise FluxError(errno.EPROTO, "cron.create: event 'topic' must be a string")
            return {"topic": topic, "nth": _int(args, "nth", 1, low=1),
                    "after": _int(args, "after", 0),
                    "min_interval": _number(args, "min_interval", 0.0)}
        if "at" in args:
            return {"at": _number(args, "at", None)}
        line = args.get("crontab")
        if not isinstance(line, str):
            raise FluxError(errno.EPROTO, "cron.create: datetime needs 'crontab' or 'at'")
        return {"crontab": line}

    @staticmethod
    def _fields(typedata: dict[str, Any]) -> CronFields | None:
        if "crontab" not in typedata:
            return None
        try:
            fields, _cmd = parse_crontab_line(typedata["crontab"] + " x")
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"cron.create: {exc}") from None
        return fields

    def _arm(self, entry: Entry) -> None:
        self._disarm(entry)
        if entry.stopped:
            return
        now = time.time()
        td = entry.typedata
        if entry.type == "event":
            if entry.counter is None:
                entry.counter = EventCounter(td["nth"], td["after"], td["min_interval"] or 0.0)

            def on_event(m: Message, e: Entry = entry) -> None:
                if e.counter is not None and e.counter.event():
                    self._trigger(e)

            entry.on_event = on_event
            self.ctx.event_subscribe(td["topic"], on_event)
            entry.next = None
            return
        if entry.type == "interval":
            when = interval_next(td["interval"], td["after"], entry.starttime, entry.fired)
        elif entry.fields is not None:
            found = next_match(entry.fields, now)
            if found is None:
                self.ctx.log.error(f"cron-{entry.id}: crontab never matches; stopped")
                entry.stopped = True
                return
            when = found
        else:
            when = td["at"]
        entry.next = when
        entry.timer = asyncio.get_running_loop().call_later(max(0.0, when - now),
                                                            self._trigger, entry)

    def _disarm(self, entry: Entry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        if entry.on_event is not None:
            try:
                self.ctx.event_unsubscribe(entry.typedata["topic"], entry.on_event)
            except FluxError:
                pass
            entry.on_event = None
        entry.next = None

    def _stop(self, entry: Entry) -> None:
        entry.stopped = True
        entry.waiting_sync = False
        self._disarm(entry)

    def _trigger(self, entry: Entry) -> None:
        entry.timer = None
        if entry.stopped or self.entries.get(entry.id) is not entry:
            return
        now = time.time()
        if self.sync_topic is not None and (self.last_sync is None
                                            or now - self.last_sync > self.sync_epsilon):
            if not entry.waiting_sync:
                entry.waiting_sync = True
                entry.deferred += 1
        else:
            self._run(entry)
        entry.fired = now
        if entry.type == "datetime" and entry.fields is None:
            entry.next = None                   # ``at``: once
        elif entry.type != "event" and not entry.stopped:
            self._arm(entry)

    def _set_sync(self, topic: str | None) -> None:
        if self.sync_topic is not None:
            try:
                self.ctx.event_unsubscribe(self.sync_topic, self._on_sync)
            except FluxError:
                pass
        self.sync_topic = topic
        self.last_sync = None
        if topic is not None:
            self.ctx.event_subscribe(topic, self._on_sync)
        else:
            for entry in self.entries.values():
                if entry.waiting_sync:
                    entry.waiting_sync = False
                    self._run(entry)

    def _on_sync(self, _msg: Message) -> None:
        self.last_sync = time.time()
        for entry in list(self.entries.values()):
            if entry.waiting_sync and not entry.stopped:
                entry.waiting_sync = False
                self._run(entry)

    # -- runs ----------------------------------------------------------------------------
    def _run(self, entry: Entry) -> None:
        if entry.running is not None and not entry.running.done():
            self.ctx.log.warning(f"cron-{entry.id}: the last run is still going; "
                                 "this one is skipped")
            return
        entry.lastrun = time.time()
        entry.count += 1
        entry.runs += 1
        task = TaskRecord(entry.rank, entry.lastrun)
        entry.tasks.append(task)
        while len(entry.tasks) > entry.history:
            entry.tasks.popleft()
        if entry.repeat and entry.runs >= entry.repeat:
            self._stop(entry)
        entry.running = self.ctx.create_task(self._execute(entry, task), f"cron-{entry.id}")

    async def _execute(self, entry: Entry, task: TaskRecord) -> None:
        from broker.svc_rexec import Command, run_command

        log = self.ctx.log
        cmd = Command(["sh", "-c", entry.command], cwd=entry.cwd, env=entry.env)

        def output(stream: str, data: bytes) -> None:
            for line in data.decode("utf-8", "replace").splitlines():
                if stream == "stderr":
                    log.error(f"cron-{entry.id}[{entry.name}]: {line}")
                else:
                    log.info(f"cron-{entry.id}[{entry.name}]: {line}")

        try:
            res = await run_command(self.ctx, cmd, nodeid=entry.rank, on_output=output,
                                    timeout=entry.timeout)
        except asyncio.CancelledError:
            task.state, task.end, task.error = "Killed", time.time(), "killed"
            raise
        except OSError as exc:
            task.end = time.time()
            task.timedout = exc.errno == errno.ETIMEDOUT
            task.state = "Timeout" if task.timedout else "Failed"
            task.error = exc.strerror or str(exc)
            log.error(f"cron-{entry.id}[{entry.name}]: {task.error}")
            self._failed(entry)
            return
        task.pid, task.status, task.code = res.pid, res.status, res.exit_code
        task.end = time.time()
        task.state = "Exited"
        if res.exit_code == 0:
            entry.success += 1
            return
        log.error(f"cron-{entry.id}[{entry.name}]: exit {res.exit_code}")
        self._failed(entry)

    def _failed(self, entry: Entry) -> None:
        entry.failure += 1
        entry.failures += 1
        if entry.stop_on_failure and entry.failures > entry.stop_on_failure \
                and not entry.stopped:
            self.ctx.log.error(f"cron-{entry.id}: stopped after {entry.failures} failures")
            self._stop(entry)
