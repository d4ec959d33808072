"""The ``job-ingest`` broker module: submissions become jobs.

Every ``job-ingest.submit`` that arrives in one loop turn forms a batch
(the handler only queues; one ``call_soon`` flush per turn).  Each request
is checked by ``jobmgr.policy.prepare`` (flags, urgency, jobspec,
defaults, queue, limits, access) and by the site's CLI plugins'
``validate`` callbacks, if any are installed; when ``[ingest.validator]
plugins`` includes ``feasibility`` (not by default, as in Flux) the
survivors are checked for feasibility by the scheduler
(``feasibility.check``, skipped when no scheduler answers); the other
plugins it names (``require-instance``, ``schema``, a site's) run through
``flux.job.validator.JobValidator`` in a thread; the survivors are
given FLUIDs, and handed to the job manager in ONE
``job-manager.submit``, which writes every job's jobspec, J and eventlog
(``submit`` and what follows it without outside input) in one commit and
answers once it is durable; only then is each submitter answered with its
id (or the error that refused it).  specs/ingest.md has the details.
"""
from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass
from typing import Any

import orjson

from broker.module import Module, request_handler
from flux.constants import FLUX_ROLE_OWNER
from flux.errors import FluxError
from flux.job.fluid import FluidGenerator
from flux.job.summary import remember_summary
from flux.message import Message
from jobmgr.jobtap_conf import plugin_dirs
from jobmgr.policy import JobPolicy, JobspecMemo, Prepared, parse_job_policy, prepare

__all__ = ["JobIngest"]

_dumps = orjson.dumps


def _J_head(userid: int) -> bytes:
    """What comes before the jobspec in J's JSON (``make_J``'s encoding)."""
    return b'{"version":1,"mech":"none","userid":%d,"jobspec":' % userid


_J_TAIL = b"}"


#: the novalidate bit of Prepared.flags (job flags, as in the submit event)
JOB_NOVALIDATE = 4


def _plugin_validate(registry: Any, jobspec: dict[str, Any]) -> None:
    """Run the site's CLI plugin ``validate`` callbacks; EINVAL with their text."""
    from flux.job.Jobspec import JobspecV1

    try:
        registry.validate(JobspecV1._unchecked(jobspec))
    except Exception as exc:  # noqa: BLE001 - site code: any failure refuses the job
        raise FluxError(errno.EINVAL, str(exc) or type(exc).__name__) from None


def _error_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno, exc.strerror or str(exc)
    return errno.EINVAL, str(exc)


def _feasibility_key(jobspec: dict[str, Any]) -> bytes:
    """What feasibility depends on: the resource request and the constraints."""
    system = (jobspec.get("attributes") or {}).get("system") or {}
    constraints = system.get("constraints") if isinstance(system, dict) else None
    return _dumps([jobspec.get("resources"), constraints])


#: validators done here natively (jobspec checks in prepare, feasibility in batches)
_NATIVE_VALIDATORS = ("jobspec", "feasibility")


def _validator_plugins(config: Any) -> tuple[list[str], list[str], list[str]]:
    """``[ingest.validator]`` ``plugins`` (Flux's default: ``["jobspec"]`` alone),
    ``args`` (the plugins' options) and ``pluginpath`` (our own: more plugin dirs)."""
    ingest = config.get("ingest") or {}
    validator = ingest.get("validator") or {} if isinstance(ingest, dict) else {}
    if not isinstance(validator, dict):
        raise ValueError("ingest.validator: must be a table")
    out = []
    for key, default in (("plugins", ["jobspec"]), ("args", [])):
        value = validator.get(key, default)
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise ValueError(f"ingest.validator.{key}: must be an array of strings")
        out.append(value)
    return out[0], out[1], plugin_dirs(validator.get("pluginpath", []),
                                       "ingest.validator.pluginpath")


def _plugin_validator(names: list[str], args: list[str], pluginpath: list[str],
                      uri: str) -> Any:
    """A JobValidator for the plugins not done natively (None if there are none);
    ValueError naming an unknown plugin or a bad argument."""
    others = [n for n in names if n not in _NATIVE_VALIDATORS]
    if not others:
        return None
    from flux.job.validator import JobValidator, ValidatorJobInfo

    ValidatorJobInfo.uri = uri
    return JobValidator([f"--plugins={','.join(others)}", *args],
                        pluginpath=pluginpath).start()


def _cli_validators(log: Any) -> Any:
    """The CLI plugins' ``validate`` callbacks (Flux's jobspec validator runs them),
    or None when no plugin is installed."""
    from flux.cli.plugin import CLIPluginRegistry

    try:
        registry = CLIPluginRegistry("validate")
    except Exception as exc:  # noqa: BLE001 - a broken site plugin must not stop ingest
        log.error(f"job-ingest: CLI plugins not loaded: {exc}")
        return None
    return registry if registry.plugins else None


@dataclass(slots=True, frozen=True)
class _Settings:
    """What job-ingest takes from the config: the policy and the validators."""

    policy: JobPolicy
    plugins: tuple[str, ...]
    validator: Any


def _settings(config: Any, uri: str) -> _Settings:
    """Read ``[policy]``, ``[queues]`` and ``[ingest.validator]``; ValueError names
    the bad key (an unknown plugin, a bad argument, a bad limit...)."""
    policy = parse_job_policy(config)
    try:
        plugins, vargs, vpath = _validator_plugins(config)
        validator = _plugin_validator(plugins, vargs, vpath, uri)
    except (ValueError, ImportError, SyntaxError) as exc:
        raise ValueError(f"ingest.validator: {exc}") from None
    return _Settings(policy, tuple(plugins), validator)


class JobIngest(Module):
    name = "job-ingest"

    async def start(self) -> None:
        self._uri = self.ctx.attr_get("local-uri")
        try:
            settings = _settings(self.ctx.config, self._uri)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"job-ingest: {exc}") from None
        self._apply(settings)
        self._refusals: dict[str | None, str | None] = {}
        self._memo = JobspecMemo()
        names: list[str | None] = list(self.policy.queues) or [None]
        max_jobid = 0
        try:
            max_jobid = int((await self.ctx.rpc("job-manager.getinfo", {}))["max_jobid"])
            for name in names:
                status = await self.ctx.rpc("job-manager.queue-status",
                                            {"name": name} if name else {})
                self._note_queue(name, status.get("enable", True),
                                 status.get("disable_reason"))
        except FluxError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            self.ctx.log.warning("job-manager is not loaded: job ids start from scratch")
        self.generator = FluidGenerator.after(max_jobid, generator_id=self.ctx.rank)
        self._queue: list[Message] = []
        self._flush_scheduled = False
        self._batches: set[asyncio.Task[None]] = set()
        self.submitted = 0
        self.batches = 0

    def _apply(self, settings: _Settings) -> None:
        self.policy: JobPolicy = settings.policy
        self._validator = settings.validator
        # Flux enables only the jobspec validator by default: an unsatisfiable job is
        # accepted and gets a fatal alloc exception from the scheduler
        self._feasibility = "feasibility" in settings.plugins
        if "jobspec" not in settings.plugins:
            self._cli_plugins = None
        elif getattr(self, "_cli_plugins", None) is None:
            self._cli_plugins = _cli_validators(self.ctx.log)
        self._plugins = settings.plugins

    def config_check(self, config: Any) -> None:
        """Refuse (ValueError) a config this module would refuse on reload."""
        try:
            _settings(config, self._uri)
        except ValueError as exc:
            raise ValueError(f"job-ingest: {exc}") from None

    def config_reload(self, config: Any) -> None:
        """Apply ``[policy]``, ``[queues]`` (the set of queues too: the job manager
        adds and removes its queues on reload) and ``[ingest.validator]`` to later
        submissions; nothing changes if any of it is bad.  A new queue's enable
        state comes from the job manager (``job-ingest.queue-update``)."""
        try:
            settings = _settings(config, self._uri)
        except ValueError as exc:
            raise ValueError(f"job-ingest: {exc}") from None
        self._apply(settings)
        # jobspecs validated under the old policy must be checked again
        self._memo = JobspecMemo()

    async def stop(self) -> None:
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)

    # -- queue state, pushed by the job manager ---------------------------------------------
    def _note_queue(self, name: str | None, enable: bool, reason: str | None) -> None:
        if enable:
            self._refusals[name] = None
        elif name is None:
            self._refusals[name] = f"job submission is disabled: {reason or 'no reason given'}"
        else:
            self._refusals[name] = (f"queue {name}: job submission is disabled: "
                                    f"{reason or 'no reason given'}")

    def _queue_open(self, name: str | None) -> str | None:
        return self._refusals.get(name)

    @request_handler("job-ingest.queue-update")
    def queue_update(self, msg: Message) -> None:
        payload = msg.payload
        if not isinstance(payload, dict):
            raise FluxError(errno.EPROTO, "job-ingest.queue-update: payload must be a JSON object")
        name, enable, reason = payload.get("name"), payload.get("enable", True), payload.get("reason")
        if name is not None and not isinstance(name, str):
            raise FluxError(errno.EPROTO, "job-ingest.queue-update: 'name' must be a string")
        if not isinstance(enable, bool):
            raise FluxError(errno.EPROTO, "job-ingest.queue-update: 'enable' must be a boolean")
        if reason is not None and not isinstance(reason, str):
            raise FluxError(errno.EPROTO, "job-ingest.queue-update: 'reason' must be a string")
        self._note_queue(name, enable, reason)

    @request_handler("job-ingest.stats", allow_guest=True)
    def stats(self, msg: Message) -> dict[str, Any]:
        return {"submitted": self.submitted, "batches": self.batches,
                "batches_in_flight": len(self._batches)}

    # -- submissions -----------------------------------------------------------------------
    @request_handler("job-ingest.submit", allow_guest=True)
    def submit(self, msg: Message) -> None:
        self._queue.append(msg)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        queued, self._queue = self._queue, []
        ready: list[tuple[Message, Prepared]] = []
        respond_error = self.ctx.respond_error
        plugins = self._cli_plugins
        for msg in queued:
            try:
                prepared = prepare(msg.payload, msg.userid, bool(msg.rolemask & FLUX_ROLE_OWNER),
                                   self.policy, self._queue_open,
                                   # decoded from JSON: its re-encoding names it exactly
                                   self._memo if msg.from_wire else None)
                if plugins is not None and not prepared.flags & JOB_NOVALIDATE:
                    _plugin_validate(plugins, prepared.jobspec)
                if prepared.summary is not None and (
                        msg.from_wire or prepared.jobspec is not prepared.original):
                    # decoded from the message, or a copy made here: no caller holds it
                    # to edit it, and the job manager passes this object on
                    remember_summary(prepared.jobspec, prepared.summary)
                ready.append((msg, prepared))
            except (OSError, ValueError, TypeError) as exc:
                respond_error(msg, *_error_of(exc))
            except Exception as exc:  # noqa: BLE001 - one bad submission fails alone
                self.ctx.log.exception("job-ingest: submission failed unexpectedly")
                respond_error(msg, errno.EINVAL, f"job-ingest: cannot accept this jobspec "
                                                 f"({type(exc).__name__}: {exc})")
        if not ready:
            return
        task = self.ctx.create_task(self._batch(ready), "job-ingest batch")
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _feasible(self, ready: list[tuple[Message, Prepared]]
                        ) -> list[tuple[Message, Prepared]]:
        if not self._feasibility:
            return ready
        loop = asyncio.get_running_loop()
        # a burst is often one jobspec many times (flux submit --cc): ask once per
        # distinct resource request and constraints in the batch
        asked: dict[bytes, asyncio.Future[Message]] = {}
        futures: list[asyncio.Future[Message]] = []
        for _msg, prepared in ready:
            key = _feasibility_key(prepared.jobspec)
            fut = asked.get(key)
            if fut is None:
                fut = asked[key] = loop.create_future()
                self.ctx.request_callback("feasibility.check", {"jobspec": prepared.jobspec},
                           lambda m, fut=fut: fut.done() or fut.set_result(m))
            futures.append(fut)
        answers = await asyncio.gather(*futures)
        kept = []
        for (msg, prepared), answer in zip(ready, answers):
            if answer.errnum and answer.errnum != errno.ENOSYS:
                self.ctx.respond_error(msg, answer.errnum, answer.errstr)
            else:
                kept.append((msg, prepared))
        return kept

    async def _batch(self, ready: list[tuple[Message, Prepared]]) -> None:
        ready = await self._feasible(ready)
        if self._validator is not None and ready:
            ready = await self._plugins_validate(ready)
        await self._announce(ready)

    async def _plugins_validate(self, ready: list[tuple[Message, Prepared]]
                                ) -> list[tuple[Message, Prepared]]:
        """The configured validator plugins, in a thread: a plugin may block or use
        its own handle to this broker (``ValidatorJobInfo.flux``)."""
        validator = self._validator
        todo = [(msg, p) for msg, p in ready if not p.flags & JOB_NOVALIDATE]

        def run() -> list[Any]:
            return [validator.validate({"jobspec": p.jobspec, "userid": p.userid,
                                        "flags": p.flags, "urgency": p.urgency})
                    for _msg, p in todo]

        results = await asyncio.get_running_loop().run_in_executor(None, run)
        refused = set()
        for (msg, _p), result in zip(todo, results):
            if not result.success:
                refused.add(id(msg))
                self.ctx.respond_error(msg, result.errnum, result.errmsg or "job refused by "
                                                                            "a validator plugin")
        return [(msg, p) for msg, p in ready if id(msg) not in refused]

    async def _announce(self, ready: list[tuple[Message, Prepared]]) -> None:
        """Give the batch ids and hand it to the job manager, which writes it."""
        respond_error = self.ctx.respond_error
        if not ready:
            return
        ids = self.generator.next_batch(len(ready))
        heads: dict[int, bytes] = {}
        t_submit = time.time()
        jobs: list[dict[str, Any]] = []
        for (_msg, p), jobid in zip(ready, ids):
            jobspec_json = _dumps(p.jobspec)
            original_json = jobspec_json if p.original is p.jobspec else _dumps(p.original)
            head = heads.get(p.userid)
            if head is None:
                head = heads[p.userid] = _J_head(p.userid)
            # in-process (job-manager runs in this broker): the encodings travel as
            # bytes, and J as chunks whose middle one is the jobspec's own bytes
            jobs.append({"id": jobid, "userid": p.userid, "urgency": p.urgency,
                         "flags": p.flags, "t_submit": t_submit, "jobspec": p.jobspec,
                         "jobspec_json": jobspec_json,
                         "J_chunks": (head, original_json, _J_TAIL)})
        self.batches += 1
        try:
            reply = await self.ctx.rpc("job-manager.submit", {"jobs": jobs})
        except FluxError as exc:
            for msg, _p in ready:
                respond_error(msg, exc.errno or errno.EIO,
                              f"job-manager did not accept the jobs: {exc.strerror}")
            return
        errors: dict[int, tuple[int, str]] = {}
        for jobid, errnum, text in (reply or {}).get("errors", []):
            errors[jobid] = (errnum, text)
        respond = self.ctx.respond
        for (msg, _p), jobid in zip(ready, ids):
            refused = errors.get(jobid)
            if refused is None:
                respond(msg, {"id": jobid})
            else:
                respond_error(msg, *refused)
        self.submitted += len(ready) - len(errors)
